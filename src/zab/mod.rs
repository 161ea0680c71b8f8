//! Leader election and Zab atomic broadcast as a pure state machine. Everything enters
//! through `step` (peer messages, ticks, what the local log made durable, txns the leader's
//! server logged, requests to forward); everything leaves as `Output`s the caller carries
//! out in order: messages to send, epochs to persist, txns to log, a log to truncate, a
//! snapshot to install or send, txns to commit, role changes. It never touches a socket, a
//! file or a clock, so the simulator can drive it deterministically.
//!
//! Phases, by Zab's names: election (FastLeaderElection, in `election`), discovery
//! (FOLLOWERINFO -> a new epoch above every accepted epoch of a majority -> LEADERINFO ->
//! ACKEPOCH), synchronization (the leader sends each learner DIFF, TRUNC or SNAP plus the
//! proposals it lacks, then NEWLEADER; the learner persists the epoch and acks once all of
//! it is durable; a majority of acks establishes the leader, which commits its whole
//! history and sends UPTODATE) and broadcast (PROPOSAL -> ACK after the learner's own
//! durable write -> COMMIT once a majority of voters, the leader included, has it).
//!
//! Links may lose messages (a broken connection drops what was in flight) but never reorder
//! what one sender sent on one link. Acks are cumulative and pings carry the leader's
//! commit point, so a lost ACK or COMMIT heals by itself; a learner that finds a proposal
//! missing (a gap, or a ping naming a proposal it never got) goes back to election and
//! resynchronizes. A leader that stops hearing from a majority for syncLimit ticks steps
//! down; a learner that stops hearing from its leader does the same.
//! Corresponds to Apache ZooKeeper's QuorumPeer, Leader/LearnerHandler, Follower/Observer
//! and Learner.syncWithLeader.

pub mod election;

use crate::proto::consts::op;
use crate::proto::peer::{ForwardedRequest, PeerMsg, PeerState, Sid, Vote};
use election::{Decision, Election};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Recent txns kept for DIFF by default; a learner further behind gets a SNAP (ZooKeeper's
/// zookeeper.commitLogCount is 500, and it can also diff from its log on disk).
pub const HISTORY_TXNS_MAX: usize = 10_000;

/// What this server does in the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Looking,
    Following,
    Leading,
    Observing,
}

