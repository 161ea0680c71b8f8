//! Ensembles of real `zk server` processes (Zab and FastLeaderElection end to end): one
//! leader is elected and writes replicate; the highest sid of the first quorum leads; an
//! acknowledged write survives kill -9 of the leader under load; a restarted follower
//! catches up by DIFF and a wiped one by SNAP; a partitioned leader steps down and its
//! unacknowledged txn is truncated when it rejoins; a session moves between servers; an
//! observer serves reads but does not vote. Every replica's recovered tree is compared with
//! `zk snapshot dump` after the servers are stopped. Corresponds to ZooKeeper's
//! QuorumPeerMainTest, FollowerResyncConcurrencyTest, ObserverTest and the like.

mod common;

use common::ensemble::{
    dump_paths, tail, Ensemble, COMMIT_LOG_COUNT, FLW_TIMEOUT, MODE_TIMEOUT, SESSION_TIMEOUT_MS,
    SYNC_LIMIT_TICKS, TICK_TIME_MS,
};
use common::POLL_INTERVAL;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zk::client::{Client, ClientError};
use zk::proto::open_acl_unsafe;

/// Create flags (ZooKeeper's CreateMode values).
const PERSISTENT: i32 = 0;
const EPHEMERAL: i32 = 1;
const PERSISTENT_SEQUENTIAL: i32 = 2;

/// How long a negative ("nobody serves without a quorum") is watched: many election rounds
/// at a 100 ms tick.
const NO_QUORUM_WINDOW: Duration = Duration::from_secs(2);
/// How long a server may keep serving after losing its quorum beyond syncLimit ticks.
const STEP_DOWN_SLACK: Duration = Duration::from_millis(2500);
/// How long a server that lost its leader (killed) may take to stop serving.
const LEADER_LOSS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the writers get to reach each target count of acknowledged creates.
const LOAD_PHASE_TIMEOUT: Duration = Duration::from_secs(60);
/// Acknowledged creates wanted before the kill, after it, and after the restart.
const LOAD_ACKS_PER_PHASE: usize = 200;
/// Writer threads in the kill -9 test.
const WRITERS: usize = 4;
/// How long a writer waits for one create's reply before moving to another server.
const WRITER_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a follower may take to log how it synchronized.
const SYNC_LOG_TIMEOUT: Duration = Duration::from_secs(30);
/// Nodes written while a follower is down.
const NODES_WHILE_DOWN: usize = 100;
/// For how many session timeouts a moved session is kept alive from its new server.
const KEEPALIVE_TIMEOUTS: u32 = 3;
/// Pings per session timeout while keeping it alive.
const PINGS_PER_TIMEOUT: u64 = 4;
/// How long an abandoned session may take to expire, in session timeouts, plus slack.
const EXPIRY_TIMEOUTS: u32 = 3;
const EXPIRY_SLACK: Duration = Duration::from_secs(5);
/// How long a node committed on the leader may take to be visible on every server.
const REPLICATION_TIMEOUT: Duration = Duration::from_secs(10);

/// After a `sync`, `path`'s data on `sid` (None if it does not exist), read through a
/// fresh session there that is closed afterwards.
fn read_synced(ens: &mut Ensemble, sid: u64, path: &str) -> Option<Vec<u8>> {
    let mut c = ens.client(sid);
    c.sync("/")
        .unwrap_or_else(|e| ens.fail(&format!("sync on server.{sid}: {e}")));
    let got = match c.get_data(path, false) {
        Ok((d, _)) => Some(d.unwrap_or_default()),
        Err(ClientError::Keeper(zk::proto::Code::NoNode)) => None,
        Err(e) => ens.fail(&format!("getData {path} on server.{sid}: {e}")),
    };
    let _ = c.close();
    got
}

