//! `zk bench`: a load generator for any ZooKeeper-compatible server (zk, Apache ZooKeeper,
//! anything speaking the client protocol). It opens `--clients` sessions, keeps `--inflight`
//! requests outstanding on each, runs one workload for `--duration` seconds after a
//! `--warmup`, and reports per operation the count, ops/s and the latency distribution
//! (p50/p90/p99/p99.9/max, measured from send to reply), with failures by error code. On a
//! terminal it draws a progress line once a second; `--json` prints one JSON object instead
//! of the table.
//!
//! A run works in four phases: setup (a blocking client makes the run's directories, then
//! the engine pre-creates the keys the workload needs), the measured run, closing the
//! sessions, and cleanup (a pipelined recursive delete of the run's node, unless `--keep`).
//! Ctrl-C (or SIGTERM) ends the run early and still cleans up; a second one exits at once.
//! Every znode lives under `<--root>/run-<pid>-<ms>`, so runs never collide and cleanup
//! never touches anything else. The pipelined engine is in `bench/engine.rs`, the workloads
//! in `bench/workload.rs`. It corresponds to no single ZooKeeper tool: it does what
//! zk-smoketest's latency test and the various ZooKeeper load generators do, pipelined.

mod engine;
mod hist;
mod report;
mod stats;
mod workload;

use crate::client::{Client, ClientError};
use crate::proto::records::open_acl_unsafe;
use crate::proto::Code;
use clap::{Args, ValueEnum};
use engine::{plan_threads, run_phase, Driver, PhaseConfig, ThreadPlan};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use workload::{Bulk, Cleanup, CleanupCounts, Layout, Params, SimpleKind};

/// Sessions used to pre-create keys and to clean up; enough to keep a server busy without
/// tripping Apache ZooKeeper's globalOutstandingLimit (1000) with `SETUP_INFLIGHT`.
const SETUP_SESSIONS_MAX: usize = 8;
/// Requests outstanding per setup or cleanup session.
const SETUP_INFLIGHT: usize = 100;
/// The largest value `--size` allows: ZooKeeper's default jute.maxbuffer less room for the
/// request's path and headers.
const SIZE_MAX: usize = 0xfffff - 4096;
/// The exit code after an interrupted run (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: i32 = 130;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Create znodes of --size bytes (unique names, or --sequential).
    Create,
    /// setData on random pre-created keys.
    Set,
    /// getData on random pre-created keys.
    Get,
    /// exists on random pre-created keys.
    Exists,
    /// getChildren on random pre-created keys, each with --children children.
    List,
    /// getData and setData on random keys, --ratio reads per write.
    Mixed,
    /// multi of --multi-ops creates.
    Multi,
    /// Create an ephemeral znode, then delete it.
    Ephemeral,
    /// Arm a watch with getData, change the node from another session, time set -> event.
    Watch,
    /// The lock recipe: create ephemeral-sequential, getChildren, wait if not lowest, delete.
    Lock,
    /// One session, one request at a time: create, get, set, delete of a fresh node.
    Latency,
    /// Delete what earlier --keep runs left under --root, then exit.
    Cleanup,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Create => "create",
            Workload::Set => "set",
            Workload::Get => "get",
            Workload::Exists => "exists",
            Workload::List => "list",
            Workload::Mixed => "mixed",
            Workload::Multi => "multi",
            Workload::Ephemeral => "ephemeral",
            Workload::Watch => "watch",
            Workload::Lock => "lock",
            Workload::Latency => "latency",
            Workload::Cleanup => "cleanup",
        }
    }

    fn uses_keys(self) -> bool {
        matches!(
            self,
            Workload::Set | Workload::Get | Workload::Exists | Workload::List | Workload::Mixed
        )
    }
}

