//! A ZooKeeper handle that lives across connections, as Apache's ZooKeeper.java and
//! ClientCnxn do for zkCli: a host list tried in order with failover to the next server, a
//! chroot, a connection thread that reads replies and notifications while the caller is
//! busy elsewhere (at a prompt, say), pings, session resumption with the session id and
//! password, re-sent auth and SetWatches after a reconnect, and, when asked, a fresh session
//! after expiry. Watch events are handed to a callback from that thread in the order the
//! server sent them, each before any reply that followed it, so a caller printing both
//! keeps the server's order. Requests are answered strictly in order (one connection, FIFO
//! xids). Client paths are validated as the Java client validates them and errors carry
//! the client path, so messages match zkCli's. It never retries a request itself: a request
//! cut off by a lost connection fails with ConnectionLoss, as in ZooKeeper.

use super::codec::{self, ClientInfo, OpResult};
use super::path::{validate_create_path, validate_path, ConnectString};
use super::watches::{WatchManager, WatchRegistration};
use super::{split_reply, FRAME_BYTES_MAX, PASSWORD_LEN};
use crate::proto::consts::{op, xid};
use crate::proto::frame::{self, FrameCheck};
use crate::proto::records::{Acl, Stat};
use crate::proto::{
    Code, ConnectRequest, ConnectResponse, CreateMode, MultiOp, ReplyHeader, Writer,
};
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// After every server in the list has refused once, wait this long before the next round,
/// as ClientCnxn does, so a dead ensemble is not hammered.
pub const RECONNECT_ROUND_PAUSE: Duration = Duration::from_secs(1);
/// The shortest connect timeout per host, however many hosts share the session timeout.
pub const CONNECT_TIMEOUT_MIN: Duration = Duration::from_millis(500);
/// A session no server has taken back for this many session timeouts is given up as
/// expired (with `renew_expired`), even if no server said so.
pub const LOCAL_EXPIRY_FACTOR: u64 = 2;
/// How often the connection thread wakes up to check for pings and shutdown.
const READ_TICK: Duration = Duration::from_millis(250);
/// How much one read from the socket asks for.
const READ_CHUNK_BYTES: usize = 64 << 10;
/// The znode that holds the ensemble configuration (ZooDefs.CONFIG_NODE); getConfig reads
/// it without the chroot.
pub const CONFIG_NODE: &str = "/zookeeper/config";

/// `KeeperState` values carried by `WatchedEvent`.
pub mod keeper_state {
    pub const DISCONNECTED: i32 = 0;
    pub const SYNC_CONNECTED: i32 = 3;
    pub const AUTH_FAILED: i32 = 4;
    pub const CONNECTED_READ_ONLY: i32 = 5;
    pub const EXPIRED: i32 = -112;
    pub const CLOSED: i32 = 7;
}

/// The `EventType` of connection-state events.
pub const EVENT_NONE: i32 = -1;

/// Java's name of a KeeperState, as `WatchedEvent.toString` prints it.
pub fn keeper_state_name(s: i32) -> &'static str {
    match s {
        0 => "Disconnected",
        1 => "NoSyncConnected",
        3 => "SyncConnected",
        4 => "AuthFailed",
        5 => "ConnectedReadOnly",
        6 => "SaslAuthenticated",
        -112 => "Expired",
        7 => "Closed",
        _ => "Unknown",
    }
}

/// Java's name of an EventType, as `WatchedEvent.toString` prints it.
pub fn event_type_name(t: i32) -> &'static str {
    match t {
        -1 => "None",
        1 => "NodeCreated",
        2 => "NodeDeleted",
        3 => "NodeDataChanged",
        4 => "NodeChildrenChanged",
        5 => "DataWatchRemoved",
        6 => "ChildWatchRemoved",
        7 => "PersistentWatchRemoved",
        _ => "Unknown",
    }
}

/// The handle's state (ZooKeeper.States), named as zkCli's prompt shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum States {
    Connecting,
    Connected,
    ConnectedReadOnly,
    Closed,
    AuthFailed,
    NotConnected,
}

impl States {
    pub fn name(self) -> &'static str {
        match self {
            States::Connecting => "CONNECTING",
            States::Connected => "CONNECTED",
            States::ConnectedReadOnly => "CONNECTEDREADONLY",
            States::Closed => "CLOSED",
            States::AuthFailed => "AUTH_FAILED",
            States::NotConnected => "NOT_CONNECTED",
        }
    }

    /// Whether the handle can still be used (States.isAlive).
    pub fn is_alive(self) -> bool {
        !matches!(self, States::Closed | States::AuthFailed)
    }

    pub fn is_connected(self) -> bool {
        matches!(self, States::Connected | States::ConnectedReadOnly)
    }
}

/// A watch or connection-state event (WatchedEvent), with the client path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    pub state: i32,
    pub event_type: i32,
    /// `None` for connection-state events, printed as `null`.
    pub path: Option<String>,
    /// The triggering txn's zxid from the notification header (-1 when unknown). zkCli 3.8
    /// does not print it.
    pub zxid: i64,
}

impl fmt::Display for WatchedEvent {
    /// `WatchedEvent.toString()` of ZooKeeper 3.8.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WatchedEvent state:{} type:{} path:{}",
            keeper_state_name(self.state),
            event_type_name(self.event_type),
            self.path.as_deref().unwrap_or("null")
        )
    }
}

/// What the session tells its owner, from its connection thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// An event for the default watcher.
    Watched(WatchedEvent),
    /// A human-readable note about the connection: failover, a renewed session.
    Notice(String),
}

/// The callback that receives `SessionEvent`s.
pub type EventHandler = Arc<dyn Fn(SessionEvent) + Send + Sync>;

/// Why a call failed, in the Java client's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZkError {
    /// A KeeperException: the code, and the client path when the call names one.
    Keeper { code: Code, path: Option<String> },
    /// What the Java client throws as IllegalArgumentException before sending (bad path,
    /// bad TTL).
    IllegalArgument(String),
}

impl ZkError {
    pub fn code(&self) -> Option<Code> {
        match self {
            ZkError::Keeper { code, .. } => Some(*code),
            ZkError::IllegalArgument(_) => None,
        }
    }