/// Waits, at most `bound`, until every running server, after a sync, agrees that `path`
/// exists (`want`) or not. One session per server serves every poll.
fn wait_everywhere_within(ens: &mut Ensemble, path: &str, want: bool, bound: Duration) {
    let sids: Vec<u64> = ens
        .sids()
        .into_iter()
        .filter(|&s| ens.is_running(s))
        .collect();
    let what = format!(
        "{path} to {} on every server {sids:?}",
        if want { "exist" } else { "be gone" }
    );
    let mut clients: BTreeMap<u64, Client> = BTreeMap::new();
    ens.wait_for(&what, bound, |e| {
        for &s in &sids {
            let c = match clients.entry(s) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => v.insert(e.client(s)),
            };
            match c.sync("/").and_then(|_| c.exists(path, false)) {
                Ok(st) if st.is_some() == want => {}
                Ok(_) => return None,
                Err(_) => {
                    clients.remove(&s);
                    return None;
                }
            }
        }
        Some(())
    });
    for c in clients.into_values() {
        let _ = c.close();
    }
}

fn wait_everywhere(ens: &mut Ensemble, path: &str, want: bool) {
    wait_everywhere_within(ens, path, want, REPLICATION_TIMEOUT);
}

/// The voters other than `leader`.
fn followers_of(ens: &Ensemble, leader: u64) -> Vec<u64> {
    ens.voters().into_iter().filter(|&s| s != leader).collect()
}

#[test]
fn three_servers_elect_one_leader_and_replicate() {
    let mut ens = Ensemble::start(3, 0);
    let leader = ens.wait_leader();
    let followers = followers_of(&ens, leader);
    assert_eq!(followers.len(), 2);
    for &f in &followers {
        assert_eq!(
            ens.mode(f).as_deref(),
            Some("follower"),
            "server.{f} should follow server.{leader}"
        );
    }
    // A write sent to a follower is forwarded to the leader and reaches every replica.
    let mut c = ens.client(followers[0]);
    let path = c
        .create(
            "/replicated",
            Some(b"hello"),
            &open_acl_unsafe(),
            PERSISTENT,
        )
        .unwrap_or_else(|e| ens.fail(&format!("create on follower server.{}: {e}", followers[0])));
    assert_eq!(path, "/replicated");
    drop(c);
    for sid in ens.sids() {
        let got = read_synced(&mut ens, sid, "/replicated");
        assert_eq!(
            got.as_deref(),
            Some(&b"hello"[..]),
            "server.{sid} does not see the create made on server.{} after sync",
            followers[0]
        );
    }
    // The leader counts both followers as synced.
    let mntr = ens.wait_for(
        "the leader's mntr to report zk_synced_followers 2",
        MODE_TIMEOUT,
        |e| {
            e.mntr(leader)
                .filter(|m| m.get("synced_followers").map(String::as_str) == Some("2"))
        },
    );
    assert_eq!(
        mntr.get("server_state").map(String::as_str),
        Some("leader"),
        "mntr on server.{leader}: {mntr:?}"
    );
    // 3.8 calls it zk_learners; 3.4 called it zk_followers.
    let learners = mntr.get("learners").or_else(|| mntr.get("followers"));
    assert_eq!(
        learners.map(String::as_str),
        Some("2"),
        "mntr on the leader should count 2 learners (zk_learners or zk_followers): {mntr:?}"
    );
    assert_eq!(
        ens.wait_leader(),
        leader,
        "the leader changed without a fault"
    );
}

#[test]
fn five_servers_started_in_order_elect_server_3() {
    let mut ens = Ensemble::prepare(5, 0, false);
    ens.start_server(1);
    ens.start_server(2);
    // Two of five are no quorum: both run (ruok) but neither serves.
    ens.assert_not_serving_for(&[1, 2], NO_QUORUM_WINDOW);
    for sid in [1, 2] {
        assert_eq!(
            ens.flw(sid, "ruok").as_deref(),
            Some("imok"),
            "server.{sid} should answer ruok while it has no quorum"
        );
    }
    // The third makes a quorum; with equal (empty) histories the highest sid wins.
    ens.start_server(3);
    let leader = ens.wait_leader();
    assert_eq!(
        leader, 3,
        "servers 1-3 with empty logs should elect server 3"
    );
    for sid in [4, 5] {
        ens.start_server(sid);
        let leader = ens.wait_leader();
        assert_eq!(
            leader, 3,
            "server.{sid} joining should follow server.3, not change the leader"
        );
    }
    let log = ens.log(3);
    assert!(
        log.contains("LEADING - LEADER ELECTION TOOK - "),
        "server.3 should log LEADING - LEADER ELECTION TOOK; log tail:\n{}",
        tail(&log, 40)
    );
    for sid in [1, 2, 4, 5] {
        let log = ens.log(sid);
        assert!(
            log.contains("FOLLOWING - LEADER ELECTION TOOK - "),
            "server.{sid} should log FOLLOWING - LEADER ELECTION TOOK; log tail:\n{}",
            tail(&log, 40)
        );
    }
}

