//! The mio event loop: the client listener, connections, timers and signals. The only module
//! with sockets and the real clock. It splits each connection's byte stream into frames
//! (checking the length before allocating), recognises four-letter words on fresh
//! connections, hands frames to the pure `Server`, and writes what the server queues — all
//! of a connection's pending replies in one write per loop turn. Corresponds to Apache's
//! NIOServerCnxnFactory and NIOServerCnxn.
//!
//! Bounds: a frame larger than jute.maxbuffer closes its connection; a connection whose
//! unsent output passes `OUTPUT_BYTES_MAX` is not read from until it drains, so a client
//! that pipelines requests without reading replies holds a bounded number of them.

use crate::config::Config;
use crate::proto::frame::{self, FrameCheck};
use crate::server::fourlw::{self, Env};
use crate::server::{ConnId, Now, Output, Server};
use crate::zab;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod durability;
pub mod ensemble;
pub mod metrics;
pub mod peer;
pub mod resolve;

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
const WAKER: Token = Token(2);
const FIRST_CONN: u64 = 3;
/// Unsent reply bytes above which a connection is not read from until it drains.
pub const OUTPUT_BYTES_MAX: usize = 4 << 20;
/// How much is read from one socket per readiness event before others get a turn.
const READ_CHUNK_BYTES: usize = 64 << 10;
/// zk's own four-letter word for `zk snapshot save`. As a frame length it is far over any
/// jute.maxbuffer, so no ZooKeeper client frame can start with it.
const SNAP_WORD: &[u8; 4] = b"snap";
/// The loop wakes at least this often to expire sessions and run container checks.
const WAKE_INTERVAL: Duration = Duration::from_millis(50);

/// How often the metrics endpoint's figures are refreshed.
const METRICS_INTERVAL: Duration = Duration::from_secs(1);

struct Metrics {
    hub: std::sync::Arc<metrics::MetricsHub>,
    latency: metrics::LatencyHistogram,
    last_update: Instant,
}

struct ConnIo {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    output_pos: usize,
    /// The handshake (or a four-letter word) has been seen.
    started: bool,
    /// Close once the output has drained.
    closing: bool,
    /// Reading stopped at the input cap before the socket was drained; edge-triggered
    /// readiness will not fire again, so the loop must come back to it.
    read_blocked: bool,
    writable_interest: bool,
}

/// A standalone server, or an ensemble member (its server inside its replica).
enum Node {
    Standalone(Box<Server>),
    Ensemble(Box<ensemble::EnsembleNode>),
}

impl Node {
    fn server(&self) -> &Server {
        match self {
            Node::Standalone(s) => s,
            Node::Ensemble(e) => &e.replica.server,
        }
    }

    fn server_mut(&mut self) -> &mut Server {
        match self {
            Node::Standalone(s) => s,
            Node::Ensemble(e) => &mut e.replica.server,
        }
    }
}

/// Runs a server until SIGTERM or SIGINT. Returns once sockets are closed.
pub struct Runtime {
    poll: Poll,
    listener: TcpListener,
    conns: HashMap<ConnId, ConnIo>,
    next_id: u64,
    node: Node,
    /// Connections with output collected but not yet written.
    unflushed: Vec<ConnId>,
    start: Instant,
    env: Env,
    frame_bytes_max: usize,
    signals: signal_hook_mio::v1_0::Signals,
    durability: Option<durability::Durability>,
    metrics: Option<Metrics>,
    _locks: Vec<crate::storage::DirLock>,
    pub local_addr: SocketAddr,
}

fn now(start: Instant) -> Now {
    Now {
        wall_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
        mono_ms: start.elapsed().as_millis() as u64,
    }
}

fn random_secret() -> [u8; 32] {
    let mut s = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut s);
    }
    // Fall back to time and pid if /dev/urandom is unreadable: weak, but never all-zero.
    if s == [0u8; 32] {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(1);
        s[..16].copy_from_slice(&t.to_le_bytes());
        s[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    }
    s
}

fn dir_size(p: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if let Ok(m) = e.metadata() {
                if m.is_dir() {
                    total += dir_size(&e.path());
                } else {
                    total += m.len();
                }
            }
        }
    }
    total
}

fn fd_counts() -> (u64, u64) {
    let open = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    let max = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0);
    (open, max)
}

/// Says at start-up when the log directory cannot hold even one more preallocated segment:
/// the server still starts (reads work), but writes will fail until space is freed.
fn warn_if_low_on_space(dir: &std::path::Path, segment_bytes: u64) {
    if let Some(free) = crate::storage::free_bytes(dir) {
        if free < segment_bytes {
            log::warn!(
                "only {} KiB free in {}, less than one txn log segment ({} KiB): writes will fail until space is freed",
                free / 1024,
                dir.display(),
                segment_bytes / 1024
            );
        }
    }
}

