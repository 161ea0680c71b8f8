//! The load generator's connection driver: many ZooKeeper sessions per thread, many requests
//! in flight per session, one mio event loop per thread. A `Driver` (a workload, the setup or
//! the cleanup) decides what to send; the engine frames requests, writes each session's
//! queued requests in one write per loop turn, splits replies into frames, matches them to
//! the outstanding requests in order (ZooKeeper answers a session's requests in the order it
//! sent them), times them, and hands replies and watch events back to the driver. It also
//! pings idle sessions, closes every session at the end of a phase (so ephemerals go at
//! once), and runs the threads of a phase in step: connect, then start together, then drain.
//!
//! One request's latency is measured from the moment its bytes are handed to the socket (the
//! stamp is taken just before the write, not when the driver queued it) to the moment the
//! read that completed its reply returned. A request counts in the results when it was sent
//! inside the measurement window (after the warm-up, before the end); a reply that comes
//! after the end still counts, so the last requests are not cut short.
//!
//! It never blocks except in the connect handshake and in `poll`, never panics on what a
//! server sends (a garbled reply or an out-of-order xid loses that one session, whose
//! outstanding requests count as ConnectionLoss), and never reconnects: a benchmark that
//! loses sessions says so rather than hiding it. It corresponds to the I/O half of Apache
//! ZooKeeper's ClientCnxnSocketNIO, without the reconnection and watch bookkeeping.

use super::stats::{Op, Stats};
use crate::client::codec::{self, WatchEvent};
use crate::proto::consts::{op, xid};
use crate::proto::frame::{self, FrameCheck};
use crate::proto::{Code, ConnectRequest, ConnectResponse, Reader, ReplyHeader, Writer};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};
use std::collections::VecDeque;
use std::io::{self, IsTerminal, Read, Write};
use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long opening a connection and its handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest reply frame accepted. Far above jute.maxbuffer because cleanup lists
/// directories that a long create run filled with hundreds of thousands of children, and
/// servers send such replies even though the Java client would refuse them.
pub const REPLY_FRAME_BYTES_MAX: usize = 64 << 20;
/// The largest ConnectResponse accepted (it is 37 bytes).
const CONNECT_RESPONSE_BYTES_MAX: usize = 1024;
/// How much one read from a socket asks for.
const READ_CHUNK_BYTES: usize = 256 << 10;
/// The longest `poll` waits, so the stop time, pings and progress are looked at this often.
const TICK: Duration = Duration::from_millis(10);
/// How often a thread adds its numbers into the phase's shared ones (for the progress line).
const MERGE_INTERVAL: Duration = Duration::from_millis(200);
/// How long a thread waits, once the run is over, for the replies still outstanding; past it
/// they are abandoned and reported as such.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long closing the sessions at the end of a phase may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How many readiness events one `poll` returns at most.
const EVENTS_CAPACITY: usize = 1024;
/// The session password a new session sends (16 zero bytes, as the Java client does).
const PASSWORD_LEN: usize = 16;
/// How often the live progress line is redrawn.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// How often the main thread looks at the interrupt flag and the threads' progress.
const MAIN_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A small deterministic PRNG (SplitMix64): key choice and read/write mix only, so quality
/// needs are modest and no crate is needed.
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

    /// Uniform in `0..n`; 0 when n is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// When a phase started and which requests count in its results.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Instant,
    /// Requests sent before this are warm-up and not recorded.
    pub measure_from: Instant,
    /// No new work starts at or after this; `None` runs until the driver is done.
    pub measure_until: Option<Instant>,
}

impl Window {
    fn counts(&self, sent: Instant) -> bool {
        sent >= self.measure_from && self.measure_until.map_or(true, |u| sent < u)
    }
}

/// A reply handed to a driver.
pub struct Reply<'a> {
    /// The session's index within the thread.
    pub session: usize,
    pub op: Op,
    /// What the driver attached when it sent the request.
    pub tag: u64,
    /// The ZooKeeper error code; ConnectionLoss (-4) when the session was lost.
    pub err: i32,
    pub body: &'a [u8],
    pub sent: Instant,
    pub at: Instant,
}

