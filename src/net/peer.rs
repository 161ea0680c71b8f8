//! Peer links: the TCP transport between the servers of an ensemble. Each server listens on
//! a quorum port (2888) and an election port (3888); to send to server X on a channel it uses
//! its own outbound connection to X's address for that channel, so every ordered pair of
//! servers has one one-way connection per channel and no tie-breaking is needed. The dialer
//! opens with a fixed handshake (magic `ZKPR`, version, its sid, the channel) and then sends
//! length-prefixed frames; the acceptor attributes the frames to that sid and hands them up in
//! arrival order. Payloads are opaque: this module never looks inside a message, never
//! retries or buffers across a broken connection (bytes queued on a link that fails are
//! dropped, as TCP would lose them, and Zab recovers by resyncing), never blocks, and never
//! allocates for a frame before checking its length. It corresponds to Apache ZooKeeper's
//! QuorumCnxManager (election port) and the sockets of Learner/LearnerHandler (quorum port),
//! with a simpler, zk-only wire handshake.
//!
//! Wire format, per connection (all integers big-endian):
//! `handshake = "ZKPR" version:u32(=1) sid:u64 channel:u8(0 quorum, 1 election)`, then any
//! number of `frame = len:u32 payload[len]` with `len <= PEER_FRAME_BYTES_MAX`.

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

/// Largest payload of one frame. A snapshot travels as one frame, hence the size; a longer
/// length prefix closes the connection before anything is allocated.
pub const PEER_FRAME_BYTES_MAX: usize = 512 << 20;
/// Unsent bytes one outbound link may hold. A frame that would go past it resets the link
/// (connection closed, queue dropped), except that an otherwise empty link always takes one.
pub const PEER_OUTPUT_BYTES_MAX: usize = 256 << 20;
/// First delay before redialling a peer whose connection failed; doubles on every failure.
pub const PEER_RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest delay between dials of an unreachable peer. A connection that stayed up this
/// long counts as healthy: when it closes, the next send redials at once.
pub const PEER_RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// A dial that has not completed by then is abandoned (a black-holed address).
pub const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An accepted connection must deliver its handshake within this time.
pub const PEER_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Accepted connections still waiting for their handshake; more are refused.
pub const PEER_HANDSHAKES_PENDING_MAX: usize = 64;
/// Bytes read from one connection per readiness event before other work gets a turn; the
/// rest is read in `tick` (and `busy` says so, so the loop does not sleep meanwhile).
pub const PEER_READ_BUDGET_BYTES: usize = 4 << 20;
/// The first bytes of every peer connection.
pub const PEER_MAGIC: &[u8; 4] = b"ZKPR";
/// The handshake version this module speaks.
pub const PEER_PROTOCOL_VERSION: u32 = 1;
/// magic + version + sid + channel.
const HANDSHAKE_BYTES: usize = 4 + 4 + 8 + 1;
/// Size of one read from a socket.
const READ_CHUNK_BYTES: usize = 64 << 10;
/// Queued frames handed to one vectored write.
const WRITE_SLICES_MAX: usize = 64;
/// Tokens below `token_base + FIRST_CONN_TOKEN` belong to the two listeners.
const FIRST_CONN_TOKEN: usize = 2;

/// Which of a server's two peer ports a message travels through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// The quorum port (2888): Zab discovery, synchronization and broadcast.
    Quorum,
    /// The election port (3888): leader election notifications.
    Election,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Quorum, Channel::Election];

    fn index(self) -> usize {
        match self {
            Channel::Quorum => 0,
            Channel::Election => 1,
        }
    }

    fn code(self) -> u8 {
        self.index() as u8
    }

    fn from_code(code: u8) -> Option<Channel> {
        match code {
            0 => Some(Channel::Quorum),
            1 => Some(Channel::Election),
            _ => None,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Channel::Quorum => "quorum",
            Channel::Election => "election",
        })
    }
}

/// Counters for mntr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Bytes written to peer sockets (handshakes and frame headers included).
    pub bytes_sent: u64,
    /// Bytes read from peer sockets.
    pub bytes_received: u64,
    /// Frames completely written to a socket.
    pub frames_sent: u64,
    /// Frames received whole and queued for `drain_received`.
    pub frames_received: u64,
    /// Frames refused by `send` (unknown sid, too large, link in backoff) or queued on a
    /// link that then failed or was reset before they were completely written.
    pub frames_dropped: u64,
    /// Outbound dials started.
    pub connect_attempts: u64,
}

/// The handshake a dialer sends first.
fn handshake(sid: u64, channel: Channel) -> Vec<u8> {
    let mut h = Vec::with_capacity(HANDSHAKE_BYTES);
    h.extend_from_slice(PEER_MAGIC);
    h.extend_from_slice(&PEER_PROTOCOL_VERSION.to_be_bytes());
    h.extend_from_slice(&sid.to_be_bytes());
    h.push(channel.code());
    h
}

/// Splits a byte stream into frames incrementally. The body buffer grows with the bytes that
/// actually arrived, so a hostile length prefix costs nothing until its bytes are sent.
#[derive(Default)]
struct FrameReader {
    head: [u8; 4],
    head_len: usize,
    body: Option<Vec<u8>>,
    body_len: usize,
}

impl FrameReader {
    /// Consumes `data`, passing every completed frame to `frame`. Returns the offending length
    /// when a prefix is over `PEER_FRAME_BYTES_MAX`; the stream is unusable after that.
    fn feed(&mut self, mut data: &[u8], mut frame: impl FnMut(Vec<u8>)) -> Result<(), u32> {
        while !data.is_empty() {
            if let Some(body) = self.body.as_mut() {
                let need = self.body_len - body.len();
                let n = need.min(data.len());
                if body.capacity() - body.len() < n {
                    // Grow geometrically, but never past the announced length.
                    body.reserve_exact(n.max(body.len()).min(need));
                }
                body.extend_from_slice(&data[..n]);
                data = &data[n..];
                if body.len() == self.body_len {
                    frame(self.body.take().unwrap_or_default());
                }
            } else {
                let n = (4 - self.head_len).min(data.len());
                self.head[self.head_len..self.head_len + n].copy_from_slice(&data[..n]);
                self.head_len += n;
                data = &data[n..];
                if self.head_len == 4 {
                    self.head_len = 0;
                    let len = u32::from_be_bytes(self.head);
                    if len as usize > PEER_FRAME_BYTES_MAX {
                        return Err(len);
                    }
                    if len == 0 {
                        frame(Vec::new());
                    } else {
                        self.body_len = len as usize;
                        self.body = Some(Vec::with_capacity(self.body_len.min(READ_CHUNK_BYTES)));
                    }
                }
            }
        }
        Ok(())
    }
}