type Opened = (
    Node,
    Option<durability::Durability>,
    Vec<crate::storage::DirLock>,
);

/// Locks the data directories, recovers the tree and sessions, and opens the txn log.
fn open_storage(cfg: Config, poll: &Poll, start: Instant) -> io::Result<Opened> {
    let mut locks = Vec::new();
    for dir in [&cfg.data_dir, &cfg.data_log_dir] {
        if locks.iter().any(|l: &crate::storage::DirLock| {
            l.path().starts_with(crate::storage::version_dir(dir))
        }) {
            continue;
        }
        crate::storage::check_writable(dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("data directory {} is not usable: {e}", dir.display()),
            )
        })?;
        let lock = crate::storage::lock_data_dir(dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot lock {}: {e} (is another server using it?)",
                    dir.display()
                ),
            )
        })?;
        locks.push(lock);
    }
    let t0 = Instant::now();
    let rec = crate::storage::recover(&cfg.data_dir, &cfg.data_log_dir)
        .map_err(|e| io::Error::other(format!("recovery failed: {e}")))?;
    log::info!(
        "recovered {} znodes and {} sessions at zxid 0x{:x} ({} txns replayed after snapshot 0x{:x}) in {} ms",
        rec.tree.node_count(),
        rec.sessions.len(),
        rec.last_zxid,
        rec.txns_replayed,
        rec.snapshot_zxid,
        t0.elapsed().as_millis()
    );
    if let Some(t) = &rec.torn_tail {
        log::warn!(
            "truncated a torn txn log tail in {} at offset {}",
            t.file.display(),
            t.offset
        );
    }
    warn_if_low_on_space(&cfg.data_log_dir, cfg.pre_alloc_size_kb * 1024);
    let secret = crate::storage::load_or_create_secret(&cfg.data_dir, random_secret)?;
    let log = std::rc::Rc::new(std::cell::RefCell::new(
        crate::storage::txnlog::TxnLog::open(&cfg.data_log_dir, cfg.pre_alloc_size_kb * 1024)?,
    ));
    let waker = std::sync::Arc::new(mio::Waker::new(poll.registry(), WAKER)?);
    let seed = u64::from_le_bytes(secret[..8].try_into().expect("8 bytes"))
        ^ start.elapsed().as_nanos() as u64;
    let d = durability::Durability::new(&cfg, log.clone(), rec.last_zxid, waker, seed)?;
    let n = now(start);
    let sink: Box<dyn crate::server::TxnSink> = Box::new(durability::LogSink(log.clone()));
    let distributed = cfg.is_distributed();
    let data_dir = cfg.data_dir.clone();
    let ens_cfg = distributed.then(|| cfg.clone());
    let mut server = Server::with_tree(cfg, n, secret, rec.tree, rec.last_zxid, Some(sink));
    for (id, timeout) in rec.sessions {
        server.restore_session(id, timeout, n);
    }
    let node = match ens_cfg {
        None => Node::Standalone(Box::new(server)),
        Some(cfg) => {
            let myid = crate::config::read_myid(&data_dir)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
            let o = ensemble::Opened {
                server,
                log,
                last_zxid: rec.last_zxid,
                snapshot_zxid: rec.snapshot_zxid,
                secret,
            };
            Node::Ensemble(Box::new(ensemble::start(
                &cfg,
                myid,
                o,
                poll.registry(),
                n,
            )?))
        }
    };
    Ok((node, Some(d), locks))
}

