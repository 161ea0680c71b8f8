//! The workloads `zk bench` runs, as engine drivers, and the setup and cleanup around them.
//! Every znode a run makes lives under one run node, `<root>/run-<pid>-<ms>`:
//!
//! ```text
//! <run>/keys/k<i>             pre-created keys (get, set, exists, mixed, list)
//! <run>/keys/k<i>/c<j>        their children (list)
//! <run>/create/s<g>/n<i>      one directory per session (create, multi)
//! <run>/multi/s<g>/m<i>-<j>
//! <run>/eph/s<g>-e<i>         ephemerals, deleted as soon as created (ephemeral)
//! <run>/lock/l<i>/lock-<seq>  lock nodes, ephemeral-sequential (lock)
//! <run>/watch/p<pair>-<c>     one node per watch chain (watch)
//! <run>/latency/n<i>          created, read, written and deleted in turn (latency)
//! ```
//!
//! so cleanup is one recursive delete of the run node, and several runs against one server
//! never touch each other's nodes. Drivers are closed loops: each of a session's `inflight`
//! slots sends its next request when the previous one is answered, and stops starting new
//! work once the run is over. Request bodies come from `client::codec`. Nothing here does
//! I/O; the engine does.

use super::engine::{Cx, Driver, Reply};
use super::stats::Op;
use crate::client::codec;
use crate::proto::consts::{event, op};
use crate::proto::records::{open_acl_unsafe, Acl};
use crate::proto::{Code, CreateRequest, MultiOp};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The create flags used (CreateMode).
const PERSISTENT: i32 = 0;
const EPHEMERAL: i32 = 1;
const PERSISTENT_SEQUENTIAL: i32 = 2;
const EPHEMERAL_SEQUENTIAL: i32 = 3;

/// Where a run's znodes live (see the module comment).
pub struct Layout {
    pub run: String,
}

impl Layout {
    pub fn dir(&self, name: &str) -> String {
        format!("{}/{name}", self.run)
    }

    pub fn key(&self, i: u64) -> String {
        format!("{}/keys/k{i}", self.run)
    }

    pub fn key_child(&self, i: u64, c: u64) -> String {
        format!("{}/keys/k{i}/c{c}", self.run)
    }

    pub fn session_dir(&self, kind: &str, g: usize) -> String {
        format!("{}/{kind}/s{g}", self.run)
    }

    pub fn lock_dir(&self, i: u64) -> String {
        format!("{}/lock/l{i}", self.run)
    }

    pub fn watch_node(&self, pair: usize, chain: usize) -> String {
        format!("{}/watch/p{pair}-{chain}", self.run)
    }
}

/// What every driver of a run shares.
#[derive(Clone)]
pub struct Params {
    pub layout: Arc<Layout>,
    /// The value written by creates and sets (`--size` bytes).
    pub data: Arc<Vec<u8>>,
    pub keys: u64,
    pub inflight: usize,
    /// The share of reads in `mixed`, from `--ratio`.
    pub read_fraction: f64,
    pub multi_ops: usize,
    pub sequential: bool,
}

/// The workloads whose requests are independent of each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimpleKind {
    Create,
    Set,
    Get,
    Exists,
    List,
    Mixed,
    Multi,
}

/// create, set, get, exists, list, mixed and multi: each slot sends a fresh request as soon
/// as its last one is answered.
pub struct Simple {
    kind: SimpleKind,
    p: Params,
    acl: Vec<Acl>,
    /// Per session, how many names it has made (create, multi).
    made: Vec<u64>,
}

impl Simple {
    pub fn new(kind: SimpleKind, p: Params, sessions: usize) -> Simple {
        Simple {
            kind,
            p,
            acl: open_acl_unsafe(),
            made: vec![0; sessions],
        }
    }

