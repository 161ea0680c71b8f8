//! The server's side of an ensemble: what changes when this server is a learner (writes,
//! session creation and closing, and sync are forwarded to the leader, and answered when
//! the leader's txn commits here; sessions are kept alive by reporting them to the leader,
//! which alone expires them) or a leader (it preps learners' forwarded requests as its own).
//! Pure, like the rest of `server`: `replica` wires it to Zab. Corresponds to Apache's
//! FollowerRequestProcessor, CommitProcessor's matching of local requests, and
//! LeaderRequestProcessor/PrepRequestProcessor for forwarded ones.

use super::{prep, Now, Origin, Pending, Reply, Server};
use crate::proto::consts::op;
use crate::proto::peer::ForwardedRequest;
use crate::proto::txn::{Txn, TxnHeader};
use crate::proto::{Code, Reader, Request, RequestHeader, Writer};
use crate::tree::DataTree;
use crate::zab::Role;

/// Sessions a learner reports per ping at most; the rest wait for the next ping.
const TOUCHED_PER_PING_MAX: usize = 100_000;

impl Server {
    /// Following or observing: writes go to the leader.
    pub fn is_learner(&self) -> bool {
        matches!(self.role, Some(Role::Following | Role::Observing))
    }

    /// Only a standalone server or an established leader expires sessions and reaps
    /// containers: both make txns.
    pub(super) fn decides_expiry(&self) -> bool {
        match self.role {
            None => true,
            Some(Role::Leading) => self.serving,
            Some(_) => false,
        }
    }

    pub(super) fn note_touch(&mut self, session_id: i64) {
        if self.is_learner() && self.touched.last() != Some(&session_id) {
            self.touched.push(session_id);
        }
    }

    /// Txns this (leading) server logged since the last call, for Zab to propose.
    pub fn take_logged(&mut self) -> Vec<(i64, Vec<u8>)> {
        std::mem::take(&mut self.logged_out)
    }

    /// Requests this learner wants forwarded to the leader.
    pub fn take_forwards(&mut self) -> Vec<ForwardedRequest> {
        std::mem::take(&mut self.forward_out)
    }

    /// Sessions kept alive here since the last call, each once.
    pub fn take_touched(&mut self) -> Vec<i64> {
        let mut t = std::mem::take(&mut self.touched);
        t.sort_unstable();
        t.dedup();
        if t.len() > TOUCHED_PER_PING_MAX {
            self.touched = t.split_off(TOUCHED_PER_PING_MAX);
        }
        t
    }

    /// The auth ids prep checks a forwarded request against.
    fn conn_auth(&self, conn: super::ConnId) -> Vec<crate::proto::Id> {
        self.auth_ids(conn).to_vec()
    }

    pub(super) fn forward_create_session(
        &mut self,
        conn: super::ConnId,
        session_id: i64,
        timeout_ms: u32,
        read_only: Option<bool>,
    ) {
        let mut w = Writer::new();
        w.i32(timeout_ms as i32);
        self.forward_out.push(ForwardedRequest {
            session_id,
            cxid: 0,
            op: op::CREATE_SESSION,
            body: w.buf,
            auth: Vec::new(),
        });
        self.forwarded.insert(
            (session_id, 0),
            Origin::Connect {
                conn,
                timeout_ms,
                read_only,
            },
        );
        if let Some(c) = self.conns.get_mut(&conn) {
            c.writes_in_flight += 1;
        }
    }

