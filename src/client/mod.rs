//! ZooKeeper clients. `Client` (this file) is a small blocking client over one
//! `std::net::TcpStream`: the connect handshake, one request at a time with increasing xids,
//! typed calls for every client opcode, watch notifications queued as they arrive, and
//! four-letter words. It is used by `zk status`, `zk bench` and the tests, and works against
//! any ZooKeeper-compatible server. It never reconnects, never pipelines, never runs a
//! thread of its own and never panics on what a server sends: a short, oversized or garbled
//! reply is a `ClientError`. It corresponds to the wire half of Apache ZooKeeper's
//! ClientCnxn. `session::Session` is the long-lived handle `zk cli` uses: ZooKeeper.java's
//! host list, chroot, failover, reconnection and watcher bookkeeping (`watches`), with path
//! checks and messages as the Java client has them (`path`).

pub mod codec;
pub mod path;
pub mod session;
pub mod watches;

pub use codec::{ClientInfo, OpResult, WatchEvent};

use crate::proto::consts::{op, xid};
use crate::proto::frame::{self, FrameCheck};
use crate::proto::jute::{DecodeError, Reader, Writer};
use crate::proto::records::{Acl, Stat};
use crate::proto::{
    Code, ConnectRequest, ConnectResponse, MultiOp, ReadOp, ReplyHeader, SetWatches,
};
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// ZooKeeper's default `jute.maxbuffer`: the largest frame a server accepts and the largest
/// the Java client accepts back.
pub const JUTE_MAXBUFFER_DEFAULT: usize = 0xfffff;
/// Room for reply headers, Stats and name lists on top of a payload of `jute.maxbuffer`, so a
/// reply to a legal request (a getData of a maximal node) is never refused.
pub const REPLY_SLACK_BYTES: usize = 64 << 10;
/// The largest reply frame this client reads; the length is checked before allocating.
pub const FRAME_BYTES_MAX: usize = JUTE_MAXBUFFER_DEFAULT + REPLY_SLACK_BYTES;
/// How long a call waits for its reply unless `set_request_timeout` says otherwise.
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// How long opening the TCP connection and the handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Notifications kept while nobody asks for them; past this the oldest are dropped (and
/// counted) so a client that never reads events cannot grow without bound.
pub const EVENTS_QUEUED_MAX: usize = 100_000;
/// The largest answer to a four-letter word this client reads.
pub const FOUR_LETTER_REPLY_BYTES_MAX: u64 = 16 << 20;
/// The session password length a new session sends as zeros (Java's `new byte[16]`).
pub const PASSWORD_LEN: usize = 16;
/// How much one read from the socket asks for.
const READ_CHUNK_BYTES: usize = 64 << 10;

/// Why a call failed.
#[derive(Debug)]
pub enum ClientError {
    /// The server answered with this ZooKeeper error code.
    Keeper(Code),
    /// The socket failed, closed, or no reply came in time (`ErrorKind::TimedOut`).
    Io(io::Error),
    /// The server sent something this client cannot make sense of.
    Protocol(String),
}

