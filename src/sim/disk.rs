//! The simulator's fake disk: per node an optional snapshot, a txn log with a durable prefix,
//! and the epochs and secret (durable as soon as written). `FakeSink` is the server's
//! `TxnSink` and `FakeStorage` the replica's `ReplicaStorage`; both share the node's `Disk`.
//! A crash keeps the durable prefix and a random part of the rest (a torn tail); recovery
//! rebuilds the tree from the snapshot plus the log, as `storage` does from real files.
//! The `Ledger` is the checker's global knowledge, fed from here as txns are logged,
//! truncated and replaced: every zxid names one txn, ever; committed txns are never dropped.

use super::rng::fnv64;
use crate::proto::txn::{self, Txn, TxnHeader};
use crate::proto::Writer;
use crate::server::replica::{Reloaded, ReplicaStorage};
use crate::server::TxnSink;
use crate::storage::snapshot::{decode_snapshot, encode_snapshot};
use crate::tree::DataTree;
use crate::zab::epoch_of;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// One node's disk.
pub struct Disk {
    pub sid: u64,
    pub accepted_epoch: u64,
    pub current_epoch: u64,
    pub secret: [u8; 32],
    /// (zxid, snapshot bytes as `encode_snapshot` makes them).
    pub snapshot: Option<(i64, Vec<u8>)>,
    /// Encoded txns in log order (ascending zxid).
    pub log: Vec<(i64, Rc<[u8]>)>,
    /// How many of `log` survive a crash.
    pub durable_len: usize,
    /// Bumped when TRUNC or SNAP rewrites the log: an fsync that started before covers
    /// nothing appended after (what TRUNC kept, it synced itself).
    pub log_gen: u64,
}

pub type DiskRef = Rc<RefCell<Disk>>;

impl Disk {
    pub fn new(sid: u64, secret: [u8; 32]) -> DiskRef {
        Rc::new(RefCell::new(Disk {
            sid,
            accepted_epoch: 0,
            current_epoch: 0,
            secret,
            snapshot: None,
            log: Vec::new(),
            durable_len: 0,
            log_gen: 0,
        }))
    }

    pub fn snapshot_zxid(&self) -> i64 {
        self.snapshot.as_ref().map_or(0, |(z, _)| *z)
    }

    /// The last zxid on disk: the log's last, or the snapshot's.
    pub fn last_zxid(&self) -> i64 {
        self.log
            .last()
            .map_or_else(|| self.snapshot_zxid(), |(z, _)| *z)
    }

    pub fn has_volatile(&self) -> bool {
        self.durable_len < self.log.len()
    }

    /// Whether `zxid` survives a crash right now: in the durable log, or under the snapshot.
    pub fn holds_durably(&self, zxid: i64) -> bool {
        if self.snapshot_zxid() >= zxid {
            return true;
        }
        self.log[..self.durable_len]
            .binary_search_by_key(&zxid, |(z, _)| *z)
            .is_ok()
    }

    /// A crash: what was not synced is lost, except for a prefix of it the OS happened to
    /// write out (`keep_volatile` records, already clamped).
    pub fn crash(&mut self, keep_volatile: usize) {
        let keep = (self.durable_len + keep_volatile).min(self.log.len());
        self.log.truncate(keep);
        self.durable_len = keep;
    }

    /// The state the disk holds: the snapshot's tree with every logged txn applied, the
    /// sessions alive after them, and the last zxid.
    pub fn load(&self) -> Result<Reloaded, String> {
        let (mut tree, sessions, mut last) = match &self.snapshot {
            Some((_, bytes)) => {
                let l = decode_snapshot(bytes).map_err(|e| e.to_string())?;
                let s: BTreeMap<i64, u32> = l.sessions.into_iter().collect();
                (l.tree, s, l.zxid)
            }
            None => (DataTree::new(), BTreeMap::new(), 0),
        };
        let mut sessions = sessions;
        let mut triggers = Vec::new();
        for (z, bytes) in &self.log {
            let (hdr, t) = txn::decode(bytes).map_err(|e| format!("txn 0x{z:x}: {e}"))?;
            triggers.clear();
            tree.apply(&hdr, &t, &mut triggers);
            match t {
                Txn::CreateSession { timeout_ms } => {
                    sessions.insert(hdr.client_id, timeout_ms as u32);
                }
                Txn::CloseSession => {
                    sessions.remove(&hdr.client_id);
                }
                _ => {}
            }
            last = *z;
        }
        Ok(Reloaded {
            tree,
            sessions: sessions.into_iter().collect(),
            last_zxid: last,
        })
    }
}

/// Whether a log may hold `next` right after `prev`: the next counter of the same epoch, or
/// the first txn of a later epoch (each leader numbers from `epoch << 32 | 1`).
pub fn follows(prev: i64, next: i64) -> bool {
    next == prev + 1 || (epoch_of(next) > epoch_of(prev) && next & 0xffff_ffff == 1)
}

/// The checker's knowledge shared by every node's disk.
#[derive(Default)]
pub struct Ledger {
    /// Every txn ever logged anywhere, by zxid (hash of its bytes).
    pub logged: HashMap<i64, u64>,
    /// Txns an established leader has committed, by zxid.
    pub committed: BTreeMap<i64, u64>,
    /// The highest commit point any established leader reached.
    pub committed_max: i64,
    /// Broken invariants found inside storage callbacks, reported after the event.
    pub violations: Vec<String>,
}

