//! One server's request pipeline: connections and their sessions, the connect handshake,
//! dispatch by opcode, prep (request -> txn), commit (txn -> tree -> reply + watch events),
//! local reads, watch tables, auth and four-letter words. Pure: time comes in as arguments,
//! txns go out through a `TxnSink` and come back through `durable`, and bytes go out through
//! `Output`s the network loop sends, so a test or the simulator can drive it without sockets
//! or files. Corresponds to Apache's ZooKeeperServer with its PrepRequestProcessor,
//! SyncRequestProcessor hand-off and FinalRequestProcessor, SessionTracker and WatchManager.
//!
//! Ordering and durability: a write is prepped against the tree plus the changes of writes
//! already logged but not yet applied (`outstanding`), appended to the sink, and answered
//! only after the sink reports it durable and it has been applied. While a connection has
//! writes in flight, its later requests wait in its queue, so every connection is answered
//! in arrival order; other connections' reads are answered at once from the applied tree.
//! The watch events a write causes are queued before its reply, so a client always sees the
//! event before any reply that reflects the change.

mod ensemble;
pub mod fourlw;
pub mod prep;
pub mod replica;
pub mod session;
pub mod watch;

use crate::config::Config;
use crate::proto::consts::{event, op, perms, state, watcher_type, xid};
use crate::proto::peer::ForwardedRequest;
use crate::proto::records::write_multi_header;
use crate::proto::txn::{Txn, TxnHeader};
use crate::proto::{
    Code, ConnectRequest, ConnectResponse, Id, ReadOp, Reader, ReplyHeader, Request, RequestHeader,
    Writer,
};
use crate::tree::{acl, DataTree, OpResult, Trigger};
use crate::zab::Role;
use session::SessionTracker;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use watch::WatchTable;

/// A connection's id, chosen by the network loop.
pub type ConnId = u64;

/// Requests one connection may have waiting behind its in-flight writes; past this the
/// network loop stops reading from it (ZooKeeper throttles at globalOutstandingLimit).
pub const QUEUED_REQUESTS_MAX: usize = 1000;

/// Writes one connection may have logged but not yet answered; past this its next requests
/// wait in its queue.
pub const WRITES_IN_FLIGHT_MAX: u32 = 1000;

/// Latency samples kept between two takes by the network loop; past this they are dropped
/// (the loop takes them every turn, so this only bounds a loop that stopped asking).
pub const LATENCY_SAMPLES_MAX: usize = 1 << 16;

/// Where txns go to become durable: the txn log, or nothing for a purely in-memory server.
pub trait TxnSink {
    /// Appends a txn. An error means it was not logged (e.g. the disk is full): nothing of
    /// it may become visible later.
    fn append(&mut self, hdr: &TxnHeader, txn: &Txn) -> Result<(), String>;
}

/// What the server wants the network loop to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// Send one complete frame (length prefix included) on a connection.
    Send(ConnId, Vec<u8>),
    /// Close the connection once what was queued before has been written.
    Close(ConnId),
}

/// The clock as the caller reads it: wall time stamps znodes, monotonic time drives expiry.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub wall_ms: i64,
    pub mono_ms: u64,
}

/// Counters kept per connection for `cons` and `stat`.
#[derive(Debug, Clone, Default)]
pub struct ConnStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub last_op: &'static str,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_response_ms: i64,
    pub last_latency_ms: u64,
    pub latency_min_ms: u64,
    pub latency_max_ms: u64,
    pub latency_total_ms: u64,
    pub latency_count: u64,
}

/// One client connection as the server sees it.
#[derive(Debug, Clone)]
pub struct Conn {
    pub id: ConnId,
    pub addr: SocketAddr,
    /// 0 until the handshake completes.
    pub session_id: i64,
    pub timeout_ms: u32,
    /// Shared so that each write can hold the ids prep checks without copying them.
    pub auth: Arc<[Id]>,
    pub established_ms: i64,
    pub stats: ConnStats,
    pub closing: bool,
    /// Txns of this connection logged (or forwarded) but not yet applied and answered.
    pub writes_in_flight: u32,
    /// A forwarded sync is in flight: nothing may overtake it.
    pub barrier: bool,
    /// Requests that arrived while writes were in flight, with their arrival time.
    pub queued: VecDeque<(Vec<u8>, u64)>,
}

/// Server-wide counters for `srvr`, `stat` and `mntr`.
#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub latency_min_ms: u64,
    pub latency_max_ms: u64,
    pub latency_total_ms: u64,
    pub latency_count: u64,
    pub auth_failed: u64,
    pub sessions_expired: u64,
    pub connections_rejected: u64,
    pub log_append_failures: u64,
}

impl ServerStats {
    fn record_latency(&mut self, ms: u64) {
        if self.latency_count == 0 || ms < self.latency_min_ms {
            self.latency_min_ms = ms;
        }
        self.latency_max_ms = self.latency_max_ms.max(ms);
        self.latency_total_ms += ms;
        self.latency_count += 1;
    }
}

/// Who is waiting for a logged txn, and how to answer once it applies.
enum Origin {
    Request {
        conn: ConnId,
        xid: i32,
        req: Request,
        received_mono_ms: u64,
    },
    Connect {
        conn: ConnId,
        timeout_ms: u32,
        read_only: Option<bool>,
    },
    CloseSession {
        conn: ConnId,
        xid: i32,
    },
    Expire {
        conn: Option<ConnId>,
    },
    /// A learner's forwarded sync, answered when the leader says so.
    Sync {
        conn: ConnId,
        xid: i32,
        path: String,
        received_mono_ms: u64,
    },
    /// A txn another server prepped (a learner's copy of a proposal): if one of our
    /// connections forwarded it, `Server::forwarded` holds who waits.
    Remote,
    Internal,
}

struct Pending {
    hdr: TxnHeader,
    txn: Txn,
    origin: Origin,
}

