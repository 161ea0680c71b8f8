//! Deterministic simulation of an ensemble: three or five real `Replica`s (the pure `Server`
//! plus `Zab`), sometimes with an observer, over a fake network, a fake clock and fake disks,
//! all driven from one seed by a priority queue of events (message deliveries, fsyncs, ticks,
//! client operations and faults), with the invariants checked after every event. It never
//! reads the clock, never spawns a thread and never touches a file or a socket: a run is a
//! pure function of its options, so a failing seed replays exactly, with a trace. It
//! corresponds to nothing in Apache ZooKeeper, whose Jepsen tests are not deterministic.
//!
//! Fault model. Links are one-way FIFO queues per (from, to, port), like zk's peer
//! connections: delays vary per message but never reorder a link. A partition cuts links
//! (messages sent into a cut are lost); a link break drops what is in flight on one link.
//! Either ends the connection: the sender gets `Input::LinkReset` soon (a reset) or only when
//! the link comes back (a black hole), and on the quorum port nothing it sends arrives until
//! then, as with TCP and a network loop that dials anew only after telling Zab. A crash
//! drops the replica and what its disk had not synced, but for a random prefix of it (a torn
//! tail); a restart recovers from the fake disk. An fsync covers what was logged when it
//! started. Delay spikes (beyond syncLimit in the Slow profile), slow disks and storms of
//! short faults (Storm) stretch timing. Clients pipeline writes and reads, and reconnect
//! elsewhere when their connection closes or a request times out.
//!
//! Invariants, checked as the run goes: at most one established leader per epoch; a zxid
//! names one txn everywhere, ever; every log is a chain without holes; a commit is durable on
//! a majority when the leader makes it; a committed txn is never truncated or replaced; an
//! acknowledged write is committed; replies come in request order; a client's reads see its
//! own writes and never go back; replicas at the same applied zxid have the same tree digest.
//! After the faults heal: a leader is established and a new write is acknowledged within
//! `SETTLE_MS`, every replica converges to the same tree, every acknowledged create and the
//! last acknowledged setData are there, and every replica's disk recovers to its live tree.

mod disk;
mod rng;

pub use rng::Rng;

use crate::config::Config;
use crate::proto::consts::{op, xid};
use crate::proto::peer::{PeerMsg, Port, Sid};
use crate::proto::{open_acl_unsafe, ConnectRequest, ConnectResponse, CreateRequest};
use crate::proto::{Reader, ReplyHeader, Writer};
use crate::server::replica::Replica;
use crate::server::{ConnId, Now, Output as ServerOutput, Server};
use crate::zab::{Durable, Input, Role, Zab, ZabConfig};
use disk::{Disk, DiskRef, FakeSink, FakeStorage, Ledger, LedgerRef};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;

/// zoo.cfg's tickTime, initLimit and syncLimit for every simulated server.
pub const TICK_MS: u64 = 100;
pub const INIT_LIMIT_TICKS: u64 = 10;
pub const SYNC_LIMIT_TICKS: u64 = 5;
/// How long after the last fault heals the ensemble has to elect a leader, acknowledge a new
/// write and converge.
pub const SETTLE_MS: u64 = 30_000;
/// The session timeout clients ask for (20 ticks, the default maximum).
const SESSION_TIMEOUT_MS: i32 = 20 * TICK_MS as i32;
/// Virtual wall-clock time at the start of every run.
const WALL_BASE_MS: i64 = 1_700_000_000_000;
/// How often the slower invariants (holes in logs, digests) are checked.
const CHECKPOINT_MS: u64 = 250;
/// How long a client waits for a reply, or for its session, before it gives up the connection.
const CLIENT_TIMEOUT_MS: u64 = 3_000;
/// How often a client looks at its state between replies.
const CLIENT_POLL_MS: u64 = 50;
/// Keys every client writes with setData.
const SHARED_KEYS: u64 = 3;
/// How often a serving node snapshots its tree and drops the log under it.
const SNAPSHOT_EVERY_MS: (u64, u64) = (800, 3_000);

const QUORUM: usize = 0;
const ELECTION: usize = 1;

/// How the faults of a run are shaped; each seed picks one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A fault every 0.1 to 1.2 s: crashes, partitions, link breaks, delay spikes, slow disks.
    Mixed,
    /// Many short faults (every 30 to 300 ms), so elections overlap and leaders flap.
    Storm,
    /// Long delays (up to 1.5 s, beyond syncLimit) and slow disks, fewer faults.
    Slow,
}

impl Profile {
    fn of_seed(seed: u64) -> Profile {
        match seed % 4 {
            0 | 1 => Profile::Mixed,
            2 => Profile::Storm,
            _ => Profile::Slow,
        }
    }
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    /// Voting servers (3 or 5).
    pub nodes: usize,
    /// Observers besides them (sids after the voters').
    pub observers: usize,
    pub clients: usize,
    /// Whether faults are injected.
    pub faults: bool,
    /// How long faults are injected before everything heals.
    pub fault_ms: u64,
    pub profile: Profile,
    /// Requests a client keeps in flight on its connection.
    pub pipeline: usize,
    /// Print every event and every server log line.
    pub trace: bool,
}

impl Options {
    pub fn new(seed: u64, nodes: usize) -> Options {
        Options {
            seed,
            nodes,
            clients: 3,
            faults: true,
            fault_ms: 6_000,
            profile: Profile::of_seed(seed),
            observers: usize::from(seed % 5 == 4),
            pipeline: 1 + (seed / 4 % 3) as usize,
            trace: false,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub events: u64,
    pub virtual_ms: u64,
    pub messages: u64,
    pub dropped: u64,
    pub committed: usize,
    pub acked_writes: usize,
    pub epochs: usize,
    pub crashes: u64,
    pub partitions: u64,
    pub link_breaks: u64,
    pub snapshots_sent: u64,
    /// The converged tree's digest and zxid.
    pub final_digest: u64,
    pub final_zxid: i64,
}

/// A broken invariant (or a panic inside the code under test), with how to replay it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub seed: u64,
    pub nodes: usize,
    pub event: u64,
    pub time_ms: u64,
    pub what: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sim seed {} ({} servers) failed at event {}, t={} ms: {}\n  replay: ZK_SIM_SEED={} ZK_SIM_NODES={} cargo test --release --lib sim::tests::replay -- --nocapture",
            self.seed, self.nodes, self.event, self.time_ms, self.what, self.seed, self.nodes
        )
    }
}

/// Runs one simulation; a panic in the code under test becomes a `Failure` too.
pub fn run(opts: &Options) -> Result<Stats, Failure> {
    let progress = Rc::new(Cell::new((0u64, 0u64)));
    let p = progress.clone();
    let o = opts.clone();
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let mut sim = Sim::new(o);
        let r = sim.run_all(&p);
        trace_off();
        r
    }));
    match res {
        Ok(r) => r,
        Err(e) => {
            trace_off();
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            let (event, time_ms) = progress.get();
            Err(Failure {
                seed: opts.seed,
                nodes: opts.nodes,
                event,
                time_ms,
                what: format!("panic: {msg}"),
            })
        }
    }
}

// ---- tracing: the sim's own lines plus the servers' log lines, tagged with the server ----

thread_local! {
    /// (tracing on, the server whose code runs now) for this thread's simulation.
    static TRACE: Cell<(bool, u64, u64)> = const { Cell::new((false, 0, 0)) };
}