/// One acknowledged create, with when it was sent and when the ack came.
struct Ack {
    path: String,
    sent: Instant,
    acked: Instant,
}

/// Creates sequential nodes under /load until `stop`, moving to the next server whenever the
/// current one fails, and records every create the servers acknowledged.
fn writer(t: usize, addrs: Vec<String>, stop: Arc<AtomicBool>, acks: Arc<Mutex<Vec<Ack>>>) {
    let mut server = t % addrs.len();
    let mut client: Option<Client> = None;
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = client.as_mut() else {
            let addr = &addrs[server];
            // Only try servers that serve, so a connect never waits on one that is electing.
            let serving = zk::client::four_letter_word(addr, "srvr", FLW_TIMEOUT)
                .is_ok_and(|t| t.contains("Mode:"));
            match serving.then(|| Client::connect(addr, SESSION_TIMEOUT_MS)) {
                Some(Ok(mut c)) => {
                    c.set_request_timeout(WRITER_REQUEST_TIMEOUT);
                    client = Some(c);
                }
                _ => {
                    server = (server + 1) % addrs.len();
                    std::thread::sleep(POLL_INTERVAL);
                }
            }
            continue;
        };
        i += 1;
        let data = format!("w{t}-{i}");
        let sent = Instant::now();
        match c.create(
            &format!("/load/w{t}-"),
            Some(data.as_bytes()),
            &open_acl_unsafe(),
            PERSISTENT_SEQUENTIAL,
        ) {
            Ok(path) => acks.lock().unwrap().push(Ack {
                path,
                sent,
                acked: Instant::now(),
            }),
            Err(_) => {
                // Whatever the error, the outcome of this create is unknown: it is simply
                // not recorded. Move on to another server with a new session.
                client = None;
                server = (server + 1) % addrs.len();
            }
        }
    }
    if let Some(c) = client {
        let _ = c.close();
    }
}