    fn issue(&mut self, cx: &mut Cx<'_>, s: usize) {
        if cx.stopping() {
            return;
        }
        let p = &self.p;
        match self.kind {
            SimpleKind::Create => {
                let dir = p.layout.session_dir("create", cx.global(s));
                let (path, flags) = if p.sequential {
                    (format!("{dir}/n-"), PERSISTENT_SEQUENTIAL)
                } else {
                    (format!("{dir}/n{}", self.made[s]), PERSISTENT)
                };
                self.made[s] += 1;
                let body = codec::create_body(&path, Some(&p.data), &self.acl, flags, None);
                cx.send(s, Op::Create, op::CREATE, &body, 0);
            }
            SimpleKind::Multi => {
                let dir = p.layout.session_dir("multi", cx.global(s));
                let n = self.made[s];
                self.made[s] += 1;
                let ops: Vec<MultiOp> = (0..p.multi_ops)
                    .map(|j| {
                        MultiOp::Create(CreateRequest {
                            op: op::CREATE,
                            path: format!("{dir}/m{n}-{j}"),
                            data: Some(p.data.to_vec()),
                            acl: Some(self.acl.clone()),
                            flags: PERSISTENT,
                            ttl: None,
                        })
                    })
                    .collect();
                cx.send(s, Op::Multi, op::MULTI, &codec::multi_body(&ops), 0);
            }
            SimpleKind::Set => set_key(cx, s, p),
            SimpleKind::Get => read_key(cx, s, p, Op::Get, op::GET_DATA),
            SimpleKind::Exists => read_key(cx, s, p, Op::Exists, op::EXISTS),
            SimpleKind::List => read_key(cx, s, p, Op::List, op::GET_CHILDREN),
            SimpleKind::Mixed => {
                if cx.rng.unit() < p.read_fraction {
                    read_key(cx, s, p, Op::Get, op::GET_DATA)
                } else {
                    set_key(cx, s, p)
                }
            }
        }
    }
}

fn set_key(cx: &mut Cx<'_>, s: usize, p: &Params) {
    let key = p.layout.key(cx.rng.below(p.keys));
    let body = codec::set_data_body(&key, Some(&p.data), -1);
    cx.send(s, Op::Set, op::SET_DATA, &body, 0);
}

fn read_key(cx: &mut Cx<'_>, s: usize, p: &Params, what: Op, code: i32) {
    let key = p.layout.key(cx.rng.below(p.keys));
    cx.send(s, what, code, &codec::path_watch_body(&key, false), 0);
}

impl Driver for Simple {
    fn start(&mut self, cx: &mut Cx<'_>) {
        for s in 0..cx.session_count() {
            for _ in 0..self.p.inflight {
                self.issue(cx, s);
            }
        }
    }

    fn on_reply(&mut self, cx: &mut Cx<'_>, r: &Reply<'_>) {
        if r.op == Op::Multi {
            // The header says ok even when an op failed: the first failing op's code is the
            // multi's outcome, as the Java client throws it.
            let code = if r.err != 0 {
                r.err
            } else {
                match codec::read_multi_response(r.body) {
                    Ok(results) => results
                        .iter()
                        .find_map(|res| match res {
                            codec::OpResult::Error(c) if *c != Code::Ok => Some(c.code()),
                            _ => None,
                        })
                        .unwrap_or(0),
                    Err(_) => Code::MarshallingError.code(),
                }
            };
            cx.record(Op::Multi, r.sent, r.at, code);
        }
        self.issue(cx, r.session);
    }
}

/// ephemeral: each slot creates an ephemeral node and deletes it again.
pub struct Ephemeral {
    p: Params,
    acl: Vec<Acl>,
    made: Vec<u64>,
}

impl Ephemeral {
    pub fn new(p: Params, sessions: usize) -> Ephemeral {
        Ephemeral {
            p,
            acl: open_acl_unsafe(),
            made: vec![0; sessions],
        }
    }

    fn path(&self, g: usize, n: u64) -> String {
        format!("{}/eph/s{g}-e{n}", self.p.layout.run)
    }

