//! The results of a `zk bench` run, as a table for people or one JSON object for machines.
//! Latencies are shown in milliseconds with microsecond precision; throughput counts the
//! successful replies of requests sent inside the measurement window, divided by its
//! length; failed replies are listed by ZooKeeper error code name. The JSON is written by
//! hand (a flat, fixed shape needs no serde) and its keys are stable.

use super::hist::Histogram;
use super::stats::{code_name, Op, OpStats, Stats};
use crate::cmd::json::json_str;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Everything about a run besides the measured numbers.
pub struct RunInfo {
    pub workload: &'static str,
    pub servers: Vec<String>,
    pub clients: usize,
    pub inflight: usize,
    pub threads: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub size: usize,
    pub keys: u64,
    /// Reads per write, for mixed.
    pub ratio: Option<f64>,
    pub run_path: String,
    /// Znodes created before the run, and how long that took.
    pub populated: u64,
    pub populate_time: Duration,
    /// Znodes deleted afterwards, how long it took, and whether everything went.
    pub cleanup: Option<CleanupInfo>,
}

pub struct CleanupInfo {
    pub deleted: u64,
    pub time: Duration,
    pub failed: u64,
}

/// What the measurement phase produced.
pub struct Measured<'a> {
    pub stats: &'a Stats,
    pub measured: Duration,
    /// Cores' worth of CPU the load generator used over the whole run (warm-up included).
    pub client_cpu_cores: Option<f64>,
    pub abandoned: u64,
    pub lost_sessions: u64,
    pub lost_reason: Option<&'a str>,
    pub interrupted: bool,
}

/// The numbers of one table row.
struct Row {
    name: &'static str,
    count: u64,
    rate: f64,
    hist: Histogram,
    errors: BTreeMap<i32, u64>,
}

fn rows(m: &Measured<'_>) -> Vec<Row> {
    let secs = m.measured.as_secs_f64();
    let rate = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    Op::ALL
        .iter()
        .filter(|op| op.is_reported())
        .map(|&op| (op, m.stats.get(op)))
        .filter(|(_, s)| s.hist.count() > 0 || s.error_count() > 0)
        .map(|(op, s): (Op, &OpStats)| Row {
            name: op.name(),
            count: s.hist.count(),
            rate: rate(s.hist.count()),
            hist: s.hist.clone(),
            errors: s.errors.clone(),
        })
        .collect()
}

