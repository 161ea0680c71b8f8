//! Jepsen-style test: `CLIENTS` threads, each with its own session to a random server of an
//! ensemble, run a random mix of linearizable reads (sync + getData), versioned setData
//! (compare-and-set from the version they last saw) and unconditional setData with unique
//! values on `KEYS` znodes, while a nemesis kills servers with SIGKILL and restarts them,
//! isolates the leader and heals, and isolates a follower and heals. An operation whose
//! connection broke or timed out is recorded as unknown (it may or may not have taken effect)
//! and the client reconnects to another server. After each round the cluster is healed and
//! every server is read through; at the end the whole history is checked with the
//! linearizability checker in common/linearizability.rs, which must find no anomaly.
//!
//! Knobs: `ZK_JEPSEN_ROUNDS` (default `ROUNDS_DEFAULT`), `ZK_JEPSEN_ROUND_SECS` (default
//! `ROUND_SECS_DEFAULT`) and `ZK_JEPSEN_SEED` (the nemesis' and clients' choices; timings are
//! not replayable). The checker's own tests (`checker_*`) live here rather than beside it so
//! they run once, not in every test binary that includes `common`.

mod common;

use common::ensemble::{self, Ensemble};
use common::linearizability::{
    check, check_with_limit, Call, CheckResult, KeyVerdict, Op, Outcome, Register, Reply, Value,
    Version,
};
use common::Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use zk::client::{Client, ClientError};
use zk::proto::open_acl_unsafe;
use zk::proto::Code;

/// Client threads, each with its own session.
const CLIENTS: usize = 5;
/// Znodes `/jepsen/k0 ..`; each is checked on its own.
const KEYS: usize = 3;
const VOTERS: usize = 3;
const OBSERVERS: usize = 1;
const ROUNDS_DEFAULT: u64 = 4;
const ROUND_SECS_DEFAULT: u64 = 25;
/// The mix: percent reads and compare-and-sets; the rest are unconditional writes.
const READ_PERCENT: u64 = 50;
const CAS_PERCENT: u64 = 25;
/// A pause of up to this long between a client's ops, so interleavings vary.
const THINK_TIME_MAX_US: u64 = 2_000;
/// How long a client waits for a reply before it records the op as unknown and reconnects
/// (the harness' servers notice a lost peer within syncLimit, half a second).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// The session timeout clients ask for (sessions left behind on reconnect expire after it).
const SESSION_TIMEOUT_MS: i32 = ensemble::SESSION_TIMEOUT_MS;
/// The pause after a failed connect before the next server is tried.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a fault lasts, and the quiet time between faults, in milliseconds.
const FAULT_HOLD_MS: (u64, u64) = (1_000, 4_000);
const QUIET_MS: (u64, u64) = (500, 2_500);
/// How long the cluster may take after heal to serve a read through every server.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// The `client` of the recovery reads the test itself makes after each round.
const CHECKPOINT_CLIENT: usize = CLIENTS;
const PARENT: &str = "/jepsen";