#[derive(Args, Debug)]
#[command(
    about = "Drive a ZooKeeper-compatible server with a workload and report throughput and \
             latency",
    after_help = "Examples:\n  zk bench --server 127.0.0.1:2181 --workload set --clients 16 \
                  --inflight 32 --duration 30\n  zk bench --workload mixed --ratio 9 --json\n  \
                  zk bench --workload latency --duration 10"
)]
pub struct BenchArgs {
    /// Servers as host:port, comma-separated; sessions are spread over them in turn.
    #[arg(
        long,
        short = 's',
        value_delimiter = ',',
        default_value = "127.0.0.1:2181"
    )]
    pub server: Vec<String>,
    /// What to run.
    #[arg(long, short = 'w', value_enum)]
    pub workload: Workload,
    /// Sessions (connections) to open. The watch workload uses them in pairs.
    #[arg(long, short = 'c', default_value_t = 16)]
    pub clients: usize,
    /// Requests kept outstanding per session (watch: chains per pair; lock: lock attempts).
    #[arg(long, short = 'p', default_value_t = 16)]
    pub inflight: usize,
    /// Seconds to measure, after the warm-up.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds to run before measuring (JIT, caches, connection buffers).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Bytes of data per create and set.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Keys pre-created for get/set/exists/list/mixed; locks for the lock workload.
    #[arg(long, short = 'k', default_value_t = 1000)]
    pub keys: u64,
    /// Reads per write for mixed: 9 (or 9:1) is 90% reads.
    #[arg(long, default_value = "9", value_parser = parse_ratio)]
    pub ratio: f64,
    /// Creates per multi for the multi workload.
    #[arg(long, default_value_t = 4)]
    pub multi_ops: usize,
    /// Children per key for the list workload.
    #[arg(long, default_value_t = 10)]
    pub children: u64,
    /// create: use sequential nodes (PERSISTENT_SEQUENTIAL) instead of unique names.
    #[arg(long)]
    pub sequential: bool,
    /// Load-generator threads (default: the CPUs this process may run on, at most one per
    /// session).
    #[arg(long)]
    pub threads: Option<usize>,
    /// The znode under which each run makes its own run-<pid>-<ms> node.
    #[arg(long, default_value = "/zk-bench")]
    pub root: String,
    /// Leave the run's znodes in place (for memory and restart measurements).
    #[arg(long)]
    pub keep: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Session timeout to ask for, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub session_timeout: i32,
}

/// `9`, `9.5` or `9:1`: reads per write.
fn parse_ratio(s: &str) -> Result<f64, String> {
    let bad = || format!("{s:?} is not a ratio like 9 or 9:1");
    let r = match s.split_once(':') {
        Some((a, b)) => {
            let a: f64 = a.trim().parse().map_err(|_| bad())?;
            let b: f64 = b.trim().parse().map_err(|_| bad())?;
            if b == 0.0 {
                f64::INFINITY
            } else {
                a / b
            }
        }
        None => s.trim().parse().map_err(|_| bad())?,
    };
    if r.is_nan() || r < 0.0 {
        return Err(bad());
    }
    Ok(r)
}

fn seconds(what: &str, s: f64) -> Result<Duration, String> {
    if !(0.0..=1e7).contains(&s) {
        return Err(format!("--{what} must be a number of seconds, not {s}"));
    }
    Ok(Duration::from_secs_f64(s))
}

/// A valid --root: absolute, not "/", no trailing or doubled slash.
fn check_root(root: &str) -> Result<(), String> {
    if !root.starts_with('/')
        || root.len() < 2
        || root.ends_with('/')
        || root.contains("//")
        || root.split('/').any(|c| c == "." || c == "..")
    {
        return Err(format!(
            "--root {root:?} must be an absolute znode path other than /"
        ));
    }
    Ok(())
}

/// The settled shape of a run.
struct Plan {
    workload: Workload,
    clients: usize,
    inflight: usize,
    threads: usize,
    duration: Duration,
    warmup: Duration,
}

