//! Scenario tests of the pure server: requests in, frames out, with a fake txn sink so the
//! tests decide when txns become durable.

use super::*;
use crate::proto::consts::{add_watch_mode, op};
use crate::proto::{open_acl_unsafe, CreateRequest, Reader, ReplyHeader};
use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;

/// Records appended txns; never fails unless told to.
#[derive(Default)]
struct FakeLog {
    txns: Vec<(TxnHeader, Txn)>,
    full: bool,
}

struct Sink(Rc<RefCell<FakeLog>>);

impl TxnSink for Sink {
    fn append(&mut self, hdr: &TxnHeader, txn: &Txn) -> Result<(), String> {
        let mut l = self.0.borrow_mut();
        if l.full {
            return Err("No space left on device".into());
        }
        l.txns.push((*hdr, txn.clone()));
        Ok(())
    }
}

struct H {
    s: Server,
    now: Now,
    log: Option<Rc<RefCell<FakeLog>>>,
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

impl H {
    fn new(durable_log: bool, cfg: Config) -> H {
        let now = Now {
            wall_ms: 1_700_000_000_000,
            mono_ms: 1000,
        };
        let (sink, log): (Option<Box<dyn TxnSink>>, _) = if durable_log {
            let l = Rc::new(RefCell::new(FakeLog::default()));
            (Some(Box::new(Sink(l.clone()))), Some(l))
        } else {
            (None, None)
        };
        let s = Server::with_tree(cfg, now, [7; 32], DataTree::new(), 0, sink);
        H { s, now, log }
    }

    fn make_durable(&mut self) {
        let z = self.s.last_logged_zxid;
        self.s.durable(z, self.now);
    }

    fn frames(&mut self) -> Vec<(ConnId, Vec<u8>)> {
        self.s
            .drain_output()
            .filter_map(|o| match o {
                Output::Send(c, f) => Some((c, f)),
                Output::Close(_) => None,
            })
            .collect()
    }

    /// Opens connection `c` and completes a handshake for a new session.
    fn session(&mut self, c: ConnId) -> i64 {
        assert!(self.s.open_conn(c, addr(40000 + c as u16), self.now));
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 10_000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: Some(false),
        };
        let mut w = Writer::new();
        req.write(&mut w);
        self.s.connect(c, &w.buf, self.now);
        self.make_durable();
        let f = self.frames();
        let resp = ConnectResponse::read(&f.last().unwrap().1[4..]).unwrap();
        assert!(resp.timeout_ms > 0);
        resp.session_id
    }

    fn send(&mut self, c: ConnId, xid: i32, code: i32, body: &[u8]) {
        let mut w = Writer::new();
        w.i32(xid).i32(code).raw(body);
        self.s.request(c, &w.buf, self.now);
    }

    fn create(&mut self, c: ConnId, xid: i32, path: &str, flags: i32) {
        let mut w = Writer::new();
        CreateRequest {
            op: op::CREATE,
            path: path.into(),
            data: Some(b"d".to_vec()),
            acl: Some(open_acl_unsafe()),
            flags,
            ttl: None,
        }
        .write(&mut w);
        self.send(c, xid, op::CREATE, &w.buf);
    }

    fn get_data(&mut self, c: ConnId, xid: i32, path: &str, watch: bool) {
        let mut w = Writer::new();
        w.string(path).bool(watch);
        self.send(c, xid, op::GET_DATA, &w.buf);
    }
}

fn header(frame: &[u8]) -> ReplyHeader {
    ReplyHeader::read(&mut Reader::new(&frame[4..])).unwrap()
}