#[test]
fn leader_kill9_under_load() {
    let mut ens = Ensemble::start(3, 0);
    let old_leader = ens.wait_leader();
    {
        let mut c = ens.client(old_leader);
        c.create("/load", None, &open_acl_unsafe(), PERSISTENT)
            .unwrap_or_else(|e| ens.fail(&format!("create /load: {e}")));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (addrs, stop, acks) = (ens.addrs(), stop.clone(), acks.clone());
            std::thread::spawn(move || writer(t, addrs, stop, acks))
        })
        .collect();
    let acked_since = |acks: &Mutex<Vec<Ack>>, t: Instant| {
        acks.lock().unwrap().iter().filter(|a| a.sent > t).count()
    };
    let start = Instant::now();
    ens.wait_for(
        &format!("{LOAD_ACKS_PER_PHASE} acknowledged creates before the kill"),
        LOAD_PHASE_TIMEOUT,
        |_| (acked_since(&acks, start) >= LOAD_ACKS_PER_PHASE).then_some(()),
    );

    let killed_at = Instant::now();
    ens.kill9(old_leader);
    let new_leader = ens.wait_leader();
    assert_ne!(new_leader, old_leader, "a killed server cannot lead");
    ens.wait_for(
        &format!("{LOAD_ACKS_PER_PHASE} acknowledged creates sent after the kill"),
        LOAD_PHASE_TIMEOUT,
        |_| (acked_since(&acks, killed_at) >= LOAD_ACKS_PER_PHASE).then_some(()),
    );
    let first_after_kill = acks
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.sent > killed_at)
        .map(|a| a.acked - killed_at)
        .min()
        .expect("acks after the kill");
    eprintln!(
        "leader_kill9_under_load: kill -9 of leader server.{old_leader} to the first acknowledged \
         write sent after it: {} ms (new leader server.{new_leader})",
        first_after_kill.as_millis()
    );

    // The old leader comes back as a follower of the new one.
    let restarted_at = Instant::now();
    ens.restart(old_leader);
    assert_eq!(
        ens.wait_leader(),
        new_leader,
        "the restarted old leader should follow server.{new_leader}"
    );
    ens.wait_for(
        &format!("{LOAD_ACKS_PER_PHASE} acknowledged creates after the restart"),
        LOAD_PHASE_TIMEOUT,
        |_| (acked_since(&acks, restarted_at) >= LOAD_ACKS_PER_PHASE).then_some(()),
    );
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer thread");
    }
    let acks = std::mem::take(&mut *acks.lock().unwrap());
    let acked: BTreeSet<String> = acks.iter().map(|a| a.path.clone()).collect();
    assert_eq!(
        acked.len(),
        acks.len(),
        "two acknowledged creates were given the same sequential name"
    );
    eprintln!(
        "leader_kill9_under_load: {} acknowledged creates",
        acked.len()
    );

    // A write through the leader after the writers stopped: once every server has it, every
    // earlier txn is applied everywhere, so stopping them now loses nothing from any one.
    {
        let leader = ens.wait_leader();
        let mut c = ens.client(leader);
        c.create("/barrier", None, &open_acl_unsafe(), PERSISTENT)
            .unwrap_or_else(|e| ens.fail(&format!("create /barrier: {e}")));
    }
    wait_everywhere(&mut ens, "/barrier", true);
    ens.stop_all();
    let dumps = ens.assert_same_trees();
    for (sid, dump) in &dumps {
        let paths = dump_paths(dump);
        let lost: Vec<&String> = acked.iter().filter(|p| !paths.contains(*p)).collect();
        assert!(
            lost.is_empty(),
            "server.{sid} lost {} of {} acknowledged creates, e.g. {:?} (dumps kept in {})",
            lost.len(),
            acked.len(),
            &lost[..lost.len().min(5)],
            ens.dir.display()
        );
    }
}

/// Stops a follower, wipes its data if `wipe`, writes NODES_WHILE_DOWN nodes, restarts it and
/// checks that it synchronized the `expect` way (a line in its log), serves what it missed
/// and, once everything is stopped, has the leader's tree. Returns (leader, follower).
fn catch_up(ens: &mut Ensemble, wipe: bool, expect: &str) -> (u64, u64) {
    let leader = ens.wait_leader();
    let follower = followers_of(ens, leader)[0];
    {
        let mut c = ens.client(leader);
        c.create("/before", Some(b"b"), &open_acl_unsafe(), PERSISTENT)
            .unwrap_or_else(|e| ens.fail(&format!("create /before: {e}")));
    }
    wait_everywhere(ens, "/before", true);
    ens.stop(follower);
    if wipe {
        ens.wipe(follower);
    }
    let written;
    {
        let mut c = ens.client(leader);
        c.create("/down", None, &open_acl_unsafe(), PERSISTENT)
            .unwrap_or_else(|e| ens.fail(&format!("create /down: {e}")));
        // A wiped follower must be further behind than the leader's DIFF window to need a SNAP.
        let n = if wipe {
            NODES_WHILE_DOWN + COMMIT_LOG_COUNT
        } else {
            NODES_WHILE_DOWN
        };
        assert!(
            wipe || n + 10 < COMMIT_LOG_COUNT,
            "the DIFF case must fit the window"
        );
        written = n;
        for i in 0..n {
            c.create(
                &format!("/down/n{i}"),
                Some(format!("{i}").as_bytes()),
                &open_acl_unsafe(),
                PERSISTENT,
            )
            .unwrap_or_else(|e| ens.fail(&format!("create /down/n{i} with a follower down: {e}")));
        }
    }
    let restart_log = ens.log_len(follower);
    ens.restart(follower);
    ens.wait_mode(follower, "follower");
    assert_eq!(
        ens.wait_leader(),
        leader,
        "the leader changed without a fault"
    );
    let seen = ens.wait_log(
        follower,
        restart_log,
        &[
            "Getting a diff from the leader",
            "Getting a snapshot from leader",
            "Truncating log to get in sync with the leader",
        ],
        SYNC_LOG_TIMEOUT,
    );
    let run_log = ens.run_log(follower);
    if !run_log.contains(expect) {
        ens.fail(&format!(
            "server.{follower} should have synchronized with {expect:?} after its restart, \
             but its log of this run says {seen:?} instead"
        ));
    }
    // It serves what it missed.
    let mut c = ens.client(follower);
    c.sync("/")
        .unwrap_or_else(|e| ens.fail(&format!("sync: {e}")));
    let kids = c
        .get_children("/down", false)
        .unwrap_or_else(|e| ens.fail(&format!("getChildren /down on the follower: {e}")));
    assert_eq!(
        kids.len(),
        written,
        "server.{follower} after catching up should list every node written while it was down"
    );
    drop(c);
    ens.stop_all();
    let dumps = ens.assert_same_trees();
    let paths = dump_paths(&dumps[&follower]);
    assert!(
        paths.contains("/before") && paths.contains(&format!("/down/n{}", NODES_WHILE_DOWN - 1)),
        "server.{follower}'s dump misses nodes"
    );
    (leader, follower)
}

