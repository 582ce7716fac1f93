//! The `wedge` command: a thin layer over the library crates.

mod cli;
mod commands;
mod exit;
mod progress;
mod root;

use clap::Parser;
use clap::error::ErrorKind;
use std::io::Write;

fn main() {
    #[cfg(feature = "multicall")]
    if std::env::args_os()
        .next()
        .is_some_and(|argv0| std::path::Path::new(&argv0).file_name() == Some("wedged".as_ref()))
    {
        wedge_daemon::command::main();
        return;
    }
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = match err.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = err.print();
                    0
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = err.print();
                    exit::WEDGE_ERROR
                }
                _ => {
                    eprintln!("wedge: {}", first_line(&err.render().to_string()));
                    exit::WEDGE_ERROR
                }
            };
            std::process::exit(code);
        }
    };
    let code = match commands::execute(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("wedge: {}", format!("{err:#}").replace('\n', " "));
            exit::for_error(&err)
        }
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // Exit without tearing down the engine, the code and the guest's memory one by one.
    std::process::exit(code);
}

/// clap's message on one line, without its `error: ` prefix and usage block (a message
/// such as "the following required arguments were not provided:" keeps the indented
/// lines that name them).
fn first_line(rendered: &str) -> String {
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = if message.is_empty() {
        "invalid arguments".to_string()
    } else {
        message.join(" ")
    };
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}
