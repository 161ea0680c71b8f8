//! Four-letter words (ruok, srvr, stat, mntr, conf, cons, crst, envi, wchs, wchc, wchp,
//! dump, isro, srst, dirs, gtmk) with the output shapes of Apache's server.command classes,
//! and the whitelist (4lw.commands.whitelist, default srvr only). The network loop supplies
//! what only it can measure (directory sizes, file descriptors) in `Env`.

use super::{Conn, Server};
use std::fmt::Write;

/// Facts from outside the pure server.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub now_wall_ms: i64,
    pub data_dir_size: u64,
    pub log_dir_size: u64,
    pub data_dir: String,
    pub log_dir: String,
    pub open_fds: u64,
    pub max_fds: u64,
    pub host_name: String,
    pub client_port: u16,
    /// Txn log syncs done, syncs slower than fsync.warningthresholdms, and their times.
    pub fsync_count: u64,
    pub fsync_threshold_exceed_count: u64,
    pub fsync_last_ms: u64,
    pub fsync_max_ms: u64,
    pub snapshots_taken: u64,
    /// Writes refused because the log could not take them (e.g. disk full).
    pub log_append_failures: u64,
    /// On an ensemble leader: learners connected, voters among them in broadcast, and
    /// learners still synchronizing (mntr's zk_followers, zk_synced_followers,
    /// zk_pending_syncs).
    pub learners: Option<(usize, usize, usize)>,
}

pub const WORDS: &[&str] = &[
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "envi", "wchs", "wchc", "wchp", "dump",
    "isro", "srst", "dirs", "gtmk",
];

/// Apache's default trace mask, which `gtmk` reports (zk has no trace mask to set).
pub const TRACE_MASK_DEFAULT: u64 = 306;

/// `envi`: Apache's keys in Apache's order. zk is not a JVM, so the java.* keys describe
/// this process instead (an empty class path, the binary's own path as java.home); tools
/// that parse the output find every key they expect.
fn envi_text(s: &mut String, env: &Env) {
    let (user, home) = current_user();
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let os_version = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    let mem_kb = |key: &str, file: &str| -> u64 {
        std::fs::read_to_string(file)
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with(key))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
            })
            .unwrap_or(0)
    };
    let rss_mb = mem_kb("VmRSS:", "/proc/self/status") / 1024;
    let total_mb = mem_kb("MemTotal:", "/proc/meminfo") / 1024;
    let free_mb = mem_kb("MemAvailable:", "/proc/meminfo") / 1024;
    let tmp = std::env::temp_dir().display().to_string();
    s.push_str("Environment:\n");
    for (k, v) in [
        ("zookeeper.version", crate::VERSION_STRING.to_owned()),
        ("host.name", env.host_name.clone()),
        ("java.version", "none (zk is a native binary)".to_owned()),
        ("java.vendor", "none".to_owned()),
        ("java.home", exe),
        ("java.class.path", String::new()),
        ("java.library.path", String::new()),
        ("java.io.tmpdir", tmp),
        ("java.compiler", "<NA>".to_owned()),
        ("os.name", "Linux".to_owned()),
        ("os.arch", std::env::consts::ARCH.to_owned()),
        ("os.version", os_version),
        ("user.name", user),
        ("user.home", home),
        ("user.dir", cwd),
        ("os.memory.free", format!("{free_mb}MB")),
        ("os.memory.max", format!("{total_mb}MB")),
        ("os.memory.total", format!("{rss_mb}MB")),
    ] {
        let _ = writeln!(s, "{k}={v}");
    }
}

/// The process owner's name and home directory, from /etc/passwd as Java's user.name is
/// (the environment may not carry USER, e.g. under systemd).
fn current_user() -> (String, String) {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        });
    if let (Some(uid), Ok(passwd)) = (uid, std::fs::read_to_string("/etc/passwd")) {
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 6 && f[2] == uid {
                return (f[0].to_owned(), f[5].to_owned());
            }
        }
    }
    (
        std::env::var("USER").unwrap_or_default(),
        std::env::var("HOME").unwrap_or_default(),
    )
}