pub type LedgerRef = Rc<RefCell<Ledger>>;

impl Ledger {
    fn violation(&mut self, s: String) {
        self.violations.push(s);
    }

    /// A node is about to drop the log records after index `keep`: none may be committed.
    fn check_drop(&mut self, sid: u64, log: &[(i64, Rc<[u8]>)], keep: usize, why: &str) {
        for (z, _) in &log[keep..] {
            if self.committed.contains_key(z) {
                self.violation(format!("server {sid} drops committed txn 0x{z:x} ({why})"));
                return;
            }
        }
    }
}

/// The server's txn log on the fake disk.
pub struct FakeSink {
    pub disk: DiskRef,
    pub ledger: LedgerRef,
}

impl TxnSink for FakeSink {
    fn append(&mut self, hdr: &TxnHeader, txn: &Txn) -> Result<(), String> {
        let mut w = Writer::new();
        txn::encode(hdr, txn, &mut w);
        let bytes: Rc<[u8]> = Rc::from(w.buf);
        let h = fnv64(&bytes);
        let mut d = self.disk.borrow_mut();
        let mut l = self.ledger.borrow_mut();
        let prev = d.last_zxid();
        let z = hdr.zxid;
        if !follows(prev, z) {
            l.violation(format!(
                "server {} logs txn 0x{z:x} right after 0x{prev:x}: a hole or a reordering in its log",
                d.sid
            ));
        }
        match l.logged.get(&z) {
            Some(&old) if old != h => l.violation(format!(
                "server {} logs txn 0x{z:x} that differs from another txn logged with the same zxid",
                d.sid
            )),
            Some(_) => {}
            None => {
                l.logged.insert(z, h);
            }
        }
        d.log.push((z, bytes));
        Ok(())
    }
}

/// The replica's epochs, secret, truncation and snapshots on the fake disk.
pub struct FakeStorage {
    pub disk: DiskRef,
    pub ledger: LedgerRef,
}

impl ReplicaStorage for FakeStorage {
    fn persist_accepted_epoch(&mut self, epoch: u64) {
        let mut d = self.disk.borrow_mut();
        if epoch < d.accepted_epoch {
            self.ledger.borrow_mut().violation(format!(
                "server {} lowers its accepted epoch from {} to {epoch}",
                d.sid, d.accepted_epoch
            ));
        }
        d.accepted_epoch = epoch;
    }

    fn persist_current_epoch(&mut self, epoch: u64) {
        let mut d = self.disk.borrow_mut();
        if epoch < d.current_epoch || epoch > d.accepted_epoch {
            self.ledger.borrow_mut().violation(format!(
                "server {} sets its current epoch from {} to {epoch} with accepted epoch {}",
                d.sid, d.current_epoch, d.accepted_epoch
            ));
        }
        d.current_epoch = epoch;
    }

    fn store_secret(&mut self, secret: &[u8; 32]) {
        self.disk.borrow_mut().secret = *secret;
    }

    /// Drops the log after `zxid`; what remains is made durable too, since Zab counts the
    /// log as durable up to `zxid` once TRUNC is carried out (see `ReplicaStorage::truncate`).
    fn truncate(&mut self, zxid: i64) -> Reloaded {
        let mut d = self.disk.borrow_mut();
        let mut l = self.ledger.borrow_mut();
        let keep = d.log.partition_point(|(z, _)| *z <= zxid);
        let sid = d.sid;
        l.check_drop(sid, &d.log, keep, "TRUNC");
        let has = zxid == d.snapshot_zxid() || (keep > 0 && d.log[keep - 1].0 == zxid);
        if !has {
            l.violation(format!(
                "server {sid} is told to truncate to 0x{zxid:x}, which it does not have (last 0x{:x}, snapshot 0x{:x})",
                d.last_zxid(),
                d.snapshot_zxid()
            ));
        }
        d.log.truncate(keep);
        d.durable_len = d.log.len();
        d.log_gen += 1;
        match d.load() {
            Ok(r) => r,
            Err(e) => {
                l.violation(format!("server {sid} cannot reload after TRUNC: {e}"));
                Reloaded {
                    tree: DataTree::new(),
                    sessions: Vec::new(),
                    last_zxid: 0,
                }
            }
        }
    }

    fn install_snapshot(&mut self, bytes: &[u8]) -> Result<Reloaded, String> {
        let loaded = decode_snapshot(bytes).map_err(|e| e.to_string())?;
        let mut d = self.disk.borrow_mut();
        let mut l = self.ledger.borrow_mut();
        let keep = d.log.partition_point(|(z, _)| *z <= loaded.zxid);
        let sid = d.sid;
        l.check_drop(sid, &d.log, keep, "SNAP");
        d.snapshot = Some((loaded.zxid, bytes.to_vec()));
        d.log.clear();
        d.durable_len = 0;
        d.log_gen += 1;
        Ok(Reloaded {
            tree: loaded.tree,
            sessions: loaded.sessions,
            last_zxid: loaded.zxid,
        })
    }

    fn encode_snapshot(&self, tree: &DataTree, sessions: &[(i64, u32)], zxid: i64) -> Vec<u8> {
        encode_snapshot(tree, sessions, zxid)
    }
}