impl Runtime {
    /// Binds the client port and prepares the loop.
    pub fn bind(cfg: Config) -> io::Result<Runtime> {
        // An ensemble member may give its client address as the `;[host:]port` suffix of
        // its own server.N line instead of clientPort/clientPortAddress, as in Apache.
        let suffix = if cfg.is_distributed() {
            crate::config::read_myid(&cfg.data_dir)
                .ok()
                .and_then(|id| cfg.server(id))
                .and_then(|s| s.client_addr.clone())
        } else {
            None
        };
        let suffix_ip = suffix.as_ref().and_then(|(h, _)| h.parse().ok());
        let ip = cfg
            .client_port_address
            .or(suffix_ip)
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let port = cfg
            .client_port
            .or(suffix.map(|(_, p)| p))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "clientPort is not set"))?;
        let addr = SocketAddr::new(ip, port);
        let mut listener = TcpListener::bind(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {addr}: {e}")))?;
        let local_addr = listener.local_addr()?;
        log::info!("binding to port {local_addr}");
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let mut signals = signal_hook_mio::v1_0::Signals::new([
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
        ])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let start = Instant::now();
        let data_dir = std::fs::canonicalize(&cfg.data_dir).unwrap_or(cfg.data_dir.clone());
        let log_dir = std::fs::canonicalize(&cfg.data_log_dir).unwrap_or(cfg.data_log_dir.clone());
        let env = Env {
            data_dir: data_dir.join("version-2").display().to_string(),
            log_dir: log_dir.join("version-2").display().to_string(),
            host_name: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            client_port: local_addr.port(),
            ..Default::default()
        };
        let frame_bytes_max = cfg.jute_maxbuffer;
        let metrics = match cfg.metrics_http_port {
            None => None,
            Some(port) => {
                let addr = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), port);
                let hub = std::sync::Arc::new(metrics::MetricsHub::new());
                metrics::spawn(addr, hub.clone()).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot serve metrics on {addr}: {e}"))
                })?;
                log::info!("serving Prometheus metrics on http://{addr}/metrics");
                Some(Metrics {
                    hub,
                    latency: metrics::LatencyHistogram::new(),
                    last_update: start,
                })
            }
        };
        let (node, durability, locks) = open_storage(cfg, &poll, start)?;
        Ok(Runtime {
            poll,
            listener,
            conns: HashMap::new(),
            next_id: FIRST_CONN,
            node,
            unflushed: Vec::new(),
            start,
            env,
            frame_bytes_max,
            signals,
            durability,
            metrics,
            _locks: locks,
            local_addr,
        })
    }

    /// Serves until a termination signal arrives.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let busy = self.durability.as_ref().is_some_and(|d| d.busy())
                || matches!(&self.node, Node::Ensemble(e) if e.peers.busy());
            let wait = if busy {
                Duration::from_millis(1)
            } else {
                WAKE_INTERVAL
            };
            match self.poll.poll(&mut events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let mut stop = false;
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept()?,
                    WAKER => {}
                    SIGNALS => {
                        for sig in self.signals.pending() {
                            log::info!("received signal {sig}, shutting down");
                            stop = true;
                        }
                    }
                    Token(t) if t >= ensemble::PEER_TOKEN_BASE => {
                        if let Node::Ensemble(e) = &mut self.node {
                            e.peers.handle_event(self.poll.registry(), ev);
                        }
                    }
                    Token(t) => {
                        let id = t as ConnId;
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.on_readable(id);
                        }
                        if ev.is_writable() {
                            self.flush(id);
                        }
                    }
                }
            }
            let n = now(self.start);
            match &mut self.node {
                Node::Standalone(s) => s.tick(n),
                Node::Ensemble(e) => {
                    e.peers.tick(self.poll.registry(), Instant::now());
                    e.receive(n);
                    e.replica.tick(n);
                }
            }
            if let Some(d) = self.durability.as_mut() {
                if let Some(z) = d.pump(self.node.server()) {
                    match &mut self.node {
                        Node::Standalone(s) => s.durable(z, n),
                        Node::Ensemble(e) => e.replica.step(zab::Input::Durable { zxid: z }, n),
                    }
                }
            }
            self.after_ensemble_step()?;
            self.update_metrics();
            self.route_output();
            // Connections held back by backpressure get another look once they drained.
            let waiting: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(id, c)| {
                    (!c.input.is_empty() || c.read_blocked)
                        && !c.closing
                        && c.output.len() - c.output_pos < OUTPUT_BYTES_MAX
                        && !self.node.server().conn_saturated(**id)
                })
                .map(|(id, _)| *id)
                .collect();
            for id in waiting {
                self.on_readable(id);
            }
            self.route_output();
            if stop {
                break;
            }
        }
        self.shutdown();
        Ok(())
    }

    /// Feeds request latencies into the histogram and, once a second, publishes the mntr
    /// figures to the metrics endpoint.
    fn update_metrics(&mut self) {
        let samples = self.node.server_mut().take_latency_samples();
        let Some(m) = self.metrics.as_mut() else {
            return;
        };
        for ms in samples {
            m.latency.observe(ms as f64);
        }
        if m.last_update.elapsed() < METRICS_INTERVAL {
            return;
        }
        m.last_update = Instant::now();
        self.refresh_env();
        let text = self.node.server_mut().mntr(&self.env);
        if let Some(m) = self.metrics.as_ref() {
            m.hub.update(&text, &m.latency);
        }
    }

    /// Refreshes the figures only the loop can measure, for 4lw and metrics.
    fn refresh_env(&mut self) {
        let (open, max) = fd_counts();
        self.env.open_fds = open;
        self.env.max_fds = max;
        self.env.now_wall_ms = now(self.start).wall_ms;
        self.env.learners = match &self.node {
            Node::Ensemble(e) if e.replica.zab.role() == zab::Role::Leading => {
                Some(e.replica.zab.learner_counts())
            }
            _ => None,
        };
        if let Some(d) = &self.durability {
            let st = &d.stats;
            self.env.fsync_count = st.syncs;
            self.env.fsync_threshold_exceed_count = st.slow_syncs;
            self.env.fsync_last_ms = st.last_sync_ms;
            self.env.fsync_max_ms = st.max_sync_ms;
            self.env.snapshots_taken = st.snapshots;
        }
    }

    fn shutdown(&mut self) {
        // Stop accepting, finish the sync in flight and answer what it made durable, then
        // close the sockets. Sessions stay in the log for clients to resume after restart.
        let _ = self.poll.registry().deregister(&mut self.listener);
        if let Some(d) = self.durability.as_mut() {
            if let Some(z) = d.finish() {
                let n = now(self.start);
                match &mut self.node {
                    Node::Standalone(s) => s.durable(z, n),
                    Node::Ensemble(e) => e.replica.step(zab::Input::Durable { zxid: z }, n),
                }
            }
        }
        let _ = self.after_ensemble_step();
        self.route_output();
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.flush(id);
            self.drop_conn(id);
        }
        log::info!("shutdown complete");
    }

    fn accept(&mut self) -> io::Result<()> {
        loop {
            match self.listener.accept() {
                Ok((mut stream, addr)) => {
                    let id = self.next_id;
                    self.next_id += 1;
                    if !self.node.server_mut().open_conn(id, addr, now(self.start)) {
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        Token(id as usize),
                        Interest::READABLE,
                    ) {
                        log::warn!("cannot register connection from {addr}: {e}");
                        self.node.server_mut().close_conn(id);
                        continue;
                    }
                    log::debug!("accepted connection {id} from {addr}");
                    self.conns.insert(
                        id,
                        ConnIo {
                            stream,
                            input: Vec::new(),
                            output: Vec::new(),
                            output_pos: 0,
                            started: false,
                            closing: false,
                            read_blocked: false,
                            writable_interest: false,
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Running out of file descriptors must not end the server.
                    log::warn!("accept failed: {e}");
                    return Ok(());
                }
            }
        }
    }

    fn on_readable(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.closing {
            return;
        }
        let mut eof = false;
        let limit = self.frame_bytes_max + 4 + READ_CHUNK_BYTES;
        let mut buf = [0u8; 16 << 10];
        c.read_blocked = false;
        loop {
            if c.input.len() >= limit {
                c.read_blocked = true;
                break;
            }
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => c.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("connection {id}: read error: {e}");
                    eof = true;
                    break;
                }
            }
        }
        self.process_input(id);
        if eof {
            self.route_output();
            self.drop_conn(id);
        }
    }

    /// Hands every whole frame in the input buffer to the server, unless the connection's
    /// output is backed up.
    fn process_input(&mut self, id: ConnId) {
        let mut consumed = 0;
        loop {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            if c.closing
                || c.output.len() - c.output_pos >= OUTPUT_BYTES_MAX
                || self.node.server().conn_saturated(id)
            {
                break;
            }
            let buf = &c.input[consumed..];
            if !c.started && buf.len() >= 4 && &buf[..4] == SNAP_WORD {
                c.started = true;
                c.closing = true;
                consumed += 4;
                self.snap_word(id);
                break;
            }
            if !c.started && buf.len() >= 4 {
                if let Some(word) = fourlw::word_of(&buf[..4]) {
                    c.started = true;
                    c.closing = true;
                    consumed += 4;
                    self.four_letter(id, word);
                    break;
                }
            }
            match frame::check(buf, self.frame_bytes_max) {
                FrameCheck::Incomplete => break,
                FrameCheck::TooLarge(len) => {
                    log::warn!("closing connection {id}: Len error {len}");
                    c.closing = true;
                    break;
                }
                FrameCheck::Complete { len } => {
                    let started = c.started;
                    c.started = true;
                    let payload = c.input[consumed + 4..consumed + 4 + len].to_vec();
                    consumed += 4 + len;
                    let n = now(self.start);
                    if started {
                        self.node.server_mut().request(id, &payload, n);
                    } else {
                        self.node.server_mut().connect(id, &payload, n);
                    }
                    self.collect_output();
                }
            }
        }
        if let Some(c) = self.conns.get_mut(&id) {
            c.input.drain(..consumed);
            if c.closing {
                self.unflushed.push(id);
            }
        }
        self.route_output();
    }

    /// `snap` (zk's own word, used by `zk snapshot save`): start a snapshot now. Allowed from
    /// loopback, or from anywhere when the whitelist names it.
    fn snap_word(&mut self, id: ConnId) {
        let local = self
            .node
            .server()
            .conns
            .get(&id)
            .is_some_and(|c| c.addr.ip().is_loopback());
        let text = if !local && !self.node.server().cfg.four_letter_word_allowed("snap") {
            "snap is not executed because it is not in the whitelist.\n".to_owned()
        } else {
            match self.durability.as_mut() {
                None => "this server keeps no snapshots\n".to_owned(),
                Some(d) => match d.start_snapshot(self.node.server()) {
                    Some(z) => format!("Snapshot started at zxid 0x{z:x}\n"),
                    None => "A snapshot is already being written\n".to_owned(),
                },
            }
        };
        if let Some(c) = self.conns.get_mut(&id) {
            c.output.extend_from_slice(text.as_bytes());
            c.closing = true;
        }
        self.flush(id);
    }

    fn four_letter(&mut self, id: ConnId, word: &str) {
        self.refresh_env();
        if matches!(word, "dirs" | "conf") {
            self.env.data_dir_size = dir_size(&self.node.server().cfg.data_dir);
            self.env.log_dir_size = dir_size(&self.node.server().cfg.data_log_dir);
        }
        let text = self.node.server_mut().four_letter(word, &self.env);
        if let Some(c) = self.conns.get_mut(&id) {
            c.output.extend_from_slice(text.as_bytes());
            c.closing = true;
        }
        self.flush(id);
    }

    /// An ensemble member's follow-up to anything that reached its server or replica:
    /// move work between server and Zab, send peer messages, and drop a snapshot of a
    /// state that TRUNC or SNAP replaced. Errors when the replica cannot go on.
    fn after_ensemble_step(&mut self) -> io::Result<()> {
        let Node::Ensemble(e) = &mut self.node else {
            return Ok(());
        };
        let n = now(self.start);
        e.replica.pump(n);
        e.send_out(self.poll.registry(), n);
        if e.reset.replace(false) {
            if let Some(d) = self.durability.as_mut() {
                d.abort_snapshot(e.replica.server.last_zxid);
            }
        }
        if let Some(f) = &e.replica.fatal {
            return Err(io::Error::other(f.clone()));
        }
        Ok(())
    }

    /// Moves what the server queued into connection buffers and writes them.
    fn route_output(&mut self) {
        self.collect_output();
        let mut touched = std::mem::take(&mut self.unflushed);
        touched.sort_unstable();
        touched.dedup();
        for &id in &touched {
            self.flush(id);
        }
        touched.clear();
        self.unflushed = touched;
    }

    /// Moves what the server queued into connection buffers without writing them: a batch
    /// of pipelined requests is answered with one write (`route_output` does the writing).
    fn collect_output(&mut self) {
        if let Err(e) = self.after_ensemble_step() {
            log::error!("{e}; exiting so that recovery resynchronizes");
            std::process::exit(70);
        }
        let touched = &mut self.unflushed;
        for o in self.node.server_mut().drain_output() {
            match o {
                Output::Send(id, frame) => {
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.output.extend_from_slice(&frame);
                        touched.push(id);
                    }
                }
                Output::Close(id) => {
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.closing = true;
                        touched.push(id);
                    }
                }
            }
        }
    }

    /// Writes as much pending output as the socket takes; closes a closing connection once
    /// its output is gone.
    fn flush(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let mut failed = false;
        while c.output_pos < c.output.len() {
            match c.stream.write(&c.output[c.output_pos..]) {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(n) => c.output_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("connection {id}: write error: {e}");
                    failed = true;
                    break;
                }
            }
        }
        if c.output_pos == c.output.len() {
            c.output.clear();
            c.output_pos = 0;
        } else if c.output_pos > (1 << 20) {
            c.output.drain(..c.output_pos);
            c.output_pos = 0;
        }
        let pending = c.output_pos < c.output.len();
        if failed || (c.closing && !pending) {
            self.drop_conn(id);
            return;
        }
        if pending != c.writable_interest {
            let interest = if pending {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if self
                .poll
                .registry()
                .reregister(&mut c.stream, Token(id as usize), interest)
                .is_ok()
            {
                c.writable_interest = pending;
            }
        }
    }

    fn drop_conn(&mut self, id: ConnId) {
        if let Some(mut c) = self.conns.remove(&id) {
            let _ = self.poll.registry().deregister(&mut c.stream);
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        self.node.server_mut().close_conn(id);
    }
}
