//! Messages between the servers of an ensemble: FastLeaderElection notifications on the
//! election port, and the Zab packets of discovery, synchronization and broadcast on the
//! quorum port. Pure: bytes in, values out; never panics on hostile input. The packet names
//! are ZooKeeper's (FOLLOWERINFO, LEADERINFO, ACKEPOCH, DIFF, TRUNC, SNAP, NEWLEADER,
//! UPTODATE, PROPOSAL, ACK, COMMIT, PING, REQUEST, SYNC); the encoding is zk's own, since a
//! zk ensemble never mixes with Apache servers.
//!
//! Grammar (integers big-endian; `buffer` and `ustring` as jute writes them):
//! ```text
//! msg          := kind:u8 body
//! notification := 1 leader:i64 zxid:i64 peer_epoch:i64 election_epoch:i64 state:u8
//! followerinfo := 2 accepted_epoch:i64 last_zxid:i64 observer:u8
//! leaderinfo   := 3 new_epoch:i64
//! ackepoch     := 4 current_epoch:i64 last_zxid:i64
//! diff         := 5 zxid:i64
//! trunc        := 6 zxid:i64
//! snap         := 7 zxid:i64 snapshot:buffer
//! proposal     := 8 zxid:i64 txn:buffer
//! commit       := 9 zxid:i64
//! newleader    := 10 epoch:i64 zxid:i64 secret:buffer
//! ack          := 11 zxid:i64
//! uptodate     := 12 committed:i64
//! ping         := 13 committed:i64 last_proposed:i64
//! pingreply    := 14 durable:i64 count:i32 session:i64*
//! request      := 15 session:i64 cxid:i32 op:i32 body:buffer count:i32 (scheme:ustring id:ustring)*
//! syncdone     := 16 session:i64 cxid:i32
//! ```
//!
//! DIFF's zxid is the zxid the diff continues from (the proposals after it follow). A
//! last_zxid of -1 in FOLLOWERINFO or ACKEPOCH asks the leader for a SNAP (a learner told to
//! truncate below its own snapshot). NEWLEADER's zxid is where synchronization ends.

use super::jute::{DResult, DecodeError, Reader, Writer};
use super::records::Id;

/// A server's id (the number in `server.N` and the myid file).
pub type Sid = u64;

/// FastLeaderElection's vote: who should lead, and how up to date that server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    pub leader: Sid,
    pub zxid: i64,
    pub peer_epoch: u64,
}

impl Vote {
    /// The total order votes are compared by: epoch, then zxid, then server id.
    pub fn key(&self) -> (u64, i64, Sid) {
        (self.peer_epoch, self.zxid, self.leader)
    }
}

/// What a server is doing, as its notifications say (ZooKeeper's ServerState).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    Looking,
    Following,
    Leading,
    Observing,
}

impl PeerState {
    fn code(self) -> u8 {
        match self {
            PeerState::Looking => 0,
            PeerState::Following => 1,
            PeerState::Leading => 2,
            PeerState::Observing => 3,
        }
    }

    fn from_code(c: u8) -> DResult<PeerState> {
        Ok(match c {
            0 => PeerState::Looking,
            1 => PeerState::Following,
            2 => PeerState::Leading,
            3 => PeerState::Observing,
            other => return Err(DecodeError::BadValue("peer state", other as i64)),
        })
    }
}

