//! `zk::client::session::Session`, the handle behind `zk cli`, against the real server:
//! watch events delivered before the replies that follow them, one-time and persistent
//! watches and their removal events, chroot paths, the Java client's path checks, failover
//! to the next server, a session resumed after a cut connection with its watches re-armed,
//! and an expired session reported and replaced. Connections are cut and blocked with a
//! small TCP proxy in the test; every wait polls a condition under a bound.

mod common;

use common::TestServer;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use zk::client::path::ConnectString;
use zk::client::session::{
    keeper_state, EventHandler, Session, SessionConfig, SessionEvent, States, WatchedEvent, ZkError,
};
use zk::client::Client;
use zk::proto::consts::{add_watch_mode, event, watcher_type};
use zk::proto::records::open_acl_unsafe;
use zk::proto::{Code, CreateMode};

/// How long a test waits for the session to reach a state or deliver an event.
const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(10);

type Seen = Arc<Mutex<Vec<SessionEvent>>>;

fn start(connect: &str, timeout_ms: i32) -> (Session, Seen) {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = Arc::clone(&seen);
    let handler: EventHandler = Arc::new(move |ev| s2.lock().unwrap().push(ev));
    let mut cfg = SessionConfig::new(ConnectString::parse(connect).unwrap(), timeout_ms);
    cfg.renew_expired = true;
    let s = Session::start(cfg, handler);
    assert!(s.wait_connected(WAIT), "no connection to {connect}");
    (s, seen)
}

fn watched(seen: &Seen) -> Vec<WatchedEvent> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Watched(w) => Some(w.clone()),
            SessionEvent::Notice(_) => None,
        })
        .collect()
}

fn notices(seen: &Seen) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Notice(n) => Some(n.clone()),
            SessionEvent::Watched(_) => None,
        })
        .collect()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(POLL);
    }
}

fn node(t: i32, p: &str) -> (i32, Option<String>) {
    (t, Some(p.to_owned()))
}

fn kinds(seen: &Seen) -> Vec<(i32, Option<String>)> {
    watched(seen)
        .into_iter()
        .map(|w| (w.event_type, w.path))
        .collect()
}

#[test]
fn events_come_before_the_replies_that_follow_them() {
    let srv = TestServer::start();
    let (s, seen) = start(&srv.addr, 30_000);
    let mut other = srv.client();
    let acl = open_acl_unsafe();
    s.create("/a", Some(b"1"), &acl, CreateMode::Persistent, None)
        .unwrap();
    s.get_data("/a", true).unwrap();
    other.set_data("/a", Some(b"2"), -1).unwrap();
    // sync's reply comes after the notification, so the event is already delivered
    s.sync("/").unwrap();
    assert_eq!(
        kinds(&seen),
        [(-1, None), node(event::NODE_DATA_CHANGED, "/a")]
    );
    // a one-time watch fires once
    other.set_data("/a", Some(b"3"), -1).unwrap();
    s.sync("/").unwrap();
    assert_eq!(watched(&seen).len(), 2);
    // exists on a missing node watches its creation
    assert_eq!(s.exists("/n", true).unwrap(), None);
    other.create("/n", None, &acl, 0).unwrap();
    s.sync("/").unwrap();
    assert_eq!(kinds(&seen)[2], node(event::NODE_CREATED, "/n"));
    // a persistent recursive watch sees the subtree until removed
    s.add_watch("/a", add_watch_mode::PERSISTENT_RECURSIVE)
        .unwrap();
    other.create("/a/x", None, &acl, 0).unwrap();
    other.set_data("/a/x", Some(b"y"), -1).unwrap();
    s.sync("/").unwrap();
    assert_eq!(
        kinds(&seen)[3..],
        [
            node(event::NODE_CREATED, "/a/x"),
            node(event::NODE_DATA_CHANGED, "/a/x")
        ]
    );
    s.remove_all_watches("/a", watcher_type::ANY, false)
        .unwrap();
    // the removal event is delivered before removeWatches returns
    assert_eq!(kinds(&seen)[5], node(7, "/a"));
    let e = s
        .remove_all_watches("/a", watcher_type::ANY, false)
        .unwrap_err();
    assert_eq!(e.to_string(), "KeeperErrorCode = No such watcher for /a");
    other.set_data("/a/x", Some(b"z"), -1).unwrap();
    s.sync("/").unwrap();
    assert_eq!(watched(&seen).len(), 6);
    s.close();
    assert_eq!(s.state(), States::Closed);
    assert_eq!(watched(&seen).last().unwrap().state, keeper_state::CLOSED);
}

