//! A sample wedge app: greets with `$GREETING`, keeps a visit counter in `/data`, and
//! tries to read a host file it was never granted.
use std::process::ExitCode;

fn main() -> ExitCode {
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "(no GREETING granted)".into());
    println!("{greeting} from a wedge sandbox");

    let counter = "/data/visits.txt";
    let visits: u32 = std::fs::read_to_string(counter).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0) + 1;
    let status = match std::fs::write(counter, visits.to_string()) {
        Ok(()) => {
            println!("visit #{visits} recorded in {counter}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("cannot write {counter}: {e}");
            ExitCode::FAILURE
        }
    };
    match std::fs::read_to_string("/etc/passwd") {
        Ok(_) => println!("read /etc/passwd: the sandbox leaked!"),
        Err(e) => println!("reading /etc/passwd is denied: {e}"),
    }
    status
}