impl Role {
    /// The word `srvr` prints after `Mode:`.
    pub fn mode(self) -> &'static str {
        match self {
            Role::Looking => "looking",
            Role::Following => "follower",
            Role::Leading => "leader",
            Role::Observing => "observer",
        }
    }

    fn peer_state(self) -> PeerState {
        match self {
            Role::Looking => PeerState::Looking,
            Role::Following => PeerState::Following,
            Role::Leading => PeerState::Leading,
            Role::Observing => PeerState::Observing,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ZabConfig {
    pub my_sid: Sid,
    /// Voting members (participants), this server included if it votes.
    pub voters: BTreeSet<Sid>,
    pub observers: BTreeSet<Sid>,
    pub tick_ms: u64,
    pub init_limit: u64,
    pub sync_limit: u64,
}

impl ZabConfig {
    fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    fn is_observer(&self) -> bool {
        !self.voters.contains(&self.my_sid)
    }
}

/// The durable state a server starts from.
#[derive(Debug, Clone, Default)]
pub struct Durable {
    pub accepted_epoch: u64,
    pub current_epoch: u64,
    /// The last zxid in the log (or the snapshot, when the log is empty).
    pub last_zxid: i64,
    /// The zxid before the first txn of `history`, if known.
    pub history_base: Option<i64>,
    /// The log's last txns, oldest first, encoded as `proto::txn::encode` writes them.
    pub history: Vec<(i64, Vec<u8>)>,
    pub secret: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Tick,
    Message {
        from: Sid,
        msg: PeerMsg,
    },
    /// Our outbound link to `sid` broke: whatever was in flight on it is lost.
    LinkReset {
        sid: Sid,
    },
    /// The leader's server logged a txn (a new proposal).
    Logged {
        zxid: i64,
        txn: Vec<u8>,
    },
    /// The local log is durable up to `zxid`.
    Durable {
        zxid: i64,
    },
    /// A learner's server forwards a client request to the leader.
    Forward(ForwardedRequest),
    /// Sessions the learner's clients kept alive since the last call.
    Touch(Vec<i64>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Send {
        to: Sid,
        msg: PeerMsg,
    },
    /// Send `to` a SNAP of the applied tree, whose zxid is the commit point.
    SendSnapshot {
        to: Sid,
        zxid: i64,
    },
    /// Persist before carrying out anything after this output.
    PersistAcceptedEpoch(u64),
    PersistCurrentEpoch(u64),
    /// Learner: append this txn to the log (report it through `Input::Durable`).
    Log {
        zxid: i64,
        txn: Arc<[u8]>,
    },
    /// Learner: drop every logged txn after `zxid` and reload the state from disk.
    Truncate {
        zxid: i64,
    },
    /// Learner: replace the state with this snapshot and start an empty log.
    InstallSnapshot {
        zxid: i64,
        snapshot: Vec<u8>,
    },
    /// Apply every logged txn up to `zxid`.
    Commit {
        zxid: i64,
    },
    AdoptSecret(Vec<u8>),
    /// The role changed; `election_ms` is how long the election took.
    RoleChanged {
        role: Role,
        leader: Option<Sid>,
        election_ms: u64,
    },
    /// Start or stop serving clients. A new leader's first zxid is `epoch << 32 | 1`.
    Serving {
        on: bool,
        epoch: u64,
    },
    /// Leader: a learner forwarded this request.
    Request {
        from: Sid,
        req: ForwardedRequest,
    },
    /// Learner: the leader answered a forwarded sync; the client may have its reply.
    SyncDone {
        session_id: i64,
        cxid: i32,
    },
    /// Leader: sessions learners saw alive.
    Touched(Vec<i64>),
    /// A line for the server log (ZooKeeper's wording where it has one).
    Note(LogLine),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub warn: bool,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LearnerPhase {
    /// FOLLOWERINFO received, waiting for the new epoch to be chosen.
    Info,
    /// LEADERINFO sent.
    EpochSent,
    /// ACKEPOCH received, waiting for a majority before synchronizing.
    EpochAcked,
    /// Synchronization sent, waiting for the NEWLEADER ack.
    Syncing,
    /// In broadcast.
    Active,
}

#[derive(Debug, Clone)]
struct LearnerHandle {
    phase: LearnerPhase,
    observer: bool,
    accepted_epoch: u64,
    last_zxid: i64,
    acked: i64,
    last_heard_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaderPhase {
    Discovery,
    Sync,
    Broadcast,
}

#[derive(Debug)]
struct LeaderState {
    phase: LeaderPhase,
    new_epoch: u64,
    learners: BTreeMap<Sid, LearnerHandle>,
    started_ms: u64,
    /// The NEWLEADER zxid: the leader's last logged zxid when it began synchronizing.
    newleader_zxid: i64,
    /// Forwarded syncs waiting for every proposal before them to commit.
    pending_syncs: VecDeque<(Sid, i64, i32, i64)>,
    next_ping_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FollowPhase {
    Discovery,
    Sync,
    Broadcast,
}

#[derive(Debug)]
struct FollowState {
    leader: Sid,
    phase: FollowPhase,
    phase_started_ms: u64,
    last_heard_ms: u64,
    /// NEWLEADER's zxid and epoch: the epoch becomes current, and NEWLEADER is acked, once
    /// the log is durable up to that zxid.
    newleader_ack: Option<(i64, u64)>,
    /// What the synchronization brought so far, held until NEWLEADER.
    sync: Option<SyncBuffer>,
    /// NEWLEADER arrived: what follows is broadcast, logged as it comes.
    newleader_seen: bool,
}

/// A synchronization before its NEWLEADER: the SNAP, if it was one, and the proposals and
/// commit point after DIFF, TRUNC or SNAP. As ZooKeeper's Learner does (packetsNotLogged),
/// nothing of it reaches the log before NEWLEADER, which ends the leader's synchronization
/// batch. A broken link loses a suffix of that batch, NEWLEADER included, while what the
/// leader sends before it hears of the break (its next proposal, say) travels on a new
/// connection; logged at once, that could leave a hole that no later DIFF repairs, and a
/// gap across an epoch boundary cannot be seen from the zxids. (The network loop must not
/// let that happen: nothing sent on a broken link may arrive until Zab heard LinkReset;
/// this is the second line of defence.) A snapshot, moreover, cannot be truncated later,
/// and a leader not yet established may send one holding txns it never commits, which a
/// later leader truncates. All three found by src/sim.
#[derive(Debug)]
struct SyncBuffer {
    /// The zxid the proposals continue from.
    base: i64,
    snapshot: Option<Vec<u8>>,
    proposals: Vec<(i64, Arc<[u8]>)>,
    committed: i64,
}

pub struct Zab {
    pub cfg: ZabConfig,
    role: Role,
    election: Election,
    decided: Option<Decision>,
    pub accepted_epoch: u64,
    pub current_epoch: u64,
    last_logged: i64,
    last_durable: i64,
    last_committed: i64,
    history: VecDeque<(i64, Arc<[u8]>)>,
    history_base: Option<i64>,
    leader: Option<LeaderState>,
    follow: Option<FollowState>,
    touched: Vec<i64>,
    /// The highest accepted epoch a voter reported to us as leader, for the next epoch to
    /// exceed (see the FOLLOWERINFO handler).
    epoch_floor: u64,
    /// Our state cannot be truncated as a leader asked: report last zxid -1, which always
    /// gets a SNAP (see the TRUNC handler).
    want_snapshot: bool,
    /// FOLLOWERINFOs that arrived while we were still looking: a learner may finish the
    /// election before its leader does, and TCP would have held its message until the
    /// leader read it. Replayed when we lead; dropped at the next election round.
    early_infos: BTreeMap<Sid, PeerMsg>,
    looking_since_ms: u64,
    history_max: usize,
    secret: Vec<u8>,
    now_ms: u64,
    out: Vec<Output>,
}

/// The learners a leader sends proposals and commits to: those in sync or broadcast.
fn forwarding_set(l: &LeaderState) -> Vec<Sid> {
    l.learners
        .iter()
        .filter(|(_, h)| matches!(h.phase, LearnerPhase::Active | LearnerPhase::Syncing))
        .map(|(s, _)| *s)
        .collect()
}

fn hex(z: i64) -> String {
    format!("0x{:x}", z as u64)
}

/// The zxid epoch.
pub fn epoch_of(zxid: i64) -> u64 {
    (zxid as u64) >> 32
}

/// Whether a proposal `next` directly follows `prev`: the next counter of the same epoch or
/// the first of a later one.
fn follows(prev: i64, next: i64) -> bool {
    next == prev + 1 || (epoch_of(next) > epoch_of(prev) && next & 0xffff_ffff == 1)
}

impl Zab {
    /// A server that starts looking at `now_ms`.
    pub fn new(cfg: ZabConfig, d: Durable, now_ms: u64) -> Zab {
        let everyone: BTreeSet<Sid> = cfg.voters.union(&cfg.observers).copied().collect();
        let election = Election::new(cfg.my_sid, cfg.voters.clone(), everyone);
        let mut z = Zab {
            cfg,
            role: Role::Looking,
            election,
            decided: None,
            accepted_epoch: d.accepted_epoch,
            current_epoch: d.current_epoch,
            last_logged: d.last_zxid,
            last_durable: d.last_zxid,
            // Everything a server recovered is applied; what of it was committed is decided
            // by the next leader's synchronization.
            last_committed: d.last_zxid,
            history: d
                .history
                .into_iter()
                .map(|(z, t)| (z, Arc::from(t)))
                .collect(),
            history_base: d.history_base,
            leader: None,
            follow: None,
            touched: Vec::new(),
            epoch_floor: 0,
            want_snapshot: false,
            early_infos: BTreeMap::new(),
            looking_since_ms: now_ms,
            history_max: HISTORY_TXNS_MAX,
            secret: d.secret,
            now_ms,
            out: Vec::new(),
        };
        z.look(now_ms);
        z
    }

    /// How many recent txns to keep for DIFF (commitLogCount); at least 1.
    pub fn set_history_max(&mut self, n: usize) {
        self.history_max = n.max(1);
        while self.history.len() > self.history_max {
            if let Some((z, _)) = self.history.pop_front() {
                self.history_base = Some(z);
            }
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn leader_sid(&self) -> Option<Sid> {
        match self.role {
            Role::Leading => Some(self.cfg.my_sid),
            Role::Following | Role::Observing => self.follow.as_ref().map(|f| f.leader),
            Role::Looking => None,
        }
    }

    /// The current epoch, if this server leads an established epoch.
    pub fn established_epoch(&self) -> Option<u64> {
        self.leader
            .as_ref()
            .filter(|l| l.phase == LeaderPhase::Broadcast)
            .map(|l| l.new_epoch)
    }

    /// Serving clients: an established leader, or a learner in broadcast.
    pub fn serving(&self) -> bool {
        match self.role {
            Role::Leading => self.established_epoch().is_some(),
            Role::Following | Role::Observing => self
                .follow
                .as_ref()
                .is_some_and(|f| f.phase == FollowPhase::Broadcast),
            Role::Looking => false,
        }
    }

    pub fn last_logged(&self) -> i64 {
        self.last_logged
    }

    pub fn last_committed(&self) -> i64 {
        self.last_committed
    }

    pub fn last_durable(&self) -> i64 {
        self.last_durable
    }

    /// (learners connected, voters among them in broadcast, learners still synchronizing)
    /// for mntr's zk_followers, zk_synced_followers and zk_pending_syncs.
    pub fn learner_counts(&self) -> (usize, usize, usize) {
        let Some(l) = &self.leader else {
            return (0, 0, 0);
        };
        let all = l.learners.len();
        let synced = l
            .learners
            .values()
            .filter(|h| h.phase == LearnerPhase::Active && !h.observer)
            .count();
        let syncing = l
            .learners
            .values()
            .filter(|h| h.phase == LearnerPhase::Syncing)
            .count();
        (all, synced, syncing)
    }

    /// The history window's first zxid and length, for tests and mntr.
    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    fn log(&mut self, text: String) {
        self.out.push(Output::Note(LogLine { warn: false, text }));
    }

    fn warn(&mut self, text: String) {
        self.out.push(Output::Note(LogLine { warn: true, text }));
    }

    fn send(&mut self, to: Sid, msg: PeerMsg) {
        self.out.push(Output::Send { to, msg });
    }

    /// Feeds one input at time `now_ms`; the outputs wait in `take_outputs`.
    pub fn step(&mut self, input: Input, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        match input {
            Input::Tick => self.tick(),
            Input::Message { from, msg } => self.message(from, msg),
            Input::LinkReset { sid } => self.link_reset(sid),
            Input::Logged { zxid, txn } => self.logged(zxid, txn),
            Input::Durable { zxid } => self.durable(zxid),
            Input::Forward(req) => self.forward(req),
            Input::Touch(s) => {
                if self.role == Role::Leading {
                    self.out.push(Output::Touched(s));
                } else {
                    self.touched.extend(s);
                }
            }
        }
    }

    // ---- election ----

    fn look(&mut self, now_ms: u64) {
        let was = self.role;
        let was_serving = self.serving();
        self.role = Role::Looking;
        self.leader = None;
        self.follow = None;
        self.decided = None;
        self.touched.clear();
        self.early_infos.clear();
        self.looking_since_ms = now_ms;
        if was_serving {
            self.out.push(Output::Serving {
                on: false,
                epoch: self.current_epoch,
            });
        }
        if was != Role::Looking {
            self.out.push(Output::RoleChanged {
                role: Role::Looking,
                leader: None,
                election_ms: 0,
            });
        }
        let sends = self
            .election
            .start(self.last_logged, self.current_epoch, now_ms);
        for (to, m) in sends {
            self.send(to, m);
        }
    }

    fn go_looking(&mut self, why: String) {
        self.warn(why);
        self.look(self.now_ms);
    }

    fn decided(&mut self, d: Decision) {
        let took = self.now_ms.saturating_sub(self.looking_since_ms);
        self.decided = Some(d);
        let leader = d.vote.leader;
        if leader == self.cfg.my_sid {
            self.role = Role::Leading;
            self.leader = Some(LeaderState {
                phase: LeaderPhase::Discovery,
                new_epoch: 0,
                learners: BTreeMap::new(),
                started_ms: self.now_ms,
                newleader_zxid: self.last_logged,
                pending_syncs: VecDeque::new(),
                next_ping_ms: self.now_ms,
            });
            self.out.push(Output::RoleChanged {
                role: Role::Leading,
                leader: Some(leader),
                election_ms: took,
            });
            // A one-server quorum (standaloneEnabled=false) needs nobody.
            self.maybe_choose_epoch();
            for (from, m) in std::mem::take(&mut self.early_infos) {
                self.leader_message(from, m);
            }
        } else {
            self.role = if self.cfg.is_observer() {
                Role::Observing
            } else {
                Role::Following
            };
            self.follow = Some(FollowState {
                leader,
                phase: FollowPhase::Discovery,
                phase_started_ms: self.now_ms,
                last_heard_ms: self.now_ms,
                newleader_ack: None,
                sync: None,
                newleader_seen: false,
            });
            self.out.push(Output::RoleChanged {
                role: self.role,
                leader: Some(leader),
                election_ms: took,
            });
            let observer = self.cfg.is_observer();
            let msg = PeerMsg::FollowerInfo {
                accepted_epoch: self.accepted_epoch,
                last_zxid: self.reported_zxid(),
                observer,
            };
            self.send(leader, msg);
        }
    }

    /// The last zxid we tell a leader in FOLLOWERINFO and ACKEPOCH: -1 asks for a SNAP,
    /// since no leader has it in its history nor below it.
    fn reported_zxid(&self) -> i64 {
        if self.want_snapshot {
            -1
        } else {
            self.last_logged
        }
    }

    fn current_vote(&self) -> Vote {
        self.decided
            .map(|d| d.vote)
            .unwrap_or(self.election.proposed)
    }

    fn notification(&mut self, from: Sid, vote: Vote, election_epoch: u64, state: PeerState) {
        if self.role == Role::Looking {
            let mut sends = Vec::new();
            let d = self.election.on_notification(
                from,
                vote,
                election_epoch,
                state,
                self.now_ms,
                &mut sends,
            );
            for (to, m) in sends {
                self.send(to, m);
            }
            if let Some(d) = d {
                self.decided(d);
            }
        } else if state == PeerState::Looking {
            // Tell a looking server whom we follow or that we lead.
            let m = PeerMsg::Notification {
                vote: self.current_vote(),
                election_epoch: self.election.logical_clock,
                state: self.role.peer_state(),
            };
            self.send(from, m);
        }
    }

    // ---- time ----

    fn tick(&mut self) {
        let now = self.now_ms;
        let init_ms = self.cfg.tick_ms * self.cfg.init_limit;
        let sync_ms = self.cfg.tick_ms * self.cfg.sync_limit;
        match self.role {
            Role::Looking => {
                let mut sends = Vec::new();
                let d = self.election.tick(now, &mut sends);
                for (to, m) in sends {
                    self.send(to, m);
                }
                if let Some(d) = d {
                    self.decided(d);
                }
            }
            Role::Leading => {
                let Some(l) = self.leader.as_mut() else {
                    return;
                };
                if l.phase != LeaderPhase::Broadcast {
                    if now.saturating_sub(l.started_ms) > init_ms {
                        self.go_looking(format!(
                            "Timeout while waiting for a quorum of followers to synchronize after {init_ms} ms, going back to LOOKING"
                        ));
                    }
                    return;
                }
                // Drop learners gone quiet; they come back through election and resync.
                let quiet: Vec<Sid> = l
                    .learners
                    .iter()
                    .filter(|(_, h)| now.saturating_sub(h.last_heard_ms) > sync_ms)
                    .map(|(s, _)| *s)
                    .collect();
                for s in &quiet {
                    l.learners.remove(s);
                }
                let live: Vec<Sid> = std::iter::once(self.cfg.my_sid)
                    .chain(
                        l.learners
                            .iter()
                            .filter(|(_, h)| h.phase == LearnerPhase::Active && !h.observer)
                            .map(|(s, _)| *s),
                    )
                    .collect();
                if live.len() < self.cfg.quorum() {
                    let list = live
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(",");
                    self.go_looking(format!(
                        "Not sufficient followers synced, only synced with sids: [ {list} ]; shutting down leadership"
                    ));
                    return;
                }
                if now >= l.next_ping_ms {
                    l.next_ping_ms = now + (self.cfg.tick_ms / 2).max(1);
                    let ping = PeerMsg::Ping {
                        committed: self.last_committed,
                        last_proposed: self.last_logged,
                    };
                    let to: Vec<Sid> = l
                        .learners
                        .iter()
                        .filter(|(_, h)| {
                            matches!(h.phase, LearnerPhase::Active | LearnerPhase::Syncing)
                        })
                        .map(|(s, _)| *s)
                        .collect();
                    for s in to {
                        self.send(s, ping.clone());
                    }
                }
            }
            Role::Following | Role::Observing => {
                let Some(f) = self.follow.as_ref() else {
                    return;
                };
                if f.phase != FollowPhase::Broadcast {
                    if now.saturating_sub(f.phase_started_ms) > init_ms {
                        let l = f.leader;
                        self.go_looking(format!(
                            "Timed out synchronizing with leader {l} after {init_ms} ms, going back to LOOKING"
                        ));
                    }
                } else if now.saturating_sub(f.last_heard_ms) > sync_ms {
                    let l = f.leader;
                    self.go_looking(format!(
                        "No message from leader {l} for {sync_ms} ms (syncLimit), going back to LOOKING"
                    ));
                }
            }
        }
    }

    fn link_reset(&mut self, sid: Sid) {
        match self.role {
            Role::Following | Role::Observing => {
                if self.follow.as_ref().is_some_and(|f| f.leader == sid) {
                    self.go_looking(format!(
                        "Connection to leader {sid} broke, going back to LOOKING"
                    ));
                }
            }
            Role::Leading => {
                if let Some(l) = self.leader.as_mut() {
                    if l.learners.remove(&sid).is_some() {
                        self.warn(format!("Connection to learner {sid} broke; it must resync"));
                    }
                }
            }
            Role::Looking => {}
        }
    }

    // ---- messages ----

    fn message(&mut self, from: Sid, msg: PeerMsg) {
        if let PeerMsg::Notification {
            vote,
            election_epoch,
            state,
        } = msg
        {
            self.notification(from, vote, election_epoch, state);
            return;
        }
        match self.role {
            Role::Leading => self.leader_message(from, msg),
            Role::Following | Role::Observing => {
                if self.follow.as_ref().is_some_and(|f| f.leader == from) {
                    self.learner_message(msg);
                }
            }
            Role::Looking => {
                if matches!(msg, PeerMsg::FollowerInfo { .. }) {
                    self.early_infos.insert(from, msg);
                }
            }
        }
    }

    // ---- leader ----

    fn leader_message(&mut self, from: Sid, msg: PeerMsg) {
        if !self.cfg.voters.contains(&from) && !self.cfg.observers.contains(&from) {
            return;
        }
        let now = self.now_ms;
        let Some(l) = self.leader.as_mut() else {
            return;
        };
        if let Some(h) = l.learners.get_mut(&from) {
            h.last_heard_ms = now;
        }
        match msg {
            PeerMsg::FollowerInfo {
                accepted_epoch,
                last_zxid,
                observer,
            } => {
                let observer = observer || !self.cfg.voters.contains(&from);
                l.learners.insert(
                    from,
                    LearnerHandle {
                        phase: LearnerPhase::Info,
                        observer,
                        accepted_epoch,
                        last_zxid,
                        acked: 0,
                        last_heard_ms: now,
                    },
                );
                if l.phase == LeaderPhase::Discovery && l.new_epoch == 0 {
                    self.maybe_choose_epoch();
                } else if !observer && accepted_epoch > l.new_epoch {
                    // It promised a leader that never got established not to follow an
                    // older epoch, so it can never join ours: it would stay out until the
                    // next leader change (found by src/sim: one server of three, two of
                    // five). Start over, choosing the next epoch above its promise.
                    let e = l.new_epoch;
                    self.epoch_floor = self.epoch_floor.max(accepted_epoch);
                    self.go_looking(format!(
                        "Follower {from} accepted epoch {accepted_epoch}, above our epoch {e}; starting a new election for a higher epoch"
                    ));
                } else {
                    let e = l.new_epoch;
                    if let Some(h) = l.learners.get_mut(&from) {
                        h.phase = LearnerPhase::EpochSent;
                    }
                    self.send(from, PeerMsg::LeaderInfo { new_epoch: e });
                }
            }
            PeerMsg::AckEpoch {
                current_epoch,
                last_zxid,
            } => {
                let Some(h) = l.learners.get_mut(&from) else {
                    return;
                };
                if h.phase != LearnerPhase::EpochSent {
                    return;
                }
                if (current_epoch, last_zxid) > (self.current_epoch, self.last_logged) {
                    let mine = (self.current_epoch, hex(self.last_logged));
                    self.go_looking(format!(
                        "Follower {from} is ahead of the leader (epoch {current_epoch}, zxid {}) vs {mine:?}, going back to LOOKING",
                        hex(last_zxid)
                    ));
                    return;
                }
                h.phase = LearnerPhase::EpochAcked;
                h.last_zxid = last_zxid;
                if l.phase == LeaderPhase::Discovery {
                    self.maybe_start_sync();
                } else {
                    self.sync_learner(from);
                }
            }
            PeerMsg::Ack { zxid } => {
                let Some(h) = l.learners.get_mut(&from) else {
                    return;
                };
                match h.phase {
                    LearnerPhase::Syncing => {
                        h.phase = LearnerPhase::Active;
                        h.acked = zxid;
                        if l.phase == LeaderPhase::Broadcast {
                            let c = self.last_committed;
                            self.send(from, PeerMsg::UpToDate { committed: c });
                            self.try_commit();
                        } else {
                            self.maybe_establish();
                        }
                    }
                    LearnerPhase::Active => {
                        h.acked = h.acked.max(zxid);
                        self.try_commit();
                    }
                    _ => {}
                }
            }
            PeerMsg::PingReply { durable, sessions } => {
                if let Some(h) = l.learners.get_mut(&from) {
                    if h.phase == LearnerPhase::Active {
                        h.acked = h.acked.max(durable.min(self.last_logged));
                    }
                }
                if !sessions.is_empty() {
                    self.out.push(Output::Touched(sessions));
                }
                self.try_commit();
            }
            PeerMsg::Request(req) => {
                let active = l
                    .learners
                    .get(&from)
                    .is_some_and(|h| h.phase == LearnerPhase::Active);
                if !active || l.phase != LeaderPhase::Broadcast {
                    return;
                }
                if req.op == op::SYNC {
                    // Answer once everything proposed so far has committed.
                    let z = self.last_logged;
                    if self.last_committed >= z {
                        self.send(
                            from,
                            PeerMsg::SyncDone {
                                session_id: req.session_id,
                                cxid: req.cxid,
                            },
                        );
                    } else {
                        l.pending_syncs
                            .push_back((from, req.session_id, req.cxid, z));
                    }
                } else {
                    self.out.push(Output::Request { from, req });
                }
            }
            _ => {}
        }
    }

    /// Discovery: once a majority (the leader included) has sent FOLLOWERINFO, the new
    /// epoch is one above every accepted epoch among them.
    fn maybe_choose_epoch(&mut self) {
        let quorum = self.cfg.quorum();
        let my_accepted = self.accepted_epoch.max(self.epoch_floor);
        let Some(l) = self.leader.as_mut() else {
            return;
        };
        if l.new_epoch != 0 {
            return;
        }
        let voters: Vec<(&Sid, &LearnerHandle)> =
            l.learners.iter().filter(|(_, h)| !h.observer).collect();
        if voters.len() + 1 < quorum {
            return;
        }
        let max = voters
            .iter()
            .map(|(_, h)| h.accepted_epoch)
            .chain(std::iter::once(my_accepted))
            .max()
            .unwrap_or(0);
        let e = max + 1;
        l.new_epoch = e;
        self.accepted_epoch = e;
        self.out.push(Output::PersistAcceptedEpoch(e));
        let to: Vec<Sid> = l.learners.keys().copied().collect();
        for s in to {
            if let Some(h) = l.learners.get_mut(&s) {
                h.phase = LearnerPhase::EpochSent;
            }
            self.out.push(Output::Send {
                to: s,
                msg: PeerMsg::LeaderInfo { new_epoch: e },
            });
        }
        self.maybe_start_sync();
    }

    /// Once a majority acknowledged the new epoch, it becomes the current epoch and every
    /// learner that acked is synchronized.
    fn maybe_start_sync(&mut self) {
        let quorum = self.cfg.quorum();
        let Some(l) = self.leader.as_mut() else {
            return;
        };
        if l.phase != LeaderPhase::Discovery || l.new_epoch == 0 {
            return;
        }
        // Only a voter that accepted the epoch from us counts (its FOLLOWERINFO reported an
        // older one): a voter that had accepted it already did so for another leader that
        // chose the same epoch, and counting it twice lets both get established in it
        // (ZooKeeper's follower acks with -1 then; `an_epoch_accepted_before_...` below).
        // It is still synchronized once a majority of fresh acks is in.
        let e = l.new_epoch;
        let acked = l
            .learners
            .values()
            .filter(|h| h.phase == LearnerPhase::EpochAcked && !h.observer)
            .filter(|h| h.accepted_epoch < e)
            .count();
        if acked + 1 < quorum {
            return;
        }
        l.phase = LeaderPhase::Sync;
        l.newleader_zxid = self.last_logged;
        let ready: Vec<Sid> = l
            .learners
            .iter()
            .filter(|(_, h)| h.phase == LearnerPhase::EpochAcked)
            .map(|(s, _)| *s)
            .collect();
        for s in ready {
            self.sync_learner(s);
        }
        self.maybe_establish();
    }

    /// Sends a learner what it lacks — DIFF, TRUNC then DIFF, or SNAP — then NEWLEADER.
    fn sync_learner(&mut self, sid: Sid) {
        let Some(l) = self.leader.as_mut() else {
            return;
        };
        let Some(h) = l.learners.get_mut(&sid) else {
            return;
        };
        let f = h.last_zxid;
        h.phase = LearnerPhase::Syncing;
        let epoch = l.new_epoch;
        let last = self.last_logged;
        let committed = self.last_committed;
        let in_history =
            |z: i64| self.history_base == Some(z) || self.history.iter().any(|(hz, _)| *hz == z);
        let first = self.history.front().map(|(z, _)| *z);
        // From which zxid on the learner needs our proposals, and how it gets there.
        let from_zxid;
        if f == last || in_history(f) {
            // DIFF names the zxid it continues from, so that the learner can tell it is
            // the answer to its current FOLLOWERINFO (see the learner's DIFF handler).
            self.out.push(Output::Send {
                to: sid,
                msg: PeerMsg::Diff { zxid: f },
            });
            from_zxid = f;
        } else if f > last || first.is_some_and(|fz| f > fz) {
            // The learner has txns we do not: cut it back to the last one we share.
            let t = self
                .history
                .iter()
                .map(|(z, _)| *z)
                .chain(self.history_base)
                .filter(|z| *z < f)
                .max();
            match t {
                Some(t) => {
                    self.out.push(Output::Send {
                        to: sid,
                        msg: PeerMsg::Trunc { zxid: t },
                    });
                    from_zxid = t;
                }
                None => {
                    self.out.push(Output::SendSnapshot {
                        to: sid,
                        zxid: committed,
                    });
                    from_zxid = committed;
                }
            }
        } else {
            self.out.push(Output::SendSnapshot {
                to: sid,
                zxid: committed,
            });
            from_zxid = committed;
        }
        let missing: Vec<(i64, Arc<[u8]>)> = self
            .history
            .iter()
            .filter(|(z, _)| *z > from_zxid)
            .cloned()
            .collect();
        for (zxid, txn) in missing {
            self.out.push(Output::Send {
                to: sid,
                msg: PeerMsg::Proposal {
                    zxid,
                    txn: txn.to_vec(),
                },
            });
        }
        if committed > from_zxid {
            self.out.push(Output::Send {
                to: sid,
                msg: PeerMsg::Commit { zxid: committed },
            });
        }
        let secret = self.secret.clone();
        self.out.push(Output::Send {
            to: sid,
            msg: PeerMsg::NewLeader {
                epoch,
                zxid: last,
                secret,
            },
        });
    }

    /// A majority of voters acked NEWLEADER (and our own log is durable up to it): the
    /// epoch is established, the whole history committed, and clients are served.
    fn maybe_establish(&mut self) {
        let quorum = self.cfg.quorum();
        let durable = self.last_durable;
        let Some(l) = self.leader.as_mut() else {
            return;
        };
        if l.phase != LeaderPhase::Sync || durable < l.newleader_zxid {
            return;
        }
        // The new epoch becomes our current epoch only now that our log is durable up to
        // NEWLEADER, for the reason a learner waits too (`newleader_durable`): a leader that
        // crashed with the epoch on disk but not the log it synchronized everyone with would
        // win the next election and truncate committed txns (found by src/sim).
        if self.current_epoch < l.new_epoch {
            self.current_epoch = l.new_epoch;
            self.out.push(Output::PersistCurrentEpoch(l.new_epoch));
        }
        let acked = l
            .learners
            .values()
            .filter(|h| h.phase == LearnerPhase::Active && !h.observer)
            .count();
        if acked + 1 < quorum {
            return;
        }
        l.phase = LeaderPhase::Broadcast;
        let e = l.new_epoch;
        // Answer looking servers with the epoch we lead now, as the learners will once
        // synchronized (ZooKeeper's updateElectionVote): a joining server follows only a
        // majority agreeing on leader and epoch.
        if let Some(d) = self.decided.as_mut() {
            d.vote.peer_epoch = e;
        }
        let upto = self.last_logged;
        if upto > self.last_committed {
            self.last_committed = upto;
            self.out.push(Output::Commit { zxid: upto });
        }
        let active: Vec<Sid> = l
            .learners
            .iter()
            .filter(|(_, h)| h.phase == LearnerPhase::Active)
            .map(|(s, _)| *s)
            .collect();
        for s in active {
            self.out.push(Output::Send {
                to: s,
                msg: PeerMsg::UpToDate { committed: upto },
            });
        }
        self.log(format!(
            "Have quorum of supporters; starting up and setting last processed zxid: {}",
            hex(upto)
        ));
        self.out.push(Output::Serving { on: true, epoch: e });
    }

    /// The commit point: the highest zxid a majority of voters (the leader included) has
    /// durably logged.
    fn try_commit(&mut self) {
        let quorum = self.cfg.quorum();
        let Some(l) = self.leader.as_mut() else {
            return;
        };
        if l.phase != LeaderPhase::Broadcast {
            return;
        }
        let mut acks: Vec<i64> = std::iter::once(self.last_durable)
            .chain(
                l.learners
                    .values()
                    .filter(|h| h.phase == LearnerPhase::Active && !h.observer)
                    .map(|h| h.acked),
            )
            .collect();
        if acks.len() < quorum {
            return;
        }
        acks.sort_unstable_by(|a, b| b.cmp(a));
        let c = acks[quorum - 1].min(self.last_logged);
        if c <= self.last_committed {
            return;
        }
        self.last_committed = c;
        self.out.push(Output::Commit { zxid: c });
        let to = forwarding_set(l);
        for s in to {
            self.out.push(Output::Send {
                to: s,
                msg: PeerMsg::Commit { zxid: c },
            });
        }
        while l.pending_syncs.front().is_some_and(|p| p.3 <= c) {
            let (sid, session_id, cxid, _) = l.pending_syncs.pop_front().expect("checked");
            self.out.push(Output::Send {
                to: sid,
                msg: PeerMsg::SyncDone { session_id, cxid },
            });
        }
    }

    fn remember(&mut self, zxid: i64, txn: Arc<[u8]>) {
        self.history.push_back((zxid, txn));
        while self.history.len() > self.history_max {
            if let Some((z, _)) = self.history.pop_front() {
                self.history_base = Some(z);
            }
        }
    }

    /// The leader's server logged a new txn: propose it to every learner in sync or broadcast.
    fn logged(&mut self, zxid: i64, txn: Vec<u8>) {
        if self.role != Role::Leading || zxid <= self.last_logged {
            return;
        }
        let txn: Arc<[u8]> = Arc::from(txn);
        self.last_logged = zxid;
        self.remember(zxid, txn.clone());
        let Some(l) = self.leader.as_ref() else {
            return;
        };
        let to = forwarding_set(l);
        for s in to {
            self.out.push(Output::Send {
                to: s,
                msg: PeerMsg::Proposal {
                    zxid,
                    txn: txn.to_vec(),
                },
            });
        }
    }

    fn durable(&mut self, zxid: i64) {
        if zxid <= self.last_durable {
            return;
        }
        self.last_durable = zxid.min(self.last_logged);
        match self.role {
            Role::Leading => {
                self.maybe_establish();
                self.try_commit();
            }
            Role::Following | Role::Observing => {
                let d = self.last_durable;
                let Some(f) = self.follow.as_mut() else {
                    return;
                };
                let leader = f.leader;
                if let Some((nz, epoch)) = f.newleader_ack {
                    if d >= nz {
                        f.newleader_ack = None;
                        self.newleader_durable(leader, epoch, nz);
                    }
                } else if f.phase == FollowPhase::Broadcast && !self.cfg.is_observer() {
                    self.send(leader, PeerMsg::Ack { zxid: d });
                }
            }
            Role::Looking => {}
        }
    }

    fn forward(&mut self, req: ForwardedRequest) {
        if !self.serving() {
            return;
        }
        if let Some(leader) = self.follow.as_ref().map(|f| f.leader) {
            self.send(leader, PeerMsg::Request(req));
        }
    }

    // ---- learner ----

    fn learner_message(&mut self, msg: PeerMsg) {
        let now = self.now_ms;
        let Some(f) = self.follow.as_mut() else {
            return;
        };
        f.last_heard_ms = now;
        let leader = f.leader;
        let phase = f.phase;
        let buffering = phase == FollowPhase::Sync && !f.newleader_seen;
        match (phase, msg) {
            (FollowPhase::Discovery, PeerMsg::LeaderInfo { new_epoch }) => {
                if new_epoch < self.accepted_epoch {
                    self.go_looking(format!(
                        "Leader {leader} proposed epoch {new_epoch}, below our accepted epoch {}; going back to LOOKING",
                        self.accepted_epoch
                    ));
                    return;
                }
                if new_epoch > self.accepted_epoch {
                    self.accepted_epoch = new_epoch;
                    self.out.push(Output::PersistAcceptedEpoch(new_epoch));
                }
                f.phase = FollowPhase::Sync;
                f.phase_started_ms = now;
                let m = PeerMsg::AckEpoch {
                    current_epoch: self.current_epoch,
                    last_zxid: self.reported_zxid(),
                };
                self.send(leader, m);
            }
            // Peer links outlive a following session, so the leader may still answer a
            // FOLLOWERINFO or ACKEPOCH of an earlier session with us: a second
            // synchronization arrives after NEWLEADER (its TRUNC truncated committed txns
            // logged by the first; found by src/sim), or one computed for the log we had
            // then. Once synchronized, ignore another; NEWLEADER is acked again below.
            (
                FollowPhase::Sync,
                PeerMsg::Diff { .. } | PeerMsg::Trunc { .. } | PeerMsg::Snap { .. },
            ) if !buffering => {}
            (FollowPhase::Sync, PeerMsg::Diff { zxid }) => {
                if zxid != self.last_logged {
                    self.go_looking(format!(
                        "DIFF from {}, but our log ends at {}: an answer to an earlier FOLLOWERINFO; resynchronizing",
                        hex(zxid),
                        hex(self.last_logged)
                    ));
                    return;
                }
                self.log(format!("Getting a diff from the leader {}", hex(zxid)));
                let base = self.last_logged;
                self.start_sync(base, None);
            }
            (FollowPhase::Sync, PeerMsg::Trunc { zxid }) if !self.holds(zxid) => {
                self.go_looking(format!(
                    "Leader {leader} asks to truncate to {}, which is not in our log: an answer to an earlier FOLLOWERINFO; resynchronizing",
                    hex(zxid)
                ));
            }
            (FollowPhase::Sync, PeerMsg::Trunc { zxid }) => {
                if self.history_base.is_some_and(|b| zxid < b) {
                    // Below our snapshot: a SNAP from a leader that never got established
                    // (found by src/sim) may hold txns that a later leader truncates,
                    // and a snapshot cannot be rolled back. Keep our state and ask for a
                    // whole snapshot instead.
                    self.want_snapshot = true;
                    self.go_looking(format!(
                        "Leader {leader} asks to truncate to {}, below our snapshot {}; resynchronizing with a snapshot",
                        hex(zxid),
                        hex(self.history_base.unwrap_or(0))
                    ));
                    return;
                }
                self.log(format!(
                    "Truncating log to get in sync with the leader {}",
                    hex(zxid)
                ));
                self.history.retain(|(z, _)| *z <= zxid);
                if self.history.is_empty() && self.history_base.is_some_and(|b| b > zxid) {
                    self.history_base = None;
                }
                self.last_logged = zxid;
                self.last_durable = zxid;
                self.last_committed = self.last_committed.min(zxid);
                self.out.push(Output::Truncate { zxid });
                self.start_sync(zxid, None);
            }
            (FollowPhase::Sync, PeerMsg::Snap { zxid, snapshot }) => {
                self.log(format!("Getting a snapshot from leader {}", hex(zxid)));
                self.start_sync(zxid, Some(snapshot));
            }
            (FollowPhase::Sync, PeerMsg::Proposal { zxid, txn }) if buffering => {
                let Some(b) = self.follow.as_mut().and_then(|f| f.sync.as_mut()) else {
                    self.go_looking(format!(
                        "Proposal {} before DIFF, TRUNC or SNAP: a message was lost; resynchronizing",
                        hex(zxid)
                    ));
                    return;
                };
                let last = b.proposals.last().map_or(b.base, |(z, _)| *z);
                if zxid <= last {
                    return;
                }
                if !follows(last, zxid) {
                    self.go_looking(format!(
                        "Proposal {} does not follow {} in the synchronization: a message was lost; resynchronizing",
                        hex(zxid),
                        hex(last)
                    ));
                    return;
                }
                b.proposals.push((zxid, Arc::from(txn)));
            }
            (FollowPhase::Sync, PeerMsg::Commit { zxid }) if buffering => {
                if let Some(b) = self.follow.as_mut().and_then(|f| f.sync.as_mut()) {
                    b.committed = b.committed.max(zxid);
                }
            }
            (FollowPhase::Sync | FollowPhase::Broadcast, PeerMsg::Proposal { zxid, txn }) => {
                if zxid <= self.last_logged {
                    return;
                }
                // After NEWLEADER every proposal continues the log; one that does not means
                // messages were lost (a broken link), so resynchronize rather than log a hole.
                if !follows(self.last_logged, zxid) {
                    self.go_looking(format!(
                        "Proposal {} does not follow our last zxid {}: a message was lost; resynchronizing",
                        hex(zxid),
                        hex(self.last_logged)
                    ));
                    return;
                }
                let txn: Arc<[u8]> = Arc::from(txn);
                self.last_logged = zxid;
                self.remember(zxid, txn.clone());
                self.out.push(Output::Log { zxid, txn });
            }
            (FollowPhase::Sync | FollowPhase::Broadcast, PeerMsg::Commit { zxid }) => {
                self.commit_upto(zxid);
            }
            // The NEWLEADER of a second synchronization (see DIFF above): the leader waits
            // for its ack, which means the same as the first one's.
            (FollowPhase::Sync, PeerMsg::NewLeader { epoch, zxid, .. }) if !buffering => {
                if epoch != self.accepted_epoch {
                    self.go_looking(format!(
                        "NEWLEADER for epoch {epoch} but we accepted {}",
                        self.accepted_epoch
                    ));
                    return;
                }
                let upto = zxid.min(self.last_logged);
                let pending = self.follow.as_ref().and_then(|f| f.newleader_ack);
                match pending {
                    None if self.last_durable >= upto => {
                        self.newleader_durable(leader, epoch, upto)
                    }
                    _ => {
                        let nz = pending.map_or(upto, |(p, _)| p.max(upto));
                        if let Some(f) = self.follow.as_mut() {
                            f.newleader_ack = Some((nz, epoch));
                        }
                    }
                }
            }
            (
                FollowPhase::Sync,
                PeerMsg::NewLeader {
                    epoch,
                    zxid,
                    secret,
                },
            ) => {
                if epoch != self.accepted_epoch {
                    self.go_looking(format!(
                        "NEWLEADER for epoch {epoch} but we accepted {}",
                        self.accepted_epoch
                    ));
                    return;
                }
                if !secret.is_empty() && secret != self.secret {
                    self.secret = secret.clone();
                    self.out.push(Output::AdoptSecret(secret));
                }
                let Some(b) = self.follow.as_mut().and_then(|f| {
                    f.newleader_seen = true;
                    f.sync.take()
                }) else {
                    self.go_looking("NEWLEADER before DIFF, TRUNC or SNAP; resynchronizing".into());
                    return;
                };
                if let Some(snapshot) = b.snapshot {
                    self.want_snapshot = false;
                    self.history.clear();
                    self.history_base = Some(b.base);
                    self.last_logged = b.base;
                    self.last_durable = b.base;
                    self.last_committed = b.base;
                    self.out.push(Output::InstallSnapshot {
                        zxid: b.base,
                        snapshot,
                    });
                }
                for (z, txn) in b.proposals {
                    self.last_logged = z;
                    self.remember(z, txn.clone());
                    self.out.push(Output::Log { zxid: z, txn });
                }
                self.commit_upto(b.committed);
                if self.last_logged != zxid {
                    self.go_looking(format!(
                        "NEWLEADER {} but the synchronization brought us to {}; resynchronizing",
                        hex(zxid),
                        hex(self.last_logged)
                    ));
                    return;
                }
                let upto = zxid;
                if self.last_durable >= upto {
                    self.newleader_durable(leader, epoch, upto);
                } else if let Some(f) = self.follow.as_mut() {
                    f.newleader_ack = Some((upto, epoch));
                }
            }
            (FollowPhase::Sync, PeerMsg::UpToDate { committed }) => {
                if let Some(f) = self.follow.as_mut() {
                    f.phase = FollowPhase::Broadcast;
                }
                // As the leader does once established (see maybe_establish).
                if let Some(d) = self.decided.as_mut() {
                    d.vote.peer_epoch = self.current_epoch;
                }
                self.commit_upto(committed);
                self.out.push(Output::Serving {
                    on: true,
                    epoch: self.current_epoch,
                });
            }
            (
                FollowPhase::Broadcast,
                PeerMsg::Ping {
                    committed,
                    last_proposed,
                },
            ) => {
                if last_proposed > self.last_logged {
                    self.go_looking(format!(
                        "Leader has proposed up to {} but we only have {}: a proposal was lost; resynchronizing",
                        hex(last_proposed),
                        hex(self.last_logged)
                    ));
                    return;
                }
                self.commit_upto(committed);
                let sessions = std::mem::take(&mut self.touched);
                let durable = if self.cfg.is_observer() {
                    0
                } else {
                    self.last_durable
                };
                self.send(leader, PeerMsg::PingReply { durable, sessions });
            }
            (FollowPhase::Sync, PeerMsg::Ping { .. }) => {}
            (FollowPhase::Broadcast, PeerMsg::SyncDone { session_id, cxid }) => {
                self.out.push(Output::SyncDone { session_id, cxid });
            }
            // Anything else is a leftover of an earlier exchange with this leader (links keep
            // order, so it was sent before what we wait for now): ignore it.
            _ => {}
        }
    }

    /// Whether our log holds `zxid`, as far as we know it: a TRUNC to a point we lack was
    /// computed for another log (a truncation below the history base is handled apart).
    fn holds(&self, zxid: i64) -> bool {
        let known_from = self
            .history_base
            .or_else(|| self.history.front().map(|(z, _)| *z));
        if zxid > self.last_logged {
            return false;
        }
        if !known_from.is_some_and(|k| zxid > k) {
            return true;
        }
        self.history.iter().any(|(z, _)| *z == zxid)
    }

    fn start_sync(&mut self, base: i64, snapshot: Option<Vec<u8>>) {
        let committed = self.last_committed;
        if let Some(f) = self.follow.as_mut() {
            f.sync = Some(SyncBuffer {
                base,
                snapshot,
                proposals: Vec::new(),
                committed,
            });
        }
    }

    /// The log the leader synchronized us with is durable: only now may its epoch become our
    /// current epoch, since the current epoch ranks our vote above every server of an older
    /// epoch. Persisted before the synchronization's txns were, a crash in between would
    /// leave a short log with a new epoch, and that server could win an election and
    /// truncate committed txns (ZOOKEEPER-4643; found by src/sim).
    fn newleader_durable(&mut self, leader: Sid, epoch: u64, upto: i64) {
        self.current_epoch = epoch;
        self.out.push(Output::PersistCurrentEpoch(epoch));
        self.send(leader, PeerMsg::Ack { zxid: upto });
    }

    fn commit_upto(&mut self, zxid: i64) {
        let c = zxid.min(self.last_logged);
        if c > self.last_committed {
            self.last_committed = c;
            self.out.push(Output::Commit { zxid: c });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five servers and the messages between them, delivered only when a test says so.
    struct Net {
        z: Vec<Zab>,
        queues: BTreeMap<(Sid, Sid), VecDeque<PeerMsg>>,
    }

    impl Net {
        fn new() -> Net {
            let z = (1..=5)
                .map(|sid| {
                    let cfg = ZabConfig {
                        my_sid: sid,
                        voters: (1..=5).collect(),
                        observers: BTreeSet::new(),
                        tick_ms: 100,
                        init_limit: 10,
                        sync_limit: 5,
                    };
                    Zab::new(cfg, Durable::default(), 0)
                })
                .collect();
            let mut n = Net {
                z,
                queues: BTreeMap::new(),
            };
            for sid in 1..=5 {
                n.collect(sid);
            }
            n.queues.clear();
            n
        }

        fn at(&mut self, sid: Sid) -> &mut Zab {
            &mut self.z[sid as usize - 1]
        }

        /// Queues what `sid` wants sent on the quorum port.
        fn collect(&mut self, sid: Sid) {
            for o in self.at(sid).take_outputs() {
                // Elections are decided by hand here: notifications are not delivered.
                if let Output::Send { to, msg } = o {
                    if msg.port() == crate::proto::peer::Port::Quorum {
                        self.queues.entry((sid, to)).or_default().push_back(msg);
                    }
                }
            }
        }

        /// Delivers up to `n` queued messages from `from` to `to`.
        fn deliver(&mut self, from: Sid, to: Sid, n: usize) {
            for _ in 0..n {
                let Some(msg) = self.queues.get_mut(&(from, to)).and_then(|q| q.pop_front()) else {
                    return;
                };
                self.at(to).step(Input::Message { from, msg }, 1);
                self.collect(to);
            }
        }

        /// Delivers everything between `a` and `b`, both ways, until nothing is left.
        fn settle(&mut self, a: Sid, b: Sid) {
            while self.queues.get(&(a, b)).is_some_and(|q| !q.is_empty())
                || self.queues.get(&(b, a)).is_some_and(|q| !q.is_empty())
            {
                self.deliver(a, b, usize::MAX);
                self.deliver(b, a, usize::MAX);
            }
        }

        /// The link from `from` to `to` breaks: what is queued is lost, and `from` is told.
        fn break_link(&mut self, from: Sid, to: Sid) {
            self.queues.remove(&(from, to));
            self.at(from).step(Input::LinkReset { sid: to }, 1);
            self.collect(from);
        }

        /// `sid`'s election ends with `leader` (as overlapping elections can end).
        fn decide(&mut self, sid: Sid, leader: Sid) {
            self.at(sid).decided(Decision {
                vote: Vote {
                    leader,
                    zxid: 0,
                    peer_epoch: 0,
                },
                election_epoch: 1,
            });
            self.collect(sid);
        }
    }

    /// Two servers that both believe they lead (their elections overlapped) choose the same
    /// epoch. Follower 3 accepts it from leader 1, then, before 1's NEWLEADER reaches it,
    /// returns to leader 2: an ACKEPOCH of an epoch it had already accepted must not count
    /// for 2, or 2 gets established in epoch 1 with 3 and 5 while 1 can still be, with 4
    /// and 5, and both number different txns alike. ZooKeeper's follower acks such an epoch
    /// with -1 for this reason.
    #[test]
    fn an_epoch_accepted_before_does_not_count_for_a_second_leader() {
        let mut n = Net::new();
        n.decide(1, 1);
        n.decide(2, 2);
        // 2 chooses epoch 1 from the FOLLOWERINFOs of 3 and 5; 5 accepts it; 2's
        // LEADERINFO to 3 is lost.
        n.decide(3, 2);
        n.decide(5, 2);
        n.deliver(3, 2, 1);
        n.deliver(5, 2, 1);
        assert_eq!(n.at(2).accepted_epoch, 1);
        n.queues.remove(&(2, 3));
        n.settle(2, 5);
        // 3 and 4 follow 1, which chooses epoch 1 too; both accept it and 1 synchronizes.
        n.break_link(3, 2);
        n.decide(3, 1);
        n.decide(4, 1);
        n.deliver(3, 1, 1);
        n.deliver(4, 1, 1);
        n.deliver(1, 3, 1); // LEADERINFO; the rest to 3 is lost below
        n.deliver(3, 1, 1); // ACKEPOCH
        n.settle(1, 4);
        assert_eq!(n.at(3).accepted_epoch, 1);
        // 3 returns to 2, which still waits in discovery for a majority of epoch acks.
        n.queues.remove(&(1, 3));
        n.break_link(3, 1);
        n.decide(3, 2);
        n.settle(2, 3);
        n.settle(2, 5);
        // 5 moves on to 1, which is synchronizing 4.
        n.break_link(5, 2);
        n.decide(5, 1);
        n.settle(1, 5);
        let (one, two) = (n.at(1).established_epoch(), n.at(2).established_epoch());
        assert!(
            one.is_none() || two.is_none(),
            "servers 1 and 2 both lead epoch {one:?}"
        );
        assert_eq!(one, Some(1));
    }
}
