//! FastLeaderElection as a pure state machine: votes ordered by peer epoch, then zxid, then
//! server id; a logical clock (the election epoch) that restarts rounds; a majority of
//! voters agreeing on one vote to finish, after a short wait for a better vote; and the
//! out-of-election path by which a server that (re)starts while an ensemble is running
//! learns the established leader from the notifications of servers already following or
//! leading it. Observers never vote and are never counted; they only learn the leader.
//! Corresponds to Apache ZooKeeper's FastLeaderElection.lookForLeader and its WorkerReceiver.

use crate::proto::peer::{PeerMsg, PeerState, Sid, Vote};
use std::collections::{BTreeSet, HashMap};

/// How long a server that sees a majority agree keeps listening for a better vote
/// (ZooKeeper's finalizeWait).
pub const FINALIZE_WAIT_MS: u64 = 200;
/// The first and the largest interval between re-sent notifications while looking
/// (ZooKeeper starts at 200 ms and doubles; zk caps lower to fail over faster).
pub const RESEND_FIRST_MS: u64 = 200;
pub const RESEND_MAX_MS: u64 = 1600;

/// What an election decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub vote: Vote,
    pub election_epoch: u64,
}

pub struct Election {
    my_sid: Sid,
    voters: BTreeSet<Sid>,
    everyone: BTreeSet<Sid>,
    /// The election epoch.
    pub logical_clock: u64,
    /// This server's current proposal (for an observer: its own, never counted).
    pub proposed: Vote,
    /// What this server would vote for itself: its own id, last zxid and current epoch.
    initial: Vote,
    /// Votes of LOOKING voters in this round, this server's own included.
    recv: HashMap<Sid, Vote>,
    /// Votes of servers already FOLLOWING or LEADING, with their election epoch and state.
    out_of_election: HashMap<Sid, (Vote, u64, PeerState)>,
    /// When a majority first agreed on `proposed` in this round.
    agreed_since_ms: Option<u64>,
    next_send_ms: u64,
    resend_ms: u64,
}

impl Election {
    pub fn new(my_sid: Sid, voters: BTreeSet<Sid>, everyone: BTreeSet<Sid>) -> Election {
        let v = Vote {
            leader: my_sid,
            zxid: 0,
            peer_epoch: 0,
        };
        Election {
            my_sid,
            voters,
            everyone,
            logical_clock: 0,
            proposed: v,
            initial: v,
            recv: HashMap::new(),
            out_of_election: HashMap::new(),
            agreed_since_ms: None,
            next_send_ms: 0,
            resend_ms: RESEND_FIRST_MS,
        }
    }

    fn is_voter(&self) -> bool {
        self.voters.contains(&self.my_sid)
    }

    fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// Starts a new round: a fresh logical clock, a vote for ourselves, sent to everyone.
    pub fn start(
        &mut self,
        last_zxid: i64,
        current_epoch: u64,
        now_ms: u64,
    ) -> Vec<(Sid, PeerMsg)> {
        self.logical_clock += 1;
        self.initial = Vote {
            leader: self.my_sid,
            zxid: last_zxid,
            peer_epoch: current_epoch,
        };
        self.proposed = self.initial;
        self.recv.clear();
        self.out_of_election.clear();
        self.agreed_since_ms = None;
        if self.is_voter() {
            self.recv.insert(self.my_sid, self.proposed);
        }
        self.resend_ms = RESEND_FIRST_MS;
        self.next_send_ms = now_ms + self.resend_ms;
        self.broadcast()
    }

    fn notification(&self, state: PeerState) -> PeerMsg {
        PeerMsg::Notification {
            vote: self.proposed,
            election_epoch: self.logical_clock,
            state,
        }
    }

    fn broadcast(&self) -> Vec<(Sid, PeerMsg)> {
        let m = self.notification(PeerState::Looking);
        self.everyone
            .iter()
            .filter(|s| **s != self.my_sid)
            .map(|s| (*s, m.clone()))
            .collect()
    }

    fn agreeing(&self, votes: impl Iterator<Item = Vote>, target: &Vote) -> usize {
        votes.filter(|v| v == target).count()
    }