    fn create(&mut self, cx: &mut Cx<'_>, s: usize) {
        if cx.stopping() {
            return;
        }
        let n = self.made[s];
        self.made[s] += 1;
        let path = self.path(cx.global(s), n);
        let body = codec::create_body(&path, Some(&self.p.data), &self.acl, EPHEMERAL, None);
        cx.send(s, Op::Create, op::CREATE, &body, n);
    }
}

impl Driver for Ephemeral {
    fn start(&mut self, cx: &mut Cx<'_>) {
        for s in 0..cx.session_count() {
            for _ in 0..self.p.inflight {
                self.create(cx, s);
            }
        }
    }

    fn on_reply(&mut self, cx: &mut Cx<'_>, r: &Reply<'_>) {
        if r.op == Op::Create && r.err == 0 {
            // Delete what was made even when the run is over, so it is a pair every time.
            let path = self.path(cx.global(r.session), r.tag);
            cx.send(
                r.session,
                Op::Delete,
                op::DELETE,
                &codec::path_int_body(&path, -1),
                r.tag,
            );
        } else {
            self.create(cx, r.session);
        }
    }
}

/// One lock attempt of the lock recipe.
struct LockSlot {
    session: usize,
    lock: u64,
    /// The full path of this attempt's lock node, once created.
    own: String,
    /// When the create was sent: the start of the round trip.
    start: Instant,
}

/// lock: the lock recipe of Curator's InterProcessMutex (and ZooKeeper's recipes page):
/// create an ephemeral-sequential node under the lock's node, list the children; if ours is
/// the lowest the lock is held, otherwise watch the next lower one and list again when it
/// goes; release by deleting our node. `--keys` locks are picked at random, so contention
/// is set by keys against clients x inflight (`--keys 1` serializes everyone).
pub struct Lock {
    p: Params,
    acl: Vec<Acl>,
    slots: Vec<LockSlot>,
    /// The predecessor each waiting slot watches, by path.
    waiting: HashMap<String, usize>,
}

impl Lock {
    pub fn new(p: Params, sessions: usize) -> Lock {
        let now = Instant::now();
        let slots = (0..sessions * p.inflight)
            .map(|i| LockSlot {
                session: i / p.inflight,
                lock: 0,
                own: String::new(),
                start: now,
            })
            .collect();
        Lock {
            p,
            acl: open_acl_unsafe(),
            slots,
            waiting: HashMap::new(),
        }
    }

    fn acquire(&mut self, cx: &mut Cx<'_>, slot: usize) {
        if cx.stopping() {
            return;
        }
        let lock = cx.rng.below(self.p.keys);
        let sl = &mut self.slots[slot];
        sl.lock = lock;
        sl.own.clear();
        let path = format!("{}/lock-", self.p.layout.lock_dir(lock));
        let body = codec::create_body(&path, Some(&[]), &self.acl, EPHEMERAL_SEQUENTIAL, None);
        cx.send(sl.session, Op::LockCreate, op::CREATE, &body, slot as u64);
    }

    fn list(&mut self, cx: &mut Cx<'_>, slot: usize) {
        let sl = &self.slots[slot];
        let body = codec::path_watch_body(&self.p.layout.lock_dir(sl.lock), false);
        cx.send(
            sl.session,
            Op::LockList,
            op::GET_CHILDREN,
            &body,
            slot as u64,
        );
    }

    fn release(&mut self, cx: &mut Cx<'_>, slot: usize) {
        let sl = &self.slots[slot];
        let body = codec::path_int_body(&sl.own, -1);
        cx.send(sl.session, Op::LockRelease, op::DELETE, &body, slot as u64);
    }

