//! Crash test (issue 3): writers on many sessions, `kill -9` of the real server at random
//! moments, 20 rounds on one data directory. After every restart: every acknowledged write
//! is there, no multi is half-applied, sequential counters never go back, and
//! `zk snapshot verify` accepts the directory. snapCount is small, so snapshots and purges
//! happen (and get interrupted) during the rounds.

mod common;

use common::{assert_verifies, free_port, spawn_server};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zk::client::Client;
use zk::proto::{open_acl_unsafe, CreateRequest, MultiOp};

const ROUNDS: usize = 20;
const WRITERS: usize = 4;

/// A small deterministic PRNG (xorshift), so a failing run can be replayed from its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn start(dir: &Path, port: u16) -> Child {
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nsnapCount=300\npreAllocSize=1024\n4lw.commands.whitelist=*\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    spawn_server(&cfg, port, Some(&dir.join("server.log")))
}

/// What the writers were told succeeded.
#[derive(Default)]
struct Acked {
    /// Sequential node path -> its data.
    created: BTreeMap<String, Vec<u8>>,
    /// Multi pairs: both nodes must exist.
    pairs: Vec<(String, String)>,
    /// Highest sequence number acknowledged.
    max_seq: i64,
    /// Counter node -> highest version acknowledged by a versioned set.
    versions: BTreeMap<String, i32>,
}

fn seq_of(path: &str) -> i64 {
    path[path.len() - 10..].parse().unwrap()
}

fn writer(addr: String, t: usize, stop: Arc<AtomicBool>, acked: Arc<Mutex<Acked>>) {
    let Ok(mut c) = Client::connect(&addr, 4000) else {
        return;
    };
    let counter = format!("/crash/k{t}");
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let data = format!("w{t}-{i}").into_bytes();
        match c.create("/crash/s-", Some(&data), &open_acl_unsafe(), 2) {
            Ok(p) => {
                let mut a = acked.lock().unwrap();
                a.max_seq = a.max_seq.max(seq_of(&p));
                a.created.insert(p, data.clone());
            }
            Err(_) => return,
        }
        let version = match c.get_data(&counter, false) {
            Ok((_, st)) => st.version,
            Err(_) => return,
        };
        match c.set_data(&counter, Some(&data), version) {
            Ok(st) => {
                let mut a = acked.lock().unwrap();
                let v = a.versions.entry(counter.clone()).or_insert(0);
                *v = (*v).max(st.version);
            }
            Err(e) if e.code().is_some() => {}
            Err(_) => return,
        }
        if i % 3 == 0 {
            let (a_path, b_path) = (format!("/crash/pa{t}-{i}"), format!("/crash/pb{t}-{i}"));
            let mk = |p: &str| {
                MultiOp::Create(CreateRequest {
                    op: zk::proto::consts::op::CREATE,
                    path: p.to_owned(),
                    data: Some(b"pair".to_vec()),
                    acl: Some(open_acl_unsafe()),
                    flags: 0,
                    ttl: None,
                })
            };
            match c.multi(&[mk(&a_path), mk(&b_path)]) {
                Ok(_) => acked.lock().unwrap().pairs.push((a_path, b_path)),
                Err(_) => return,
            }
        }
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let seed = std::env::var("ZK_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    eprintln!("crash test seed {seed} (replay with ZK_CRASH_SEED={seed})");
    let mut rng = Rng(seed | 1);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("zk-crash-{}-{}", std::process::id(), seed));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let acked = Arc::new(Mutex::new(Acked::default()));
    {
        let mut child = start(&dir, port);
        let mut c = Client::connect(&addr, 4000).unwrap();
        c.create("/crash", None, &open_acl_unsafe(), 0).unwrap();
        for t in 0..WRITERS {
            c.create(&format!("/crash/k{t}"), None, &open_acl_unsafe(), 0)
                .unwrap();
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    for round in 0..ROUNDS {
        let mut child = start(&dir, port);
        // Check what the previous rounds were told.
        {
            let mut c = Client::connect(&addr, 4000).unwrap();
            let a = acked.lock().unwrap();
            for (p, d) in &a.created {
                let got = c.get_data(p, false);
                assert!(
                    matches!(&got, Ok((Some(x), _)) if x == d),
                    "round {round}: acknowledged create {p} lost or changed: {got:?}"
                );
            }
            for (x, y) in &a.pairs {
                assert!(
                    c.exists(x, false).unwrap().is_some(),
                    "round {round}: {x} lost"
                );
                assert!(
                    c.exists(y, false).unwrap().is_some(),
                    "round {round}: {y} lost"
                );
            }
            for (p, v) in &a.versions {
                let (_, st) = c.get_data(p, false).unwrap();
                assert!(
                    st.version >= *v,
                    "round {round}: {p} version went back from {v} to {}",
                    st.version
                );
            }
            // Half-applied multis: every pa node has its pb twin.
            let kids = c.get_children("/crash", false).unwrap();
            for k in kids.iter().filter(|k| k.starts_with("pa")) {
                let twin = format!("pb{}", &k[2..]);
                assert!(
                    kids.contains(&twin),
                    "round {round}: multi half-applied: {k} without {twin}"
                );
            }
            // The sequential counter never goes back.
            let p = c
                .create("/crash/s-", Some(b"probe"), &open_acl_unsafe(), 2)
                .unwrap();
            assert!(
                seq_of(&p) > a.max_seq,
                "round {round}: sequence went back: {p} after {}",
                a.max_seq
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..WRITERS)
            .map(|t| {
                let (addr, stop, acked) = (addr.clone(), stop.clone(), acked.clone());
                std::thread::spawn(move || writer(addr, t, stop, acked))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50 + rng.next() % 400));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().unwrap();
        }
        assert_verifies(&dir.join("data"));
    }
    let a = acked.lock().unwrap();
    eprintln!(
        "{} creates, {} multis acknowledged over {ROUNDS} rounds",
        a.created.len(),
        a.pairs.len()
    );
    assert!(
        a.created.len() > ROUNDS * 10,
        "the writers barely wrote anything"
    );
    let snaps = std::fs::read_dir(dir.join("data/version-2"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("snapshot.")
        })
        .count();
    assert!(snaps >= 1, "snapCount=300 should have produced snapshots");
    assert!(
        snaps <= 3 + 1,
        "purge should keep about 3 snapshots, found {snaps}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