    /// A notification arrived while this server is looking. Returns what to send and,
    /// when the election is over, the decision.
    pub fn on_notification(
        &mut self,
        from: Sid,
        vote: Vote,
        election_epoch: u64,
        state: PeerState,
        now_ms: u64,
        out: &mut Vec<(Sid, PeerMsg)>,
    ) -> Option<Decision> {
        if !self.everyone.contains(&from) {
            return None;
        }
        let from_voter = self.voters.contains(&from);
        match state {
            PeerState::Looking => {
                if !from_voter {
                    // An observer looking for the leader: tell it what we think.
                    out.push((from, self.notification(PeerState::Looking)));
                    return None;
                }
                if election_epoch > self.logical_clock {
                    self.logical_clock = election_epoch;
                    self.recv.clear();
                    self.agreed_since_ms = None;
                    self.proposed = if vote.key() > self.initial.key() && self.is_voter() {
                        vote
                    } else if self.is_voter() {
                        self.initial
                    } else {
                        vote
                    };
                    if self.is_voter() {
                        self.recv.insert(self.my_sid, self.proposed);
                    }
                    out.extend(self.broadcast());
                } else if election_epoch < self.logical_clock {
                    // A straggler from an older round: answer with our current vote.
                    out.push((from, self.notification(PeerState::Looking)));
                    return None;
                } else if vote.key() > self.proposed.key() {
                    self.proposed = vote;
                    self.agreed_since_ms = None;
                    if self.is_voter() {
                        self.recv.insert(self.my_sid, self.proposed);
                    }
                    out.extend(self.broadcast());
                }
                self.recv.insert(from, vote);
                if !self.is_voter() {
                    return None;
                }
                let target = self.proposed;
                let n = self.agreeing(self.recv.values().copied(), &target);
                if n >= self.quorum() {
                    if self.recv.len() == self.voters.len() && n == self.voters.len() {
                        return Some(self.decide(target));
                    }
                    self.agreed_since_ms.get_or_insert(now_ms);
                } else {
                    self.agreed_since_ms = None;
                }
                None
            }
            PeerState::Following | PeerState::Leading | PeerState::Observing => {
                if state == PeerState::Observing || !from_voter {
                    return None;
                }
                if election_epoch == self.logical_clock && self.is_voter() {
                    self.recv.insert(from, vote);
                    let n = self.agreeing(self.recv.values().copied(), &vote);
                    if n >= self.quorum() && self.check_leader(&vote, election_epoch) {
                        return Some(self.decide_with(vote, election_epoch));
                    }
                }
                self.out_of_election
                    .insert(from, (vote, election_epoch, state));
                // Servers already in an ensemble may have joined it in different rounds (one
                // that came back later decided in a later round than the others), so what
                // they must agree on is the leader and its epoch, not the round: ZooKeeper's
                // Vote.equals compares out-of-election votes that way (ZOOKEEPER-1732). Found
                // by src/sim: two followers of s4 from round 2 and s4 leading from round 3
                // never made a majority for one round, so the other two stayed LOOKING.
                let n = self
                    .out_of_election
                    .values()
                    .filter(|(v, _, _)| v.leader == vote.leader && v.peer_epoch == vote.peer_epoch)
                    .count();
                if n >= self.quorum() && self.check_leader(&vote, election_epoch) {
                    return Some(self.decide_with(vote, election_epoch));
                }
                None
            }
        }
    }

    /// A leader other than ourselves counts only once it said itself that it leads in the
    /// vote's epoch; we ourselves only if the round is ours.
    fn check_leader(&self, vote: &Vote, election_epoch: u64) -> bool {
        if vote.leader == self.my_sid {
            return election_epoch == self.logical_clock;
        }
        self.out_of_election
            .get(&vote.leader)
            .is_some_and(|(v, _, s)| *s == PeerState::Leading && v.peer_epoch == vote.peer_epoch)
    }

    fn decide(&mut self, vote: Vote) -> Decision {
        let e = self.logical_clock;
        self.decide_with(vote, e)
    }

    fn decide_with(&mut self, vote: Vote, election_epoch: u64) -> Decision {
        self.logical_clock = election_epoch;
        self.proposed = vote;
        self.agreed_since_ms = None;
        Decision {
            vote,
            election_epoch,
        }
    }