    /// Looks at the lock's children: held if ours is the lowest, else watch the one before.
    fn check(&mut self, cx: &mut Cx<'_>, slot: usize, body: &[u8]) {
        let Ok(mut children) = codec::read_strings(body) else {
            return self.release(cx, slot);
        };
        // All names are "lock-" and a ten-digit sequence number, so text order is sequence
        // order.
        children.sort_unstable();
        let sl = &self.slots[slot];
        let own_name = sl.own.rsplit('/').next().unwrap_or_default();
        match children.iter().position(|c| c == own_name) {
            // Our node is gone (it cannot be, short of a lost session): start over.
            None => self.acquire(cx, slot),
            Some(0) => self.release(cx, slot),
            Some(i) => {
                let pred = format!("{}/{}", self.p.layout.lock_dir(sl.lock), children[i - 1]);
                let body = codec::path_watch_body(&pred, true);
                let session = sl.session;
                self.waiting.insert(pred, slot);
                cx.send(session, Op::LockWait, op::EXISTS, &body, slot as u64);
            }
        }
    }
}

impl Driver for Lock {
    fn start(&mut self, cx: &mut Cx<'_>) {
        for slot in 0..self.slots.len() {
            self.acquire(cx, slot);
        }
    }

    fn on_reply(&mut self, cx: &mut Cx<'_>, r: &Reply<'_>) {
        let slot = r.tag as usize;
        match r.op {
            Op::LockCreate if r.err == 0 => {
                let sl = &mut self.slots[slot];
                sl.own = codec::read_string(r.body).unwrap_or_default();
                sl.start = r.sent;
                self.list(cx, slot);
            }
            Op::LockCreate => self.acquire(cx, slot),
            Op::LockList if r.err == 0 => self.check(cx, slot, r.body),
            // The listing failed: give the lock node back rather than hold it.
            Op::LockList if cx.alive(r.session) => self.release(cx, slot),
            // The watch was not set. NoNode: the predecessor went before it could be; look
            // again.
            Op::LockWait if r.err != 0 => {
                self.waiting.retain(|_, s| *s != slot);
                if r.err == Code::NoNode.code() {
                    self.list(cx, slot);
                }
            }
            Op::LockRelease => {
                let start = self.slots[slot].start;
                cx.record(Op::LockRoundTrip, start, r.at, r.err);
                self.acquire(cx, slot);
            }
            _ => {}
        }
    }

    fn on_event(&mut self, cx: &mut Cx<'_>, _session: usize, ev: &crate::client::WatchEvent) {
        if ev.event_type == event::NODE_DELETED {
            if let Some(slot) = self.waiting.remove(&ev.path) {
                self.list(cx, slot);
            }
        }
    }

    fn busy(&self) -> bool {
        !self.waiting.is_empty()
    }
}

/// One watch chain: a node, a session watching it and a session changing it.
struct WatchChain {
    path: String,
    watcher: usize,
    writer: usize,
    /// When the setData was sent (known from its reply) and when the event came; the
    /// latency is recorded once both are known, whichever comes first.
    set_sent: Option<Instant>,
    event_at: Option<Instant>,
    /// The setData is out and its event not yet recorded.
    awaiting: bool,
}

/// watch: sessions work in pairs. For each chain the first session of the pair reads the
/// node with a watch; once the watch is set the second session writes the node; the time
/// from sending that setData to the NodeDataChanged event arriving at the first session is
/// the `set->event` latency. Then the watch is armed again.
pub struct Watch {
    p: Params,
    chains: Vec<WatchChain>,
    by_path: HashMap<String, usize>,
    awaiting: usize,
}

impl Watch {
    /// `globals` are the thread's sessions by global number, in pairs (watcher, writer).
    pub fn new(p: Params, globals: &[usize]) -> Watch {
        let mut chains = Vec::new();
        for pair in 0..globals.len() / 2 {
            for c in 0..p.inflight {
                chains.push(WatchChain {
                    path: p.layout.watch_node(globals[2 * pair] / 2, c),
                    watcher: 2 * pair,
                    writer: 2 * pair + 1,
                    set_sent: None,
                    event_at: None,
                    awaiting: false,
                });
            }
        }
        let by_path = chains
            .iter()
            .enumerate()
            .map(|(i, c)| (c.path.clone(), i))
            .collect();
        Watch {
            p,
            chains,
            by_path,
            awaiting: 0,
        }
    }