    fn keeper(code: Code, path: &str) -> ZkError {
        ZkError::Keeper {
            code,
            path: Some(path.to_owned()),
        }
    }
}

impl fmt::Display for ZkError {
    /// `KeeperException.getMessage()`: `KeeperErrorCode = <text>[ for <path>]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZkError::Keeper { code, path } => {
                write!(f, "KeeperErrorCode = {}", code.message())?;
                if let Some(p) = path {
                    write!(f, " for {p}")?;
                }
                Ok(())
            }
            ZkError::IllegalArgument(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ZkError {}

/// Turns a connect string's `host:port` (or `[v6]:port`) into addresses to try in order.
pub type Resolver = fn(&str) -> io::Result<Vec<SocketAddr>>;

/// The system resolver, through std's `ToSocketAddrs`.
pub fn system_resolver(host_port: &str) -> io::Result<Vec<SocketAddr>> {
    Ok(host_port.to_socket_addrs()?.collect())
}

/// How to reach the ensemble and what session to ask for.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub connect: ConnectString,
    pub session_timeout_ms: i32,
    /// Ask for a read-only-capable session (`zkCli.sh -r`).
    pub read_only: bool,
    /// After the server declares the session expired, open a new session instead of
    /// closing the handle as ZooKeeper.java does.
    pub renew_expired: bool,
    /// How host names are looked up. The caller chooses, so that a binary that cannot
    /// rely on the C library's resolver (the static build) can bring its own without this
    /// module depending on the network layer.
    pub resolver: Resolver,
}

impl SessionConfig {
    /// A read-write session, closed on expiry as in ZooKeeper.java, using the system
    /// resolver.
    pub fn new(connect: ConnectString, session_timeout_ms: i32) -> SessionConfig {
        SessionConfig {
            connect,
            session_timeout_ms,
            read_only: false,
            renew_expired: false,
            resolver: system_resolver,
        }
    }
}

type Reply = Result<(ReplyHeader, Vec<u8>), Code>;

/// A removeWatches request's local half (WatchDeregistration).
#[derive(Debug, Clone)]
struct Deregistration {
    path: String,
    watcher_type: i32,
    local: bool,
}

struct Pending {
    xid: i32,
    reply: mpsc::Sender<Reply>,
    reg: Option<WatchRegistration>,
    dereg: Option<Deregistration>,
}

struct Inner {
    state: States,
    session_id: i64,
    password: Vec<u8>,
    negotiated_timeout_ms: i32,
    last_zxid: i64,
    next_xid: i32,
    /// Requests sent and not yet answered, oldest first. Bounded by the callers: each one
    /// waits for its reply before it can send another.
    pending: VecDeque<Pending>,
    watches: WatchManager,
    auth: Vec<(String, Option<Vec<u8>>)>,
    /// Connection attempts finished, successful or not; callers wait on its change.
    attempts: u64,
    /// The latest connection attempt failed: requests fail at once with ConnectionLoss
    /// until one succeeds, as ClientCnxn fails its queue at every failed attempt.
    last_attempt_failed: bool,
    stopping: bool,
    /// closeSession has been sent: the server closing the connection is expected, and no
    /// reconnection follows.
    closing: bool,
    /// The last connection state delivered, so a state is reported once however often it
    /// recurs (EventThread.sessionState).
    last_event_state: i32,
    /// A clone of the live socket, shut down to wake the connection thread on close.
    socket: Option<TcpStream>,
    connected_host: Option<String>,
    last_send: Instant,
}

struct Shared {
    cfg: SessionConfig,
    handler: EventHandler,
    /// Lock order: `writer` before `inner`.
    writer: Mutex<Option<TcpStream>>,
    inner: Mutex<Inner>,
    cond: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a state change, but not past `deadline`: the guard back, or `None` (the
    /// lock released) once the deadline has passed.
    fn wait_before<'a>(
        &'a self,
        g: MutexGuard<'a, Inner>,
        deadline: Instant,
    ) -> Option<MutexGuard<'a, Inner>> {
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        Some(
            self.cond
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0,
        )
    }

    fn writer(&self) -> MutexGuard<'_, Option<TcpStream>> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, ev: SessionEvent) {
        (self.handler)(ev);
    }

    /// Delivers a connection-state event unless it repeats the last one.
    fn emit_state(&self, state: i32) {
        {
            let mut g = self.lock();
            if g.last_event_state == state {
                return;
            }
            g.last_event_state = state;
        }
        self.emit(SessionEvent::Watched(WatchedEvent {
            state,
            event_type: EVENT_NONE,
            path: None,
            zxid: -1,
        }));
    }

    fn emit_removed(&self, path: &str, events: &[i32]) {
        for &t in events {
            self.emit(SessionEvent::Watched(WatchedEvent {
                state: keeper_state::SYNC_CONNECTED,
                event_type: t,
                path: Some(path.to_owned()),
                zxid: -1,
            }));
        }
    }

    fn stopping(&self) -> bool {
        self.lock().stopping
    }

    /// Writes a frame with a special xid (ping, auth, setWatches) if connected.
    fn send_special(&self, x: i32, code: i32, body: &[u8]) -> io::Result<()> {
        let mut w = self.writer();
        let Some(stream) = w.as_mut() else {
            return Ok(());
        };
        let mut f = Writer::frame();
        f.i32(x).i32(code).raw(body);
        let r = stream.write_all(&f.finish_frame());
        self.lock().last_send = Instant::now();
        r
    }
}

/// The code a request gets when its connection is gone (ClientCnxn.conLossPacket):
/// AuthFailed after a refused identity, SessionExpired on a closed handle, ConnectionLoss
/// otherwise.
fn lost_code(state: States) -> Code {
    match state {
        States::AuthFailed => Code::AuthFailed,
        States::Closed => Code::SessionExpired,
        _ => Code::ConnectionLoss,
    }
}