#[test]
fn restarted_follower_catches_up_by_diff() {
    let mut ens = Ensemble::start(3, 0);
    catch_up(&mut ens, false, "Getting a diff from the leader");
}

#[test]
fn wiped_follower_catches_up_by_snap() {
    let mut ens = Ensemble::start(3, 0);
    let (_, follower) = catch_up(&mut ens, true, "Getting a snapshot from leader");
    assert_eq!(
        std::fs::read_to_string(ens.data_dir(follower).join("myid"))
            .unwrap()
            .trim(),
        follower.to_string(),
        "wipe must keep myid"
    );
}

#[test]
fn isolated_leader_steps_down_and_old_epoch_txn_is_truncated() {
    let mut ens = Ensemble::start_proxied(3, 0);
    let old_leader = ens.wait_leader();
    let others = followers_of(&ens, old_leader);
    {
        let mut c = ens.client(old_leader);
        c.create("/before", Some(b"b"), &open_acl_unsafe(), PERSISTENT)
            .unwrap_or_else(|e| ens.fail(&format!("create /before: {e}")));
    }
    wait_everywhere(&mut ens, "/before", true);
    let mut c_old = ens.client(old_leader);

    // Cut the leader off; a create sent to it now reaches its log but no follower.
    let isolated_at = Instant::now();
    ens.isolate(old_leader);
    let unacked = std::thread::spawn(move || {
        c_old.create("/unacked", Some(b"u"), &open_acl_unsafe(), PERSISTENT)
    });
    let step_down_bound = Duration::from_millis(SYNC_LIMIT_TICKS * TICK_TIME_MS) + STEP_DOWN_SLACK;
    ens.wait_not_serving(
        old_leader,
        step_down_bound.saturating_sub(isolated_at.elapsed()),
    );
    eprintln!(
        "isolated leader server.{old_leader} stopped serving {} ms after the partition",
        isolated_at.elapsed().as_millis()
    );
    match unacked.join().expect("create thread") {
        Ok(p) => ens.fail(&format!(
            "the isolated leader acknowledged {p}, which no follower can have logged"
        )),
        Err(e) => eprintln!("create on the isolated leader failed as it should: {e}"),
    }

    // The majority side elects a new leader and takes writes.
    let new_leader = ens.wait_leader_among(&others);
    {
        let mut c = ens.client(new_leader);
        c.create("/after", Some(b"a"), &open_acl_unsafe(), PERSISTENT)
            .unwrap_or_else(|e| ens.fail(&format!("create /after on server.{new_leader}: {e}")));
    }
    assert!(
        ens.mode(old_leader).is_none(),
        "the isolated server.{old_leader} serves again while cut off"
    );
    // The old leader logged the create (its recovered tree has it): the histories diverge.
    let old_tree = ens.dump_copy(old_leader);
    if !dump_paths(&old_tree).contains("/unacked") {
        ens.fail(&format!(
            "the isolated leader server.{old_leader} never logged /unacked, so there is no \
             divergent txn to truncate (did it step down before the create reached it?)"
        ));
    }

    // Heal: it rejoins as a follower and drops its old-epoch txn.
    let healed_at_log = ens.log_len(old_leader);
    ens.heal();
    assert_eq!(
        ens.wait_leader(),
        new_leader,
        "after the heal server.{old_leader} should follow server.{new_leader}"
    );
    let how = ens.wait_log(
        old_leader,
        healed_at_log,
        &[
            "Truncating log to get in sync with the leader",
            "Getting a snapshot from leader",
        ],
        SYNC_LOG_TIMEOUT,
    );
    eprintln!("server.{old_leader} rejoined by {how:?}");
    wait_everywhere(&mut ens, "/after", true);
    wait_everywhere(&mut ens, "/unacked", false);
    ens.stop_all();
    let dumps = ens.assert_same_trees();
    for (sid, d) in &dumps {
        let paths = dump_paths(d);
        assert!(
            !paths.contains("/unacked"),
            "server.{sid} still has the unacknowledged old-epoch /unacked"
        );
        assert!(
            paths.contains("/before") && paths.contains("/after"),
            "server.{sid} misses /before or /after"
        );
    }
}

