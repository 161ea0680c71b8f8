//! The network loop's side of an ensemble member: starting a `Replica` from the data
//! directory (epochs, the log's recent txns for DIFF, the shared session secret), the peer
//! links to the other servers' quorum and election ports, and `ReplicaStorage` on real
//! files (epoch files, TRUNC and SNAP through `storage`, reopening the txn log after
//! either). Corresponds to the start-up half of Apache's QuorumPeer and to its
//! FileTxnSnapLog use in Learner.syncWithLeader.

use super::peer::{Channel, PeerLinks};
use crate::config::Config;
use crate::proto::peer::{PeerMsg, Port, Sid};
use crate::server::replica::{Reloaded, Replica, ReplicaStorage};
use crate::server::{Now, Server};
use crate::storage::txnlog::TxnLog;
use crate::tree::DataTree;
use crate::zab::{self, Input, Zab, ZabConfig};
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;

/// mio tokens at and above this belong to the peer links.
pub const PEER_TOKEN_BASE: usize = 1 << 32;

/// A member's replica and its links to the others.
pub struct EnsembleNode {
    pub replica: Replica,
    pub peers: PeerLinks,
    /// Set by storage when the state was replaced (TRUNC or SNAP): a snapshot being
    /// written of the old state must be abandoned.
    pub reset: Rc<Cell<bool>>,
}

fn fatal(what: &str, e: impl std::fmt::Display) -> ! {
    log::error!("{what}: {e}; exiting so that recovery decides what is durable");
    std::process::exit(70);
}

/// `ReplicaStorage` on the data directories.
struct NetStorage {
    data_dir: PathBuf,
    log_dir: PathBuf,
    pre_alloc_bytes: u64,
    log: Rc<RefCell<TxnLog>>,
    reset: Rc<Cell<bool>>,
}

impl NetStorage {
    /// After a TRUNC or SNAP the old log handle must not append again: open a new one (it
    /// starts a new segment with its first append).
    fn reopen_log(&mut self) {
        match TxnLog::open(&self.log_dir, self.pre_alloc_bytes) {
            Ok(l) => *self.log.borrow_mut() = l,
            Err(e) => fatal("cannot reopen the txn log", e),
        }
        self.reset.set(true);
    }

    fn reload(&self) -> Reloaded {
        match crate::storage::recover(&self.data_dir, &self.log_dir) {
            Ok(r) => Reloaded {
                tree: r.tree,
                sessions: r.sessions.into_iter().collect(),
                last_zxid: r.last_zxid,
            },
            Err(e) => fatal("cannot reload the data after truncating the log", e),
        }
    }
}

impl ReplicaStorage for NetStorage {
    fn persist_accepted_epoch(&mut self, epoch: u64) {
        if let Err(e) = crate::storage::epoch::write_accepted_epoch(&self.data_dir, epoch) {
            fatal("cannot write acceptedEpoch", e);
        }
    }

    fn persist_current_epoch(&mut self, epoch: u64) {
        if let Err(e) = crate::storage::epoch::write_current_epoch(&self.data_dir, epoch) {
            fatal("cannot write currentEpoch", e);
        }
    }

    fn store_secret(&mut self, secret: &[u8; 32]) {
        if let Err(e) = crate::storage::store_secret(&self.data_dir, secret) {
            fatal("cannot store the session secret", e);
        }
    }

    fn truncate(&mut self, zxid: i64) -> Reloaded {
        if let Err(e) = crate::storage::truncate_to(&self.data_dir, &self.log_dir, zxid) {
            fatal(&format!("cannot truncate the txn log to 0x{zxid:x}"), e);
        }
        self.reopen_log();
        self.reload()
    }

    fn install_snapshot(&mut self, bytes: &[u8]) -> Result<Reloaded, String> {
        let l = crate::storage::install_snapshot(&self.data_dir, &self.log_dir, bytes)
            .map_err(|e| e.to_string())?;
        self.reopen_log();
        Ok(Reloaded {
            tree: l.tree,
            sessions: l.sessions,
            last_zxid: l.zxid,
        })
    }

    fn encode_snapshot(&self, tree: &DataTree, sessions: &[(i64, u32)], zxid: i64) -> Vec<u8> {
        crate::storage::snapshot::encode_snapshot(tree, sessions, zxid)
    }
}

/// The first address a `server.N` host resolves to.
fn addr_of(host: &str, port: u16) -> io::Result<SocketAddr> {
    super::resolve::resolve(host, port)?
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::other(format!("{host} resolves to no address")))
}

/// What `open_ensemble` needs from the standalone start-up path.
pub struct Opened {
    pub server: Server,
    pub log: Rc<RefCell<TxnLog>>,
    pub last_zxid: i64,
    pub snapshot_zxid: i64,
    pub secret: [u8; 32],
}