    fn arm(&mut self, cx: &mut Cx<'_>, c: usize) {
        if cx.stopping() {
            return;
        }
        let ch = &self.chains[c];
        let body = codec::path_watch_body(&ch.path, true);
        cx.send(ch.watcher, Op::WatchArm, op::GET_DATA, &body, c as u64);
    }

    fn complete(&mut self, cx: &mut Cx<'_>, c: usize) {
        let ch = &mut self.chains[c];
        if let (Some(sent), Some(at)) = (ch.set_sent, ch.event_at) {
            ch.set_sent = None;
            ch.event_at = None;
            ch.awaiting = false;
            self.awaiting -= 1;
            cx.record(Op::WatchEvent, sent, at, 0);
            self.arm(cx, c);
        }
    }
}

impl Driver for Watch {
    fn start(&mut self, cx: &mut Cx<'_>) {
        for c in 0..self.chains.len() {
            self.arm(cx, c);
        }
    }

    fn on_reply(&mut self, cx: &mut Cx<'_>, r: &Reply<'_>) {
        let c = r.tag as usize;
        match r.op {
            Op::WatchArm if r.err == 0 => {
                let ch = &mut self.chains[c];
                let body = codec::set_data_body(&ch.path, Some(&self.p.data), -1);
                if cx.send(ch.writer, Op::Set, op::SET_DATA, &body, r.tag) {
                    ch.awaiting = true;
                    ch.set_sent = None;
                    ch.event_at = None;
                    self.awaiting += 1;
                }
            }
            Op::Set if r.err == 0 => {
                self.chains[c].set_sent = Some(r.sent);
                self.complete(cx, c);
            }
            Op::Set => {
                // No change, so no event: the chain's watch is still armed; set again.
                let ch = &mut self.chains[c];
                if ch.awaiting {
                    ch.awaiting = false;
                    self.awaiting -= 1;
                }
                cx.record(Op::WatchEvent, r.sent, r.at, r.err);
                if cx.alive(ch.watcher) {
                    self.arm(cx, c);
                }
            }
            _ => {}
        }
    }

    fn on_event(&mut self, cx: &mut Cx<'_>, session: usize, ev: &crate::client::WatchEvent) {
        if ev.event_type != event::NODE_DATA_CHANGED {
            return;
        }
        if let Some(&c) = self.by_path.get(&ev.path) {
            let ch = &mut self.chains[c];
            if ch.watcher == session && ch.awaiting && ch.event_at.is_none() {
                ch.event_at = Some(cx.now);
                self.complete(cx, c);
            }
        }
    }

    fn busy(&self) -> bool {
        self.awaiting > 0
    }
}

/// latency: one session, one request at a time, cycling create, get, set and delete of a
/// fresh node, so each op's latency is measured with nothing else in flight.
pub struct Latency {
    p: Params,
    acl: Vec<Acl>,
    n: u64,
}

impl Latency {
    pub fn new(p: Params) -> Latency {
        Latency {
            p,
            acl: open_acl_unsafe(),
            n: 0,
        }
    }

    fn path(&self) -> String {
        format!("{}/latency/n{}", self.p.layout.run, self.n)
    }
}

impl Driver for Latency {
    fn start(&mut self, cx: &mut Cx<'_>) {
        if cx.session_count() > 0 && !cx.stopping() {
            let body = codec::create_body(&self.path(), Some(&self.p.data), &self.acl, 0, None);
            cx.send(0, Op::Create, op::CREATE, &body, 0);
        }
    }

