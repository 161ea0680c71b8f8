//! One ensemble member: a `Server` and its `Zab` wired together. It feeds Zab what the
//! server logged (proposals), forwards and session touches, and carries out Zab's outputs
//! in order: peer messages (queued for the caller to send), epochs, secret, truncation and
//! snapshots (through `ReplicaStorage`), txns to log and commits to apply (through the
//! server), role and serving changes. Pure like `server` and `zab`: the network loop and
//! the simulator drive the same code. Corresponds to the glue of Apache's QuorumPeer and
//! its Leader/Follower ZooKeeperServer subclasses.

use super::{Now, Server};
use crate::proto::peer::{PeerMsg, Sid};
use crate::tree::DataTree;
use crate::zab::{Input, Output, Role, Zab};

/// The state storage rebuilt after a TRUNC or a SNAP.
pub struct Reloaded {
    pub tree: DataTree,
    pub sessions: Vec<(i64, u32)>,
    pub last_zxid: i64,
}

/// What a replica needs from its disk beyond the txn log (the server's `TxnSink`). Every
/// method is durable when it returns; an implementation that cannot make it so must stop
/// the process (DESIGN.md §5: never carry on after a failed sync).
pub trait ReplicaStorage {
    fn persist_accepted_epoch(&mut self, epoch: u64);
    fn persist_current_epoch(&mut self, epoch: u64);
    fn store_secret(&mut self, secret: &[u8; 32]);
    /// Drops every logged txn after `zxid` and rebuilds the state from what remains. What
    /// remains must be durable when it returns too: Zab counts the log durable up to `zxid`
    /// from then on (and acks NEWLEADER on it). Zab never asks for a point below its history
    /// base (`Durable::history_base`, or its last SNAP); it asks the leader for a SNAP then.
    fn truncate(&mut self, zxid: i64) -> Reloaded;
    /// Replaces the data with a leader's snapshot; Err if the bytes are damaged.
    fn install_snapshot(&mut self, bytes: &[u8]) -> Result<Reloaded, String>;
    /// A snapshot of `tree` as bytes, for a learner that needs SNAP.
    fn encode_snapshot(&self, tree: &DataTree, sessions: &[(i64, u32)], zxid: i64) -> Vec<u8>;
}

pub struct Replica {
    pub server: Server,
    pub zab: Zab,
    storage: Box<dyn ReplicaStorage>,
    peer_out: Vec<(Sid, PeerMsg)>,
    /// Set when the replica cannot go on (a txn it must log could not be logged).
    pub fatal: Option<String>,
}

impl Replica {
    pub fn new(mut server: Server, zab: Zab, storage: Box<dyn ReplicaStorage>, now: Now) -> Self {
        server.set_server_id(zab.cfg.my_sid, now);
        server.set_role(zab.role());
        server.serving = false;
        let mut r = Replica {
            server,
            zab,
            storage,
            peer_out: Vec::new(),
            fatal: None,
        };
        r.pump(now);
        r
    }

    /// Messages to send, in order.
    pub fn take_peer_out(&mut self) -> Vec<(Sid, PeerMsg)> {
        std::mem::take(&mut self.peer_out)
    }

    /// Feeds one input to Zab and carries out everything that follows from it.
    pub fn step(&mut self, input: Input, now: Now) {
        // What the server logged since the last pump (a leader's session expiries in
        // `tick`, say) is already in its log: Zab must take it as proposed before any input
        // that could end the leadership, or Zab would drop it and then vote, and lead, without
        // a txn its own disk holds (found by src/sim: two expiries on one disk only, later
        // committed by that server as leader of the next epoch).
        self.pump(now);
        self.zab.step(input, now.mono_ms);
        self.pump(now);
    }

    /// Moves what the server produced (logged txns, forwards, touches) into Zab and Zab's
    /// outputs into the server, until neither has anything more. Call after driving the
    /// server directly (client connections and requests).
    pub fn pump(&mut self, now: Now) {
        loop {
            let mut fed = false;
            for (zxid, txn) in self.server.take_logged() {
                self.zab.step(Input::Logged { zxid, txn }, now.mono_ms);
                fed = true;
            }
            for req in self.server.take_forwards() {
                self.zab.step(Input::Forward(req), now.mono_ms);
                fed = true;
            }
            let touched = self.server.take_touched();
            if !touched.is_empty() {
                self.zab.step(Input::Touch(touched), now.mono_ms);
                fed = true;
            }
            let outs = self.zab.take_outputs();
            if outs.is_empty() && !fed {
                break;
            }
            for o in outs {
                self.carry_out(o, now);
            }
        }
    }

