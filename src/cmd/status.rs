//! `zk status`: ask a server for `srvr` and print its mode as zkServer.sh status does.

use clap::Args;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// host:port of the server to ask.
    #[arg(long, short = 's', default_value = "localhost:2181")]
    pub server: String,
}

/// Sends a four-letter word and returns the whole answer.
pub fn four_letter_word(addr: &str, word: &str, timeout: Duration) -> std::io::Result<String> {
    let sa = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
    let mut s = TcpStream::connect_timeout(&sa, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(word.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

pub fn run(a: StatusArgs) -> Result<i32, Box<dyn std::error::Error>> {
    match four_letter_word(&a.server, "srvr", Duration::from_secs(5)) {
        Ok(text) if text.contains("Mode: ") => {
            for l in text.lines().filter(|l| l.starts_with("Mode: ")) {
                println!("{l}");
            }
            Ok(0)
        }
        _ => {
            eprintln!("Error contacting service. It is probably not running.");
            Ok(1)
        }
    }
}