pub struct Server {
    pub cfg: Config,
    pub tree: DataTree,
    pub sessions: SessionTracker,
    pub data_watches: WatchTable,
    pub child_watches: WatchTable,
    pub conns: HashMap<ConnId, Conn>,
    /// The zxid of the last applied txn.
    pub last_zxid: i64,
    /// The zxid of the last logged txn (>= last_zxid).
    pub last_logged_zxid: i64,
    pub stats: ServerStats,
    pub started_ms: i64,
    pub server_id: u64,
    out: Vec<Output>,
    last_container_check_ms: u64,
    /// The monotonic time of the last call in, for showing expiry times as dates.
    pub last_tick_mono: u64,
    sink: Option<Box<dyn TxnSink>>,
    pending: VecDeque<Pending>,
    outstanding: prep::Outstanding,
    outstanding_zxid: HashMap<String, i64>,
    outstanding_order: VecDeque<(i64, Vec<String>)>,
    /// Connections whose queues may be able to move.
    runnable: Vec<ConnId>,
    /// Request latencies (ms) since the network loop last took them, for its histogram.
    latency_samples: Vec<u64>,
    /// None for a standalone server; in an ensemble, what this server does.
    pub role: Option<Role>,
    /// Whether clients are served (always for a standalone server; in an ensemble only
    /// while this server leads an established epoch or follows in broadcast).
    pub serving: bool,
    /// Ensemble: txns logged here, encoded, for the leader's Zab to propose.
    logged_out: Vec<(i64, Vec<u8>)>,
    /// Ensemble learner: requests to forward to the leader.
    forward_out: Vec<ForwardedRequest>,
    /// Ensemble learner: who waits for a forwarded request, by (session, cxid).
    forwarded: HashMap<(i64, i32), Origin>,
    /// Ensemble learner: sessions its clients kept alive since the leader last heard.
    touched: Vec<i64>,
}

/// The reply a request earns, before it is framed.
enum Reply {
    Empty,
    Body(Writer),
    Err(Code),
}

impl Server {
    /// An in-memory server: every txn counts as durable as soon as it is prepped.
    pub fn new(cfg: Config, now: Now, secret: [u8; 32]) -> Server {
        Self::with_tree(cfg, now, secret, DataTree::new(), 0, None)
    }

    /// A server over a recovered tree whose txns go to `sink`.
    pub fn with_tree(
        cfg: Config,
        now: Now,
        secret: [u8; 32],
        tree: DataTree,
        last_zxid: i64,
        sink: Option<Box<dyn TxnSink>>,
    ) -> Server {
        let tick = cfg.tick_time_ms;
        Server {
            cfg,
            tree,
            sessions: SessionTracker::new(1, now.wall_ms, tick, secret),
            data_watches: WatchTable::default(),
            child_watches: WatchTable::default(),
            conns: HashMap::new(),
            last_zxid,
            last_logged_zxid: last_zxid,
            stats: ServerStats::default(),
            started_ms: now.wall_ms,
            server_id: 0,
            out: Vec::new(),
            last_container_check_ms: now.mono_ms,
            last_tick_mono: now.mono_ms,
            sink,
            pending: VecDeque::new(),
            outstanding: prep::Outstanding::new(),
            outstanding_zxid: HashMap::new(),
            outstanding_order: VecDeque::new(),
            runnable: Vec::new(),
            latency_samples: Vec::new(),
            role: None,
            serving: true,
            logged_out: Vec::new(),
            forward_out: Vec::new(),
            forwarded: HashMap::new(),
            touched: Vec::new(),
        }
    }

    /// Restores a session recovered from disk; it expires unless resumed within its timeout.
    pub fn restore_session(&mut self, id: i64, timeout_ms: u32, now: Now) {
        self.sessions.add(id, timeout_ms, now.mono_ms, None);
    }

    /// Every open session with its timeout, for snapshots.
    pub fn session_list(&self) -> Vec<(i64, u32)> {
        self.sessions.list()
    }

    /// Whether the network loop should stop handing this connection frames for now.
    pub fn conn_saturated(&self, id: ConnId) -> bool {
        self.conns
            .get(&id)
            .is_some_and(|c| c.queued.len() >= QUEUED_REQUESTS_MAX)
    }