    fn on_reply(&mut self, cx: &mut Cx<'_>, r: &Reply<'_>) {
        let path = self.path();
        let s = r.session;
        match r.op {
            Op::Create => cx.send(
                s,
                Op::Get,
                op::GET_DATA,
                &codec::path_watch_body(&path, false),
                0,
            ),
            Op::Get => {
                let body = codec::set_data_body(&path, Some(&self.p.data), -1);
                cx.send(s, Op::Set, op::SET_DATA, &body, 0)
            }
            Op::Set => cx.send(
                s,
                Op::Delete,
                op::DELETE,
                &codec::path_int_body(&path, -1),
                0,
            ),
            _ => {
                self.n += 1;
                self.start(cx);
                true
            }
        };
    }
}

/// Setup: creates `total` znodes named by `path_of(i)`, with `data`, spreading indices over
/// threads (this one takes `first`, `first + step`, ...). A node that already exists is fine.
pub struct Bulk {
    path_of: Arc<dyn Fn(u64) -> String + Send + Sync>,
    data: Option<Arc<Vec<u8>>>,
    acl: Vec<Acl>,
    next: u64,
    step: u64,
    total: u64,
    inflight: usize,
}

impl Bulk {
    pub fn new(
        path_of: Arc<dyn Fn(u64) -> String + Send + Sync>,
        data: Option<Arc<Vec<u8>>>,
        total: u64,
        first: u64,
        step: u64,
        inflight: usize,
    ) -> Bulk {
        Bulk {
            path_of,
            data,
            acl: open_acl_unsafe(),
            next: first,
            step: step.max(1),
            total,
            inflight,
        }
    }

    fn issue(&mut self, cx: &mut Cx<'_>, s: usize) {
        if self.next >= self.total || cx.stopping() {
            return;
        }
        let path = (self.path_of)(self.next);
        self.next += self.step;
        let data = self.data.as_deref().map(|d| d.as_slice());
        let body = codec::create_body(&path, data, &self.acl, PERSISTENT, None);
        cx.send(s, Op::Populate, op::CREATE, &body, 0);
    }
}

impl Driver for Bulk {
    fn start(&mut self, cx: &mut Cx<'_>) {
        for s in 0..cx.session_count() {
            for _ in 0..self.inflight {
                self.issue(cx, s);
            }
        }
    }

    fn on_reply(&mut self, cx: &mut Cx<'_>, r: &Reply<'_>) {
        self.issue(cx, r.session);
    }
}

/// How many sibling deletes cleanup packs into one multi: one txn (and one log record)
/// instead of a hundred, which makes cleanup several times faster than the run that filled
/// the directory. Small enough that the request stays far below jute.maxbuffer.
const CLEANUP_BATCH: usize = 100;

/// A unit of cleanup work.
enum Work {
    /// Delete this node, or list it if it is not empty.
    One(String),
    /// Delete these siblings in one multi; if any of them fails the multi changes nothing,
    /// and each is tried on its own.
    Batch(Vec<String>),
    /// List this node's children (it answered NotEmpty).
    List(String),
}

/// Cleanup: deletes every given subtree, pipelined. Each node is first simply deleted (a
/// leaf goes in one request); a node that answers NotEmpty is listed, its children are
/// deleted in multis of `CLEANUP_BATCH` (falling back to one by one), and it is deleted
/// again once the last of them is gone. A node that cannot be deleted (an error other than
/// NoNode) keeps its ancestors, so nothing loops.
pub struct Cleanup {
    counts: Arc<CleanupCounts>,
    queue: VecDeque<Work>,
    /// The work behind each outstanding request's tag.
    tags: HashMap<u64, Work>,
    next_tag: u64,
    /// Directories waiting for their children: how many are left.
    waiting: HashMap<String, usize>,
    inflight: usize,
}

/// What a cleanup did, read by the caller once the driver's thread is gone.
#[derive(Default)]
pub struct CleanupCounts {
    pub deleted: AtomicU64,
    pub failed: AtomicU64,
}

impl Cleanup {
    pub fn new(roots: Vec<String>, inflight: usize, counts: Arc<CleanupCounts>) -> Cleanup {
        Cleanup {
            counts,
            queue: roots.into_iter().map(Work::One).collect(),
            tags: HashMap::new(),
            next_tag: 0,
            waiting: HashMap::new(),
            inflight,
        }
    }