#[test]
fn chroot_and_client_side_checks() {
    let srv = TestServer::start();
    let mut other = srv.client();
    let acl = open_acl_unsafe();
    other.create("/app", None, &acl, 0).unwrap();
    let (s, seen) = start(&format!("{}/app", srv.addr), 30_000);
    assert_eq!(
        s.create("/n", Some(b"v"), &acl, CreateMode::Persistent, None)
            .unwrap(),
        "/n"
    );
    assert_eq!(
        s.create("/q-", None, &acl, CreateMode::PersistentSequential, None)
            .unwrap(),
        "/q-0000000001"
    );
    assert_eq!(other.get_data("/app/n", false).unwrap().0.unwrap(), b"v");
    let mut kids = s.get_children("/", false).unwrap();
    kids.sort();
    assert_eq!(kids, ["n", "q-0000000001"]);
    s.get_data("/n", true).unwrap();
    other.set_data("/app/n", Some(b"w"), -1).unwrap();
    s.sync("/").unwrap();
    assert_eq!(kinds(&seen)[1], node(event::NODE_DATA_CHANGED, "/n"));
    let e = s.delete("/nope", -1).unwrap_err();
    assert_eq!(e.to_string(), "KeeperErrorCode = NoNode for /nope");
    // the Java client's checks, before anything is sent
    assert_eq!(
        s.get_data("n", false).unwrap_err(),
        ZkError::IllegalArgument("Path must start with / character".into())
    );
    assert_eq!(
        s.create("/x/", None, &acl, CreateMode::Persistent, None)
            .unwrap_err(),
        ZkError::IllegalArgument("Path must not end with / character".into())
    );
    assert_eq!(
        s.create("/x", None, &[], CreateMode::Persistent, None)
            .unwrap_err()
            .code(),
        Some(Code::InvalidAcl)
    );
    assert_eq!(
        s.create("/t", None, &acl, CreateMode::PersistentWithTtl, Some(0))
            .unwrap_err(),
        ZkError::IllegalArgument(
            "ttl must be positive and cannot be larger than: 1099511627775".into()
        )
    );
}

#[test]
fn failover_to_the_next_server_opens_a_new_session_there() {
    let a = TestServer::start();
    let b = TestServer::start();
    let a_addr = a.addr.clone();
    // The shortest session the servers allow (2 ticks), so that it expires quickly.
    let (s, seen) = start(&format!("{},{}", a.addr, b.addr), 4000);
    assert_eq!(s.connected_host().as_deref(), Some(a.addr.as_str()));
    let first = s.session_id();
    s.create("/e", None, &open_acl_unsafe(), CreateMode::Ephemeral, None)
        .unwrap();
    drop(a);
    wait_until("a connection to the second server", || {
        s.state() == States::Connected && s.connected_host().as_deref() == Some(b.addr.as_str())
    });
    // b never had the session: it is reported expired and replaced
    let states: Vec<i32> = watched(&seen).iter().map(|w| w.state).collect();
    assert_eq!(
        states,
        [
            keeper_state::SYNC_CONNECTED,
            keeper_state::DISCONNECTED,
            keeper_state::EXPIRED,
            keeper_state::SYNC_CONNECTED
        ]
    );
    let n = notices(&seen);
    assert!(
        n[0].starts_with(&format!("lost the connection to {a_addr}"))
            && n[0].ends_with(&format!("trying {}", b.addr)),
        "{n:?}"
    );
    // b refuses the session (it has seen a later zxid than b's own); once the session
    // timeout has passed without a server taking it back, it is replaced.
    assert_eq!(
        n[1],
        format!(
            "session 0x{first:x} has expired (no server took it back within 8000 ms); \
             opening a new session"
        )
    );
    assert!(n[2].starts_with(&format!("connected to {}; new session 0x", b.addr)));
    assert_ne!(s.session_id(), first);
    assert_eq!(s.exists("/e", false).unwrap(), None);
    assert_eq!(s.get_children("/", false).unwrap(), ["zookeeper"]);
}