    /// Time passes while looking: re-send our vote now and then, and finish once a
    /// majority has agreed for FINALIZE_WAIT_MS without a better vote arriving.
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<(Sid, PeerMsg)>) -> Option<Decision> {
        // A majority may need no notification at all (one voter, standaloneEnabled=false).
        if self.agreed_since_ms.is_none() && self.is_voter() {
            let target = self.proposed;
            if self.agreeing(self.recv.values().copied(), &target) >= self.quorum() {
                self.agreed_since_ms = Some(now_ms);
            }
        }
        if let Some(since) = self.agreed_since_ms {
            if now_ms.saturating_sub(since) >= FINALIZE_WAIT_MS {
                let target = self.proposed;
                if self.agreeing(self.recv.values().copied(), &target) >= self.quorum() {
                    return Some(self.decide(target));
                }
                self.agreed_since_ms = None;
            }
        }
        if now_ms >= self.next_send_ms {
            self.resend_ms = (self.resend_ms * 2).min(RESEND_MAX_MS);
            self.next_send_ms = now_ms + self.resend_ms;
            out.extend(self.broadcast());
        }
        None
    }

    /// Our answer to a looking server while we follow, lead or observe.
    pub fn reply(&self, state: PeerState) -> PeerMsg {
        self.notification(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[Sid]) -> BTreeSet<Sid> {
        ids.iter().copied().collect()
    }

    /// Runs elections among `n` fresh servers over a perfect network, delivering messages
    /// in FIFO order, only among the servers in `up`; returns each decided server's leader.
    fn run(n: u64, up: &[Sid], zxids: &[i64]) -> HashMap<Sid, Sid> {
        let all = set(&(1..=n).collect::<Vec<_>>());
        let mut es: HashMap<Sid, Election> = HashMap::new();
        let mut queue: std::collections::VecDeque<(Sid, Sid, PeerMsg)> = Default::default();
        for &s in up {
            let mut e = Election::new(s, all.clone(), all.clone());
            for (to, m) in e.start(zxids[(s - 1) as usize], 0, 0) {
                queue.push_back((s, to, m));
            }
            es.insert(s, e);
        }
        let mut decided = HashMap::new();
        let mut now = 0;
        for _ in 0..10_000 {
            if let Some((from, to, m)) = queue.pop_front() {
                if decided.contains_key(&to) || !es.contains_key(&to) {
                    continue;
                }
                let PeerMsg::Notification {
                    vote,
                    election_epoch,
                    state,
                } = m
                else {
                    unreachable!()
                };
                let mut out = Vec::new();
                let e = es.get_mut(&to).unwrap();
                if let Some(d) = e.on_notification(from, vote, election_epoch, state, now, &mut out)
                {
                    decided.insert(to, d.vote.leader);
                }
                for (t, m) in out {
                    queue.push_back((to, t, m));
                }
            } else {
                now += 50;
                for (&s, e) in es.iter_mut() {
                    if decided.contains_key(&s) {
                        continue;
                    }
                    let mut out = Vec::new();
                    if let Some(d) = e.tick(now, &mut out) {
                        decided.insert(s, d.vote.leader);
                    }
                    for (t, m) in out {
                        queue.push_back((s, t, m));
                    }
                }
                if decided.len() == up.len() {
                    break;
                }
            }
        }
        decided
    }

    #[test]
    fn highest_sid_wins_among_equals() {
        let d = run(3, &[1, 2, 3], &[0, 0, 0]);
        assert_eq!(d.len(), 3);
        assert!(d.values().all(|l| *l == 3), "{d:?}");
    }

    #[test]
    fn most_up_to_date_wins() {
        let d = run(3, &[1, 2, 3], &[0, 7, 5]);
        assert!(d.values().all(|l| *l == 2), "{d:?}");
    }

    #[test]
    fn a_single_voter_elects_itself() {
        let d = run(1, &[1], &[0]);
        assert_eq!(d.get(&1), Some(&1), "{d:?}");
    }

    #[test]
    fn no_majority_no_decision() {
        let d = run(5, &[1, 2], &[0, 0, 0, 0, 0]);
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn three_of_five_elect_the_highest_present() {
        let d = run(5, &[1, 2, 3], &[0, 0, 0, 0, 0]);
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d.values().all(|l| *l == 3), "{d:?}");
    }
}
