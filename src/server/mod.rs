//! One server's request pipeline: connections and their sessions, the connect handshake,
//! dispatch by opcode, prep (request -> txn), commit (txn -> tree -> reply + watch events),
//! local reads, watch tables, auth and four-letter words. Pure: time comes in as arguments
//! and bytes go out through `Output`s the network loop sends, so a test or the simulator can
//! drive it without sockets. Corresponds to Apache's ZooKeeperServer with its
//! PrepRequestProcessor and FinalRequestProcessor, SessionTracker and WatchManager.
//!
//! Ordering: every request of a connection is answered in arrival order, and the watch
//! events a write causes are queued before its reply, so a client always sees the event
//! before any reply that reflects the change.

pub mod fourlw;
pub mod prep;
pub mod session;
pub mod watch;

use crate::config::Config;
use crate::proto::consts::{event, op, perms, state, watcher_type, xid};
use crate::proto::records::write_multi_header;
use crate::proto::txn::{Txn, TxnHeader};
use crate::proto::{
    Code, ConnectRequest, ConnectResponse, Id, ReadOp, Reader, ReplyHeader, Request, RequestHeader,
    Writer,
};
use crate::tree::{acl, DataTree, OpResult, Trigger};
use session::SessionTracker;
use std::collections::HashMap;
use std::net::SocketAddr;
use watch::WatchTable;

/// A connection's id, chosen by the network loop.
pub type ConnId = u64;

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
    pub auth: Vec<Id>,
    pub established_ms: i64,
    pub stats: ConnStats,
    pub closing: bool,
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

pub struct Server {
    pub cfg: Config,
    pub tree: DataTree,
    pub sessions: SessionTracker,
    pub data_watches: WatchTable,
    pub child_watches: WatchTable,
    pub conns: HashMap<ConnId, Conn>,
    pub last_zxid: i64,
    pub stats: ServerStats,
    pub started_ms: i64,
    pub server_id: u64,
    out: Vec<Output>,
    last_container_check_ms: u64,
    /// The monotonic time of the last call in, for showing expiry times as dates.
    pub last_tick_mono: u64,
}

/// The reply a request earns, before it is framed.
enum Reply {
    Empty,
    Body(Writer),
    Err(Code),
}

impl Server {
    pub fn new(cfg: Config, now: Now, secret: [u8; 32]) -> Server {
        let tick = cfg.tick_time_ms;
        Server {
            cfg,
            tree: DataTree::new(),
            sessions: SessionTracker::new(1, now.wall_ms, tick, secret),
            data_watches: WatchTable::default(),
            child_watches: WatchTable::default(),
            conns: HashMap::new(),
            last_zxid: 0,
            stats: ServerStats::default(),
            started_ms: now.wall_ms,
            server_id: 0,
            out: Vec::new(),
            last_container_check_ms: now.mono_ms,
            last_tick_mono: now.mono_ms,
        }
    }

    /// Takes what the server wants sent or closed since the last call.
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
                auth: vec![Id::new("ip", &java_host_address(addr))],
                established_ms: now.wall_ms,
                stats: ConnStats::default(),
                closing: false,
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

    /// The zxid of the next txn.
    fn next_zxid(&mut self) -> i64 {
        self.last_zxid + 1
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

    /// The first frame of a connection: a ConnectRequest.
    pub fn connect(&mut self, conn_id: ConnId, payload: &[u8], now: Now) {
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
        let invalid = ConnectResponse {
            protocol_version: 0,
            timeout_ms: 0,
            session_id: 0,
            passwd: vec![0; session::PASSWORD_LEN],
            read_only: req.read_only.map(|_| false),
        };
        let session_id = if req.session_id == 0 {
            let id = self.sessions.next_session_id();
            let hdr = TxnHeader {
                client_id: id,
                cxid: 0,
                zxid: self.next_zxid(),
                time_ms: now.wall_ms,
            };
            self.commit(
                hdr,
                &Txn::CreateSession {
                    timeout_ms: timeout as i32,
                },
                now,
            );
            log::info!(
                "Established session 0x{:x} with negotiated timeout {} for client {}",
                id,
                timeout,
                self.conns
                    .get(&conn_id)
                    .map(|c| c.addr.to_string())
                    .unwrap_or_default()
            );
            id
        } else {
            let valid = self.sessions.get(req.session_id).is_some()
                && req.passwd.as_slice() == self.sessions.password(req.session_id);
            if !valid {
                log::info!(
                    "Invalid session 0x{:x} for client, probably expired",
                    req.session_id
                );
                let frame = invalid.to_frame();
                self.send(conn_id, frame);
                self.close(conn_id);
                return;
            }
            let old = self.sessions.get(req.session_id).and_then(|s| s.conn);
            if let Some(old) = old {
                if old != conn_id {
                    self.close(old);
                    self.data_watches.remove_conn(old);
                    self.child_watches.remove_conn(old);
                    if let Some(c) = self.conns.get_mut(&old) {
                        c.session_id = 0;
                    }
                }
            }
            self.sessions
                .set_timeout(req.session_id, timeout, now.mono_ms);
            req.session_id
        };
        if let Some(s) = self.sessions.get_mut(session_id) {
            s.conn = Some(conn_id);
        }
        if let Some(c) = self.conns.get_mut(&conn_id) {
            c.session_id = session_id;
            c.timeout_ms = timeout;
        }
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms: timeout as i32,
            session_id,
            passwd: self.sessions.password(session_id).to_vec(),
            read_only: req.read_only.map(|_| false),
        };
        self.send(conn_id, resp.to_frame());
    }