/// Opens a session on `a` with an ephemeral at `path`, drops the connection and resumes
/// the session on `b`. Returns the client on `b` and the session id.
fn move_session(ens: &mut Ensemble, a: u64, b: u64, path: &str) -> (Client, i64, u64) {
    let mut ca = ens.client(a);
    ca.create(path, Some(b"e"), &open_acl_unsafe(), EPHEMERAL)
        .unwrap_or_else(|e| ens.fail(&format!("create ephemeral {path} on server.{a}: {e}")));
    let (id, pw, timeout_ms) = (
        ca.session_id(),
        ca.password().to_vec(),
        ca.negotiated_timeout(),
    );
    drop(ca);
    let moved_at = Instant::now();
    let cb = Client::resume(&ens.addr(b), id, &pw, SESSION_TIMEOUT_MS).unwrap_or_else(|e| {
        ens.fail(&format!(
            "session 0x{id:x} from server.{a} could not resume on server.{b}: {e}"
        ))
    });
    assert_eq!(
        cb.session_id(),
        id,
        "resume on server.{b} gave another session"
    );
    assert!(
        moved_at.elapsed() < Duration::from_millis(timeout_ms as u64),
        "the move took longer than the session timeout; the test proves nothing"
    );
    (cb, id, timeout_ms as u64)
}

#[test]
fn session_moves_between_servers() {
    let mut ens = Ensemble::start(3, 0);
    let leader = ens.wait_leader();
    let followers = followers_of(&ens, leader);
    let (a, b) = (followers[0], followers[1]);

    // A session moves from one follower to the other and is kept alive there.
    let (mut cb, id, timeout_ms) = move_session(&mut ens, a, b, "/moving");
    let keep_until = Instant::now() + Duration::from_millis(timeout_ms * KEEPALIVE_TIMEOUTS as u64);
    while Instant::now() < keep_until {
        cb.ping()
            .unwrap_or_else(|e| ens.fail(&format!("ping of the moved session on server.{b}: {e}")));
        std::thread::sleep(Duration::from_millis(timeout_ms / PINGS_PER_TIMEOUT));
    }
    for sid in ens.sids() {
        let mut c = ens.client(sid);
        c.sync("/")
            .unwrap_or_else(|e| ens.fail(&format!("sync: {e}")));
        let st = c
            .exists("/moving", false)
            .unwrap_or_else(|e| ens.fail(&format!("exists on server.{sid}: {e}")));
        match st {
            Some(st) => assert_eq!(
                st.ephemeral_owner, id,
                "server.{sid}: /moving owned by 0x{:x}, not the moved session 0x{id:x}",
                st.ephemeral_owner
            ),
            None => ens.fail(&format!(
                "server.{sid}: the moved session's ephemeral is gone though the session was \
                 kept alive on server.{b}"
            )),
        }
        let _ = c.close();
    }
    // Closing it on its new server removes the ephemeral everywhere.
    cb.close()
        .unwrap_or_else(|e| ens.fail(&format!("close on server.{b}: {e}")));
    wait_everywhere(&mut ens, "/moving", false);

    // A moved session that is then abandoned expires, and its ephemeral goes everywhere.
    let (mut cb2, _, timeout_ms) = move_session(&mut ens, b, a, "/abandoned");
    let still_there = cb2.sync("/").and_then(|_| cb2.exists("/abandoned", false));
    assert!(
        matches!(still_there, Ok(Some(_))),
        "the ephemeral of the session moved to server.{a} is gone: {still_there:?}"
    );
    drop(cb2);
    let bound = Duration::from_millis(timeout_ms * EXPIRY_TIMEOUTS as u64) + EXPIRY_SLACK;
    wait_everywhere_within(&mut ens, "/abandoned", false, bound);
}