    /// Takes the request latencies recorded since the last call.
    /// The latencies recorded since the last call (the buffer is kept for the next ones).
    pub fn take_latency_samples(&mut self) -> std::vec::Drain<'_, u64> {
        self.latency_samples.drain(..)
    }

    /// Txns logged but not yet reported durable.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    pub fn drain_output(&mut self) -> std::vec::Drain<'_, Output> {
        self.out.drain(..)
    }

    fn send(&mut self, conn: ConnId, frame: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.packets_sent += 1;
        }
        self.stats.packets_sent += 1;
        self.out.push(Output::Send(conn, frame));
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if !c.closing {
                c.closing = true;
                self.out.push(Output::Close(conn));
            }
        }
    }

    /// A new connection was accepted. False if maxClientCnxns or maxCnxns refuses it.
    pub fn open_conn(&mut self, id: ConnId, addr: SocketAddr, now: Now) -> bool {
        let cap = self.cfg.max_client_cnxns as usize;
        if cap > 0 {
            let same_ip = self
                .conns
                .values()
                .filter(|c| c.addr.ip() == addr.ip())
                .count();
            if same_ip >= cap {
                log::warn!("Too many connections from {} - max is {}", addr.ip(), cap);
                self.stats.connections_rejected += 1;
                return false;
            }
        }
        let total = self.cfg.max_cnxns as usize;
        if total > 0 && self.conns.len() >= total {
            log::warn!("Too many connections - max is {total}");
            self.stats.connections_rejected += 1;
            return false;
        }
        self.conns.insert(
            id,
            Conn {
                id,
                addr,
                session_id: 0,
                timeout_ms: 0,
                auth: Arc::from(vec![Id::new("ip", &java_host_address(addr))]),
                established_ms: now.wall_ms,
                stats: ConnStats::default(),
                closing: false,
                writes_in_flight: 0,
                barrier: false,
                queued: VecDeque::new(),
            },
        );
        true
    }

    /// The connection is gone. Its session lives on until it expires or is resumed.
    pub fn close_conn(&mut self, id: ConnId) {
        if let Some(c) = self.conns.remove(&id) {
            self.data_watches.remove_conn(id);
            self.child_watches.remove_conn(id);
            if c.session_id != 0 {
                if let Some(s) = self.sessions.get_mut(c.session_id) {
                    if s.conn == Some(id) {
                        s.conn = None;
                    }
                }
            }
        }
    }

    /// Turns tree triggers into notifications: data watches for the node, child watches for
    /// the parent; a deleted node's child watchers hear NodeDeleted once.
    fn fire(&mut self, triggers: &[Trigger], zxid: i64) {
        let mut conns = Vec::new();
        for t in triggers {
            conns.clear();
            match t.event_type {
                event::NODE_CREATED | event::NODE_DATA_CHANGED => {
                    self.data_watches.trigger(&t.path, &mut conns);
                }
                event::NODE_DELETED => {
                    self.data_watches.trigger(&t.path, &mut conns);
                    let n = conns.len();
                    let mut more = Vec::new();
                    self.child_watches.trigger(&t.path, &mut more);
                    for c in more {
                        if !conns[..n].contains(&c) {
                            conns.push(c);
                        }
                    }
                }
                event::NODE_CHILDREN_CHANGED => {
                    self.child_watches.trigger(&t.path, &mut conns);
                }
                _ => {}
            }
            conns.sort_unstable();
            conns.dedup();
            for &c in &conns {
                self.notify(c, zxid, t.event_type, &t.path, Some(&t.acl));
            }
        }
    }

    /// Sends one notification, if the connection may read the node (ZOOKEEPER-4799).
    fn notify(
        &mut self,
        conn: ConnId,
        zxid: i64,
        event_type: i32,
        path: &str,
        node_acl: Option<&[crate::proto::Acl]>,
    ) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if let Some(a) = node_acl {
            if acl::check(a, perms::READ, &c.auth, self.cfg.skip_acl).is_err() {
                return;
            }
        }
        let frame = crate::proto::notification_frame(zxid, event_type, state::SYNC_CONNECTED, path);
        self.send(conn, frame);
    }

    fn reply(&mut self, conn: ConnId, xid: i32, zxid: i64, reply: Reply) {
        let (err, body) = match reply {
            Reply::Empty => (0, None),
            Reply::Body(w) => (0, Some(w)),
            Reply::Err(c) => (c.code(), None),
        };
        let mut w = ReplyHeader { xid, zxid, err }.frame();
        if let Some(b) = body {
            w.raw(&b.buf);
        }
        self.send(conn, w.finish_frame());
    }

    fn txn_header(&self, session_id: i64, cxid: i32, now: Now) -> TxnHeader {
        TxnHeader {
            client_id: session_id,
            cxid,
            zxid: self.last_logged_zxid + 1,
            time_ms: now.wall_ms,
        }
    }

    /// Logs a txn and remembers who waits for it. On a log failure nothing is kept: the
    /// zxid is not consumed and the prep's changes are dropped.
    fn log_txn(
        &mut self,
        hdr: TxnHeader,
        txn: Txn,
        changes: prep::Outstanding,
        origin: Origin,
    ) -> Result<(), String> {
        if let Some(sink) = self.sink.as_mut() {
            if let Err(e) = sink.append(&hdr, &txn) {
                self.stats.log_append_failures += 1;
                log::error!("cannot log txn 0x{:x}: {e}", hdr.zxid);
                return Err(e);
            }
        }
        self.last_logged_zxid = hdr.zxid;
        if self.role.is_some() {
            let mut w = Writer::new();
            crate::proto::txn::encode(&hdr, &txn, &mut w);
            self.logged_out.push((hdr.zxid, w.buf));
        }
        if !changes.is_empty() {
            let paths: Vec<String> = changes.keys().cloned().collect();
            for p in &paths {
                self.outstanding_zxid.insert(p.clone(), hdr.zxid);
            }
            self.outstanding.extend(changes);
            self.outstanding_order.push_back((hdr.zxid, paths));
        }
        let conn = match &origin {
            Origin::Request { conn, .. }
            | Origin::Connect { conn, .. }
            | Origin::CloseSession { conn, .. } => Some(*conn),
            _ => None,
        };
        if let Some(c) = conn.and_then(|c| self.conns.get_mut(&c)) {
            c.writes_in_flight += 1;
        }
        self.pending.push_back(Pending { hdr, txn, origin });
        Ok(())
    }

    /// The sink made every txn up to `zxid` durable: apply them in order and answer.
    pub fn durable(&mut self, zxid: i64, now: Now) {
        while self.pending.front().is_some_and(|p| p.hdr.zxid <= zxid) {
            let p = self.pending.pop_front().expect("checked");
            self.apply_pending(p, now);
        }
        self.run_queues(now);
    }

    /// Without a sink everything logged is durable at once.
    fn settle(&mut self, now: Now) {
        if self.sink.is_none() && self.role.is_none() {
            while let Some(p) = self.pending.pop_front() {
                self.apply_pending(p, now);
                self.run_queues(now);
            }
        }
    }

    fn apply_pending(&mut self, mut p: Pending, now: Now) {
        if matches!(p.origin, Origin::Remote) {
            p.origin = self.remote_origin(&p.hdr, &p.txn);
        }
        let res = self.commit(p.hdr, &p.txn, now);
        while self
            .outstanding_order
            .front()
            .is_some_and(|(z, _)| *z <= p.hdr.zxid)
        {
            let (z, paths) = self.outstanding_order.pop_front().expect("checked");
            for path in paths {
                if self.outstanding_zxid.get(&path) == Some(&z) {
                    self.outstanding_zxid.remove(&path);
                    self.outstanding.remove(&path);
                }
            }
        }
        let zxid = p.hdr.zxid;
        let done_conn = match p.origin {
            Origin::Request {
                conn,
                xid,
                req,
                received_mono_ms,
            } => {
                let reply = write_reply(&req, res);
                self.reply(conn, xid, zxid, reply);
                self.account(conn, xid, op_of(&req), received_mono_ms, now);
                Some(conn)
            }
            Origin::Connect {
                conn,
                timeout_ms,
                read_only,
            } => {
                let id = p.hdr.client_id;
                log::info!(
                    "Established session 0x{:x} with negotiated timeout {} for client {}",
                    id,
                    timeout_ms,
                    self.conns
                        .get(&conn)
                        .map(|c| c.addr.to_string())
                        .unwrap_or_default()
                );
                if self.conns.contains_key(&conn) {
                    self.attach(conn, id, timeout_ms, read_only, now);
                }
                Some(conn)
            }
            Origin::CloseSession { conn, xid } => {
                log::info!("Closed session 0x{:x}", p.hdr.client_id);
                self.reply(conn, xid, zxid, Reply::Empty);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.session_id = 0;
                }
                self.close(conn);
                Some(conn)
            }
            Origin::Expire { conn } => {
                if let Some(c) = conn {
                    self.close(c);
                }
                None
            }
            Origin::Sync { .. } | Origin::Remote | Origin::Internal => None,
        };
        if let Some(c) = done_conn.and_then(|c| self.conns.get_mut(&c)) {
            c.writes_in_flight = c.writes_in_flight.saturating_sub(1);
            if !c.queued.is_empty() {
                self.runnable.push(c.id);
            }
        }
    }

    /// Processes the queued requests of connections whose writes have all been answered.
    fn run_queues(&mut self, now: Now) {
        while let Some(id) = self.runnable.pop() {
            while let Some((frame, received)) = self.next_queued(id) {
                self.process_request(id, &frame, received, now);
            }
        }
    }

    /// The next queued request of a connection, if it may run now (see `may_run`).
    fn next_queued(&mut self, id: ConnId) -> Option<(Vec<u8>, u64)> {
        let c = self.conns.get_mut(&id)?;
        if c.closing || !c.queued.front().is_some_and(|(f, _)| may_run(c, f)) {
            return None;
        }
        c.queued.pop_front()
    }

    /// Records a request's latency and last-op figures for `cons`, `stat` and `mntr`.
    fn account(&mut self, conn_id: ConnId, xid: i32, code: i32, received_mono_ms: u64, now: Now) {
        let latency = now.mono_ms.saturating_sub(received_mono_ms);
        if xid != xid::PING {
            self.stats.record_latency(latency);
            if self.latency_samples.len() < LATENCY_SAMPLES_MAX {
                self.latency_samples.push(latency);
            }
        }
        let last_zxid = self.last_zxid;
        if let Some(c) = self.conns.get_mut(&conn_id) {
            let s = &mut c.stats;
            s.last_op = op::last_op_name(code);
            s.last_cxid = xid;
            s.last_zxid = last_zxid;
            s.last_response_ms = now.wall_ms;
            s.last_latency_ms = latency;
            if s.latency_count == 0 || latency < s.latency_min_ms {
                s.latency_min_ms = latency;
            }
            s.latency_max_ms = s.latency_max_ms.max(latency);
            s.latency_total_ms += latency;
            s.latency_count += 1;
        }
    }

    /// Applies a txn: the tree changes, watches fire (their frames are queued now, before the
    /// caller queues the reply), and the session table follows session txns.
    fn commit(&mut self, hdr: TxnHeader, txn: &Txn, now: Now) -> OpResult {
        let mut triggers = Vec::new();
        let res = self.tree.apply(&hdr, txn, &mut triggers);
        self.last_zxid = hdr.zxid;
        for w in self.tree.quota_warnings.drain(..) {
            log::warn!("{w}");
        }
        match txn {
            Txn::CreateSession { timeout_ms } if self.sessions.get(hdr.client_id).is_none() => {
                self.sessions
                    .add(hdr.client_id, *timeout_ms as u32, now.mono_ms, None);
            }
            Txn::CloseSession => {
                self.sessions.remove(hdr.client_id);
            }
            _ => {}
        }
        self.fire(&triggers, hdr.zxid);
        res
    }

    /// Binds a connection to its session and sends the ConnectResponse.
    fn attach(
        &mut self,
        conn_id: ConnId,
        session_id: i64,
        timeout_ms: u32,
        read_only: Option<bool>,
        now: Now,
    ) {
        if let Some(s) = self.sessions.get_mut(session_id) {
            s.conn = Some(conn_id);
        }
        self.sessions.touch(session_id, now.mono_ms);
        if let Some(c) = self.conns.get_mut(&conn_id) {
            c.session_id = session_id;
            c.timeout_ms = timeout_ms;
        }
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms: timeout_ms as i32,
            session_id,
            passwd: self.sessions.password(session_id).to_vec(),
            read_only: read_only.map(|_| false),
        };
        self.send(conn_id, resp.to_frame());
    }

    /// The first frame of a connection: a ConnectRequest.
    pub fn connect(&mut self, conn_id: ConnId, payload: &[u8], now: Now) {
        self.last_tick_mono = now.mono_ms;
        if !self.serving {
            // As ZooKeeper does while it elects or synchronizes: the client tries another server.
            self.close(conn_id);
            return;
        }
        let req = match ConnectRequest::read(payload) {
            Ok(r) => r,
            Err(e) => {
                log::info!("closing connection {conn_id}: bad connect request: {e}");
                self.close(conn_id);
                return;
            }
        };
        self.stats.packets_received += 1;
        if req.last_zxid_seen > self.last_zxid {
            log::info!(
                "Refusing session request for client as it has seen zxid 0x{:x} our last zxid is 0x{:x} client must try another server",
                req.last_zxid_seen,
                self.last_zxid
            );
            self.close(conn_id);
            return;
        }
        let timeout = (req.timeout_ms.max(0) as u32).clamp(
            self.cfg.session_timeout_ms_min,
            self.cfg.session_timeout_ms_max,
        );
        if req.session_id == 0 && self.is_learner() {
            let id = self.sessions.next_session_id();
            self.forward_create_session(conn_id, id, timeout, req.read_only);
            return;
        }
        if req.session_id == 0 {
            let id = self.sessions.next_session_id();
            let hdr = self.txn_header(id, 0, now);
            let txn = Txn::CreateSession {
                timeout_ms: timeout as i32,
            };
            let origin = Origin::Connect {
                conn: conn_id,
                timeout_ms: timeout,
                read_only: req.read_only,
            };
            if self
                .log_txn(hdr, txn, prep::Outstanding::new(), origin)
                .is_err()
            {
                self.close(conn_id);
            }
            self.settle(now);
            return;
        }
        let valid = self
            .sessions
            .get(req.session_id)
            .is_some_and(|s| !s.closing)
            && req.passwd.as_slice() == self.sessions.password(req.session_id);
        if !valid {
            log::info!(
                "Invalid session 0x{:x} for client, probably expired",
                req.session_id
            );
            let invalid = ConnectResponse {
                protocol_version: 0,
                timeout_ms: 0,
                session_id: 0,
                passwd: vec![0; session::PASSWORD_LEN],
                read_only: req.read_only.map(|_| false),
            };
            self.send(conn_id, invalid.to_frame());
            self.close(conn_id);
            return;
        }
        let old = self.sessions.get(req.session_id).and_then(|s| s.conn);
        if let Some(old) = old.filter(|o| *o != conn_id) {
            self.close(old);
            self.data_watches.remove_conn(old);
            self.child_watches.remove_conn(old);
            if let Some(c) = self.conns.get_mut(&old) {
                c.session_id = 0;
            }
        }
        self.sessions
            .set_timeout(req.session_id, timeout, now.mono_ms);
        self.note_touch(req.session_id);
        self.attach(conn_id, req.session_id, timeout, req.read_only, now);
    }

    /// One request frame on an established connection.
    pub fn request(&mut self, conn_id: ConnId, payload: &[u8], now: Now) {
        self.last_tick_mono = now.mono_ms;
        let Some(c) = self.conns.get_mut(&conn_id) else {
            return;
        };
        if c.closing {
            return;
        }
        if !c.queued.is_empty() || !may_run(c, payload) {
            c.queued.push_back((payload.to_vec(), now.mono_ms));
            return;
        }
        self.process_request(conn_id, payload, now.mono_ms, now);
        self.settle(now);
    }

    fn process_request(&mut self, conn_id: ConnId, payload: &[u8], received: u64, now: Now) {
        if !self.serving {
            self.close(conn_id);
            return;
        }
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        let session_id = conn.session_id;
        let mut r = Reader::new(payload);
        let hdr = match RequestHeader::read(&mut r) {
            Ok(h) => h,
            Err(e) => {
                log::info!("closing connection {conn_id}: bad request header: {e}");
                self.close(conn_id);
                return;
            }
        };
        self.stats.packets_received += 1;
        if let Some(c) = self.conns.get_mut(&conn_id) {
            c.stats.packets_received += 1;
        }
        // A session that expired or moved to another connection no longer owns this one.
        let owned = self
            .sessions
            .get(session_id)
            .is_some_and(|s| s.conn == Some(conn_id) && !s.closing);
        if !owned {
            self.close(conn_id);
            return;
        }
        self.sessions.touch(session_id, now.mono_ms);
        self.note_touch(session_id);
        let code = hdr.op;
        if !crate::proto::records::is_known_op(code) || code == op::CHECK {
            self.reply(
                conn_id,
                hdr.xid,
                self.last_zxid,
                Reply::Err(Code::Unimplemented),
            );
            self.close(conn_id);
            return;
        }
        if self.is_learner()
            && (op::is_write(code) || code == op::SYNC || code == op::CLOSE_SESSION)
        {
            let body = &payload[r.position()..];
            self.forward_request(conn_id, session_id, hdr, body, received);
            return;
        }
        match Request::read(code, &mut r) {
            Err(e) if code == op::AUTH || code == op::SASL => {
                // Apache reads these before any other processing and drops the connection
                // when they do not decode; there is no reply to give.
                log::info!("closing connection {conn_id}: malformed auth packet: {e}");
                self.close(conn_id);
            }
            Err(e) => {
                log::info!("connection {conn_id}: malformed request (op {code}): {e}");
                if op::is_write(code) {
                    // A write that fails to decode still becomes an error txn, as in ZooKeeper.
                    let th = self.txn_header(session_id, hdr.xid, now);
                    let txn = Txn::Error {
                        err: Code::MarshallingError.code(),
                    };
                    let origin = Origin::Request {
                        conn: conn_id,
                        xid: hdr.xid,
                        req: Request::Reconfig,
                        received_mono_ms: received,
                    };
                    if self
                        .log_txn(th, txn, prep::Outstanding::new(), origin)
                        .is_err()
                    {
                        self.not_logged(conn_id, hdr.xid);
                    }
                } else {
                    self.reply(
                        conn_id,
                        hdr.xid,
                        self.last_zxid,
                        Reply::Err(Code::MarshallingError),
                    );
                    self.account(conn_id, hdr.xid, code, received, now);
                }
            }
            Ok(req) => self.dispatch(conn_id, session_id, hdr, req, received, now),
        }
    }

    fn dispatch(
        &mut self,
        conn_id: ConnId,
        session_id: i64,
        hdr: RequestHeader,
        req: Request,
        received: u64,
        now: Now,
    ) {
        let xid = hdr.xid;
        match req {
            Request::Ping => {
                self.reply(conn_id, xid::PING, self.last_zxid, Reply::Empty);
            }
            Request::Auth { scheme, auth, .. } => self.auth(conn_id, xid, &scheme, auth.as_deref()),
            Request::Sasl { .. } => {
                // No SASL is configured: answer as Apache does then, with a null token.
                let mut w = Writer::new();
                w.buffer(None);
                self.reply(conn_id, xid, self.last_zxid, Reply::Body(w));
            }
            Request::CloseSession => {
                let h = self.txn_header(session_id, xid, now);
                if let Some(s) = self.sessions.get_mut(session_id) {
                    s.closing = true;
                }
                let origin = Origin::CloseSession { conn: conn_id, xid };
                if self
                    .log_txn(h, Txn::CloseSession, prep::Outstanding::new(), origin)
                    .is_err()
                {
                    if let Some(s) = self.sessions.get_mut(session_id) {
                        s.closing = false;
                    }
                    self.reply(conn_id, xid, self.last_zxid, Reply::Err(Code::SystemError));
                }
            }
            Request::Create(_)
            | Request::Delete { .. }
            | Request::SetData { .. }
            | Request::SetAcl { .. }
            | Request::Multi(_)
            | Request::DeleteContainer { .. }
            | Request::Reconfig => self.write(conn_id, session_id, hdr, req, received, now),
            Request::SetWatches(sw) => {
                self.set_watches(conn_id, &sw);
                self.reply(conn_id, xid, self.last_zxid, Reply::Empty);
            }
            other => {
                let code = op_of(&other);
                let reply = self.read(conn_id, session_id, other);
                self.reply(conn_id, xid, self.last_zxid, reply);
                self.account(conn_id, xid, code, received, now);
            }
        }
    }

    /// Prep and log one write; it is answered when durable.
    fn write(
        &mut self,
        conn_id: ConnId,
        session_id: i64,
        hdr: RequestHeader,
        req: Request,
        received: u64,
        now: Now,
    ) {
        let ids = self.auth_ids(conn_id);
        let (txn, changes) = self.prep_write(&req, &ids, session_id);
        let th = self.txn_header(session_id, hdr.xid, now);
        let origin = Origin::Request {
            conn: conn_id,
            xid: hdr.xid,
            req,
            received_mono_ms: received,
        };
        if self.log_txn(th, txn, changes, origin).is_err() {
            self.not_logged(conn_id, hdr.xid);
        }
    }

    /// The txn a write request becomes, checked against the tree plus pending changes, and
    /// the changes it adds; a refused write becomes an error txn.
    fn prep_write(&self, req: &Request, ids: &[Id], session_id: i64) -> (Txn, prep::Outstanding) {
        let mut p = prep::Prep::new(&self.tree, &self.cfg, ids, session_id, &self.outstanding);
        let t = match req {
            Request::Create(c) => p.create(c),
            Request::Delete { path, version } => p.delete(path, *version),
            Request::DeleteContainer { path } => p.delete_container(path),
            Request::SetData {
                path,
                data,
                version,
            } => p.set_data(path, data, *version),
            Request::SetAcl { path, acl, version } => p.set_acl(path, acl.as_deref(), *version),
            Request::Multi(ops) => Ok(p.multi(ops)),
            Request::Reconfig => Err(if self.cfg.reconfig_enabled {
                Code::Unimplemented
            } else {
                Code::ReconfigDisabled
            }),
            _ => Err(Code::RuntimeInconsistency),
        };
        match t {
            Ok(t) => (t, p.into_changes()),
            Err(c) => (Txn::Error { err: c.code() }, prep::Outstanding::new()),
        }
    }

    /// A write the log refused (e.g. the disk is full) is answered with SystemError at once,
    /// unless earlier writes of the connection are still in flight: that answer would
    /// overtake theirs, so the connection is closed instead (its session lives on).
    fn not_logged(&mut self, conn_id: ConnId, xid: i32) {
        if self
            .conns
            .get(&conn_id)
            .is_some_and(|c| c.writes_in_flight > 0)
        {
            log::info!(
                "closing connection {conn_id}: a write could not be logged behind writes in flight"
            );
            self.close(conn_id);
        } else {
            self.reply(conn_id, xid, self.last_zxid, Reply::Err(Code::SystemError));
        }
    }

    fn auth_ids(&self, conn_id: ConnId) -> Arc<[Id]> {
        self.conns
            .get(&conn_id)
            .map_or_else(|| Arc::from(Vec::new()), |c| c.auth.clone())
    }

    fn auth(&mut self, conn_id: ConnId, xid: i32, scheme: &str, auth: Option<&[u8]>) {
        let new_ids = match (scheme, auth) {
            // Null credentials fail, as Apache's digest provider does (`zkCli addauth digest`
            // without a user:password sends null); empty ones are a valid, if odd, digest.
            ("digest", Some(auth)) => {
                let text = String::from_utf8_lossy(auth);
                let id = acl::digest_id(&text);
                let mut v = vec![Id::new("digest", &id)];
                if self.cfg.super_digest.as_deref() == Some(id.as_str()) {
                    v.push(Id::new("super", ""));
                }
                Some(v)
            }
            ("ip", _) => self
                .conns
                .get(&conn_id)
                .map(|c| vec![Id::new("ip", &java_host_address(c.addr))]),
            _ => None,
        };
        match new_ids {
            Some(ids) => {
                if let Some(c) = self.conns.get_mut(&conn_id) {
                    let mut all = c.auth.to_vec();
                    for i in ids {
                        if !all.contains(&i) {
                            all.push(i);
                        }
                    }
                    c.auth = all.into();
                }
                self.reply(conn_id, xid, 0, Reply::Empty);
            }
            None => {
                log::warn!("Authentication failed for scheme: {scheme}");
                self.stats.auth_failed += 1;
                self.reply(conn_id, xid, 0, Reply::Err(Code::AuthFailed));
                self.close(conn_id);
            }
        }
    }

    fn node_readable(
        &self,
        conn_id: ConnId,
        node_acl: &[crate::proto::Acl],
        perm: i32,
    ) -> Result<(), Code> {
        let ids = self.conns.get(&conn_id).map(|c| &*c.auth).unwrap_or(&[]);
        acl::check(node_acl, perm, ids, self.cfg.skip_acl)
    }

    fn read(&mut self, conn_id: ConnId, session_id: i64, req: Request) -> Reply {
        match self.read_inner(conn_id, session_id, req) {
            Ok(r) => r,
            Err(c) => Reply::Err(c),
        }
    }

    fn read_inner(
        &mut self,
        conn_id: ConnId,
        session_id: i64,
        req: Request,
    ) -> Result<Reply, Code> {
        let mut w = Writer::new();
        match req {
            Request::Exists { path, watch } => {
                if path.contains('\0') {
                    return Err(Code::BadArguments);
                }
                if let Some(n) = self.tree.get(&path) {
                    self.node_readable(conn_id, n.acl, perms::READ)?;
                }
                if watch {
                    self.data_watches.add(&path, conn_id, watch::STANDARD);
                }
                let n = self.tree.get(&path).ok_or(Code::NoNode)?;
                n.stat().write(&mut w);
            }
            Request::GetData { path, watch } => {
                let n = self.tree.get(&path).ok_or(Code::NoNode)?;
                self.node_readable(conn_id, n.acl, perms::READ)?;
                w.buffer(n.data);
                n.stat().write(&mut w);
                if watch {
                    self.data_watches.add(&path, conn_id, watch::STANDARD);
                }
            }
            Request::GetChildren {
                path,
                watch,
                with_stat,
            } => {
                let n = self.tree.get(&path).ok_or(Code::NoNode)?;
                self.node_readable(conn_id, n.acl, perms::READ)?;
                w.i32(n.num_children as i32);
                for c in n.children() {
                    w.string(c);
                }
                if with_stat {
                    n.stat().write(&mut w);
                }
                if watch {
                    self.child_watches.add(&path, conn_id, watch::STANDARD);
                }
            }
            Request::GetAcl { path } => {
                let n = self.tree.get(&path).ok_or(Code::NoNode)?;
                self.node_readable(conn_id, n.acl, perms::READ | perms::ADMIN)?;
                let shown = if self.node_readable(conn_id, n.acl, perms::ADMIN).is_ok() {
                    n.acl.to_vec()
                } else {
                    acl::redact(n.acl)
                };
                crate::proto::records::write_acl_vec(&mut w, &shown);
                n.stat().write(&mut w);
            }
            Request::GetAllChildrenNumber { path } => {
                let n = self.tree.get(&path).ok_or(Code::NoNode)?;
                self.node_readable(conn_id, n.acl, perms::READ)?;
                w.i32(self.tree.descendant_count(&path) as i32);
            }
            Request::Sync { path } => {
                w.string(&path);
            }
            Request::GetEphemerals { prefix } => {
                let all = prefix.is_empty() || prefix == "/";
                let list: Vec<&String> = self
                    .tree
                    .ephemerals_of(session_id)
                    .map(|s| s.iter().filter(|p| all || p.starts_with(&prefix)).collect())
                    .unwrap_or_default();
                w.string_vec(&list);
            }
            Request::AddWatch { path, mode } => {
                match mode {
                    crate::proto::consts::add_watch_mode::PERSISTENT => {
                        self.data_watches.add(&path, conn_id, watch::PERSISTENT);
                        self.child_watches.add(&path, conn_id, watch::PERSISTENT);
                    }
                    crate::proto::consts::add_watch_mode::PERSISTENT_RECURSIVE => {
                        self.data_watches.add(&path, conn_id, watch::RECURSIVE);
                    }
                    _ => return Err(Code::BadArguments),
                }
                w.i32(0);
            }
            Request::CheckWatches { path, watcher_type } => {
                if !self.watch_op(conn_id, &path, watcher_type, false) {
                    return Err(Code::NoWatcher);
                }
                return Ok(Reply::Empty);
            }
            Request::RemoveWatches { path, watcher_type } => {
                if !self.watch_op(conn_id, &path, watcher_type, true) {
                    return Err(Code::NoWatcher);
                }
                return Ok(Reply::Empty);
            }
            Request::WhoAmI => {
                let ids = self.auth_ids(conn_id);
                w.i32(ids.len() as i32);
                for i in ids.iter() {
                    let user = match i.scheme.as_str() {
                        "digest" => i.id.split(':').next().unwrap_or(""),
                        "ip" => i.id.as_str(),
                        _ => "",
                    };
                    w.string(&i.scheme).string(user);
                }
            }
            Request::MultiRead(ops) => {
                for o in ops {
                    let (t, path) = match &o {
                        ReadOp::GetChildren { path } => (op::GET_CHILDREN, path),
                        ReadOp::GetData { path } => (op::GET_DATA, path),
                    };
                    let res = match self.tree.get(path) {
                        None => Err(Code::NoNode),
                        Some(n) => self.node_readable(conn_id, n.acl, perms::READ).map(|_| n),
                    };
                    match res {
                        Err(c) => {
                            write_multi_header(&mut w, -1, false, c.code());
                            w.i32(c.code());
                        }
                        Ok(n) => {
                            write_multi_header(&mut w, t, false, 0);
                            if t == op::GET_DATA {
                                w.buffer(n.data);
                                n.stat().write(&mut w);
                            } else {
                                w.i32(n.num_children as i32);
                                for c in n.children() {
                                    w.string(c);
                                }
                            }
                        }
                    }
                }
                write_multi_header(&mut w, -1, true, -1);
            }
            _ => return Err(Code::Unimplemented),
        }
        Ok(Reply::Body(w))
    }

    /// checkWatches (remove = false) and removeWatches (remove = true).
    fn watch_op(&mut self, conn: ConnId, path: &str, t: i32, remove: bool) -> bool {
        let all = watch::STANDARD | watch::PERSISTENT | watch::RECURSIVE;
        let mut tables: Vec<(bool, u8)> = Vec::new(); // (child table?, mask)
        match t {
            watcher_type::CHILDREN => tables.push((true, all)),
            watcher_type::DATA => tables.push((false, all)),
            watcher_type::ANY => {
                tables.push((true, all));
                tables.push((false, all));
            }
            watcher_type::PERSISTENT => {
                tables.push((true, watch::PERSISTENT));
                tables.push((false, watch::PERSISTENT));
            }
            watcher_type::PERSISTENT_RECURSIVE => tables.push((false, watch::RECURSIVE)),
            _ => return false,
        }
        let mut found = false;
        for (child, mask) in tables {
            let table = if child {
                &mut self.child_watches
            } else {
                &mut self.data_watches
            };
            if remove {
                found |= table.remove(path, conn, mask);
            } else {
                found |= table.contains(path, conn, mask);
            }
        }
        found
    }

    /// setWatches: re-arm a reconnecting client's watches, firing at once for what changed
    /// since `relative_zxid` (events carry zxid -1, as in ZooKeeper).
    fn set_watches(&mut self, conn: ConnId, sw: &crate::proto::SetWatches) {
        let rz = sw.relative_zxid;
        let mut events: Vec<(i32, String)> = Vec::new();
        for p in &sw.data {
            match self.tree.get(p) {
                None => events.push((event::NODE_DELETED, p.clone())),
                Some(n) if n.mzxid > rz => events.push((event::NODE_DATA_CHANGED, p.clone())),
                Some(_) => self.data_watches.add(p, conn, watch::STANDARD),
            }
        }
        for p in &sw.exist {
            match self.tree.get(p) {
                Some(_) => events.push((event::NODE_CREATED, p.clone())),
                None => self.data_watches.add(p, conn, watch::STANDARD),
            }
        }
        for p in &sw.child {
            match self.tree.get(p) {
                None => events.push((event::NODE_DELETED, p.clone())),
                Some(n) if n.pzxid > rz => events.push((event::NODE_CHILDREN_CHANGED, p.clone())),
                Some(_) => self.child_watches.add(p, conn, watch::STANDARD),
            }
        }
        for p in &sw.persistent {
            self.data_watches.add(p, conn, watch::PERSISTENT);
            self.child_watches.add(p, conn, watch::PERSISTENT);
        }
        for p in &sw.persistent_recursive {
            self.data_watches.add(p, conn, watch::RECURSIVE);
        }
        for (t, p) in events {
            self.notify(conn, -1, t, &p, None);
        }
    }

    /// Periodic work: expire sessions; delete empty containers and expired TTL nodes.
    pub fn tick(&mut self, now: Now) {
        self.last_tick_mono = now.mono_ms;
        if !self.decides_expiry() {
            return;
        }
        for id in self.sessions.expired(now.mono_ms) {
            let Some(s) = self.sessions.get_mut(id) else {
                continue;
            };
            s.closing = true;
            let (timeout, conn) = (s.timeout_ms, s.conn);
            log::info!("Expiring session 0x{id:x}, timeout of {timeout}ms exceeded");
            self.stats.sessions_expired += 1;
            let h = self.txn_header(id, 0, now);
            let origin = Origin::Expire { conn };
            if self
                .log_txn(h, Txn::CloseSession, prep::Outstanding::new(), origin)
                .is_err()
            {
                // Try again on a later tick, once the log accepts writes.
                if let Some(s) = self.sessions.get_mut(id) {
                    s.closing = false;
                }
            }
        }
        let interval = self.cfg.container_check_interval_ms;
        if now.mono_ms.saturating_sub(self.last_container_check_ms) >= interval {
            self.last_container_check_ms = now.mono_ms;
            self.check_containers(now);
        }
        self.settle(now);
    }

    /// ContainerManager: containers that had children and have none, containers never used
    /// for longer than maxNeverUsedIntervalMs, and TTL nodes with no children whose mtime is
    /// older than their ttl.
    pub fn check_containers(&mut self, now: Now) {
        let mut doomed = Vec::new();
        for p in &self.tree.containers {
            if let Some(n) = self.tree.get(p) {
                if n.num_children > 0 {
                    continue;
                }
                let never_used = self.cfg.container_max_never_used_interval_ms;
                if n.cversion > 0 || (never_used > 0 && now.wall_ms - n.mtime > never_used as i64) {
                    doomed.push(p.clone());
                }
            }
        }
        for p in &self.tree.ttls {
            if let Some(n) = self.tree.get(p) {
                if let crate::proto::consts::OwnerKind::Ttl(ttl) =
                    crate::proto::consts::owner_kind(n.ephemeral_owner)
                {
                    if n.num_children == 0 && now.wall_ms - n.mtime > ttl {
                        doomed.push(p.clone());
                    }
                }
            }
        }
        doomed.truncate(self.cfg.container_max_per_minute.max(1) as usize);
        for p in doomed {
            let prepped = {
                let mut prep = prep::Prep::new(&self.tree, &self.cfg, &[], 0, &self.outstanding);
                prep.delete_container(&p).map(|t| (t, prep.into_changes()))
            };
            if let Ok((t, changes)) = prepped {
                let h = self.txn_header(0, 0, now);
                if self.log_txn(h, t, changes, Origin::Internal).is_ok() {
                    log::info!("Deleting container or expired TTL node {p}");
                }
            }
        }
    }
}

