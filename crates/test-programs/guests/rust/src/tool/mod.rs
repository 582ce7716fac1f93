//! Shared `main` for the command-style guests: run one operation from the arguments,
//! print `ok ...` (exit 0) or `error: ...` (exit 1).
use std::process::ExitCode;

/// Runs `op` on the arguments after the program name and reports the result.
pub fn main(op: fn(&[String]) -> std::io::Result<String>) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match op(&args) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
