//! `zk status`: ask a server for `srvr` and print its mode as zkServer.sh status does.

use crate::net::resolve;
use clap::Args;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// host:port of the server to ask.
    #[arg(long, short = 's', default_value = "localhost:2181")]
    pub server: String,
}

/// Sends a four-letter word and returns the whole answer. `addr` is `host:port`; the host is
/// resolved through /etc/hosts first (see `net::resolve`), so names such as `node-1` work in
/// the static binary, and each of its addresses is tried in turn.
pub fn four_letter_word(addr: &str, word: &str, timeout: Duration) -> std::io::Result<String> {
    let mut last_error = None;
    for sa in resolve::resolve_host_port(addr)? {
        match TcpStream::connect_timeout(&sa, timeout) {
            Ok(mut s) => {
                s.set_read_timeout(Some(timeout))?;
                s.write_all(word.as_bytes())?;
                let mut out = String::new();
                s.read_to_string(&mut out)?;
                return Ok(out);
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error
        .unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address")))
}

pub fn run(a: StatusArgs) -> Result<i32, Box<dyn std::error::Error>> {
    match four_letter_word(&a.server, "srvr", Duration::from_secs(5)) {
        Ok(text) if text.contains("Mode: ") => {
            for l in text.lines().filter(|l| l.starts_with("Mode: ")) {
                println!("{l}");
            }
            Ok(0)
        }
        other => {
            // zkServer.sh's wording; --log-level debug shows the cause.
            match other {
                Err(e) => log::debug!("{}: {e}", a.server),
                Ok(text) => log::debug!("{}: no Mode line in {text:?}", a.server),
            }
            eprintln!("Error contacting service. It is probably not running.");
            Ok(1)
        }
    }
}
