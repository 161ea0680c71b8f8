//! `zk status`: what `zkServer.sh status` prints for one server (the client port line,
//! then the `Mode:` line from `srvr`, or ZooKeeper's "Error contacting service. It is
//! probably not running." and exit 1), and for an ensemble (a config with server.N lines,
//! or several `--server` addresses) one row per server: id, address, mode, last zxid, zxid
//! lag behind the leader, connections, outstanding requests, average and maximum latency,
//! znode and watch counts and uptime. It asks each server with four-letter words only
//! (`srvr`, which every server allows, and `mntr` when the whitelist lets it; without
//! `mntr` the watch count and uptime are left out with a note), never opens a session and
//! never changes anything.

use crate::cmd::cli::format::{json_obj, json_str};
use crate::config::{self, Config};
use crate::net::resolve;
use clap::Args;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

/// The server asked when neither `--config` nor `--server` is given.
pub const SERVER_DEFAULT: &str = "localhost:2181";
/// How long each four-letter word may take unless `--timeout-ms` says otherwise.
pub const TIMEOUT_MS_DEFAULT: u64 = 5000;
/// zkServer.sh's words when `srvr` gets no Mode line.
pub const NOT_RUNNING: &str = "Error contacting service. It is probably not running.";

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// zoo.cfg of the server, or of the ensemble (server.N lines: one row per server).
    #[arg(long, short = 'c', value_name = "FILE", conflicts_with = "server")]
    pub config: Option<PathBuf>,
    /// host:port of the server to ask; several, comma-separated, give one row each.
    #[arg(long, short = 's', value_name = "HOST:PORT[,...]")]
    pub server: Option<String>,
    /// How long each server may take to answer, in milliseconds.
    #[arg(long, default_value_t = TIMEOUT_MS_DEFAULT, value_name = "MS")]
    pub timeout_ms: u64,
    /// For an ensemble, print the rows as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// The largest answer to a four-letter word read (mntr of a busy server is a few KB).
pub const FOUR_LETTER_REPLY_BYTES_MAX: u64 = 16 << 20;

/// Sends a four-letter word and returns the whole answer. `addr` is `host:port`; the host is
/// resolved through /etc/hosts first (see `net::resolve`), so names such as `node-1` work in
/// the static binary, and each of its addresses is tried in turn.
pub fn four_letter_word(addr: &str, word: &str, timeout: Duration) -> std::io::Result<String> {
    let mut last_error = None;
    for sa in resolve::resolve_host_port(addr)? {
        match TcpStream::connect_timeout(&sa, timeout) {
            Ok(mut s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                s.write_all(word.as_bytes())?;
                let mut out = Vec::new();
                s.take(FOUR_LETTER_REPLY_BYTES_MAX).read_to_end(&mut out)?;
                return Ok(String::from_utf8_lossy(&out).into_owned());
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error
        .unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address")))
}

/// One server to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The server id (from server.N), or the position in `--server`.
    pub id: u64,
    /// `host:port`, as shown and as connected to.
    pub address: String,
}

/// What one server said, parsed from `srvr` and `mntr`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerReport {
    pub mode: Option<String>,
    pub zxid: Option<i64>,
    pub connections: Option<u64>,
    pub outstanding: Option<u64>,
    pub latency_avg: Option<String>,
    pub latency_max: Option<String>,
    pub znodes: Option<u64>,
    pub watches: Option<u64>,
    pub uptime_ms: Option<u64>,
    /// Why a server could not be asked, or why some columns are empty.
    pub notes: Vec<String>,
    pub error: Option<String>,
}

/// Parses `srvr` (ServerStats.toString) into a report.
pub fn parse_srvr(text: &str, r: &mut ServerReport) {
    for line in text.lines() {
        if let Some(m) = line.strip_prefix("Mode: ") {
            r.mode = Some(m.trim().to_owned());
        } else if let Some(z) = line.strip_prefix("Zxid: ") {
            r.zxid = i64::from_str_radix(z.trim().trim_start_matches("0x"), 16).ok();
        } else if let Some(c) = line.strip_prefix("Connections: ") {
            r.connections = c.trim().parse().ok();
        } else if let Some(o) = line.strip_prefix("Outstanding: ") {
            r.outstanding = o.trim().parse().ok();
        } else if let Some(n) = line.strip_prefix("Node count: ") {
            r.znodes = n.trim().parse().ok();
        } else if let Some(l) = line.strip_prefix("Latency min/avg/max: ") {
            let parts: Vec<&str> = l.trim().split('/').collect();
            if parts.len() == 3 {
                r.latency_avg = Some(parts[1].to_owned());
                r.latency_max = Some(parts[2].to_owned());
            }
        }
    }
    if r.mode.is_none() && text.contains("not currently serving requests") {
        r.mode = Some("not serving".to_owned());
    }
}

/// Parses `mntr` (`zk_<key>\t<value>` lines) into a report.
pub fn parse_mntr(text: &str, r: &mut ServerReport) {
    let kv: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('\t')).collect();
    if let Some(v) = kv.get("zk_watch_count") {
        r.watches = v.trim().parse().ok();
    }
    if let Some(v) = kv.get("zk_uptime") {
        r.uptime_ms = v.trim().parse().ok();
    }
    if r.znodes.is_none() {
        r.znodes = kv.get("zk_znode_count").and_then(|v| v.trim().parse().ok());
    }
}