/// Applies a reply to a request's watch (de)registration, as ClientCnxn.finishPacket
/// does; returns the final error code and the WatchRemoved events to deliver.
fn finish(
    watches: &mut WatchManager,
    reg: Option<&WatchRegistration>,
    dereg: Option<&Deregistration>,
    err: i32,
) -> (i32, Vec<i32>) {
    if let Some(r) = reg {
        watches.register(r, err);
    }
    match dereg {
        None => (err, Vec::new()),
        Some(d) => match watches.remove(&d.path, d.watcher_type, d.local, err) {
            Ok(events) => (Code::Ok.code(), events),
            Err(code) => (code.code(), Vec::new()),
        },
    }
}

/// A session handle. Dropping it stops the connection thread without closing the
/// session (the server expires it later), which is what a zkCli process does at exit.
pub struct Session {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("session_id", &format_args!("0x{:x}", self.session_id()))
            .field("state", &self.state())
            .finish()
    }
}

impl Session {
    /// Starts connecting in the background; events go to `handler`.
    pub fn start(cfg: SessionConfig, handler: EventHandler) -> Session {
        let shared = Arc::new(Shared {
            cfg,
            handler,
            writer: Mutex::new(None),
            inner: Mutex::new(Inner {
                state: States::Connecting,
                session_id: 0,
                password: vec![0; PASSWORD_LEN],
                negotiated_timeout_ms: 0,
                last_zxid: 0,
                next_xid: 1,
                pending: VecDeque::new(),
                watches: WatchManager::default(),
                auth: Vec::new(),
                attempts: 0,
                last_attempt_failed: false,
                stopping: false,
                closing: false,
                last_event_state: keeper_state::DISCONNECTED,
                socket: None,
                connected_host: None,
                last_send: Instant::now(),
            }),
            cond: Condvar::new(),
        });
        let s2 = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("zk-session".to_owned())
            .spawn(move || connection_thread(s2))
            .expect("spawning the session thread");
        Session {
            shared,
            thread: Mutex::new(Some(thread)),
        }
    }

    pub fn state(&self) -> States {
        self.shared.lock().state
    }

    pub fn session_id(&self) -> i64 {
        self.shared.lock().session_id
    }

    pub fn negotiated_timeout_ms(&self) -> i32 {
        self.shared.lock().negotiated_timeout_ms
    }

    /// The server currently connected to, as written in the connect string.
    pub fn connected_host(&self) -> Option<String> {
        self.shared.lock().connected_host.clone()
    }

    pub fn connect_string(&self) -> &ConnectString {
        &self.shared.cfg.connect
    }

    /// A copy of the watches held, for completion and tests.
    pub fn watches(&self) -> WatchManager {
        self.shared.lock().watches.clone()
    }