fn key_path(k: usize) -> String {
    format!("{PARENT}/k{k}")
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Microseconds since the test started, strictly increasing across threads: if one call
/// returns before another starts, the second value is larger (a shared max under CAS).
struct Clock {
    start: Instant,
    last: AtomicU64,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        let t = self.start.elapsed().as_micros() as u64;
        let mut prev = self.last.load(Ordering::SeqCst);
        loop {
            let next = t.max(prev + 1);
            match self
                .last
                .compare_exchange(prev, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }
}

/// What the client threads share.
struct Shared {
    addrs: Vec<String>,
    stop: AtomicBool,
    clock: Clock,
    /// Values written are unique, so a read names the write it saw.
    next_value: AtomicI64,
    /// Ops recorded so far, for progress lines.
    ops: AtomicU64,
}

/// Sets the stop flag when dropped, so a panicking nemesis still lets the clients finish.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// One client thread's record.
#[derive(Default)]
struct ClientLog {
    ops: Vec<Op>,
    connects: u64,
    connect_failures: u64,
    /// Replies no correct server gives here (NoNode, unparsable data, ...).
    unexpected: Vec<String>,
}

fn encode(v: Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// Performs `call` on `path`. A BadVersion is a reply, not an error.
fn perform(c: &mut Client, path: &str, call: Call) -> Result<Reply, ClientError> {
    match call {
        Call::Read => {
            c.sync(path)?;
            let (data, stat) = c.get_data(path, false)?;
            let value = data
                .as_deref()
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|s| s.parse().ok())
                // Never written: the checker reports the read.
                .unwrap_or(Value::MIN);
            Ok(Reply::Read(Register::new(value, stat.version)))
        }
        Call::Write(v) => c
            .set_data(path, Some(&encode(v)), -1)
            .map(|st| Reply::Version(st.version)),
        Call::Cas {
            expected_version,
            value,
        } => match c.set_data(path, Some(&encode(value)), expected_version) {
            Ok(st) => Ok(Reply::Version(st.version)),
            Err(ClientError::Keeper(Code::BadVersion)) => Ok(Reply::BadVersion),
            Err(e) => Err(e),
        },
    }
}

/// Whether an error is one a correct server can give under these faults (all of them mean
/// "unknown": the op may or may not have taken effect).
fn expected_error(e: &ClientError) -> bool {
    match e {
        ClientError::Io(_) => true,
        ClientError::Keeper(c) => matches!(
            c,
            Code::ConnectionLoss
                | Code::OperationTimeout
                | Code::SessionExpired
                | Code::SessionMoved
                | Code::RequestTimeout
                | Code::NotReadOnly
                | Code::ThrottledOp
                | Code::SystemError
        ),
        ClientError::Protocol(_) => false,
    }
}

fn run_client(id: usize, sh: &Shared, seed: u64) -> ClientLog {
    let mut rng = Rng::new(seed);
    let mut log = ClientLog::default();
    let mut conn: Option<Client> = None;
    let mut server = rng.below(sh.addrs.len() as u64) as usize;
    let mut seen_version: [Version; KEYS] = [0; KEYS];
    while !sh.stop.load(Ordering::SeqCst) {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => {
                // Another server than the last one, as a ZooKeeper client fails over.
                if sh.addrs.len() > 1 {
                    server = (server + 1 + rng.below(sh.addrs.len() as u64 - 1) as usize)
                        % sh.addrs.len();
                }
                match Client::connect(&sh.addrs[server], SESSION_TIMEOUT_MS) {
                    Ok(mut c) => {
                        c.set_request_timeout(REQUEST_TIMEOUT);
                        log.connects += 1;
                        conn.insert(c)
                    }
                    Err(_) => {
                        log.connect_failures += 1;
                        std::thread::sleep(RECONNECT_BACKOFF);
                        continue;
                    }
                }
            }
        };
        let k = rng.below(KEYS as u64) as usize;
        let roll = rng.below(100);
        let call = if roll < READ_PERCENT {
            Call::Read
        } else if roll < READ_PERCENT + CAS_PERCENT {
            Call::Cas {
                expected_version: seen_version[k],
                value: sh.next_value.fetch_add(1, Ordering::SeqCst),
            }
        } else {
            Call::Write(sh.next_value.fetch_add(1, Ordering::SeqCst))
        };
        let path = key_path(k);
        let call_time = sh.clock.now();
        let result = perform(c, &path, call);
        let return_time = sh.clock.now();
        let outcome = match result {
            Ok(reply) => {
                match reply {
                    Reply::Read(r) => {
                        if r.value == Value::MIN {
                            log.unexpected
                                .push(format!("client {id}: unparsable data in {path}"));
                        }
                        seen_version[k] = r.version;
                    }
                    Reply::Version(v) => seen_version[k] = v,
                    Reply::BadVersion => {}
                }
                Outcome::Ok(reply)
            }
            Err(e) => {
                if !expected_error(&e) {
                    log.unexpected
                        .push(format!("client {id}: {call:?} on {path}: {e}"));
                }
                // Whatever broke, the next op goes to another server on a new session.
                conn = None;
                Outcome::Unknown
            }
        };
        sh.ops.fetch_add(1, Ordering::Relaxed);
        log.ops.push(Op {
            key: path,
            client: id,
            call,
            outcome,
            call_time,
            return_time,
        });
        if THINK_TIME_MAX_US > 0 {
            std::thread::sleep(Duration::from_micros(rng.below(THINK_TIME_MAX_US)));
        }
    }
    log
}

/// Faults injected, by kind.
#[derive(Default, Debug)]
struct Faults {
    kill9: u64,
    isolate_leader: u64,
    isolate_follower: u64,
}

fn between(rng: &mut Rng, (lo, hi): (u64, u64)) -> Duration {
    Duration::from_millis(lo + rng.below(hi - lo + 1))
}

/// Injects faults one at a time until `until`; every fault is undone before the next.
fn nemesis(ens: &mut Ensemble, sids: &[u64], rng: &mut Rng, until: Instant, faults: &mut Faults) {
    loop {
        let quiet = between(rng, QUIET_MS);
        let hold = between(rng, FAULT_HOLD_MS);
        if Instant::now() + quiet + hold >= until {
            return;
        }
        std::thread::sleep(quiet);
        match rng.below(3) {
            0 => {
                let sid = *rng.pick(sids);
                println!("nemesis: kill -9 server {sid}");
                ens.kill9(sid);
                faults.kill9 += 1;
                std::thread::sleep(hold);
                println!("nemesis: restart server {sid}");
                ens.restart(sid);
            }
            kind => {
                let leader = ens.wait_leader();
                let sid = if kind == 1 {
                    faults.isolate_leader += 1;
                    leader
                } else {
                    faults.isolate_follower += 1;
                    let others: Vec<u64> = sids.iter().copied().filter(|&s| s != leader).collect();
                    *rng.pick(&others)
                };
                let role = if sid == leader {
                    "leader"
                } else if ens.observers().contains(&sid) {
                    "observer"
                } else {
                    "follower"
                };
                println!("nemesis: isolate server {sid} ({role})");
                ens.isolate(sid);
                std::thread::sleep(hold);
                println!("nemesis: heal");
                ens.heal();
            }
        }
    }
}

/// Retries `f` on a fresh session to `addr` until it succeeds; fails the test (with every
/// server's log) if it still fails after RECOVERY_TIMEOUT.
fn with_retries<T>(
    ens: &Ensemble,
    addr: &str,
    what: &str,
    mut f: impl FnMut(&mut Client) -> Result<T, ClientError>,
) -> T {
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    loop {
        let err = match Client::connect(addr, SESSION_TIMEOUT_MS) {
            Ok(mut c) => {
                c.set_request_timeout(REQUEST_TIMEOUT);
                match f(&mut c) {
                    Ok(t) => return t,
                    Err(e) => e.to_string(),
                }
            }
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            ens.fail(&format!(
                "{what} via {addr} still fails after {RECOVERY_TIMEOUT:?} of a healed \
                 cluster: {err}"
            ));
        }
        std::thread::sleep(RECONNECT_BACKOFF);
    }
}

/// After heal: a linearizable read of every key through every server, recorded in the history
/// (a server that lost or invented a write shows here).
fn checkpoint(ens: &Ensemble, sh: &Shared, history: &mut Vec<Op>) {
    for addr in &sh.addrs {
        for k in 0..KEYS {
            let path = key_path(k);
            let (call_time, reply, return_time) = with_retries(ens, addr, "sync + getData", |c| {
                let call_time = sh.clock.now();
                let reply = perform(c, &path, Call::Read)?;
                Ok((call_time, reply, sh.clock.now()))
            });
            history.push(Op {
                key: path,
                client: CHECKPOINT_CLIENT,
                call: Call::Read,
                outcome: Outcome::Ok(reply),
                call_time,
                return_time,
            });
        }
    }
}

/// Ops by kind and outcome, for the summary.
fn summary(history: &[Op]) -> String {
    let mut counts: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for op in history {
        let kind = match op.call {
            Call::Read => "read",
            Call::Write(_) => "write",
            Call::Cas { .. } => "cas",
        };
        let outcome = match op.outcome {
            Outcome::Ok(Reply::BadVersion) => "bad-version",
            Outcome::Ok(_) => "ok",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
        };
        *counts.entry((kind, outcome)).or_default() += 1;
    }
    counts
        .iter()
        .map(|((k, o), n)| format!("{k} {o}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn jepsen_sync_reads_and_versioned_writes_stay_linearizable_under_faults() {
    let seed = env_u64(
        "ZK_JEPSEN_SEED",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    );
    let rounds = env_u64("ZK_JEPSEN_ROUNDS", ROUNDS_DEFAULT);
    let round_time = Duration::from_secs(env_u64("ZK_JEPSEN_ROUND_SECS", ROUND_SECS_DEFAULT));
    println!("jepsen: seed {seed} (ZK_JEPSEN_SEED), {rounds} rounds of {round_time:?}");
    let mut rng = Rng::new(seed);

    // Proxied peer links, so the nemesis can isolate servers.
    let mut ens = Ensemble::start_proxied(VOTERS, OBSERVERS);
    let sids = ens.sids();
    let shared = Shared {
        addrs: ens.addrs(),
        stop: AtomicBool::new(false),
        clock: Clock::new(),
        next_value: AtomicI64::new(1),
        ops: AtomicU64::new(0),
    };

    let initial_value: Value = 0;
    let leader = ens.wait_leader();
    with_retries(&ens, &ens.addr(leader), "create the test znodes", |c| {
        for path in std::iter::once(PARENT.to_string()).chain((0..KEYS).map(key_path)) {
            let data = encode(initial_value);
            match c.create(&path, Some(&data), &open_acl_unsafe(), 0) {
                Ok(_) | Err(ClientError::Keeper(Code::NodeExists)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    let initial: BTreeMap<String, Register> = (0..KEYS)
        .map(|k| (key_path(k), Register::new(initial_value, 0)))
        .collect();

    let mut history: Vec<Op> = Vec::new();
    let mut faults = Faults::default();
    let mut unexpected: Vec<String> = Vec::new();
    let (mut connects, mut connect_failures) = (0, 0);
    std::thread::scope(|scope| {
        let stop = StopOnDrop(&shared.stop);
        let handles: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let client_seed = rng.next_u64();
                let sh = &shared;
                scope.spawn(move || run_client(id, sh, client_seed))
            })
            .collect();
        for round in 1..=rounds {
            let until = Instant::now() + round_time;
            nemesis(&mut ens, &sids, &mut rng, until, &mut faults);
            ens.heal();
            let leader = ens.wait_leader();
            checkpoint(&ens, &shared, &mut history);
            println!(
                "jepsen: round {round} done: leader {leader}, {} ops so far, faults so far \
                 {faults:?}",
                shared.ops.load(Ordering::SeqCst)
            );
        }
        drop(stop);
        for h in handles {
            let log = h.join().expect("client thread panicked");
            history.extend(log.ops);
            unexpected.extend(log.unexpected);
            connects += log.connects;
            connect_failures += log.connect_failures;
        }
    });
    // Reads after the clients stopped: nothing in flight can still change what they see
    // except unknown ops, which the checker allows for.
    checkpoint(&ens, &shared, &mut history);

    println!("jepsen: {} ops: {}", history.len(), summary(&history));
    println!(
        "jepsen: faults {faults:?}; sessions opened {connects}, failed connects \
         {connect_failures}"
    );
    let started = Instant::now();
    let result = check(&history, &initial);
    println!("jepsen: checked in {:?}", started.elapsed());
    if result.is_linearizable() {
        print!("{result}");
    }
    if !unexpected.is_empty() {
        ens.fail(&format!(
            "seed {seed}: replies no correct server gives:\n{}",
            unexpected.join("\n")
        ));
    }
    if !result.is_linearizable() {
        ens.fail(&format!(
            "seed {seed}: the history is not linearizable:\n{result}"
        ));
    }
}

// ---- The checker's own tests ----------------------------------------------------------------

const K: &str = "k";

fn op(client: usize, call: Call, outcome: Outcome, call_time: u64, return_time: u64) -> Op {
    Op {
        key: K.to_string(),
        client,
        call,
        outcome,
        call_time,
        return_time,
    }
}

fn read(client: usize, t: (u64, u64), value: Value, version: Version) -> Op {
    let r = Outcome::Ok(Reply::Read(Register::new(value, version)));
    op(client, Call::Read, r, t.0, t.1)
}

fn write(client: usize, t: (u64, u64), value: Value, outcome: Outcome) -> Op {
    op(client, Call::Write(value), outcome, t.0, t.1)
}

fn cas(client: usize, t: (u64, u64), expected: Version, value: Value, outcome: Outcome) -> Op {
    let call = Call::Cas {
        expected_version: expected,
        value,
    };
    op(client, call, outcome, t.0, t.1)
}

fn ver(v: Version) -> Outcome {
    Outcome::Ok(Reply::Version(v))
}

const BAD: Outcome = Outcome::Ok(Reply::BadVersion);
const UNKNOWN: Outcome = Outcome::Unknown;

/// Checks a one-key history starting from (0, 0).
fn check1(ops: &[Op]) -> CheckResult {
    let initial = BTreeMap::from([(K.to_string(), Register::new(0, 0))]);
    check(ops, &initial)
}

fn assert_ok(ops: &[Op]) {
    let r = check1(ops);
    assert!(r.is_linearizable(), "expected linearizable:\n{r}");
}

fn assert_anomaly(ops: &[Op]) -> String {
    let r = check1(ops);
    assert_eq!(r.anomalies().len(), 1, "expected an anomaly:\n{r}");
    r.to_string()
}

#[test]
fn checker_accepts_sequential_and_overlapping_ops() {
    assert_ok(&[]);
    assert_ok(&[
        write(1, (0, 10), 1, ver(1)),
        read(2, (11, 12), 1, 1),
        cas(2, (13, 14), 1, 2, ver(2)),
        cas(1, (15, 16), 1, 3, BAD),
        read(1, (17, 18), 2, 2),
    ]);
    // A read overlapping a write may see either side of it.
    assert_ok(&[write(1, (0, 10), 1, ver(1)), read(2, (5, 15), 0, 0)]);
    assert_ok(&[write(1, (0, 10), 1, ver(1)), read(2, (5, 15), 1, 1)]);
    // Two concurrent writes take effect in the order their versions say, whatever the calls'
    // order; overlapping reads see the states in between.
    assert_ok(&[
        write(1, (0, 10), 1, ver(2)),
        write(2, (1, 9), 2, ver(1)),
        read(3, (2, 8), 2, 1),
        read(3, (20, 21), 1, 2),
    ]);
    // Equal times count as concurrent.
    assert_ok(&[write(1, (0, 10), 1, ver(1)), read(2, (10, 12), 0, 0)]);
}

#[test]
fn checker_unknown_write_may_take_effect_later_or_never() {
    let w = || write(1, (0, 5), 7, UNKNOWN);
    // It never took effect.
    assert_ok(&[w(), read(2, (10, 11), 0, 0)]);
    // It took effect before the read, or only between two later reads.
    assert_ok(&[w(), read(2, (10, 11), 7, 1)]);
    assert_ok(&[w(), read(2, (10, 11), 0, 0), read(2, (20, 21), 7, 1)]);
    // It took effect while other writes went on, and its version shows.
    assert_ok(&[
        w(),
        write(2, (10, 11), 8, ver(1)),
        write(2, (12, 13), 9, ver(3)),
        read(2, (14, 15), 9, 3),
    ]);
    // But not before its call, and not twice.
    assert_anomaly(&[read(2, (0, 1), 7, 1), write(1, (5, 6), 7, UNKNOWN)]);
    assert_anomaly(&[w(), read(2, (10, 11), 7, 1), read(2, (20, 21), 0, 0)]);
    assert_anomaly(&[
        w(),
        read(2, (10, 11), 7, 1),
        write(2, (12, 13), 8, ver(2)),
        read(2, (14, 15), 7, 3),
    ]);
}

#[test]
fn checker_unknown_cas_applies_only_at_its_version() {
    assert_ok(&[cas(1, (0, 5), 0, 7, UNKNOWN), read(2, (10, 11), 7, 1)]);
    assert_ok(&[cas(1, (0, 5), 0, 7, UNKNOWN), read(2, (10, 11), 0, 0)]);
    assert_anomaly(&[cas(1, (0, 5), 3, 7, UNKNOWN), read(2, (10, 11), 7, 1)]);
}

#[test]
fn checker_leaves_out_failed_ops_and_unfinished_reads() {
    let unfinished_read = op(3, Call::Read, UNKNOWN, 0, 0);
    let failed_read = op(3, Call::Read, Outcome::Fail, 0, 1);
    assert_ok(&[
        write(1, (0, 1), 7, Outcome::Fail),
        unfinished_read,
        failed_read,
        read(2, (10, 11), 0, 0),
    ]);
    // A failed write must not be seen.
    assert_anomaly(&[write(1, (0, 1), 7, Outcome::Fail), read(2, (10, 11), 7, 1)]);
}

#[test]
fn checker_rejects_stale_read_after_completed_write() {
    let report = assert_anomaly(&[
        write(1, (0, 5), 1, ver(1)),
        write(1, (6, 9), 2, ver(2)),
        read(2, (10, 15), 1, 1),
    ]);
    assert!(report.contains("key k:"), "{report}");
    assert!(
        report.contains("client 2 [10 .. 15] read -> (value 1, version 1)"),
        "the report names the stale read:\n{report}"
    );
}

#[test]
fn checker_rejects_two_cas_successes_from_one_version() {
    // Concurrent.
    assert_anomaly(&[cas(1, (0, 10), 0, 1, ver(1)), cas(2, (2, 12), 0, 2, ver(1))]);
    // One after the other, the second one claiming the stale version.
    assert_anomaly(&[
        cas(1, (0, 10), 0, 1, ver(1)),
        cas(2, (20, 30), 0, 2, ver(1)),
    ]);
    // Versions match but one of them is from an earlier state.
    assert_anomaly(&[
        cas(1, (0, 10), 0, 1, ver(1)),
        cas(2, (20, 30), 0, 2, ver(2)),
    ]);
}

#[test]
fn checker_rejects_read_of_value_never_written() {
    assert_anomaly(&[read(1, (0, 1), 42, 1)]);
    assert_anomaly(&[write(1, (0, 5), 1, ver(1)), read(2, (2, 8), 42, 1)]);
    // Right value, impossible version.
    assert_anomaly(&[write(1, (0, 5), 1, ver(1)), read(2, (6, 8), 1, 5)]);
}

#[test]
fn checker_rejects_lost_acknowledged_write() {
    // The second write was given the version of the first, as if the first had been lost.
    assert_anomaly(&[write(1, (0, 5), 1, ver(1)), write(2, (10, 15), 2, ver(1))]);
    // A later read (say, after a failover) no longer sees an acknowledged write.
    assert_anomaly(&[
        write(1, (0, 5), 1, ver(1)),
        read(2, (6, 7), 1, 1),
        write(1, (8, 9), 2, ver(2)),
        read(3, (30, 31), 1, 1),
    ]);
}

#[test]
fn checker_treats_bad_version_as_an_observation() {
    // Nothing changed the version, so BadVersion is impossible...
    assert_anomaly(&[cas(1, (0, 5), 0, 1, BAD)]);
    // ...unless a concurrent write explains it.
    assert_ok(&[write(2, (1, 3), 9, ver(1)), cas(1, (0, 5), 0, 1, BAD)]);
    assert_ok(&[write(2, (1, 3), 9, UNKNOWN), cas(1, (4, 5), 0, 1, BAD)]);
}

#[test]
fn checker_checks_keys_separately_and_names_the_bad_one() {
    let mut h = vec![
        write(1, (0, 5), 1, ver(1)),
        read(2, (6, 7), 1, 1),
        write(1, (20, 25), 2, ver(1)),
        read(2, (30, 31), 0, 0),
    ];
    h[2].key = "other".into();
    h[3].key = "other".into();
    let initial = BTreeMap::from([
        (K.to_string(), Register::new(0, 0)),
        ("other".to_string(), Register::new(0, 0)),
    ]);
    let r = check(&h, &initial);
    let bad = r.anomalies();
    assert_eq!(bad.len(), 1, "{r}");
    assert_eq!(bad[0].key, "other");
    assert_eq!(bad[0].blocked.client, 2, "{r}");
    assert!(r.to_string().contains("key other: not linearizable"), "{r}");
    assert!(r.to_string().contains("key k: linearizable"), "{r}");
}

#[test]
fn checker_report_shows_the_window_around_the_anomaly() {
    // A long linearizable prefix, then a stale read; the window is the end, not the start.
    let mut h = Vec::new();
    let mut t = 0;
    for v in 1..=100 {
        h.push(write(1, (t, t + 1), v, ver(v as Version)));
        h.push(read(2, (t + 2, t + 3), v, v as Version));
        t += 10;
    }
    h.push(write(1, (t, t + 5), 101, ver(101)));
    h.push(read(2, (t + 2, t + 4), 100, 100));
    h.push(read(3, (t + 6, t + 7), 100, 100));
    let r = check1(&h);
    let a = r.anomalies()[0];
    assert_eq!(a.blocked.client, 3, "{r}");
    assert!(a.linearized >= 200, "{r}");
    assert!(a.window.len() <= 10, "{r}");
    assert!(
        a.window
            .iter()
            .any(|w| w.op.call == Call::Write(101) && w.linearized),
        "{r}"
    );
    assert!(a.window.iter().any(|w| w.op == a.blocked), "{r}");
}

#[test]
fn checker_gives_up_as_inconclusive_at_its_step_limit() {
    let h: Vec<Op> = (0..12)
        .map(|i| write(i, (0, 1), i as Value, UNKNOWN))
        .chain([read(99, (2, 3), 5, 12)])
        .collect();
    let initial = BTreeMap::from([(K.to_string(), Register::new(0, 0))]);
    let r = check_with_limit(&h, &initial, 50);
    assert!(
        matches!(r.keys[0].1, KeyVerdict::Inconclusive { .. }),
        "{r}"
    );
    assert!(!r.is_linearizable());
    assert!(r.to_string().contains("INCONCLUSIVE"), "{r}");
    // With room to search it is answered.
    check(&h, &initial).assert_linearizable();
}

/// A simulated history: `clients` run one op at a time on `keys` registers; each op takes
/// effect at a random point inside its interval (or, when unknown, at any time after its call,
/// or never); `unknown_percent` of them are unknown and as many fail. Written values are
/// unique, or with `values: Some(n)` drawn from `0..n` (which leaves the checker nothing but
/// the plain search). Returns the history, the register before each op took effect (None if
/// it did not), and the initial registers.
fn simulate(
    seed: u64,
    clients: usize,
    keys: usize,
    ops_per_client: usize,
    values: Option<u64>,
    unknown_percent: u64,
) -> (Vec<Op>, Vec<Option<Register>>, BTreeMap<String, Register>) {
    let mut rng = Rng::new(seed);
    // (call, effect point, return, client, key, call kind); effect None = never.
    let mut planned = Vec::new();
    for c in 0..clients {
        let mut t = rng.below(50);
        for _ in 0..ops_per_client {
            let call_time = t + rng.below(20);
            let unknown = rng.below(100) < unknown_percent;
            let fail = !unknown && rng.below(100) < unknown_percent;
            let effect = call_time + 1 + rng.below(if unknown { 400 } else { 60 });
            let return_time = if unknown {
                call_time + 1 + rng.below(60)
            } else {
                effect + rng.below(60)
            };
            let applied = !fail && (!unknown || rng.below(2) == 0);
            // Effect points are distinct: scaled, plus the client.
            let effect = applied.then_some(effect * clients as u64 + c as u64);
            let key = rng.below(keys as u64) as usize;
            let kind = rng.below(3);
            planned.push((call_time, effect, return_time, c, key, kind, unknown, fail));
            t = return_time + 1;
        }
    }
    let initial: BTreeMap<String, Register> = (0..keys)
        .map(|k| (format!("k{k}"), Register::new(-(k as Value), 0)))
        .collect();
    let mut regs: Vec<Register> = (0..keys).map(|k| initial[&format!("k{k}")]).collect();
    let mut seen = vec![vec![0 as Version; keys]; clients];
    // Apply in effect order; ops that never take effect come last (their order is moot).
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| (planned[i].1.unwrap_or(u64::MAX), i));
    let mut ops: Vec<Option<Op>> = vec![None; planned.len()];
    let mut before: Vec<Option<Register>> = vec![None; planned.len()];
    let mut next_value: Value = 1;
    for i in order {
        let (call_time, effect, return_time, c, key, kind, unknown, fail) = planned[i];
        let r = &mut regs[key];
        next_value = match values {
            Some(n) => rng.below(n) as Value,
            None => next_value + 1,
        };
        let call = match kind {
            0 => Call::Read,
            1 => Call::Write(next_value),
            _ => Call::Cas {
                expected_version: if rng.below(4) == 0 {
                    r.version
                } else {
                    seen[c][key]
                },
                value: next_value,
            },
        };
        let reply = if effect.is_some() {
            before[i] = Some(*r);
            match call {
                Call::Read => Reply::Read(*r),
                Call::Write(v) => {
                    *r = Register::new(v, r.version + 1);
                    Reply::Version(r.version)
                }
                Call::Cas {
                    expected_version,
                    value,
                } if expected_version == r.version => {
                    *r = Register::new(value, r.version + 1);
                    Reply::Version(r.version)
                }
                Call::Cas { .. } => Reply::BadVersion,
            }
        } else {
            Reply::BadVersion // unused
        };
        let outcome = if unknown {
            Outcome::Unknown
        } else if fail {
            Outcome::Fail
        } else {
            match reply {
                Reply::Read(x) => seen[c][key] = x.version,
                Reply::Version(v) => seen[c][key] = v,
                Reply::BadVersion => {}
            }
            Outcome::Ok(reply)
        };
        ops[i] = Some(Op {
            key: format!("k{key}"),
            client: c,
            call,
            outcome,
            call_time,
            return_time,
        });
    }
    (
        ops.into_iter().map(Option::unwrap).collect(),
        before,
        initial,
    )
}

#[test]
fn checker_accepts_random_linearizable_histories() {
    for seed in 0..30 {
        for values in [None, Some(4)] {
            let (h, _, initial) = simulate(seed, 5, 3, 200, values, 3);
            let r = check(&h, &initial);
            assert!(r.is_linearizable(), "seed {seed}, values {values:?}:\n{r}");
        }
    }
    // A few thousand ops per key.
    let started = Instant::now();
    let (h, _, initial) = simulate(1234, 5, 3, 2_000, None, 3);
    let r = check(&h, &initial);
    println!("{} ops checked in {:?}:\n{r}", h.len(), started.elapsed());
    r.assert_linearizable();
}

#[test]
fn checker_rejects_random_histories_with_a_stale_read() {
    let mut injected = 0;
    for (seed, values) in (0..30).flat_map(|s| [(s, None), (s, Some(4))]) {
        let (mut h, before, initial) = simulate(seed, 5, 3, 200, values, 3);
        // A completed read made to return the register from before the last write that had
        // completed before the read was called.
        let Some((ri, wi)) = (0..h.len())
            .rev()
            .filter(|&r| matches!(h[r].outcome, Outcome::Ok(Reply::Read(_))))
            .find_map(|r| {
                (0..h.len())
                    .filter(|&w| {
                        h[w].key == h[r].key
                            && matches!(h[w].outcome, Outcome::Ok(Reply::Version(_)))
                            && h[w].return_time < h[r].call_time
                    })
                    .max_by_key(|&w| h[w].return_time)
                    .map(|w| (r, w))
            })
        else {
            continue;
        };
        let stale = before[wi].expect("a completed write took effect");
        h[ri].outcome = Outcome::Ok(Reply::Read(stale));
        injected += 1;
        let r = check(&h, &initial);
        let bad = r.anomalies();
        assert_eq!(
            bad.len(),
            1,
            "seed {seed}, values {values:?}: stale read {} not caught:\n{r}",
            h[ri]
        );
        assert_eq!(bad[0].key, h[ri].key, "seed {seed}");
    }
    assert!(
        injected >= 50,
        "only {injected} histories had a read to make stale"
    );
}

/// Whether some order of all completed ops and any subset of the unknown ones respects real
/// time and the register's rules: every order is tried (for a handful of ops only).
fn brute_force(ops: &[Op], initial: Register) -> bool {
    fn ret(op: &Op) -> u64 {
        if op.outcome == UNKNOWN {
            u64::MAX
        } else {
            op.return_time
        }
    }
    fn go(ops: &[&Op], left: &mut Vec<usize>, s: Register) -> bool {
        if left.iter().all(|&i| ops[i].outcome == UNKNOWN) {
            return true;
        }
        for k in 0..left.len() {
            let a = ops[left[k]];
            // Nothing still to place may have returned before `a` was called.
            if left.iter().any(|&b| ret(ops[b]) < a.call_time) {
                continue;
            }
            let bumped = Register::new(0, s.version + 1);
            let next = match (a.call, a.outcome) {
                (Call::Read, Outcome::Ok(Reply::Read(r))) => (r == s).then_some(s),
                (Call::Write(v), Outcome::Ok(Reply::Version(n))) => {
                    (n == bumped.version).then_some(Register::new(v, n))
                }
                (Call::Write(v), UNKNOWN) => Some(Register::new(v, bumped.version)),
                (
                    Call::Cas {
                        expected_version: e,
                        value,
                    },
                    Outcome::Ok(Reply::Version(n)),
                ) => (s.version == e && n == bumped.version).then_some(Register::new(value, n)),
                (
                    Call::Cas {
                        expected_version: e,
                        ..
                    },
                    BAD,
                ) => (s.version != e).then_some(s),
                (
                    Call::Cas {
                        expected_version: e,
                        value,
                    },
                    UNKNOWN,
                ) => Some(if s.version == e {
                    Register::new(value, bumped.version)
                } else {
                    s
                }),
                _ => unreachable!("only generated shapes"),
            };
            let i = left.remove(k);
            let unknown = a.outcome == UNKNOWN;
            // An unknown op may take effect here, or never.
            let found = next.is_some_and(|n| go(ops, left, n)) || (unknown && go(ops, left, s));
            left.insert(k, i);
            if found {
                return true;
            }
        }
        false
    }
    let ops: Vec<&Op> = ops
        .iter()
        .filter(|op| {
            op.outcome != Outcome::Fail && !(op.call == Call::Read && op.outcome == UNKNOWN)
        })
        .collect();
    go(&ops, &mut (0..ops.len()).collect(), initial)
}

#[test]
fn checker_agrees_with_brute_force_on_small_histories() {
    let mut rng = Rng::new(7);
    let (mut yes, mut no) = (0, 0);
    for case in 0..4_000 {
        // Unique written values exercise the pinned search, repeated ones the plain one.
        let values = if case % 2 == 0 { None } else { Some(3) };
        let per_client = 1 + rng.below(3) as usize;
        let (mut h, _, _) = simulate(case, 3, 1, per_client, values, 20);
        for op in h.iter_mut() {
            op.key = K.to_string();
        }
        // Half the time, one completed op's reply is off by one.
        if rng.below(2) == 0 {
            let i = rng.below(h.len() as u64) as usize;
            let d = if rng.below(2) == 0 { 1 } else { -1 };
            h[i].outcome = match h[i].outcome {
                Outcome::Ok(Reply::Read(r)) if rng.below(2) == 0 => {
                    Outcome::Ok(Reply::Read(Register::new(r.value + d as Value, r.version)))
                }
                Outcome::Ok(Reply::Read(r)) => {
                    Outcome::Ok(Reply::Read(Register::new(r.value, r.version + d)))
                }
                Outcome::Ok(Reply::Version(v)) if rng.below(2) == 0 => ver(v + d),
                Outcome::Ok(Reply::Version(v)) => match h[i].call {
                    Call::Cas { .. } => BAD,
                    _ => ver(v + d),
                },
                Outcome::Ok(Reply::BadVersion) => ver(rng.below(3) as Version),
                other => other,
            };
        }
        let expected = brute_force(&h, Register::new(0, 0));
        let r = check1(&h);
        assert_eq!(
            r.is_linearizable(),
            expected,
            "case {case}: brute force says {expected}:\n{h:#?}\n{r}"
        );
        if expected {
            yes += 1;
        } else {
            no += 1;
        }
    }
    assert!(
        yes > 1_000 && no > 1_000,
        "{yes} linearizable, {no} not: too one-sided"
    );
}
