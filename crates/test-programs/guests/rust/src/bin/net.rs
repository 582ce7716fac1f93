//! Network probe: `connect HOST:PORT` sends `ping`, prints the reply; `lookup NAME`
//! resolves a name; `serve HOST:PORT` listens, prints `listening`, answers one client
//! with `pong:` and what it sent. Prints `error: ...` and exits 1 when refused.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;

#[path = "../tool/mod.rs"]
mod tool;

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
        [op, addr] if op == "serve" => {
            let listener = TcpListener::bind(addr.as_str())?;
            println!("listening");
            std::io::stdout().flush()?;
            let (mut stream, _) = listener.accept()?;
            let mut request = [0u8; 64];
            let n = stream.read(&mut request)?;
            stream.write_all(b"pong:")?;
            stream.write_all(&request[..n])?;
            Ok("ok served".to_string())
        }
        _ => Err(std::io::Error::other("usage: net connect HOST:PORT | lookup NAME | serve HOST:PORT")),
    }
}

fn main() -> ExitCode {
    tool::main(run)
}