    /// A learner's write, close or sync: forward it and remember who waits.
    pub(super) fn forward_request(
        &mut self,
        conn: super::ConnId,
        session_id: i64,
        hdr: RequestHeader,
        body: &[u8],
        received: u64,
    ) {
        let origin = match hdr.op {
            op::SYNC => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.barrier = true;
                }
                let path = Reader::new(body).string().unwrap_or_default();
                Origin::Sync {
                    conn,
                    xid: hdr.xid,
                    path,
                    received_mono_ms: received,
                }
            }
            op::CLOSE_SESSION => {
                if let Some(s) = self.sessions.get_mut(session_id) {
                    s.closing = true;
                }
                Origin::CloseSession { conn, xid: hdr.xid }
            }
            code => {
                // Only the decoded request's kind matters for the reply's shape; a body that
                // does not decode is the leader's to turn into a marshalling error.
                let req = Request::read(code, &mut Reader::new(body)).unwrap_or(Request::Reconfig);
                Origin::Request {
                    conn,
                    xid: hdr.xid,
                    req,
                    received_mono_ms: received,
                }
            }
        };
        let auth = self.conn_auth(conn);
        self.forward_out.push(ForwardedRequest {
            session_id,
            cxid: hdr.xid,
            op: hdr.op,
            body: body.to_vec(),
            auth,
        });
        self.forwarded.insert((session_id, hdr.xid), origin);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.writes_in_flight += 1;
        }
    }

    /// Who waits here for a txn the leader prepped: the connection that forwarded it, or for
    /// a session closed elsewhere (expired by the leader), its connection here, to close.
    pub(super) fn remote_origin(&mut self, hdr: &TxnHeader, txn: &Txn) -> Origin {
        if let Some(o) = self.forwarded.remove(&(hdr.client_id, hdr.cxid)) {
            let fits = match (&o, txn) {
                (Origin::Connect { .. }, Txn::CreateSession { .. }) => true,
                (Origin::Connect { .. }, _) | (_, Txn::CreateSession { .. }) => false,
                _ => true,
            };
            if fits {
                return o;
            }
            self.forwarded.insert((hdr.client_id, hdr.cxid), o);
        }
        if matches!(txn, Txn::CloseSession) {
            let conn = self.sessions.get(hdr.client_id).and_then(|s| s.conn);
            return Origin::Expire { conn };
        }
        Origin::Remote
    }

    /// Learner: a proposal from the leader, logged here and applied when committed.
    pub fn proposal(&mut self, hdr: TxnHeader, txn: Txn) -> Result<(), String> {
        if let Some(sink) = self.sink.as_mut() {
            if let Err(e) = sink.append(&hdr, &txn) {
                self.stats.log_append_failures += 1;
                return Err(format!("cannot log txn 0x{:x}: {e}", hdr.zxid));
            }
        }
        self.last_logged_zxid = self.last_logged_zxid.max(hdr.zxid);
        self.pending.push_back(Pending {
            hdr,
            txn,
            origin: Origin::Remote,
        });
        Ok(())
    }

    /// Leader: a learner forwarded a client request; prep and log it like our own. The
    /// learner answers its client when the txn commits there.
    pub fn forwarded_request(&mut self, req: ForwardedRequest, now: Now) {
        let hdr = TxnHeader {
            client_id: req.session_id,
            cxid: req.cxid,
            zxid: self.last_logged_zxid + 1,
            time_ms: now.wall_ms,
        };
        match req.op {
            op::CREATE_SESSION => {
                let timeout = Reader::new(&req.body).i32().unwrap_or(0);
                let txn = Txn::CreateSession {
                    timeout_ms: timeout,
                };
                let _ = self.log_txn(hdr, txn, prep::Outstanding::new(), Origin::Internal);
                return;
            }
            op::CLOSE_SESSION => {
                if let Some(s) = self.sessions.get_mut(req.session_id) {
                    s.closing = true;
                }
                let _ = self.log_txn(
                    hdr,
                    Txn::CloseSession,
                    prep::Outstanding::new(),
                    Origin::Internal,
                );
                return;
            }
            _ => {}
        }
        let alive = self
            .sessions
            .get(req.session_id)
            .is_some_and(|s| !s.closing);
        if alive {
            self.sessions.touch(req.session_id, now.mono_ms);
        }
        let (txn, changes) = if !alive {
            (
                Txn::Error {
                    err: Code::SessionExpired.code(),
                },
                prep::Outstanding::new(),
            )
        } else {
            match Request::read(req.op, &mut Reader::new(&req.body)) {
                Err(_) => (
                    Txn::Error {
                        err: Code::MarshallingError.code(),
                    },
                    prep::Outstanding::new(),
                ),
                Ok(r) => self.prep_write(&r, &req.auth, req.session_id),
            }
        };
        let _ = self.log_txn(hdr, txn, changes, Origin::Internal);
    }

    /// Learner: the leader has committed everything before a forwarded sync; answer it.
    pub fn sync_done(&mut self, session_id: i64, cxid: i32, now: Now) {
        let Some(Origin::Sync {
            conn,
            xid,
            path,
            received_mono_ms,
        }) = self.forwarded.remove(&(session_id, cxid))
        else {
            return;
        };
        let mut w = Writer::new();
        w.string(&path);
        self.reply(conn, xid, self.last_zxid, Reply::Body(w));
        self.account(conn, xid, op::SYNC, received_mono_ms, now);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.writes_in_flight = c.writes_in_flight.saturating_sub(1);
            c.barrier = false;
            if !c.queued.is_empty() {
                self.runnable.push(conn);
            }
        }
        self.run_queues(now);
    }

    /// Leader: learners saw these sessions alive.
    pub fn touch_sessions(&mut self, ids: &[i64], now: Now) {
        for &id in ids {
            self.sessions.touch(id, now.mono_ms);
        }
    }

    pub fn set_role(&mut self, role: Role) {
        self.role = Some(role);
    }

    /// Starts or stops serving clients. Stopping closes every client connection (clients
    /// fail over to another server; their sessions live on in the ensemble). A leader that
    /// starts serving restarts every session's timeout, as ZooKeeper's new leader does, and
    /// numbers its txns from the new epoch.
    pub fn set_serving(&mut self, on: bool, epoch: u64, now: Now) {
        self.serving = on;
        if !on {
            let ids: Vec<super::ConnId> = self.conns.keys().copied().collect();
            for id in ids {
                self.close(id);
            }
            self.forwarded.clear();
            self.forward_out.clear();
            self.touched.clear();
            return;
        }
        if self.role == Some(Role::Leading) {
            let base = (epoch as i64) << 32;
            self.last_logged_zxid = self.last_logged_zxid.max(base);
            for (id, _) in self.sessions.list() {
                self.sessions.touch(id, now.mono_ms);
            }
        }
    }

    /// Replaces the state after a TRUNC or SNAP: the tree and sessions as storage rebuilt
    /// them; nothing logged before is pending any more.
    pub fn reset_state(
        &mut self,
        tree: DataTree,
        sessions: &[(i64, u32)],
        last_zxid: i64,
        now: Now,
    ) {
        self.tree = tree;
        self.pending.clear();
        self.outstanding = prep::Outstanding::new();
        self.outstanding_zxid.clear();
        self.outstanding_order.clear();
        self.forwarded.clear();
        for (id, _) in self.sessions.list() {
            self.sessions.remove(id);
        }
        for &(id, timeout) in sessions {
            self.sessions.add(id, timeout, now.mono_ms, None);
        }
        self.last_zxid = last_zxid;
        self.last_logged_zxid = last_zxid;
    }

    /// Adopts the leader's session-password secret, so any server verifies any session.
    pub fn set_secret(&mut self, secret: [u8; 32]) {
        self.sessions.set_secret(secret);
    }

    /// Numbers new session ids with this server's id in the top byte.
    pub fn set_server_id(&mut self, sid: u64, now: Now) {
        self.server_id = sid;
        self.sessions.set_server_id(sid, now.wall_ms);
    }

    /// The session-password secret, for the leader to hand to learners.
    pub fn secret(&self) -> [u8; 32] {
        self.sessions.secret()
    }
}