#[test]
fn no_reply_before_durable_and_other_sessions_read_meanwhile() {
    let mut h = H::new(true, Config::default());
    h.session(1);
    h.session(2);
    h.create(1, 1, "/a", 0);
    // The create is logged but not durable: no reply yet.
    assert!(h.frames().is_empty());
    // Connection 1's next request waits behind its write...
    h.get_data(1, 2, "/a", false);
    assert!(h.frames().is_empty());
    // ...while connection 2 is answered at once (NoNode: the create has not applied).
    h.get_data(2, 1, "/a", false);
    let f = h.frames();
    assert_eq!(f.len(), 1);
    assert_eq!(header(&f[0].1).err, Code::NoNode.code());
    h.make_durable();
    let f = h.frames();
    let xids: Vec<i32> = f.iter().map(|(_, fr)| header(fr).xid).collect();
    assert_eq!(xids, vec![1, 2], "replies in request order");
    assert_eq!(header(&f[1].1).err, 0);
}

#[test]
fn pipelined_writes_share_a_group_commit_and_replies_keep_request_order() {
    let mut h = H::new(true, Config::default());
    h.session(1);
    // Three writes in a row are all logged before any is durable (one sync covers them),
    // the second one prepped against the first one's pending change...
    h.create(1, 1, "/p", 0);
    h.create(1, 2, "/p/c", 0);
    h.create(1, 3, "/p/c", 0);
    assert_eq!(
        h.s.pending_count(),
        3,
        "writes behind a write are logged at once"
    );
    // ...while a read behind them waits, and so does a write behind the read.
    h.get_data(1, 4, "/p/c", false);
    h.create(1, 5, "/q", 0);
    assert_eq!(h.s.pending_count(), 3);
    assert!(h.frames().is_empty());
    h.make_durable();
    let f = h.frames();
    let got: Vec<(i32, i32)> = f
        .iter()
        .map(|(_, fr)| {
            let hd = header(fr);
            (hd.xid, hd.err)
        })
        .collect();
    assert_eq!(
        got,
        vec![(1, 0), (2, 0), (3, Code::NodeExists.code()), (4, 0)],
        "replies in request order; the read sees the writes before it"
    );
    // The queued write ran once the read was answered.
    assert_eq!(h.s.pending_count(), 1);
    h.make_durable();
    assert_eq!(header(&h.frames()[0].1).xid, 5);
}

#[test]
fn a_write_the_log_refuses_behind_writes_in_flight_closes_the_connection() {
    let mut h = H::new(true, Config::default());
    h.session(1);
    h.create(1, 1, "/a", 0);
    h.log.as_ref().unwrap().borrow_mut().full = true;
    h.create(1, 2, "/b", 0);
    // An immediate SystemError would overtake the reply to xid 1: the connection closes.
    let closed = h.s.drain_output().any(|o| matches!(o, Output::Close(1)));
    assert!(closed);
}

#[test]
fn watch_event_precedes_reply() {
    let mut h = H::new(false, Config::default());
    h.session(1);
    h.create(1, 1, "/w", 0);
    h.get_data(1, 2, "/w", true);
    h.frames();
    let mut w = Writer::new();
    w.string("/w").buffer(Some(b"x")).i32(-1);
    h.send(1, 3, op::SET_DATA, &w.buf);
    let f = h.frames();
    assert_eq!(header(&f[0].1).xid, xid::NOTIFICATION);
    assert_eq!(header(&f[1].1).xid, 3);
    // One-shot: a second change fires nothing.
    h.send(1, 4, op::SET_DATA, &w.buf);
    let f = h.frames();
    assert_eq!(f.len(), 1);
}

#[test]
fn sequential_names_count_pending_creates() {
    let mut h = H::new(true, Config::default());
    h.session(1);
    h.session(2);
    // Two sessions' creates are both logged before either applies.
    h.create(1, 1, "/q-", 2);
    h.create(2, 1, "/q-", 2);
    assert_eq!(h.s.pending_count(), 2);
    h.make_durable();
    assert!(h.s.tree.get("/q-0000000000").is_some());
    assert!(h.s.tree.get("/q-0000000001").is_some());
}