/// The command a connection's first four bytes name, if they name one.
pub fn word_of(first4: &[u8]) -> Option<&'static str> {
    WORDS.iter().copied().find(|w| w.as_bytes() == first4)
}

/// Java's Double.toString for the small non-negative values latency averages take.
pub fn java_double(v: f64) -> String {
    let r = (v * 10000.0).round() / 10000.0;
    if r.fract() == 0.0 {
        format!("{r:.1}")
    } else {
        let s = format!("{r:.4}");
        s.trim_end_matches('0').to_owned()
    }
}

/// java.util.Date.toString() in UTC: `Thu Mar 07 11:19:07 UTC 2019`.
pub fn java_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{wd} {mon} {d:02} {:02}:{:02}:{:02} UTC {y}",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn avg(total: u64, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        total as f64 / count as f64
    }
}

impl Server {
    /// Runs a four-letter word and returns its whole output.
    pub fn four_letter(&mut self, word: &str, env: &Env) -> String {
        if !self.cfg.four_letter_word_allowed(word) {
            return format!("{word} is not executed because it is not in the whitelist.\n");
        }
        let mut s = String::new();
        if !self.serving && !matches!(word, "ruok" | "envi" | "gtmk") {
            // As ZooKeeper answers while it elects or synchronizes.
            if word == "isro" {
                return "null".to_owned();
            }
            return "This ZooKeeper instance is not currently serving requests\n".to_owned();
        }
        match word {
            "ruok" => s.push_str("imok"),
            "isro" => s.push_str("rw"),
            "gtmk" => s.push_str(&TRACE_MASK_DEFAULT.to_string()),
            "srvr" => self.stat_text(&mut s, false),
            "stat" => self.stat_text(&mut s, true),
            "cons" => {
                for c in self.sorted_conns() {
                    dump_conn(&mut s, c, false);
                    s.push('\n');
                }
                s.push('\n');
            }
            "crst" => {
                for c in self.conns.values_mut() {
                    c.stats = super::ConnStats::default();
                }
                s.push_str("Connection stats reset.\n");
            }
            "srst" => {
                self.stats = super::ServerStats::default();
                s.push_str("Server stats reset.\n");
            }
            "conf" => self.conf_text(&mut s, env),
            "envi" => envi_text(&mut s, env),
            "dirs" => {
                let _ = writeln!(s, "datadir_size: {}", env.data_dir_size);
                let _ = writeln!(s, "logdir_size: {}", env.log_dir_size);
            }
            "wchs" => {
                let _ = writeln!(
                    s,
                    "{} connections watching {} paths",
                    self.data_watches.conn_count(),
                    self.data_watches.path_count()
                );
                let _ = writeln!(s, "Total watches:{}", self.data_watches.count());
            }
            "wchc" => {
                let mut by_session: Vec<(i64, Vec<&String>)> = self
                    .data_watches
                    .by_conn()
                    .iter()
                    .map(|(c, paths)| {
                        let sid = self.conns.get(c).map_or(0, |c| c.session_id);
                        (sid, paths.iter().collect())
                    })
                    .collect();
                by_session.sort();
                for (sid, paths) in by_session {
                    let _ = writeln!(s, "0x{sid:x}");
                    for p in paths {
                        let _ = writeln!(s, "\t{p}");
                    }
                }
                s.push('\n');
            }
            "wchp" => {
                let mut paths: Vec<(&String, Vec<i64>)> = self
                    .data_watches
                    .by_path()
                    .iter()
                    .map(|(p, w)| {
                        let mut sids: Vec<i64> = w
                            .keys()
                            .map(|c| self.conns.get(c).map_or(0, |c| c.session_id))
                            .collect();
                        sids.sort();
                        (p, sids)
                    })
                    .collect();
                paths.sort();
                for (p, sids) in paths {
                    let _ = writeln!(s, "{p}");
                    for sid in sids {
                        let _ = writeln!(s, "\t0x{sid:x}");
                    }
                }
                s.push('\n');
            }
            "dump" => self.dump_text(&mut s, env),
            "mntr" => self.mntr_text(&mut s, env),

            _ => {}
        }
        s
    }

