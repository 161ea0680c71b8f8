//! Hostile input against the real `zk` binary: random bytes, truncated and oversized frames,
//! unknown opcodes, malformed records, clients that vanish mid-frame or never read, and more
//! connections than maxClientCnxns allows. Every case proves two things: the offending
//! connection is closed (or answered with the error ZooKeeper would send), and a healthy
//! session opened before the attack still works afterwards while the server process stays
//! alive. Random cases are driven by a seeded PRNG; `ZK_HOSTILE_SEED=<n>` replays or varies
//! them. These tests never change the server; they correspond to the robustness checks
//! Apache ZooKeeper spreads over NIOServerCnxnTest, ZooKeeperServerTest and friends.

mod common;

use common::*;
use std::io::{self, Write};
use std::time::{Duration, Instant};
use zk::client::{self, codec, Client, ClientError};
use zk::proto::consts::{add_watch_mode, op, watcher_type, xid};
use zk::proto::records::{is_known_op, open_acl_unsafe, write_multi_header};
use zk::proto::{Code, ConnectRequest, Reader, ReplyHeader, Request, Writer};

/// The seed for the random cases unless ZK_HOSTILE_SEED overrides it.
const SEED_DEFAULT: u64 = 0x5eed_2b0c_ad00_0001;
/// Connections that send random bytes as their first frame.
const FIRST_FRAME_ROUNDS: u32 = 300;
/// Sessions that send random requests after a valid handshake, and frames per session.
const RANDOM_SESSIONS: u32 = 40;
const FRAMES_PER_SESSION: u32 = 25;
/// ZooKeeper's default jute.maxbuffer: the largest frame a server must accept.
const JUTE_MAXBUFFER: usize = 0xfffff;
/// How often (in rounds) a random case re-checks the healthy session.
const HEALTH_CHECK_EVERY: u32 = 50;

fn seed() -> u64 {
    std::env::var("ZK_HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED_DEFAULT)
}

/// A server plus a healthy session opened before any attack.
struct Scene {
    srv: TestServer,
    healthy: Client,
    checks: u32,
}

impl Scene {
    fn new() -> Scene {
        Scene::with_config(&[])
    }

    fn with_config(extra: &[&str]) -> Scene {
        let srv = TestServer::with_config(extra);
        let healthy = srv.client();
        let mut s = Scene {
            srv,
            healthy,
            checks: 0,
        };
        s.check_healthy();
        s
    }

    /// The server runs, answers ruok, and the healthy session can write and read back.
    fn check(&mut self) {
        self.srv.assert_alive();
        self.check_healthy();
    }

    fn check_healthy(&mut self) {
        self.checks += 1;
        let n = self.checks;
        let log = self.srv.log_tail();
        round_trip(&mut self.healthy, n).unwrap_or_else(|e| {
            panic!("healthy session failed after attack (check {n}): {e}; log tail:\n{log}")
        });
    }
}

/// create, getData, setData, delete on a fresh node.
fn round_trip(c: &mut Client, n: u32) -> Result<(), ClientError> {
    let path = format!("/healthy-{n}");
    let data = format!("value-{n}");
    let acl = open_acl_unsafe();
    let got = c.create(&path, Some(data.as_bytes()), &acl, 0)?;
    assert_eq!(got, path);
    let (d, stat) = c.get_data(&path, false)?;
    assert_eq!(d.as_deref(), Some(data.as_bytes()));
    let stat2 = c.set_data(&path, Some(b"changed"), stat.version)?;
    assert_eq!(stat2.version, stat.version + 1);
    c.delete(&path, stat2.version)?;
    assert_eq!(c.exists(&path, false)?, None);
    Ok(())
}

/// Whether a client error means the server closed the connection (not a timeout).
fn is_closed(e: &ClientError) -> bool {
    match e {
        ClientError::Io(e) => !matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ),
        _ => false,
    }
}

/// Reads frames until one is not a notification, and returns its header and body.
fn next_reply(c: &mut Client) -> Result<(ReplyHeader, Vec<u8>), ClientError> {
    loop {
        let p = c.read_frame()?;
        let (h, body) = client::split_reply(&p)?;
        if h.xid != xid::NOTIFICATION {
            return Ok((h, body.to_vec()));
        }
    }
}

/// After a reply that should be the connection's last, the server must close it.
fn assert_closed_after(c: &mut Client, what: &str) {
    match c.read_frame() {
        Err(e) if is_closed(&e) => {}
        other => panic!("{what}: expected the server to close the connection, got {other:?}"),
    }
}

/// The server's last zxid, read from a ping reply on the healthy session.
fn server_zxid(c: &mut Client) -> i64 {
    c.call_xid(xid::PING, op::PING, &[]).expect("ping").0.zxid
}