    fn carry_out(&mut self, o: Output, now: Now) {
        match o {
            Output::Send { to, msg } => self.peer_out.push((to, msg)),
            Output::SendSnapshot { to, zxid } => {
                let at = self.server.last_zxid;
                if at != zxid {
                    log::warn!(
                        "snapshot for {to} taken at 0x{at:x}, not at the commit point 0x{zxid:x}"
                    );
                }
                let sessions = self.server.session_list();
                let snapshot = self
                    .storage
                    .encode_snapshot(&self.server.tree, &sessions, at);
                self.peer_out
                    .push((to, PeerMsg::Snap { zxid: at, snapshot }));
            }
            Output::PersistAcceptedEpoch(e) => self.storage.persist_accepted_epoch(e),
            Output::PersistCurrentEpoch(e) => self.storage.persist_current_epoch(e),
            Output::Log { zxid, txn } => match crate::proto::txn::decode(&txn) {
                Ok((hdr, t)) if hdr.zxid == zxid => {
                    if let Err(e) = self.server.proposal(hdr, t) {
                        log::error!("{e}; stopping, recovery will resynchronize");
                        self.fatal.get_or_insert(e);
                    }
                }
                _ => {
                    let e = format!("proposal 0x{zxid:x} from the leader does not decode");
                    log::error!("{e}");
                    self.fatal.get_or_insert(e);
                }
            },
            Output::Truncate { zxid } => {
                let r = self.storage.truncate(zxid);
                self.server
                    .reset_state(r.tree, &r.sessions, r.last_zxid, now);
            }
            Output::InstallSnapshot { zxid, snapshot } => {
                match self.storage.install_snapshot(&snapshot) {
                    Ok(r) => self
                        .server
                        .reset_state(r.tree, &r.sessions, r.last_zxid, now),
                    Err(e) => {
                        let e = format!("snapshot 0x{zxid:x} from the leader is unusable: {e}");
                        log::error!("{e}");
                        self.fatal.get_or_insert(e);
                    }
                }
            }
            Output::Commit { zxid } => self.server.durable(zxid, now),
            Output::AdoptSecret(s) => {
                if let Ok(secret) = <[u8; 32]>::try_from(s.as_slice()) {
                    self.storage.store_secret(&secret);
                    self.server.set_secret(secret);
                }
            }
            Output::RoleChanged {
                role,
                leader,
                election_ms,
            } => {
                self.server.set_role(role);
                match role {
                    Role::Leading => {
                        log::info!("LEADING - LEADER ELECTION TOOK - {election_ms} MS")
                    }
                    Role::Following => log::info!(
                        "FOLLOWING - LEADER ELECTION TOOK - {election_ms} MS (leader {})",
                        leader.unwrap_or(0)
                    ),
                    Role::Observing => log::info!(
                        "OBSERVING - LEADER ELECTION TOOK - {election_ms} MS (leader {})",
                        leader.unwrap_or(0)
                    ),
                    Role::Looking => log::info!("LOOKING"),
                }
            }
            Output::Serving { on, epoch } => {
                if on {
                    log::info!(
                        "serving clients as {} in epoch {epoch}",
                        self.zab.role().mode()
                    );
                } else {
                    log::info!("stopped serving clients");
                }
                self.server.set_serving(on, epoch, now);
            }
            Output::Request { req, .. } => self.server.forwarded_request(req, now),
            Output::SyncDone { session_id, cxid } => self.server.sync_done(session_id, cxid, now),
            Output::Touched(ids) => self.server.touch_sessions(&ids, now),
            Output::Note(line) => {
                if line.warn {
                    log::warn!("{}", line.text);
                } else {
                    log::info!("{}", line.text);
                }
            }
        }
    }

    /// Periodic work for both halves.
    pub fn tick(&mut self, now: Now) {
        self.server.tick(now);
        self.step(Input::Tick, now);
    }
}