#[test]
fn observer_serves_reads_and_does_not_vote() {
    let mut ens = Ensemble::start(3, 1);
    let observer = ens.observers()[0];
    let leader = ens.wait_leader();
    ens.wait_mode(observer, "observer");
    let log = ens.log(observer);
    assert!(
        log.contains("OBSERVING - LEADER ELECTION TOOK - "),
        "server.{observer} should log OBSERVING - LEADER ELECTION TOOK; log tail:\n{}",
        tail(&log, 40)
    );

    // Reads on the observer see writes made through the leader; a write through the
    // observer is forwarded and reaches the voters.
    {
        let mut c = ens.client(leader);
        c.create("/via-leader", Some(b"l"), &open_acl_unsafe(), PERSISTENT)
            .unwrap_or_else(|e| ens.fail(&format!("create on the leader: {e}")));
    }
    assert_eq!(
        read_synced(&mut ens, observer, "/via-leader").as_deref(),
        Some(&b"l"[..]),
        "the observer does not see a write made on the leader"
    );
    {
        let mut c = ens.client(observer);
        c.create("/via-observer", Some(b"o"), &open_acl_unsafe(), PERSISTENT)
            .unwrap_or_else(|e| ens.fail(&format!("create through the observer: {e}")));
    }
    wait_everywhere(&mut ens, "/via-observer", true);

    // The leader counts two synced voters; the observer is not one of them.
    let mntr = ens.wait_for(
        "the leader's mntr to report zk_synced_followers 2",
        MODE_TIMEOUT,
        |e| {
            e.mntr(leader)
                .filter(|m| m.get("synced_followers").map(String::as_str) == Some("2"))
        },
    );
    if let Some(n) = mntr.get("synced_observers") {
        assert_eq!(n, "1", "zk_synced_observers on the leader: {mntr:?}");
    }

    // Two of three voters gone: no quorum, though the observer still runs.
    let follower = followers_of(&ens, leader)[0];
    let survivor = followers_of(&ens, leader)[1];
    ens.kill9(leader);
    ens.kill9(follower);
    ens.wait_not_serving(survivor, LEADER_LOSS_TIMEOUT);
    ens.wait_not_serving(observer, LEADER_LOSS_TIMEOUT);
    ens.assert_not_serving_for(&[survivor, observer], NO_QUORUM_WINDOW);
    assert_eq!(
        ens.flw(observer, "ruok").as_deref(),
        Some("imok"),
        "the observer process should still run"
    );

    // One voter back is a quorum again; the observer observes it.
    ens.restart(follower);
    let leader = ens.wait_leader();
    assert!(
        leader == survivor || leader == follower,
        "server.{leader} leads, not one of the two running voters"
    );
    ens.wait_mode(observer, "observer");
    assert_eq!(
        read_synced(&mut ens, observer, "/via-observer").as_deref(),
        Some(&b"o"[..]),
        "the observer lost data across the re-election"
    );
}