/// What a decodable ConnectRequest must earn (PROTOCOL.md §5.3), checked against what the
/// server sent before it closed (or before we half-closed).
fn check_connect_outcome(req: &ConnectRequest, zxid_now: i64, sent: &[u8], ctx: &str) {
    let (frames, rest) = split_frames(sent);
    assert!(rest.is_empty(), "{ctx}: trailing partial frame {rest:02x?}");
    if req.last_zxid_seen > zxid_now {
        assert!(
            frames.is_empty(),
            "{ctx}: a client from the future got {frames:02x?}"
        );
        return;
    }
    assert!(!frames.is_empty(), "{ctx}: no ConnectResponse");
    let resp = zk::proto::ConnectResponse::read(&frames[0])
        .unwrap_or_else(|e| panic!("{ctx}: undecodable ConnectResponse: {e}"));
    assert_eq!(
        resp.read_only.is_some(),
        req.read_only.is_some(),
        "{ctx}: readOnly byte must be echoed iff sent"
    );
    assert_eq!(resp.passwd.len(), 16, "{ctx}");
    if req.session_id != 0 {
        assert_eq!(
            (resp.timeout_ms, resp.session_id),
            (0, 0),
            "{ctx}: resume of a made-up session"
        );
        assert_eq!(
            frames.len(),
            1,
            "{ctx}: anything after an invalid ConnectResponse"
        );
    } else {
        // tickTime 2000: the timeout is clamped to [2, 20] ticks.
        let want = req.timeout_ms.clamp(4000, 40000);
        assert_eq!(resp.timeout_ms, want, "{ctx}: negotiated timeout");
        assert_ne!(resp.session_id, 0, "{ctx}");
    }
}

#[test]
fn random_bytes_as_first_frame_close_the_connection() {
    let mut sc = Scene::new();
    let mut rng = Rng::new(seed());
    let mut decodable = 0;
    for round in 0..FIRST_FRAME_ROUNDS {
        let mut s = sc.srv.raw();
        let ctx = format!("seed {} round {round}", seed());
        match round % 3 {
            0 => {
                // Raw noise, then EOF: whatever the noise meant, the connection must end.
                let n = 1 + rng.below(600) as usize;
                let junk = rng.bytes(n);
                write_ignoring_reset(&mut s, &junk);
                shut_write(&s);
                expect_closed(&mut s)
                    .unwrap_or_else(|e| panic!("{ctx} ({} noise bytes): {e}", junk.len()));
            }
            1 => {
                // A well-framed first frame whose payload is noise: unless it happens to
                // decode as a ConnectRequest, the server must close without waiting for more
                // and without answering.
                let payload = rng.bytes_below(90);
                write_ignoring_reset(&mut s, &frame(&payload));
                let ok = ConnectRequest::read(&payload).is_ok();
                if ok {
                    decodable += 1;
                    shut_write(&s);
                }
                let closed = expect_closed(&mut s)
                    .unwrap_or_else(|e| panic!("{ctx} (payload {payload:02x?}): {e}"));
                if !ok {
                    assert!(
                        closed.bytes.is_empty(),
                        "{ctx}: a bad ConnectRequest earned {:02x?}",
                        closed.bytes
                    );
                }
            }
            _ => {
                // A mutated valid ConnectRequest: odd timeouts, made-up sessions, future
                // zxids, missing readOnly byte, bad password lengths.
                let payload = mutate_connect(&mut rng);
                let zxid_now = server_zxid(&mut sc.healthy);
                write_ignoring_reset(&mut s, &frame(&payload));
                let ctx = format!("{ctx} (payload {payload:02x?})");
                match ConnectRequest::read(&payload) {
                    Err(_) => {
                        let closed = expect_closed(&mut s).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                        assert!(closed.bytes.is_empty(), "{ctx}: got {:02x?}", closed.bytes);
                    }
                    Ok(req) => {
                        decodable += 1;
                        let mut got = Vec::new();
                        if req.session_id == 0 && req.last_zxid_seen <= zxid_now {
                            // A real new session: the connection stays open until we leave,
                            // but only after the ConnectResponse, which may wait for the
                            // createSession txn to be durable. Leaving earlier would lose it,
                            // in ZooKeeper too.
                            got = read_frame_raw(&mut s)
                                .unwrap_or_else(|e| panic!("{ctx}: no ConnectResponse: {e}"));
                            shut_write(&s);
                        }
                        let closed = expect_closed(&mut s).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                        got.extend_from_slice(&closed.bytes);
                        check_connect_outcome(&req, zxid_now, &got, &ctx);
                    }
                }
            }
        }
        if round % HEALTH_CHECK_EVERY == HEALTH_CHECK_EVERY - 1 {
            sc.check();
        }
    }
    eprintln!("{decodable} random first frames decoded as a ConnectRequest");
    sc.check();
}

/// A ConnectRequest with one field or length made awkward.
fn mutate_connect(rng: &mut Rng) -> Vec<u8> {
    let mut req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: SESSION_TIMEOUT_MS,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    };
    match rng.below(7) {
        0 => req.timeout_ms = *rng.pick(&[i32::MIN, -1, 0, 1, 3999, 40001, i32::MAX]),
        1 => req.session_id = rng.next_u64() as i64,
        2 => req.last_zxid_seen = *rng.pick(&[-1, 1 << 40, i64::MAX, i64::MIN]),
        3 => req.read_only = *rng.pick(&[None, Some(true)]),
        4 => req.passwd = rng.bytes_below(40),
        5 => req.protocol_version = rng.next_u64() as i32,
        _ => {}
    }
    let mut w = Writer::new();
    req.write(&mut w);
    mutate(w.buf, rng)
}