fn trace_off() {
    TRACE.with(|t| t.set((false, 0, 0)));
}

fn trace_ctx(sid: u64, now: u64) {
    TRACE.with(|t| {
        let (on, _, _) = t.get();
        t.set((on, sid, now));
    });
}

struct TraceLogger;

impl log::Log for TraceLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        TRACE.with(|t| t.get().0)
    }

    fn log(&self, record: &log::Record) {
        let (on, sid, now) = TRACE.with(|t| t.get());
        if on {
            println!(
                "{now:>7}        s{sid} {}: {}",
                record.level().as_str().to_lowercase(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

static TRACE_LOGGER: TraceLogger = TraceLogger;

/// Turns tracing on for simulations run on this thread from now on.
pub fn enable_trace() {
    let _ = log::set_logger(&TRACE_LOGGER);
    log::set_max_level(log::LevelFilter::Info);
    TRACE.with(|t| t.set((true, 0, 0)));
}

// ---- events ----

#[derive(Debug)]
enum Ev {
    Deliver {
        from: usize,
        to: usize,
        port: usize,
        gen: u64,
        bytes: Vec<u8>,
    },
    LinkReset {
        node: usize,
        inc: u64,
        peer: usize,
    },
    /// An fsync completes: it covers the log as it was when it started, up to `upto`.
    Sync {
        node: usize,
        inc: u64,
        upto: i64,
        log_gen: u64,
    },
    Tick {
        node: usize,
        inc: u64,
    },
    Snapshot {
        node: usize,
    },
    /// A client looks at its state: `poll` events recur, the others are one-off wake-ups.
    Client {
        id: usize,
        poll: bool,
    },
    Fault,
    Restart {
        node: usize,
    },
    Heal {
        cut: u64,
    },
    HealAll,
    Checkpoint,
}

struct Queued {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    /// Reversed: the heap pops the earliest event, ties in scheduling order.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// One direction of one port between two servers: a TCP connection and its successors.
#[derive(Debug, Clone, Default)]
struct Link {
    /// Bumped whenever the connection breaks: deliveries of an older generation are lost.
    gen: u64,
    /// FIFO: no message is delivered before one sent earlier on the link.
    last_at: u64,
    /// Partitions cutting this link.
    cuts: u32,
    /// A black-holed connection: the sender hears of the break when the link comes back.
    reset_owed: bool,
    /// Quorum port: the connection broke and the sender has not yet been told. TCP delivers
    /// a prefix of what was written to a connection, and the network loop dials a new one
    /// only after it has told Zab (`Input::LinkReset`), so until then messages are lost.
    broken: bool,
}

struct Node {
    sid: Sid,
    disk: DiskRef,
    replica: Option<Replica>,
    /// Bumped at every crash: events for an earlier incarnation are void.
    inc: u64,
    sync_scheduled: bool,
    slow_disk_until: u64,
    /// The epoch this node led as established at the last check.
    established: Option<u64>,
    /// (incarnation, zxid, digest) of the last digest computed.
    digest: Option<(u64, i64, u64)>,
    /// (role, serving, last applied zxid) at the last check, for the trace.
    shown: (Role, bool, i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    CreateUnique,
    /// An ephemeral node: it goes with its session, so only digests check it.
    CreateEphemeral,
    CreateShared,
    SetShared,
    /// getData of a shared key: must show the client's own writes and never go back.
    GetShared,
    Sync,
}

#[derive(Debug, Clone)]
struct Pending {
    xid: i32,
    kind: OpKind,
    path: String,
    data: Vec<u8>,
    sent_at: u64,
}

#[derive(Debug, Clone, Copy)]
enum CState {
    Down {
        retry_at: u64,
    },
    Connecting {
        node: usize,
        conn: ConnId,
        since: u64,
    },
    Up {
        node: usize,
        conn: ConnId,
    },
}

struct Client {
    state: CState,
    /// Requests sent and not yet answered, oldest first.
    pending: VecDeque<Pending>,
    next_xid: i32,
    /// Creates issued, for unique names.
    n: u64,
    last_zxid_seen: i64,
    /// The highest mzxid this client saw for each shared key (written or read).
    seen: BTreeMap<String, i64>,
}

/// An acknowledged write.
#[derive(Debug, Clone)]
struct Ack {
    kind: OpKind,
    path: String,
    data: Vec<u8>,
    zxid: i64,
    at: u64,
}

struct Cut {
    pairs: Vec<(usize, usize)>,
}

struct Sim {
    opts: Options,
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Queued>,
    event_no: u64,
    nodes: Vec<Node>,
    links: Vec<Link>,
    cuts: BTreeMap<u64, Cut>,
    next_cut: u64,
    spike_until: u64,
    clients: Vec<Client>,
    conn_owner: BTreeMap<(usize, ConnId), usize>,
    next_conn: ConnId,
    ledger: LedgerRef,
    /// Established epoch -> its leader.
    leaders: BTreeMap<u64, Sid>,
    acks: Vec<Ack>,
    /// Acks of the current event, checked against the commits once it is over.
    new_acks: Vec<usize>,
    /// Applied zxid -> tree digest, from whichever replica got there first.
    digests: HashMap<i64, u64>,
    /// When every fault was healed; then whether a write was acknowledged since.
    heal_at: Option<u64>,
    progressed: bool,
    workload: bool,
    done: bool,
    stats: Stats,
}

type Res = Result<(), String>;

fn hex(z: i64) -> String {
    format!("0x{:x}", z as u64)
}

/// A message, briefly, for the trace (payloads shown by size).
fn describe(m: &PeerMsg) -> String {
    match m {
        PeerMsg::Notification {
            vote,
            election_epoch,
            state,
        } => format!(
            "NOTIFICATION vote(leader {}, zxid {}, epoch {}) round {election_epoch} {state:?}",
            vote.leader,
            hex(vote.zxid),
            vote.peer_epoch
        ),
        PeerMsg::Proposal { zxid, txn } => format!("PROPOSAL {} ({} bytes)", hex(*zxid), txn.len()),
        PeerMsg::Snap { zxid, snapshot } => {
            format!("SNAP {} ({} bytes)", hex(*zxid), snapshot.len())
        }
        PeerMsg::NewLeader { epoch, zxid, .. } => format!("NEWLEADER epoch {epoch} {}", hex(*zxid)),
        PeerMsg::Request(r) => format!(
            "REQUEST session 0x{:x} cxid {} op {}",
            r.session_id, r.cxid, r.op
        ),
        PeerMsg::Commit { zxid } => format!("COMMIT {}", hex(*zxid)),
        PeerMsg::Ack { zxid } => format!("ACK {}", hex(*zxid)),
        PeerMsg::Diff { zxid } => format!("DIFF {}", hex(*zxid)),
        PeerMsg::Trunc { zxid } => format!("TRUNC {}", hex(*zxid)),
        PeerMsg::UpToDate { committed } => format!("UPTODATE {}", hex(*committed)),
        PeerMsg::Ping {
            committed,
            last_proposed,
        } => format!(
            "PING committed {} proposed {}",
            hex(*committed),
            hex(*last_proposed)
        ),
        PeerMsg::PingReply { durable, sessions } => {
            format!(
                "PINGREPLY durable {} sessions {}",
                hex(*durable),
                sessions.len()
            )
        }
        PeerMsg::AckEpoch {
            current_epoch,
            last_zxid,
        } => format!("ACKEPOCH current {current_epoch} {}", hex(*last_zxid)),
        PeerMsg::FollowerInfo {
            accepted_epoch,
            last_zxid,
            ..
        } => format!("FOLLOWERINFO accepted {accepted_epoch} {}", hex(*last_zxid)),
        other => format!("{other:?}"),
    }
}

impl Sim {
    fn new(opts: Options) -> Sim {
        let n = opts.nodes + opts.observers;
        let mut rng = Rng::new(opts.seed);
        let ledger: LedgerRef = Rc::new(RefCell::new(Ledger::default()));
        let mut nodes = Vec::new();
        for i in 0..n {
            let mut secret = [0u8; 32];
            for chunk in secret.chunks_mut(8) {
                chunk.copy_from_slice(&rng.next_u64().to_be_bytes());
            }
            let sid = i as Sid + 1;
            nodes.push(Node {
                sid,
                disk: Disk::new(sid, secret),
                replica: None,
                inc: 0,
                sync_scheduled: false,
                slow_disk_until: 0,
                established: None,
                digest: None,
                shown: (Role::Looking, false, 0),
            });
        }
        let clients = (0..opts.clients)
            .map(|_| Client {
                state: CState::Down { retry_at: 0 },
                pending: VecDeque::new(),
                next_xid: 1,
                n: 0,
                last_zxid_seen: 0,
                seen: BTreeMap::new(),
            })
            .collect();
        Sim {
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            event_no: 0,
            nodes,
            links: vec![Link::default(); n * n * 2],
            cuts: BTreeMap::new(),
            next_cut: 0,
            spike_until: 0,
            clients,
            conn_owner: BTreeMap::new(),
            next_conn: 1,
            ledger,
            leaders: BTreeMap::new(),
            acks: Vec::new(),
            new_acks: Vec::new(),
            digests: HashMap::new(),
            heal_at: None,
            progressed: false,
            workload: true,
            done: false,
            stats: Stats::default(),
            opts,
        }
    }

    fn at(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Queued {
            at,
            seq: self.seq,
            ev,
        });
    }

    fn now_struct(&self) -> Now {
        Now {
            wall_ms: WALL_BASE_MS + self.now as i64,
            mono_ms: self.now,
        }
    }

    fn trace(&self, s: impl FnOnce() -> String) {
        if self.opts.trace {
            println!("{:>7} #{:<6} {}", self.now, self.event_no, s());
        }
    }

    fn quorum(&self) -> usize {
        self.opts.nodes / 2 + 1
    }

    // ---- the run ----

    fn run_all(&mut self, progress: &Cell<(u64, u64)>) -> Result<Stats, Failure> {
        let n = self.nodes.len();
        for i in 0..n {
            self.boot(i);
            let first_tick = 1 + (i as u64 * 17) % (TICK_MS / 2);
            self.at(first_tick, Ev::Tick { node: i, inc: 0 });
            let s = self.rng.range(SNAPSHOT_EVERY_MS.0, SNAPSHOT_EVERY_MS.1);
            self.at(s, Ev::Snapshot { node: i });
        }
        for id in 0..self.clients.len() {
            let t = self.rng.range(1, 300);
            self.at(t, Ev::Client { id, poll: true });
        }
        if self.opts.faults {
            let t = self.rng.range(200, 1_000);
            self.at(t, Ev::Fault);
        }
        self.at(self.opts.fault_ms, Ev::HealAll);
        self.at(CHECKPOINT_MS, Ev::Checkpoint);
        while let Some(q) = self.queue.pop() {
            self.now = q.at;
            self.event_no += 1;
            progress.set((self.event_no, self.now));
            let r = self
                .event(q.ev)
                .and_then(|_| self.check_event())
                .and_then(|_| {
                    if self.done {
                        self.final_checks()
                    } else {
                        Ok(())
                    }
                });
            if let Err(what) = r {
                return Err(self.failure(what));
            }
            if self.done {
                break;
            }
        }
        self.stats.events = self.event_no;
        self.stats.virtual_ms = self.now;
        self.stats.committed = self.ledger.borrow().committed.len();
        self.stats.acked_writes = self.acks.len();
        self.stats.epochs = self.leaders.len();
        Ok(self.stats.clone())
    }

    fn failure(&self, what: String) -> Failure {
        let mut what = what;
        what.push_str("\n  servers:");
        for nd in &self.nodes {
            match &nd.replica {
                None => what.push_str(&format!("\n    s{}: down", nd.sid)),
                Some(r) => what.push_str(&format!(
                    "\n    s{}: {:?} leader {:?} epochs acc/cur {}/{} logged {} durable {} committed {} applied {} serving {}",
                    nd.sid,
                    r.zab.role(),
                    r.zab.leader_sid(),
                    r.zab.accepted_epoch,
                    r.zab.current_epoch,
                    hex(r.zab.last_logged()),
                    hex(r.zab.last_durable()),
                    hex(r.zab.last_committed()),
                    hex(r.server.last_zxid),
                    r.zab.serving()
                )),
            }
        }
        Failure {
            seed: self.opts.seed,
            nodes: self.opts.nodes,
            event: self.event_no,
            time_ms: self.now,
            what,
        }
    }

    fn event(&mut self, ev: Ev) -> Res {
        match ev {
            Ev::Deliver {
                from,
                to,
                port,
                gen,
                bytes,
            } => {
                let l = &self.links[self.link_index(from, to, port)];
                if l.gen != gen || !self.link_up(from, to, port) {
                    self.stats.dropped += 1;
                    return Ok(());
                }
                let msg = PeerMsg::decode(&bytes)
                    .map_err(|e| format!("a peer message does not decode: {e:?}"))?;
                self.trace(|| format!("s{} -> s{}  {}", from + 1, to + 1, describe(&msg)));
                let sid = self.nodes[from].sid;
                self.step(to, Input::Message { from: sid, msg });
            }
            Ev::LinkReset { node, inc, peer } => {
                if self.nodes[node].inc == inc && self.nodes[node].replica.is_some() {
                    let li = self.link_index(node, peer, QUORUM);
                    self.links[li].broken = false;
                    self.trace(|| format!("s{}: link to s{} reset", node + 1, peer + 1));
                    let sid = self.nodes[peer].sid;
                    self.step(node, Input::LinkReset { sid });
                }
            }
            Ev::Sync {
                node,
                inc,
                upto,
                log_gen,
            } => {
                if self.nodes[node].inc != inc {
                    return Ok(());
                }
                self.nodes[node].sync_scheduled = false;
                let last = {
                    let mut d = self.nodes[node].disk.borrow_mut();
                    // Records appended while it ran wait for the next fsync.
                    if d.log_gen == log_gen {
                        let n = d.log.partition_point(|(z, _)| *z <= upto);
                        d.durable_len = d.durable_len.max(n);
                    }
                    d.log[..d.durable_len].last().map(|(z, _)| *z)
                };
                if let Some(zxid) = last {
                    self.trace(|| format!("s{}: disk synced up to {}", node + 1, hex(zxid)));
                    self.step(node, Input::Durable { zxid });
                }
                // The next fsync, for what was appended meanwhile.
                self.flush(node);
            }
            Ev::Tick { node, inc } => {
                if self.nodes[node].inc != inc || self.nodes[node].replica.is_none() {
                    return Ok(());
                }
                let now = self.now_struct();
                trace_ctx(self.nodes[node].sid, self.now);
                if let Some(r) = self.nodes[node].replica.as_mut() {
                    r.tick(now);
                }
                self.flush(node);
                // Servers' timers drift a little against each other.
                let t = self.rng.range(TICK_MS / 2 - 10, TICK_MS / 2 + 10);
                self.at(self.now + t, Ev::Tick { node, inc });
            }
            Ev::Snapshot { node } => {
                self.snapshot(node);
                let t = self.rng.range(SNAPSHOT_EVERY_MS.0, SNAPSHOT_EVERY_MS.1);
                self.at(self.now + t, Ev::Snapshot { node });
            }
            Ev::Client { id, poll } => {
                if poll && !self.done {
                    self.at(self.now + CLIENT_POLL_MS, Ev::Client { id, poll: true });
                }
                self.client_act(id);
            }
            Ev::Fault => {
                self.fault();
                if self.now < self.opts.fault_ms {
                    let t = self.span((100, 1_200), (30, 300), (300, 2_000));
                    self.at(self.now + t, Ev::Fault);
                }
            }
            Ev::Restart { node } => {
                if self.nodes[node].replica.is_none() {
                    self.restart(node);
                }
            }
            Ev::Heal { cut } => self.heal_cut(cut),
            Ev::HealAll => self.heal_all(),
            Ev::Checkpoint => {
                self.checkpoint()?;
                self.at(self.now + CHECKPOINT_MS, Ev::Checkpoint);
            }
        }
        Ok(())
    }

    // ---- servers ----

    fn server_config(&self) -> Config {
        Config {
            tick_time_ms: TICK_MS as u32,
            init_limit: Some(INIT_LIMIT_TICKS as u32),
            sync_limit: Some(SYNC_LIMIT_TICKS as u32),
            session_timeout_ms_min: 2 * TICK_MS as u32,
            session_timeout_ms_max: 20 * TICK_MS as u32,
            ..Config::default()
        }
    }

    /// Starts node `i` from what its disk holds.
    fn boot(&mut self, i: usize) {
        let now = self.now_struct();
        let cfg = self.server_config();
        let sid = self.nodes[i].sid;
        trace_ctx(sid, self.now);
        let disk = self.nodes[i].disk.clone();
        let (loaded, durable) = {
            let d = disk.borrow();
            let loaded = d
                .load()
                .unwrap_or_else(|e| panic!("server {sid} cannot recover from its disk: {e}"));
            let durable = Durable {
                accepted_epoch: d.accepted_epoch,
                current_epoch: d.current_epoch,
                last_zxid: d.last_zxid(),
                history_base: Some(d.snapshot_zxid()),
                history: d.log.iter().map(|(z, b)| (*z, b.to_vec())).collect(),
                secret: d.secret.to_vec(),
            };
            (loaded, (durable, d.secret))
        };
        let (durable, secret) = durable;
        let sink = FakeSink {
            disk: disk.clone(),
            ledger: self.ledger.clone(),
        };
        let mut server = Server::with_tree(
            cfg,
            now,
            secret,
            loaded.tree,
            loaded.last_zxid,
            Some(Box::new(sink)),
        );
        for (id, timeout) in loaded.sessions {
            server.restore_session(id, timeout, now);
        }
        let voters: BTreeSet<Sid> = self.nodes[..self.opts.nodes]
            .iter()
            .map(|n| n.sid)
            .collect();
        let observers: BTreeSet<Sid> = self.nodes[self.opts.nodes..]
            .iter()
            .map(|n| n.sid)
            .collect();
        let zcfg = ZabConfig {
            my_sid: sid,
            voters,
            observers,
            tick_ms: TICK_MS,
            init_limit: INIT_LIMIT_TICKS,
            sync_limit: SYNC_LIMIT_TICKS,
        };
        let zab = Zab::new(zcfg, durable, self.now);
        let storage = FakeStorage {
            disk,
            ledger: self.ledger.clone(),
        };
        let replica = Replica::new(server, zab, Box::new(storage), now);
        self.nodes[i].replica = Some(replica);
        self.nodes[i].established = None;
        self.nodes[i].shown = (Role::Looking, false, loaded.last_zxid);
        self.flush(i);
    }

    fn step(&mut self, i: usize, input: Input) {
        let now = self.now_struct();
        trace_ctx(self.nodes[i].sid, self.now);
        if let Some(r) = self.nodes[i].replica.as_mut() {
            r.step(input, now);
        }
        self.flush(i);
    }

    /// Carries out what node `i` produced: peer messages onto links, client frames to
    /// clients, a disk sync if its log has unsynced records.
    fn flush(&mut self, i: usize) {
        let Some(r) = self.nodes[i].replica.as_mut() else {
            return;
        };
        let peer = r.take_peer_out();
        let mut outs: Vec<ServerOutput> = r.server.drain_output().collect();
        if let Some(f) = r.fatal.take() {
            self.ledger
                .borrow_mut()
                .violations
                .push(format!("server {} stops: {f}", self.nodes[i].sid));
        }
        for (to, msg) in peer {
            if let Some(j) = self.nodes.iter().position(|n| n.sid == to) {
                if matches!(msg, PeerMsg::Snap { .. }) {
                    self.stats.snapshots_sent += 1;
                }
                self.send(i, j, &msg);
            }
        }
        // The server lists connections from a hash map; sort so that the run stays a
        // function of the seed (a stable sort keeps each connection's frames in order).
        outs.sort_by_key(|o| match o {
            ServerOutput::Send(c, _) | ServerOutput::Close(c) => *c,
        });
        for o in outs {
            match o {
                ServerOutput::Send(c, frame) => {
                    if let Some(&id) = self.conn_owner.get(&(i, c)) {
                        self.client_frame(id, &frame);
                    }
                }
                ServerOutput::Close(c) => {
                    if let Some(r) = self.nodes[i].replica.as_mut() {
                        r.server.close_conn(c);
                    }
                    if let Some(id) = self.conn_owner.remove(&(i, c)) {
                        self.client_lost(id, "connection closed by the server");
                    }
                }
            }
        }
        let nd = &mut self.nodes[i];
        if !nd.sync_scheduled && nd.disk.borrow().has_volatile() {
            nd.sync_scheduled = true;
            let slow = self.now < nd.slow_disk_until;
            let inc = nd.inc;
            let d = match (slow, self.opts.profile) {
                (true, Profile::Slow) => self.rng.range(300, 1_500),
                (true, _) => self.rng.range(100, 600),
                (false, _) => self.rng.range(1, 20),
            };
            let (upto, log_gen) = {
                let d = nd.disk.borrow();
                (d.last_zxid(), d.log_gen)
            };
            self.at(
                self.now + d,
                Ev::Sync {
                    node: i,
                    inc,
                    upto,
                    log_gen,
                },
            );
        }
    }

    fn crash(&mut self, i: usize) {
        let volatile = {
            let d = self.nodes[i].disk.borrow();
            d.log.len() - d.durable_len
        };
        let keep = if self.rng.percent(50) {
            0
        } else {
            self.rng.below(volatile as u64 + 1) as usize
        };
        self.trace(|| {
            format!(
                "CRASH s{} (keeps {keep} of {volatile} unsynced log records)",
                i + 1
            )
        });
        self.stats.crashes += 1;
        self.nodes[i].disk.borrow_mut().crash(keep);
        self.nodes[i].replica = None;
        self.nodes[i].inc += 1;
        self.nodes[i].sync_scheduled = false;
        self.nodes[i].established = None;
        self.nodes[i].digest = None;
        let lost: Vec<(usize, ConnId)> = self
            .conn_owner
            .keys()
            .filter(|(n, _)| *n == i)
            .copied()
            .collect();
        for k in lost {
            if let Some(id) = self.conn_owner.remove(&k) {
                self.client_lost(id, "server crashed");
            }
        }
        // The node is gone: every link to or from it breaks.
        let rst = self.rng.percent(50);
        for j in 0..self.nodes.len() {
            if j != i {
                self.link_down(i, j, rst);
                self.link_down(j, i, rst);
            }
        }
    }

    fn restart(&mut self, i: usize) {
        self.trace(|| format!("RESTART s{}", i + 1));
        self.boot(i);
        let inc = self.nodes[i].inc;
        self.at(self.now + 1, Ev::Tick { node: i, inc });
        for j in 0..self.nodes.len() {
            if j != i {
                self.link_maybe_up(i, j);
                self.link_maybe_up(j, i);
            }
        }
    }

    /// A serving node writes a snapshot of its applied tree, if that state is committed,
    /// and drops the log under it.
    fn snapshot(&mut self, i: usize) {
        let nd = &self.nodes[i];
        let Some(r) = nd.replica.as_ref() else {
            return;
        };
        let z = r.server.last_zxid;
        if !r.zab.serving() || z == 0 || !self.ledger.borrow().committed.contains_key(&z) {
            return;
        }
        let bytes =
            crate::storage::snapshot::encode_snapshot(&r.server.tree, &r.server.session_list(), z);
        let mut d = nd.disk.borrow_mut();
        if d.snapshot_zxid() >= z {
            return;
        }
        let k = d.log.partition_point(|(lz, _)| *lz <= z);
        d.log.drain(..k);
        d.durable_len = d.durable_len.saturating_sub(k);
        d.snapshot = Some((z, bytes));
        drop(d);
        self.trace(|| format!("s{}: snapshot at {}", i + 1, hex(z)));
    }

    // ---- network ----

    fn link_index(&self, from: usize, to: usize, port: usize) -> usize {
        (from * self.nodes.len() + to) * 2 + port
    }

    fn link_up(&self, from: usize, to: usize, port: usize) -> bool {
        self.links[self.link_index(from, to, port)].cuts == 0
            && self.nodes[from].replica.is_some()
            && self.nodes[to].replica.is_some()
    }

    fn delay(&mut self, from: usize, to: usize, port: usize) -> u64 {
        let mut d = self.rng.range(1, 5);
        if self.rng.percent(3) {
            d += self.rng.range(10, 100);
        }
        // In a storm, notifications often lag: servers decide on stale votes and elections
        // overlap, with two servers leading at once.
        if port == ELECTION && self.opts.profile == Profile::Storm && self.rng.percent(30) {
            d += self.rng.range(50, 800);
        }
        if self.now < self.spike_until && (from + to + self.spike_until as usize) % 2 == 0 {
            d += if self.opts.profile == Profile::Slow {
                self.rng.range(200, 1_500)
            } else {
                self.rng.range(50, 500)
            };
        }
        d
    }

    fn send(&mut self, from: usize, to: usize, msg: &PeerMsg) {
        self.stats.messages += 1;
        let port = match msg.port() {
            Port::Quorum => QUORUM,
            Port::Election => ELECTION,
        };
        let li = self.link_index(from, to, port);
        if !self.link_up(from, to, port) {
            self.stats.dropped += 1;
            if port == QUORUM && !self.links[li].broken {
                // A new connection cannot be made: that fails too, refused or timed out.
                let rst = self.nodes[to].replica.is_none() || self.rng.percent(50);
                self.link_down(from, to, rst);
            }
            return;
        }
        if self.links[li].broken {
            self.stats.dropped += 1;
            return;
        }
        let bytes = msg.encode();
        let d = self.delay(from, to, port);
        let at = self.links[li].last_at.max(self.now + d);
        self.links[li].last_at = at;
        let gen = self.links[li].gen;
        self.at(
            at,
            Ev::Deliver {
                from,
                to,
                port,
                gen,
                bytes,
            },
        );
    }

    /// The connection from `from` to `to` breaks (both ports): what is in flight is lost and
    /// the sender, if alive, hears of it on the quorum port — after a short while (`rst`),
    /// or only once the link comes back (a black hole).
    fn link_down(&mut self, from: usize, to: usize, rst: bool) {
        for port in [QUORUM, ELECTION] {
            let li = self.link_index(from, to, port);
            self.links[li].gen += 1;
            self.links[li].last_at = self.now;
        }
        let li = self.link_index(from, to, QUORUM);
        if self.nodes[from].replica.is_none() {
            // The sender died with its connections; its next incarnation dials afresh.
            self.links[li].broken = false;
            self.links[li].reset_owed = false;
            return;
        }
        self.links[li].broken = true;
        if rst {
            let inc = self.nodes[from].inc;
            let d = self.rng.range(1, 50);
            self.at(
                self.now + d,
                Ev::LinkReset {
                    node: from,
                    inc,
                    peer: to,
                },
            );
        } else {
            self.links[li].reset_owed = true;
        }
    }

    /// The link may carry messages again: settle a black hole's debt.
    fn link_maybe_up(&mut self, from: usize, to: usize) {
        if !self.link_up(from, to, QUORUM) {
            return;
        }
        for port in [QUORUM, ELECTION] {
            let li = self.link_index(from, to, port);
            self.links[li].last_at = self.links[li].last_at.max(self.now);
            if std::mem::take(&mut self.links[li].reset_owed) && port == QUORUM {
                let inc = self.nodes[from].inc;
                let d = self.rng.range(1, 50);
                self.at(
                    self.now + d,
                    Ev::LinkReset {
                        node: from,
                        inc,
                        peer: to,
                    },
                );
            }
        }
    }

    // ---- faults ----

    /// A duration for a fault, by profile: (Mixed, Storm, Slow) ranges in ms.
    fn span(&mut self, mixed: (u64, u64), storm: (u64, u64), slow: (u64, u64)) -> u64 {
        let (lo, hi) = match self.opts.profile {
            Profile::Mixed => mixed,
            Profile::Storm => storm,
            Profile::Slow => slow,
        };
        self.rng.range(lo, hi)
    }

    fn fault(&mut self) {
        let n = self.nodes.len();
        match self.rng.below(100) {
            0..=24 => {
                let alive: Vec<usize> = (0..n)
                    .filter(|&i| self.nodes[i].replica.is_some())
                    .collect();
                if alive.is_empty() {
                    return;
                }
                let i = self.rng.pick(&alive);
                self.crash(i);
                let t = self.span((100, 3_000), (30, 600), (200, 3_000));
                self.at(self.now + t, Ev::Restart { node: i });
            }
            25..=49 => {
                // Cut a random group off from the rest, both ways or (sometimes) one way.
                let mut group: Vec<usize> = (0..n).filter(|_| self.rng.percent(40)).collect();
                if group.is_empty() {
                    group.push(self.rng.below(n as u64) as usize);
                }
                if group.len() == n {
                    group.pop();
                }
                let one_way = self.rng.percent(20);
                let rst = self.rng.percent(50);
                let mut pairs = Vec::new();
                for &a in &group {
                    for b in (0..n).filter(|b| !group.contains(b)) {
                        pairs.push((a, b));
                        if !one_way {
                            pairs.push((b, a));
                        }
                    }
                }
                self.trace(|| {
                    format!(
                        "PARTITION {:?} from the rest{} ({})",
                        group.iter().map(|g| g + 1).collect::<Vec<_>>(),
                        if one_way { ", one way" } else { "" },
                        if rst { "reset" } else { "black hole" }
                    )
                });
                self.stats.partitions += 1;
                for &(a, b) in &pairs {
                    let li = self.link_index(a, b, QUORUM);
                    let was_up = self.link_up(a, b, QUORUM);
                    self.links[li].cuts += 1;
                    self.links[li + 1].cuts += 1;
                    if was_up {
                        self.link_down(a, b, rst);
                    }
                }
                let id = self.next_cut;
                self.next_cut += 1;
                self.cuts.insert(id, Cut { pairs });
                let t = self.span((200, 4_000), (50, 800), (500, 4_000));
                self.at(self.now + t, Ev::Heal { cut: id });
            }
            50..=69 => {
                let a = self.rng.below(n as u64) as usize;
                let b = (a + 1 + self.rng.below(n as u64 - 1) as usize) % n;
                if self.link_up(a, b, QUORUM) {
                    self.trace(|| format!("LINK BREAK s{} -> s{}", a + 1, b + 1));
                    self.stats.link_breaks += 1;
                    self.link_down(a, b, true);
                }
            }
            70..=84 => {
                let t = self.span((300, 2_000), (100, 500), (1_000, 3_000));
                self.trace(|| format!("DELAY SPIKE for {t} ms"));
                self.spike_until = self.now + t;
            }
            _ => {
                let i = self.rng.below(n as u64) as usize;
                let t = self.span((300, 2_000), (100, 500), (1_000, 3_000));
                self.trace(|| format!("SLOW DISK s{} for {t} ms", i + 1));
                self.nodes[i].slow_disk_until = self.now + t;
            }
        }
    }

    fn heal_cut(&mut self, cut: u64) {
        let Some(c) = self.cuts.remove(&cut) else {
            return;
        };
        self.trace(|| format!("HEAL partition {cut}"));
        for &(a, b) in &c.pairs {
            let li = self.link_index(a, b, QUORUM);
            self.links[li].cuts -= 1;
            self.links[li + 1].cuts -= 1;
            self.link_maybe_up(a, b);
        }
    }

    fn heal_all(&mut self) {
        self.trace(|| "HEAL ALL".to_string());
        let ids: Vec<u64> = self.cuts.keys().copied().collect();
        for id in ids {
            self.heal_cut(id);
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].replica.is_none() {
                self.restart(i);
            }
            self.nodes[i].slow_disk_until = 0;
        }
        self.spike_until = 0;
        self.heal_at = Some(self.now);
    }

    // ---- clients ----

    fn client_addr(id: usize) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8 + 1)), 40_000)
    }

    fn client_lost(&mut self, id: usize, why: &str) {
        let c = &mut self.clients[id];
        if matches!(c.state, CState::Down { .. }) {
            return;
        }
        let retry_at = self.now + 20 + self.rng.below(200);
        let c = &mut self.clients[id];
        c.state = CState::Down { retry_at };
        c.pending.clear();
        self.trace(|| format!("client {id}: {why}"));
    }

    /// The client gives up its connection (as a socket close would tell the server).
    fn client_hang_up(&mut self, id: usize, why: &str) {
        if let CState::Connecting { node, conn, .. } | CState::Up { node, conn } =
            self.clients[id].state
        {
            self.conn_owner.remove(&(node, conn));
            if let Some(r) = self.nodes[node].replica.as_mut() {
                r.server.close_conn(conn);
            }
        }
        self.client_lost(id, why);
    }

    fn client_act(&mut self, id: usize) {
        match self.clients[id].state {
            CState::Down { retry_at } => {
                if self.now >= retry_at && self.workload {
                    let node = self.rng.below(self.nodes.len() as u64) as usize;
                    self.client_connect(id, node);
                }
            }
            CState::Connecting { since, .. } => {
                if self.now.saturating_sub(since) > CLIENT_TIMEOUT_MS {
                    self.client_hang_up(id, "no session in time");
                }
            }
            CState::Up { node, conn } => {
                if let Some(p) = self.clients[id].pending.front() {
                    if self.now.saturating_sub(p.sent_at) > CLIENT_TIMEOUT_MS {
                        self.client_hang_up(id, "request timed out");
                        return;
                    }
                }
                if self.workload && self.clients[id].pending.len() < self.opts.pipeline {
                    self.client_op(id, node, conn);
                }
            }
        }
    }

    fn client_connect(&mut self, id: usize, node: usize) {
        let now = self.now_struct();
        let conn = self.next_conn;
        self.next_conn += 1;
        let Some(r) = self.nodes[node].replica.as_mut() else {
            // Connection refused.
            self.clients[id].state = CState::Down {
                retry_at: self.now + 50,
            };
            return;
        };
        if !r.server.open_conn(conn, Self::client_addr(id), now) {
            return;
        }
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.clients[id].last_zxid_seen,
            timeout_ms: SESSION_TIMEOUT_MS,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: Some(false),
        };
        let mut w = Writer::new();
        req.write(&mut w);
        self.clients[id].state = CState::Connecting {
            node,
            conn,
            since: self.now,
        };
        self.conn_owner.insert((node, conn), id);
        self.trace(|| format!("client {id}: connects to s{} (conn {conn})", node + 1));
        trace_ctx(self.nodes[node].sid, self.now);
        let r = self.nodes[node].replica.as_mut().expect("checked");
        r.server.connect(conn, &w.buf, now);
        r.pump(now);
        self.flush(node);
    }

    fn client_op(&mut self, id: usize, node: usize, conn: ConnId) {
        let seed = self.opts.seed;
        let c = &mut self.clients[id];
        let xid = c.next_xid;
        c.next_xid += 1;
        let roll = self.rng.below(100);
        let key = self.rng.below(SHARED_KEYS);
        let c = &mut self.clients[id];
        let (kind, path, data) = match roll {
            0..=39 => {
                c.n += 1;
                (
                    OpKind::CreateUnique,
                    format!("/s{seed}-c{id}-{}", c.n),
                    b"v".to_vec(),
                )
            }
            40..=47 => {
                c.n += 1;
                (
                    OpKind::CreateEphemeral,
                    format!("/e{seed}-c{id}-{}", c.n),
                    b"e".to_vec(),
                )
            }
            48..=59 => (OpKind::CreateShared, format!("/k{key}"), b"k".to_vec()),
            60..=66 => (OpKind::GetShared, format!("/k{key}"), Vec::new()),
            67..=69 => (OpKind::Sync, format!("/k{key}"), Vec::new()),
            _ => {
                c.n += 1;
                (
                    OpKind::SetShared,
                    format!("/k{key}"),
                    format!("c{id}-{}", c.n).into_bytes(),
                )
            }
        };
        let mut w = Writer::new();
        match kind {
            OpKind::CreateUnique | OpKind::CreateEphemeral | OpKind::CreateShared => {
                w.i32(xid).i32(op::CREATE);
                CreateRequest {
                    op: op::CREATE,
                    path: path.clone(),
                    data: Some(data.clone()),
                    acl: Some(open_acl_unsafe()),
                    flags: i32::from(kind == OpKind::CreateEphemeral),
                    ttl: None,
                }
                .write(&mut w);
            }
            OpKind::GetShared => {
                w.i32(xid).i32(op::GET_DATA).string(&path).bool(false);
            }
            OpKind::Sync => {
                w.i32(xid).i32(op::SYNC).string(&path);
            }
            OpKind::SetShared => {
                w.i32(xid)
                    .i32(op::SET_DATA)
                    .string(&path)
                    .buffer(Some(&data))
                    .i32(-1);
            }
        }
        self.trace(|| {
            format!(
                "client {id}: sends xid {xid} {kind:?} {path} to s{}",
                node + 1
            )
        });
        self.clients[id].pending.push_back(Pending {
            xid,
            kind,
            path,
            data,
            sent_at: self.now,
        });
        let now = self.now_struct();
        trace_ctx(self.nodes[node].sid, self.now);
        if let Some(r) = self.nodes[node].replica.as_mut() {
            r.server.request(conn, &w.buf, now);
            r.pump(now);
        }
        self.flush(node);
    }

    fn client_frame(&mut self, id: usize, frame: &[u8]) {
        if frame.len() < 4 {
            return;
        }
        let body = &frame[4..];
        match self.clients[id].state {
            CState::Connecting { node, conn, .. } => match ConnectResponse::read(body) {
                Ok(r) if r.timeout_ms > 0 => {
                    self.clients[id].state = CState::Up { node, conn };
                    self.trace(|| {
                        format!("client {id}: session 0x{:x} on s{}", r.session_id, node + 1)
                    });
                    let t = self.now + self.rng.range(0, 10);
                    self.at(t, Ev::Client { id, poll: false });
                }
                _ => self.client_hang_up(id, "session refused"),
            },
            CState::Up { .. } => {
                let mut r = Reader::new(body);
                let Ok(h) = ReplyHeader::read(&mut r) else {
                    return;
                };
                if h.xid == xid::NOTIFICATION || h.xid == xid::PING {
                    return;
                }
                let c = &mut self.clients[id];
                c.last_zxid_seen = c.last_zxid_seen.max(h.zxid);
                if !c.pending.front().is_some_and(|p| p.xid == h.xid) {
                    if c.pending.iter().any(|p| p.xid == h.xid) {
                        let what = format!(
                            "client {id} got the reply to xid {} before an earlier request's",
                            h.xid
                        );
                        self.ledger.borrow_mut().violations.push(what);
                    }
                    return;
                }
                let p = c.pending.pop_front().expect("checked");
                self.trace(|| {
                    format!(
                        "client {id}: {:?} {} -> err {} zxid {}",
                        p.kind,
                        p.path,
                        h.err,
                        hex(h.zxid)
                    )
                });
                match (p.kind, h.err) {
                    (OpKind::CreateUnique | OpKind::CreateShared | OpKind::SetShared, 0) => {
                        if p.kind != OpKind::CreateUnique {
                            let seen = self.clients[id].seen.entry(p.path.clone()).or_default();
                            *seen = (*seen).max(h.zxid);
                        }
                        self.new_acks.push(self.acks.len());
                        self.acks.push(Ack {
                            kind: p.kind,
                            path: p.path,
                            data: p.data,
                            zxid: h.zxid,
                            at: self.now,
                        });
                    }
                    (OpKind::GetShared, err) => {
                        // A client sees its own writes and never goes back in time, even on
                        // another server after a reconnect.
                        let mzxid = if err == 0 {
                            r.buffer().and_then(|_| r.i64()).and_then(|_| r.i64()).ok()
                        } else {
                            None
                        };
                        let seen = self.clients[id].seen.get(&p.path).copied();
                        if let Some(seen) = seen {
                            if !mzxid.is_some_and(|m| m >= seen) {
                                let what = format!(
                                    "client {id} read {} last modified at {} (err {}) after it had seen it at {}",
                                    p.path,
                                    hex(mzxid.unwrap_or(0)),
                                    err,
                                    hex(seen)
                                );
                                self.ledger.borrow_mut().violations.push(what);
                            }
                        }
                        if let Some(m) = mzxid {
                            let e = self.clients[id].seen.entry(p.path.clone()).or_default();
                            *e = (*e).max(m);
                        }
                    }
                    _ => {}
                }
                let t = self.now + self.rng.range(0, 10);
                self.at(t, Ev::Client { id, poll: false });
            }
            CState::Down { .. } => {}
        }
    }

    // ---- invariants ----

    /// The invariants cheap enough to check after every event.
    fn check_event(&mut self) -> Res {
        for i in 0..self.nodes.len() {
            let Some(r) = self.nodes[i].replica.as_ref() else {
                continue;
            };
            let sid = self.nodes[i].sid;
            let est = r.zab.established_epoch();
            let committed = r.zab.last_committed();
            let shown = (r.zab.role(), r.zab.serving(), r.server.last_zxid);
            if self.opts.trace && shown != self.nodes[i].shown {
                let (role, serving, applied) = shown;
                let epoch = r.zab.current_epoch;
                let leader = r.zab.leader_sid();
                self.trace(|| {
                    format!(
                        "s{sid}: {role:?} (leader {leader:?}, epoch {epoch}) serving {serving} applied {}",
                        hex(applied)
                    )
                });
            }
            self.nodes[i].shown = shown;
            if let Some(e) = est {
                let first = *self.leaders.entry(e).or_insert(sid);
                if first != sid {
                    return Err(format!(
                        "two leaders established epoch {e}: servers {first} and {sid}"
                    ));
                }
            }
            // Commits made while established count, including in the event that ended it.
            if est.is_some() || self.nodes[i].established.is_some() {
                self.observe_commit(i, committed)?;
            }
            self.nodes[i].established = est;
        }
        let v = std::mem::take(&mut self.ledger.borrow_mut().violations);
        if let Some(first) = v.into_iter().next() {
            return Err(first);
        }
        for k in std::mem::take(&mut self.new_acks) {
            let a = &self.acks[k];
            if !self.ledger.borrow().committed.contains_key(&a.zxid) {
                return Err(format!(
                    "a client got an ack for {:?} {} at zxid {}, which no established leader has committed",
                    a.kind,
                    a.path,
                    hex(a.zxid)
                ));
            }
        }
        Ok(())
    }

    /// An established leader at node `i` has committed everything up to `c`: remember those
    /// txns, and check each is durable on a majority right now.
    fn observe_commit(&mut self, i: usize, c: i64) -> Res {
        let from = self.ledger.borrow().committed_max;
        if c <= from {
            return Ok(());
        }
        let new: Vec<(i64, u64)> = {
            let d = self.nodes[i].disk.borrow();
            let a = d.log.partition_point(|(z, _)| *z <= from);
            let b = d.log.partition_point(|(z, _)| *z <= c);
            d.log[a..b]
                .iter()
                .map(|(z, bytes)| (*z, rng::fnv64(bytes)))
                .collect()
        };
        let quorum = self.quorum();
        for &(z, h) in &new {
            let holders: Vec<Sid> = self.nodes[..self.opts.nodes]
                .iter()
                .filter(|n| n.disk.borrow().holds_durably(z))
                .map(|n| n.sid)
                .collect();
            if holders.len() < quorum {
                return Err(format!(
                    "server {} committed {} while only servers {holders:?} have it durably",
                    self.nodes[i].sid,
                    hex(z)
                ));
            }
            self.ledger.borrow_mut().committed.insert(z, h);
        }
        self.ledger.borrow_mut().committed_max = c;
        self.trace(|| format!("committed up to {} ({} new txns)", hex(c), new.len()));
        Ok(())
    }

    /// The slower invariants, a few times a second; also watches for progress after healing.
    fn checkpoint(&mut self) -> Res {
        self.check_logs()?;
        self.check_digests()?;
        for nd in &self.nodes {
            let Some(r) = nd.replica.as_ref() else {
                continue;
            };
            let d = nd.disk.borrow();
            if d.has_volatile() && !nd.sync_scheduled {
                return Err(format!(
                    "sim: server {} has unsynced records and no fsync",
                    nd.sid
                ));
            }
            let durable = d.log[..d.durable_len]
                .last()
                .map_or(d.snapshot_zxid(), |(z, _)| *z);
            if r.zab.last_durable() > durable {
                return Err(format!(
                    "server {}: Zab counts {} durable, the disk only {}",
                    nd.sid,
                    hex(r.zab.last_durable()),
                    hex(durable)
                ));
            }
        }
        let Some(heal_at) = self.heal_at else {
            return Ok(());
        };
        if !self.progressed {
            if self.acks.iter().any(|a| a.at > heal_at) {
                self.progressed = true;
                self.workload = false;
                self.trace(|| "PROGRESS after healing; clients stop writing".into());
            }
        } else if self.converged() {
            self.done = true;
            return Ok(());
        }
        if self.now > heal_at + SETTLE_MS {
            return Err(if self.progressed {
                format!("the servers did not converge within {SETTLE_MS} ms of healing")
            } else {
                format!("no write was acknowledged within {SETTLE_MS} ms of healing")
            });
        }
        Ok(())
    }

    /// Every log is a chain holding every committed txn in its range.
    fn check_logs(&self) -> Res {
        let l = self.ledger.borrow();
        for nd in &self.nodes {
            let d = nd.disk.borrow();
            let lo = d.snapshot_zxid();
            let hi = d.last_zxid();
            if hi <= lo {
                continue;
            }
            let mut it = d.log.iter().map(|(z, _)| *z).peekable();
            for (&z, _) in l.committed.range(lo + 1..=hi) {
                while it.peek().is_some_and(|lz| *lz < z) {
                    it.next();
                }
                if it.peek() != Some(&z) {
                    return Err(format!(
                        "server {}'s log skips committed txn {} (its log runs {}..={})",
                        nd.sid,
                        hex(z),
                        hex(lo),
                        hex(hi)
                    ));
                }
            }
        }
        Ok(())
    }

    /// Replicas at the same applied zxid hold the same tree.
    fn check_digests(&mut self) -> Res {
        for i in 0..self.nodes.len() {
            let inc = self.nodes[i].inc;
            let Some(r) = self.nodes[i].replica.as_ref() else {
                continue;
            };
            let z = r.server.last_zxid;
            let digest = match self.nodes[i].digest {
                Some((di, dz, dg)) if di == inc && dz == z => dg,
                _ => {
                    let dg = r.server.tree.digest();
                    self.nodes[i].digest = Some((inc, z, dg));
                    dg
                }
            };
            let first = *self.digests.entry(z).or_insert(digest);
            if first != digest {
                return Err(format!(
                    "server {} applied up to {} has tree digest {digest:x}, another replica had {first:x} there",
                    self.nodes[i].sid,
                    hex(z)
                ));
            }
        }
        Ok(())
    }

    /// Everyone is up and serving, one established leader has committed all it logged, and
    /// every replica applied exactly that.
    fn converged(&self) -> bool {
        let mut leader = None;
        for nd in &self.nodes {
            let Some(r) = nd.replica.as_ref() else {
                return false;
            };
            if !r.zab.serving() {
                return false;
            }
            if r.zab.established_epoch().is_some() {
                leader = Some(r);
            }
        }
        let Some(l) = leader else {
            return false;
        };
        let z = l.zab.last_committed();
        l.zab.last_logged() == z
            && self.clients.iter().all(|c| c.pending.is_empty())
            && self.nodes.iter().all(|nd| {
                nd.replica.as_ref().is_some_and(|r| {
                    r.server.last_zxid == z && r.zab.leader_sid() == l.zab.leader_sid()
                })
            })
    }

    /// After convergence: the trees agree, acknowledged writes are all there, and each disk
    /// recovers to the tree its replica holds.
    fn final_checks(&mut self) -> Res {
        self.check_logs()?;
        self.check_digests()?;
        let r0 = self.nodes[0].replica.as_ref().expect("converged");
        self.stats.final_zxid = r0.server.last_zxid;
        self.stats.final_digest = r0.server.tree.digest();
        let mut latest_set: BTreeMap<&str, &Ack> = BTreeMap::new();
        for a in &self.acks {
            if !self.ledger.borrow().committed.contains_key(&a.zxid) {
                return Err(format!(
                    "acked {} at {} is not committed",
                    a.path,
                    hex(a.zxid)
                ));
            }
            match a.kind {
                OpKind::CreateUnique | OpKind::CreateShared => {
                    for nd in &self.nodes {
                        let r = nd.replica.as_ref().expect("converged");
                        let ok = r
                            .server
                            .tree
                            .get(&a.path)
                            .is_some_and(|n| n.czxid == a.zxid);
                        if !ok {
                            return Err(format!(
                                "acknowledged create of {} at {} is missing on server {}",
                                a.path,
                                hex(a.zxid),
                                nd.sid
                            ));
                        }
                    }
                }
                OpKind::SetShared => {
                    let e = latest_set.entry(&a.path).or_insert(a);
                    if a.zxid > e.zxid {
                        *e = a;
                    }
                }
                OpKind::CreateEphemeral | OpKind::GetShared | OpKind::Sync => {}
            }
        }
        for (path, a) in latest_set {
            for nd in &self.nodes {
                let r = nd.replica.as_ref().expect("converged");
                let Some(n) = r.server.tree.get(path) else {
                    return Err(format!("{path} vanished on server {}", nd.sid));
                };
                if n.mzxid < a.zxid || (n.mzxid == a.zxid && n.data != Some(&a.data[..])) {
                    return Err(format!(
                        "server {}: {path} was last modified at {}, but a setData acked at {} is not reflected",
                        nd.sid,
                        hex(n.mzxid),
                        hex(a.zxid)
                    ));
                }
            }
        }
        for nd in &self.nodes {
            let r = nd.replica.as_ref().expect("converged");
            let mut d = nd.disk.borrow_mut();
            d.durable_len = d.log.len();
            if d.last_zxid() != r.server.last_zxid {
                continue;
            }
            let loaded = d.load()?;
            if loaded.tree.digest() != r.server.tree.digest() {
                return Err(format!(
                    "server {}'s disk recovers a tree that differs from the one it serves at {}",
                    nd.sid,
                    hex(r.server.last_zxid)
                ));
            }
        }
        self.trace(|| format!("DONE: converged at {}", hex(self.stats.final_zxid)));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