fn settle(a: &BenchArgs) -> Result<Plan, String> {
    if a.server.is_empty() || a.server.iter().any(|s| s.trim().is_empty()) {
        return Err("--server needs host:port".into());
    }
    check_root(&a.root)?;
    if a.size > SIZE_MAX {
        return Err(format!("--size must be at most {SIZE_MAX} bytes"));
    }
    if a.clients == 0 || a.inflight == 0 {
        return Err("--clients and --inflight must be at least 1".into());
    }
    if (a.workload.uses_keys() || a.workload == Workload::Lock) && a.keys == 0 {
        return Err("--keys must be at least 1".into());
    }
    if a.workload == Workload::Multi && a.multi_ops == 0 {
        return Err("--multi-ops must be at least 1".into());
    }
    if a.session_timeout <= 0 {
        return Err("--session-timeout must be positive".into());
    }
    let duration = seconds("duration", a.duration)?;
    let warmup = seconds("warmup", a.warmup)?;
    let (clients, inflight) = match a.workload {
        // Its point is one request with nothing else in flight.
        Workload::Latency => (1, 1),
        Workload::Watch if a.clients < 2 => {
            return Err("the watch workload needs --clients 2 or more (it pairs them)".into())
        }
        Workload::Watch => (a.clients / 2 * 2, a.inflight),
        _ => (a.clients, a.inflight),
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let unit = if a.workload == Workload::Watch { 2 } else { 1 };
    let threads = a.threads.unwrap_or(cpus).clamp(1, clients.div_ceil(unit));
    Ok(Plan {
        workload: a.workload,
        clients,
        inflight,
        threads,
        duration,
        warmup,
    })
}

/// Opens a short-lived blocking session for the few setup and teardown steps.
fn admin(a: &BenchArgs) -> Result<Client, String> {
    let addr = &a.server[0];
    Client::connect(addr, a.session_timeout).map_err(|e| format!("{CONNECT_FAILED} {addr}: {e}"))
}

/// How the error of an unreachable server starts, so `run` skips a pointless cleanup.
const CONNECT_FAILED: &str = "cannot connect to";

/// Creates a persistent node, content if it is already there.
fn ensure(c: &mut Client, path: &str) -> Result<(), String> {
    match c.create(path, Some(&[]), &open_acl_unsafe(), 0) {
        Ok(_) | Err(ClientError::Keeper(Code::NodeExists)) => Ok(()),
        Err(e) => Err(format!("cannot create {path}: {e}")),
    }
}

/// The directories a workload writes into, made before any session starts.
fn directories(p: &Plan, layout: &Layout) -> Vec<String> {
    let mut dirs = vec![layout.run.clone()];
    let per_session = |kind: &str, dirs: &mut Vec<String>| {
        dirs.push(layout.dir(kind));
        dirs.extend((0..p.clients).map(|g| layout.session_dir(kind, g)));
    };
    match p.workload {
        Workload::Create => per_session("create", &mut dirs),
        Workload::Multi => per_session("multi", &mut dirs),
        Workload::Ephemeral => dirs.push(layout.dir("eph")),
        Workload::Lock => dirs.push(layout.dir("lock")),
        Workload::Watch => dirs.push(layout.dir("watch")),
        Workload::Latency => dirs.push(layout.dir("latency")),
        _ => dirs.push(layout.dir("keys")),
    }
    dirs
}

/// One pre-creation stage: `count` nodes named by the function, with or without data.
type Stage = (Arc<dyn Fn(u64) -> String + Send + Sync>, bool, u64);

fn stages(a: &BenchArgs, p: &Plan, layout: &Arc<Layout>) -> Vec<Stage> {
    let mut v: Vec<Stage> = Vec::new();
    if p.workload.uses_keys() {
        let l = layout.clone();
        v.push((Arc::new(move |i| l.key(i)), true, a.keys));
        if p.workload == Workload::List && a.children > 0 {
            let l = layout.clone();
            let per = a.children;
            v.push((
                Arc::new(move |i| l.key_child(i / per, i % per)),
                false,
                a.keys * per,
            ));
        }
    }
    match p.workload {
        Workload::Lock => {
            let l = layout.clone();
            v.push((Arc::new(move |i| l.lock_dir(i)), false, a.keys));
        }
        Workload::Watch => {
            let l = layout.clone();
            let per = p.inflight;
            let pairs = p.clients / 2;
            v.push((
                Arc::new(move |i| l.watch_node(i as usize / per, i as usize % per)),
                true,
                (pairs * per) as u64,
            ));
        }
        _ => {}
    }
    v
}

/// How setup and cleanup run: until their work is done, with no warm-up, and with a progress
/// line named `label` unless the output is JSON.
fn setup_phase_config<'a>(
    a: &'a BenchArgs,
    label: &'a str,
    interrupted: &'a AtomicBool,
    quiet: bool,
) -> PhaseConfig<'a> {
    PhaseConfig {
        servers: &a.server,
        session_timeout_ms: a.session_timeout,
        warmup: Duration::ZERO,
        duration: None,
        progress: if quiet { None } else { Some(label) },
        interrupted,
    }
}