/// A TCP proxy whose connections the test can cut, and which can refuse new ones.
struct Proxy {
    addr: String,
    blocked: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: &str) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let blocked = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (b2, l2, target) = (Arc::clone(&blocked), Arc::clone(&live), target.to_owned());
        thread::spawn(move || {
            for c in l.incoming() {
                let Ok(client) = c else { continue };
                if b2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                {
                    let mut g = l2.lock().unwrap();
                    g.push(client.try_clone().unwrap());
                    g.push(server.try_clone().unwrap());
                }
                pump(client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(server, client);
            }
        });
        Proxy {
            addr,
            blocked,
            live,
        }
    }

    /// Closes every proxied connection.
    fn cut(&self) {
        for s in self.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn block(&self, on: bool) {
        self.blocked.store(on, Ordering::SeqCst);
        if on {
            self.cut();
        }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    thread::spawn(move || {
        let mut buf = [0u8; 16 << 10];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _: io::Result<()> = from.shutdown(Shutdown::Both);
    });
}

#[test]
fn a_cut_connection_resumes_the_session_and_rearms_its_watches() {
    let srv = TestServer::start();
    let proxy = Proxy::start(&srv.addr);
    let (s, seen) = start(&proxy.addr, 30_000);
    let id = s.session_id();
    let acl = open_acl_unsafe();
    s.create("/e", None, &acl, CreateMode::Ephemeral, None)
        .unwrap();
    s.create("/w", None, &acl, CreateMode::Persistent, None)
        .unwrap();
    s.get_data("/w", true).unwrap();
    proxy.cut();
    wait_until("the session to be resumed", || {
        notices(&seen)
            .iter()
            .any(|n| n.ends_with(&format!("session 0x{id:x} resumed")))
    });
    assert_eq!(s.session_id(), id);
    assert!(s.exists("/e", false).unwrap().is_some());
    // SetWatches re-armed the data watch on the new connection
    let mut other: Client = srv.client();
    other.set_data("/w", Some(b"x"), -1).unwrap();
    s.sync("/").unwrap();
    let k = kinds(&seen);
    assert_eq!(k.last().unwrap(), &node(event::NODE_DATA_CHANGED, "/w"));
    let states: Vec<i32> = watched(&seen)
        .iter()
        .filter(|w| w.event_type == -1)
        .map(|w| w.state)
        .collect();
    assert_eq!(
        states,
        [
            keeper_state::SYNC_CONNECTED,
            keeper_state::DISCONNECTED,
            keeper_state::SYNC_CONNECTED
        ]
    );
}

#[test]
fn an_expired_session_is_reported_and_replaced() {
    // tickTime 200 ms: sessions of 2 s are allowed and expire quickly; the client gives
    // up on its own only after twice that, so here the server is the one to say it.
    let srv = TestServer::with_config(&["tickTime=200"]);
    let proxy = Proxy::start(&srv.addr);
    let (s, seen) = start(&proxy.addr, 2000);
    let first = s.session_id();
    s.create("/e", None, &open_acl_unsafe(), CreateMode::Ephemeral, None)
        .unwrap();
    proxy.block(true);
    // the server expires the session, which deletes its ephemeral
    let mut other = srv.client();
    wait_until("the server to expire the session", || {
        other.exists("/e", false).unwrap().is_none()
    });
    // while disconnected, requests fail with ConnectionLoss
    let e = s.get_children("/", false).unwrap_err();
    assert_eq!(e.code(), Some(Code::ConnectionLoss));
    proxy.block(false);
    wait_until("a new session", || {
        s.state() == States::Connected && s.session_id() != first
    });
    let n = notices(&seen);
    assert!(
        n.contains(&format!(
            "session 0x{first:x} has expired; opening a new session"
        )),
        "{n:?}"
    );
    let states: Vec<i32> = watched(&seen).iter().map(|w| w.state).collect();
    assert_eq!(
        states,
        [
            keeper_state::SYNC_CONNECTED,
            keeper_state::DISCONNECTED,
            keeper_state::EXPIRED,
            keeper_state::SYNC_CONNECTED
        ]
    );
    assert_eq!(s.get_children("/", false).unwrap(), ["zookeeper"]);
}

#[test]
fn a_dead_server_fails_requests_quickly() {
    let port = common::free_port();
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = Arc::clone(&seen);
    let cfg = SessionConfig::new(
        ConnectString::parse(&format!("127.0.0.1:{port}")).unwrap(),
        30_000,
    );
    let s = Session::start(cfg, Arc::new(move |ev| s2.lock().unwrap().push(ev)));
    assert!(!s.wait_first_round(WAIT));
    assert_eq!(s.state(), States::Connecting);
    let t = Instant::now();
    let e = s.exists("/", false).unwrap_err();
    assert_eq!(e.to_string(), "KeeperErrorCode = ConnectionLoss for /");
    assert!(t.elapsed() < Duration::from_secs(5));
    // nothing was ever connected, so nothing is reported
    assert!(seen.lock().unwrap().is_empty());
}
