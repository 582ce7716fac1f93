//! Network probe: `connect HOST:PORT` sends `ping`, prints the reply; `lookup NAME`
//! resolves a name. Prints `error: ...` and exits 1 when refused.
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;

fn run(args: &[String]) -> std::io::Result<String> {
    match args {
        [op, addr] if op == "connect" => {
            let mut stream = TcpStream::connect(addr.as_str())?;
            stream.write_all(b"ping")?;
            stream.shutdown(std::net::Shutdown::Write)?;
            let mut reply = String::new();
            stream.read_to_string(&mut reply)?;
            Ok(format!("ok reply {reply}"))
        }
        [op, name] if op == "lookup" => {
            let addrs: Vec<String> = (name.as_str(), 0).to_socket_addrs()?.map(|a| a.ip().to_string()).collect();
            Ok(format!("ok resolved {}", addrs.join(",")))
        }
        _ => Err(std::io::Error::other("usage: net connect HOST:PORT | net lookup NAME")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
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