    /// Waits until connected; false if `timeout` passes first or the handle dies.
    pub fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.shared.lock();
        loop {
            if g.state.is_connected() {
                return true;
            }
            if !g.state.is_alive() {
                return false;
            }
            match self.shared.wait_before(g, deadline) {
                Some(next) => g = next,
                None => return false,
            }
        }
    }

    /// Waits until a connection is up or one round over every host has failed (bounded
    /// by `timeout`); true if connected.
    pub fn wait_first_round(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let hosts = self.shared.cfg.connect.hosts.len() as u64;
        let mut g = self.shared.lock();
        let start = g.attempts;
        loop {
            if g.state.is_connected() {
                return true;
            }
            if !g.state.is_alive() || g.attempts >= start + hosts {
                return false;
            }
            match self.shared.wait_before(g, deadline) {
                Some(next) => g = next,
                None => return false,
            }
        }
    }

    /// Sends a request and waits for its reply. While connecting, waits for the attempt in
    /// progress; a request that cannot be sent, or whose connection is lost before the
    /// reply, fails with ConnectionLoss (after its local watch removal, if any, as in
    /// ClientCnxn).
    fn submit(
        &self,
        code: i32,
        body: &[u8],
        reg: Option<WatchRegistration>,
        dereg: Option<Deregistration>,
    ) -> Reply {
        let sh = &self.shared;
        let fail_early = |err: Code| -> Reply {
            let (err, events) = {
                let mut g = sh.lock();
                finish(&mut g.watches, reg.as_ref(), dereg.as_ref(), err.code())
            };
            if let Some(d) = &dereg {
                sh.emit_removed(&d.path, &events);
            }
            if err == 0 {
                Ok((
                    ReplyHeader {
                        xid: 0,
                        zxid: -1,
                        err: 0,
                    },
                    Vec::new(),
                ))
            } else {
                Err(Code::from_code(err).unwrap_or(Code::ConnectionLoss))
            }
        };
        // Wait for the connection attempt in progress, as a packet queued in ClientCnxn's
        // outgoing queue waits, bounded by the session timeout.
        {
            let wait = Duration::from_millis(sh.cfg.session_timeout_ms.max(1) as u64);
            let deadline = Instant::now() + wait;
            let mut g = sh.lock();
            let start = g.attempts;
            loop {
                if g.state.is_connected() {
                    break;
                }
                if !g.state.is_alive() || g.attempts > start || g.last_attempt_failed {
                    let code = lost_code(g.state);
                    drop(g);
                    return fail_early(code);
                }
                match sh.wait_before(g, deadline) {
                    Some(next) => g = next,
                    None => return fail_early(Code::ConnectionLoss),
                }
            }
        }
        let (tx, rx) = mpsc::channel();
        {
            let mut w = sh.writer();
            let Some(stream) = w.as_mut() else {
                drop(w);
                return fail_early(Code::ConnectionLoss);
            };
            let x = {
                let mut g = sh.lock();
                let x = g.next_xid;
                g.next_xid = if x == i32::MAX { 1 } else { x + 1 };
                g.pending.push_back(Pending {
                    xid: x,
                    reply: tx,
                    reg,
                    dereg,
                });
                g.last_send = Instant::now();
                x
            };
            let mut f = Writer::frame();
            f.i32(x).i32(code).raw(body);
            if stream.write_all(&f.finish_frame()).is_err() {
                // The connection thread sees the broken socket and fails what is pending,
                // this request included.
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        rx.recv().unwrap_or(Err(Code::ConnectionLoss))
    }

    /// `submit` with the error turned into a ZkError naming `path`.
    fn call(
        &self,
        code: i32,
        body: &[u8],
        reg: Option<WatchRegistration>,
        path: Option<&str>,
    ) -> Result<Vec<u8>, ZkError> {
        let err = |c: Code| ZkError::Keeper {
            code: c,
            path: path.map(str::to_owned),
        };
        match self.submit(code, body, reg, None) {
            Ok((hdr, body)) if hdr.err == 0 => Ok(body),
            Ok((hdr, _)) => Err(err(Code::from_code(hdr.err).unwrap_or(Code::SystemError))),
            Err(c) => Err(err(c)),
        }
    }

    fn server_path(&self, client_path: &str) -> String {
        self.shared.cfg.connect.server_path(client_path)
    }

    fn client_path(&self, server_path: &str) -> String {
        self.shared.cfg.connect.client_path(server_path)
    }

    /// Creates a node (ops 1 and 19; op 21 with a TTL) and returns its client path.
    pub fn create(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        mode: CreateMode,
        ttl_ms: Option<i64>,
    ) -> Result<String, ZkError> {
        validate_create_path(path, mode.is_sequential()).map_err(ZkError::IllegalArgument)?;
        match ttl_ms {
            Some(t) if mode.is_ttl() => validate_ttl(t).map_err(ZkError::IllegalArgument)?,
            Some(t) if t >= 0 => {
                return Err(ZkError::IllegalArgument(format!(
                    "ttl not valid for mode: {}",
                    create_mode_name(mode)
                )))
            }
            _ => {}
        }
        if acl.is_empty() {
            return Err(ZkError::Keeper {
                code: Code::InvalidAcl,
                path: None,
            });
        }
        let flags = create_flags(mode);
        let server = self.server_path(path);
        let (code, ttl) = if mode.is_ttl() {
            (op::CREATE_TTL, ttl_ms)
        } else if mode.is_container() {
            (op::CREATE_CONTAINER, None)
        } else {
            (op::CREATE, None)
        };
        let body = codec::create_body(&server, data, acl, flags, ttl);
        let reply = self.call(code, &body, None, Some(path))?;
        let created = codec::read_string(&reply).map_err(|_| bad_reply(path))?;
        Ok(self.client_path(&created))
    }

    pub fn delete(&self, path: &str, version: i32) -> Result<(), ZkError> {
        validate_path(path).map_err(ZkError::IllegalArgument)?;
        // Deleting "/" never succeeds; ZooKeeper.java sends it unprefixed even in a chroot.
        let server = if path == "/" {
            path.to_owned()
        } else {
            self.server_path(path)
        };
        self.call(
            op::DELETE,
            &codec::path_int_body(&server, version),
            None,
            Some(path),
        )
        .map(|_| ())
    }

    pub fn exists(&self, path: &str, watch: bool) -> Result<Option<Stat>, ZkError> {
        validate_path(path).map_err(ZkError::IllegalArgument)?;
        let reg = watch.then(|| WatchRegistration::Exists(path.to_owned()));
        let body = codec::path_watch_body(&self.server_path(path), watch);
        match self.call(op::EXISTS, &body, reg, Some(path)) {
            Ok(b) => Ok(Some(codec::read_stat(&b).map_err(|_| bad_reply(path))?)),
            Err(ZkError::Keeper {
                code: Code::NoNode, ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn get_data(&self, path: &str, watch: bool) -> Result<(Option<Vec<u8>>, Stat), ZkError> {
        validate_path(path).map_err(ZkError::IllegalArgument)?;
        let reg = watch.then(|| WatchRegistration::Data(path.to_owned()));
        let body = codec::path_watch_body(&self.server_path(path), watch);
        let b = self.call(op::GET_DATA, &body, reg, Some(path))?;
        codec::read_data_stat(&b).map_err(|_| bad_reply(path))
    }

    pub fn set_data(&self, path: &str, data: Option<&[u8]>, version: i32) -> Result<Stat, ZkError> {
        validate_path(path).map_err(ZkError::IllegalArgument)?;
        let body = codec::set_data_body(&self.server_path(path), data, version);
        let b = self.call(op::SET_DATA, &body, None, Some(path))?;
        codec::read_stat(&b).map_err(|_| bad_reply(path))
    }

    pub fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat), ZkError> {
        validate_path(path).map_err(ZkError::IllegalArgument)?;
        let b = self.call(
            op::GET_ACL,
            &codec::path_body(&self.server_path(path)),
            None,
            Some(path),
        )?;
        codec::read_acl_stat(&b).map_err(|_| bad_reply(path))
    }

    pub fn set_acl(&self, path: &str, acl: &[Acl], version: i32) -> Result<Stat, ZkError> {
        validate_path(path).map_err(ZkError::IllegalArgument)?;
        if acl.is_empty() {
            return Err(ZkError::Keeper {
                code: Code::InvalidAcl,
                path: None,
            });
        }
        let body = codec::set_acl_body(&self.server_path(path), acl, version);
        let b = self.call(op::SET_ACL, &body, None, Some(path))?;
        codec::read_stat(&b).map_err(|_| bad_reply(path))
    }

    /// Child names (op 8), in the server's order.
    pub fn get_children(&self, path: &str, watch: bool) -> Result<Vec<String>, ZkError> {
        validate_path(path).map_err(ZkError::IllegalArgument)?;
        let reg = watch.then(|| WatchRegistration::Child(path.to_owned()));
        let body = codec::path_watch_body(&self.server_path(path), watch);
        let b = self.call(op::GET_CHILDREN, &body, reg, Some(path))?;
        codec::read_strings(&b).map_err(|_| bad_reply(path))
    }

    /// Child names and the node's Stat (op 12).
    pub fn get_children2(&self, path: &str, watch: bool) -> Result<(Vec<String>, Stat), ZkError> {
        validate_path(path).map_err(ZkError::IllegalArgument)?;
        let reg = watch.then(|| WatchRegistration::Child(path.to_owned()));
        let body = codec::path_watch_body(&self.server_path(path), watch);
        let b = self.call(op::GET_CHILDREN2, &body, reg, Some(path))?;
        codec::read_strings_stat(&b).map_err(|_| bad_reply(path))
    }

    /// Sync; the error is the reply's code (zkCli prints `Sync has failed. rc=<n>`).
    pub fn sync(&self, path: &str) -> Result<(), ZkError> {
        validate_path(path).map_err(ZkError::IllegalArgument)?;
        self.call(
            op::SYNC,
            &codec::path_body(&self.server_path(path)),
            None,
            Some(path),
        )
        .map(|_| ())
    }

    /// An atomic multi (op 14) over client paths. The error is the header's code or the
    /// first failed op's; the results are returned either way.
    pub fn multi(&self, ops: &[MultiOp]) -> Result<Vec<OpResult>, (ZkError, Vec<OpResult>)> {
        let ops: Vec<MultiOp> = ops.iter().map(|o| self.chroot_op(o)).collect();
        let fail = |c: Code| ZkError::Keeper {
            code: c,
            path: None,
        };
        match self.submit(op::MULTI, &codec::multi_body(&ops), None, None) {
            Err(c) => Err((fail(c), Vec::new())),
            Ok((hdr, body)) => {
                let results = codec::read_multi_response(&body).unwrap_or_default();
                let first = results.iter().find_map(|r| match r {
                    OpResult::Error(c) if *c != Code::Ok => Some(*c),
                    _ => None,
                });
                match (Code::from_code(hdr.err), first) {
                    (Some(Code::Ok), None) => Ok(results),
                    (Some(Code::Ok), Some(c)) => Err((fail(c), results)),
                    (Some(c), _) => Err((fail(c), results)),
                    (None, _) => Err((fail(Code::SystemError), results)),
                }
            }
        }
    }

    fn chroot_op(&self, o: &MultiOp) -> MultiOp {
        match o {
            MultiOp::Create(c) => {
                let mut c = c.clone();
                c.path = self.server_path(&c.path);
                MultiOp::Create(c)
            }
            MultiOp::Delete { path, version } => MultiOp::Delete {
                path: self.server_path(path),
                version: *version,
            },
            MultiOp::SetData {
                path,
                data,
                version,
            } => MultiOp::SetData {
                path: self.server_path(path),
                data: data.clone(),
                version: *version,
            },
            MultiOp::Check { path, version } => MultiOp::Check {
                path: self.server_path(path),
                version: *version,
            },
        }
    }

    /// Adds an identity (xid -4, op 100) without waiting, as ZooKeeper.addAuthInfo does;
    /// it is sent again after every reconnect. A refusal makes the handle AUTH_FAILED.
    pub fn add_auth(&self, scheme: &str, auth: Option<&[u8]>) {
        self.shared
            .lock()
            .auth
            .push((scheme.to_owned(), auth.map(<[u8]>::to_vec)));
        let _ = self
            .shared
            .send_special(xid::AUTH, op::AUTH, &auth_body(scheme, auth));
    }

    /// getConfig: the data of /zookeeper/config, which is never chrooted.
    pub fn get_config(&self, watch: bool) -> Result<(Option<Vec<u8>>, Stat), ZkError> {
        let reg = watch.then(|| WatchRegistration::Data(CONFIG_NODE.to_owned()));
        let body = codec::path_watch_body(CONFIG_NODE, watch);
        let b = self.call(op::GET_DATA, &body, reg, Some(CONFIG_NODE))?;
        codec::read_data_stat(&b).map_err(|_| bad_reply(CONFIG_NODE))
    }

    /// ZooKeeperAdmin.reconfigure (op 16); errors carry no path.
    pub fn reconfig(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        members: Option<&str>,
        from_config: i64,
    ) -> Result<(Option<Vec<u8>>, Stat), ZkError> {
        let mut w = Writer::new();
        w.ustring(joining)
            .ustring(leaving)
            .ustring(members)
            .i64(from_config);
        let b = self.call(op::RECONFIG, &w.buf, None, None)?;
        codec::read_data_stat(&b).map_err(|_| ZkError::Keeper {
            code: Code::MarshallingError,
            path: None,
        })
    }

    /// removeAllWatches (op 18); `local` also removes the client's watches when the server
    /// cannot be asked.
    pub fn remove_all_watches(
        &self,
        path: &str,
        watcher_type: i32,
        local: bool,
    ) -> Result<(), ZkError> {
        validate_path(path).map_err(ZkError::IllegalArgument)?;
        let body = codec::path_int_body(&self.server_path(path), watcher_type);
        let dereg = Deregistration {
            path: path.to_owned(),
            watcher_type,
            local,
        };
        match self.submit(op::REMOVE_WATCHES, &body, None, Some(dereg)) {
            Ok((hdr, _)) if hdr.err == 0 => Ok(()),
            Ok((hdr, _)) => Err(ZkError::keeper(
                Code::from_code(hdr.err).unwrap_or(Code::SystemError),
                path,
            )),
            Err(c) => Err(ZkError::keeper(c, path)),
        }
    }

    /// addWatch (op 106): mode 0 persistent, 1 persistent recursive.
    pub fn add_watch(&self, path: &str, mode: i32) -> Result<(), ZkError> {
        validate_path(path).map_err(ZkError::IllegalArgument)?;
        let reg = WatchRegistration::Persistent {
            path: path.to_owned(),
            recursive: mode == crate::proto::consts::add_watch_mode::PERSISTENT_RECURSIVE,
        };
        let body = codec::path_int_body(&self.server_path(path), mode);
        self.call(op::ADD_WATCH, &body, Some(reg), Some(path))
            .map(|_| ())
    }

    /// This session's ephemerals under `prefix` (op 103). As in ZooKeeper.java, the
    /// chroot does not apply here: the prefix goes to the server as given and the paths
    /// come back as the server names them, so zkCli scripts see what they always saw.
    pub fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>, ZkError> {
        validate_path(prefix).map_err(ZkError::IllegalArgument)?;
        let b = self.call(op::GET_EPHEMERALS, &codec::path_body(prefix), None, None)?;
        codec::read_strings(&b).map_err(|_| bad_reply(prefix))
    }

    pub fn get_all_children_number(&self, path: &str) -> Result<i32, ZkError> {
        validate_path(path).map_err(ZkError::IllegalArgument)?;
        let b = self.call(
            op::GET_ALL_CHILDREN_NUMBER,
            &codec::path_body(&self.server_path(path)),
            None,
            Some(path),
        )?;
        codec::read_int(&b).map_err(|_| bad_reply(path))
    }

    pub fn who_am_i(&self) -> Result<Vec<ClientInfo>, ZkError> {
        let b = self.call(op::WHO_AM_I, &[], None, None)?;
        codec::read_client_infos(&b).map_err(|_| ZkError::Keeper {
            code: Code::MarshallingError,
            path: None,
        })
    }

    /// Closes the session (op -11) and stops the connection thread; the handle becomes
    /// CLOSED and a `Closed` state event is delivered. Does nothing on a dead handle.
    pub fn close(&self) {
        if !self.state().is_alive() {
            return;
        }
        self.shared.lock().closing = true;
        let _ = self.submit(op::CLOSE_SESSION, &[], None, None);
        self.stop();
        {
            let mut g = self.shared.lock();
            g.state = States::Closed;
        }
        self.shared.cond.notify_all();
        self.shared.emit_state(keeper_state::CLOSED);
    }

    /// Closes the session like `close` but without the `Closed` event, for a process
    /// that exits right after (zkCli's `quit` exits before its event thread prints it).
    pub fn close_quietly(&self) {
        if !self.state().is_alive() {
            return;
        }
        self.shared.lock().closing = true;
        let _ = self.submit(op::CLOSE_SESSION, &[], None, None);
        self.stop();
    }

    /// Stops the connection thread and drops the connection without closing the session.
    pub fn stop(&self) {
        {
            let mut g = self.shared.lock();
            g.stopping = true;
            if let Some(s) = g.socket.take() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        self.shared.cond.notify_all();
        let t = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = t {
            let _ = t.join();
        }
        let mut g = self.shared.lock();
        if g.state.is_alive() {
            g.state = States::Closed;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `AuthPacket{int type, ustring scheme, buffer auth}`; a missing auth is a null buffer,
/// as `addauth scheme` without credentials sends it.
fn auth_body(scheme: &str, auth: Option<&[u8]>) -> Vec<u8> {
    let mut w = Writer::new();
    w.i32(0).string(scheme).buffer(auth);
    w.buf
}

fn bad_reply(path: &str) -> ZkError {
    ZkError::keeper(Code::MarshallingError, path)
}

/// EphemeralType.TTL's bound check, with its message.
pub fn validate_ttl(ttl_ms: i64) -> Result<(), String> {
    if ttl_ms > crate::proto::consts::TTL_MS_MAX || ttl_ms <= 0 {
        return Err(format!(
            "ttl must be positive and cannot be larger than: {}",
            crate::proto::consts::TTL_MS_MAX
        ));
    }
    Ok(())
}

/// The wire flags of a CreateMode.
pub fn create_flags(mode: CreateMode) -> i32 {
    match mode {
        CreateMode::Persistent => 0,
        CreateMode::Ephemeral => 1,
        CreateMode::PersistentSequential => 2,
        CreateMode::EphemeralSequential => 3,
        CreateMode::Container => 4,
        CreateMode::PersistentWithTtl => 5,
        CreateMode::PersistentSequentialWithTtl => 6,
    }
}

/// Java's enum constant name of a CreateMode.
pub fn create_mode_name(mode: CreateMode) -> &'static str {
    match mode {
        CreateMode::Persistent => "PERSISTENT",
        CreateMode::Ephemeral => "EPHEMERAL",
        CreateMode::PersistentSequential => "PERSISTENT_SEQUENTIAL",
        CreateMode::EphemeralSequential => "EPHEMERAL_SEQUENTIAL",
        CreateMode::Container => "CONTAINER",
        CreateMode::PersistentWithTtl => "PERSISTENT_WITH_TTL",
        CreateMode::PersistentSequentialWithTtl => "PERSISTENT_SEQUENTIAL_WITH_TTL",
    }
}

/// Opens a TCP connection to `host` and performs the handshake.
fn handshake(
    host: &str,
    resolver: Resolver,
    req: &ConnectRequest,
    timeout: Duration,
) -> io::Result<(TcpStream, ConnectResponse, Vec<u8>)> {
    let addrs: Vec<SocketAddr> = resolver(host)?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"));
    let mut stream = None;
    for sa in addrs {
        match TcpStream::connect_timeout(&sa, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut stream = stream.ok_or(last)?;
    // Requests are small and mostly one at a time, so Nagle would only add latency.
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(timeout))?;
    let mut w = Writer::frame();
    req.write(&mut w);
    stream.write_all(&w.finish_frame())?;
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    loop {
        match frame::check(&buf, FRAME_BYTES_MAX) {
            FrameCheck::Complete { len } => {
                let resp = ConnectResponse::read(&buf[4..4 + len]).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad ConnectResponse: {e}"),
                    )
                })?;
                let rest = buf[4 + len..].to_vec();
                return Ok((stream, resp, rest));
            }
            FrameCheck::TooLarge(n) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("ConnectResponse frame length {n}"),
                ))
            }
            FrameCheck::Incomplete => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no ConnectResponse in time",
            ));
        }
        stream.set_read_timeout(Some(deadline - now))?;
        match stream.read(&mut chunk) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed the connection during the handshake",
                ))
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Sleeps up to `d`, returning early when the session is being stopped.
fn pause(sh: &Shared, d: Duration) {
    let deadline = Instant::now() + d;
    let mut g = sh.lock();
    while !g.stopping {
        match sh.wait_before(g, deadline) {
            Some(next) => g = next,
            None => return,
        }
    }
}