    /// Keeps every session's pipeline full from the queue.
    fn fill(&mut self, cx: &mut Cx<'_>) {
        loop {
            let mut sent = false;
            for s in 0..cx.session_count() {
                if !cx.alive(s) || cx.outstanding(s) >= self.inflight {
                    continue;
                }
                let Some(work) = self.queue.pop_front() else {
                    return;
                };
                let (code, body) = match &work {
                    Work::One(path) => (op::DELETE, codec::path_int_body(path, -1)),
                    Work::List(path) => (op::GET_CHILDREN, codec::path_watch_body(path, false)),
                    Work::Batch(paths) => {
                        let ops: Vec<MultiOp> = paths
                            .iter()
                            .map(|p| MultiOp::Delete {
                                path: p.clone(),
                                version: -1,
                            })
                            .collect();
                        (op::MULTI, codec::multi_body(&ops))
                    }
                };
                let t = self.next_tag;
                self.next_tag += 1;
                self.tags.insert(t, work);
                sent |= cx.send(s, Op::Clean, code, &body, t);
            }
            if !sent {
                return;
            }
        }
    }

    /// `path` is gone: its parent may now be deletable.
    fn gone(&mut self, path: &str) {
        let Some((parent, _)) = path.rsplit_once('/') else {
            return;
        };
        if let Some(left) = self.waiting.get_mut(parent) {
            *left -= 1;
            if *left == 0 {
                self.waiting.remove(parent);
                self.queue.push_back(Work::One(parent.to_owned()));
            }
        }
    }

    fn failed(&self) {
        self.counts.failed.fetch_add(1, Ordering::Relaxed);
    }
}

impl Driver for Cleanup {
    fn start(&mut self, cx: &mut Cx<'_>) {
        self.fill(cx);
    }

    fn on_reply(&mut self, cx: &mut Cx<'_>, r: &Reply<'_>) {
        let Some(work) = self.tags.remove(&r.tag) else {
            return;
        };
        let no_node = Code::NoNode.code();
        match work {
            Work::One(path) => match r.err {
                0 => {
                    self.counts.deleted.fetch_add(1, Ordering::Relaxed);
                    self.gone(&path);
                }
                e if e == no_node => self.gone(&path),
                e if e == Code::NotEmpty.code() => self.queue.push_front(Work::List(path)),
                _ => self.failed(),
            },
            Work::List(path) => match (r.err, codec::read_strings(r.body)) {
                (0, Ok(children)) if children.is_empty() => self.queue.push_back(Work::One(path)),
                (0, Ok(children)) => {
                    self.waiting.insert(path.clone(), children.len());
                    let paths: Vec<String> =
                        children.iter().map(|c| format!("{path}/{c}")).collect();
                    // Depth first, so the queue stays about as long as one listing.
                    for chunk in paths.chunks(CLEANUP_BATCH).rev() {
                        self.queue.push_front(match chunk {
                            [one] => Work::One(one.clone()),
                            many => Work::Batch(many.to_vec()),
                        });
                    }
                }
                (e, _) if e == no_node => self.gone(&path),
                _ => self.failed(),
            },
            Work::Batch(paths) => {
                let all_ok = r.err == 0
                    && codec::read_multi_response(r.body).is_ok_and(|res| {
                        res.iter()
                            .all(|x| !matches!(x, codec::OpResult::Error(c) if *c != Code::Ok))
                    });
                if all_ok {
                    self.counts
                        .deleted
                        .fetch_add(paths.len() as u64, Ordering::Relaxed);
                    for p in &paths {
                        self.gone(p);
                    }
                } else {
                    // One of them is not a leaf, or is gone, or the session was lost with the
                    // outcome unknown: try each on its own.
                    for p in paths.into_iter().rev() {
                        self.queue.push_front(Work::One(p));
                    }
                }
            }
        }
        self.fill(cx);
    }
}