/// A client request a learner forwards to the leader: the session, its cxid, the opcode, the
/// request body as the client sent it (after the header), and the connection's auth ids
/// (prep checks ACLs against them). Sessions use op CREATE_SESSION (-10, body = timeout) and
/// CLOSE_SESSION.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedRequest {
    pub session_id: i64,
    pub cxid: i32,
    pub op: i32,
    pub body: Vec<u8>,
    pub auth: Vec<Id>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMsg {
    Notification {
        vote: Vote,
        election_epoch: u64,
        state: PeerState,
    },
    FollowerInfo {
        accepted_epoch: u64,
        last_zxid: i64,
        observer: bool,
    },
    LeaderInfo {
        new_epoch: u64,
    },
    AckEpoch {
        current_epoch: u64,
        last_zxid: i64,
    },
    Diff {
        zxid: i64,
    },
    Trunc {
        zxid: i64,
    },
    Snap {
        zxid: i64,
        snapshot: Vec<u8>,
    },
    Proposal {
        zxid: i64,
        txn: Vec<u8>,
    },
    Commit {
        zxid: i64,
    },
    NewLeader {
        epoch: u64,
        zxid: i64,
        secret: Vec<u8>,
    },
    /// Cumulative: the learner has durably logged every txn up to `zxid`.
    Ack {
        zxid: i64,
    },
    UpToDate {
        committed: i64,
    },
    Ping {
        committed: i64,
        last_proposed: i64,
    },
    PingReply {
        durable: i64,
        sessions: Vec<i64>,
    },
    Request(ForwardedRequest),
    SyncDone {
        session_id: i64,
        cxid: i32,
    },
}

/// Which port a message travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    Quorum,
    Election,
}

impl PeerMsg {
    pub fn port(&self) -> Port {
        match self {
            PeerMsg::Notification { .. } => Port::Election,
            _ => Port::Quorum,
        }
    }