/// Whether a connection's next request may be processed now. Replies leave in request order
/// and a read must see the connection's earlier writes, so anything waits while writes are
/// in flight — except another write: writes are logged, committed and answered in order, so
/// a pipelining client gets many into one group commit (ZooKeeper's pipeline does the
/// same). Session close and a forwarded sync are barriers nothing overtakes.
fn may_run(c: &Conn, frame: &[u8]) -> bool {
    if c.writes_in_flight == 0 {
        return true;
    }
    let code = frame
        .get(4..8)
        .map_or(0, |b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    !c.barrier
        && c.writes_in_flight < WRITES_IN_FLIGHT_MAX
        && op::is_write(code)
        && code != op::CLOSE_SESSION
        && code != op::CREATE_SESSION
}

/// The opcode a decoded request came as, for `cons`' lastOp.
fn op_of(req: &Request) -> i32 {
    match req {
        Request::Create(c) => c.op,
        Request::Delete { .. } => op::DELETE,
        Request::Exists { .. } => op::EXISTS,
        Request::GetData { .. } => op::GET_DATA,
        Request::SetData { .. } => op::SET_DATA,
        Request::GetAcl { .. } => op::GET_ACL,
        Request::SetAcl { .. } => op::SET_ACL,
        Request::GetChildren { with_stat, .. } => {
            if *with_stat {
                op::GET_CHILDREN2
            } else {
                op::GET_CHILDREN
            }
        }
        Request::Sync { .. } => op::SYNC,
        Request::Ping => op::PING,
        Request::Check { .. } => op::CHECK,
        Request::Multi(_) => op::MULTI,
        Request::MultiRead(_) => op::MULTI_READ,
        Request::Reconfig => op::RECONFIG,
        Request::CheckWatches { .. } => op::CHECK_WATCHES,
        Request::RemoveWatches { .. } => op::REMOVE_WATCHES,
        Request::DeleteContainer { .. } => op::DELETE_CONTAINER,
        Request::Auth { .. } => op::AUTH,
        Request::SetWatches(_) => op::SET_WATCHES,
        Request::Sasl { .. } => op::SASL,
        Request::GetEphemerals { .. } => op::GET_EPHEMERALS,
        Request::GetAllChildrenNumber { .. } => op::GET_ALL_CHILDREN_NUMBER,
        Request::AddWatch { .. } => op::ADD_WATCH,
        Request::WhoAmI => op::WHO_AM_I,
        Request::CloseSession => op::CLOSE_SESSION,
    }
}

/// The reply to a write, from the result of applying its txn.
fn write_reply(req: &Request, res: OpResult) -> Reply {
    match (req, res) {
        (_, OpResult::Error(c)) => Reply::Err(c),
        (Request::Create(c), OpResult::Created { path, stat }) => {
            let mut w = Writer::new();
            w.string(&path);
            if c.op != op::CREATE {
                stat.write(&mut w);
            }
            Reply::Body(w)
        }
        (_, OpResult::DataSet { stat }) | (_, OpResult::AclSet { stat }) => {
            let mut w = Writer::new();
            stat.write(&mut w);
            Reply::Body(w)
        }
        (Request::Multi(ops), OpResult::Multi(results)) => {
            let mut w = Writer::new();
            for (o, r) in ops.iter().zip(results) {
                encode_multi_result(&mut w, o, r);
            }
            write_multi_header(&mut w, -1, true, -1);
            Reply::Body(w)
        }
        _ => Reply::Empty,
    }
}

fn encode_multi_result(w: &mut Writer, o: &crate::proto::MultiOp, r: OpResult) {
    use crate::proto::MultiOp;
    match r {
        OpResult::Created { path, stat } => {
            let plain = matches!(o, MultiOp::Create(c) if c.op == op::CREATE);
            if plain {
                write_multi_header(w, op::CREATE, false, 0);
                w.string(&path);
            } else {
                write_multi_header(w, op::CREATE2, false, 0);
                w.string(&path);
                stat.write(w);
            }
        }
        OpResult::Deleted => write_multi_header(w, op::DELETE, false, 0),
        OpResult::DataSet { stat } => {
            write_multi_header(w, op::SET_DATA, false, 0);
            stat.write(w);
        }
        OpResult::Checked => write_multi_header(w, op::CHECK, false, 0),
        OpResult::Error(c) => {
            write_multi_header(w, -1, false, c.code());
            w.i32(c.code());
        }
        _ => {
            write_multi_header(w, -1, false, Code::RuntimeInconsistency.code());
            w.i32(Code::RuntimeInconsistency.code());
        }
    }
}

/// The client address as Java's InetAddress.getHostAddress() prints it.
pub fn java_host_address(addr: SocketAddr) -> String {
    match addr.ip() {
        std::net::IpAddr::V4(a) => a.to_string(),
        std::net::IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return v4.to_string();
            }
            a.segments()
                .iter()
                .map(|s| format!("{s:x}"))
                .collect::<Vec<_>>()
                .join(":")
        }
    }
}

#[cfg(test)]
mod tests;
