//! Test support shared by the integration tests: `TestServer` runs the real `zk` binary on a
//! free loopback port with its own temporary data directory and zoo.cfg, waits until it
//! answers `ruok`, and kills it when dropped; plus raw-socket helpers for tests that speak the
//! wire protocol byte by byte. It never uses fixed ports or fixed sleeps: every wait polls a
//! condition under a named bound. Corresponds to the ZooKeeper test suite's
//! ZKTestCase/ClientBase helpers.

// Each integration test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

pub mod ensemble;

pub mod linearizability;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use zk::client::{self, Client};
use zk::proto::{ConnectRequest, Writer};

/// How long a server may take to answer its first `ruok`.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How often readiness and other conditions are polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long a test waits for the server to close a connection it should close.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times a start is retried when the chosen port was taken in between.
const START_ATTEMPTS: u32 = 5;
/// The session timeout test clients ask for.
pub const SESSION_TIMEOUT_MS: i32 = 30_000;
/// The most bytes `expect_closed` drains from a connection before giving up on it.
const DRAIN_BYTES_MAX: usize = 8 << 20;

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// A unique directory under the system temp dir; removed by `TestServer`'s Drop.
pub fn unique_temp_dir(tag: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "zk-test-{tag}-{}-{}-{nanos}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A port that was free a moment ago: bind port 0 on loopback, read it, release it.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// A running `zk server`.
pub struct TestServer {
    child: Child,
    pub port: u16,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    pub dir: PathBuf,
    log_path: PathBuf,
}

impl TestServer {
    /// A standalone server with every four-letter word enabled.
    pub fn start() -> TestServer {
        TestServer::with_config(&[])
    }

    /// A server whose zoo.cfg has these extra `key=value` lines after the defaults (a later
    /// line wins, as in Java Properties).
    pub fn with_config(extra: &[&str]) -> TestServer {
        let dir = unique_temp_dir("server");
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let mut cfg = format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\n4lw.commands.whitelist=*\n",
                dir.join("data").display()
            );
            for l in extra {
                cfg.push_str(l);
                cfg.push('\n');
            }
            let cfg_path = dir.join("zoo.cfg");
            std::fs::write(&cfg_path, cfg).expect("write zoo.cfg");
            let log_path = dir.join("server.log");
            let log = std::fs::File::create(&log_path).expect("create server log");
            let child = Command::new(env!("CARGO_BIN_EXE_zk"))
                .arg("server")
                .arg("--config")
                .arg(&cfg_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log)
                .spawn()
                .expect("spawn zk server");
            let mut srv = TestServer {
                child,
                port,
                addr: format!("127.0.0.1:{port}"),
                dir: dir.clone(),
                log_path,
            };
            if srv.wait_ready() {
                return srv;
            }
            last_log = srv.log();
            // The port may have been taken between free_port and the bind: try another.
            let _ = srv.child.kill();
            let _ = srv.child.wait();
        }
        panic!("zk server did not start after {START_ATTEMPTS} attempts; last log:\n{last_log}");
    }

    /// Polls `ruok` until `imok`, the child exits, or STARTUP_TIMEOUT passes.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while Instant::now() < deadline {
            if !self.is_alive() {
                return false;
            }
            if let Ok(s) = client::four_letter_word(&self.addr, "ruok", Duration::from_secs(2)) {
                if s == "imok" {
                    return true;
                }
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        false
    }

    /// Whether the server process is still running.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Panics (with the server's log) unless the process runs and answers `ruok`.
    pub fn assert_alive(&mut self) {
        let status = self.child.try_wait();
        assert!(
            matches!(status, Ok(None)),
            "zk server exited ({status:?}); log:\n{}",
            self.log()
        );
        let r = client::four_letter_word(&self.addr, "ruok", Duration::from_secs(5));
        assert_eq!(
            r.as_deref().ok(),
            Some("imok"),
            "server does not answer ruok ({r:?}); log tail:\n{}",
            self.log_tail()
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory in KiB, from /proc (None where there is no /proc).
    pub fn rss_kib(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }

    /// A new session with the default test timeout.
    pub fn client(&self) -> Client {
        Client::connect(&self.addr, SESSION_TIMEOUT_MS)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.addr))
    }

    /// A plain TCP connection with nothing sent yet.
    pub fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        s
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("zk server files kept in {}", self.dir.display());
        }
    }
}

/// A complete frame: the big-endian length, then `payload`.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