    /// One request frame on an established connection.
    pub fn request(&mut self, conn_id: ConnId, payload: &[u8], now: Now) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        if conn.closing {
            return;
        }
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
        // A session that was expired or taken over no longer owns this connection.
        if self.sessions.get(session_id).map(|s| s.conn) != Some(Some(conn_id)) {
            self.close(conn_id);
            return;
        }
        self.sessions.touch(session_id, now.mono_ms);
        let start = now.mono_ms;
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
        let decoded = Request::read(code, &mut r);
        match decoded {
            Err(e) => {
                log::info!("connection {conn_id}: malformed {code} request: {e}");
                if op::is_write(code) {
                    // A write that fails to decode still becomes an error txn, as in ZooKeeper.
                    let hdr_t = self.txn_header(session_id, hdr.xid, now);
                    self.commit(
                        hdr_t,
                        &Txn::Error {
                            err: Code::MarshallingError.code(),
                        },
                        now,
                    );
                }
                self.reply(
                    conn_id,
                    hdr.xid,
                    self.last_zxid,
                    Reply::Err(Code::MarshallingError),
                );
            }
            Ok(req) => self.dispatch(conn_id, session_id, hdr, req, now),
        }
        let latency = now.mono_ms.saturating_sub(start);
        if hdr.xid != xid::PING {
            self.stats.record_latency(latency);
        }
        let last_zxid = self.last_zxid;
        if let Some(c) = self.conns.get_mut(&conn_id) {
            let s = &mut c.stats;
            s.last_op = op::last_op_name(code);
            s.last_cxid = hdr.xid;
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

    fn txn_header(&mut self, session_id: i64, cxid: i32, now: Now) -> TxnHeader {
        TxnHeader {
            client_id: session_id,
            cxid,
            zxid: self.next_zxid(),
            time_ms: now.wall_ms,
        }
    }

    fn auth_ids(&self, conn_id: ConnId) -> Vec<Id> {
        self.conns
            .get(&conn_id)
            .map(|c| c.auth.clone())
            .unwrap_or_default()
    }

    fn dispatch(
        &mut self,
        conn_id: ConnId,
        session_id: i64,
        hdr: RequestHeader,
        req: Request,
        now: Now,
    ) {
        let xid = hdr.xid;
        match req {
            Request::Ping => {
                self.reply(conn_id, xid::PING, self.last_zxid, Reply::Empty);
            }
            Request::Auth { scheme, auth, .. } => self.auth(conn_id, xid, &scheme, &auth),
            Request::Sasl { .. } => {
                // No SASL is configured: answer as Apache does then, with a null token.
                let mut w = Writer::new();
                w.buffer(None);
                self.reply(conn_id, xid, self.last_zxid, Reply::Body(w));
            }
            Request::CloseSession => {
                let h = self.txn_header(session_id, xid, now);
                self.commit(h, &Txn::CloseSession, now);
                log::info!("Closed session 0x{session_id:x}");
                self.reply(conn_id, xid, self.last_zxid, Reply::Empty);
                if let Some(c) = self.conns.get_mut(&conn_id) {
                    c.session_id = 0;
                }
                self.close(conn_id);
            }
            Request::Create(_)
            | Request::Delete { .. }
            | Request::SetData { .. }
            | Request::SetAcl { .. }
            | Request::Multi(_)
            | Request::DeleteContainer { .. }
            | Request::Reconfig => self.write(conn_id, session_id, hdr, req, now),
            Request::SetWatches(sw) => {
                self.set_watches(conn_id, &sw);
                self.reply(conn_id, xid, self.last_zxid, Reply::Empty);
            }
            other => {
                let reply = self.read(conn_id, session_id, other);
                self.reply(conn_id, xid, self.last_zxid, reply);
            }
        }
    }

    fn auth(&mut self, conn_id: ConnId, xid: i32, scheme: &str, auth: &[u8]) {
        let new_ids = match scheme {
            "digest" => {
                let text = String::from_utf8_lossy(auth);
                let id = acl::digest_id(&text);
                let mut v = vec![Id::new("digest", &id)];
                if self.cfg.super_digest.as_deref() == Some(id.as_str()) {
                    v.push(Id::new("super", ""));
                }
                Some(v)
            }
            "ip" => self
                .conns
                .get(&conn_id)
                .map(|c| vec![Id::new("ip", &java_host_address(c.addr))]),
            _ => None,
        };
        match new_ids {
            Some(ids) => {
                if let Some(c) = self.conns.get_mut(&conn_id) {
                    for i in ids {
                        if !c.auth.contains(&i) {
                            c.auth.push(i);
                        }
                    }
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

    /// Prep, commit and reply for one write.
    fn write(
        &mut self,
        conn_id: ConnId,
        session_id: i64,
        hdr: RequestHeader,
        req: Request,
        now: Now,
    ) {
        let ids = self.auth_ids(conn_id);
        let txn = {
            let mut p = prep::Prep::new(&self.tree, &self.cfg, &ids, session_id);
            match &req {
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
            }
        };
        let txn = txn.unwrap_or_else(|c| Txn::Error { err: c.code() });
        let th = self.txn_header(session_id, hdr.xid, now);
        let res = self.commit(th, &txn, now);
        let zxid = self.last_zxid;
        let reply = match (&req, res) {
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
        };
        self.reply(conn_id, hdr.xid, zxid, reply);
    }

    fn node_readable(
        &self,
        conn_id: ConnId,
        node_acl: &[crate::proto::Acl],
        perm: i32,
    ) -> Result<(), Code> {
        let ids = self
            .conns
            .get(&conn_id)
            .map(|c| c.auth.as_slice())
            .unwrap_or(&[]);
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
                    self.node_readable(conn_id, &n.acl, perms::READ)?;
                }
                if watch {
                    self.data_watches.add(&path, conn_id, watch::STANDARD);
                }
                let n = self.tree.get(&path).ok_or(Code::NoNode)?;
                n.stat().write(&mut w);
            }
            Request::GetData { path, watch } => {
                let n = self.tree.get(&path).ok_or(Code::NoNode)?;
                self.node_readable(conn_id, &n.acl, perms::READ)?;
                w.buffer(n.data.as_deref());
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
                self.node_readable(conn_id, &n.acl, perms::READ)?;
                w.i32(n.children.len() as i32);
                for c in &n.children {
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
                self.node_readable(conn_id, &n.acl, perms::READ | perms::ADMIN)?;
                let shown = if self.node_readable(conn_id, &n.acl, perms::ADMIN).is_ok() {
                    n.acl.to_vec()
                } else {
                    acl::redact(&n.acl)
                };
                crate::proto::records::write_acl_vec(&mut w, &shown);
                n.stat().write(&mut w);
            }
            Request::GetAllChildrenNumber { path } => {
                let n = self.tree.get(&path).ok_or(Code::NoNode)?;
                self.node_readable(conn_id, &n.acl, perms::READ)?;
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
                for i in &ids {
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
                        Some(n) => self.node_readable(conn_id, &n.acl, perms::READ).map(|_| n),
                    };
                    match res {
                        Err(c) => {
                            write_multi_header(&mut w, -1, false, c.code());
                            w.i32(c.code());
                        }
                        Ok(n) => {
                            write_multi_header(&mut w, t, false, 0);
                            if t == op::GET_DATA {
                                w.buffer(n.data.as_deref());
                                n.stat().write(&mut w);
                            } else {
                                w.i32(n.children.len() as i32);
                                for c in &n.children {
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
        for id in self.sessions.expired(now.mono_ms) {
            let timeout = self.sessions.get(id).map(|s| s.timeout_ms).unwrap_or(0);
            log::info!("Expiring session 0x{id:x}, timeout of {timeout}ms exceeded");
            self.stats.sessions_expired += 1;
            let conn = self.sessions.get(id).and_then(|s| s.conn);
            let h = self.txn_header(id, 0, now);
            self.commit(h, &Txn::CloseSession, now);
            if let Some(c) = conn {
                self.close(c);
            }
        }
        let interval = self.cfg.container_check_interval_ms;
        if now.mono_ms.saturating_sub(self.last_container_check_ms) >= interval {
            self.last_container_check_ms = now.mono_ms;
            self.check_containers(now);
        }
    }

    /// ContainerManager: containers that had children and have none, containers never used
    /// for longer than maxNeverUsedIntervalMs, and TTL nodes with no children whose mtime is
    /// older than their ttl.
    pub fn check_containers(&mut self, now: Now) {
        let mut doomed = Vec::new();
        for p in &self.tree.containers {
            if let Some(n) = self.tree.get(p) {
                if !n.children.is_empty() {
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
                    if n.children.is_empty() && now.wall_ms - n.mtime > ttl {
                        doomed.push(p.clone());
                    }
                }
            }
        }
        doomed.truncate(self.cfg.container_max_per_minute.max(1) as usize);
        for p in doomed {
            let txn = {
                let mut prep = prep::Prep::new(&self.tree, &self.cfg, &[], 0);
                prep.delete_container(&p)
            };
            if let Ok(t) = txn {
                let h = self.txn_header(0, 0, now);
                self.commit(h, &t, now);
                log::info!("Deleted container or expired TTL node {p}");
            }
        }
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