/// Pre-creates what the workload reads; returns how many znodes and how long it took.
fn populate(
    a: &BenchArgs,
    p: &Plan,
    layout: &Arc<Layout>,
    data: &Arc<Vec<u8>>,
    interrupted: &AtomicBool,
) -> Result<(u64, Duration), String> {
    let mut made = 0;
    let mut took = Duration::ZERO;
    for (path_of, with_data, count) in stages(a, p, layout) {
        if count == 0 {
            continue;
        }
        let sessions = p.clients.min(SETUP_SESSIONS_MAX);
        let plans = plan_threads(sessions, p.threads, 1);
        let step = plans.len() as u64;
        let work = plans
            .into_iter()
            .enumerate()
            .map(|(t, plan)| {
                let d: Box<dyn Driver> = Box::new(Bulk::new(
                    path_of.clone(),
                    with_data.then(|| data.clone()),
                    count,
                    t as u64,
                    step,
                    SETUP_INFLIGHT,
                ));
                (plan, d)
            })
            .collect();
        let cfg = setup_phase_config(a, "setup", interrupted, a.json);
        let res = run_phase(&cfg, work)?;
        let st = res.stats.get(stats::Op::Populate);
        if st.error_count() > 0 {
            let errors: Vec<String> = st
                .errors
                .iter()
                .map(|(c, n)| format!("{}={n}", stats::code_name(*c)))
                .collect();
            return Err(format!("setup failed: {}", errors.join(",")));
        }
        if res.lost_sessions > 0 {
            return Err(format!(
                "setup lost {} session(s): {}",
                res.lost_sessions,
                res.lost_reason.unwrap_or_default()
            ));
        }
        made += st.hist.count();
        took += res.elapsed;
        if res.interrupted {
            break;
        }
    }
    Ok((made, took))
}

/// Deletes the given subtrees, pipelined; returns how many znodes went and how many could
/// not be deleted.
fn cleanup(a: &BenchArgs, p: &Plan, roots: Vec<String>) -> Result<report::CleanupInfo, String> {
    // Cleanup runs even after Ctrl-C, so it has an interrupt flag of its own that nothing
    // sets; a second Ctrl-C exits the process instead.
    let never = AtomicBool::new(false);
    let sessions = p.clients.min(SETUP_SESSIONS_MAX);
    // One thread: the work queue is shared by all its sessions.
    let plan = ThreadPlan {
        sessions: (0..sessions).collect(),
    };
    let counts = Arc::new(CleanupCounts::default());
    let driver: Box<dyn Driver> = Box::new(Cleanup::new(roots, SETUP_INFLIGHT, counts.clone()));
    let cfg = setup_phase_config(a, "cleanup", &never, a.json);
    let started = Instant::now();
    let res = run_phase(&cfg, vec![(plan, driver)])?;
    // A lost session's deletes count as failures: what they should have removed is left.
    let failed = counts.failed.load(Ordering::SeqCst) + res.lost_sessions;
    Ok(report::CleanupInfo {
        deleted: counts.deleted.load(Ordering::SeqCst),
        failed,
        time: started.elapsed(),
    })
}