/// A valid body for `code`, with random paths under /fz and random small values, so that
/// mutating it reaches deep into each decoder.
fn valid_body(code: i32, rng: &mut Rng) -> Vec<u8> {
    let path = format!("/fz{}", rng.below(8));
    let data = rng.bytes_below(16);
    let acl = open_acl_unsafe();
    let v = rng.below(3) as i32 - 1;
    match code {
        op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => {
            codec::create_body(&path, Some(&data), &acl, rng.below(8) as i32, None)
        }
        op::CREATE_TTL => codec::create_body(&path, Some(&data), &acl, 5, Some(1000)),
        op::DELETE | op::CHECK => codec::path_int_body(&path, v),
        op::EXISTS | op::GET_DATA | op::GET_CHILDREN | op::GET_CHILDREN2 => {
            codec::path_watch_body(&path, rng.below(2) == 0)
        }
        op::SET_DATA => codec::set_data_body(&path, Some(&data), v),
        op::GET_ACL
        | op::SYNC
        | op::GET_EPHEMERALS
        | op::GET_ALL_CHILDREN_NUMBER
        | op::DELETE_CONTAINER => codec::path_body(&path),
        op::SET_ACL => codec::set_acl_body(&path, &acl, v),
        op::CHECK_WATCHES | op::REMOVE_WATCHES => codec::path_int_body(&path, rng.below(6) as i32),
        op::ADD_WATCH => codec::path_int_body(&path, rng.below(3) as i32),
        op::AUTH => {
            let scheme = *rng.pick(&["digest", "ip", "bogus", ""]);
            codec::auth_body(scheme, b"u:p")
        }
        op::SET_WATCHES | op::SET_WATCHES2 => {
            let sw = zk::proto::SetWatches {
                relative_zxid: rng.below(100) as i64,
                data: vec![path.clone()],
                exist: vec![path.clone()],
                child: vec![path],
                persistent: vec![],
                persistent_recursive: vec!["/fz1".into()],
            };
            codec::set_watches_body(&sw).1
        }
        op::MULTI => codec::multi_body(&[
            zk::proto::MultiOp::Create(zk::proto::CreateRequest {
                op: op::CREATE,
                path: path.clone(),
                data: Some(data),
                acl: Some(acl),
                flags: 0,
                ttl: None,
            }),
            zk::proto::MultiOp::Delete { path, version: v },
        ]),
        op::MULTI_READ => codec::multi_read_body(&[
            zk::proto::ReadOp::GetData { path: path.clone() },
            zk::proto::ReadOp::GetChildren { path },
        ]),
        op::RECONFIG => {
            let mut w = Writer::new();
            w.ustring(None).ustring(None).ustring(None).i64(-1);
            w.buf
        }
        op::SASL => {
            let mut w = Writer::new();
            w.buffer(Some(&data));
            w.buf
        }
        _ => data,
    }
}

/// Truncates a body, overwrites 4 bytes with an awkward length, or flips a bit.
fn mutate(mut b: Vec<u8>, rng: &mut Rng) -> Vec<u8> {
    match rng.below(4) {
        0 => b,
        1 => {
            let n = rng.below(b.len() as u64 + 1) as usize;
            b.truncate(n);
            b
        }
        2 if b.len() >= 4 => {
            let at = rng.below(b.len() as u64 - 3) as usize;
            let v: i32 = *rng.pick(&[-1, -2, i32::MIN, i32::MAX, 0x100000, 1000, 0, 3]);
            b[at..at + 4].copy_from_slice(&v.to_be_bytes());
            b
        }
        _ if !b.is_empty() => {
            let at = rng.below(b.len() as u64) as usize;
            b[at] ^= 1 << rng.below(8);
            b
        }
        _ => rng.bytes_below(40),
    }
}

/// The opcodes a client may send, less closeSession and auth, which are picked apart.
const KNOWN_OPS: &[i32] = &[
    op::CREATE,
    op::DELETE,
    op::EXISTS,
    op::GET_DATA,
    op::SET_DATA,
    op::GET_ACL,
    op::SET_ACL,
    op::GET_CHILDREN,
    op::SYNC,
    op::PING,
    op::GET_CHILDREN2,
    op::MULTI,
    op::CREATE2,
    op::RECONFIG,
    op::CHECK_WATCHES,
    op::REMOVE_WATCHES,
    op::CREATE_CONTAINER,
    op::DELETE_CONTAINER,
    op::CREATE_TTL,
    op::MULTI_READ,
    op::SET_WATCHES,
    op::SASL,
    op::GET_EPHEMERALS,
    op::GET_ALL_CHILDREN_NUMBER,
    op::SET_WATCHES2,
    op::ADD_WATCH,
    op::WHO_AM_I,
];

/// What the server must do with one request frame, per PROTOCOL.md §4, §6 and §7.
#[derive(Debug)]
enum Expect {
    /// err -6, then close (unknown opcode, notification, or a top-level check).
    Unimplemented,
    /// err -5; the connection stays usable.
    Marshalling,
    /// A reply with this xid (any err); the connection stays usable.
    Reply(i32),
    /// A reply with this xid (any err), then close.
    ReplyThenClose(i32),
    /// An auth or SASL packet that does not decode: closed with no reply, as Apache does.
    Close,
}

