//! Sessions across a restart (issue 3): after `kill -9` and restart on the same data
//! directory, a client that resumes its session within its timeout keeps the session id and
//! its ephemerals; a session nobody resumes expires after the restart and its ephemerals go;
//! a session closed before the crash stays closed. Also: SIGTERM exits 0 and leaves a data
//! directory that `zk snapshot verify` accepts, with every acknowledged write in it.

mod common;

use common::{assert_verifies, free_port, spawn_server};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use zk::client::Client;
use zk::proto::open_acl_unsafe;

/// Starts the server on `dir` and waits until it answers. The caller kills and waits it.
fn start(dir: &Path, port: u16) -> Child {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nminSessionTimeout=1000\nmaxSessionTimeout=60000\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    spawn_server(&cfg, port, None)
}

fn temp(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("zk-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn sessions_survive_restart_and_unresumed_ones_expire() {
    let dir = temp("restart");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = start(&dir, port);
    let mut a = Client::connect(&addr, 30_000).unwrap();
    let mut b = Client::connect(&addr, 1_500).unwrap();
    let c = Client::connect(&addr, 30_000).unwrap();
    a.create("/a-eph", Some(b"a"), &open_acl_unsafe(), 1)
        .unwrap();
    b.create("/b-eph", Some(b"b"), &open_acl_unsafe(), 1)
        .unwrap();
    let (a_id, a_pw) = (a.session_id(), a.password().to_vec());
    let c_id = c.session_id();
    c.close().unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    drop(a);
    drop(b);

    let mut server = start(&dir, port);
    // A resumes within its timeout: same session, ephemeral intact.
    let mut a = Client::resume(&addr, a_id, &a_pw, 30_000).expect("session a resumes");
    assert_eq!(a.session_id(), a_id);
    assert!(a.exists("/a-eph", false).unwrap().is_some());
    // The closed session stays closed.
    let e = match Client::resume(&addr, c_id, &[0; 16], 30_000) {
        Ok(_) => panic!("a closed session was resumed"),
        Err(e) => e,
    };
    assert!(zk::client::is_session_expired(&e), "{e}");
    // B never comes back: its ephemeral goes once its timeout passes after the restart.
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.exists("/b-eph", false).unwrap().is_some() {
        assert!(Instant::now() < deadline, "unresumed session never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(a.exists("/a-eph", false).unwrap().is_some());
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_exits_cleanly_and_leaves_a_verifiable_directory() {
    let dir = temp("sigterm");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let server = start(&dir, port);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|t| {
            let (addr, stop) = (addr.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let Ok(mut c) = Client::connect(&addr, 30_000) else {
                    return acked;
                };
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let p = format!("/t{t}-{i}");
                    match c.create(&p, Some(b"x"), &open_acl_unsafe(), 0) {
                        Ok(_) => acked.push(p),
                        Err(_) => break,
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = server.wait_with_output().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(out.status.success(), "SIGTERM exit status {:?}", out.status);
    let acked: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(!acked.is_empty());
    assert_verifies(&dir.join("data"));
    let mut server = start(&dir, port);
    let mut c = Client::connect(&addr, 30_000).unwrap();
    for p in &acked {
        assert!(
            c.exists(p, false).unwrap().is_some(),
            "{p} lost after SIGTERM"
        );
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