    /// ZooKeeper's name for the packet, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            PeerMsg::Notification { .. } => "NOTIFICATION",
            PeerMsg::FollowerInfo { .. } => "FOLLOWERINFO",
            PeerMsg::LeaderInfo { .. } => "LEADERINFO",
            PeerMsg::AckEpoch { .. } => "ACKEPOCH",
            PeerMsg::Diff { .. } => "DIFF",
            PeerMsg::Trunc { .. } => "TRUNC",
            PeerMsg::Snap { .. } => "SNAP",
            PeerMsg::Proposal { .. } => "PROPOSAL",
            PeerMsg::Commit { .. } => "COMMIT",
            PeerMsg::NewLeader { .. } => "NEWLEADER",
            PeerMsg::Ack { .. } => "ACK",
            PeerMsg::UpToDate { .. } => "UPTODATE",
            PeerMsg::Ping { .. } => "PING",
            PeerMsg::PingReply { .. } => "PINGREPLY",
            PeerMsg::Request(_) => "REQUEST",
            PeerMsg::SyncDone { .. } => "SYNC",
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.buf
    }

    pub fn write(&self, w: &mut Writer) {
        match self {
            PeerMsg::Notification {
                vote,
                election_epoch,
                state,
            } => {
                w.u8(1)
                    .i64(vote.leader as i64)
                    .i64(vote.zxid)
                    .i64(vote.peer_epoch as i64)
                    .i64(*election_epoch as i64)
                    .u8(state.code());
            }
            PeerMsg::FollowerInfo {
                accepted_epoch,
                last_zxid,
                observer,
            } => {
                w.u8(2)
                    .i64(*accepted_epoch as i64)
                    .i64(*last_zxid)
                    .bool(*observer);
            }
            PeerMsg::LeaderInfo { new_epoch } => {
                w.u8(3).i64(*new_epoch as i64);
            }
            PeerMsg::AckEpoch {
                current_epoch,
                last_zxid,
            } => {
                w.u8(4).i64(*current_epoch as i64).i64(*last_zxid);
            }
            PeerMsg::Diff { zxid } => {
                w.u8(5).i64(*zxid);
            }
            PeerMsg::Trunc { zxid } => {
                w.u8(6).i64(*zxid);
            }
            PeerMsg::Snap { zxid, snapshot } => {
                w.u8(7).i64(*zxid).buffer(Some(snapshot));
            }
            PeerMsg::Proposal { zxid, txn } => {
                w.u8(8).i64(*zxid).buffer(Some(txn));
            }
            PeerMsg::Commit { zxid } => {
                w.u8(9).i64(*zxid);
            }
            PeerMsg::NewLeader {
                epoch,
                zxid,
                secret,
            } => {
                w.u8(10).i64(*epoch as i64).i64(*zxid).buffer(Some(secret));
            }
            PeerMsg::Ack { zxid } => {
                w.u8(11).i64(*zxid);
            }
            PeerMsg::UpToDate { committed } => {
                w.u8(12).i64(*committed);
            }
            PeerMsg::Ping {
                committed,
                last_proposed,
            } => {
                w.u8(13).i64(*committed).i64(*last_proposed);
            }
            PeerMsg::PingReply { durable, sessions } => {
                w.u8(14).i64(*durable).i32(sessions.len() as i32);
                for s in sessions {
                    w.i64(*s);
                }
            }
            PeerMsg::Request(r) => {
                w.u8(15)
                    .i64(r.session_id)
                    .i32(r.cxid)
                    .i32(r.op)
                    .buffer(Some(&r.body))
                    .i32(r.auth.len() as i32);
                for id in &r.auth {
                    w.string(&id.scheme).string(&id.id);
                }
            }
            PeerMsg::SyncDone { session_id, cxid } => {
                w.u8(16).i64(*session_id).i32(*cxid);
            }
        }
    }

    /// Decodes one message; trailing bytes are an error.
    pub fn decode(buf: &[u8]) -> DResult<PeerMsg> {
        let mut r = Reader::new(buf);
        let m = Self::read(&mut r)?;
        if !r.is_empty() {
            return Err(DecodeError::BadLength(r.remaining() as i64));
        }
        Ok(m)
    }

    fn read(r: &mut Reader) -> DResult<PeerMsg> {
        let epoch = |r: &mut Reader| -> DResult<u64> {
            let e = r.i64()?;
            if e < 0 {
                return Err(DecodeError::BadValue("epoch", e));
            }
            Ok(e as u64)
        };
        let bytes = |r: &mut Reader| -> DResult<Vec<u8>> {
            r.buffer()?.ok_or(DecodeError::BadValue("null buffer", -1))
        };
        Ok(match r.u8()? {
            1 => {
                let leader = r.i64()?;
                if leader < 0 {
                    return Err(DecodeError::BadValue("sid", leader));
                }
                PeerMsg::Notification {
                    vote: Vote {
                        leader: leader as u64,
                        zxid: r.i64()?,
                        peer_epoch: epoch(r)?,
                    },
                    election_epoch: epoch(r)?,
                    state: PeerState::from_code(r.u8()?)?,
                }
            }
            2 => PeerMsg::FollowerInfo {
                accepted_epoch: epoch(r)?,
                last_zxid: r.i64()?,
                observer: r.bool()?,
            },
            3 => PeerMsg::LeaderInfo {
                new_epoch: epoch(r)?,
            },
            4 => PeerMsg::AckEpoch {
                current_epoch: epoch(r)?,
                last_zxid: r.i64()?,
            },
            5 => PeerMsg::Diff { zxid: r.i64()? },
            6 => PeerMsg::Trunc { zxid: r.i64()? },
            7 => PeerMsg::Snap {
                zxid: r.i64()?,
                snapshot: bytes(r)?,
            },
            8 => PeerMsg::Proposal {
                zxid: r.i64()?,
                txn: bytes(r)?,
            },
            9 => PeerMsg::Commit { zxid: r.i64()? },
            10 => PeerMsg::NewLeader {
                epoch: epoch(r)?,
                zxid: r.i64()?,
                secret: bytes(r)?,
            },
            11 => PeerMsg::Ack { zxid: r.i64()? },
            12 => PeerMsg::UpToDate {
                committed: r.i64()?,
            },
            13 => PeerMsg::Ping {
                committed: r.i64()?,
                last_proposed: r.i64()?,
            },
            14 => {
                let durable = r.i64()?;
                let n = r.vec_len(8)?.unwrap_or(0);
                let mut sessions = Vec::with_capacity(n);
                for _ in 0..n {
                    sessions.push(r.i64()?);
                }
                PeerMsg::PingReply { durable, sessions }
            }
            15 => {
                let session_id = r.i64()?;
                let cxid = r.i32()?;
                let op = r.i32()?;
                let body = bytes(r)?;
                let n = r.vec_len(8)?.unwrap_or(0);
                let mut auth = Vec::with_capacity(n);
                for _ in 0..n {
                    let scheme = r.string()?;
                    let id = r.string()?;
                    auth.push(Id { scheme, id });
                }
                PeerMsg::Request(ForwardedRequest {
                    session_id,
                    cxid,
                    op,
                    body,
                    auth,
                })
            }
            16 => PeerMsg::SyncDone {
                session_id: r.i64()?,
                cxid: r.i32()?,
            },
            other => return Err(DecodeError::BadValue("peer message kind", other as i64)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<PeerMsg> {
        vec![
            PeerMsg::Notification {
                vote: Vote {
                    leader: 3,
                    zxid: 0x1_0000_0005,
                    peer_epoch: 1,
                },
                election_epoch: 7,
                state: PeerState::Following,
            },
            PeerMsg::FollowerInfo {
                accepted_epoch: 2,
                last_zxid: 9,
                observer: true,
            },
            PeerMsg::LeaderInfo { new_epoch: 3 },
            PeerMsg::AckEpoch {
                current_epoch: 2,
                last_zxid: 8,
            },
            PeerMsg::Diff { zxid: 5 },
            PeerMsg::Trunc { zxid: 4 },
            PeerMsg::Snap {
                zxid: 4,
                snapshot: vec![1, 2, 3],
            },
            PeerMsg::Proposal {
                zxid: 6,
                txn: vec![9; 40],
            },
            PeerMsg::Commit { zxid: 6 },
            PeerMsg::NewLeader {
                epoch: 3,
                zxid: 6,
                secret: vec![7; 32],
            },
            PeerMsg::Ack { zxid: 6 },
            PeerMsg::UpToDate { committed: 6 },
            PeerMsg::Ping {
                committed: 6,
                last_proposed: 7,
            },
            PeerMsg::PingReply {
                durable: 6,
                sessions: vec![1, -2],
            },
            PeerMsg::Request(ForwardedRequest {
                session_id: 11,
                cxid: 12,
                op: 1,
                body: vec![0, 1],
                auth: vec![Id::new("ip", "127.0.0.1")],
            }),
            PeerMsg::SyncDone {
                session_id: 11,
                cxid: 13,
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for m in all() {
            let b = m.encode();
            assert_eq!(PeerMsg::decode(&b), Ok(m.clone()), "{}", m.name());
            // Every strict prefix fails to decode rather than panicking or succeeding.
            for cut in 0..b.len() {
                assert!(
                    PeerMsg::decode(&b[..cut]).is_err(),
                    "{} cut at {cut}",
                    m.name()
                );
            }
        }
    }

    #[test]
    fn notification_bytes_are_stable() {
        let m = PeerMsg::Notification {
            vote: Vote {
                leader: 1,
                zxid: 2,
                peer_epoch: 3,
            },
            election_epoch: 4,
            state: PeerState::Looking,
        };
        let mut want = vec![1u8];
        for v in [1i64, 2, 3, 4] {
            want.extend_from_slice(&v.to_be_bytes());
        }
        want.push(0);
        assert_eq!(m.encode(), want);
    }

    #[test]
    fn hostile_bytes_are_errors() {
        assert!(PeerMsg::decode(&[]).is_err());
        assert!(PeerMsg::decode(&[99]).is_err());
        // A negative epoch, an unknown state, a huge count.
        let mut b = vec![3u8];
        b.extend_from_slice(&(-1i64).to_be_bytes());
        assert!(PeerMsg::decode(&b).is_err());
        let mut b = PeerMsg::Notification {
            vote: Vote {
                leader: 1,
                zxid: 2,
                peer_epoch: 3,
            },
            election_epoch: 4,
            state: PeerState::Looking,
        }
        .encode();
        *b.last_mut().unwrap() = 9;
        assert!(PeerMsg::decode(&b).is_err());
        let mut b = vec![14u8];
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(PeerMsg::decode(&b).is_err());
    }
}