/// Asks one server.
pub fn probe(t: &Target, timeout: Duration) -> ServerReport {
    let mut r = ServerReport::default();
    match four_letter_word(&t.address, "srvr", timeout) {
        Err(e) => {
            r.error = Some(format!("{NOT_RUNNING} ({e})"));
            return r;
        }
        Ok(text) => parse_srvr(&text, &mut r),
    }
    if r.mode.is_none() {
        r.error = Some(NOT_RUNNING.to_owned());
        return r;
    }
    match four_letter_word(&t.address, "mntr", timeout) {
        Ok(text) if text.contains("not in the whitelist") => r.notes.push(
            "mntr is not in 4lw.commands.whitelist: watch count and uptime not shown".to_owned(),
        ),
        Ok(text) => parse_mntr(&text, &mut r),
        Err(e) => r.notes.push(format!("mntr failed: {e}")),
    }
    r
}

/// Uptime as `3d4h`, `5h12m`, `12m3s` or `45s`.
pub fn human_duration(ms: u64) -> String {
    let s = ms / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    }
}

/// The zxid lag of `zxid` behind the leader's: the txn count difference within one epoch,
/// or how many epochs behind.
pub fn lag(zxid: Option<i64>, leader: Option<i64>) -> String {
    match (zxid, leader) {
        (Some(z), Some(l)) => {
            let (ze, le) = (z >> 32, l >> 32);
            if ze == le {
                ((l & 0xffff_ffff) - (z & 0xffff_ffff)).to_string()
            } else {
                format!("{} epoch(s)", le - ze)
            }
        }
        _ => "-".to_owned(),
    }
}