/// A request frame: `RequestHeader{xid, op}` and `body`.
pub fn request_frame(xid: i32, op: i32, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::frame();
    w.i32(xid).i32(op).raw(body);
    w.finish_frame()
}

/// The 45-byte ConnectRequest payload a Java client sends for a new session.
pub fn connect_payload() -> Vec<u8> {
    let mut w = Writer::new();
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: SESSION_TIMEOUT_MS,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    }
    .write(&mut w);
    w.buf
}

/// How a connection the test expected the server to close ended.
#[derive(Debug)]
pub struct Closed {
    /// What the server sent before closing.
    pub bytes: Vec<u8>,
}

/// Reads until the server closes the connection (EOF or reset) and returns what it sent.
/// Fails if it is still open after CLOSE_TIMEOUT.
pub fn expect_closed(s: &mut TcpStream) -> Result<Closed, String> {
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(format!(
                "connection still open after {CLOSE_TIMEOUT:?} ({} bytes received)",
                bytes.len()
            ));
        }
        s.set_read_timeout(Some(deadline - now))
            .map_err(|e| e.to_string())?;
        match s.read(&mut buf) {
            Ok(0) => return Ok(Closed { bytes }),
            Ok(n) => {
                bytes.extend_from_slice(&buf[..n]);
                if bytes.len() > DRAIN_BYTES_MAX {
                    return Err("server keeps sending; not closed".into());
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::BrokenPipe
                ) =>
            {
                return Ok(Closed { bytes })
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read error: {e}")),
        }
    }
}

/// Reads exactly one frame (length prefix included in the result) within CLOSE_TIMEOUT.
pub fn read_frame_raw(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    s.set_read_timeout(Some(CLOSE_TIMEOUT))?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let n = i32::from_be_bytes(len);
    if n < 0 || n as usize > client::FRAME_BYTES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame length {n}"),
        ));
    }
    let mut out = len.to_vec();
    out.resize(4 + n as usize, 0);
    s.read_exact(&mut out[4..])?;
    Ok(out)
}

/// True if the server has neither closed the connection nor sent anything within `wait`.
pub fn still_open_and_quiet(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).expect("set timeout");
    let mut b = [0u8; 1];
    match s.peek(&mut b) {
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
    }
}

/// Splits a byte string into frames' payloads; a trailing partial frame is returned apart.
pub fn split_frames(mut bytes: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let n = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if n < 0 || bytes.len() - 4 < n as usize {
            break;
        }
        out.push(bytes[4..4 + n as usize].to_vec());
        bytes = &bytes[4 + n as usize..];
    }
    (out, bytes.to_vec())
}

/// Writes everything, ignoring a reset (the server may close first; that is the point).
pub fn write_ignoring_reset(s: &mut TcpStream, bytes: &[u8]) {
    let _ = s.write_all(bytes);
}

/// Half-closes our side so the server sees EOF.
pub fn shut_write(s: &TcpStream) {
    let _ = s.shutdown(Shutdown::Write);
}

/// A small deterministic PRNG (SplitMix64), so every hostile run can be replayed by seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// Random bytes, fewer than `n` of them.
    pub fn bytes_below(&mut self, n: u64) -> Vec<u8> {
        let len = self.below(n) as usize;
        self.bytes(len)
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// Starts the real binary on a zoo.cfg the caller wrote, with stdout and stderr going to
/// `log` (or piped when `None`), and waits until `srvr` on `port` reports a Mode. For tests
/// that restart a server on the same data directory, which `TestServer` (one server, one
/// temporary directory) does not cover. The caller owns the child and kills and waits it.
#[allow(clippy::zombie_processes)]
pub fn spawn_server(cfg: &Path, port: u16, log: Option<&Path>) -> Child {
    let (out, err) = match log {
        Some(p) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .expect("open server log");
            (
                Stdio::from(f.try_clone().expect("clone log handle")),
                Stdio::from(f),
            )
        }
        None => (Stdio::null(), Stdio::piped()),
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_zk"))
        .args(["server", "--config"])
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn zk server");
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("zk server exited during start-up: {status}");
        }
        if client::four_letter_word(&format!("127.0.0.1:{port}"), "srvr", Duration::from_secs(2))
            .is_ok_and(|t| t.contains("Mode:"))
        {
            return child;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("zk server did not start within {STARTUP_TIMEOUT:?}");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Runs `zk snapshot verify` on a data directory and panics with its output on failure.
pub fn assert_verifies(data_dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_zk"))
        .args(["snapshot", "verify", "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("run zk snapshot verify");
    assert!(
        out.status.success(),
        "zk snapshot verify failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