/// What a workload, the setup or the cleanup does with its sessions.
pub trait Driver: Send {
    /// Sends the first requests.
    fn start(&mut self, cx: &mut Cx<'_>);
    /// A reply (or a lost request) came back; usually sends the next request.
    fn on_reply(&mut self, cx: &mut Cx<'_>, r: &Reply<'_>);
    /// A watch notification arrived on `session`.
    fn on_event(&mut self, _cx: &mut Cx<'_>, _session: usize, _ev: &WatchEvent) {}
    /// Whether the driver waits for something other than a reply (a watch event), so the
    /// thread must not finish although no request is outstanding.
    fn busy(&self) -> bool {
        false
    }
}

struct Pending {
    xid: i32,
    op: Op,
    tag: u64,
    sent: Instant,
}

struct Sess {
    stream: TcpStream,
    /// The session's number across all threads of the phase.
    global: usize,
    input: Vec<u8>,
    output: Vec<u8>,
    out_pos: usize,
    pending: VecDeque<Pending>,
    /// How many entries at the back of `pending` have not been handed to the socket yet, so
    /// their send time is still to be stamped.
    unstamped: usize,
    next_xid: i32,
    last_send: Instant,
    ping_interval: Duration,
    alive: bool,
    /// closeSession was sent; nothing more may be.
    closing: bool,
    dirty: bool,
}

impl Sess {
    fn take_xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = if x == i32::MAX { 1 } else { x + 1 };
        x
    }

    /// Appends one request frame to the output.
    fn put_frame(&mut self, x: i32, code: i32, body: &[u8]) {
        let len = (8 + body.len()) as i32;
        self.output.extend_from_slice(&len.to_be_bytes());
        self.output.extend_from_slice(&x.to_be_bytes());
        self.output.extend_from_slice(&code.to_be_bytes());
        self.output.extend_from_slice(body);
    }
}

/// Opens one session with a blocking handshake and returns the socket, ready for mio, and
/// the negotiated timeout.
fn connect_session(addr: &str, timeout_ms: i32) -> io::Result<(std::net::TcpStream, i32)> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address"));
    let mut stream = None;
    for sa in addr.to_socket_addrs()? {
        match std::net::TcpStream::connect_timeout(&sa, CONNECT_TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut s = stream.ok_or(last)?;
    // Requests are small and latency is what is measured: Nagle would only add delay.
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(CONNECT_TIMEOUT))?;
    s.set_write_timeout(Some(CONNECT_TIMEOUT))?;
    let mut w = Writer::frame();
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms,
        session_id: 0,
        passwd: vec![0; PASSWORD_LEN],
        read_only: Some(false),
    }
    .write(&mut w);
    s.write_all(&w.finish_frame())?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let n = i32::from_be_bytes(len);
    if n < 0 || n as usize > CONNECT_RESPONSE_BYTES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("ConnectResponse length {n}"),
        ));
    }
    let mut payload = vec![0; n as usize];
    s.read_exact(&mut payload)?;
    let resp = ConnectResponse::read(&payload)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if resp.timeout_ms <= 0 {
        return Err(io::Error::other("the server refused the session"));
    }
    s.set_read_timeout(None)?;
    s.set_write_timeout(None)?;
    s.set_nonblocking(true)?;
    Ok((s, resp.timeout_ms))
}

/// One thread's sessions and numbers, as drivers see them.
pub struct Cx<'a> {
    sessions: Vec<Sess>,
    registry: Registry,
    /// The time of the latest loop turn or read; what `stopping` compares with.
    pub now: Instant,
    window: Window,
    interrupted: &'a AtomicBool,
    stats: Stats,
    replies: u64,
    errors: u64,
    pub rng: Rng,
    dirty: Vec<usize>,
    pending_total: usize,
    scratch: Vec<u8>,
    lost: u64,
    lost_reason: Option<String>,
}