/// The ensemble table: a header and one row per server, columns aligned.
pub fn table(rows: &[(Target, ServerReport)]) -> String {
    let leader = rows
        .iter()
        .find(|(_, r)| r.mode.as_deref() == Some("leader"))
        .and_then(|(_, r)| r.zxid);
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    let mut lines: Vec<Vec<String>> = vec![[
        "ID",
        "ADDRESS",
        "MODE",
        "ZXID",
        "LAG",
        "CONNECTIONS",
        "OUTSTANDING",
        "LATENCY AVG/MAX",
        "ZNODES",
        "WATCHES",
        "UPTIME",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()];
    for (t, r) in rows {
        let up = r.error.is_none();
        lines.push(vec![
            t.id.to_string(),
            t.address.clone(),
            if up {
                dash(r.mode.clone())
            } else {
                "down".to_owned()
            },
            dash(r.zxid.map(|z| format!("0x{z:x}"))),
            if up && leader.is_some() {
                lag(r.zxid, leader)
            } else {
                "-".to_owned()
            },
            dash(r.connections.map(|v| v.to_string())),
            dash(r.outstanding.map(|v| v.to_string())),
            match (&r.latency_avg, &r.latency_max) {
                (Some(a), Some(m)) => format!("{a}/{m}"),
                _ => "-".to_owned(),
            },
            dash(r.znodes.map(|v| v.to_string())),
            dash(r.watches.map(|v| v.to_string())),
            dash(r.uptime_ms.map(human_duration)),
        ]);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .enumerate()
            .map(|(c, v)| format!("{v:<w$}", w = widths[c]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    for (t, r) in rows {
        if let Some(e) = &r.error {
            out.push_str(&format!("server {} ({}): {e}\n", t.id, t.address));
        }
        for n in &r.notes {
            out.push_str(&format!("server {} ({}): {n}\n", t.id, t.address));
        }
    }
    out
}

fn rows_json(rows: &[(Target, ServerReport)]) -> String {
    let leader = rows
        .iter()
        .find(|(_, r)| r.mode.as_deref() == Some("leader"))
        .and_then(|(_, r)| r.zxid);
    let num = |v: Option<u64>| {
        v.map(|v| v.to_string())
            .unwrap_or_else(|| "null".to_owned())
    };
    let s = |v: Option<String>| v.map(|v| json_str(&v)).unwrap_or_else(|| "null".to_owned());
    let items: Vec<String> = rows
        .iter()
        .map(|(t, r)| {
            json_obj(&[
                ("id", t.id.to_string()),
                ("address", json_str(&t.address)),
                (
                    "mode",
                    s(if r.error.is_some() {
                        Some("down".to_owned())
                    } else {
                        r.mode.clone()
                    }),
                ),
                ("zxid", s(r.zxid.map(|z| format!("0x{z:x}")))),
                (
                    "lag",
                    match (r.zxid, leader) {
                        (Some(z), Some(l)) if z >> 32 == l >> 32 => {
                            ((l & 0xffff_ffff) - (z & 0xffff_ffff)).to_string()
                        }
                        _ => "null".to_owned(),
                    },
                ),
                ("connections", num(r.connections)),
                ("outstanding", num(r.outstanding)),
                (
                    "latencyAvg",
                    r.latency_avg.clone().unwrap_or_else(|| "null".to_owned()),
                ),
                (
                    "latencyMax",
                    r.latency_max.clone().unwrap_or_else(|| "null".to_owned()),
                ),
                ("znodes", num(r.znodes)),
                ("watches", num(r.watches)),
                ("uptimeMs", num(r.uptime_ms)),
                ("error", s(r.error.clone())),
                (
                    "notes",
                    format!(
                        "[{}]",
                        r.notes
                            .iter()
                            .map(|n| json_str(n))
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                ),
            ])
        })
        .collect();
    format!("[{}]\n", items.join(","))
}

/// Where a server line's client port listens, as a host to connect to.
fn client_address(cfg: &Config, s: &config::ServerEntry) -> Option<String> {
    let (host, port) = match &s.client_addr {
        Some((h, p)) => (h.clone(), *p),
        None => (s.host.clone(), cfg.client_port?),
    };
    // A wildcard listens everywhere; the server's own host is where to reach it.
    let host = if host == "0.0.0.0" || host == "::" {
        s.host.clone()
    } else {
        host
    };
    Some(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// What to ask: one server (zkServer.sh's output) or several (the table). The first
/// element is zkServer.sh's `Client port found` line for a single server.
enum Plan {
    Single { host: String, port: String },
    Ensemble(Vec<Target>),
}

fn plan(a: &StatusArgs) -> Result<Plan, String> {
    if let Some(path) = &a.config {
        let cfg = config::load(path).map_err(|e| e.to_string())?;
        if cfg.servers.len() > 1 {
            let mut targets = Vec::new();
            for s in &cfg.servers {
                let address = client_address(&cfg, s).ok_or_else(|| {
                    format!(
                        "server.{}: no client port (neither `;port` on the line nor clientPort)",
                        s.sid
                    )
                })?;
                targets.push(Target { id: s.sid, address });
            }
            return Ok(Plan::Ensemble(targets));
        }
        // zkServer.sh: clientPortAddress (else localhost) and clientPort, else the
        // client address of server.<myid>.
        let host = cfg
            .client_port_address
            .map(|a| a.to_string())
            .unwrap_or_else(|| "localhost".to_owned());
        if let Some(port) = cfg.client_port {
            return Ok(Plan::Single {
                host,
                port: port.to_string(),
            });
        }
        let myid = config::read_myid(&cfg.data_dir).map_err(|_| {
            "myid could not be determined, will not able to locate clientPort in the server \
             configs."
                .to_owned()
        })?;
        let s = cfg
            .server(myid)
            .ok_or_else(|| "Client port not found in the server configs".to_owned())?;
        let addr = client_address(&cfg, s)
            .ok_or_else(|| "Client port not found in the server configs".to_owned())?;
        let (h, p) = addr.rsplit_once(':').unwrap_or((&addr, "2181"));
        return Ok(Plan::Single {
            host: h.trim_start_matches('[').trim_end_matches(']').to_owned(),
            port: p.to_owned(),
        });
    }
    let servers = a
        .server
        .clone()
        .unwrap_or_else(|| SERVER_DEFAULT.to_owned());
    let list: Vec<&str> = servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if list.len() > 1 {
        return Ok(Plan::Ensemble(
            list.iter()
                .enumerate()
                .map(|(i, s)| Target {
                    id: i as u64 + 1,
                    address: with_port(s),
                })
                .collect(),
        ));
    }
    let one = with_port(list.first().copied().unwrap_or(SERVER_DEFAULT));
    let (host, port) = one.rsplit_once(':').unwrap_or((&one, "2181"));
    Ok(Plan::Single {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port: port.to_owned(),
    })
}

/// `host` or `host:port`, with ZooKeeper's default port when none is given.
fn with_port(s: &str) -> String {
    let has_port = if let Some(rest) = s.strip_prefix('[') {
        rest.contains("]:")
    } else {
        s.contains(':')
    };
    if has_port {
        s.to_owned()
    } else {
        format!("{s}:2181")
    }
}

pub fn run(a: StatusArgs) -> Result<i32, Box<dyn std::error::Error>> {
    let timeout = Duration::from_millis(a.timeout_ms.max(1));
    // The config parser's warnings about the quorum are for the server's log, not for a
    // status query.
    let level = log::max_level();
    log::set_max_level(log::LevelFilter::Error);
    let plan = plan(&a);
    log::set_max_level(level);
    let plan = plan.map_err(|e| -> Box<dyn std::error::Error> { e.into() })?;
    match plan {
        Plan::Single { host, port } => {
            println!("Client port found: {port}. Client address: {host}. Client SSL: false.");
            let address = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            let mut r = ServerReport::default();
            match four_letter_word(&address, "srvr", timeout) {
                Ok(text) => parse_srvr(&text, &mut r),
                // zkServer.sh's wording on stdout; --log-level debug shows the cause.
                Err(e) => log::debug!("{address}: {e}"),
            }
            match r.mode.filter(|m| m != "not serving") {
                Some(m) => {
                    println!("Mode: {m}");
                    Ok(0)
                }
                None => {
                    println!("{NOT_RUNNING}");
                    Ok(1)
                }
            }
        }
        Plan::Ensemble(targets) => {
            // Ask every server at once, so a dead one costs one timeout, not one each.
            let handles: Vec<_> = targets
                .iter()
                .cloned()
                .map(|t| std::thread::spawn(move || probe(&t, timeout)))
                .collect();
            let rows: Vec<(Target, ServerReport)> = targets
                .into_iter()
                .zip(handles)
                .map(|(t, h)| {
                    let r = h.join().unwrap_or_else(|_| ServerReport {
                        error: Some("probe failed".to_owned()),
                        ..Default::default()
                    });
                    (t, r)
                })
                .collect();
            if a.json {
                print!("{}", rows_json(&rows));
            } else {
                print!("{}", table(&rows));
            }
            let down = rows.iter().filter(|(_, r)| r.error.is_some()).count();
            if down == rows.len() {
                println!("{NOT_RUNNING}");
            }
            Ok(if down == 0 { 0 } else { 1 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRVR: &str = "Zookeeper version: 3.9.4-zk-0.1.0, built on 2026-11-24 00:00 UTC\n\
                        Latency min/avg/max: 0/0.1234/7\nReceived: 10\nSent: 9\nConnections: 2\n\
                        Outstanding: 0\nZxid: 0x100000005\nMode: follower\nNode count: 12\n";

    #[test]
    fn srvr_and_mntr_parse() {
        let mut r = ServerReport::default();
        parse_srvr(SRVR, &mut r);
        assert_eq!(r.mode.as_deref(), Some("follower"));
        assert_eq!(r.zxid, Some(0x1_0000_0005));
        assert_eq!(r.connections, Some(2));
        assert_eq!(r.outstanding, Some(0));
        assert_eq!(r.znodes, Some(12));
        assert_eq!(r.latency_avg.as_deref(), Some("0.1234"));
        assert_eq!(r.latency_max.as_deref(), Some("7"));
        parse_mntr(
            "zk_version\tx\nzk_watch_count\t4\nzk_uptime\t93784000\n",
            &mut r,
        );
        assert_eq!(r.watches, Some(4));
        assert_eq!(r.uptime_ms, Some(93_784_000));
        let mut r = ServerReport::default();
        parse_srvr(
            "This ZooKeeper instance is not currently serving requests\n",
            &mut r,
        );
        assert_eq!(r.mode.as_deref(), Some("not serving"));
    }

    #[test]
    fn lag_and_durations() {
        assert_eq!(lag(Some(0x1_0000_0003), Some(0x1_0000_0005)), "2");
        assert_eq!(lag(Some(0x1_0000_0003), Some(0x2_0000_0001)), "1 epoch(s)");
        assert_eq!(lag(None, Some(1)), "-");
        assert_eq!(human_duration(45_000), "45s");
        assert_eq!(human_duration(723_000), "12m3s");
        assert_eq!(human_duration(18_720_000), "5h12m");
        assert_eq!(human_duration(93_784_000), "1d2h");
    }

    #[test]
    fn table_rows() {
        let mut leader = ServerReport::default();
        parse_srvr(&SRVR.replace("follower", "leader"), &mut leader);
        let mut follower = ServerReport::default();
        parse_srvr(&SRVR.replace("0x100000005", "0x100000003"), &mut follower);
        let down = ServerReport {
            error: Some(NOT_RUNNING.to_owned()),
            ..Default::default()
        };
        let t = |id, a: &str| Target {
            id,
            address: a.to_owned(),
        };
        let out = table(&[
            (t(1, "h1:2181"), leader),
            (t(2, "h2:2181"), follower),
            (t(3, "h3:2181"), down),
        ]);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("ID  ADDRESS  MODE"));
        assert!(lines[1].contains("leader") && lines[1].contains("0x100000005"));
        let cols: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(&cols[..5], ["2", "h2:2181", "follower", "0x100000003", "2"]);
        assert!(lines[3].starts_with("3   h3:2181  down"));
        assert_eq!(
            lines[4],
            "server 3 (h3:2181): Error contacting service. It is probably not running."
        );
        assert_eq!(with_port("h"), "h:2181");
        assert_eq!(with_port("[::1]"), "[::1]:2181");
        assert_eq!(with_port("[::1]:5"), "[::1]:5");
    }
}
