//! Sessions: ids, passwords, negotiated timeouts and expiry. Expiry times are rounded up to
//! the next tick, as ZooKeeper's ExpiryQueue does, so sessions expire in batches once per
//! tick. Passwords are derived from a per-server secret and the session id (an HMAC-like
//! SHA-1), so they need no table and cannot be guessed from the id alone (unlike Apache's
//! seeded java.util.Random).

use super::ConnId;
use std::collections::{BTreeSet, HashMap};

pub const PASSWORD_LEN: usize = 16;

#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub timeout_ms: u32,
    pub expire_at_ms: u64,
    pub conn: Option<ConnId>,
    /// A closeSession txn for it is logged; it takes no new requests or connections.
    pub closing: bool,
}

pub struct SessionTracker {
    sessions: HashMap<i64, Session>,
    expiry: BTreeSet<(u64, i64)>,
    next_id: i64,
    tick_ms: u64,
    secret: [u8; 32],
}

impl SessionTracker {
    /// `server_id` goes in the top byte of every id (Apache: 1 for a standalone server).
    pub fn new(server_id: u64, now_wall_ms: i64, tick_ms: u32, secret: [u8; 32]) -> Self {
        let base = (((now_wall_ms as u64) << 24) >> 8) | (server_id << 56);
        SessionTracker {
            sessions: HashMap::new(),
            expiry: BTreeSet::new(),
            next_id: base as i64,
            tick_ms: tick_ms.max(1) as u64,
            secret,
        }
    }

    /// Renumbers future ids for this server id (an ensemble member's myid).
    pub fn set_server_id(&mut self, server_id: u64, now_wall_ms: i64) {
        let base = (((now_wall_ms as u64) << 24) >> 8) | (server_id << 56);
        self.next_id = base as i64;
    }

    pub fn set_secret(&mut self, secret: [u8; 32]) {
        self.secret = secret;
    }

    pub fn secret(&self) -> [u8; 32] {
        self.secret
    }

    fn round_up(&self, t: u64) -> u64 {
        (t / self.tick_ms + 1) * self.tick_ms
    }

    pub fn password(&self, id: i64) -> [u8; PASSWORD_LEN] {
        let mut h = sha1_smol::Sha1::new();
        h.update(&self.secret);
        h.update(&id.to_be_bytes());
        h.update(&self.secret);
        let d = h.digest().bytes();
        let mut p = [0u8; PASSWORD_LEN];
        p.copy_from_slice(&d[..PASSWORD_LEN]);
        p
    }

    /// Allocates the next session id (the session itself starts when its txn applies).
    pub fn next_session_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        // 0x8000000000000000 is the container marker; never hand it out.
        if self.next_id == i64::MIN || self.next_id == 0 {
            self.next_id = self.next_id.wrapping_add(1);
        }
        id
    }

    pub fn add(&mut self, id: i64, timeout_ms: u32, now_ms: u64, conn: Option<ConnId>) {
        let s = Session {
            id,
            timeout_ms,
            expire_at_ms: 0,
            conn,
            closing: false,
        };
        self.sessions.insert(id, s);
        self.touch(id, now_ms);
    }

    pub fn get(&self, id: i64) -> Option<&Session> {
        self.sessions.get(&id)
    }

    pub fn get_mut(&mut self, id: i64) -> Option<&mut Session> {
        self.sessions.get_mut(&id)
    }

    pub fn set_timeout(&mut self, id: i64, timeout_ms: u32, now_ms: u64) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.timeout_ms = timeout_ms;
        }
        self.touch(id, now_ms);
    }

    /// Pushes the session's expiry out to `now + timeout`, rounded up to the next tick.
    pub fn touch(&mut self, id: i64, now_ms: u64) {
        let Some(s) = self.sessions.get(&id) else {
            return;
        };
        let at = self.round_up(now_ms + s.timeout_ms as u64);
        let old = s.expire_at_ms;
        if old == at {
            return;
        }
        self.expiry.remove(&(old, id));
        self.expiry.insert((at, id));
        if let Some(s) = self.sessions.get_mut(&id) {
            s.expire_at_ms = at;
        }
    }

    pub fn remove(&mut self, id: i64) -> Option<Session> {
        let s = self.sessions.remove(&id)?;
        self.expiry.remove(&(s.expire_at_ms, id));
        Some(s)
    }

    /// Sessions whose expiry time has passed, oldest first.
    pub fn expired(&self, now_ms: u64) -> Vec<i64> {
        self.expiry
            .iter()
            .take_while(|(at, _)| *at <= now_ms)
            .map(|(_, id)| *id)
            .filter(|id| self.sessions.get(id).is_some_and(|s| !s.closing))
            .collect()
    }

    /// (id, timeout) of every session.
    pub fn list(&self) -> Vec<(i64, u32)> {
        self.sessions
            .values()
            .map(|s| (s.id, s.timeout_ms))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// (expiry time, session ids) buckets, for `dump`.
    pub fn buckets(&self) -> Vec<(u64, Vec<i64>)> {
        let mut out: Vec<(u64, Vec<i64>)> = Vec::new();
        for (at, id) in &self.expiry {
            match out.last_mut() {
                Some((t, ids)) if t == at => ids.push(*id),
                _ => out.push((*at, vec![*id])),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_server_id_and_expiry_rounds_to_ticks() {
        let mut t = SessionTracker::new(1, 1_700_000_000_000, 2000, [1; 32]);
        let id = t.next_session_id();
        assert_eq!((id as u64) >> 56, 1);
        t.add(id, 4000, 10_500, None);
        assert_eq!(t.get(id).unwrap().expire_at_ms, 16_000);
        assert!(t.expired(15_999).is_empty());
        assert_eq!(t.expired(16_000), vec![id]);
        t.touch(id, 13_000);
        assert!(t.expired(16_000).is_empty());
        assert_ne!(t.password(id), t.password(id + 1));
    }
}
