//! `zk bench` end to end (issue 6): short runs of every workload against the real `zk server`
//! on a free loopback port. Each run must exit 0, print a table (or with --json one JSON
//! object) whose numbers are sane — requests completed, ops/s consistent with count over the
//! measured time, p50 <= p90 <= p99 <= p99.9 <= max, no errors, no lost sessions — and leave
//! no znode behind: the bench root is gone afterwards. Ctrl-C (SIGINT) ends a run early with
//! exit 130 and still cleans up; --keep leaves the run's znodes for `--workload cleanup`.

mod common;

use common::TestServer;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use zk::client::Client;

/// Every run here is short; a run that takes longer than this is hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn bench(srv: &TestServer, root: &str, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_zk"))
        .args(["bench", "--server", &srv.addr, "--root", root])
        .args(["--duration", "0.6", "--warmup", "0.2"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run zk bench");
    assert!(
        out.status.success(),
        "zk bench {args:?} exited {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One row of the table: (count, ops/s, [p50, p90, p99, p99.9, max], errors).
fn row(table: &str, op: &str) -> (u64, f64, Vec<f64>, String) {
    let line = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(op))
        .unwrap_or_else(|| panic!("no {op} row in:\n{table}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.len(), 9, "row {line:?}");
    let num = |s: &str| -> f64 { s.parse().unwrap_or_else(|_| panic!("{s:?} in {line:?}")) };
    (
        f[1].parse().unwrap(),
        num(f[2]),
        f[3..8].iter().map(|s| num(s)).collect(),
        f[8].to_owned(),
    )
}

/// The measured seconds the header reports ("..., 0.6 s measured after ...").
fn measured_secs(table: &str) -> f64 {
    let head = table.lines().next().unwrap();
    let before = head
        .split(" s measured")
        .next()
        .unwrap_or_else(|| panic!("no measured time in {head:?}"));
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

fn assert_sane_row(table: &str, op: &str) {
    let (count, rate, lat, errors) = row(table, op);
    assert!(count > 0, "{op}: nothing completed:\n{table}");
    let secs = measured_secs(table);
    assert!(secs > 0.3 && secs < 5.0, "measured {secs} s:\n{table}");
    // The header rounds the measured time to 0.1 s.
    let (low, high) = (count as f64 / (secs + 0.05), count as f64 / (secs - 0.05));
    assert!(
        low * 0.99 <= rate && rate <= high * 1.01,
        "{op}: {rate} ops/s but {count} in {secs} s:\n{table}"
    );
    for w in lat.windows(2) {
        assert!(
            w[0] <= w[1],
            "{op}: percentiles out of order {lat:?}:\n{table}"
        );
    }
    assert!(
        lat[0] > 0.0,
        "{op}: a zero p50 is not a measurement:\n{table}"
    );
    assert!(lat[4] < 10_000.0, "{op}: max {} ms:\n{table}", lat[4]);
    assert_eq!(errors, "0", "{op} had errors:\n{table}");
}

/// Nothing of the run is left: the bench root itself is gone.
fn assert_clean(srv: &TestServer, root: &str) {
    let mut c = srv.client();
    assert_eq!(
        c.exists(root, false).unwrap(),
        None,
        "{root} is still there: {:?}",
        c.get_children(root, false)
    );
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_workload_reports_sane_numbers_and_cleans_up() {
    let srv = TestServer::start();
    let root = "/bench-cli";
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("set", &["--keys", "20"], &["set"]),
        ("get", &["--keys", "20"], &["get"]),
        ("exists", &["--keys", "20"], &["exists"]),
        ("list", &["--keys", "5", "--children", "3"], &["list"]),
        (
            "mixed",
            &["--keys", "20", "--ratio", "3:1"],
            &["get", "set", "total"],
        ),
        ("create", &[], &["create"]),
        ("create", &["--sequential"], &["create"]),
        ("multi", &["--multi-ops", "3"], &["multi"]),
        ("ephemeral", &[], &["create", "delete"]),
        ("watch", &[], &["get+watch", "set", "set->event"]),
        (
            "lock",
            &["--keys", "2"],
            &["lock.create", "lock.list", "lock.delete", "lock"],
        ),
        ("latency", &[], &["create", "get", "set", "delete"]),
    ];
    for (workload, extra, ops) in cases {
        let mut args = vec!["--workload", workload, "--clients", "3", "--inflight", "4"];
        args.extend_from_slice(extra);
        let out = stdout(&bench(&srv, root, &args));
        for op in *ops {
            assert_sane_row(&out, op);
        }
        assert!(out.contains("note: cleanup deleted"), "{out}");
        assert!(!out.contains("lost their connection"), "{out}");
        assert_clean(&srv, root);
    }
    // The one-request-at-a-time workload really used one session.
    let out = stdout(&bench(
        &srv,
        root,
        &["--workload", "latency", "--clients", "8"],
    ));
    assert!(out.contains("1 session x 1 in flight"), "{out}");
    srv.client().get_children("/", false).unwrap();
}

/// The value of `"key":` in a flat stretch of JSON, as text.
fn json_field<'a>(json: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\":");
    let at = json
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + pat.len();
    let rest = &json[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn json_output_is_one_object_with_the_numbers() {
    let srv = TestServer::start();
    let root = "/bench-json";
    let out = bench(
        &srv,
        root,
        &[
            "--workload",
            "mixed",
            "--keys",
            "10",
            "--clients",
            "2",
            "--json",
        ],
    );
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one line of JSON: {text}");
    let j = lines[0];
    assert!(j.starts_with('{') && j.ends_with('}'), "{j}");
    // Balanced braces and quotes: a cheap check that the hand-written JSON is well formed.
    assert_eq!(j.matches('{').count(), j.matches('}').count(), "{j}");
    assert_eq!(j.matches('"').count() % 2, 0, "{j}");
    assert_eq!(json_field(j, "workload"), "\"mixed\"");
    assert_eq!(json_field(j, "lost_sessions"), "0");
    assert_eq!(json_field(j, "abandoned"), "0");
    assert_eq!(json_field(j, "failed"), "0");
    assert_eq!(json_field(j, "populated"), "10");
    let get = &j[j.find("\"get\":").expect("a get entry")..];
    let count: u64 = json_field(get, "count").parse().unwrap();
    let rate: f64 = json_field(get, "ops_per_s").parse().unwrap();
    let p50: f64 = json_field(get, "p50").parse().unwrap();
    let p99: f64 = json_field(get, "p99").parse().unwrap();
    let max: f64 = json_field(get, "max").parse().unwrap();
    assert!(count > 0 && rate > 0.0, "{j}");
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{j}");
    assert!(
        json_field(j, "deleted").parse::<u64>().unwrap() >= 11,
        "{j}"
    );
    // No progress line or anything else when the output is for machines.
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("ops/s"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_clean(&srv, root);
}

#[test]
fn ctrl_c_stops_early_and_still_cleans_up() {
    let srv = TestServer::start();
    let root = "/bench-sigint";
    let child = Command::new(env!("CARGO_BIN_EXE_zk"))
        .args(["bench", "--server", &srv.addr, "--root", root])
        .args(["--workload", "create", "--clients", "2", "--duration", "50"])
        .args(["--warmup", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn zk bench");
    // Wait until the run has made something, then interrupt it.
    let mut c = srv.client();
    let deadline = Instant::now() + RUN_TIMEOUT;
    while c
        .get_children(root, false)
        .map(|v| v.is_empty())
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "the run never created its root");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Long enough that the measured window clears assert_sane_row's 0.3 s floor: the root
    // appears as the run starts measuring, and 300 ms once gave exactly "0.3 s".
    std::thread::sleep(Duration::from_millis(600));
    // SAFETY: kill(2) on the pid of a child we spawned and have not waited for.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0);
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < RUN_TIMEOUT);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(text.contains("note: interrupted"), "{text}");
    assert_sane_row(&text, "create");
    assert_clean(&srv, root);
}

#[test]
fn keep_leaves_the_nodes_for_cleanup() {
    let srv = TestServer::start();
    let root = "/bench-keep";
    let out = stdout(&bench(
        &srv,
        root,
        &[
            "--workload",
            "get",
            "--keys",
            "30",
            "--clients",
            "2",
            "--keep",
        ],
    ));
    assert!(out.contains("--keep: the znodes stay under"), "{out}");
    let mut c: Client = srv.client();
    let runs = c.get_children(root, false).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let keys = c
        .get_children(&format!("{root}/{}/keys", runs[0]), false)
        .unwrap();
    assert_eq!(keys.len(), 30);
    let out = stdout(&bench(&srv, root, &["--workload", "cleanup"]));
    assert!(out.contains("removed 1 run(s), 32 znodes"), "{out}");
    assert_clean(&srv, root);
}

#[test]
fn bad_arguments_fail_before_touching_the_server() {
    let srv = TestServer::start();
    for args in [
        &["--workload", "watch", "--clients", "1"][..],
        &["--workload", "get", "--root", "/"],
        &["--workload", "get", "--keys", "0"],
        &["--workload", "get", "--ratio", "x"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_zk"))
            .args(["bench", "--server", &srv.addr])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
    let out = Command::new(env!("CARGO_BIN_EXE_zk"))
        .args(["bench", "--workload", "get", "--server", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("zk: error: cannot connect"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(srv.client().exists("/zk-bench", false).unwrap(), None);
}
