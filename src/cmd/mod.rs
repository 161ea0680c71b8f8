//! Subcommands: one file each, each a thin front-end over the library. `main` parses argv
//! with clap, runs one subcommand and maps its result to an exit code. Errors print once as
//! `zk: error: ...`.

pub mod bench;
pub mod cli;
pub mod json;
pub mod server;
pub mod snapshot;
pub mod status;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "zk",
    version = crate::VERSION_STRING,
    about = "A ZooKeeper-compatible coordination service",
    long_about = "A ZooKeeper-compatible coordination service: stock ZooKeeper clients \
                  (zkCli.sh, Curator, kazoo, the C client) work against it unchanged."
)]
pub struct Cli {
    /// Log level: error, warn, info, debug or trace (RUST_LOG also works).
    #[arg(long, global = true)]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a server (standalone, with its data in ./data and port 2181 when given no config).
    Server(server::ServerArgs),
    /// A ZooKeeper shell compatible with zkCli.sh (`zk cli --help`).
    Cli(cli::CliArgs),
    /// Print a server's mode like `zkServer.sh status`, or one row per server of an ensemble.
    Status(status::StatusArgs),
    /// Inspect, verify and restore snapshots and txn logs of a data directory.
    Snapshot(snapshot::SnapshotArgs),
    /// Drive a server with a workload and report throughput and latency.
    Bench(bench::BenchArgs),
}

/// The server id shown in every log line once it is known (`[myid:1]`); `[myid:]` before,
/// and always in standalone mode, as in ZooKeeper's log4j pattern.
static LOG_MYID: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// Sets the server id the log lines show. Only the first call has an effect: a server's id
/// does not change while it runs.
pub fn set_log_myid(id: u64) {
    let _ = LOG_MYID.set(id);
}

/// Sets up env_logger with ZooKeeper's line layout:
/// `2026-11-24 21:00:00,123 [myid:1] - INFO  [zk::net] - message`, written to stderr (the
/// journal, under systemd). The time is UTC. The filter is `--log-level` when given, else
/// RUST_LOG, else `info`; both take env_logger's syntax (`debug`, `zk::net=trace,info`).
fn init_logging(level: Option<&str>) {
    let mut b = env_logger::Builder::new();
    match (level, std::env::var("RUST_LOG")) {
        (Some(l), _) => b.parse_filters(l),
        (None, Ok(env)) if !env.trim().is_empty() => b.parse_filters(&env),
        _ => b.filter_level(log::LevelFilter::Info),
    };
    b.format(|buf, record| {
        write_log_line(
            buf,
            std::time::SystemTime::now(),
            LOG_MYID.get().copied(),
            record,
        )
    });
    let _ = b.try_init();
}

/// Writes one log line in ZooKeeper's layout (see `init_logging`).
fn write_log_line(
    out: &mut dyn std::io::Write,
    now: std::time::SystemTime,
    myid: Option<u64>,
    record: &log::Record<'_>,
) -> std::io::Result<()> {
    let myid = myid.map(|id| id.to_string()).unwrap_or_default();
    writeln!(
        out,
        "{} [myid:{myid}] - {:<5} [{}] - {}",
        log_timestamp(now),
        record.level(),
        record.target(),
        record.args()
    )
}

/// `yyyy-MM-dd HH:mm:ss,SSS` in UTC, log4j's ISO8601 layout. Computed here (days to civil
/// date, Howard Hinnant's algorithm) because no date crate is a dependency.
fn log_timestamp(t: std::time::SystemTime) -> String {
    let since = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02},{:03}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_logging(cli.log_level.as_deref());
    let result = match cli.command {
        Command::Server(a) => server::run(a),
        Command::Cli(a) => cli::run(a),
        Command::Status(a) => status::run(a),
        Command::Snapshot(a) => snapshot::run(a),
        Command::Bench(a) => bench::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("zk: error: {e}");
            1
        }
    }
}

#[cfg(test)]
mod logging_tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps_are_log4j_iso8601_in_utc() {
        let at = |ms: u64| log_timestamp(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(at(0), "1970-01-01 00:00:00,000");
        assert_eq!(at(951_782_400_007), "2000-02-29 00:00:00,007");
        assert_eq!(at(1_795_554_000_123), "2026-11-24 21:00:00,123");
        assert_eq!(at(4_107_542_399_999), "2100-02-28 23:59:59,999");
    }

    #[test]
    fn lines_look_like_zookeeper_ones() {
        let line = |myid: Option<u64>, level: log::Level| {
            let mut out = Vec::new();
            let args = format_args!("binding to port 0.0.0.0/0.0.0.0:2181");
            let record = log::Record::builder()
                .level(level)
                .target("zk::net")
                .args(args)
                .build();
            let at = UNIX_EPOCH + Duration::from_millis(1_795_554_000_123);
            write_log_line(&mut out, at, myid, &record).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            line(Some(1), log::Level::Info),
            "2026-11-24 21:00:00,123 [myid:1] - INFO  [zk::net] - binding to port \
             0.0.0.0/0.0.0.0:2181\n"
        );
        assert_eq!(
            line(None, log::Level::Warn),
            "2026-11-24 21:00:00,123 [myid:] - WARN  [zk::net] - binding to port \
             0.0.0.0/0.0.0.0:2181\n"
        );
    }
}