/// The connection thread (ClientCnxn.SendThread): connect, prime, read until the
/// connection breaks, fail what is pending, move to the next host.
fn connection_thread(sh: Arc<Shared>) {
    let hosts = sh.cfg.connect.hosts.clone();
    let n = hosts.len().max(1);
    let mut idx = 0usize;
    let mut failures_in_row = 0usize;
    let mut ever_connected = false;
    // When the last connection was lost, while no other has been made since.
    let mut lost_at: Option<Instant> = None;
    loop {
        if sh.stopping() || sh.lock().closing {
            break;
        }
        let host = hosts[idx % n].clone();
        let (req, connect_timeout) = {
            let g = sh.lock();
            let timeout_ms = if g.negotiated_timeout_ms > 0 {
                g.negotiated_timeout_ms
            } else {
                sh.cfg.session_timeout_ms
            };
            let per_host = Duration::from_millis((timeout_ms.max(0) as u64) / n as u64);
            (
                ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: g.last_zxid,
                    timeout_ms: sh.cfg.session_timeout_ms,
                    session_id: g.session_id,
                    passwd: g.password.clone(),
                    read_only: Some(sh.cfg.read_only),
                },
                per_host.max(CONNECT_TIMEOUT_MIN),
            )
        };
        let (stream, resp, rest) = match handshake(&host, sh.cfg.resolver, &req, connect_timeout) {
            Ok(x) => x,
            Err(_) => {
                let (old, timeout_ms) = {
                    let mut g = sh.lock();
                    g.attempts += 1;
                    g.last_attempt_failed = true;
                    (g.session_id, g.negotiated_timeout_ms.max(0) as u64)
                };
                sh.cond.notify_all();
                idx += 1;
                failures_in_row += 1;
                // No server has taken the session back for well over its timeout, so the
                // ensemble has expired it; a server that can still be reached says so
                // itself before this. This also covers servers that refuse the session
                // for having seen a later zxid than theirs, which ZooKeeper.java would
                // retry forever.
                let give_up_ms = timeout_ms.saturating_mul(LOCAL_EXPIRY_FACTOR);
                if sh.cfg.renew_expired
                    && old != 0
                    && lost_at.is_some_and(|t| t.elapsed() >= Duration::from_millis(give_up_ms))
                {
                    lost_at = None;
                    let why = format!(" (no server took it back within {give_up_ms} ms)");
                    if !expire(&sh, old, &why) {
                        break;
                    }
                    continue;
                }
                if failures_in_row % n == 0 {
                    pause(&sh, RECONNECT_ROUND_PAUSE);
                }
                continue;
            }
        };
        if resp.timeout_ms <= 0 {
            // The server no longer knows the session (ClientCnxn.onConnected).
            let _ = stream.shutdown(Shutdown::Both);
            lost_at = None;
            if !expire(&sh, req.session_id, "") {
                break;
            }
            continue;
        }
        let resumed = req.session_id != 0 && resp.session_id == req.session_id;
        let state = if resp.read_only == Some(true) {
            States::ConnectedReadOnly
        } else {
            States::Connected
        };
        let (auth, set_watches) = {
            let mut w = sh.writer();
            let mut g = sh.lock();
            g.session_id = resp.session_id;
            g.password = resp.passwd.clone();
            g.negotiated_timeout_ms = resp.timeout_ms;
            g.socket = stream.try_clone().ok();
            g.connected_host = Some(host.clone());
            g.last_send = Instant::now();
            *w = stream.try_clone().ok();
            let sw = (!g.watches.is_empty()).then(|| {
                let cfg = &sh.cfg.connect;
                g.watches.set_watches(g.last_zxid, |p| cfg.server_path(p))
            });
            (g.auth.clone(), sw)
        };
        // Prime the connection as ClientCnxn.primeConnection does: identities first, then
        // the watches to re-arm.
        for (scheme, a) in &auth {
            let _ = sh.send_special(xid::AUTH, op::AUTH, &auth_body(scheme, a.as_deref()));
        }
        if let Some(sw) = set_watches {
            let (code, body) = codec::set_watches_body(&sw);
            let _ = sh.send_special(xid::SET_WATCHES, code, &body);
        }
        // The event is delivered before anyone waiting for the connection is let go, as
        // zkCli's -waitforconnection latch opens only once its watcher has printed it.
        sh.emit_state(if state == States::ConnectedReadOnly {
            keeper_state::CONNECTED_READ_ONLY
        } else {
            keeper_state::SYNC_CONNECTED
        });
        {
            let mut g = sh.lock();
            g.state = state;
            g.attempts += 1;
            g.last_attempt_failed = false;
        }
        sh.cond.notify_all();
        if ever_connected {
            sh.emit(SessionEvent::Notice(if resumed {
                format!(
                    "connected to {host}; session 0x{:x} resumed",
                    resp.session_id
                )
            } else {
                format!("connected to {host}; new session 0x{:x}", resp.session_id)
            }));
        }
        ever_connected = true;
        failures_in_row = 0;
        let reason = read_loop(&sh, stream, rest, resp.timeout_ms);
        // The connection is gone: fail what is pending (ClientCnxn.cleanup).
        let (failed, stopping, auth_failed) = {
            let mut w = sh.writer();
            *w = None;
            let mut g = sh.lock();
            g.socket = None;
            g.connected_host = None;
            let pending: Vec<Pending> = g.pending.drain(..).collect();
            let lost = lost_code(g.state);
            let mut failed = Vec::new();
            for p in pending {
                let (err, events) = finish(
                    &mut g.watches,
                    p.reg.as_ref(),
                    p.dereg.as_ref(),
                    lost.code(),
                );
                failed.push((p, err, events));
            }
            let auth_failed = g.state == States::AuthFailed;
            let done = g.stopping || g.closing;
            if !done && !auth_failed {
                g.state = States::Connecting;
            }
            (failed, done, auth_failed)
        };
        sh.cond.notify_all();
        for (p, err, events) in failed {
            if let Some(d) = &p.dereg {
                sh.emit_removed(&d.path, &events);
            }
            let r = if err == 0 {
                Ok((
                    ReplyHeader {
                        xid: p.xid,
                        zxid: -1,
                        err: 0,
                    },
                    Vec::new(),
                ))
            } else {
                Err(Code::from_code(err).unwrap_or(Code::ConnectionLoss))
            };
            let _ = p.reply.send(r);
        }
        if stopping || auth_failed {
            break;
        }
        sh.emit_state(keeper_state::DISCONNECTED);
        lost_at = Some(Instant::now());
        idx += 1;
        let next = &hosts[idx % n];
        sh.emit(SessionEvent::Notice(format!(
            "lost the connection to {host} ({reason}); trying {next}"
        )));
    }
}