#[test]
fn full_log_fails_the_write_and_keeps_the_zxid() {
    let mut h = H::new(true, Config::default());
    h.session(1);
    let before = h.s.last_logged_zxid;
    h.log.as_ref().unwrap().borrow_mut().full = true;
    h.create(1, 1, "/a", 0);
    let f = h.frames();
    assert_eq!(header(&f[0].1).err, Code::SystemError.code());
    assert_eq!(h.s.last_logged_zxid, before);
    // Reads go on; writes resume when space returns.
    h.get_data(1, 2, "/zookeeper", false);
    assert_eq!(header(&h.frames()[0].1).err, 0);
    h.log.as_ref().unwrap().borrow_mut().full = false;
    h.create(1, 3, "/a", 0);
    h.make_durable();
    assert!(h.s.tree.get("/a").is_some());
}

#[test]
fn expiry_removes_ephemerals_and_notifies() {
    let mut h = H::new(false, Config::default());
    let sid = h.session(1);
    h.session(2);
    h.create(1, 1, "/e", 1);
    assert_eq!(h.s.tree.get("/e").unwrap().stat().ephemeral_owner, sid);
    let mut w = Writer::new();
    w.string("/e").bool(true);
    h.send(2, 1, op::EXISTS, &w.buf);
    h.frames();
    // Keep session 2 alive, let session 1 lapse.
    h.now.mono_ms += 9_000;
    h.send(2, -2, op::PING, &[]);
    h.now.mono_ms += 4_000;
    h.s.tick(h.now);
    assert!(h.s.tree.get("/e").is_none());
    assert!(h.s.sessions.get(sid).is_none());
    let f = h.frames();
    assert!(f
        .iter()
        .any(|(c, fr)| *c == 2 && header(fr).xid == xid::NOTIFICATION));
}

#[test]
fn resume_with_wrong_password_is_refused() {
    let mut h = H::new(false, Config::default());
    let sid = h.session(1);
    assert!(h.s.open_conn(9, addr(9), h.now));
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 10_000,
        session_id: sid,
        passwd: vec![1; 16],
        read_only: None,
    };
    let mut w = Writer::new();
    req.write(&mut w);
    h.s.connect(9, &w.buf, h.now);
    let out: Vec<Output> = h.s.drain_output().collect();
    match &out[0] {
        Output::Send(9, f) => {
            assert_eq!(
                f.len(),
                4 + 36,
                "no readOnly byte when the request had none"
            );
            let r = ConnectResponse::read(&f[4..]).unwrap();
            assert_eq!((r.timeout_ms, r.session_id), (0, 0));
        }
        o => panic!("unexpected {o:?}"),
    }
    assert_eq!(out[1], Output::Close(9));
}

#[test]
fn containers_and_ttls_are_reaped() {
    let cfg = Config {
        extended_types_enabled: true,
        container_check_interval_ms: 1000,
        ..Config::default()
    };
    let mut h = H::new(false, cfg);
    h.session(1);
    h.create(1, 1, "/c", 4);
    h.create(1, 2, "/c/x", 0);
    let mut w = Writer::new();
    w.string("/c/x").i32(-1);
    h.send(1, 3, op::DELETE, &w.buf);
    let mut w = Writer::new();
    CreateRequest {
        op: op::CREATE_TTL,
        path: "/t".into(),
        data: None,
        acl: Some(open_acl_unsafe()),
        flags: 5,
        ttl: Some(500),
    }
    .write(&mut w);
    h.send(1, 4, op::CREATE_TTL, &w.buf);
    h.create(1, 5, "/never", 4);
    h.now.mono_ms += 2000;
    h.now.wall_ms += 2000;
    h.s.tick(h.now);
    assert!(h.s.tree.get("/c").is_none(), "used, emptied container");
    assert!(h.s.tree.get("/t").is_none(), "expired TTL node");
    assert!(
        h.s.tree.get("/never").is_some(),
        "never-used container stays"
    );
}