/// Builds the replica and the peer links for server `my_sid`.
pub fn start(
    cfg: &Config,
    my_sid: Sid,
    o: Opened,
    registry: &mio::Registry,
    now: Now,
) -> io::Result<EnsembleNode> {
    let me = cfg.server(my_sid).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("myid is {my_sid} but zoo.cfg has no server.{my_sid} line"),
        )
    })?;
    if cfg.peer_type == crate::config::LearnerType::Observer && !me.observer {
        log::warn!(
            "peerType=observer but server.{my_sid} is not marked :observer; the server.{my_sid} line wins, as in Apache"
        );
    }
    let quorum_listen = addr_of(&me.host, me.quorum_port)?;
    let election_listen = addr_of(&me.host, me.election_port)?;
    let mut peers = Vec::new();
    for s in &cfg.servers {
        if s.sid == my_sid {
            continue;
        }
        let q = addr_of(&s.host, s.quorum_port).map_err(|e| {
            io::Error::new(e.kind(), format!("server.{} host {}: {e}", s.sid, s.host))
        })?;
        let el = addr_of(&s.host, s.election_port)?;
        peers.push((s.sid, q, el));
    }
    let links = PeerLinks::new(
        registry,
        my_sid,
        quorum_listen,
        election_listen,
        peers,
        PEER_TOKEN_BASE,
    )?;
    log::info!("server {my_sid}: quorum port {quorum_listen}, election port {election_listen}");

    let (accepted, current) = crate::storage::epoch::read_epochs(&cfg.data_dir)?;
    let log_epoch = zab::epoch_of(o.last_zxid);
    let current_epoch = current.unwrap_or(log_epoch);
    let accepted_epoch = accepted.unwrap_or(current_epoch).max(current_epoch);
    let mut tail =
        crate::storage::txnlog::read_tail(&cfg.data_log_dir, cfg.commit_log_count as usize)
            .map_err(|e| io::Error::other(format!("cannot read the txn log's tail: {e}")))?;
    // The history Zab may DIFF from and TRUNC within is the log after the newest snapshot:
    // truncating below a snapshot is impossible (a learner asked to asks for a SNAP instead).
    if o.snapshot_zxid > 0 && tail.base.map_or(true, |b| b < o.snapshot_zxid) {
        tail.txns.retain(|(z, _)| *z > o.snapshot_zxid);
        tail.base = Some(o.snapshot_zxid);
    }
    let history_base = if tail.txns.is_empty() {
        Some(o.last_zxid)
    } else if tail.base.is_none() && o.snapshot_zxid == 0 {
        // No snapshot and the log from its first record: the history starts at zxid 0.
        Some(0)
    } else {
        tail.base
    };
    let voters: BTreeSet<Sid> = cfg.voting_members().map(|s| s.sid).collect();
    let observers: BTreeSet<Sid> = cfg
        .servers
        .iter()
        .filter(|s| s.observer)
        .map(|s| s.sid)
        .collect();
    let zcfg = ZabConfig {
        my_sid,
        voters,
        observers,
        tick_ms: cfg.tick_time_ms as u64,
        init_limit: cfg.init_limit.unwrap_or(10) as u64,
        sync_limit: cfg.sync_limit.unwrap_or(5) as u64,
    };
    let durable = zab::Durable {
        accepted_epoch,
        current_epoch,
        last_zxid: o.last_zxid,
        history_base,
        history: tail.txns,
        secret: o.secret.to_vec(),
    };
    log::info!(
        "server {my_sid} starts looking: last zxid 0x{:x}, acceptedEpoch {accepted_epoch}, currentEpoch {current_epoch}",
        o.last_zxid
    );
    let mut zab = Zab::new(zcfg, durable, now.mono_ms);
    zab.set_history_max(cfg.commit_log_count as usize);
    let reset = Rc::new(Cell::new(false));
    let storage = NetStorage {
        data_dir: cfg.data_dir.clone(),
        log_dir: cfg.data_log_dir.clone(),
        pre_alloc_bytes: cfg.pre_alloc_size_kb * 1024,
        log: o.log,
        reset: reset.clone(),
    };
    let replica = Replica::new(o.server, zab, Box::new(storage), now);
    let mut node = EnsembleNode {
        replica,
        peers: links,
        reset,
    };
    node.send_out(registry, now);
    Ok(node)
}

impl EnsembleNode {
    /// Sends what the replica queued for other servers.
    pub fn send_out(&mut self, registry: &mio::Registry, now: Now) {
        loop {
            let out = self.replica.take_peer_out();
            if out.is_empty() {
                return;
            }
            self.send_batch(registry, out, now);
        }
    }

    fn send_batch(&mut self, registry: &mio::Registry, out: Vec<(Sid, PeerMsg)>, now: Now) {
        let mut lost: Vec<Sid> = Vec::new();
        for (to, msg) in out {
            // After a loss on a link, the rest of the batch for that peer is lost too: Zab
            // hears of the loss once and resynchronizes what it must.
            if lost.contains(&to) && msg.port() == Port::Quorum {
                continue;
            }
            let ch = match msg.port() {
                Port::Quorum => Channel::Quorum,
                Port::Election => Channel::Election,
            };
            let bytes = msg.encode();
            if !self.peers.send(registry, to, ch, &bytes) && ch == Channel::Quorum {
                // Lost like a message on a broken connection: Zab must know.
                lost.push(to);
                self.replica.step(Input::LinkReset { sid: to }, now);
            }
        }
    }

    /// Hands received peer messages and broken links to the replica.
    pub fn receive(&mut self, now: Now) {
        for (sid, ch) in self.peers.drain_resets() {
            if ch == Channel::Quorum {
                self.replica.step(Input::LinkReset { sid }, now);
            }
        }
        for (from, _ch, bytes) in self.peers.drain_received() {
            match PeerMsg::decode(&bytes) {
                Ok(msg) => self.replica.step(Input::Message { from, msg }, now),
                Err(e) => log::warn!("dropping an undecodable message from server {from}: {e}"),
            }
        }
    }
}