/// Reports the session `old` as expired to every watcher (once) and forgets its watches;
/// then either prepares a new session (returns true) or, without `renew_expired`, closes
/// the handle as ZooKeeper.java does (returns false). `why` ends the notice.
fn expire(sh: &Shared, old: i64, why: &str) -> bool {
    sh.emit_state(keeper_state::EXPIRED);
    let renew = sh.cfg.renew_expired;
    {
        let mut g = sh.lock();
        g.attempts += 1;
        g.watches.clear();
        if renew {
            g.session_id = 0;
            g.password = vec![0; PASSWORD_LEN];
            g.negotiated_timeout_ms = 0;
            g.last_zxid = 0;
        } else {
            g.state = States::Closed;
        }
    }
    sh.cond.notify_all();
    if renew {
        sh.emit(SessionEvent::Notice(format!(
            "session 0x{old:x} has expired{why}; opening a new session"
        )));
    }
    renew
}

/// Reads frames until the connection breaks or the session is stopped; returns why.
fn read_loop(sh: &Shared, mut stream: TcpStream, mut buf: Vec<u8>, negotiated_ms: i32) -> String {
    // ClientCnxn's timing: the connection is dead after 2/3 of the session timeout without
    // a byte from the server, and a ping goes out after half of that without a request.
    let read_timeout = Duration::from_millis((negotiated_ms.max(3) as u64) * 2 / 3);
    let ping_after = read_timeout / 2;
    let _ = stream.set_read_timeout(Some(
        READ_TICK.min(ping_after.max(Duration::from_millis(10))),
    ));
    let mut last_recv = Instant::now();
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    loop {
        loop {
            match frame::check(&buf, FRAME_BYTES_MAX) {
                FrameCheck::Complete { len } => {
                    let payload = buf[4..4 + len].to_vec();
                    buf.drain(..4 + len);
                    if let Err(e) = handle_frame(sh, &payload) {
                        return e;
                    }
                }
                FrameCheck::TooLarge(n) => return format!("reply frame length {n} refused"),
                FrameCheck::Incomplete => break,
            }
        }
        if sh.stopping() {
            return "closing".to_owned();
        }
        let now = Instant::now();
        if now.duration_since(last_recv) >= read_timeout {
            return format!(
                "no answer from the server in {} ms",
                now.duration_since(last_recv).as_millis()
            );
        }
        let idle_send = now.duration_since(sh.lock().last_send);
        if idle_send >= ping_after {
            if let Err(e) = sh.send_special(xid::PING, op::PING, &[]) {
                return format!("ping failed: {e}");
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => return "the server closed the connection".to_owned(),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                last_recv = Instant::now();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return e.to_string(),
        }
    }
}

/// Handles one frame from the server: a notification, a special reply, or the reply to the
/// oldest pending request.
fn handle_frame(sh: &Shared, payload: &[u8]) -> Result<(), String> {
    let (hdr, body) = split_reply(payload).map_err(|e| e.to_string())?;
    match hdr.xid {
        xid::NOTIFICATION => {
            let ev = codec::read_watch_event(body, hdr.zxid).map_err(|e| e.to_string())?;
            let path = sh.cfg.connect.client_path(&ev.path);
            let deliver = sh.lock().watches.materialize(ev.event_type, &path);
            if deliver {
                sh.emit(SessionEvent::Watched(WatchedEvent {
                    state: ev.state,
                    event_type: ev.event_type,
                    path: Some(path),
                    zxid: ev.zxid,
                }));
            }
            Ok(())
        }
        xid::PING | xid::SET_WATCHES => Ok(()),
        xid::AUTH => {
            if hdr.err != 0 {
                sh.lock().state = States::AuthFailed;
                sh.cond.notify_all();
                sh.emit_state(keeper_state::AUTH_FAILED);
            }
            Ok(())
        }
        x => {
            let (p, err, events) = {
                let mut g = sh.lock();
                let Some(p) = g.pending.pop_front() else {
                    return Err(format!("reply for xid {x} with no request outstanding"));
                };
                if p.xid != x {
                    let want = p.xid;
                    g.pending.push_front(p);
                    return Err(format!("reply for xid {x} while waiting for xid {want}"));
                }
                if hdr.zxid > 0 {
                    g.last_zxid = hdr.zxid;
                }
                let (err, events) =
                    finish(&mut g.watches, p.reg.as_ref(), p.dereg.as_ref(), hdr.err);
                (p, err, events)
            };
            if let Some(d) = &p.dereg {
                sh.emit_removed(&d.path, &events);
            }
            let _ = p
                .reply
                .send(Ok((ReplyHeader { err, ..hdr }, body.to_vec())));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_strings_are_java_3_8() {
        let ev = WatchedEvent {
            state: keeper_state::SYNC_CONNECTED,
            event_type: EVENT_NONE,
            path: None,
            zxid: -1,
        };
        assert_eq!(
            ev.to_string(),
            "WatchedEvent state:SyncConnected type:None path:null"
        );
        let ev = WatchedEvent {
            state: keeper_state::SYNC_CONNECTED,
            event_type: 3,
            path: Some("/x".into()),
            zxid: 12,
        };
        assert_eq!(
            ev.to_string(),
            "WatchedEvent state:SyncConnected type:NodeDataChanged path:/x"
        );
        assert_eq!(keeper_state_name(keeper_state::EXPIRED), "Expired");
        assert_eq!(event_type_name(7), "PersistentWatchRemoved");
    }

    #[test]
    fn errors_print_like_keeper_exceptions() {
        let e = ZkError::keeper(Code::NoNode, "/a");
        assert_eq!(e.to_string(), "KeeperErrorCode = NoNode for /a");
        let e = ZkError::Keeper {
            code: Code::ReconfigDisabled,
            path: None,
        };
        assert_eq!(e.to_string(), "KeeperErrorCode = Reconfig is disabled");
        assert_eq!(
            validate_ttl(0).unwrap_err(),
            "ttl must be positive and cannot be larger than: 1099511627775"
        );
        assert!(validate_ttl(1_099_511_627_775).is_ok());
    }
}