fn expect_for(x: i32, code: i32, body: &[u8]) -> Expect {
    if !is_known_op(code) || code == op::CHECK {
        return Expect::Unimplemented;
    }
    match Request::read(code, &mut Reader::new(body)) {
        Err(_) if code == op::AUTH || code == op::SASL => Expect::Close,
        Err(_) => Expect::Marshalling,
        Ok(Request::Ping) => Expect::Reply(xid::PING),
        Ok(Request::CloseSession) => Expect::ReplyThenClose(x),
        Ok(Request::Auth { scheme, .. }) if scheme != "digest" && scheme != "ip" => {
            Expect::ReplyThenClose(x)
        }
        // Null digest credentials: AuthFailed, then close.
        Ok(Request::Auth {
            scheme, auth: None, ..
        }) if scheme == "digest" => Expect::ReplyThenClose(x),
        Ok(_) => Expect::Reply(x),
    }
}

#[test]
fn random_requests_after_handshake_get_the_right_answer() {
    let mut sc = Scene::new();
    let mut rng = Rng::new(seed() ^ 0x0a11_0a11);
    let mut sessions_closed = 0;
    let mut tally = std::collections::BTreeMap::new();
    for session in 0..RANDOM_SESSIONS {
        let mut c = sc.srv.client();
        let mut closed_by_server = false;
        for k in 0..FRAMES_PER_SESSION {
            // Mostly known opcodes, so sessions live long enough to reach deep states; now
            // and then one that ends the session (unknown op, closeSession, auth).
            let code = match rng.below(50) {
                0 => *rng.pick(&[0, 10, 13, 23, 99, 9999, -10, i32::MIN]),
                1 => rng.next_u64() as i32,
                2 => op::CLOSE_SESSION,
                3 | 4 => op::AUTH,
                _ => *rng.pick(KNOWN_OPS),
            };
            let x = match rng.below(12) {
                0 => *rng.pick(&[xid::PING, xid::AUTH, xid::SET_WATCHES, 0]),
                _ => 1 + rng.below(1 << 30) as i32,
            };
            let body = if rng.below(4) == 0 {
                rng.bytes_below(48)
            } else {
                mutate(valid_body(code, &mut rng), &mut rng)
            };
            let expect = expect_for(x, code, &body);
            let kind = format!("{expect:?}");
            *tally
                .entry(kind.split('(').next().unwrap_or("").to_owned())
                .or_insert(0u32) += 1;
            let ctx = format!(
                "seed {} session {session} frame {k}: xid {x} op {code} body {body:02x?}, expecting {expect:?}",
                seed()
            );
            c.send_raw(&request_frame(x, code, &body))
                .unwrap_or_else(|e| panic!("{ctx}: send failed: {e}"));
            let got = next_reply(&mut c);
            let done = match expect {
                Expect::Unimplemented => {
                    let (h, _) = got.unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    assert_eq!((h.xid, h.err), (x, Code::Unimplemented.code()), "{ctx}");
                    assert_closed_after(&mut c, &ctx);
                    true
                }
                Expect::Marshalling => {
                    let (h, _) = got.unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    assert_eq!((h.xid, h.err), (x, Code::MarshallingError.code()), "{ctx}");
                    false
                }
                Expect::Reply(want) => {
                    let (h, _) = got.unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    assert_eq!(h.xid, want, "{ctx}");
                    false
                }
                Expect::ReplyThenClose(want) => {
                    let (h, _) = got.unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    assert_eq!(h.xid, want, "{ctx}");
                    assert_closed_after(&mut c, &ctx);
                    true
                }
                Expect::Close => match got {
                    Ok((h, _)) => panic!("{ctx}: expected a close without reply, got {h:?}"),
                    Err(e) => {
                        assert!(is_closed(&e), "{ctx}: {e}");
                        true
                    }
                },
            };
            if done {
                sessions_closed += 1;
                closed_by_server = true;
                break;
            }
        }
        // A connection the server kept open must still answer a plain request in order.
        if !closed_by_server {
            c.ping().unwrap_or_else(|e| {
                panic!(
                    "seed {} session {session}: ping after the noise: {e}",
                    seed()
                )
            });
        }
        drop(c);
        if session % 10 == 9 {
            sc.check();
        }
    }
    // Every four-letter word still answers over whatever state the noise left behind.
    for w in [
        "ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "envi", "wchs", "wchc", "wchp",
        "dump", "isro", "srst", "dirs", "gtmk",
    ] {
        let out = client::four_letter_word(&sc.srv.addr, w, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{w}: {e}"));
        assert!(!out.is_empty(), "{w} answered nothing");
    }
    eprintln!(
        "{sessions_closed} of {RANDOM_SESSIONS} random sessions were closed by the server; frames by expectation: {tally:?}"
    );
    // The mix must exercise every path, or the test proves less than it claims.
    for k in ["Unimplemented", "Marshalling", "Reply", "ReplyThenClose"] {
        assert!(
            tally.get(k).copied().unwrap_or(0) > 0,
            "no frame expected {k}: {tally:?}"
        );
    }
    sc.check();
}

#[test]
fn truncated_frames_are_waited_for_or_dropped() {
    let mut sc = Scene::new();

    // Length 100, 10 bytes, then gone: before and after the handshake.
    let mut partial = 100i32.to_be_bytes().to_vec();
    partial.extend_from_slice(&[7; 10]);
    {
        let mut s = sc.srv.raw();
        write_ignoring_reset(&mut s, &partial);
    }
    {
        let mut c = sc.srv.client();
        c.send_raw(&partial).unwrap();
    }
    sc.check();

    // Length 100, 10 bytes, and the connection stays open while the healthy client works:
    // the server must wait for the rest without answering, closing, or stalling others.
    let mut pre = sc.srv.raw();
    pre.write_all(&partial).unwrap();
    // A 100-byte getData frame on a live session, sent in two parts.
    let mut w = Writer::new();
    w.i32(42)
        .i32(op::GET_DATA)
        .string(&format!("/{}", "p".repeat(86)))
        .bool(false);
    assert_eq!(w.buf.len(), 100);
    let whole = frame(&w.buf);
    let mut c = sc.srv.client();
    c.send_raw(&whole[..14]).unwrap();
    // Many connections that each sent two bytes of a length field and went quiet.
    let mut idle: Vec<_> = (0..30)
        .map(|_| {
            let mut s = sc.srv.raw();
            s.write_all(&[0, 0]).unwrap();
            s
        })
        .collect();
    sc.check();
    assert!(still_open_and_quiet(&mut pre, Duration::from_millis(200)));
    for s in &mut idle {
        assert!(still_open_and_quiet(s, Duration::from_millis(5)));
    }
    // The rest arrives: the request is answered as if it had come in one piece.
    c.send_raw(&whole[14..]).unwrap();
    let (h, _) = next_reply(&mut c).unwrap();
    assert_eq!((h.xid, h.err), (42, Code::NoNode.code()));
    round_trip(&mut c, 1000).unwrap();
    drop(idle);
    drop(pre);
    sc.check();
}

/// VmPeak and VmHWM (peak virtual and resident size) in KiB.
fn peaks_kib(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmPeak:")?, field("VmHWM:")?))
}

#[test]
fn oversize_and_negative_lengths_close_without_allocating() {
    let mut sc = Scene::new();
    let before = peaks_kib(sc.srv.pid());
    let lengths: [i32; 7] = [
        (JUTE_MAXBUFFER + 1) as i32,
        0x0100_0000,
        i32::MAX,
        -1,
        -2,
        i32::MIN,
        // "ruol" is not a four-letter word, so it is a (huge) length.
        i32::from_be_bytes(*b"ruol"),
    ];
    for round in 0..3 {
        for &len in &lengths {
            // Before the handshake: nothing may come back.
            let mut s = sc.srv.raw();
            write_ignoring_reset(&mut s, &len.to_be_bytes());
            let closed = expect_closed(&mut s)
                .unwrap_or_else(|e| panic!("length {len} as first frame: {e}"));
            assert!(
                closed.bytes.is_empty(),
                "length {len}: got {:02x?}",
                closed.bytes
            );
            // After the handshake, followed by some payload the server must not wait for.
            let mut c = sc.srv.client();
            let mut b = len.to_be_bytes().to_vec();
            b.extend_from_slice(&[0x55; 64]);
            let _ = c.send_raw(&b);
            match c.read_frame() {
                Err(e) if is_closed(&e) => {}
                other => panic!("length {len} after handshake (round {round}): {other:?}"),
            }
        }
    }
    let after = peaks_kib(sc.srv.pid());
    if let (Some((vp0, hwm0)), Some((vp1, hwm1))) = (before, after) {
        // Allocating any declared length (a 2 GiB i32::MAX, or 16 MiB) would show in the
        // peak virtual size even if the pages were never touched.
        assert!(vp1 - vp0 < 12 * 1024, "VmPeak grew {} KiB", vp1 - vp0);
        assert!(hwm1 - hwm0 < 12 * 1024, "VmHWM grew {} KiB", hwm1 - hwm0);
    }
    sc.check();

    // The boundary: a frame of exactly jute.maxbuffer bytes is legal and is served.
    let acl = open_acl_unsafe();
    let path = "/max-frame";
    let overhead = 8 + codec::create_body(path, Some(&[]), &acl, 0, None).len();
    let data = vec![0xabu8; JUTE_MAXBUFFER - overhead];
    let body = codec::create_body(path, Some(&data), &acl, 0, None);
    assert_eq!(8 + body.len(), JUTE_MAXBUFFER);
    let mut c = sc.srv.client();
    let (h, reply) = c.call(op::CREATE, &body).unwrap();
    assert_eq!(
        h.err, 0,
        "a frame of exactly jute.maxbuffer bytes was refused"
    );
    assert_eq!(codec::read_string(&reply).unwrap(), path);
    let (got, stat) = c.get_data(path, false).unwrap();
    assert_eq!(got.map(|d| d.len()), Some(data.len()));
    assert_eq!(stat.data_length as usize, data.len());
    // One byte more and the connection is closed, with nothing created.
    let data = vec![0xabu8; JUTE_MAXBUFFER - overhead + 1];
    let body = codec::create_body("/max-framf", Some(&data), &acl, 0, None);
    assert_eq!(8 + body.len(), JUTE_MAXBUFFER + 1);
    let _ = c.send_raw(&request_frame(77, op::CREATE, &body));
    match c.read_frame() {
        Err(e) if is_closed(&e) => {}
        other => panic!("a frame of jute.maxbuffer + 1 bytes was not refused: {other:?}"),
    }
    assert_eq!(sc.healthy.exists("/max-framf", false).unwrap(), None);
    sc.check();
}

#[test]
fn unknown_opcodes_get_unimplemented_then_close() {
    let mut sc = Scene::new();
    let check_body = codec::path_int_body("/", -1);
    let cases: &[(i32, &[u8])] = &[
        (9999, b""),
        (op::NOTIFICATION, b""),
        (op::CHECK, &check_body),
        (10, b""),
        (23, b""),
        (108, b""),
        (op::CREATE_SESSION, &[0, 0, 0x75, 0x30]),
        (op::ERROR, b""),
        (i32::MIN, b""),
        (i32::MAX, b""),
    ];
    for &(code, body) in cases {
        let mut c = sc.srv.client();
        let (h, rest) = c
            .call(code, body)
            .unwrap_or_else(|e| panic!("op {code}: no reply: {e}"));
        assert_eq!(h.err, Code::Unimplemented.code(), "op {code}");
        assert!(rest.is_empty(), "op {code}: an error reply carries no body");
        assert_closed_after(&mut c, &format!("op {code}"));
    }
    // A second ConnectRequest on an established session reads as header xid 0, op 0.
    let mut c = sc.srv.client();
    c.send_raw(&frame(&connect_payload())).unwrap();
    let (h, _) = next_reply(&mut c).unwrap();
    assert_eq!((h.xid, h.err), (0, Code::Unimplemented.code()));
    assert_closed_after(&mut c, "second ConnectRequest");
    sc.check();
}

#[test]
fn requests_pipelined_behind_a_closing_one_are_not_answered() {
    let mut sc = Scene::new();
    let get = codec::path_watch_body("/", false);
    let closers: &[(&str, i32, i32, Vec<u8>, i32)] = &[
        (
            "unknown opcode",
            2,
            9999,
            Vec::new(),
            Code::Unimplemented.code(),
        ),
        ("closeSession", 2, op::CLOSE_SESSION, Vec::new(), 0),
        (
            "failed auth",
            xid::AUTH,
            op::AUTH,
            codec::auth_body("bogus", b"x"),
            Code::AuthFailed.code(),
        ),
    ];
    for (name, x, code, body, err) in closers {
        let mut c = sc.srv.client();
        let mut burst = request_frame(1, op::GET_DATA, &get);
        burst.extend_from_slice(&request_frame(*x, *code, body));
        burst.extend_from_slice(&request_frame(3, op::GET_DATA, &get));
        burst.extend_from_slice(&request_frame(
            4,
            op::CREATE,
            &codec::create_body("/after-close", None, &open_acl_unsafe(), 0, None),
        ));
        c.send_raw(&burst).unwrap();
        let (h, _) = next_reply(&mut c).unwrap();
        assert_eq!((h.xid, h.err), (1, 0), "{name}: first request");
        let (h, _) = next_reply(&mut c).unwrap();
        assert_eq!((h.xid, h.err), (*x, *err), "{name}: the closing request");
        assert_closed_after(&mut c, name);
        assert_eq!(
            sc.healthy.exists("/after-close", false).unwrap(),
            None,
            "{name}"
        );
    }
    sc.check();
}

#[test]
fn malformed_records_get_marshalling_error_and_the_connection_lives_on() {
    let mut sc = Scene::new();
    let acl = open_acl_unsafe();
    let mut cases: Vec<(&str, i32, Vec<u8>)> = Vec::new();
    let mut w = Writer::new();
    w.i32(1000).raw(b"abc");
    cases.push(("create, path length past the end", op::CREATE, w.buf));
    let mut w = Writer::new();
    w.string("/x").buffer(None).i32(i32::MAX);
    cases.push(("create, ACL count 2^31-1", op::CREATE, w.buf));
    let mut w = Writer::new();
    w.string("/x").i32(-2);
    cases.push(("create, data length -2", op::CREATE, w.buf));
    cases.push(("create, empty body", op::CREATE, Vec::new()));
    let mut w = Writer::new();
    w.string("/x").buffer(Some(b"v"));
    cases.push(("setData without a version", op::SET_DATA, w.buf));
    let mut w = Writer::new();
    w.string("/");
    cases.push(("getData without the watch flag", op::GET_DATA, w.buf));
    let mut w = Writer::new();
    w.string("/").i32(-1).raw(&[0xff; 3]);
    cases.push(("setACL with a truncated vector", op::SET_ACL, w.buf));
    let mut w = Writer::new();
    write_multi_header(&mut w, 9999, false, -1);
    write_multi_header(&mut w, -1, true, -1);
    cases.push(("multi with an unknown op type", op::MULTI, w.buf));
    let mut w = Writer::new();
    write_multi_header(&mut w, op::GET_DATA, false, -1);
    w.string("/").bool(false);
    write_multi_header(&mut w, -1, true, -1);
    cases.push(("multi with a read op", op::MULTI, w.buf));
    let mut b = codec::multi_read_body(&[zk::proto::ReadOp::GetData { path: "/".into() }]);
    b.truncate(b.len() - 9);
    cases.push(("multiRead without its terminator", op::MULTI_READ, b));
    let mut w = Writer::new();
    write_multi_header(&mut w, op::CREATE, false, -1);
    w.raw(&codec::create_body("/bad-flags", None, &acl, 77, None));
    write_multi_header(&mut w, -1, true, -1);
    cases.push(("multi create with flags 77", op::MULTI, w.buf));
    let mut w = Writer::new();
    write_multi_header(&mut w, op::CREATE, false, -1);
    w.raw(&codec::create_body("/in-multi", None, &acl, 0, None));
    write_multi_header(&mut w, op::DELETE, false, -1);
    w.string("/in-multi");
    write_multi_header(&mut w, -1, true, -1);
    cases.push(("multi whose second op is cut short", op::MULTI, w.buf));
    let mut w = Writer::new();
    w.i64(0).i32(0x0fff_ffff);
    cases.push((
        "setWatches with a huge vector count",
        op::SET_WATCHES,
        w.buf,
    ));
    let mut w = Writer::new();
    w.i64(0).i32(0).i32(0).i32(0).i32(1);
    cases.push((
        "setWatches2 missing its last vector",
        op::SET_WATCHES2,
        w.buf,
    ));

    let mut c = sc.srv.client();
    for (name, code, body) in &cases {
        let before = {
            let (h, _) = c.call_xid(xid::PING, op::PING, &[]).unwrap();
            h.zxid
        };
        let (h, rest) = c
            .call(*code, body)
            .unwrap_or_else(|e| panic!("{name}: no reply: {e}"));
        assert_eq!(h.err, Code::MarshallingError.code(), "{name}");
        assert!(rest.is_empty(), "{name}: error reply with a body");
        // A write that fails to decode still becomes an error txn (PROTOCOL.md §10.2); a read
        // consumes nothing.
        let want = if op::is_write(*code) {
            before + 1
        } else {
            before
        };
        assert_eq!(h.zxid, want, "{name}: reply zxid");
        // The same connection keeps working.
        c.sync("/").unwrap_or_else(|e| panic!("after {name}: {e}"));
    }
    assert_eq!(sc.healthy.exists("/in-multi", false).unwrap(), None);
    assert_eq!(sc.healthy.exists("/bad-flags", false).unwrap(), None);
    round_trip(&mut c, 2000).unwrap();

    // A path that is not UTF-8: ZooKeeper decodes it leniently and rejects the path (-8);
    // refusing the record (-5) is as good. Either way no node, and the connection lives.
    let mut w = Writer::new();
    w.buffer(Some(b"/\xff\xfe"));
    w.buffer(None);
    zk::proto::records::write_acl_vec(&mut w, &acl);
    w.i32(0);
    let (h, _) = c.call(op::CREATE, &w.buf).unwrap();
    assert!(
        h.err == Code::MarshallingError.code() || h.err == Code::BadArguments.code(),
        "non-UTF-8 path: err {}",
        h.err
    );
    c.sync("/").unwrap();

    // A frame too short for a RequestHeader: nothing to answer, so the connection closes.
    for payload in [&[][..], &[0, 0, 0, 1][..], &[0, 0, 0, 1, 0, 0, 0][..]] {
        let mut c = sc.srv.client();
        c.send_raw(&frame(payload)).unwrap();
        assert_closed_after(&mut c, &format!("{}-byte request frame", payload.len()));
    }
    sc.check();
}

#[test]
fn clients_that_vanish_mid_frame_or_mid_reply() {
    let mut sc = Scene::new();
    let acl = open_acl_unsafe();

    // Half a ConnectRequest, then gone.
    {
        let mut s = sc.srv.raw();
        let f = frame(&connect_payload());
        s.write_all(&f[..20]).unwrap();
    }
    // A session with an ephemeral node sends half a request and vanishes. The session
    // outlives its connection (until it expires), so the node stays.
    {
        let mut c = sc.srv.client();
        c.create("/vanished-eph", None, &acl, 1).unwrap();
        let f = request_frame(9, op::GET_DATA, &codec::path_watch_body("/", false));
        c.send_raw(&f[..f.len() - 3]).unwrap();
    }
    sc.check();
    assert!(sc.healthy.exists("/vanished-eph", false).unwrap().is_some());

    // A client that pipelines requests for a large node and vanishes with replies unread: its
    // socket is reset under the server's writes.
    create_large_node(&mut sc.healthy, "/big", 256 << 10);
    for _ in 0..5 {
        let mut c = sc.srv.client();
        let f = request_frame(1, op::GET_DATA, &codec::path_watch_body("/big", false));
        let mut burst = Vec::new();
        for _ in 0..64 {
            burst.extend_from_slice(&f);
        }
        let _ = c.send_raw(&burst);
        // Wait until replies are arriving, then drop with them unread (a reset).
        let s = c.stream().try_clone().unwrap();
        s.set_read_timeout(Some(CLOSE_TIMEOUT)).unwrap();
        let mut b = [0u8; 1];
        assert!(s.peek(&mut b).is_ok(), "no reply to a pipelined burst");
        drop(s);
        drop(c);
    }
    sc.check();
}

fn create_large_node(c: &mut Client, path: &str, size: usize) {
    let data = vec![0x42u8; size];
    c.create(path, Some(&data), &open_acl_unsafe(), 0).unwrap();
}

#[test]
fn a_client_that_never_reads_does_not_stall_others() {
    let mut sc = Scene::new();
    create_large_node(&mut sc.healthy, "/flood", 512 << 10);
    let rss0 = sc.srv.rss_kib();
    let mut c = sc.srv.client();
    c.set_request_timeout(Duration::from_secs(2));
    let f = request_frame(1, op::GET_DATA, &codec::path_watch_body("/flood", false));
    // Keep writing until the server stops reading from us (backpressure) or we sent plenty.
    let start = Instant::now();
    let mut sent = 0;
    while sent < 2000 && start.elapsed() < Duration::from_secs(20) {
        if c.send_raw(&f).is_err() {
            break;
        }
        sent += 1;
    }
    // Other sessions are still served while the flooder's replies pile up, and the flooder
    // itself was held back, not dropped: its replies are still there to read.
    sc.check();
    let (h, body) = next_reply(&mut c).expect("flooder's first reply");
    assert_eq!((h.xid, h.err, body.len()), (1, 0, 4 + (512 << 10) + 68));
    eprintln!(
        "flooder sent {sent} getData requests for 512 KiB; server RSS {rss0:?} -> {:?} KiB",
        sc.srv.rss_kib()
    );
    if let (Some(a), Some(b)) = (rss0, sc.srv.rss_kib()) {
        // 2000 replies of 512 KiB would be 1 GiB; the server must hold back instead.
        assert!(
            b.saturating_sub(a) < 128 * 1024,
            "server RSS grew {} KiB for {sent} unread replies",
            b - a
        );
    }
    drop(c);
    sc.check();
}

#[test]
fn connections_beyond_max_client_cnxns_are_refused() {
    const CAP: usize = 5;
    let mut sc = Scene::with_config(&["maxClientCnxns=5"]);
    let mut clients: Vec<Client> = (0..CAP - 1).map(|_| sc.srv.client()).collect();
    for _ in 0..3 {
        let mut s = sc.srv.raw();
        let _ = s.write_all(&frame(&connect_payload()));
        let closed = expect_closed(&mut s).expect("a connection over the cap stayed open");
        assert!(
            closed.bytes.is_empty(),
            "refused connection got {:02x?}",
            closed.bytes
        );
        assert!(Client::connect(&sc.srv.addr, SESSION_TIMEOUT_MS).is_err());
    }
    assert!(sc.srv.is_alive());
    // The first ones, the healthy session among them, keep working.
    sc.check_healthy();
    for (i, c) in clients.iter_mut().enumerate() {
        round_trip(c, 3000 + i as u32).unwrap();
    }
    // A slot freed by a leaving client can be taken again, once the server has seen it go.
    clients.pop().unwrap().close().unwrap();
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    let mut again = loop {
        match Client::connect(&sc.srv.addr, SESSION_TIMEOUT_MS) {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(POLL_INTERVAL);
            }
            Err(e) => panic!("freed slot not reusable: {e}"),
        }
    };
    round_trip(&mut again, 4000).unwrap();
    drop(again);
    drop(clients);
    // Only with slots free again does ruok (itself a connection) have room.
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    while client::four_letter_word(&sc.srv.addr, "ruok", Duration::from_secs(2))
        .ok()
        .as_deref()
        != Some("imok")
    {
        assert!(
            Instant::now() < deadline,
            "server never had room for ruok again"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
    sc.check();
}

#[test]
fn bad_handshakes_are_refused() {
    let mut sc = Scene::new();
    // A client that claims to have seen a future zxid is closed without a response.
    let mut s = sc.srv.raw();
    let mut w = Writer::new();
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: i64::MAX,
        timeout_ms: SESSION_TIMEOUT_MS,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    }
    .write(&mut w);
    s.write_all(&frame(&w.buf)).unwrap();
    let closed = expect_closed(&mut s).unwrap();
    assert!(
        closed.bytes.is_empty(),
        "future lastZxidSeen got {:02x?}",
        closed.bytes
    );

    // A wrong password, and a session that never existed: an invalid ConnectResponse
    // (timeout 0), then close.
    let sid = sc.healthy.session_id();
    let e = Client::resume(&sc.srv.addr, sid, &[1; 16], SESSION_TIMEOUT_MS).unwrap_err();
    assert!(client::is_session_expired(&e), "wrong password: {e}");
    let e = Client::resume(&sc.srv.addr, 0x0bad_5e55, &[0; 16], SESSION_TIMEOUT_MS).unwrap_err();
    assert!(client::is_session_expired(&e), "unknown session: {e}");
    let mut s = sc.srv.raw();
    let mut w = Writer::new();
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: SESSION_TIMEOUT_MS,
        session_id: 0x0bad_5e55,
        passwd: vec![0; 16],
        read_only: Some(false),
    }
    .write(&mut w);
    s.write_all(&frame(&w.buf)).unwrap();
    let closed = expect_closed(&mut s).unwrap();
    let (frames, rest) = split_frames(&closed.bytes);
    assert!(rest.is_empty());
    assert_eq!(
        frames.len(),
        1,
        "expected exactly the invalid ConnectResponse"
    );
    let resp = zk::proto::ConnectResponse::read(&frames[0]).unwrap();
    assert_eq!((resp.timeout_ms, resp.session_id), (0, 0));
    assert_eq!(resp.passwd, vec![0; 16]);
    // The healthy session was not disturbed by the failed takeover.
    sc.check();

    // Watches and auth state of the healthy session still work after all that.
    sc.healthy
        .add_watch("/w", add_watch_mode::PERSISTENT)
        .unwrap();
    sc.healthy
        .create("/w", None, &open_acl_unsafe(), 0)
        .unwrap();
    let ev = sc
        .healthy
        .next_event(Duration::from_secs(5))
        .unwrap()
        .expect("NodeCreated");
    assert_eq!(ev.path, "/w");
    sc.healthy.remove_watches("/w", watcher_type::ANY).unwrap();
}