impl Cx<'_> {
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The session's number across all threads of the phase.
    pub fn global(&self, s: usize) -> usize {
        self.sessions[s].global
    }

    pub fn alive(&self, s: usize) -> bool {
        self.sessions[s].alive && !self.sessions[s].closing
    }

    /// Requests outstanding on session `s`.
    pub fn outstanding(&self, s: usize) -> usize {
        self.sessions[s].pending.len()
    }

    /// Whether the run is over (its time is up, or the user pressed Ctrl-C): drivers start
    /// no new work, but finish what they started (a lock taken is released).
    pub fn stopping(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
            || self.window.measure_until.is_some_and(|u| self.now >= u)
    }

    /// Queues a request on session `s`; false if that session is gone.
    pub fn send(&mut self, s: usize, op: Op, code: i32, body: &[u8], tag: u64) -> bool {
        let sess = &mut self.sessions[s];
        if !sess.alive || sess.closing {
            return false;
        }
        let x = sess.take_xid();
        sess.put_frame(x, code, body);
        sess.pending.push_back(Pending {
            xid: x,
            op,
            tag,
            sent: self.now,
        });
        sess.unstamped += 1;
        self.pending_total += 1;
        self.mark_dirty(s);
        true
    }

    /// Records a derived measurement (a recipe round trip, a watch event) that started at
    /// `sent`; it counts only if `sent` is inside the measurement window.
    pub fn record(&mut self, op: Op, sent: Instant, at: Instant, err: i32) {
        let ok = err == 0 || op.benign(err);
        if !ok {
            self.errors += 1;
        }
        if !self.window.counts(sent) {
            return;
        }
        if ok {
            let ns = at.saturating_duration_since(sent).as_nanos();
            self.stats.ok(op, u64::try_from(ns).unwrap_or(u64::MAX));
        } else {
            self.stats.error(op, err);
        }
    }

    fn mark_dirty(&mut self, s: usize) {
        let sess = &mut self.sessions[s];
        if !sess.dirty {
            sess.dirty = true;
            self.dirty.push(s);
        }
    }

    /// Writes what every touched session has queued, one write per session.
    fn flush_dirty(&mut self, driver: &mut dyn Driver) {
        while let Some(s) = self.dirty.pop() {
            self.sessions[s].dirty = false;
            if let Err(reason) = self.flush(s) {
                self.lose(s, driver, reason);
            }
        }
    }

    fn flush(&mut self, s: usize) -> Result<(), String> {
        let sess = &mut self.sessions[s];
        if !sess.alive {
            return Ok(());
        }
        if sess.unstamped > 0 {
            // The send time is when the bytes go to the socket, not when they were queued.
            let now = Instant::now();
            let n = sess.pending.len();
            for p in sess.pending.range_mut(n - sess.unstamped..) {
                p.sent = now;
            }
            sess.unstamped = 0;
        }
        while sess.out_pos < sess.output.len() {
            match sess.stream.write(&sess.output[sess.out_pos..]) {
                Ok(0) => return Err("the connection accepts no more bytes".into()),
                Ok(n) => {
                    sess.out_pos += n;
                    sess.last_send = self.now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write failed: {e}")),
            }
        }
        if sess.out_pos == sess.output.len() {
            sess.output.clear();
            sess.out_pos = 0;
        }
        Ok(())
    }

    /// Sends a ping on every session that has sent nothing for a third of its timeout, so
    /// a session waiting on a watch event does not expire.
    fn ping_idle(&mut self) {
        for s in 0..self.sessions.len() {
            let sess = &mut self.sessions[s];
            if sess.alive
                && !sess.closing
                && self.now.saturating_duration_since(sess.last_send) >= sess.ping_interval
            {
                sess.put_frame(xid::PING, op::PING, &[]);
                sess.last_send = self.now;
                self.mark_dirty(s);
            }
        }
    }

    /// Reads everything the socket has and dispatches the whole frames.
    fn on_readable(&mut self, s: usize, driver: &mut dyn Driver) {
        loop {
            let sess = &mut self.sessions[s];
            if !sess.alive {
                return;
            }
            match sess.stream.read(&mut self.scratch) {
                Ok(0) => {
                    if sess.closing && sess.pending.is_empty() {
                        self.finish_close(s);
                    } else {
                        self.lose(s, driver, "the server closed the connection".into());
                    }
                    return;
                }
                Ok(n) => {
                    sess.input.extend_from_slice(&self.scratch[..n]);
                    let at = Instant::now();
                    self.now = at;
                    if !self.dispatch(s, at, driver) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.lose(s, driver, format!("read failed: {e}"));
                    return;
                }
            }
        }
    }

    /// Handles the whole frames in session `s`'s input; false if the session is gone.
    fn dispatch(&mut self, s: usize, at: Instant, driver: &mut dyn Driver) -> bool {
        let input = std::mem::take(&mut self.sessions[s].input);
        let mut pos = 0;
        let mut failure = None;
        while self.sessions[s].alive {
            match frame::check(&input[pos..], REPLY_FRAME_BYTES_MAX) {
                FrameCheck::Incomplete => break,
                FrameCheck::TooLarge(n) => {
                    failure = Some(format!("reply frame length {n} is out of range"));
                    break;
                }
                FrameCheck::Complete { len } => {
                    let payload = &input[pos + 4..pos + 4 + len];
                    pos += 4 + len;
                    if let Err(e) = self.frame(s, payload, at, driver) {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        if let Some(reason) = failure {
            self.lose(s, driver, reason);
            return false;
        }
        let sess = &mut self.sessions[s];
        if !sess.alive {
            return false;
        }
        // Keep only the incomplete tail; in the usual case that is nothing, and the buffer's
        // capacity is reused.
        let mut input = input;
        input.drain(..pos);
        sess.input = input;
        true
    }

    fn frame(
        &mut self,
        s: usize,
        payload: &[u8],
        at: Instant,
        driver: &mut dyn Driver,
    ) -> Result<(), String> {
        let mut r = Reader::new(payload);
        let hdr = ReplyHeader::read(&mut r).map_err(|e| format!("bad reply header: {e}"))?;
        let body = r.rest();
        match hdr.xid {
            xid::NOTIFICATION => {
                let ev = codec::read_watch_event(body, hdr.zxid)
                    .map_err(|e| format!("bad notification: {e}"))?;
                driver.on_event(self, s, &ev);
            }
            // Pings are not on the pending queue, as in the Java client.
            xid::PING => {}
            x => {
                let sess = &mut self.sessions[s];
                let p = sess
                    .pending
                    .pop_front()
                    .ok_or_else(|| format!("reply for xid {x} with nothing outstanding"))?;
                if p.xid != x {
                    return Err(format!("reply for xid {x} while xid {} was next", p.xid));
                }
                self.pending_total -= 1;
                self.replies += 1;
                if p.op == Op::Close {
                    self.finish_close(s);
                    return Ok(());
                }
                if !p.op.recorded_by_driver() {
                    self.record(p.op, p.sent, at, hdr.err);
                }
                let reply = Reply {
                    session: s,
                    op: p.op,
                    tag: p.tag,
                    err: hdr.err,
                    body,
                    sent: p.sent,
                    at,
                };
                driver.on_reply(self, &reply);
            }
        }
        Ok(())
    }

    /// Drops a session whose connection failed: its outstanding requests count as
    /// ConnectionLoss, and the driver hears of each so it can drop what depended on them.
    fn lose(&mut self, s: usize, driver: &mut dyn Driver, reason: String) {
        let sess = &mut self.sessions[s];
        if !sess.alive {
            return;
        }
        sess.alive = false;
        let _ = self.registry.deregister(&mut sess.stream);
        let _ = sess.stream.shutdown(std::net::Shutdown::Both);
        let pending = std::mem::take(&mut sess.pending);
        let closing = sess.closing;
        sess.unstamped = 0;
        self.pending_total -= pending.len();
        if !closing {
            self.lost += 1;
            if self.lost_reason.is_none() {
                self.lost_reason = Some(format!("session {}: {reason}", sess.global));
            }
        }
        let at = Instant::now();
        let lost = Code::ConnectionLoss.code();
        for p in pending.into_iter().filter(|p| p.op != Op::Close) {
            if !p.op.recorded_by_driver() {
                self.record(p.op, p.sent, at, lost);
            }
            let reply = Reply {
                session: s,
                op: p.op,
                tag: p.tag,
                err: lost,
                body: &[],
                sent: p.sent,
                at,
            };
            driver.on_reply(self, &reply);
        }
    }

    fn finish_close(&mut self, s: usize) {
        let sess = &mut self.sessions[s];
        sess.alive = false;
        let _ = self.registry.deregister(&mut sess.stream);
        let _ = sess.stream.shutdown(std::net::Shutdown::Both);
    }

    /// Sends closeSession on every live session and waits (bounded) for the answers, so
    /// the server drops the sessions' ephemerals and watches now rather than at expiry.
    fn close_all(&mut self, poll: &mut Poll, events: &mut Events, driver: &mut dyn Driver) {
        for s in 0..self.sessions.len() {
            let sess = &mut self.sessions[s];
            if !sess.alive || sess.closing {
                continue;
            }
            let x = sess.take_xid();
            sess.put_frame(x, op::CLOSE_SESSION, &[]);
            sess.pending.push_back(Pending {
                xid: x,
                op: Op::Close,
                tag: 0,
                sent: self.now,
            });
            sess.unstamped += 1;
            sess.closing = true;
            self.pending_total += 1;
            self.mark_dirty(s);
        }
        self.flush_dirty(driver);
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        while self.sessions.iter().any(|s| s.alive) && Instant::now() < deadline {
            if poll.poll(events, Some(TICK)).is_err() {
                break;
            }
            for ev in events.iter() {
                let s = ev.token().0;
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.on_readable(s, driver);
                }
                if ev.is_writable() {
                    self.mark_dirty(s);
                }
            }
            self.now = Instant::now();
            self.flush_dirty(driver);
        }
        for s in 0..self.sessions.len() {
            if self.sessions[s].alive {
                self.finish_close(s);
            }
        }
    }

    /// Adds this thread's numbers since the last call into the phase's shared ones.
    fn merge_into(&mut self, shared: &Shared) {
        if let Ok(mut st) = shared.stats.lock() {
            st.merge(&self.stats);
        }
        self.stats.clear();
        shared.replies.fetch_add(self.replies, Ordering::Relaxed);
        shared.errors.fetch_add(self.errors, Ordering::Relaxed);
        self.replies = 0;
        self.errors = 0;
    }
}

/// What one thread runs: which sessions (by global number) it owns.
pub struct ThreadPlan {
    pub sessions: Vec<usize>,
}

/// Splits `n` sessions over at most `threads` threads in contiguous blocks of `unit`
/// sessions (a watch pair must stay in one thread); the block is never split.
pub fn plan_threads(n: usize, threads: usize, unit: usize) -> Vec<ThreadPlan> {
    let unit = unit.max(1);
    let blocks = n.div_ceil(unit);
    let threads = threads.clamp(1, blocks.max(1));
    let mut plans: Vec<ThreadPlan> = (0..threads)
        .map(|_| ThreadPlan {
            sessions: Vec::new(),
        })
        .collect();
    for b in 0..blocks {
        let t = b * threads / blocks.max(1);
        let end = ((b + 1) * unit).min(n);
        plans[t].sessions.extend(b * unit..end);
    }
    plans.retain(|p| !p.sessions.is_empty());
    plans
}

/// How one phase runs.
pub struct PhaseConfig<'a> {
    pub servers: &'a [String],
    pub session_timeout_ms: i32,
    pub warmup: Duration,
    /// How long the measured part lasts; `None` runs until every driver is done.
    pub duration: Option<Duration>,
    /// The name shown on the live progress line; `None` for no progress line.
    pub progress: Option<&'a str>,
    pub interrupted: &'a AtomicBool,
}

/// What a phase measured.
pub struct PhaseResult {
    pub stats: Stats,
    /// The length of the measurement window actually run (shorter when interrupted).
    pub measured: Duration,
    /// From the start (warm-up included) to the last thread's end.
    pub elapsed: Duration,
    /// CPU time this process used over `elapsed`, in seconds (None where /proc is missing):
    /// near `elapsed` times the cores it may use, the load generator was the bottleneck.
    pub cpu_secs: Option<f64>,
    /// Requests still outstanding when the drain timeout passed.
    pub abandoned: u64,
    /// Sessions whose connection failed during the phase, and the first reason.
    pub lost_sessions: u64,
    pub lost_reason: Option<String>,
    pub interrupted: bool,
}

struct Shared {
    stats: Mutex<Stats>,
    replies: AtomicU64,
    errors: AtomicU64,
    abandoned: AtomicU64,
    lost: AtomicU64,
    lost_reason: Mutex<Option<String>>,
    finished: AtomicUsize,
    window: OnceLock<Window>,
    abort: AtomicBool,
    setup_error: Mutex<Option<String>>,
    barrier: Barrier,
}

impl Shared {
    fn fail(&self, msg: String) {
        if let Ok(mut e) = self.setup_error.lock() {
            e.get_or_insert(msg);
        }
        self.abort.store(true, Ordering::SeqCst);
    }
}

/// Runs one phase: every plan on its own thread with its driver. Fails only when sessions
/// cannot be opened; what goes wrong later is in the result.
pub fn run_phase(
    cfg: &PhaseConfig<'_>,
    work: Vec<(ThreadPlan, Box<dyn Driver>)>,
) -> Result<PhaseResult, String> {
    let threads = work.len();
    let shared = Shared {
        stats: Mutex::new(Stats::new()),
        replies: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        abandoned: AtomicU64::new(0),
        lost: AtomicU64::new(0),
        lost_reason: Mutex::new(None),
        finished: AtomicUsize::new(0),
        window: OnceLock::new(),
        abort: AtomicBool::new(false),
        setup_error: Mutex::new(None),
        barrier: Barrier::new(threads + 1),
    };
    let mut interrupted_at = None;
    let mut finished_at = Instant::now();
    let mut cpu_at_start = None;
    let window = std::thread::scope(|scope| {
        for (i, (plan, driver)) in work.into_iter().enumerate() {
            let shared = &shared;
            std::thread::Builder::new()
                .name(format!("bench-{i}"))
                .spawn_scoped(scope, move || {
                    thread_main(cfg, shared, i as u64, plan, driver)
                })
                .expect("spawn a bench thread");
        }
        // Every thread has opened its sessions (or failed) before the clock starts.
        shared.barrier.wait();
        let start = Instant::now();
        let window = Window {
            start,
            measure_from: start + cfg.warmup,
            measure_until: cfg.duration.map(|d| start + cfg.warmup + d),
        };
        let _ = shared.window.set(window);
        cpu_at_start = process_cpu_secs();
        shared.barrier.wait();
        if shared.abort.load(Ordering::SeqCst) {
            return window;
        }
        let mut progress = Progress::new(cfg.progress, start);
        while shared.finished.load(Ordering::SeqCst) < threads {
            std::thread::sleep(MAIN_POLL_INTERVAL);
            let now = Instant::now();
            if interrupted_at.is_none() && cfg.interrupted.load(Ordering::Relaxed) {
                interrupted_at = Some(now);
            }
            progress.tick(now, &window, &shared);
        }
        progress.clear();
        finished_at = Instant::now();
        window
    });
    if let Some(e) = shared.setup_error.lock().ok().and_then(|mut e| e.take()) {
        return Err(e);
    }
    let end = [window.measure_until, interrupted_at, Some(finished_at)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(finished_at);
    Ok(PhaseResult {
        stats: shared.stats.into_inner().unwrap_or_default(),
        measured: end.saturating_duration_since(window.measure_from),
        elapsed: finished_at.saturating_duration_since(window.start),
        cpu_secs: process_cpu_secs()
            .zip(cpu_at_start)
            .map(|(end, start)| (end - start).max(0.0)),
        abandoned: shared.abandoned.load(Ordering::SeqCst),
        lost_sessions: shared.lost.load(Ordering::SeqCst),
        lost_reason: shared.lost_reason.into_inner().ok().flatten(),
        interrupted: interrupted_at.is_some(),
    })
}

fn thread_main(
    cfg: &PhaseConfig<'_>,
    shared: &Shared,
    index: u64,
    plan: ThreadPlan,
    mut driver: Box<dyn Driver>,
) {
    let mut sessions = Vec::with_capacity(plan.sessions.len());
    let poll = Poll::new().and_then(|p| p.registry().try_clone().map(|r| (p, r)));
    let (mut poll, registry) = match poll {
        Ok(p) => p,
        Err(e) => {
            shared.fail(format!("cannot create a poll instance: {e}"));
            shared.barrier.wait();
            shared.barrier.wait();
            shared.finished.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    for &g in &plan.sessions {
        if shared.abort.load(Ordering::SeqCst) {
            break;
        }
        let addr = &cfg.servers[g % cfg.servers.len()];
        let opened = connect_session(addr, cfg.session_timeout_ms).and_then(|(s, t)| {
            let mut stream = TcpStream::from_std(s);
            registry.register(
                &mut stream,
                Token(sessions.len()),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok((stream, t))
        });
        match opened {
            Ok((stream, timeout_ms)) => sessions.push(Sess {
                stream,
                global: g,
                input: Vec::new(),
                output: Vec::new(),
                out_pos: 0,
                pending: VecDeque::new(),
                unstamped: 0,
                next_xid: 1,
                last_send: Instant::now(),
                ping_interval: Duration::from_millis(timeout_ms.max(3) as u64 / 3),
                alive: true,
                closing: false,
                dirty: false,
            }),
            Err(e) => shared.fail(format!("cannot open a session with {addr}: {e}")),
        }
    }
    shared.barrier.wait();
    shared.barrier.wait();
    let window = match shared.window.get() {
        Some(w) if !shared.abort.load(Ordering::SeqCst) => *w,
        _ => {
            shared.finished.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    let mut cx = Cx {
        sessions,
        registry,
        now: Instant::now(),
        window,
        interrupted: cfg.interrupted,
        stats: Stats::new(),
        replies: 0,
        errors: 0,
        rng: Rng::new(0x5EED ^ (index << 32) ^ u64::from(std::process::id())),
        dirty: Vec::new(),
        pending_total: 0,
        scratch: vec![0; READ_CHUNK_BYTES],
        lost: 0,
        lost_reason: None,
    };
    let driver = driver.as_mut();
    let mut events = Events::with_capacity(EVENTS_CAPACITY);
    driver.start(&mut cx);
    cx.flush_dirty(driver);
    let mut last_merge = cx.now;
    let mut stop_seen: Option<Instant> = None;
    loop {
        if let Err(e) = poll.poll(&mut events, Some(TICK)) {
            if e.kind() != io::ErrorKind::Interrupted {
                shared.fail(format!("poll failed: {e}"));
                break;
            }
        }
        cx.now = Instant::now();
        for ev in events.iter() {
            let s = ev.token().0;
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                cx.on_readable(s, driver);
            }
            if ev.is_writable() {
                cx.mark_dirty(s);
            }
        }
        cx.now = Instant::now();
        cx.ping_idle();
        cx.flush_dirty(driver);
        if stop_seen.is_none() && cx.stopping() {
            stop_seen = Some(cx.now);
        }
        if cx.now.saturating_duration_since(last_merge) >= MERGE_INTERVAL {
            cx.merge_into(shared);
            last_merge = cx.now;
        }
        if cx.pending_total == 0 && !driver.busy() {
            break;
        }
        if !cx.sessions.iter().any(|s| s.alive) {
            break;
        }
        if stop_seen.is_some_and(|t| cx.now.saturating_duration_since(t) >= DRAIN_TIMEOUT) {
            shared
                .abandoned
                .fetch_add(cx.pending_total as u64, Ordering::SeqCst);
            break;
        }
    }
    cx.close_all(&mut poll, &mut events, driver);
    cx.merge_into(shared);
    shared.lost.fetch_add(cx.lost, Ordering::SeqCst);
    if let (Some(r), Ok(mut slot)) = (cx.lost_reason.take(), shared.lost_reason.lock()) {
        slot.get_or_insert(r);
    }
    shared.finished.fetch_add(1, Ordering::SeqCst);
}

/// Linux's USER_HZ: the unit of the CPU times in /proc/<pid>/stat, fixed at 100 for user
/// space on every architecture Linux runs on.
const USER_HZ: f64 = 100.0;

/// CPU seconds (user + system, all threads) this process has used, from /proc/self/stat.
fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: state is
    // the first, utime the 12th and stime the 13th.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// The live progress line on stderr, drawn only when stderr is a terminal.
struct Progress<'a> {
    label: Option<&'a str>,
    start: Instant,
    next: Instant,
    last_at: Instant,
    last_replies: u64,
    drawn: bool,
}

impl<'a> Progress<'a> {
    fn new(label: Option<&'a str>, start: Instant) -> Progress<'a> {
        let label = label.filter(|_| io::stderr().is_terminal());
        Progress {
            label,
            start,
            next: start + PROGRESS_INTERVAL,
            last_at: start,
            last_replies: 0,
            drawn: false,
        }
    }

    fn tick(&mut self, now: Instant, window: &Window, shared: &Shared) {
        let Some(label) = self.label else { return };
        if now < self.next {
            return;
        }
        self.next += PROGRESS_INTERVAL;
        let replies = shared.replies.load(Ordering::Relaxed);
        let errors = shared.errors.load(Ordering::Relaxed);
        let dt = now.saturating_duration_since(self.last_at).as_secs_f64();
        let rate = if dt > 0.0 {
            (replies - self.last_replies) as f64 / dt
        } else {
            0.0
        };
        self.last_at = now;
        self.last_replies = replies;
        let p99 = shared
            .stats
            .lock()
            .map(|s| s.reported_total())
            .ok()
            .filter(|h| h.count() > 0)
            .map(|h| format!("{:.3} ms", h.quantile_ns(0.99) as f64 / 1e6))
            .unwrap_or_else(|| "-".into());
        let phase = if now < window.measure_from {
            " (warm-up)"
        } else if window.measure_until.is_some_and(|u| now >= u) {
            " (draining)"
        } else {
            ""
        };
        eprint!(
            "\r\x1b[K[{:>4.0}s] {label}{phase}: {rate:.0} ops/s, {errors} errors, p99 {p99}",
            now.saturating_duration_since(self.start).as_secs_f64()
        );
        let _ = io::stderr().flush();
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[K");
            let _ = io::stderr().flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_keep_units_together_and_cover_everything() {
        let p = plan_threads(10, 3, 2);
        assert_eq!(p.len(), 3);
        let all: Vec<usize> = p.iter().flat_map(|t| t.sessions.clone()).collect();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        for t in &p {
            assert_eq!(
                t.sessions.len() % 2,
                0,
                "a pair was split: {:?}",
                t.sessions
            );
        }
        assert_eq!(plan_threads(1, 8, 1).len(), 1);
        assert_eq!(plan_threads(4, 1, 1)[0].sessions, vec![0, 1, 2, 3]);
        assert_eq!(plan_threads(5, 2, 1).len(), 2);
    }

    #[test]
    fn rng_is_uniform_enough() {
        let mut r = Rng::new(7);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[r.below(10) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(r.below(0), 0);
        let u = r.unit();
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn cpu_time_is_read_and_grows() {
        let a = process_cpu_secs().expect("/proc/self/stat");
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let b = process_cpu_secs().unwrap();
        assert!(b >= a, "{a} -> {b}");
    }

    #[test]
    fn window_counts_only_inside() {
        let start = Instant::now();
        let w = Window {
            start,
            measure_from: start + Duration::from_secs(1),
            measure_until: Some(start + Duration::from_secs(2)),
        };
        assert!(!w.counts(start));
        assert!(w.counts(start + Duration::from_millis(1500)));
        assert!(!w.counts(start + Duration::from_secs(2)));
    }
}