fn install_interrupt_handler() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal sets the flag; a second one, with the flag already set, exits.
        let _ =
            signal_hook::flag::register_conditional_shutdown(sig, EXIT_INTERRUPTED, flag.clone());
        let _ = signal_hook::flag::register(sig, flag.clone());
    }
    flag
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Makes the root, the run's node and the directories its workload writes into.
fn prepare(a: &BenchArgs, p: &Plan, layout: &Layout) -> Result<(), String> {
    let mut c = admin(a)?;
    ensure(&mut c, &a.root)?;
    for d in directories(p, layout) {
        ensure(&mut c, &d)?;
    }
    let _ = c.close();
    Ok(())
}

/// Runs `zk bench`: setup, the measured run, cleanup, the report. Exits 0, or 130 when
/// interrupted; a failure to set up is an error, after cleaning up what was made.
pub fn run(a: BenchArgs) -> Result<i32, Box<dyn std::error::Error>> {
    let p = settle(&a)?;
    let interrupted = install_interrupt_handler();
    if p.workload == Workload::Cleanup {
        return run_cleanup_only(&a, &p);
    }
    let layout = Arc::new(Layout {
        run: format!("{}/run-{}-{}", a.root, std::process::id(), unix_ms()),
    });
    let outcome = prepare(&a, &p, &layout).and_then(|()| measure(&a, &p, &layout, &interrupted));
    // Cleanup happens whatever the run did, but only after a run that reached the server.
    let cleaned = if a.keep || matches!(&outcome, Err(e) if e.starts_with(CONNECT_FAILED)) {
        None
    } else {
        let c = cleanup(&a, &p, vec![layout.run.clone()]);
        if let Ok(mut c) = admin(&a) {
            // The root goes too once no run is left in it; another run's nodes keep it.
            let _ = c.delete(&a.root, -1);
            let _ = c.close();
        }
        Some(c)
    };
    // The run's own failure is the one worth reporting; a cleanup failure comes second.
    let (res, populated, populate_time) = outcome?;
    let cleaned = cleaned.transpose()?;
    let info = report::RunInfo {
        workload: p.workload.name(),
        servers: a.server.clone(),
        clients: p.clients,
        inflight: p.inflight,
        threads: p.threads,
        duration: p.duration,
        warmup: p.warmup,
        size: a.size,
        keys: a.keys,
        ratio: (p.workload == Workload::Mixed).then_some(a.ratio),
        run_path: layout.run.clone(),
        populated,
        populate_time,
        cleanup: cleaned,
    };
    let m = report::Measured {
        stats: &res.stats,
        measured: res.measured,
        client_cpu_cores: res.cpu_secs.and_then(|c| {
            let wall = res.elapsed.as_secs_f64();
            (wall > 0.0).then(|| c / wall)
        }),
        abandoned: res.abandoned,
        lost_sessions: res.lost_sessions,
        lost_reason: res.lost_reason.as_deref(),
        interrupted: res.interrupted,
    };
    if a.json {
        println!("{}", report::json(&info, &m));
    } else {
        print!("{}", report::table(&info, &m));
    }
    Ok(if res.interrupted { EXIT_INTERRUPTED } else { 0 })
}

/// Setup and the measured run; cleanup is the caller's, so it happens whatever this returns.
fn measure(
    a: &BenchArgs,
    p: &Plan,
    layout: &Arc<Layout>,
    interrupted: &AtomicBool,
) -> Result<(engine::PhaseResult, u64, Duration), String> {
    let data = Arc::new(value_bytes(a.size));
    let (populated, populate_time) = populate(a, p, layout, &data, interrupted)?;
    let params = Params {
        layout: layout.clone(),
        data,
        keys: a.keys,
        inflight: p.inflight,
        read_fraction: if a.ratio.is_finite() {
            a.ratio / (a.ratio + 1.0)
        } else {
            1.0
        },
        multi_ops: a.multi_ops,
        sequential: a.sequential,
    };
    let unit = if p.workload == Workload::Watch { 2 } else { 1 };
    let work = plan_threads(p.clients, p.threads, unit)
        .into_iter()
        .map(|plan| {
            let d = driver_for(p.workload, &params, &plan);
            (plan, d)
        })
        .collect();
    let cfg = PhaseConfig {
        servers: &a.server,
        session_timeout_ms: a.session_timeout,
        warmup: p.warmup,
        duration: Some(p.duration),
        progress: if a.json {
            None
        } else {
            Some(p.workload.name())
        },
        interrupted,
    };
    if interrupted.load(Ordering::Relaxed) {
        return Err("interrupted during setup".into());
    }
    let res = run_phase(&cfg, work)?;
    Ok((res, populated, populate_time))
}