    fn sorted_conns(&self) -> Vec<&Conn> {
        let mut v: Vec<&Conn> = self.conns.values().collect();
        v.sort_by_key(|c| c.id);
        v
    }

    fn mode(&self) -> &'static str {
        self.role.map_or("standalone", |r| r.mode())
    }

    fn stat_text(&self, s: &mut String, clients: bool) {
        let _ = writeln!(s, "Zookeeper version: {}", crate::VERSION_STRING);
        if clients {
            s.push_str("Clients:\n");
            for c in self.sorted_conns() {
                dump_conn(s, c, true);
                s.push('\n');
            }
            s.push('\n');
        }
        let st = &self.stats;
        let _ = writeln!(
            s,
            "Latency min/avg/max: {}/{}/{}",
            st.latency_min_ms,
            java_double(avg(st.latency_total_ms, st.latency_count)),
            st.latency_max_ms
        );
        let _ = writeln!(s, "Received: {}", st.packets_received);
        let _ = writeln!(s, "Sent: {}", st.packets_sent);
        let _ = writeln!(s, "Connections: {}", self.conns.len());
        let _ = writeln!(s, "Outstanding: 0");
        let _ = writeln!(s, "Zxid: 0x{:x}", self.last_zxid);
        let _ = writeln!(s, "Mode: {}", self.mode());
        let _ = writeln!(s, "Node count: {}", self.tree.node_count());
    }

    fn conf_text(&self, s: &mut String, env: &Env) {
        let c = &self.cfg;
        let _ = writeln!(s, "clientPort={}", env.client_port);
        let _ = writeln!(s, "secureClientPort=-1");
        let _ = writeln!(s, "dataDir={}", env.data_dir);
        let _ = writeln!(s, "dataDirSize={}", env.data_dir_size);
        let _ = writeln!(s, "dataLogDir={}", env.log_dir);
        let _ = writeln!(s, "dataLogSize={}", env.log_dir_size);
        let _ = writeln!(s, "tickTime={}", c.tick_time_ms);
        let _ = writeln!(s, "maxClientCnxns={}", c.max_client_cnxns);
        let _ = writeln!(s, "minSessionTimeout={}", c.session_timeout_ms_min);
        let _ = writeln!(s, "maxSessionTimeout={}", c.session_timeout_ms_max);
        let _ = writeln!(s, "clientPortListenBacklog=-1");
        let _ = writeln!(s, "serverId={}", self.server_id);
    }

    fn dump_text(&self, s: &mut String, env: &Env) {
        s.push_str("SessionTracker dump:\n");
        let buckets = self.sessions.buckets();
        let _ = writeln!(
            s,
            "Session Sets ({})/({}):",
            buckets.len(),
            self.sessions.len()
        );
        for (at, ids) in buckets {
            // Expiry runs on the monotonic clock; show it as a wall-clock date.
            let wall = env.now_wall_ms + at as i64 - self.mono_now_hint(env);
            let _ = writeln!(s, "{} expire at {}:", ids.len(), java_date(wall));
            for id in ids {
                let _ = writeln!(s, "\t0x{id:x}");
            }
        }
        s.push_str("ephemeral nodes dump:\n");
        let mut eph: Vec<_> = self.tree.sessions_with_ephemerals().collect();
        eph.sort_by_key(|(id, _)| **id);
        let _ = writeln!(s, "Sessions with Ephemerals ({}):", eph.len());
        for (id, paths) in eph {
            let _ = writeln!(s, "0x{id:x}:");
            for p in paths {
                let _ = writeln!(s, "\t{p}");
            }
        }
        s.push_str("Connections dump:\n");
        let _ = writeln!(s, "Connections Sets (1)/({}):", self.conns.len());
        let _ = writeln!(
            s,
            "{} expire at {}:",
            self.conns.len(),
            java_date(env.now_wall_ms)
        );
        for c in self.sorted_conns() {
            let _ = writeln!(s, "\tip: {} sessionId: 0x{:x}", c.addr, c.session_id);
        }
    }

    fn mono_now_hint(&self, _env: &Env) -> i64 {
        self.last_tick_mono as i64
    }

    /// The mntr figures, whatever the whitelist says (for the metrics endpoint).
    pub fn mntr(&self, env: &Env) -> String {
        let mut s = String::new();
        self.mntr_text(&mut s, env);
        s
    }

    fn mntr_text(&self, s: &mut String, env: &Env) {
        let st = &self.stats;
        let mut line = |k: &str, v: String| {
            let _ = writeln!(s, "zk_{k}\t{v}");
        };
        line("version", crate::VERSION_STRING.to_owned());
        line("server_state", self.mode().to_owned());
        line(
            "avg_latency",
            java_double(avg(st.latency_total_ms, st.latency_count)),
        );
        line("max_latency", st.latency_max_ms.to_string());
        line("min_latency", st.latency_min_ms.to_string());
        line("packets_received", st.packets_received.to_string());
        line("packets_sent", st.packets_sent.to_string());
        line("num_alive_connections", self.conns.len().to_string());
        line("outstanding_requests", "0".into());
        line(
            "uptime",
            (env.now_wall_ms - self.started_ms).max(0).to_string(),
        );
        line("znode_count", self.tree.node_count().to_string());
        line(
            "watch_count",
            (self.data_watches.count() + self.child_watches.count()).to_string(),
        );
        line("ephemerals_count", self.tree.ephemeral_count().to_string());
        line(
            "approximate_data_size",
            self.tree.approximate_data_size().to_string(),
        );
        line("global_sessions", self.sessions.len().to_string());
        line("local_sessions", "0".into());
        line("open_file_descriptor_count", env.open_fds.to_string());
        line("max_file_descriptor_count", env.max_fds.to_string());
        line("connection_drop_probability", "0.0".into());
        line("outstanding_tls_handshake", "0".into());
        line("auth_failed_count", st.auth_failed.to_string());
        line("connection_rejected", st.connections_rejected.to_string());
        line("sessionless_connections_expired", "0".into());
        line("session_expired_count", st.sessions_expired.to_string());
        line("last_proposal_size", "-1".into());
        line("commit_count", self.last_zxid.to_string());
        line("cnt_fsynctime", env.fsync_count.to_string());
        line("max_fsynctime", env.fsync_max_ms.to_string());
        line("last_fsynctime", env.fsync_last_ms.to_string());
        line(
            "fsync_threshold_exceed_count",
            env.fsync_threshold_exceed_count.to_string(),
        );
        line("snapshot_count", env.snapshots_taken.to_string());
        line(
            "txnlog_append_failures",
            self.stats.log_append_failures.to_string(),
        );
        if let Some((all, synced, syncing)) = env.learners {
            // zk_learners is 3.6+'s name; zk_followers the older one scripts still read.
            line("learners", all.to_string());
            line("followers", all.to_string());
            line("synced_followers", synced.to_string());
            line("pending_syncs", syncing.to_string());
        }
    }
}

/// ServerCnxn.dumpConnectionInfo.
fn dump_conn(s: &mut String, c: &Conn, brief: bool) {
    let st = &c.stats;
    let _ = write!(
        s,
        " /{}[1](queued=0,recved={},sent={}",
        c.addr, st.packets_received, st.packets_sent
    );
    if !brief && c.session_id != 0 {
        let _ = write!(
            s,
            ",sid=0x{:x},lop={},est={},to={}",
            c.session_id,
            if st.last_op.is_empty() {
                "NA"
            } else {
                st.last_op
            },
            c.established_ms,
            c.timeout_ms
        );
        if st.last_cxid >= 0 {
            let _ = write!(s, ",lcxid=0x{:x}", st.last_cxid);
        }
        let _ = write!(
            s,
            ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            st.last_zxid,
            st.last_response_ms,
            st.last_latency_ms,
            st.latency_min_ms,
            avg(st.latency_total_ms, st.latency_count) as u64,
            st.latency_max_ms
        );
    }
    s.push(')');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_formats() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(1.5), "1.5");
        assert_eq!(java_double(1.0 / 3.0), "0.3333");
        assert_eq!(java_date(1551957547000), "Thu Mar 07 11:19:07 UTC 2019");
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
    }
}