impl ClientError {
    /// The server's error code, if that is what this is.
    pub fn code(&self) -> Option<Code> {
        match self {
            ClientError::Keeper(c) => Some(*c),
            _ => None,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Keeper(c) => write!(f, "KeeperErrorCode = {}", c.message()),
            ClientError::Io(e) => write!(f, "connection error: {e}"),
            ClientError::Protocol(s) => write!(f, "protocol error: {s}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

impl From<DecodeError> for ClientError {
    fn from(e: DecodeError) -> Self {
        ClientError::Protocol(format!("undecodable reply: {e}"))
    }
}

impl From<ClientError> for io::Error {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Io(e) => e,
            other => io::Error::other(other),
        }
    }
}

/// Whether an error from `connect`/`resume` means the server declared the session invalid
/// (a ConnectResponse with timeout 0), as opposed to a network failure.
pub fn is_session_expired(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<ClientError>())
        .is_some_and(|ce| ce.code() == Some(Code::SessionExpired))
}

fn timed_out(what: &str) -> ClientError {
    ClientError::Io(io::Error::new(io::ErrorKind::TimedOut, what.to_owned()))
}

/// Splits a reply frame's payload into its header and body.
pub fn split_reply(payload: &[u8]) -> Result<(ReplyHeader, &[u8]), ClientError> {
    let mut r = Reader::new(payload);
    let hdr = ReplyHeader::read(&mut r)?;
    Ok((hdr, r.rest()))
}

/// Opens a TCP connection to the first address of `addr` that answers.
fn open(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address"));
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    for sa in addrs {
        match TcpStream::connect_timeout(&sa, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// One connection with one session.
pub struct Client {
    stream: TcpStream,
    /// Bytes read but not yet split into frames; a frame interrupted by a timeout stays here.
    input: Vec<u8>,
    events: VecDeque<WatchEvent>,
    events_dropped: u64,
    next_xid: i32,
    session_id: i64,
    password: Vec<u8>,
    negotiated_timeout_ms: i32,
    read_only: bool,
    last_zxid: i64,
    request_timeout: Duration,
    frame_bytes_max: usize,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("session_id", &format_args!("0x{:x}", self.session_id))
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

impl Client {
    /// Opens a new session, asking for `timeout_ms`.
    pub fn connect(addr: &str, timeout_ms: i32) -> io::Result<Client> {
        Client::handshake(
            addr,
            &ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout_ms,
                session_id: 0,
                passwd: vec![0; PASSWORD_LEN],
                read_only: Some(false),
            },
        )
    }

    /// Resumes an existing session on a new connection. An unknown or expired session, or a
    /// wrong password, is an error for which `is_session_expired` holds.
    pub fn resume(
        addr: &str,
        session_id: i64,
        passwd: &[u8],
        timeout_ms: i32,
    ) -> io::Result<Client> {
        Client::handshake(
            addr,
            &ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout_ms,
                session_id,
                passwd: passwd.to_vec(),
                read_only: Some(false),
            },
        )
    }

    /// Connects and sends `req` as the ConnectRequest; the general form of `connect`.
    pub fn handshake(addr: &str, req: &ConnectRequest) -> io::Result<Client> {
        let stream = open(addr, CONNECT_TIMEOUT)?;
        // Requests are small and answered one at a time, so Nagle would only add latency.
        stream.set_nodelay(true)?;
        let mut c = Client {
            stream,
            input: Vec::new(),
            events: VecDeque::new(),
            events_dropped: 0,
            next_xid: 1,
            session_id: 0,
            password: Vec::new(),
            negotiated_timeout_ms: 0,
            read_only: false,
            last_zxid: req.last_zxid_seen,
            request_timeout: REQUEST_TIMEOUT_DEFAULT,
            frame_bytes_max: FRAME_BYTES_MAX,
        };
        let mut w = Writer::frame();
        req.write(&mut w);
        c.send_raw(&w.finish_frame())?;
        let payload = c
            .read_frame_until(Some(Instant::now() + CONNECT_TIMEOUT))?
            .ok_or_else(|| timed_out("no ConnectResponse in time"))?;
        let resp = ConnectResponse::read(&payload).map_err(ClientError::from)?;
        if resp.timeout_ms <= 0 {
            // Java treats a non-positive timeout as Expired; the server closes next.
            return Err(ClientError::Keeper(Code::SessionExpired).into());
        }
        c.session_id = resp.session_id;
        c.password = resp.passwd;
        c.negotiated_timeout_ms = resp.timeout_ms;
        c.read_only = resp.read_only.unwrap_or(false);
        Ok(c)
    }

    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    pub fn password(&self) -> &[u8] {
        &self.password
    }

    pub fn negotiated_timeout(&self) -> i32 {
        self.negotiated_timeout_ms
    }

    /// Whether the server said it is read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The largest zxid seen in a reply header, as a reconnecting client would send it.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// How many notifications were dropped because the queue was full.
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }

    pub fn set_request_timeout(&mut self, d: Duration) {
        self.request_timeout = d;
    }

    /// Changes the largest reply frame accepted (for servers with a larger jute.maxbuffer).
    pub fn set_frame_bytes_max(&mut self, n: usize) {
        self.frame_bytes_max = n;
    }

    /// The underlying socket, for tests that need to shut half of it down.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Writes bytes as they are: no framing, no xid. For tests that speak the wire directly.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.set_write_timeout(Some(self.request_timeout))?;
        self.stream.write_all(bytes)
    }

    /// Reads the next whole frame's payload (whatever it is, notifications included), waiting
    /// at most the request timeout.
    pub fn read_frame(&mut self) -> Result<Vec<u8>, ClientError> {
        let deadline = Instant::now() + self.request_timeout;
        self.read_frame_until(Some(deadline))?
            .ok_or_else(|| timed_out("no frame within the request timeout"))
    }

    /// Reads the next frame's payload, or `None` once `deadline` passes. A frame cut short by
    /// the deadline stays buffered, so the stream stays in step.
    fn read_frame_until(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        loop {
            match frame::check(&self.input, self.frame_bytes_max) {
                FrameCheck::Complete { len } => {
                    let payload = self.input[4..4 + len].to_vec();
                    self.input.drain(..4 + len);
                    return Ok(Some(payload));
                }
                FrameCheck::TooLarge(len) => {
                    return Err(ClientError::Protocol(format!(
                        "reply frame length {len} is outside 0..={}",
                        self.frame_bytes_max
                    )));
                }
                FrameCheck::Incomplete => {}
            }
            let wait = match deadline {
                None => None,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Ok(None);
                    }
                    Some(d - now)
                }
            };
            self.stream.set_read_timeout(wait)?;
            let mut chunk = [0u8; READ_CHUNK_BYTES];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(ClientError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "server closed the connection",
                    )))
                }
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn queue_event(&mut self, ev: WatchEvent) {
        if self.events.len() >= EVENTS_QUEUED_MAX {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(ev);
    }

    /// The xid for the next request: positive and increasing, wrapping back to 1 after
    /// i32::MAX as the Java client does.
    fn take_xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = if x == i32::MAX { 1 } else { x + 1 };
        x
    }

    /// Sends one request with the next xid and waits for its reply. Notifications that arrive
    /// first are queued for `next_event`. A non-zero `err` in the header is returned as is.
    pub fn call(&mut self, code: i32, body: &[u8]) -> Result<(ReplyHeader, Vec<u8>), ClientError> {
        let x = self.take_xid();
        self.call_xid(x, code, body)
    }

    /// `call` with a chosen xid (auth uses -4, setWatches -8, ping -2).
    pub fn call_xid(
        &mut self,
        x: i32,
        code: i32,
        body: &[u8],
    ) -> Result<(ReplyHeader, Vec<u8>), ClientError> {
        let mut w = Writer::frame();
        w.i32(x).i32(code).raw(body);
        self.send_raw(&w.finish_frame())?;
        let deadline = Instant::now() + self.request_timeout;
        loop {
            let payload = self
                .read_frame_until(Some(deadline))?
                .ok_or_else(|| timed_out(&format!("no reply to xid {x} (op {code}) in time")))?;
            let (hdr, rest) = split_reply(&payload)?;
            if hdr.xid == xid::NOTIFICATION {
                let ev = codec::read_watch_event(rest, hdr.zxid)?;
                self.queue_event(ev);
                continue;
            }
            if hdr.xid != x {
                // Replies come in request order and this client has one request in flight, so
                // any other xid means the stream is out of step.
                return Err(ClientError::Protocol(format!(
                    "reply for xid {} while waiting for xid {x}",
                    hdr.xid
                )));
            }
            if hdr.zxid > self.last_zxid {
                self.last_zxid = hdr.zxid;
            }
            let body = rest.to_vec();
            return Ok((hdr, body));
        }
    }

    /// `call`, with a non-zero error code turned into `ClientError::Keeper`.
    fn request(&mut self, code: i32, body: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.request_xid(None, code, body)
    }

    fn request_xid(
        &mut self,
        x: Option<i32>,
        code: i32,
        body: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        let (hdr, body) = match x {
            Some(x) => self.call_xid(x, code, body)?,
            None => self.call(code, body)?,
        };
        if hdr.err != 0 {
            return Err(match Code::from_code(hdr.err) {
                Some(c) => ClientError::Keeper(c),
                None => ClientError::Protocol(format!("unknown error code {}", hdr.err)),
            });
        }
        Ok(body)
    }

    /// The next watch notification: a queued one, or one read from the socket within
    /// `timeout`. `Ok(None)` when none came in time. A reply frame here is a protocol error,
    /// since no request is outstanding.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<WatchEvent>, ClientError> {
        if let Some(ev) = self.events.pop_front() {
            return Ok(Some(ev));
        }
        let deadline = Instant::now() + timeout;
        let Some(payload) = self.read_frame_until(Some(deadline))? else {
            return Ok(None);
        };
        let (hdr, rest) = split_reply(&payload)?;
        if hdr.xid != xid::NOTIFICATION {
            return Err(ClientError::Protocol(format!(
                "reply for xid {} with no request outstanding",
                hdr.xid
            )));
        }
        Ok(Some(codec::read_watch_event(rest, hdr.zxid)?))
    }

    /// Sends a ping (xid -2) and waits for its answer.
    pub fn ping(&mut self) -> Result<(), ClientError> {
        self.request_xid(Some(xid::PING), op::PING, &[]).map(|_| ())
    }

    /// Creates a node and returns its actual path (with any sequence suffix). Containers
    /// (flags 4) go as op 19, everything else as op 1, as the Java client sends them.
    pub fn create(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        flags: i32,
    ) -> Result<String, ClientError> {
        let code = if flags == 4 {
            op::CREATE_CONTAINER
        } else {
            op::CREATE
        };
        let body = self.request(code, &codec::create_body(path, data, acl, flags, None))?;
        Ok(codec::read_string(&body)?)
    }

    /// Creates a node and returns its path and Stat (op 15, or 19 for containers).
    pub fn create2(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        flags: i32,
    ) -> Result<(String, Stat), ClientError> {
        let code = if flags == 4 {
            op::CREATE_CONTAINER
        } else {
            op::CREATE2
        };
        let body = self.request(code, &codec::create_body(path, data, acl, flags, None))?;
        Ok(codec::read_string_stat(&body)?)
    }

    /// Creates a TTL node (op 21; flags 5 or 6).
    pub fn create_ttl(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        flags: i32,
        ttl_ms: i64,
    ) -> Result<(String, Stat), ClientError> {
        let body = codec::create_body(path, data, acl, flags, Some(ttl_ms));
        let body = self.request(op::CREATE_TTL, &body)?;
        Ok(codec::read_string_stat(&body)?)
    }

    pub fn delete(&mut self, path: &str, version: i32) -> Result<(), ClientError> {
        self.request(op::DELETE, &codec::path_int_body(path, version))
            .map(|_| ())
    }

    /// The node's Stat, or `None` if it does not exist (a watch is still set if asked for).
    pub fn exists(&mut self, path: &str, watch: bool) -> Result<Option<Stat>, ClientError> {
        match self.request(op::EXISTS, &codec::path_watch_body(path, watch)) {
            Ok(body) => Ok(Some(codec::read_stat(&body)?)),
            Err(ClientError::Keeper(Code::NoNode)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The node's data (`None` for null data) and Stat.
    pub fn get_data(
        &mut self,
        path: &str,
        watch: bool,
    ) -> Result<(Option<Vec<u8>>, Stat), ClientError> {
        let body = self.request(op::GET_DATA, &codec::path_watch_body(path, watch))?;
        Ok(codec::read_data_stat(&body)?)
    }

    pub fn set_data(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        version: i32,
    ) -> Result<Stat, ClientError> {
        let body = self.request(op::SET_DATA, &codec::set_data_body(path, data, version))?;
        Ok(codec::read_stat(&body)?)
    }

    pub fn get_acl(&mut self, path: &str) -> Result<(Vec<Acl>, Stat), ClientError> {
        let body = self.request(op::GET_ACL, &codec::path_body(path))?;
        Ok(codec::read_acl_stat(&body)?)
    }

    pub fn set_acl(&mut self, path: &str, acl: &[Acl], version: i32) -> Result<Stat, ClientError> {
        let body = self.request(op::SET_ACL, &codec::set_acl_body(path, acl, version))?;
        Ok(codec::read_stat(&body)?)
    }

    /// Child names, in the server's (unspecified) order (op 8).
    pub fn get_children(&mut self, path: &str, watch: bool) -> Result<Vec<String>, ClientError> {
        let body = self.request(op::GET_CHILDREN, &codec::path_watch_body(path, watch))?;
        Ok(codec::read_strings(&body)?)
    }

    /// Child names and the node's Stat (op 12).
    pub fn get_children2(
        &mut self,
        path: &str,
        watch: bool,
    ) -> Result<(Vec<String>, Stat), ClientError> {
        let body = self.request(op::GET_CHILDREN2, &codec::path_watch_body(path, watch))?;
        Ok(codec::read_strings_stat(&body)?)
    }

    /// Sync; returns the path the server echoes.
    pub fn sync(&mut self, path: &str) -> Result<String, ClientError> {
        let body = self.request(op::SYNC, &codec::path_body(path))?;
        Ok(codec::read_string(&body)?)
    }

    /// Adds an identity to the connection (xid -4, op 100). A failure is AuthFailed, after
    /// which the server closes the connection.
    pub fn add_auth(&mut self, scheme: &str, auth: &[u8]) -> Result<(), ClientError> {
        self.request_xid(Some(xid::AUTH), op::AUTH, &codec::auth_body(scheme, auth))
            .map(|_| ())
    }

    /// An atomic multi (op 14). The header's error is 0 even when an op failed; look for
    /// `OpResult::Error` in the results.
    pub fn multi(&mut self, ops: &[MultiOp]) -> Result<Vec<OpResult>, ClientError> {
        let body = self.request(op::MULTI, &codec::multi_body(ops))?;
        Ok(codec::read_multi_response(&body)?)
    }

    /// A multiRead (op 22): each op succeeds or fails on its own.
    pub fn multi_read(&mut self, ops: &[ReadOp]) -> Result<Vec<OpResult>, ClientError> {
        let body = self.request(op::MULTI_READ, &codec::multi_read_body(ops))?;
        Ok(codec::read_multi_response(&body)?)
    }

    /// Re-arms watches as a reconnecting client does (xid -8; op 101, or 105 when persistent
    /// watches are listed).
    pub fn set_watches(&mut self, sw: &SetWatches) -> Result<(), ClientError> {
        let (code, body) = codec::set_watches_body(sw);
        self.request_xid(Some(xid::SET_WATCHES), code, &body)
            .map(|_| ())
    }

    /// A persistent (mode 0) or persistent recursive (mode 1) watch (op 106).
    pub fn add_watch(&mut self, path: &str, mode: i32) -> Result<(), ClientError> {
        let body = self.request(op::ADD_WATCH, &codec::path_int_body(path, mode))?;
        // The reply is an ErrorResponse whose code is 0 on success; an empty body is accepted
        // too, since no client reads it.
        if body.is_empty() {
            return Ok(());
        }
        match codec::read_int(&body)? {
            0 => Ok(()),
            n => Err(ClientError::Keeper(codec::read_code(n)?)),
        }
    }

    /// Removes watches of `watcher_type` on `path` (op 18); NoWatcher if there are none.
    pub fn remove_watches(&mut self, path: &str, watcher_type: i32) -> Result<(), ClientError> {
        self.request(
            op::REMOVE_WATCHES,
            &codec::path_int_body(path, watcher_type),
        )
        .map(|_| ())
    }

    /// Whether watches of `watcher_type` exist on `path` (op 17); NoWatcher if not.
    pub fn check_watches(&mut self, path: &str, watcher_type: i32) -> Result<(), ClientError> {
        self.request(op::CHECK_WATCHES, &codec::path_int_body(path, watcher_type))
            .map(|_| ())
    }

    /// This session's ephemeral nodes under `prefix` (op 103; "/" for all).
    pub fn get_ephemerals(&mut self, prefix: &str) -> Result<Vec<String>, ClientError> {
        let body = self.request(op::GET_EPHEMERALS, &codec::path_body(prefix))?;
        Ok(codec::read_strings(&body)?)
    }

    /// The number of descendants of `path`, not counting itself (op 104).
    pub fn get_all_children_number(&mut self, path: &str) -> Result<i32, ClientError> {
        let body = self.request(op::GET_ALL_CHILDREN_NUMBER, &codec::path_body(path))?;
        Ok(codec::read_int(&body)?)
    }

    /// The connection's identities (op 107).
    pub fn who_am_i(&mut self) -> Result<Vec<ClientInfo>, ClientError> {
        let body = self.request(op::WHO_AM_I, &[])?;
        Ok(codec::read_client_infos(&body)?)
    }

    /// Closes the session (op -11): the server deletes its ephemerals, replies and closes.
    pub fn close(mut self) -> Result<(), ClientError> {
        let r = self.request(op::CLOSE_SESSION, &[]).map(|_| ());
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        r
    }
}

/// Sends a four-letter word on a fresh connection and returns the whole answer, which ends
/// when the server closes the connection.
pub fn four_letter_word(addr: &str, word: &str, timeout: Duration) -> io::Result<String> {
    let mut s = open(addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(word.as_bytes())?;
    let mut out = Vec::new();
    s.take(FOUR_LETTER_REPLY_BYTES_MAX).read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::records::{notification_frame, open_acl_unsafe, RequestHeader};
    use std::net::TcpListener;
    use std::thread;

    /// A scripted server for one connection: it answers the handshake with `resp`, then runs
    /// `script` on the socket.
    fn fake_server<F>(
        resp: ConnectResponse,
        script: F,
    ) -> (String, thread::JoinHandle<ConnectRequest>)
    where
        F: FnOnce(&mut TcpStream) + Send + 'static,
    {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let payload = read_payload(&mut s);
            let req = ConnectRequest::read(&payload).unwrap();
            s.write_all(&resp.to_frame()).unwrap();
            script(&mut s);
            req
        });
        (addr, h)
    }

    fn read_payload(s: &mut TcpStream) -> Vec<u8> {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut p = vec![0u8; i32::from_be_bytes(len) as usize];
        s.read_exact(&mut p).unwrap();
        p
    }

    fn ok_response() -> ConnectResponse {
        ConnectResponse {
            protocol_version: 0,
            timeout_ms: 6000,
            session_id: 0x1234,
            passwd: vec![9; 16],
            read_only: Some(false),
        }
    }

    fn reply(x: i32, zxid: i64, err: i32, body: &[u8]) -> Vec<u8> {
        let mut w = ReplyHeader { xid: x, zxid, err }.frame();
        w.raw(body);
        w.finish_frame()
    }

    #[test]
    fn handshake_sends_read_only_byte_and_keeps_session() {
        let (addr, h) = fake_server(ok_response(), |_| {});
        let c = Client::connect(&addr, 5000).unwrap();
        assert_eq!(c.session_id(), 0x1234);
        assert_eq!(c.password(), &[9; 16][..]);
        assert_eq!(c.negotiated_timeout(), 6000);
        let req = h.join().unwrap();
        assert_eq!(req.read_only, Some(false));
        assert_eq!(req.passwd, vec![0; 16]);
        assert_eq!(req.timeout_ms, 5000);
    }

    #[test]
    fn expired_session_is_an_error() {
        let resp = ConnectResponse {
            timeout_ms: 0,
            session_id: 0,
            passwd: vec![0; 16],
            ..ok_response()
        };
        let (addr, h) = fake_server(resp, |_| {});
        let e = Client::resume(&addr, 77, &[1; 16], 5000).unwrap_err();
        assert!(is_session_expired(&e), "{e}");
        assert_eq!(h.join().unwrap().session_id, 77);
    }

    #[test]
    fn notifications_before_a_reply_are_queued() {
        let (addr, h) = fake_server(ok_response(), |s| {
            let p = read_payload(s);
            let hdr = RequestHeader::read(&mut Reader::new(&p)).unwrap();
            assert_eq!((hdr.xid, hdr.op), (1, op::EXISTS));
            s.write_all(&notification_frame(5, 1, 3, "/a")).unwrap();
            s.write_all(&notification_frame(6, 3, 3, "/b")).unwrap();
            s.write_all(&reply(1, 6, Code::NoNode.code(), &[])).unwrap();
            // A notification with no request outstanding.
            s.write_all(&notification_frame(7, 2, 3, "/c")).unwrap();
        });
        let mut c = Client::connect(&addr, 5000).unwrap();
        assert_eq!(c.exists("/x", true).unwrap(), None);
        assert_eq!(c.last_zxid(), 6);
        let d = Duration::from_secs(5);
        let paths: Vec<String> = (0..3)
            .map(|_| c.next_event(d).unwrap().unwrap().path)
            .collect();
        assert_eq!(paths, ["/a", "/b", "/c"]);
        h.join().unwrap();
        // The fake server has gone: that is an error, not a quiet timeout.
        assert!(c.next_event(Duration::from_secs(5)).is_err());
    }

    #[test]
    fn next_event_times_out_without_losing_a_partial_frame() {
        let (addr, h) = fake_server(ok_response(), |s| {
            let f = notification_frame(5, 1, 3, "/slow");
            s.write_all(&f[..7]).unwrap();
            s.flush().unwrap();
            thread::sleep(Duration::from_millis(300));
            s.write_all(&f[7..]).unwrap();
        });
        let mut c = Client::connect(&addr, 5000).unwrap();
        assert_eq!(c.next_event(Duration::from_millis(50)).unwrap(), None);
        let ev = c.next_event(Duration::from_secs(5)).unwrap().unwrap();
        assert_eq!((ev.event_type, ev.path.as_str(), ev.zxid), (1, "/slow", 5));
        h.join().unwrap();
    }

    #[test]
    fn keeper_errors_and_bodies() {
        let (addr, h) = fake_server(ok_response(), |s| {
            let _ = read_payload(s);
            s.write_all(&reply(1, 3, Code::NodeExists.code(), &[]))
                .unwrap();
            let _ = read_payload(s);
            let mut w = Writer::new();
            w.string("/n0000000001");
            s.write_all(&reply(2, 4, 0, &w.buf)).unwrap();
            let p = read_payload(s);
            assert_eq!(
                RequestHeader::read(&mut Reader::new(&p)).unwrap().xid,
                xid::PING
            );
            s.write_all(&reply(xid::PING, 4, 0, &[])).unwrap();
            let p = read_payload(s);
            assert_eq!(
                RequestHeader::read(&mut Reader::new(&p)).unwrap().xid,
                xid::AUTH
            );
            s.write_all(&reply(xid::AUTH, 0, Code::AuthFailed.code(), &[]))
                .unwrap();
            let _ = read_payload(s);
            s.write_all(&reply(5, 4, -9, &[])).unwrap();
        });
        let mut c = Client::connect(&addr, 5000).unwrap();
        let acl = open_acl_unsafe();
        let e = c.create("/n", None, &acl, 0).unwrap_err();
        assert_eq!(e.code(), Some(Code::NodeExists));
        assert_eq!(c.create("/n", None, &acl, 2).unwrap(), "/n0000000001");
        c.ping().unwrap();
        let e = c.add_auth("bogus", b"x").unwrap_err();
        assert_eq!(e.code(), Some(Code::AuthFailed));
        // An error code ZooKeeper never assigned is a protocol error, not a Keeper one.
        assert!(matches!(c.sync("/"), Err(ClientError::Protocol(_))));
        h.join().unwrap();
    }

    #[test]
    fn out_of_order_xid_is_a_protocol_error() {
        let (addr, h) = fake_server(ok_response(), |s| {
            let _ = read_payload(s);
            s.write_all(&reply(42, 1, 0, &[])).unwrap();
        });
        let mut c = Client::connect(&addr, 5000).unwrap();
        assert!(matches!(c.sync("/"), Err(ClientError::Protocol(_))));
        h.join().unwrap();
    }

    #[test]
    fn oversized_and_negative_reply_frames_are_refused_before_allocating() {
        for len in [i32::MAX, -1, (FRAME_BYTES_MAX + 1) as i32] {
            let (addr, h) = fake_server(ok_response(), move |s| {
                let _ = read_payload(s);
                s.write_all(&len.to_be_bytes()).unwrap();
            });
            let mut c = Client::connect(&addr, 5000).unwrap();
            assert!(
                matches!(c.sync("/"), Err(ClientError::Protocol(_))),
                "len {len}"
            );
            h.join().unwrap();
        }
    }

    #[test]
    fn short_and_garbled_replies_are_errors() {
        let (addr, h) = fake_server(ok_response(), |s| {
            let _ = read_payload(s);
            // A reply header cut short.
            s.write_all(&[0, 0, 0, 3, 0, 0, 0]).unwrap();
            let _ = read_payload(s);
            // A getData reply whose buffer length runs past the end.
            let mut w = Writer::new();
            w.i32(1000).raw(b"abc");
            s.write_all(&reply(2, 1, 0, &w.buf)).unwrap();
            // Then the server goes away.
        });
        let mut c = Client::connect(&addr, 5000).unwrap();
        assert!(matches!(c.sync("/"), Err(ClientError::Protocol(_))));
        assert!(matches!(
            c.get_data("/", false),
            Err(ClientError::Protocol(_))
        ));
        h.join().unwrap();
        assert!(matches!(c.sync("/"), Err(ClientError::Io(_))));
    }

    #[test]
    fn missing_reply_times_out() {
        let (addr, h) = fake_server(ok_response(), |s| {
            let _ = read_payload(s);
            thread::sleep(Duration::from_millis(300));
        });
        let mut c = Client::connect(&addr, 5000).unwrap();
        c.set_request_timeout(Duration::from_millis(50));
        match c.sync("/") {
            Err(ClientError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::TimedOut),
            other => panic!("{other:?}"),
        }
        h.join().unwrap();
    }

    #[test]
    fn xids_wrap_to_one() {
        let (addr, h) = fake_server(ok_response(), |_| {});
        let mut c = Client::connect(&addr, 5000).unwrap();
        c.next_xid = i32::MAX;
        assert_eq!(c.take_xid(), i32::MAX);
        assert_eq!(c.take_xid(), 1);
        h.join().unwrap();
    }

    #[test]
    fn four_letter_word_reads_until_close() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut w = [0u8; 4];
            s.read_exact(&mut w).unwrap();
            assert_eq!(&w, b"ruok");
            s.write_all(b"imok").unwrap();
        });
        assert_eq!(
            four_letter_word(&addr, "ruok", Duration::from_secs(5)).unwrap(),
            "imok"
        );
        h.join().unwrap();
    }
}