/// The driver of one thread of the measured run.
fn driver_for(w: Workload, params: &Params, plan: &ThreadPlan) -> Box<dyn Driver> {
    let n = plan.sessions.len();
    let simple = |k| -> Box<dyn Driver> { Box::new(workload::Simple::new(k, params.clone(), n)) };
    match w {
        Workload::Create => simple(SimpleKind::Create),
        Workload::Set => simple(SimpleKind::Set),
        Workload::Get => simple(SimpleKind::Get),
        Workload::Exists => simple(SimpleKind::Exists),
        Workload::List => simple(SimpleKind::List),
        Workload::Mixed => simple(SimpleKind::Mixed),
        Workload::Multi => simple(SimpleKind::Multi),
        Workload::Ephemeral => Box::new(workload::Ephemeral::new(params.clone(), n)),
        Workload::Lock => Box::new(workload::Lock::new(params.clone(), n)),
        Workload::Watch => Box::new(workload::Watch::new(params.clone(), &plan.sessions)),
        // `run` handles cleanup before any driver is made; latency is the fallback.
        Workload::Latency | Workload::Cleanup => Box::new(workload::Latency::new(params.clone())),
    }
}

/// `--workload cleanup`: removes every run-* node under --root left by --keep runs.
fn run_cleanup_only(a: &BenchArgs, p: &Plan) -> Result<i32, Box<dyn std::error::Error>> {
    let mut c = admin(a)?;
    let runs = match c.get_children(&a.root, false) {
        Ok(v) => v,
        Err(ClientError::Keeper(Code::NoNode)) => Vec::new(),
        Err(e) => return Err(format!("cannot list {}: {e}", a.root).into()),
    };
    let _ = c.close();
    let roots: Vec<String> = runs
        .iter()
        .filter(|n| n.starts_with("run-"))
        .map(|n| format!("{}/{n}", a.root))
        .collect();
    let info = cleanup(a, p, roots.clone())?;
    if let Ok(mut c) = admin(a) {
        let _ = c.delete(&a.root, -1);
        let _ = c.close();
    }
    if a.json {
        println!(
            "{{\"workload\":\"cleanup\",\"runs\":{},\"deleted\":{},\"failed\":{},\"seconds\":{:.3}}}",
            roots.len(),
            info.deleted,
            info.failed,
            info.time.as_secs_f64()
        );
    } else {
        println!(
            "zk bench: cleanup removed {} run(s), {} znodes in {:.2} s{}",
            roots.len(),
            info.deleted,
            info.time.as_secs_f64(),
            if info.failed > 0 {
                format!("; {} could not be deleted", info.failed)
            } else {
                String::new()
            }
        );
    }
    Ok(if info.failed > 0 { 1 } else { 0 })
}

/// The value written by creates and sets: printable, so a server's dump stays readable.
fn value_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_parse() {
        assert_eq!(parse_ratio("9").unwrap(), 9.0);
        assert_eq!(parse_ratio("9:1").unwrap(), 9.0);
        assert_eq!(parse_ratio("1:3").unwrap(), 1.0 / 3.0);
        assert_eq!(parse_ratio("1:0").unwrap(), f64::INFINITY);
        assert!(parse_ratio("x").is_err());
        assert!(parse_ratio("-1").is_err());
    }

    #[test]
    fn roots_are_checked() {
        assert!(check_root("/zk-bench").is_ok());
        assert!(check_root("/a/b").is_ok());
        for bad in ["/", "", "zk", "/a/", "/a//b", "/a/../b"] {
            assert!(check_root(bad).is_err(), "{bad}");
        }
    }
}
