//! A small file tool: `read PATH`, `write PATH TEXT`, `ls DIR`, `rm PATH`.
//! Prints `ok ...` on success; `error: ...` and exit status 1 on failure, so tests can
//! check that escapes out of a granted volume are refused.
use std::process::ExitCode;

#[path = "../tool/mod.rs"]
mod tool;

fn run(args: &[String]) -> std::io::Result<String> {
    match args {
        [op, path] if op == "read" => std::fs::read_to_string(path),
        [op, path, text] if op == "write" => std::fs::write(path, text).map(|()| format!("ok wrote {path}")),
        [op, path] if op == "ls" => {
            let mut names: Vec<String> = std::fs::read_dir(path)?
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<Result<_, _>>()?;
            names.sort();
            Ok(names.join("\n"))
        }
        [op, path] if op == "rm" => std::fs::remove_file(path).map(|()| format!("ok removed {path}")),
        _ => Err(std::io::Error::other("usage: files read|write|ls|rm PATH [TEXT]")),
    }
}

fn main() -> ExitCode {
    tool::main(run)
}