/// One outbound connection: dialling or connected, with its unsent output.
struct Outbound {
    token: Token,
    stream: TcpStream,
    addr: SocketAddr,
    dialled_at: Instant,
    connected_at: Option<Instant>,
    /// Unsent chunks: the handshake first (until written), then one chunk per frame.
    queue: VecDeque<Vec<u8>>,
    /// Bytes of `queue.front()` already written.
    front_pos: usize,
    /// Unsent bytes in `queue`.
    queued_bytes: usize,
    /// `queue.front()` is the handshake.
    handshake_queued: bool,
    /// Frames in `queue` (the front one may be partly written).
    frames: usize,
    writable_interest: bool,
}

impl Outbound {
    /// One vectored write of the front of the queue.
    fn write_some(&mut self) -> io::Result<usize> {
        let mut slices = Vec::with_capacity(WRITE_SLICES_MAX.min(self.queue.len()));
        for (i, chunk) in self.queue.iter().take(WRITE_SLICES_MAX).enumerate() {
            let start = if i == 0 { self.front_pos } else { 0 };
            slices.push(IoSlice::new(&chunk[start..]));
        }
        self.stream.write_vectored(&slices)
    }

    /// Accounts for `n` written bytes.
    fn advance(&mut self, mut n: usize, stats: &mut PeerStats) {
        self.queued_bytes -= n;
        while n > 0 {
            let Some(front) = self.queue.front() else {
                break;
            };
            let rest = front.len() - self.front_pos;
            if n < rest {
                self.front_pos += n;
                break;
            }
            n -= rest;
            self.queue.pop_front();
            self.front_pos = 0;
            if self.handshake_queued {
                self.handshake_queued = false;
            } else {
                self.frames -= 1;
                stats.frames_sent += 1;
            }
        }
    }
}

/// The sending side towards one (sid, channel).
struct OutLink {
    conn: Option<Outbound>,
    /// Delay armed by the next failure.
    backoff: Duration,
    /// No dial before this instant.
    retry_at: Option<Instant>,
    /// A failure has been logged at warn level since the link last worked.
    reported_down: bool,
}

impl OutLink {
    fn new() -> OutLink {
        OutLink {
            conn: None,
            backoff: PEER_RECONNECT_BACKOFF_MIN,
            retry_at: None,
            reported_down: false,
        }
    }
}

/// One accepted connection, read-only.
struct Inbound {
    stream: TcpStream,
    addr: SocketAddr,
    /// The listener that accepted it; the handshake must name the same channel.
    channel: Channel,
    accepted_at: Instant,
    /// The sender, once the handshake has been read.
    sid: Option<u64>,
    handshake: Vec<u8>,
    reader: FrameReader,
}

/// Why an inbound connection is being closed.
enum InClose {
    Eof,
    Error(io::Error),
    Protocol(String),
}

/// The transport between this server and the other servers of the ensemble.
pub struct PeerLinks {
    my_sid: u64,
    token_base: usize,
    next_token: usize,
    listeners: [TcpListener; 2],
    local: [SocketAddr; 2],
    /// An accept failed (out of file descriptors, say): try again in `tick`, since the
    /// edge-triggered listener will not report the waiting connections again.
    accept_again: [bool; 2],
    /// Each peer's quorum and election addresses, indexed by `Channel::index`.
    peers: HashMap<u64, [SocketAddr; 2]>,
    out: HashMap<(u64, Channel), OutLink>,
    out_tokens: HashMap<Token, (u64, Channel)>,
    inbound: HashMap<Token, Inbound>,
    inbound_by_peer: HashMap<(u64, Channel), Token>,
    /// Inbound connections that stopped at the read budget with bytes possibly left.
    read_again: Vec<Token>,
    received: Vec<(u64, Channel, Vec<u8>)>,
    /// Outbound links closed since the last `drain_resets`: whatever they had in flight,
    /// even bytes the kernel had taken, may be lost.
    resets: Vec<(u64, Channel)>,
    scratch: Vec<u8>,
    stats: PeerStats,
}