#[test]
fn hard_quota_enforced_only_with_enforce_quota() {
    for enforce in [false, true] {
        let cfg = Config {
            enforce_quota: enforce,
            ..Config::default()
        };
        let mut h = H::new(false, cfg);
        h.session(1);
        h.create(1, 1, "/p", 0);
        h.create(1, 2, "/zookeeper/quota/p", 0);
        let mut w = Writer::new();
        CreateRequest {
            op: op::CREATE,
            path: "/zookeeper/quota/p/zookeeper_limits".into(),
            data: Some(b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2".to_vec()),
            acl: Some(open_acl_unsafe()),
            flags: 0,
            ttl: None,
        }
        .write(&mut w);
        h.send(1, 3, op::CREATE, &w.buf);
        h.create(1, 4, "/zookeeper/quota/p/zookeeper_stats", 0);
        h.frames();
        h.create(1, 5, "/p/1", 0);
        assert_eq!(header(&h.frames()[0].1).err, 0);
        h.create(1, 6, "/p/2", 0);
        let err = header(&h.frames()[0].1).err;
        if enforce {
            assert_eq!(err, Code::QuotaExceeded.code());
        } else {
            assert_eq!(err, 0);
        }
        let stats = h.s.tree.get("/zookeeper/quota/p/zookeeper_stats").unwrap();
        let want = if enforce {
            "count=2,bytes=2"
        } else {
            "count=3,bytes=3"
        };
        assert_eq!(stats.data.unwrap(), want.as_bytes());
    }
}

#[test]
fn persistent_recursive_watch_sees_subtree_but_not_child_events() {
    let mut h = H::new(false, Config::default());
    h.session(1);
    h.session(2);
    let mut w = Writer::new();
    w.string("/r").i32(add_watch_mode::PERSISTENT_RECURSIVE);
    h.send(2, 1, op::ADD_WATCH, &w.buf);
    h.frames();
    h.create(1, 1, "/r", 0);
    h.create(1, 2, "/r/a", 0);
    let events: Vec<i32> = h
        .frames()
        .iter()
        .filter(|(c, fr)| *c == 2 && header(fr).xid == xid::NOTIFICATION)
        .map(|(_, fr)| {
            let mut r = Reader::new(&fr[4..]);
            ReplyHeader::read(&mut r).unwrap();
            r.i32().unwrap()
        })
        .collect();
    assert_eq!(events, vec![event::NODE_CREATED, event::NODE_CREATED]);
}

#[test]
fn null_digest_credentials_fail_and_close_like_apache() {
    let mut h = H::new(false, Config::default());
    h.session(1);
    let mut w = Writer::new();
    w.i32(0).string("digest").buffer(None);
    h.send(1, xid::AUTH, op::AUTH, &w.buf);
    let out: Vec<Output> = h.s.drain_output().collect();
    match &out[0] {
        Output::Send(1, f) => {
            let hd = header(f);
            assert_eq!(
                (hd.xid, hd.zxid, hd.err),
                (xid::AUTH, 0, Code::AuthFailed.code())
            );
        }
        o => panic!("unexpected {o:?}"),
    }
    assert_eq!(out[1], Output::Close(1));
    // Empty (not null) credentials are a digest like any other.
    h.session(2);
    let mut w = Writer::new();
    w.i32(0).string("digest").buffer(Some(b""));
    h.send(2, xid::AUTH, op::AUTH, &w.buf);
    let f = h.frames();
    assert_eq!(header(&f[0].1).err, 0);
}

#[test]
fn malformed_auth_packet_closes_without_a_reply() {
    let mut h = H::new(false, Config::default());
    h.session(1);
    // A scheme length that runs past the end of the frame.
    let mut w = Writer::new();
    w.i32(0).i32(1000);
    h.send(1, xid::AUTH, op::AUTH, &w.buf);
    let out: Vec<Output> = h.s.drain_output().collect();
    assert_eq!(out, vec![Output::Close(1)]);
}