/// The sum of the request ops (not the derived ones), when there is more than one.
fn total(m: &Measured<'_>) -> Option<Row> {
    let ops: Vec<Op> = Op::ALL
        .iter()
        .copied()
        .filter(|op| op.is_reported() && !op.is_derived())
        .filter(|op| m.stats.get(*op).hist.count() + m.stats.get(*op).error_count() > 0)
        .collect();
    if ops.len() < 2 {
        return None;
    }
    let mut hist = Histogram::new();
    let mut errors = BTreeMap::new();
    for op in ops {
        let s = m.stats.get(op);
        hist.merge(&s.hist);
        for (c, n) in &s.errors {
            *errors.entry(*c).or_insert(0) += n;
        }
    }
    let secs = m.measured.as_secs_f64();
    Some(Row {
        name: "total",
        count: hist.count(),
        rate: if secs > 0.0 {
            hist.count() as f64 / secs
        } else {
            0.0
        },
        hist,
        errors,
    })
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn errors_text(errors: &BTreeMap<i32, u64>) -> String {
    if errors.is_empty() {
        return "0".into();
    }
    errors
        .iter()
        .map(|(c, n)| format!("{}={n}", code_name(*c)))
        .collect::<Vec<_>>()
        .join(",")
}

fn header(info: &RunInfo, m: &Measured<'_>) -> String {
    let mut h = format!(
        "zk bench: {} against {}: {} session{} x {} in flight on {} thread{}, {:.1} s measured \
         after {:.1} s warm-up, {}-byte values",
        info.workload,
        info.servers.join(","),
        info.clients,
        if info.clients == 1 { "" } else { "s" },
        info.inflight,
        info.threads,
        if info.threads == 1 { "" } else { "s" },
        m.measured.as_secs_f64(),
        info.warmup.as_secs_f64(),
        info.size,
    );
    match info.workload {
        "set" | "get" | "exists" | "list" | "mixed" => {
            let _ = write!(h, ", {} keys", info.keys);
        }
        "lock" => {
            let _ = write!(h, ", {} locks", info.keys);
        }
        _ => {}
    }
    if let Some(r) = info.ratio {
        let _ = write!(h, ", {r}:1 reads:writes");
    }
    h
}

/// The human-readable report: a header line, the table, then notes.
pub fn table(info: &RunInfo, m: &Measured<'_>) -> String {
    let mut out = header(info, m);
    out.push('\n');
    let _ = writeln!(
        out,
        "{:<12} {:>10} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9}  errors",
        "op", "count", "ops/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    let mut all = rows(m);
    all.extend(total(m));
    if all.is_empty() {
        out.push_str("(no requests completed in the measurement window)\n");
    }
    for r in &all {
        let h = &r.hist;
        let _ = writeln!(
            out,
            "{:<12} {:>10} {:>11.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}  {}",
            r.name,
            r.count,
            r.rate,
            ms(h.quantile_ns(0.5)),
            ms(h.quantile_ns(0.9)),
            ms(h.quantile_ns(0.99)),
            ms(h.quantile_ns(0.999)),
            ms(h.max_ns()),
            errors_text(&r.errors)
        );
    }
    for note in notes(info, m) {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// Above this share of the cores it may use, the load generator rather than the server may
/// have set the pace.
const CLIENT_CPU_BUSY: f64 = 0.9;

fn notes(info: &RunInfo, m: &Measured<'_>) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(c) = m.client_cpu_cores {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let busy = c >= CLIENT_CPU_BUSY * (info.threads.min(cores) as f64);
        v.push(format!(
            "the load generator used {:.0}% of a core{}",
            c * 100.0,
            if busy {
                " (close to all it may use: it may have been the bottleneck)"
            } else {
                ""
            }
        ));
    }
    if m.interrupted {
        v.push(format!(
            "interrupted; {:.1} s of the planned {:.1} s were measured",
            m.measured.as_secs_f64(),
            info.duration.as_secs_f64()
        ));
    }
    if m.lost_sessions > 0 {
        v.push(format!(
            "{} session(s) lost their connection ({})",
            m.lost_sessions,
            m.lost_reason.unwrap_or("no reason given")
        ));
    }
    if m.abandoned > 0 {
        v.push(format!(
            "{} request(s) were still unanswered {} s after the end and were abandoned",
            m.abandoned,
            super::engine::DRAIN_TIMEOUT.as_secs()
        ));
    }
    if info.populated > 0 {
        v.push(format!(
            "setup created {} znodes in {:.2} s",
            info.populated,
            info.populate_time.as_secs_f64()
        ));
    }
    match &info.cleanup {
        Some(c) if c.failed == 0 => v.push(format!(
            "cleanup deleted {} znodes under {} in {:.2} s",
            c.deleted,
            info.run_path,
            c.time.as_secs_f64()
        )),
        Some(c) => v.push(format!(
            "cleanup deleted {} znodes but {} could not be deleted; {} is left behind",
            c.deleted, c.failed, info.run_path
        )),
        None => v.push(format!("--keep: the znodes stay under {}", info.run_path)),
    }
    v
}

/// A finite JSON number with `places` decimals (JSON has no NaN or infinity).
fn json_num(x: f64, places: usize) -> String {
    if x.is_finite() {
        format!("{x:.places$}")
    } else {
        "null".into()
    }
}

fn json_row(r: &Row) -> String {
    let h = &r.hist;
    let errors: Vec<String> = r
        .errors
        .iter()
        .map(|(c, n)| format!("{}:{n}", json_str(&code_name(*c))))
        .collect();
    format!(
        "{{\"count\":{},\"ops_per_s\":{},\"latency_ms\":{{\"p50\":{},\"p90\":{},\"p99\":{},\
         \"p99_9\":{},\"max\":{},\"mean\":{}}},\"errors\":{{{}}}}}",
        r.count,
        json_num(r.rate, 1),
        json_num(ms(h.quantile_ns(0.5)), 3),
        json_num(ms(h.quantile_ns(0.9)), 3),
        json_num(ms(h.quantile_ns(0.99)), 3),
        json_num(ms(h.quantile_ns(0.999)), 3),
        json_num(ms(h.max_ns()), 3),
        json_num(ms(h.mean_ns()), 3),
        errors.join(",")
    )
}

/// The machine-readable report: one JSON object on one line.
pub fn json(info: &RunInfo, m: &Measured<'_>) -> String {
    let servers: Vec<String> = info.servers.iter().map(|s| json_str(s)).collect();
    let ops: Vec<String> = rows(m)
        .iter()
        .map(|r| format!("{}:{}", json_str(r.name), json_row(r)))
        .collect();
    let total = total(m)
        .map(|r| json_row(&r))
        .unwrap_or_else(|| "null".into());
    let cleanup = match &info.cleanup {
        Some(c) => format!(
            "{{\"deleted\":{},\"failed\":{},\"seconds\":{}}}",
            c.deleted,
            c.failed,
            json_num(c.time.as_secs_f64(), 3)
        ),
        None => "null".into(),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"workload\":{},\"servers\":[{}],\"clients\":{},\"inflight\":{},\"threads\":{},\
         \"duration_s\":{},\"warmup_s\":{},\"measured_s\":{},\"size_bytes\":{},\"keys\":{},\
         \"ratio\":{},\"ops\":{{{}}},\"total\":{},\"populated\":{},\"populate_s\":{},\
         \"cleanup\":{},\"run_path\":{},\"lost_sessions\":{},\"lost_reason\":{},\
         \"abandoned\":{},\"interrupted\":{},\"client_cpu_cores\":{}}}",
        json_str(info.workload),
        servers.join(","),
        info.clients,
        info.inflight,
        info.threads,
        json_num(info.duration.as_secs_f64(), 3),
        json_num(info.warmup.as_secs_f64(), 3),
        json_num(m.measured.as_secs_f64(), 3),
        info.size,
        info.keys,
        info.ratio
            .map(|r| json_num(r, 3))
            .unwrap_or_else(|| "null".into()),
        ops.join(","),
        total,
        info.populated,
        json_num(info.populate_time.as_secs_f64(), 3),
        cleanup,
        json_str(&info.run_path),
        m.lost_sessions,
        m.lost_reason.map(json_str).unwrap_or_else(|| "null".into()),
        m.abandoned,
        m.interrupted,
        m.client_cpu_cores
            .map(|c| json_num(c, 3))
            .unwrap_or_else(|| "null".into())
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RunInfo {
        RunInfo {
            workload: "mixed",
            servers: vec!["127.0.0.1:2181".into()],
            clients: 2,
            inflight: 4,
            threads: 1,
            duration: Duration::from_secs(2),
            warmup: Duration::from_secs(1),
            size: 100,
            keys: 10,
            ratio: Some(9.0),
            run_path: "/zk-bench/run-\"1\"".into(),
            populated: 10,
            populate_time: Duration::from_millis(20),
            cleanup: Some(CleanupInfo {
                deleted: 12,
                time: Duration::from_millis(5),
                failed: 0,
            }),
        }
    }

    #[test]
    fn table_and_json_carry_the_numbers() {
        let mut st = Stats::new();
        for i in 1..=1000u64 {
            st.ok(Op::Get, i * 1000);
        }
        st.ok(Op::Set, 2_000_000);
        st.error(Op::Set, -101);
        let m = Measured {
            stats: &st,
            measured: Duration::from_secs(2),
            client_cpu_cores: Some(0.5),
            abandoned: 0,
            lost_sessions: 0,
            lost_reason: None,
            interrupted: false,
        };
        let t = table(&info(), &m);
        assert!(t.contains("get"), "{t}");
        assert!(t.contains("500.0"), "get rate: {t}");
        assert!(t.contains("NoNode=1"), "{t}");
        assert!(t.contains("total"), "{t}");
        let j = json(&info(), &m);
        assert!(j.starts_with('{') && j.ends_with('}'), "{j}");
        assert!(
            j.contains("\"get\":{\"count\":1000,\"ops_per_s\":500.0"),
            "{j}"
        );
        assert!(j.contains("\"errors\":{\"NoNode\":1}"), "{j}");
        assert!(
            j.contains("\"run_path\":\"/zk-bench/run-\\\"1\\\"\""),
            "{j}"
        );
        assert!(j.contains("\"p50\":0.5"), "{j}");
        assert!(j.contains("\"client_cpu_cores\":0.500}"), "{j}");
        assert!(
            t.contains("note: the load generator used 50% of a core"),
            "{t}"
        );
    }

    #[test]
    fn json_strings_escape_controls() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
        assert_eq!(json_num(f64::NAN, 1), "null");
    }
}