impl PeerLinks {
    /// Binds this server's quorum and election ports and prepares links to `peers`
    /// (sid, quorum address, election address); an entry for `my_sid` is ignored. Every
    /// token used is `token_base` or above.
    pub fn new(
        registry: &Registry,
        my_sid: u64,
        quorum_listen: SocketAddr,
        election_listen: SocketAddr,
        peers: Vec<(u64, SocketAddr, SocketAddr)>,
        token_base: usize,
    ) -> io::Result<PeerLinks> {
        let bind = |addr: SocketAddr, what: &str| {
            TcpListener::bind(addr).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot bind the {what} port {addr}: {e}"))
            })
        };
        let quorum = bind(quorum_listen, "quorum")?;
        let election = bind(election_listen, "election")?;
        PeerLinks::from_listeners(registry, my_sid, quorum, election, peers, token_base)
    }

    /// Like `new`, with listeners the caller has already bound.
    pub fn from_listeners(
        registry: &Registry,
        my_sid: u64,
        mut quorum: TcpListener,
        mut election: TcpListener,
        peers: Vec<(u64, SocketAddr, SocketAddr)>,
        token_base: usize,
    ) -> io::Result<PeerLinks> {
        let local = [quorum.local_addr()?, election.local_addr()?];
        registry.register(&mut quorum, Token(token_base), Interest::READABLE)?;
        registry.register(&mut election, Token(token_base + 1), Interest::READABLE)?;
        log::info!(
            "server {my_sid} listening for peers on {} (quorum) and {} (election)",
            local[0],
            local[1]
        );
        Ok(PeerLinks {
            my_sid,
            token_base,
            next_token: token_base + FIRST_CONN_TOKEN,
            listeners: [quorum, election],
            local,
            accept_again: [false; 2],
            peers: peers
                .into_iter()
                .filter(|p| p.0 != my_sid)
                .map(|(sid, q, e)| (sid, [q, e]))
                .collect(),
            out: HashMap::new(),
            out_tokens: HashMap::new(),
            inbound: HashMap::new(),
            inbound_by_peer: HashMap::new(),
            read_again: Vec::new(),
            received: Vec::new(),
            resets: Vec::new(),
            scratch: vec![0; READ_CHUNK_BYTES],
            stats: PeerStats::default(),
        })
    }

    /// The bound quorum and election addresses.
    pub fn local_addrs(&self) -> (SocketAddr, SocketAddr) {
        (self.local[0], self.local[1])
    }

    /// Whether `token` is one of this module's.
    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.token_base && token.0 < self.next_token
    }

    /// Whether the outbound connection to `sid` on `channel` is established.
    pub fn connected_outbound(&self, sid: u64, channel: Channel) -> bool {
        self.out
            .get(&(sid, channel))
            .and_then(|l| l.conn.as_ref())
            .is_some_and(|c| c.connected_at.is_some())
    }

    /// Counters for mntr.
    pub fn stats(&self) -> PeerStats {
        self.stats
    }

    /// Whether input is buffered in the kernel that `tick` will read: the loop should poll
    /// without sleeping.
    pub fn busy(&self) -> bool {
        !self.read_again.is_empty()
    }

    /// Hands up every frame received since the last call, in arrival order per connection.
    /// Outbound links that closed since the last call (Zab treats these as lost messages).
    pub fn drain_resets(&mut self) -> Vec<(u64, Channel)> {
        std::mem::take(&mut self.resets)
    }

    pub fn drain_received(&mut self) -> Vec<(u64, Channel, Vec<u8>)> {
        std::mem::take(&mut self.received)
    }

    /// Queues `payload` as one frame to `sid` on `channel` and writes what the socket takes.
    /// Dials first if there is no connection. Returns false, counting a dropped frame, when
    /// the frame cannot be queued: unknown sid, payload over `PEER_FRAME_BYTES_MAX`, the link
    /// waiting out its reconnect backoff, or the link just reset for holding too much output.
    pub fn send(
        &mut self,
        registry: &Registry,
        sid: u64,
        channel: Channel,
        payload: &[u8],
    ) -> bool {
        if payload.len() > PEER_FRAME_BYTES_MAX {
            log::error!(
                "not sending a {} byte {channel} frame to server {sid}: over the {} byte limit",
                payload.len(),
                PEER_FRAME_BYTES_MAX
            );
            self.stats.frames_dropped += 1;
            return false;
        }
        let Some(addr) = self.peers.get(&sid).map(|a| a[channel.index()]) else {
            log::debug!("not sending a {channel} frame to unknown server {sid}");
            self.stats.frames_dropped += 1;
            return false;
        };
        let now = Instant::now();
        let key = (sid, channel);
        // A link that lost messages takes nothing more until the loss was reported
        // (`drain_resets`): a message must not reach the peer after one sent before it was
        // lost, or Zab's FIFO assumption breaks (a later forwarded request overtaking).
        if self.resets.contains(&key) {
            self.stats.frames_dropped += 1;
            return false;
        }
        let link = self.out.entry(key).or_insert_with(OutLink::new);
        if link.conn.is_none() {
            if link.retry_at.is_some_and(|t| now < t) {
                self.stats.frames_dropped += 1;
                return false;
            }
            self.stats.connect_attempts += 1;
            let token = Token(self.next_token);
            self.next_token += 1;
            match dial(registry, addr, token, self.my_sid, channel, now) {
                Ok(conn) => {
                    link.conn = Some(conn);
                    self.out_tokens.insert(token, key);
                }
                Err(e) => {
                    self.stats.frames_dropped += 1;
                    link_failed(link, key, addr, &e.to_string(), now);
                    return false;
                }
            }
        }
        let Some(conn) = link.conn.as_mut() else {
            return false;
        };
        let framed = 4 + payload.len();
        if conn.frames > 0 && conn.queued_bytes + framed > PEER_OUTPUT_BYTES_MAX {
            log::warn!(
                "resetting the {channel} link to server {sid}: more than {} MiB of unsent output",
                PEER_OUTPUT_BYTES_MAX >> 20
            );
            self.stats.frames_dropped += 1;
            self.close_out(registry, key, now, "too much unsent output", true);
            return false;
        }
        let mut frame = Vec::with_capacity(framed);
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(payload);
        conn.queue.push_back(frame);
        conn.queued_bytes += framed;
        conn.frames += 1;
        // A link waiting for writability will be flushed by its event; writing now would
        // only meet WouldBlock again.
        if conn.connected_at.is_some() && !conn.writable_interest {
            self.flush_out(registry, key, now);
        }
        true
    }

    /// Handles one readiness event for a token this module owns.
    pub fn handle_event(&mut self, registry: &Registry, event: &Event) {
        let token = event.token();
        if token.0 == self.token_base {
            self.accept(registry, Channel::Quorum);
        } else if token.0 == self.token_base + 1 {
            self.accept(registry, Channel::Election);
        } else if let Some(&key) = self.out_tokens.get(&token) {
            self.outbound_event(registry, key, event);
        } else if self.inbound.contains_key(&token) {
            self.read_inbound(registry, token);
        }
    }

    /// Periodic work: reads that stopped at their budget, accepts that failed, dials and
    /// handshakes that take too long.
    pub fn tick(&mut self, registry: &Registry, now: Instant) {
        for ch in Channel::ALL {
            if self.accept_again[ch.index()] {
                self.accept(registry, ch);
            }
        }
        for token in std::mem::take(&mut self.read_again) {
            self.read_inbound(registry, token);
        }
        let stuck: Vec<(u64, Channel)> = self
            .out
            .iter()
            .filter(|(_, l)| {
                l.conn.as_ref().is_some_and(|c| {
                    c.connected_at.is_none()
                        && now.saturating_duration_since(c.dialled_at) >= PEER_CONNECT_TIMEOUT
                })
            })
            .map(|(k, _)| *k)
            .collect();
        for key in stuck {
            self.close_out(registry, key, now, "connect timed out", true);
        }
        let silent: Vec<Token> = self
            .inbound
            .iter()
            .filter(|(_, c)| {
                c.sid.is_none()
                    && now.saturating_duration_since(c.accepted_at) >= PEER_HANDSHAKE_TIMEOUT
            })
            .map(|(t, _)| *t)
            .collect();
        for token in silent {
            self.close_inbound(
                registry,
                token,
                InClose::Protocol("no handshake in time".to_owned()),
            );
        }
    }

    fn accept(&mut self, registry: &Registry, ch: Channel) {
        let i = ch.index();
        self.accept_again[i] = false;
        loop {
            match self.listeners[i].accept() {
                Ok((mut stream, addr)) => {
                    let pending = self.inbound.values().filter(|c| c.sid.is_none()).count();
                    if pending >= PEER_HANDSHAKES_PENDING_MAX {
                        log::warn!(
                            "refusing a {ch} connection from {addr}: {pending} connections are already waiting for their handshake"
                        );
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    if let Err(e) = registry.register(&mut stream, token, Interest::READABLE) {
                        log::warn!("cannot register the {ch} connection from {addr}: {e}");
                        continue;
                    }
                    log::debug!("accepted a {ch} connection from {addr}");
                    self.inbound.insert(
                        token,
                        Inbound {
                            stream,
                            addr,
                            channel: ch,
                            accepted_at: Instant::now(),
                            sid: None,
                            handshake: Vec::with_capacity(HANDSHAKE_BYTES),
                            reader: FrameReader::default(),
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Running out of file descriptors must not end the server.
                    log::warn!("accept on the {ch} port {} failed: {e}", self.local[i]);
                    self.accept_again[i] = true;
                    return;
                }
            }
        }
    }

    /// Reads an accepted connection up to the read budget: the handshake, then frames.
    fn read_inbound(&mut self, registry: &Registry, token: Token) {
        let PeerLinks {
            my_sid,
            peers,
            inbound,
            inbound_by_peer,
            read_again,
            received,
            scratch,
            stats,
            ..
        } = self;
        let Some(c) = inbound.get_mut(&token) else {
            return;
        };
        let mut budget = PEER_READ_BUDGET_BYTES;
        let mut replaced = None;
        let close = loop {
            if budget == 0 {
                if !read_again.contains(&token) {
                    read_again.push(token);
                }
                break None;
            }
            let want = budget.min(scratch.len());
            let mut data = match c.stream.read(&mut scratch[..want]) {
                Ok(0) => break Some(InClose::Eof),
                Ok(n) => &scratch[..n],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Some(InClose::Error(e)),
            };
            budget -= data.len();
            stats.bytes_received += data.len() as u64;
            if c.sid.is_none() {
                let n = (HANDSHAKE_BYTES - c.handshake.len()).min(data.len());
                c.handshake.extend_from_slice(&data[..n]);
                data = &data[n..];
                if c.handshake.len() < HANDSHAKE_BYTES {
                    continue;
                }
                match check_handshake(&c.handshake, c.channel, *my_sid, peers) {
                    Err(why) => break Some(InClose::Protocol(why)),
                    Ok(sid) => {
                        log::info!("server {sid} opened its {} link from {}", c.channel, c.addr);
                        c.sid = Some(sid);
                        replaced = inbound_by_peer.insert((sid, c.channel), token);
                    }
                }
            }
            let (Some(sid), ch) = (c.sid, c.channel) else {
                continue;
            };
            let fed = c.reader.feed(data, |frame| {
                stats.frames_received += 1;
                received.push((sid, ch, frame));
            });
            if let Err(len) = fed {
                break Some(InClose::Protocol(format!(
                    "frame length {len} is over the {PEER_FRAME_BYTES_MAX} byte limit"
                )));
            }
        };
        if let Some(old) = replaced {
            // The peer restarted or redialled: whatever the old connection still holds
            // belongs to a connection the peer has given up on.
            self.close_inbound(
                registry,
                old,
                InClose::Protocol("replaced by a newer connection".to_owned()),
            );
        }
        if let Some(why) = close {
            self.close_inbound(registry, token, why);
        }
    }

    fn close_inbound(&mut self, registry: &Registry, token: Token, why: InClose) {
        let Some(mut c) = self.inbound.remove(&token) else {
            return;
        };
        let _ = registry.deregister(&mut c.stream);
        let _ = c.stream.shutdown(Shutdown::Both);
        self.read_again.retain(|t| *t != token);
        let who = match c.sid {
            Some(sid) => {
                if self.inbound_by_peer.get(&(sid, c.channel)) == Some(&token) {
                    self.inbound_by_peer.remove(&(sid, c.channel));
                }
                format!("server {sid}")
            }
            None => "an unidentified peer".to_owned(),
        };
        match why {
            InClose::Eof => log::info!("{who} closed its {} link from {}", c.channel, c.addr),
            InClose::Error(e) => {
                log::info!("{who}'s {} link from {} failed: {e}", c.channel, c.addr)
            }
            InClose::Protocol(why) => log::warn!(
                "closing the {} connection from {who} at {}: {why}",
                c.channel,
                c.addr
            ),
        }
    }

    fn outbound_event(&mut self, registry: &Registry, key: (u64, Channel), event: &Event) {
        let now = Instant::now();
        let Some(conn) = self.out.get_mut(&key).and_then(|l| l.conn.as_mut()) else {
            return;
        };
        if conn.connected_at.is_none() {
            let err = match conn.stream.take_error() {
                Ok(Some(e)) | Err(e) => Some(e.to_string()),
                Ok(None) => match conn.stream.peer_addr() {
                    Ok(_) => None,
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        if event.is_error() || event.is_write_closed() || event.is_read_closed() {
                            Some("connection closed while connecting".to_owned())
                        } else {
                            // Spurious wake-up: still connecting.
                            return;
                        }
                    }
                    Err(e) => Some(e.to_string()),
                },
            };
            if let Some(e) = err {
                self.close_out(registry, key, now, &e, false);
                return;
            }
            conn.connected_at = Some(now);
            let _ = conn.stream.set_nodelay(true);
            if let Some(link) = self.out.get_mut(&key) {
                if link.reported_down {
                    log::info!("reached server {} on its {} port again", key.0, key.1);
                }
                link.reported_down = false;
            }
            log::debug!("connected to server {} on its {} port", key.0, key.1);
        }
        // This event may also carry the peer's close, and an edge is reported only once,
        // so probe even when the event just completed the connect.
        if event.is_readable()
            || event.is_read_closed()
            || event.is_write_closed()
            || event.is_error()
        {
            let Some(conn) = self.out.get_mut(&key).and_then(|l| l.conn.as_mut()) else {
                return;
            };
            // The peer never writes on a connection we dialled: EOF means it closed it, and
            // data means it does not speak this protocol.
            let mut buf = [0u8; 64];
            let why = loop {
                match conn.stream.read(&mut buf) {
                    Ok(0) => break Some("closed by the peer".to_owned()),
                    Ok(_) => break Some("the peer sent data on a one-way link".to_owned()),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break None,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => break Some(e.to_string()),
                }
            };
            if let Some(why) = why {
                self.close_out(registry, key, now, &why, false);
                return;
            }
        }
        self.flush_out(registry, key, now);
    }

    /// Writes queued output until the socket would block, and keeps WRITABLE interest
    /// exactly while output is pending.
    fn flush_out(&mut self, registry: &Registry, key: (u64, Channel), now: Instant) {
        let Some(conn) = self.out.get_mut(&key).and_then(|l| l.conn.as_mut()) else {
            return;
        };
        if conn.connected_at.is_none() {
            return;
        }
        let mut failed = None;
        while !conn.queue.is_empty() {
            match conn.write_some() {
                Ok(0) => {
                    failed = Some("the socket took no bytes".to_owned());
                    break;
                }
                Ok(n) => {
                    self.stats.bytes_sent += n as u64;
                    conn.advance(n, &mut self.stats);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
        }
        if let Some(why) = failed {
            self.close_out(registry, key, now, &why, false);
            return;
        }
        let pending = !conn.queue.is_empty();
        if pending != conn.writable_interest {
            let interest = if pending {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            match registry.reregister(&mut conn.stream, conn.token, interest) {
                Ok(()) => conn.writable_interest = pending,
                Err(e) => {
                    let why = format!("cannot change its readiness interest: {e}");
                    self.close_out(registry, key, now, &why, false);
                }
            }
        }
    }

    /// Closes an outbound connection, dropping what it had queued, and decides when the
    /// next dial may happen: at once after a connection that worked for a while (unless
    /// `backoff` insists), otherwise after the link's backoff.
    fn close_out(
        &mut self,
        registry: &Registry,
        key: (u64, Channel),
        now: Instant,
        why: &str,
        backoff: bool,
    ) {
        let Some(link) = self.out.get_mut(&key) else {
            return;
        };
        let Some(mut conn) = link.conn.take() else {
            return;
        };
        let _ = registry.deregister(&mut conn.stream);
        let _ = conn.stream.shutdown(Shutdown::Both);
        self.out_tokens.remove(&conn.token);
        self.stats.frames_dropped += conn.frames as u64;
        self.resets.push(key);
        let healthy = conn
            .connected_at
            .is_some_and(|t| now.saturating_duration_since(t) >= PEER_RECONNECT_BACKOFF_MAX);
        if healthy && !backoff {
            // A link that worked for a while may redial at once (the peer probably
            // restarted); should that fail, backoff starts from the bottom.
            log::info!(
                "{} link to server {} at {} closed: {why}",
                key.1,
                key.0,
                conn.addr
            );
            link.backoff = PEER_RECONNECT_BACKOFF_MIN;
            link.retry_at = None;
            link.reported_down = false;
        } else {
            link_failed(link, key, conn.addr, why, now);
        }
    }
}

/// Dials `addr` without blocking and queues the handshake.
fn dial(
    registry: &Registry,
    addr: SocketAddr,
    token: Token,
    my_sid: u64,
    channel: Channel,
    now: Instant,
) -> io::Result<Outbound> {
    let mut stream = TcpStream::connect(addr)?;
    let _ = stream.set_nodelay(true);
    registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
    let hs = handshake(my_sid, channel);
    let mut queue = VecDeque::new();
    queue.push_back(hs);
    Ok(Outbound {
        token,
        stream,
        addr,
        dialled_at: now,
        connected_at: None,
        queue,
        front_pos: 0,
        queued_bytes: HANDSHAKE_BYTES,
        handshake_queued: true,
        frames: 0,
        writable_interest: true,
    })
}

/// Arms the reconnect backoff after a failed dial or a connection that did not last, and
/// logs the first failure since the link last worked at warn level, the rest at debug.
fn link_failed(link: &mut OutLink, key: (u64, Channel), addr: SocketAddr, why: &str, now: Instant) {
    if link.reported_down {
        log::debug!("{} link to server {} at {addr}: {why}", key.1, key.0);
    } else {
        log::warn!("{} link to server {} at {addr}: {why}", key.1, key.0);
        link.reported_down = true;
    }
    link.retry_at = Some(now + link.backoff);
    link.backoff = (link.backoff * 2).min(PEER_RECONNECT_BACKOFF_MAX);
}

/// Validates a complete handshake read on `channel`'s port; returns the sender's sid.
fn check_handshake(
    h: &[u8],
    channel: Channel,
    my_sid: u64,
    peers: &HashMap<u64, [SocketAddr; 2]>,
) -> Result<u64, String> {
    if &h[..4] != PEER_MAGIC {
        return Err(format!("bad handshake magic {:02x?}", &h[..4]));
    }
    let version = u32::from_be_bytes(h[4..8].try_into().expect("4 bytes"));
    if version != PEER_PROTOCOL_VERSION {
        return Err(format!(
            "handshake version {version}, this server speaks {PEER_PROTOCOL_VERSION}"
        ));
    }
    let sid = u64::from_be_bytes(h[8..16].try_into().expect("8 bytes"));
    if sid == my_sid || !peers.contains_key(&sid) {
        return Err(format!("server id {sid} is not a peer of server {my_sid}"));
    }
    match Channel::from_code(h[16]) {
        Some(c) if c == channel => Ok(sid),
        Some(c) => Err(format!("handshake names the {c} channel")),
        None => Err(format!("handshake names unknown channel {}", h[16])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::collections::BTreeMap;

    /// Token range of each PeerLinks in the shared Poll.
    const SPAN: usize = 1 << 20;

    type Addrs = Vec<(u64, SocketAddr, SocketAddr)>;

    /// Several PeerLinks driven by one Poll, as the server loop would drive one.
    struct Net {
        poll: Poll,
        events: Events,
        nodes: BTreeMap<u64, PeerLinks>,
        /// (to, from, channel, payload) in the order drained.
        inbox: Vec<(u64, u64, Channel, Vec<u8>)>,
        next_base: usize,
        /// Link resets drained from all nodes.
        resets_seen: usize,
    }

    impl Net {
        fn new() -> Net {
            Net {
                poll: Poll::new().unwrap(),
                events: Events::with_capacity(256),
                nodes: BTreeMap::new(),
                inbox: Vec::new(),
                next_base: 0,
                resets_seen: 0,
            }
        }

        fn token_base(&mut self) -> usize {
            self.next_base += SPAN;
            self.next_base
        }

        /// Starts `sids` on loopback port-0 listeners; each knows the others and `extra`.
        fn start(&mut self, sids: &[u64], extra: &[(u64, SocketAddr, SocketAddr)]) -> Addrs {
            let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let listeners: Vec<(u64, TcpListener, TcpListener)> = sids
                .iter()
                .map(|&sid| {
                    (
                        sid,
                        TcpListener::bind(any).unwrap(),
                        TcpListener::bind(any).unwrap(),
                    )
                })
                .collect();
            let mut addrs: Addrs = listeners
                .iter()
                .map(|(sid, q, e)| (*sid, q.local_addr().unwrap(), e.local_addr().unwrap()))
                .collect();
            addrs.extend_from_slice(extra);
            for (sid, q, e) in listeners {
                let base = self.token_base();
                let links =
                    PeerLinks::from_listeners(self.poll.registry(), sid, q, e, addrs.clone(), base)
                        .unwrap();
                self.nodes.insert(sid, links);
            }
            addrs
        }

        fn node(&self, sid: u64) -> &PeerLinks {
            &self.nodes[&sid]
        }

        fn send(&mut self, from: u64, to: u64, ch: Channel, payload: &[u8]) -> bool {
            let registry = self.poll.registry();
            self.nodes
                .get_mut(&from)
                .unwrap()
                .send(registry, to, ch, payload)
        }

        /// One loop turn: poll, dispatch, tick, drain.
        fn turn(&mut self) {
            let busy = self.nodes.values().any(|n| n.busy());
            let wait = if busy { 0 } else { 5 };
            self.poll
                .poll(&mut self.events, Some(Duration::from_millis(wait)))
                .unwrap();
            let registry = self.poll.registry();
            for ev in self.events.iter() {
                for n in self.nodes.values_mut() {
                    if n.owns(ev.token()) {
                        n.handle_event(registry, ev);
                    }
                }
            }
            let now = Instant::now();
            for (sid, n) in self.nodes.iter_mut() {
                n.tick(registry, now);
                // As the runtime does each turn: hear of lost links, which reopens them.
                self.resets_seen += n.drain_resets().len();
                for (from, ch, payload) in n.drain_received() {
                    self.inbox.push((*sid, from, ch, payload));
                }
            }
        }

        fn until(&mut self, what: &str, mut cond: impl FnMut(&mut Net) -> bool) {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !cond(self) {
                assert!(Instant::now() < deadline, "timed out waiting for {what}");
                self.turn();
            }
        }

        fn count(&self, to: u64) -> usize {
            self.inbox.iter().filter(|m| m.0 == to).count()
        }

        /// Removes and returns what `to` received: (from, channel, payload).
        fn take(&mut self, to: u64) -> Vec<(u64, Channel, Vec<u8>)> {
            let (mine, rest) = std::mem::take(&mut self.inbox)
                .into_iter()
                .partition(|m| m.0 == to);
            self.inbox = rest;
            mine.into_iter().map(|(_, f, c, p)| (f, c, p)).collect()
        }

        /// Waits until `sid`'s link to `to` on `ch` has no connection, dialling or open.
        fn until_link_idle(&mut self, sid: u64, to: u64, ch: Channel) {
            self.until("the link to go idle", |n| {
                !n.node(sid)
                    .out
                    .get(&(to, ch))
                    .is_some_and(|l| l.conn.is_some())
            });
        }
    }

    /// A raw client connection that has sent `hello`.
    fn raw(addr: SocketAddr, hello: &[u8]) -> std::net::TcpStream {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(hello).unwrap();
        s.set_nonblocking(true).unwrap();
        s
    }

    /// Pumps `net` until the server side has closed `s`.
    fn until_closed(net: &mut Net, s: &mut std::net::TcpStream, what: &str) {
        net.until(what, |_| {
            let mut buf = [0u8; 16];
            match s.read(&mut buf) {
                Ok(0) => true,
                Ok(_) => panic!("{what}: the server wrote on a peer connection"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
                Err(_) => true,
            }
        });
    }

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    }

    /// Addresses nothing listens on.
    fn dead_addrs() -> (SocketAddr, SocketAddr) {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let q = TcpListener::bind(any).unwrap().local_addr().unwrap();
        let e = TcpListener::bind(any).unwrap().local_addr().unwrap();
        (q, e)
    }

    #[test]
    fn frame_reader_splits_any_chunking_and_rejects_long_prefixes() {
        let mut stream = Vec::new();
        for p in [&b"a"[..], b"", b"hello world", &[7u8; 1000]] {
            stream.extend_from_slice(&frame(p));
        }
        for chunk in [1, 3, 5, 4096] {
            let mut r = FrameReader::default();
            let mut got = Vec::new();
            for c in stream.chunks(chunk) {
                r.feed(c, |f| got.push(f)).unwrap();
            }
            assert_eq!(
                got,
                vec![
                    b"a".to_vec(),
                    vec![],
                    b"hello world".to_vec(),
                    vec![7u8; 1000]
                ]
            );
        }
        let mut r = FrameReader::default();
        let too_long = (PEER_FRAME_BYTES_MAX as u32 + 1).to_be_bytes();
        assert_eq!(
            r.feed(&too_long, |_| panic!("no frame")),
            Err(PEER_FRAME_BYTES_MAX as u32 + 1)
        );
    }

    #[test]
    fn delivers_to_each_peer_on_each_channel() {
        let mut net = Net::new();
        net.start(&[1, 2, 3], &[]);
        for to in [2, 3] {
            for ch in Channel::ALL {
                assert!(net.send(1, to, ch, format!("to {to} on {ch}").as_bytes()));
            }
        }
        net.until("4 messages", |n| n.inbox.len() == 4);
        for to in [2, 3] {
            let mut got = net.take(to);
            got.sort();
            let want: Vec<_> = Channel::ALL
                .iter()
                .map(|&ch| (1, ch, format!("to {to} on {ch}").into_bytes()))
                .collect();
            assert_eq!(got, want);
            for ch in Channel::ALL {
                assert!(net.node(1).connected_outbound(to, ch));
                // Links are one-way: nothing was dialled back.
                assert!(!net.node(to).connected_outbound(1, ch));
            }
        }
        let s1 = net.node(1).stats();
        assert_eq!(s1.frames_sent, 4);
        assert_eq!(s1.connect_attempts, 4);
        assert_eq!(s1.frames_dropped, 0);
        let received: u64 = [2, 3]
            .iter()
            .map(|s| net.node(*s).stats().bytes_received)
            .sum();
        assert_eq!(received, s1.bytes_sent);
        assert_eq!(net.node(2).stats().frames_received, 2);
    }

    #[test]
    fn thousand_messages_arrive_in_order() {
        let mut net = Net::new();
        net.start(&[1, 2], &[]);
        // Sent at once, so most are queued while the connections are still being dialled.
        for i in 0u32..1000 {
            for ch in Channel::ALL {
                let mut p = i.to_be_bytes().to_vec();
                p.resize(4 + (i as usize * 7) % 300, ch as u8);
                assert!(net.send(1, 2, ch, &p));
            }
        }
        net.until("2000 messages", |n| n.count(2) == 2000);
        let got = net.take(2);
        for ch in Channel::ALL {
            let seq: Vec<u32> = got
                .iter()
                .filter(|m| m.1 == ch)
                .map(|m| {
                    assert_eq!(m.0, 1);
                    let i = u32::from_be_bytes(m.2[..4].try_into().unwrap());
                    assert_eq!(m.2.len(), 4 + (i as usize * 7) % 300);
                    assert!(m.2[4..].iter().all(|b| *b == ch as u8));
                    i
                })
                .collect();
            assert_eq!(seq, (0..1000).collect::<Vec<u32>>(), "{ch} order");
        }
    }

    #[test]
    fn twenty_mib_frame_arrives_intact() {
        let mut net = Net::new();
        net.start(&[1, 3], &[]);
        let big: Vec<u8> = (0..20usize << 20).map(|i| (i * 31 % 251) as u8).collect();
        assert!(net.send(1, 3, Channel::Quorum, &big));
        assert!(net.send(1, 3, Channel::Quorum, b"after"));
        net.until("the big frame", |n| n.count(3) == 2);
        let got = net.take(3);
        assert_eq!(got[0].0, 1);
        assert!(got[0].2 == big, "the 20 MiB frame differs");
        assert_eq!(got[1].2, b"after");
    }

    #[test]
    fn oversized_length_closes_only_that_connection() {
        let mut net = Net::new();
        let (dq, de) = dead_addrs();
        let addrs = net.start(&[1, 2], &[(4, dq, de)]);
        let election2 = addrs[1].2;
        // Peer 4 is a raw socket speaking the wire format by hand.
        let mut s = raw(election2, &handshake(4, Channel::Election));
        s.write_all(&frame(b"raw hello")).unwrap();
        assert!(net.send(1, 2, Channel::Election, b"from 1"));
        net.until("both messages", |n| n.count(2) == 2);
        let mut got = net.take(2);
        got.sort();
        assert_eq!(
            got,
            vec![
                (1, Channel::Election, b"from 1".to_vec()),
                (4, Channel::Election, b"raw hello".to_vec())
            ]
        );
        s.write_all(&u32::MAX.to_be_bytes()).unwrap();
        s.write_all(&[0u8; 100]).unwrap();
        until_closed(
            &mut net,
            &mut s,
            "the oversized frame's connection to close",
        );
        assert!(!net
            .node(2)
            .inbound_by_peer
            .contains_key(&(4, Channel::Election)));
        for ch in Channel::ALL {
            assert!(net.send(1, 2, ch, b"still here"));
        }
        net.until("the later messages", |n| n.count(2) == 2);
        assert!(net.take(2).iter().all(|m| m.0 == 1 && m.2 == b"still here"));
        assert_eq!(net.node(2).stats().frames_received, 4);
    }

    #[test]
    fn bad_handshakes_are_dropped() {
        let mut net = Net::new();
        let (dq, de) = dead_addrs();
        let addrs = net.start(&[1, 2], &[(4, dq, de)]);
        let (quorum2, election2) = (addrs[1].1, addrs[1].2);
        let mut wrong_version = handshake(4, Channel::Quorum);
        wrong_version[7] = 2;
        let cases = [
            ("garbage", quorum2, b"GARBAGE-HANDSHAKE".to_vec()),
            ("wrong version", quorum2, wrong_version),
            ("unknown sid", quorum2, handshake(99, Channel::Quorum)),
            ("own sid", quorum2, handshake(2, Channel::Quorum)),
            ("wrong port", election2, handshake(4, Channel::Quorum)),
        ];
        for (what, addr, hello) in cases {
            let mut s = raw(addr, &hello);
            // A frame after a bad handshake must never be handed up.
            let _ = s.write_all(&frame(b"must not arrive"));
            until_closed(&mut net, &mut s, what);
        }
        // A connection that never says anything is closed once its handshake is overdue.
        let mut silent = raw(quorum2, b"ZKP");
        net.until("the silent connection to be accepted", |n| {
            n.node(2).inbound.len() == 1
        });
        let late = Instant::now() + PEER_HANDSHAKE_TIMEOUT;
        let registry = net.poll.registry();
        net.nodes.get_mut(&2).unwrap().tick(registry, late);
        until_closed(&mut net, &mut silent, "the silent connection");
        // A second connection from the same sid and channel replaces the first.
        let mut first = raw(quorum2, &handshake(4, Channel::Quorum));
        first.write_all(&frame(b"first")).unwrap();
        net.until("the first raw frame", |n| n.count(2) == 1);
        let mut second = raw(quorum2, &handshake(4, Channel::Quorum));
        second.write_all(&frame(b"second")).unwrap();
        until_closed(&mut net, &mut first, "the replaced connection");
        net.until("the second raw frame", |n| n.count(2) == 2);
        assert_eq!(
            net.take(2),
            vec![
                (4, Channel::Quorum, b"first".to_vec()),
                (4, Channel::Quorum, b"second".to_vec())
            ]
        );
        // Real peers are unaffected.
        assert!(net.send(1, 2, Channel::Quorum, b"ok"));
        net.until("a real message", |n| n.count(2) == 1);
        assert_eq!(net.take(2), vec![(1, Channel::Quorum, b"ok".to_vec())]);
    }

    #[test]
    fn restarted_peer_gets_new_messages_and_none_sent_while_it_was_down() {
        let mut net = Net::new();
        let addrs = net.start(&[1, 2], &[]);
        let (quorum2, election2) = (addrs[1].1, addrs[1].2);
        for ch in Channel::ALL {
            assert!(net.send(1, 2, ch, b"before"));
        }
        net.until("the first messages", |n| n.count(2) == 2);
        net.take(2);

        drop(net.nodes.remove(&2));
        let resets_before = net.resets_seen;
        net.until("1 to notice", |n| {
            Channel::ALL
                .iter()
                .all(|&ch| !n.node(1).connected_outbound(2, ch))
        });
        net.until("the lost links to be reported", |n| {
            n.resets_seen >= resets_before + 2
        });
        let dropped_before = net.node(1).stats().frames_dropped;
        for i in 0..20 {
            for ch in Channel::ALL {
                net.send(1, 2, ch, format!("lost {i}").as_bytes());
            }
            net.turn();
        }
        for ch in Channel::ALL {
            net.until_link_idle(1, 2, ch);
        }
        assert_eq!(net.node(1).stats().frames_dropped - dropped_before, 40);

        let base = net.token_base();
        let links = PeerLinks::new(net.poll.registry(), 2, quorum2, election2, addrs, base)
            .expect("rebinding the same ports");
        assert_eq!(links.local_addrs(), (quorum2, election2));
        net.nodes.insert(2, links);
        let mut i = 0u32;
        net.until("1 to reach the new 2", |n| {
            i += 1;
            n.send(1, 2, Channel::Quorum, format!("after {i}").as_bytes());
            n.count(2) > 0
        });
        let last = i + 1;
        assert!(net.send(1, 2, Channel::Quorum, format!("after {last}").as_bytes()));
        net.until("the last message", |n| {
            n.inbox
                .iter()
                .any(|m| m.3 == format!("after {last}").as_bytes())
        });
        let got: Vec<u32> = net
            .take(2)
            .into_iter()
            .map(|(from, ch, p)| {
                assert_eq!((from, ch), (1, Channel::Quorum));
                let text = String::from_utf8(p).unwrap();
                let n = text
                    .strip_prefix("after ")
                    .expect("only messages sent after the restart");
                n.parse().unwrap()
            })
            .collect();
        // A contiguous run ending with the last: nothing lost once connected, nothing stale.
        let first = got[0];
        assert_eq!(got, (first..=last).collect::<Vec<u32>>());
    }

    #[test]
    fn unreachable_peer_is_not_dialled_in_a_hot_loop() {
        let mut net = Net::new();
        let (dq, de) = dead_addrs();
        net.start(&[1], &[(2, dq, de)]);
        let start = Instant::now();
        let mut sends = 0;
        while start.elapsed() < Duration::from_secs(1) {
            net.send(1, 2, Channel::Election, b"anyone there?");
            sends += 1;
            net.turn();
        }
        let st = net.node(1).stats();
        // Backoff 100, 200, 400, 800 ms: about four dials in the first second.
        assert!(
            (2..=6).contains(&st.connect_attempts),
            "{} dials in 1s",
            st.connect_attempts
        );
        assert!(sends > 20, "the loop ran only {sends} times");
        assert_eq!(st.frames_dropped, sends);
        assert_eq!(st.frames_sent, 0);
        assert!(!net.node(1).connected_outbound(2, Channel::Election));
    }

    #[test]
    fn a_link_with_an_unreported_loss_takes_nothing_until_it_is_drained() {
        let mut net = Net::new();
        net.start(&[1, 2], &[]);
        assert!(net.send(1, 2, Channel::Quorum, b"first"));
        net.until("the first message", |n| n.count(2) == 1);
        net.take(2);
        // As if the connection had just broken with that message's successor in flight.
        let n1 = net.nodes.get_mut(&1).unwrap();
        n1.resets.push((2, Channel::Quorum));
        assert!(!net.send(1, 2, Channel::Quorum, b"overtaker"));
        assert!(net.send(1, 2, Channel::Election, b"other channel"));
        assert_eq!(
            net.nodes.get_mut(&1).unwrap().drain_resets(),
            vec![(2, Channel::Quorum)]
        );
        assert!(net.send(1, 2, Channel::Quorum, b"after"));
        net.until("the later messages", |n| n.count(2) == 2);
        let got: Vec<Vec<u8>> = net.take(2).into_iter().map(|m| m.2).collect();
        assert!(!got.iter().any(|p| p == b"overtaker"), "{got:?}");
    }

    #[test]
    fn refuses_unknown_sids_and_oversized_payloads() {
        let mut net = Net::new();
        net.start(&[1, 2], &[]);
        assert!(!net.send(1, 7, Channel::Quorum, b"x"));
        assert!(!net.send(1, 1, Channel::Quorum, b"to myself"));
        let huge = vec![0u8; PEER_FRAME_BYTES_MAX + 1];
        assert!(!net.send(1, 2, Channel::Quorum, &huge));
        assert_eq!(net.node(1).stats().frames_dropped, 3);
        assert_eq!(net.node(1).stats().connect_attempts, 0);
    }
}
