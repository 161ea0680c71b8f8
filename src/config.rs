//! Reads zoo.cfg and command-line overrides into a validated `Config`; this is Apache's
//! `QuorumPeerConfig.parseProperties` plus the system properties that zoo.cfg feeds.
//!
//! The file is read with Java `Properties` syntax (comments, `key=value`, `key:value`,
//! `key value`, backslash continuations, `\uXXXX` escapes) and its keys and defaults follow
//! PROTOCOL.md §16. A bad value is an error that names the file, the line and the key; it is
//! never replaced by a silent default. The only values this module adjusts are the ones
//! Apache adjusts too (`autopurge.snapRetainCount` below 3, `snapCount` below 2), and it logs
//! a warning when it does. Keys this server does not interpret are kept in `unknown_keys`,
//! as Apache passes them on as `zookeeper.<key>` system properties.
//!
//! This module never opens sockets, never creates directories and never resolves host
//! names: it checks syntax and ranges, and the caller acts on the result. Its only I/O is
//! reading the config file (`load`) and the `myid` file (`read_myid`).

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The tickTime a config file gets when it does not set one (Apache's
/// `ZooKeeperServer.DEFAULT_TICK_TIME`). The zero-config default uses 2000, like
/// conf/zoo_sample.cfg.
pub const TICK_TIME_MS_FILE_DEFAULT: u32 = 3000;
/// Apache's purge tool refuses to keep fewer snapshots than this, so smaller values are raised.
pub const SNAP_RETAIN_COUNT_MIN: u32 = 3;
/// `snapCount` below this is raised to it, as `ZooKeeperServer` does.
pub const SNAP_COUNT_MIN: u64 = 2;
/// With extended types the top byte 0xff of an ephemeral owner marks a TTL node, so the
/// server id that fills that byte in session ids must stay below it.
pub const SID_MAX_EXTENDED_TYPES: u64 = 254;
/// The port Apache's PrometheusMetricsProvider listens on when only the class is named.
pub const METRICS_HTTP_PORT_DEFAULT: u16 = 7000;
/// The largest value of a key Apache parses as a Java `int`.
const JAVA_INT_MAX: i64 = i32::MAX as i64;
/// The smallest value of a key Apache parses as a Java `int`.
const JAVA_INT_MIN: i64 = i32::MIN as i64;
/// The grammar of a `server.N` value, quoted in errors.
const SERVER_GRAMMAR: &str =
    "host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]";
/// The four-letter words this server knows; other whitelist entries are probably typos.
const FOUR_LETTER_WORDS_KNOWN: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "hash", "isro", "mntr", "ruok", "srst",
    "srvr", "stat", "stmk", "wchc", "wchp", "wchs",
];
/// Apache keys that change behaviour this server does not have; they are kept as unknown
/// keys, but with a warning rather than silently.
const KEYS_UNSUPPORTED: &[&str] = &[
    "secureClientPort",
    "secureClientPortAddress",
    "sslQuorum",
    "portUnification",
    "quorum.auth.enableSasl",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "oraclePath",
];

/// One `server.N=host:quorumPort:electionPort[:role][;[clientHost:]clientPort]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    pub sid: u64,
    /// The host as written, without the brackets of an IPv6 literal; never resolved here.
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub observer: bool,
    /// From the `;[clientHost:]clientPort` suffix; the host is `0.0.0.0` when omitted.
    pub client_addr: Option<(String, u16)>,
}

/// What `peerType` says this server is (Apache's `LearnerType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LearnerType {
    #[default]
    Participant,
    Observer,
}

/// The validated configuration of one server.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub tick_time_ms: u32,
    pub init_limit: Option<u32>,
    pub sync_limit: Option<u32>,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    /// Whether dataLogDir was given; if not, it follows dataDir when an override moves it.
    pub data_log_dir_explicit: bool,
    /// None means no plaintext listener (a file without clientPort, or `clientPort=0`).
    pub client_port: Option<u16>,
    pub client_port_address: Option<IpAddr>,
    /// Per client IP; 0 = no limit.
    pub max_client_cnxns: u32,
    /// Total; 0 = no limit.
    pub max_cnxns: u32,
    pub session_timeout_ms_min: u32,
    pub session_timeout_ms_max: u32,
    /// Whether minSessionTimeout was given; if not, it is re-derived when tickTime changes.
    pub session_timeout_ms_min_explicit: bool,
    /// Whether maxSessionTimeout was given; if not, it is re-derived when tickTime changes.
    pub session_timeout_ms_max_explicit: bool,
    /// Lower-cased four-letter words allowed; `["*"]` allows all. `srvr` is always in the
    /// list, as in Apache, because `zkServer.sh status` depends on it.
    pub four_letter_words: Vec<String>,
    /// The largest frame and the largest buffer inside a record.
    pub jute_maxbuffer: usize,
    pub extended_types_enabled: bool,
    /// `user:base64(sha1(user:password))`, as zookeeper.DigestAuthenticationProvider.superDigest.
    pub super_digest: Option<String>,
    pub skip_acl: bool,
    pub enforce_quota: bool,
    pub reconfig_enabled: bool,
    pub standalone_enabled: bool,
    pub global_outstanding_limit: u32,
    pub snap_count: u64,
    /// Recent txns a leader keeps to bring a learner up to date with a DIFF; a learner
    /// further behind gets a snapshot (commitLogCount, Apache's zookeeper.commitLogCount).
    pub commit_log_count: u64,
    /// 0 = no preallocation, as in Apache.
    pub pre_alloc_size_kb: u64,
    pub autopurge_snap_retain_count: u32,
    /// 0 = no automatic purge.
    pub autopurge_purge_interval_hours: u32,
    pub force_sync: bool,
    /// A txn log sync slower than this logs a warning and counts in mntr.
    pub fsync_warning_threshold_ms: u64,
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: u32,
    pub container_max_never_used_interval_ms: u64,
    /// The Prometheus endpoint's port; None = no endpoint.
    pub metrics_http_port: Option<u16>,
    pub peer_type: LearnerType,
    /// Whether an observer writes a txn log (Apache's syncEnabled).
    pub sync_enabled: bool,
    pub servers: Vec<ServerEntry>,
    /// Keys the file set that this server does not interpret (kept for `conf`), in file order.
    pub unknown_keys: Vec<(String, String)>,
    /// The file this came from, if any.
    pub source: Option<PathBuf>,
}

impl Default for Config {
    /// The zero-config default: standalone on port 2181 with data in ./data.
    fn default() -> Self {
        let tick = 2000;
        Config {
            tick_time_ms: tick,
            init_limit: None,
            sync_limit: None,
            data_dir: PathBuf::from("data"),
            data_log_dir: PathBuf::from("data"),
            data_log_dir_explicit: false,
            client_port: Some(2181),
            client_port_address: None,
            max_client_cnxns: 60,
            max_cnxns: 0,
            session_timeout_ms_min: 2 * tick,
            session_timeout_ms_max: 20 * tick,
            session_timeout_ms_min_explicit: false,
            session_timeout_ms_max_explicit: false,
            four_letter_words: vec!["srvr".to_owned()],
            jute_maxbuffer: 0xfffff,
            extended_types_enabled: false,
            super_digest: None,
            skip_acl: false,
            enforce_quota: false,
            reconfig_enabled: false,
            standalone_enabled: true,
            global_outstanding_limit: 1000,
            snap_count: 100_000,
            commit_log_count: 10_000,
            pre_alloc_size_kb: 65536,
            autopurge_snap_retain_count: 3,
            autopurge_purge_interval_hours: 1,
            force_sync: true,
            fsync_warning_threshold_ms: 1000,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            container_max_never_used_interval_ms: 0,
            metrics_http_port: None,
            peer_type: LearnerType::Participant,
            sync_enabled: true,
            servers: Vec::new(),
            unknown_keys: Vec::new(),
            source: None,
        }
    }
}

impl Config {
    /// Whether a four-letter word may run.
    pub fn four_letter_word_allowed(&self, word: &str) -> bool {
        self.four_letter_words.iter().any(|w| w == "*" || w == word)
    }

    /// Whether this server runs as part of a quorum rather than standalone (Apache's
    /// `isDistributed`): there is a server list, and either standaloneEnabled is false or the
    /// list has more than one voting member.
    pub fn is_distributed(&self) -> bool {
        !self.servers.is_empty() && (!self.standalone_enabled || self.voting_members().count() > 1)
    }

    /// The `server.N` entries that vote (participants, not observers).
    pub fn voting_members(&self) -> impl Iterator<Item = &ServerEntry> {
        self.servers.iter().filter(|s| !s.observer)
    }

    /// The `server.N` entry with this sid, if any.
    pub fn server(&self, sid: u64) -> Option<&ServerEntry> {
        self.servers.iter().find(|s| s.sid == sid)
    }

    /// Applies command-line overrides on top of the file (or of the zero-config default).
    /// Session timeouts the file did not set are re-derived from the final tickTime, and the
    /// whole configuration is validated again. On error `self` is left unchanged.
    pub fn apply(&mut self, o: &Overrides) -> Result<(), ConfigError> {
        let mut c = self.clone();
        if let Some(port) = o.client_port {
            c.client_port = Some(port);
        }
        if let Some(addr) = o.client_port_address {
            c.client_port_address = Some(addr);
        }
        if let Some(dir) = &o.data_dir {
            c.data_dir = dir.clone();
            if !c.data_log_dir_explicit {
                c.data_log_dir = dir.clone();
            }
        }
        if let Some(dir) = &o.data_log_dir {
            c.data_log_dir = dir.clone();
            c.data_log_dir_explicit = true;
        }
        if let Some(tick) = o.tick_time_ms {
            if tick == 0 || i64::from(tick) > JAVA_INT_MAX {
                return Err(ConfigError::whole(
                    None,
                    "tickTime",
                    format!(
                        "tickTime {tick} from the command line must be from 1 to {JAVA_INT_MAX}"
                    ),
                ));
            }
            c.tick_time_ms = tick;
        }
        if let Some(n) = o.max_client_cnxns {
            c.max_client_cnxns = n;
        }
        if let Some(words) = &o.four_letter_words {
            // Each flag value may itself be a comma-separated list, as in the file.
            c.four_letter_words =
                normalize_four_letter_words(words.iter().flat_map(|w| w.split(',')));
        }
        if let Some(enabled) = o.extended_types_enabled {
            c.extended_types_enabled = enabled;
        }
        if let Some(digest) = &o.super_digest {
            check_super_digest(digest).map_err(|m| {
                ConfigError::whole(
                    None,
                    "superDigest",
                    format!("superDigest from the command line: {m}"),
                )
            })?;
            c.super_digest = Some(digest.clone());
        }
        if let Some(port) = o.metrics_http_port {
            c.metrics_http_port = Some(port);
        }
        c.derive_session_timeouts();
        c.validate()?;
        *self = c;
        Ok(())
    }

    /// Sets the session timeouts the file did not give from tickTime (2x and 20x, Apache's
    /// defaults), capped so they still fit the i32 of the wire protocol.
    fn derive_session_timeouts(&mut self) {
        let cap = JAVA_INT_MAX as u32;
        if !self.session_timeout_ms_min_explicit {
            self.session_timeout_ms_min = self.tick_time_ms.saturating_mul(2).min(cap);
        }
        if !self.session_timeout_ms_max_explicit {
            self.session_timeout_ms_max = self.tick_time_ms.saturating_mul(20).min(cap);
        }
    }

    /// The checks that involve more than one key; run after parsing and after overrides.
    fn validate(&self) -> Result<(), ConfigError> {
        let path = self.source.as_deref();
        let fail = |key: &str, message: String| Err(ConfigError::whole(path, key, message));
        if self.tick_time_ms == 0 {
            return fail("tickTime", "tickTime must be greater than 0".to_owned());
        }
        if self.session_timeout_ms_min > self.session_timeout_ms_max {
            return fail(
                "minSessionTimeout",
                format!(
                    "minSessionTimeout {} must not be larger than maxSessionTimeout {}",
                    self.session_timeout_ms_min, self.session_timeout_ms_max
                ),
            );
        }
        if self.client_port_address.is_some() && self.client_port.is_none() {
            return fail(
                "clientPortAddress",
                "clientPortAddress is set but clientPort is not set".to_owned(),
            );
        }
        if self.extended_types_enabled {
            if let Some(s) = self.servers.iter().find(|s| s.sid > SID_MAX_EXTENDED_TYPES) {
                return fail(
                    &format!("server.{}", s.sid),
                    format!(
                        "server.{}: server ids must be at most {SID_MAX_EXTENDED_TYPES} when \
                         extendedTypesEnabled is true",
                        s.sid
                    ),
                );
            }
        }
        let voting = self.voting_members().count();
        let observers = self.servers.len() - voting;
        if voting == 0 && !self.standalone_enabled {
            return fail(
                "standaloneEnabled",
                "standaloneEnabled is false but no server.N line names a participant".to_owned(),
            );
        }
        if voting == 0 && observers > 0 {
            return fail(
                "server",
                "server.N: observers without participants is an invalid configuration".to_owned(),
            );
        }
        if voting == 1 && self.standalone_enabled && observers > 0 {
            return fail(
                "server",
                "server.N: observers without a quorum is an invalid configuration \
                 (one participant and standaloneEnabled=true)"
                    .to_owned(),
            );
        }
        if self.is_distributed() {
            for (key, limit) in [
                ("initLimit", self.init_limit),
                ("syncLimit", self.sync_limit),
            ] {
                match limit {
                    None => return fail(key, format!("{key} is not set")),
                    Some(0) => {
                        return fail(key, format!("{key} must be at least 1 in quorum mode"))
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }
}

/// Values from command-line flags, laid over the file by `Config::apply`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Taken as is: unlike `clientPort=0` in a file (no listener), 0 here is passed on, so
    /// the listener can ask the OS for a free port.
    pub client_port: Option<u16>,
    pub client_port_address: Option<IpAddr>,
    pub data_dir: Option<PathBuf>,
    pub data_log_dir: Option<PathBuf>,
    pub tick_time_ms: Option<u32>,
    pub max_client_cnxns: Option<u32>,
    /// Replaces the whitelist; each entry may be a comma-separated list.
    pub four_letter_words: Option<Vec<String>>,
    pub extended_types_enabled: Option<bool>,
    pub super_digest: Option<String>,
    pub metrics_http_port: Option<u16>,
}

/// A configuration error, naming the file, the line and the key where there are ones.
///
/// Displayed as `path:line: key: message` when the error concerns one line, and as
/// `path: message` when it concerns none; such messages name their key themselves
/// (`dataDir is not set`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The zoo.cfg or myid file, when the error came from one.
    pub path: Option<PathBuf>,
    /// The 1-based line where the offending entry starts.
    pub line: Option<u32>,
    /// The key at fault, when there is one.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error that concerns the configuration as a whole rather than one line.
    fn whole(path: Option<&Path>, key: &str, message: String) -> ConfigError {
        ConfigError {
            path: path.map(Path::to_path_buf),
            line: None,
            key: Some(key.to_owned()),
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.line) {
            (Some(path), Some(line)) => write!(f, "{}:{line}: ", path.display())?,
            (Some(path), None) => write!(f, "{}: ", path.display())?,
            (None, Some(line)) => write!(f, "line {line}: ")?,
            (None, None) => {}
        }
        if let (Some(_), Some(key)) = (self.line, &self.key) {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Reads a zoo.cfg file. The file is decoded as UTF-8, or as ISO 8859-1 (what Java's
/// `Properties.load(InputStream)` always uses) when it is not valid UTF-8.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| ConfigError {
        path: Some(path.to_path_buf()),
        line: None,
        key: None,
        message: format!("cannot read the config file: {e}"),
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    };
    parse(&text, Some(path))
}

/// Parses the text of a zoo.cfg file; `source` names it in errors and in `Config::source`.
/// Unlike the zero-config default, a file must set dataDir, gets tickTime 3000 when it
/// sets none, and has no client listener unless it sets clientPort (PROTOCOL.md §16).
pub fn parse(text: &str, source: Option<&Path>) -> Result<Config, ConfigError> {
    let r = Reader { path: source };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let props = read_properties(text, &r.location()).map_err(|(line, message)| ConfigError {
        path: source.map(Path::to_path_buf),
        line: Some(line),
        key: None,
        message,
    })?;

    let mut cfg = Config {
        tick_time_ms: TICK_TIME_MS_FILE_DEFAULT,
        client_port: None,
        source: source.map(Path::to_path_buf),
        ..Config::default()
    };
    let mut data_dir = None;
    let mut data_log_dir = None;
    let mut session_timeout_ms_min = None;
    let mut session_timeout_ms_max = None;
    let mut metrics_prometheus = false;
    let mut metrics_http_port_set = false;
    let mut hierarchical = false;
    // The line of each sid, to report a sid written twice (`server.1` and `server.01`).
    let mut sid_lines: Vec<(u64, u32)> = Vec::new();

    for p in &props {
        let value = p.value.as_str();
        match p.key.as_str() {
            "tickTime" => cfg.tick_time_ms = r.int(p, 1, JAVA_INT_MAX)? as u32,
            "initLimit" => cfg.init_limit = Some(r.int(p, 0, JAVA_INT_MAX)? as u32),
            "syncLimit" => cfg.sync_limit = Some(r.int(p, 0, JAVA_INT_MAX)? as u32),
            "dataDir" => data_dir = Some(r.path(p)?),
            "dataLogDir" => data_log_dir = Some(r.path(p)?),
            // As in Apache, clientPort=0 means no plaintext listener.
            "clientPort" => cfg.client_port = Some(r.port(p)?).filter(|&port| port != 0),
            "clientPortAddress" => cfg.client_port_address = Some(r.ip(p)?),
            "maxClientCnxns" => cfg.max_client_cnxns = r.int(p, 0, JAVA_INT_MAX)? as u32,
            "maxCnxns" => cfg.max_cnxns = r.int(p, 0, JAVA_INT_MAX)? as u32,
            "minSessionTimeout" => session_timeout_ms_min = r.session_timeout(p)?,
            "maxSessionTimeout" => session_timeout_ms_max = r.session_timeout(p)?,
            "4lw.commands.whitelist" => {
                cfg.four_letter_words = normalize_four_letter_words(value.split(','));
            }
            // Apache reads only the plain system property jute.maxbuffer; this server takes
            // it from zoo.cfg too, under either name.
            "jute.maxbuffer" | "zookeeper.jute.maxbuffer" => {
                cfg.jute_maxbuffer = r.int(p, 1, JAVA_INT_MAX)? as usize;
            }
            "extendedTypesEnabled" | "zookeeper.extendedTypesEnabled" => {
                cfg.extended_types_enabled = r.java_bool(p);
            }
            "superDigest"
            | "DigestAuthenticationProvider.superDigest"
            | "zookeeper.DigestAuthenticationProvider.superDigest" => {
                check_super_digest(value).map_err(|m| r.err(p, m))?;
                cfg.super_digest = Some(value.to_owned());
            }
            "skipACL" => cfg.skip_acl = r.yes_no(p)?,
            "enforceQuota" | "zookeeper.enforceQuota" => cfg.enforce_quota = r.java_bool(p),
            "reconfigEnabled" => cfg.reconfig_enabled = r.strict_bool(p)?,
            "standaloneEnabled" => cfg.standalone_enabled = r.strict_bool(p)?,
            "syncEnabled" => cfg.sync_enabled = r.strict_bool(p)?,
            "globalOutstandingLimit" => {
                cfg.global_outstanding_limit = r.int(p, 1, JAVA_INT_MAX)? as u32;
            }
            "commitLogCount" | "zookeeper.commitLogCount" => {
                cfg.commit_log_count = r.int(p, 1, JAVA_INT_MAX)? as u64;
            }
            "snapCount" => {
                let n = r.int(p, JAVA_INT_MIN, JAVA_INT_MAX)?;
                cfg.snap_count = if n < SNAP_COUNT_MIN as i64 {
                    log::warn!(
                        "{}snapCount {n} is less than {SNAP_COUNT_MIN}; using {SNAP_COUNT_MIN}",
                        r.at(p)
                    );
                    SNAP_COUNT_MIN
                } else {
                    n as u64
                };
            }
            "preAllocSize" => cfg.pre_alloc_size_kb = r.int(p, 0, i64::MAX / 1024)? as u64,
            "autopurge.snapRetainCount" => {
                let n = r.int(p, JAVA_INT_MIN, JAVA_INT_MAX)?;
                cfg.autopurge_snap_retain_count = if n < i64::from(SNAP_RETAIN_COUNT_MIN) {
                    log::warn!(
                        "{}autopurge.snapRetainCount {n} is less than {SNAP_RETAIN_COUNT_MIN}; \
                         using {SNAP_RETAIN_COUNT_MIN}",
                        r.at(p)
                    );
                    SNAP_RETAIN_COUNT_MIN
                } else {
                    n as u32
                };
            }
            "autopurge.purgeInterval" => {
                cfg.autopurge_purge_interval_hours = r.int(p, 0, JAVA_INT_MAX)? as u32;
            }
            "forceSync" => cfg.force_sync = r.yes_no(p)?,
            "fsync.warningthresholdms" | "zookeeper.fsync.warningthresholdms" => {
                cfg.fsync_warning_threshold_ms = r.int(p, 0, JAVA_INT_MAX)? as u64;
            }
            "znode.container.checkIntervalMs" => {
                cfg.container_check_interval_ms = r.int(p, 1, JAVA_INT_MAX)? as u64;
            }
            // Apache divides a minute by this value, so 0 is refused rather than meaning
            // "no limit".
            "znode.container.maxPerMinute" => {
                cfg.container_max_per_minute = r.int(p, 1, JAVA_INT_MAX)? as u32;
            }
            "znode.container.maxNeverUsedIntervalMs" => {
                cfg.container_max_never_used_interval_ms = r.int(p, 0, i64::MAX)? as u64;
            }
            // Port 0 turns the endpoint off, as clientPort=0 turns the client listener off.
            "metricsProvider.httpPort" => {
                cfg.metrics_http_port = Some(r.port(p)?).filter(|&port| port != 0);
                metrics_http_port_set = true;
            }
            "metricsProvider.className" => {
                if value.ends_with(".PrometheusMetricsProvider") {
                    metrics_prometheus = true;
                } else if !value.ends_with(".DefaultMetricsProvider") {
                    log::warn!(
                        "{}metricsProvider.className: {value} is not supported; only the \
                         Prometheus endpoint is",
                        r.at(p)
                    );
                }
            }
            "electionAlg" => {
                let n = r.int(p, i64::MIN, i64::MAX)?;
                if n != 3 {
                    return Err(r.err(p, format!("{n} is not supported; only 3 is")));
                }
            }
            "peerType" => {
                cfg.peer_type = match value.to_ascii_lowercase().as_str() {
                    "participant" => LearnerType::Participant,
                    "observer" => LearnerType::Observer,
                    _ => return Err(r.err(p, format!("{value:?} is not participant or observer"))),
                };
            }
            // Without the server.N lines, which live in that other file, a cluster member
            // would quietly start standalone; refusing is safer.
            "dynamicConfigFile" => {
                return Err(r.err(
                    p,
                    "is not supported; put the server.N lines in this file".to_owned(),
                ));
            }
            key if key.starts_with("server.") => {
                let entry = parse_server(&r, p)?;
                if let Some(&(_, line)) = sid_lines.iter().find(|(sid, _)| *sid == entry.sid) {
                    return Err(r.err(
                        p,
                        format!("server id {} is also set on line {line}", entry.sid),
                    ));
                }
                sid_lines.push((entry.sid, p.line));
                cfg.servers.push(entry);
            }
            key if key.starts_with("group.") || key.starts_with("weight.") => {
                hierarchical = true;
                cfg.unknown_keys.push((p.key.clone(), p.value.clone()));
            }
            key if key.starts_with("admin.") => {
                log::debug!(
                    "{}{key} is ignored: this server has no AdminServer",
                    r.at(p)
                );
            }
            key => {
                // A feature switched off explicitly needs no warning.
                if KEYS_UNSUPPORTED.contains(&key) && !value.eq_ignore_ascii_case("false") {
                    log::warn!(
                        "{}{key} is not supported by this server and is ignored",
                        r.at(p)
                    );
                } else {
                    log::debug!(
                        "{}{key} is not used by this server; kept as an unknown key",
                        r.at(p)
                    );
                }
                cfg.unknown_keys.push((p.key.clone(), p.value.clone()));
            }
        }
    }

    cfg.data_dir = data_dir
        .ok_or_else(|| ConfigError::whole(source, "dataDir", "dataDir is not set".to_owned()))?;
    cfg.data_log_dir_explicit = data_log_dir.is_some();
    cfg.data_log_dir = data_log_dir.unwrap_or_else(|| cfg.data_dir.clone());
    cfg.session_timeout_ms_min_explicit = session_timeout_ms_min.is_some();
    cfg.session_timeout_ms_max_explicit = session_timeout_ms_max.is_some();
    cfg.session_timeout_ms_min = session_timeout_ms_min.unwrap_or(0);
    cfg.session_timeout_ms_max = session_timeout_ms_max.unwrap_or(0);
    cfg.derive_session_timeouts();
    if metrics_prometheus && !metrics_http_port_set {
        cfg.metrics_http_port = Some(METRICS_HTTP_PORT_DEFAULT);
    }
    cfg.validate()?;
    warn_about_quorum(&cfg, hierarchical, r.location());
    Ok(cfg)
}

/// Logs what Apache logs about a legal but doubtful server list.
fn warn_about_quorum(cfg: &Config, hierarchical: bool, location: String) {
    let voting = cfg.voting_members().count();
    if voting == 1 && cfg.standalone_enabled {
        // HBase writes a single server line; Apache ignores it and runs standalone.
        log::warn!(
            "{location}only one server.N line; it is ignored and the server runs standalone"
        );
    } else if (1..=2).contains(&voting) {
        log::warn!(
            "{location}no server failure will be tolerated; a quorum needs at least 3 servers"
        );
    } else if voting > 0 && voting % 2 == 0 {
        log::warn!(
            "{location}an even number of voting servers tolerates no more failures than one fewer"
        );
    }
    if hierarchical {
        log::warn!(
            "{location}group.N and weight.N are not supported; quorums are majorities of the \
             server.N participants"
        );
    }
}

/// Reads `dataDir/myid`: the server id in ASCII decimal on the first line. Surrounding
/// whitespace is allowed (Apache would refuse a trailing space).
pub fn read_myid(data_dir: &Path) -> Result<u64, ConfigError> {
    let path = data_dir.join("myid");
    let error = |line: Option<u32>, message: String| ConfigError {
        path: Some(path.clone()),
        line,
        key: None,
        message,
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(error(None, "myid file is missing".to_owned()));
        }
        Err(e) => return Err(error(None, format!("cannot read the myid file: {e}"))),
    };
    let text = String::from_utf8_lossy(&bytes);
    let first = text.split(['\n', '\r']).next().unwrap_or("").trim();
    // Apache parses a Java long, so ids above i64::MAX are refused too.
    match first.parse::<i64>() {
        Ok(sid) if sid >= 0 => Ok(sid as u64),
        Ok(sid) => Err(error(
            Some(1),
            format!("serverid {sid} must not be negative"),
        )),
        Err(_) => {
            let shown = if first.is_empty() { "\"\"" } else { first };
            Err(error(Some(1), format!("serverid {shown} is not a number")))
        }
    }
}

/// Trims, lower-cases and de-duplicates a whitelist; `*` anywhere allows everything.
fn normalize_four_letter_words<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for item in items {
        let word = item.trim().to_ascii_lowercase();
        if word.is_empty() {
            continue;
        }
        if word == "*" {
            return vec!["*".to_owned()];
        }
        if !FOUR_LETTER_WORDS_KNOWN.contains(&word.as_str()) {
            log::warn!(
                "4lw.commands.whitelist: {word} is not a four-letter word this server knows"
            );
        }
        if !words.contains(&word) {
            words.push(word);
        }
    }
    // Apache always allows srvr, whatever the list says, because zkServer.sh status uses it.
    if !words.iter().any(|w| w == "srvr") {
        words.push("srvr".to_owned());
    }
    words
}

/// Checks that a super digest has the shape `user:base64(sha1(user:password))`. The value
/// is not echoed in the error, in case someone wrote a password there.
fn check_super_digest(value: &str) -> Result<(), String> {
    let shaped = match value.split_once(':') {
        Some((user, digest)) => {
            let d = digest.as_bytes();
            !user.is_empty()
                && d.len() == 28
                && d[27] == b'='
                && d[..27]
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        }
        None => false,
    };
    if shaped {
        Ok(())
    } else {
        Err(
            "the value must look like user:base64(sha1(user:password)), with 28 base64 \
             characters after the colon"
                .to_owned(),
        )
    }
}

/// Parses one `server.N` line (Apache's `QuorumServer(long, String)`).
fn parse_server(r: &Reader, p: &Property) -> Result<ServerEntry, ConfigError> {
    let sid_text = &p.key["server.".len()..];
    let sid = match sid_text.parse::<i64>() {
        Ok(sid) if sid >= 0 => sid as u64,
        Ok(sid) => return Err(r.err(p, format!("server id {sid} must not be negative"))),
        Err(_) => return Err(r.err(p, format!("server id {sid_text:?} is not a number"))),
    };
    let bad_form = || {
        r.err(
            p,
            format!("{:?} does not have the form {SERVER_GRAMMAR}", p.value),
        )
    };
    let server_client = java_split(&p.value, ';');
    if server_client.is_empty() || server_client.len() > 2 {
        return Err(bad_form());
    }
    if server_client[0].contains('|') {
        return Err(r.err(
            p,
            "multiple addresses (multiAddress) are not supported".to_owned(),
        ));
    }
    let fields = host_and_port(server_client[0]).map_err(|m| r.err(p, m))?;
    if fields.len() < 3 || fields.len() > 4 {
        return Err(bad_form());
    }
    let host = fields[0].trim();
    if host.is_empty() {
        return Err(r.err(p, "the host is empty".to_owned()));
    }
    let quorum_port = server_port(r, p, "quorum port", fields[1])?;
    let election_port = server_port(r, p, "election port", fields[2])?;
    if quorum_port == election_port {
        return Err(r.err(
            p,
            format!("quorum port {quorum_port} must differ from election port {election_port}"),
        ));
    }
    let observer = match fields.get(3) {
        None => false,
        Some(role) => match role.trim().to_ascii_lowercase().as_str() {
            "participant" => false,
            "observer" => true,
            _ => return Err(r.err(p, format!("{role:?} is not participant or observer"))),
        },
    };
    let client_addr = match server_client.get(1) {
        None => None,
        Some(client) => {
            let parts = host_and_port(client).map_err(|m| r.err(p, m))?;
            if parts.len() > 2 {
                return Err(bad_form());
            }
            let client_host = if parts.len() == 2 {
                parts[0].trim()
            } else {
                "0.0.0.0"
            };
            if client_host.is_empty() {
                return Err(r.err(p, "the client host is empty".to_owned()));
            }
            let port = server_port(r, p, "client port", parts[parts.len() - 1])?;
            Some((client_host.to_owned(), port))
        }
    };
    Ok(ServerEntry {
        sid,
        host: host.to_owned(),
        quorum_port,
        election_port,
        observer,
        client_addr,
    })
}

/// A port in a server.N line, which unlike clientPort cannot be 0.
fn server_port(r: &Reader, p: &Property, what: &str, text: &str) -> Result<u16, ConfigError> {
    match text.trim().parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(r.err(p, format!("{what} {:?} is not a valid port", text.trim()))),
    }
}

/// Splits `host:port[:port...]`, where the host may be a bracketed IPv6 literal (Apache's
/// `ConfigUtils.getHostAndPort`). The brackets are removed.
fn host_and_port(s: &str) -> Result<Vec<&str>, String> {
    let Some(rest) = s.strip_prefix('[') else {
        return Ok(java_split(s, ':'));
    };
    let Some(close) = rest.find(']') else {
        return Err(format!("{s:?} starts with '[' but has no matching ']'"));
    };
    let host = &rest[..close];
    let after = &rest[close + 1..];
    if after.is_empty() {
        return Ok(vec![host]);
    }
    match after.strip_prefix(':') {
        Some("") => Err(format!("{s:?} has no port after the colon")),
        Some(ports) => {
            let mut fields = vec![host];
            fields.extend(java_split(ports, ':'));
            Ok(fields)
        }
        None => Err(format!("{s:?} has no ':' after ']'")),
    }
}

/// Java's `String.split(sep)`: the whole string when the separator does not occur, and
/// otherwise the pieces without trailing empty ones (so `"a:1:2:"` gives three).
fn java_split(s: &str, sep: char) -> Vec<&str> {
    if !s.contains(sep) {
        return vec![s];
    }
    let mut pieces: Vec<&str> = s.split(sep).collect();
    while pieces.last() == Some(&"") {
        pieces.pop();
    }
    pieces
}

/// Interprets values for one file, so errors can name it.
struct Reader<'a> {
    path: Option<&'a Path>,
}

impl Reader<'_> {
    /// An error about one entry: `path:line: key: message`.
    fn err(&self, p: &Property, message: String) -> ConfigError {
        ConfigError {
            path: self.path.map(Path::to_path_buf),
            line: Some(p.line),
            key: Some(p.key.clone()),
            message,
        }
    }

    /// The prefix of a log line about the file as a whole.
    fn location(&self) -> String {
        self.path
            .map(|path| format!("{}: ", path.display()))
            .unwrap_or_default()
    }

    /// The prefix of a log line about one entry.
    fn at(&self, p: &Property) -> String {
        match self.path {
            Some(path) => format!("{}:{}: ", path.display(), p.line),
            None => format!("line {}: ", p.line),
        }
    }

    /// A whole number in `min..=max`, as Java's `Integer.parseInt`/`Long.parseLong` read it.
    fn int(&self, p: &Property, min: i64, max: i64) -> Result<i64, ConfigError> {
        let n: i64 = p
            .value
            .parse()
            .map_err(|_| self.err(p, format!("{:?} is not a number", p.value)))?;
        if n < min {
            return Err(self.err(p, format!("{n} must be at least {min}")));
        }
        if n > max {
            return Err(self.err(p, format!("{n} must be at most {max}")));
        }
        Ok(n)
    }

    /// A port, 0 to 65535.
    fn port(&self, p: &Property) -> Result<u16, ConfigError> {
        p.value
            .parse::<u16>()
            .map_err(|_| self.err(p, format!("{:?} is not a valid port", p.value)))
    }

    /// A session timeout in ms; -1 means "derive it from tickTime", as in Apache.
    fn session_timeout(&self, p: &Property) -> Result<Option<u32>, ConfigError> {
        let n = self.int(p, -1, JAVA_INT_MAX)?;
        Ok((n >= 0).then_some(n as u32))
    }

    /// An IP address, with or without the brackets of an IPv6 literal. Host names are
    /// refused because this module resolves nothing.
    fn ip(&self, p: &Property) -> Result<IpAddr, ConfigError> {
        let v = p.value.as_str();
        let bare = v
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(v);
        bare.parse()
            .map_err(|_| self.err(p, format!("{v:?} is not an IP address")))
    }

    /// A directory; an empty value is an error rather than the current directory.
    fn path(&self, p: &Property) -> Result<PathBuf, ConfigError> {
        if p.value.is_empty() {
            return Err(self.err(p, "the value is empty".to_owned()));
        }
        Ok(PathBuf::from(&p.value))
    }

    /// Java's `Boolean.parseBoolean`: `true` in any case is true, anything else false. Used
    /// for keys Apache reads that way; a value that is neither true nor false is logged.
    fn java_bool(&self, p: &Property) -> bool {
        if p.value.eq_ignore_ascii_case("true") {
            return true;
        }
        if !p.value.eq_ignore_ascii_case("false") {
            log::warn!(
                "{}{}: {:?} is not true or false; read as false, as Java does",
                self.at(p),
                p.key,
                p.value
            );
        }
        false
    }

    /// `true` or `false` in any case, and nothing else (QuorumPeerConfig's `parseBoolean`).
    fn strict_bool(&self, p: &Property) -> Result<bool, ConfigError> {
        if p.value.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if p.value.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err(self.err(p, format!("{:?} is not true or false", p.value)))
        }
    }

    /// `yes` or `no`, for skipACL and forceSync. Apache compares with one of them and reads
    /// anything else as the other (skipACL=true means "no"); that trap is an error here.
    fn yes_no(&self, p: &Property) -> Result<bool, ConfigError> {
        match p.value.as_str() {
            "yes" => Ok(true),
            "no" => Ok(false),
            v => Err(self.err(p, format!("{v:?} is not yes or no"))),
        }
    }
}

/// One key and value from the file, both trimmed, with the line where its entry starts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Property {
    key: String,
    value: String,
    line: u32,
}

/// Reads Java `Properties` text (`Properties.load`): natural lines end with `\n`, `\r` or
/// `\r\n`; leading whitespace is skipped; a line whose first character is `#` or `!` is a
/// comment; an odd number of trailing backslashes joins the next line (its leading
/// whitespace dropped); the key ends at the first unescaped `=`, `:` or whitespace. A key
/// given twice keeps the last value, at the position of its last occurrence. Keys and
/// values are then trimmed as QuorumPeerConfig does. Errors carry the line number.
fn read_properties(text: &str, location: &str) -> Result<Vec<Property>, (u32, String)> {
    let lines = natural_lines(text);
    let mut props: Vec<Property> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = i as u32 + 1;
        let first = lines[i].trim_start_matches(is_java_space);
        i += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = String::new();
        let mut segment = first;
        loop {
            let backslashes = segment.bytes().rev().take_while(|&b| b == b'\\').count();
            if backslashes % 2 == 0 {
                logical.push_str(segment);
                break;
            }
            // The continuation backslash goes; a comment marker on the next line is text.
            logical.push_str(&segment[..segment.len() - 1]);
            if i >= lines.len() {
                break;
            }
            segment = lines[i].trim_start_matches(is_java_space);
            i += 1;
        }
        let (raw_key, raw_value) = split_key_value(&logical);
        let key = java_trim(&unescape(raw_key).map_err(|m| (line, m))?).to_owned();
        let value = java_trim(&unescape(raw_value).map_err(|m| (line, m))?).to_owned();
        if let Some(pos) = props.iter().position(|p| p.key == key) {
            let old = props.remove(pos);
            log::warn!(
                "{location}{key} is set on line {} and again on line {line}; the last one wins",
                old.line
            );
        }
        props.push(Property { key, value, line });
    }
    Ok(props)
}

/// Splits text into natural lines at `\n`, `\r` and `\r\n`.
fn natural_lines(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                i += 1;
                if bytes.get(i) == Some(&b'\n') {
                    i += 1;
                }
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < bytes.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// The whitespace Java `Properties` skips: space, tab and form feed.
fn is_java_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// Java's `String.trim`: drops every character up to U+0020 at both ends.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// Splits a logical line into its raw (still escaped) key and value. All the characters
/// involved are ASCII, so scanning bytes never splits a UTF-8 sequence.
fn split_key_value(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut key_end = bytes.len();
    let mut value_start = bytes.len();
    let mut has_separator = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if !escaped && (b == b'=' || b == b':') {
            key_end = i;
            value_start = i + 1;
            has_separator = true;
            break;
        }
        if !escaped && matches!(b, b' ' | b'\t' | 0x0c) {
            key_end = i;
            value_start = i + 1;
            break;
        }
        escaped = b == b'\\' && !escaped;
    }
    // Whitespace after the key, then at most one separator, then more whitespace.
    while value_start < bytes.len() {
        match bytes[value_start] {
            b' ' | b'\t' | 0x0c => value_start += 1,
            b'=' | b':' if !has_separator => {
                has_separator = true;
                value_start += 1;
            }
            _ => break,
        }
    }
    (&line[..key_end], &line[value_start..])
}

/// Undoes `Properties` escapes: `\t`, `\n`, `\r`, `\f`, `\uXXXX` (UTF-16, so a surrogate
/// pair makes one character), and a backslash before any other character stands for that
/// character.
fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut high_surrogate: Option<u32> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        let c = if c == '\\' {
            match chars.next() {
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    if hex.len() != 4 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err("malformed \\uxxxx escape".to_owned());
                    }
                    let unit = u32::from_str_radix(&hex, 16).expect("four hex digits");
                    match (unit, high_surrogate.take()) {
                        (0xd800..=0xdbff, None) => {
                            high_surrogate = Some(unit);
                            continue;
                        }
                        (0xdc00..=0xdfff, Some(high)) => {
                            let code = 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00);
                            char::from_u32(code).expect("a surrogate pair is a valid character")
                        }
                        (_, Some(_)) | (0xdc00..=0xdfff, None) => {
                            return Err("\\u escape with an unpaired UTF-16 surrogate".to_owned());
                        }
                        (_, None) => char::from_u32(unit).expect("not a surrogate"),
                    }
                }
                Some('t') => '\t',
                Some('n') => '\n',
                Some('r') => '\r',
                Some('f') => '\x0c',
                Some(other) => other,
                None => break,
            }
        } else {
            c
        };
        if high_surrogate.is_some() {
            return Err("\\u escape with an unpaired UTF-16 surrogate".to_owned());
        }
        out.push(c);
    }
    if high_surrogate.is_some() {
        return Err("\\u escape with an unpaired UTF-16 surrogate".to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// Parses text as if it came from `zoo.cfg`, so errors start with `zoo.cfg:`.
    fn cfg(text: &str) -> Result<Config, ConfigError> {
        parse(text, Some(Path::new("zoo.cfg")))
    }

    /// The error message for a config that must fail.
    fn err(text: &str) -> String {
        cfg(text)
            .expect_err("the config should be refused")
            .to_string()
    }

    /// A fresh directory under the system temp dir, unique to this test.
    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("zk-config-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const ZOO_SAMPLE: &str = "\
# The number of milliseconds of each tick
tickTime=2000
# The number of ticks that the initial 
# synchronization phase can take
initLimit=10
# The number of ticks that can pass between 
# sending a request and getting an acknowledgement
syncLimit=5
# the directory where the snapshot is stored.
# do not use /tmp for storage, /tmp here is just 
# example sakes.
dataDir=/tmp/zookeeper
# the port at which the clients will connect
clientPort=2181
# the maximum number of client connections.
# increase this if you need to handle more clients
#maxClientCnxns=60
#
# Be sure to read the maintenance section of the 
# administrator guide before turning on autopurge.
#
# https://zookeeper.apache.org/doc/current/zookeeperAdmin.html#sc_maintenance
#
# The number of snapshots to retain in dataDir
#autopurge.snapRetainCount=3
# Purge task interval in hours
# Set to \"0\" to disable auto purge feature
#autopurge.purgeInterval=1

## Metrics Providers
#
# https://prometheus.io Metrics Exporter
#metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider
#metricsProvider.httpHost=0.0.0.0
#metricsProvider.httpPort=7000
#metricsProvider.exportJvmInfo=true
";

    #[test]
    fn zoo_sample_cfg() {
        let c = cfg(ZOO_SAMPLE).unwrap();
        assert_eq!(c.tick_time_ms, 2000);
        assert_eq!(c.init_limit, Some(10));
        assert_eq!(c.sync_limit, Some(5));
        assert_eq!(c.data_dir, PathBuf::from("/tmp/zookeeper"));
        assert_eq!(c.data_log_dir, PathBuf::from("/tmp/zookeeper"));
        assert!(!c.data_log_dir_explicit);
        assert_eq!(c.client_port, Some(2181));
        assert_eq!(c.client_port_address, None);
        assert_eq!(c.max_client_cnxns, 60);
        assert_eq!(c.session_timeout_ms_min, 4000);
        assert_eq!(c.session_timeout_ms_max, 40000);
        assert_eq!(c.four_letter_words, vec!["srvr"]);
        assert_eq!(c.autopurge_snap_retain_count, 3);
        assert_eq!(c.autopurge_purge_interval_hours, 1);
        assert_eq!(c.metrics_http_port, None);
        assert!(c.servers.is_empty());
        assert!(c.unknown_keys.is_empty());
        assert!(!c.is_distributed());
        assert_eq!(c.source, Some(PathBuf::from("zoo.cfg")));
    }

    #[test]
    fn file_defaults_differ_from_zero_config_defaults() {
        let c = cfg("dataDir=/var/lib/zk\n").unwrap();
        // Apache's code default, not the sample file's 2000.
        assert_eq!(c.tick_time_ms, 3000);
        assert_eq!(c.session_timeout_ms_min, 6000);
        assert_eq!(c.session_timeout_ms_max, 60000);
        assert_eq!(c.client_port, None);
        assert_eq!(c.init_limit, None);
        let d = Config::default();
        let expected = Config {
            tick_time_ms: 3000,
            session_timeout_ms_min: 6000,
            session_timeout_ms_max: 60000,
            client_port: None,
            data_dir: PathBuf::from("/var/lib/zk"),
            data_log_dir: PathBuf::from("/var/lib/zk"),
            source: Some(PathBuf::from("zoo.cfg")),
            ..d
        };
        assert_eq!(c, expected);
    }

    #[test]
    fn every_key() {
        let c = cfg("\
tickTime=100
initLimit=7
syncLimit=3
dataDir=/d
dataLogDir=/l
clientPort=12181
clientPortAddress=127.0.0.1
maxClientCnxns=0
maxCnxns=500
minSessionTimeout=300
maxSessionTimeout=90000
4lw.commands.whitelist= stat , RUOK,,mntr
jute.maxbuffer=4194304
extendedTypesEnabled=TRUE
superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=
skipACL=yes
enforceQuota=true
reconfigEnabled=false
standaloneEnabled=true
globalOutstandingLimit=5000
snapCount=1000
preAllocSize=1024
autopurge.snapRetainCount=5
autopurge.purgeInterval=0
forceSync=no
znode.container.checkIntervalMs=1000
znode.container.maxPerMinute=100
znode.container.maxNeverUsedIntervalMs=3600000
metricsProvider.httpPort=7001
electionAlg=3
peerType=Observer
syncEnabled=false
admin.enableServer=false
admin.serverPort=8080
")
        .unwrap();
        assert_eq!(c.tick_time_ms, 100);
        assert_eq!(c.init_limit, Some(7));
        assert_eq!(c.sync_limit, Some(3));
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        assert_eq!(c.data_log_dir, PathBuf::from("/l"));
        assert!(c.data_log_dir_explicit);
        assert_eq!(c.client_port, Some(12181));
        assert_eq!(c.client_port_address, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(c.max_client_cnxns, 0);
        assert_eq!(c.max_cnxns, 500);
        assert_eq!(
            (c.session_timeout_ms_min, c.session_timeout_ms_max),
            (300, 90000)
        );
        assert!(c.session_timeout_ms_min_explicit && c.session_timeout_ms_max_explicit);
        assert_eq!(c.four_letter_words, vec!["stat", "ruok", "mntr", "srvr"]);
        assert!(c.four_letter_word_allowed("ruok"));
        assert!(!c.four_letter_word_allowed("dump"));
        assert_eq!(c.jute_maxbuffer, 4194304);
        assert!(c.extended_types_enabled);
        assert_eq!(
            c.super_digest.as_deref(),
            Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
        );
        assert!(c.skip_acl);
        assert!(c.enforce_quota);
        assert!(!c.reconfig_enabled);
        assert!(c.standalone_enabled);
        assert_eq!(c.global_outstanding_limit, 5000);
        assert_eq!(c.snap_count, 1000);
        assert_eq!(c.pre_alloc_size_kb, 1024);
        assert_eq!(c.autopurge_snap_retain_count, 5);
        assert_eq!(c.autopurge_purge_interval_hours, 0);
        assert!(!c.force_sync);
        assert_eq!(c.container_check_interval_ms, 1000);
        assert_eq!(c.container_max_per_minute, 100);
        assert_eq!(c.container_max_never_used_interval_ms, 3_600_000);
        assert_eq!(c.metrics_http_port, Some(7001));
        assert_eq!(c.peer_type, LearnerType::Observer);
        assert!(!c.sync_enabled);
        // admin.* is accepted and ignored, not kept.
        assert!(c.unknown_keys.is_empty());
    }

    #[test]
    fn key_aliases() {
        let c = cfg("\
dataDir=/d
zookeeper.jute.maxbuffer=1000
zookeeper.extendedTypesEnabled=true
zookeeper.enforceQuota=true
zookeeper.DigestAuthenticationProvider.superDigest=admin:D/InIHSb7yEEbrWz8b9l71RjZJU=
")
        .unwrap();
        assert_eq!(c.jute_maxbuffer, 1000);
        assert!(c.extended_types_enabled);
        assert!(c.enforce_quota);
        assert_eq!(
            c.super_digest.as_deref(),
            Some("admin:D/InIHSb7yEEbrWz8b9l71RjZJU=")
        );
        let c = cfg(
            "dataDir=/d\nDigestAuthenticationProvider.superDigest=u:D/InIHSb7yEEbrWz8b9l71RjZJU=\n",
        )
        .unwrap();
        assert_eq!(
            c.super_digest.as_deref(),
            Some("u:D/InIHSb7yEEbrWz8b9l71RjZJU=")
        );
    }

    #[test]
    fn booleans_as_java_reads_them() {
        // Boolean.parseBoolean: only "true", in any case, is true.
        for (text, expected) in [
            ("true", true),
            ("True", true),
            ("TRUE", true),
            ("false", false),
            ("yes", false),
            ("1", false),
            ("", false),
        ] {
            let c = cfg(&format!(
                "dataDir=/d\nextendedTypesEnabled={text}\nenforceQuota={text}\n"
            ))
            .unwrap();
            assert_eq!(c.extended_types_enabled, expected, "{text}");
            assert_eq!(c.enforce_quota, expected, "{text}");
        }
        // QuorumPeerConfig.parseBoolean is strict.
        for key in ["standaloneEnabled", "reconfigEnabled", "syncEnabled"] {
            assert!(cfg(&format!("dataDir=/d\n{key}=TRUE\n")).is_ok(), "{key}");
            assert_eq!(
                err(&format!("dataDir=/d\n{key}=yes\n")),
                format!("zoo.cfg:2: {key}: \"yes\" is not true or false")
            );
        }
        // skipACL and forceSync are yes/no.
        assert!(!cfg("dataDir=/d\nskipACL=no\n").unwrap().skip_acl);
        assert!(cfg("dataDir=/d\nforceSync=yes\n").unwrap().force_sync);
        assert_eq!(
            err("dataDir=/d\nskipACL=true\n"),
            "zoo.cfg:2: skipACL: \"true\" is not yes or no"
        );
        assert_eq!(
            err("dataDir=/d\nforceSync=false\n"),
            "zoo.cfg:2: forceSync: \"false\" is not yes or no"
        );
    }

    #[test]
    fn three_node_cluster() {
        let text = "\
tickTime=2000
dataDir=/var/lib/zookeeper
clientPort=2181
initLimit=5
syncLimit=2
server.1=node-1:2888:3888
server.2=node-2:2888:3888
server.3=node-3:2888:3888
";
        let c = cfg(text).unwrap();
        assert!(c.is_distributed());
        assert_eq!(c.servers.len(), 3);
        assert_eq!(
            c.servers[0],
            ServerEntry {
                sid: 1,
                host: "node-1".to_owned(),
                quorum_port: 2888,
                election_port: 3888,
                observer: false,
                client_addr: None,
            }
        );
        assert_eq!(
            c.servers.iter().map(|s| s.sid).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(c.server(3).unwrap().host, "node-3");
        assert!(c.server(4).is_none());
        assert_eq!(c.voting_members().count(), 3);
    }

    #[test]
    fn client_port_suffix_and_observer() {
        let c = cfg("\
dataDir=/d
initLimit=5
syncLimit=2
server.1=10.0.0.1:2888:3888;2181
server.2=10.0.0.2:2888:3888:participant;10.0.0.2:2182
server.3=10.0.0.3:2888:3888:participant
server.4=[::1]:2888:3888:OBSERVER;[::1]:2183
")
        .unwrap();
        assert_eq!(c.servers[0].client_addr, Some(("0.0.0.0".to_owned(), 2181)));
        assert!(!c.servers[0].observer);
        assert_eq!(
            c.servers[1].client_addr,
            Some(("10.0.0.2".to_owned(), 2182))
        );
        assert!(!c.servers[2].observer);
        assert_eq!(c.servers[3].host, "::1");
        assert!(c.servers[3].observer);
        assert_eq!(c.servers[3].client_addr, Some(("::1".to_owned(), 2183)));
        assert_eq!(c.voting_members().count(), 3);
        assert!(c.is_distributed());
        // As with Java's split, a trailing ';' or ':' is dropped.
        let c = cfg("dataDir=/d\nserver.1=h:1:2;\n").unwrap();
        assert_eq!(c.servers[0].client_addr, None);
        let c = cfg("dataDir=/d\nserver.1=h:1:2:\n").unwrap();
        assert_eq!(
            (c.servers[0].quorum_port, c.servers[0].election_port),
            (1, 2)
        );
    }

    #[test]
    fn is_distributed_rules() {
        let base = "dataDir=/d\ninitLimit=5\nsyncLimit=2\n";
        // No server list: standalone.
        assert!(!cfg(base).unwrap().is_distributed());
        // One participant: Apache ignores the line and runs standalone.
        assert!(!cfg(&format!("{base}server.1=a:1:2\n"))
            .unwrap()
            .is_distributed());
        // ...unless standaloneEnabled=false.
        assert!(
            cfg(&format!("{base}standaloneEnabled=false\nserver.1=a:1:2\n"))
                .unwrap()
                .is_distributed()
        );
        // Two participants and an observer.
        assert!(cfg(&format!(
            "{base}server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2:observer\n"
        ))
        .unwrap()
        .is_distributed());
        // One participant plus observers is refused, as in Apache.
        assert_eq!(
            err(&format!("{base}server.1=a:1:2\nserver.2=b:1:2:observer\n")),
            "zoo.cfg: server.N: observers without a quorum is an invalid configuration \
             (one participant and standaloneEnabled=true)"
        );
        assert_eq!(
            err(&format!("{base}server.2=b:1:2:observer\n")),
            "zoo.cfg: server.N: observers without participants is an invalid configuration"
        );
        assert_eq!(
            err("dataDir=/d\nstandaloneEnabled=false\n"),
            "zoo.cfg: standaloneEnabled is false but no server.N line names a participant"
        );
    }

    #[test]
    fn quorum_needs_init_and_sync_limits() {
        let servers = "server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n";
        assert_eq!(
            err(&format!("dataDir=/d\nsyncLimit=2\n{servers}")),
            "zoo.cfg: initLimit is not set"
        );
        assert_eq!(
            err(&format!("dataDir=/d\ninitLimit=2\n{servers}")),
            "zoo.cfg: syncLimit is not set"
        );
        assert_eq!(
            err(&format!("dataDir=/d\ninitLimit=0\nsyncLimit=2\n{servers}")),
            "zoo.cfg: initLimit must be at least 1 in quorum mode"
        );
        // Standalone with one server line needs neither.
        assert!(cfg("dataDir=/d\nserver.1=a:1:2\n").is_ok());
        // standaloneEnabled=false with one server is a quorum of one and needs them.
        assert_eq!(
            err("dataDir=/d\nstandaloneEnabled=false\nserver.1=a:1:2\n"),
            "zoo.cfg: initLimit is not set"
        );
    }

    #[test]
    fn server_line_errors() {
        let cases = [
            ("server.x=a:1:2", "server.x: server id \"x\" is not a number"),
            ("server.-1=a:1:2", "server.-1: server id -1 must not be negative"),
            ("server.=a:1:2", "server.: server id \"\" is not a number"),
            ("server.1=a:2888:2888", "server.1: quorum port 2888 must differ from election port 2888"),
            ("server.1=a:2888", "server.1: \"a:2888\" does not have the form host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]"),
            ("server.1=a:1:2:observer:x", "server.1: \"a:1:2:observer:x\" does not have the form host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]"),
            ("server.1=a:1:2;3;4", "server.1: \"a:1:2;3;4\" does not have the form host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]"),
            ("server.1=a:1:2;h:p:3", "server.1: \"a:1:2;h:p:3\" does not have the form host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]"),
            ("server.1=a:x:2", "server.1: quorum port \"x\" is not a valid port"),
            ("server.1=a:1:70000", "server.1: election port \"70000\" is not a valid port"),
            ("server.1=a:0:2", "server.1: quorum port \"0\" is not a valid port"),
            ("server.1=a:1:2;abc", "server.1: client port \"abc\" is not a valid port"),
            ("server.1=a:1:2:leader", "server.1: \"leader\" is not participant or observer"),
            ("server.1=:1:2", "server.1: the host is empty"),
            ("server.1=a:1:2;:2181", "server.1: the client host is empty"),
            ("server.1=a:1:2|b:1:2", "server.1: multiple addresses (multiAddress) are not supported"),
            ("server.1=[::1:1:2", "server.1: \"[::1:1:2\" starts with '[' but has no matching ']'"),
            ("server.1=[::1]:", "server.1: \"[::1]:\" has no port after the colon"),
        ];
        for (line, expected) in cases {
            assert_eq!(
                err(&format!("dataDir=/d\n{line}\n")),
                format!("zoo.cfg:2: {expected}"),
                "{line}"
            );
        }
        assert_eq!(
            err("dataDir=/d\nserver.1=a:1:2\nserver.01=b:1:2\n"),
            "zoo.cfg:3: server.01: server id 1 is also set on line 2"
        );
    }

    #[test]
    fn value_errors_name_file_line_and_key() {
        let cases = [
            ("tickTime=abc", "tickTime: \"abc\" is not a number"),
            ("tickTime=0", "tickTime: 0 must be at least 1"),
            ("tickTime=3000000000", "tickTime: 3000000000 must be at most 2147483647"),
            ("initLimit=-1", "initLimit: -1 must be at least 0"),
            ("syncLimit=x", "syncLimit: \"x\" is not a number"),
            ("dataLogDir=", "dataLogDir: the value is empty"),
            ("clientPort=abc", "clientPort: \"abc\" is not a valid port"),
            ("clientPort=65536", "clientPort: \"65536\" is not a valid port"),
            ("clientPortAddress=localhost", "clientPortAddress: \"localhost\" is not an IP address"),
            ("maxClientCnxns=-1", "maxClientCnxns: -1 must be at least 0"),
            ("maxCnxns=lots", "maxCnxns: \"lots\" is not a number"),
            ("minSessionTimeout=-2", "minSessionTimeout: -2 must be at least -1"),
            ("maxSessionTimeout=1.5", "maxSessionTimeout: \"1.5\" is not a number"),
            ("jute.maxbuffer=0", "jute.maxbuffer: 0 must be at least 1"),
            ("zookeeper.jute.maxbuffer=1M", "zookeeper.jute.maxbuffer: \"1M\" is not a number"),
            ("superDigest=super:secret", "superDigest: the value must look like user:base64(sha1(user:password)), with 28 base64 characters after the colon"),
            ("superDigest=D/InIHSb7yEEbrWz8b9l71RjZJU=", "superDigest: the value must look like user:base64(sha1(user:password)), with 28 base64 characters after the colon"),
            ("globalOutstandingLimit=0", "globalOutstandingLimit: 0 must be at least 1"),
            ("snapCount=many", "snapCount: \"many\" is not a number"),
            ("preAllocSize=-1", "preAllocSize: -1 must be at least 0"),
            ("autopurge.snapRetainCount=x", "autopurge.snapRetainCount: \"x\" is not a number"),
            ("autopurge.purgeInterval=-1", "autopurge.purgeInterval: -1 must be at least 0"),
            ("znode.container.checkIntervalMs=0", "znode.container.checkIntervalMs: 0 must be at least 1"),
            ("znode.container.maxPerMinute=0", "znode.container.maxPerMinute: 0 must be at least 1"),
            ("znode.container.maxNeverUsedIntervalMs=-5", "znode.container.maxNeverUsedIntervalMs: -5 must be at least 0"),
            ("metricsProvider.httpPort=http", "metricsProvider.httpPort: \"http\" is not a valid port"),
            ("electionAlg=1", "electionAlg: 1 is not supported; only 3 is"),
            ("electionAlg=fast", "electionAlg: \"fast\" is not a number"),
            ("peerType=leader", "peerType: \"leader\" is not participant or observer"),
            ("dynamicConfigFile=/etc/zoo.cfg.dynamic", "dynamicConfigFile: is not supported; put the server.N lines in this file"),
        ];
        for (line, expected) in cases {
            // The bad line is the third, after a comment, so the number is not trivially 1.
            let text = format!("# comment\ndataDir=/d\n{line}\n");
            assert_eq!(err(&text), format!("zoo.cfg:3: {expected}"), "{line}");
        }
    }

    #[test]
    fn errors_without_a_line_name_the_key() {
        assert_eq!(err("tickTime=2000\n"), "zoo.cfg: dataDir is not set");
        assert_eq!(err("dataDir=\n"), "zoo.cfg:1: dataDir: the value is empty");
        // The file default tickTime of 3000 gives a maxSessionTimeout of 60000.
        assert_eq!(
            err("dataDir=/d\nminSessionTimeout=70000\n"),
            "zoo.cfg: minSessionTimeout 70000 must not be larger than maxSessionTimeout 60000"
        );
        assert_eq!(
            err("dataDir=/d\ntickTime=2000\nminSessionTimeout=50000\nmaxSessionTimeout=40000\n"),
            "zoo.cfg: minSessionTimeout 50000 must not be larger than maxSessionTimeout 40000"
        );
        assert_eq!(
            err("dataDir=/d\nclientPortAddress=0.0.0.0\n"),
            "zoo.cfg: clientPortAddress is set but clientPort is not set"
        );
        assert_eq!(
            err("dataDir=/d\nextendedTypesEnabled=true\nserver.255=a:1:2\n"),
            "zoo.cfg: server.255: server ids must be at most 254 when extendedTypesEnabled is true"
        );
        // Without a file name.
        let e = parse("clientPort=x\ndataDir=/d\n", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1: clientPort: \"x\" is not a valid port"
        );
        assert_eq!(e.line, Some(1));
        assert_eq!(e.key.as_deref(), Some("clientPort"));
        assert_eq!(
            parse("", None).unwrap_err().to_string(),
            "dataDir is not set"
        );
    }

    #[test]
    fn adjusted_values() {
        let c = cfg("dataDir=/d\nsnapCount=1\nautopurge.snapRetainCount=1\n").unwrap();
        assert_eq!(c.snap_count, 2);
        assert_eq!(c.autopurge_snap_retain_count, 3);
        let c = cfg("dataDir=/d\nautopurge.snapRetainCount=-7\n").unwrap();
        assert_eq!(c.autopurge_snap_retain_count, 3);
        // -1 is Apache's "not set" for session timeouts.
        let c =
            cfg("dataDir=/d\ntickTime=1000\nminSessionTimeout=-1\nmaxSessionTimeout=-1\n").unwrap();
        assert_eq!(
            (c.session_timeout_ms_min, c.session_timeout_ms_max),
            (2000, 20000)
        );
        assert!(!c.session_timeout_ms_min_explicit);
        // clientPort=0 means no listener, as in Apache.
        assert_eq!(cfg("dataDir=/d\nclientPort=0\n").unwrap().client_port, None);
        // A huge tickTime does not overflow the derived timeouts.
        let c = cfg("dataDir=/d\ntickTime=2147483647\n").unwrap();
        assert_eq!(c.session_timeout_ms_max, i32::MAX as u32);
    }

    #[test]
    fn four_letter_word_whitelist() {
        let c = cfg("dataDir=/d\n4lw.commands.whitelist=*\n").unwrap();
        assert_eq!(c.four_letter_words, vec!["*"]);
        assert!(c.four_letter_word_allowed("dump"));
        let c = cfg("dataDir=/d\n4lw.commands.whitelist=ruok, *, stat\n").unwrap();
        assert_eq!(c.four_letter_words, vec!["*"]);
        let c = cfg("dataDir=/d\n4lw.commands.whitelist=\n").unwrap();
        assert_eq!(c.four_letter_words, vec!["srvr"]);
        let c = cfg("dataDir=/d\n4lw.commands.whitelist=srvr,ruok,srvr\n").unwrap();
        assert_eq!(c.four_letter_words, vec!["srvr", "ruok"]);
    }

    #[test]
    fn metrics_provider() {
        let prometheus = "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";
        let c = cfg(&format!("dataDir=/d\n{prometheus}\n")).unwrap();
        assert_eq!(c.metrics_http_port, Some(7000));
        let c = cfg(&format!("dataDir=/d\n{prometheus}\nmetricsProvider.httpPort=7070\nmetricsProvider.exportJvmInfo=true\n"))
            .unwrap();
        assert_eq!(c.metrics_http_port, Some(7070));
        assert_eq!(
            c.unknown_keys,
            vec![(
                "metricsProvider.exportJvmInfo".to_owned(),
                "true".to_owned()
            )]
        );
        let c = cfg(&format!(
            "dataDir=/d\n{prometheus}\nmetricsProvider.httpPort=0\n"
        ))
        .unwrap();
        assert_eq!(c.metrics_http_port, None);
    }

    #[test]
    fn unknown_group_and_weight_keys_are_kept() {
        let c = cfg("\
dataDir=/d
initLimit=5
syncLimit=2
server.1=a:1:2
server.2=b:1:2
server.3=c:1:2
group.1=1:2:3
weight.1=1
snapSizeLimitInKb=1024
digest.enabled=false
")
        .unwrap();
        assert_eq!(
            c.unknown_keys,
            vec![
                ("group.1".to_owned(), "1:2:3".to_owned()),
                ("weight.1".to_owned(), "1".to_owned()),
                ("snapSizeLimitInKb".to_owned(), "1024".to_owned()),
                ("digest.enabled".to_owned(), "false".to_owned()),
            ]
        );
    }

    #[test]
    fn properties_separators_and_whitespace() {
        let c = cfg("\
  dataDir = /with spaces/d  \n\
clientPort:2181\n\
tickTime 1000\n\
initLimit\t=\t4\n\
syncLimit :3\n\
maxCnxns=:7\n\
")
        .err();
        // `maxCnxns=:7`: only the first separator counts, so the value is ":7".
        assert_eq!(
            c.unwrap().to_string(),
            "zoo.cfg:6: maxCnxns: \":7\" is not a number"
        );
        let c = cfg("\
  dataDir = /with spaces/d  \n\
clientPort:2181\n\
tickTime 1000\n\
initLimit\t=\t4\n\
syncLimit :3\n\
")
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/with spaces/d"));
        assert_eq!(c.client_port, Some(2181));
        assert_eq!(c.tick_time_ms, 1000);
        assert_eq!(c.init_limit, Some(4));
        assert_eq!(c.sync_limit, Some(3));
        // `key value = x`: the separator was whitespace, so '=' is part of the value.
        let props = read_properties("a b = c\nk\n=v\n", "").unwrap();
        assert_eq!(props[0].key, "a");
        assert_eq!(props[0].value, "b = c");
        assert_eq!((props[1].key.as_str(), props[1].value.as_str()), ("k", ""));
        assert_eq!((props[2].key.as_str(), props[2].value.as_str()), ("", "v"));
    }

    #[test]
    fn properties_comments_and_blank_lines() {
        let props = read_properties(
            "# a comment\n! another\n   # indented comment\n\n   \n\t\nkey=value # not a comment\n",
            "",
        )
        .unwrap();
        assert_eq!(props.len(), 1);
        assert_eq!(props[0].key, "key");
        assert_eq!(props[0].value, "value # not a comment");
        assert_eq!(props[0].line, 7);
    }

    #[test]
    fn properties_continuations() {
        let text = "\
servers=a,\\
        b,\\
    # not a comment here\\
c
after=1
comment=x # ends with a backslash \\\\
next=2
# a comment ending in a backslash does not continue \\
third=3
";
        let props = read_properties(text, "").unwrap();
        let get = |k: &str| {
            props
                .iter()
                .find(|p| p.key == k)
                .map(|p| (p.value.clone(), p.line))
        };
        assert_eq!(
            get("servers"),
            Some(("a,b,# not a comment herec".to_owned(), 1))
        );
        assert_eq!(get("after"), Some(("1".to_owned(), 5)));
        // An even number of trailing backslashes is an escaped backslash, not a continuation.
        assert_eq!(
            get("comment"),
            Some(("x # ends with a backslash \\".to_owned(), 6))
        );
        assert_eq!(get("next"), Some(("2".to_owned(), 7)));
        assert_eq!(get("third"), Some(("3".to_owned(), 9)));
        // A blank line after a continuation ends the entry; a backslash at the end of the
        // text is dropped.
        let props = read_properties("a=1\\\n\nb=2\\", "").unwrap();
        assert_eq!(props.len(), 2);
        assert_eq!(
            (props[0].value.as_str(), props[1].value.as_str()),
            ("1", "2")
        );
        // Line numbers count \r\n, \r and \n line ends alike.
        let props = read_properties("a=1\r\nb=2\rc=3\nd=4", "").unwrap();
        assert_eq!(
            props.iter().map(|p| p.line).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        // The continuation is reported at the line where the entry starts.
        assert_eq!(
            err("dataDir=/d\ntickTime=1\\\n  0x\n"),
            "zoo.cfg:2: tickTime: \"10x\" is not a number"
        );
    }

    #[test]
    fn properties_escapes() {
        let props = read_properties(
            "a\\=b\\:c\\ d=e\\tf\\ng\\u0041\\\\\\z\nemoji=\\uD83D\\uDE00\nkey\\ with\\ space = v\n",
            "",
        )
        .unwrap();
        assert_eq!(props[0].key, "a=b:c d");
        assert_eq!(props[0].value, "e\tf\ngA\\z");
        assert_eq!(props[1].value, "\u{1F600}");
        assert_eq!(props[2].key, "key with space");
        assert_eq!(
            err("dataDir=/d\nbad=\\u12G4\n"),
            "zoo.cfg:2: malformed \\uxxxx escape"
        );
        assert_eq!(
            err("dataDir=/d\nbad=\\u12\n"),
            "zoo.cfg:2: malformed \\uxxxx escape"
        );
        assert_eq!(
            err("dataDir=/d\nbad=\\uD83Dx\n"),
            "zoo.cfg:2: \\u escape with an unpaired UTF-16 surrogate"
        );
        assert_eq!(
            err("dataDir=/d\nbad=\\uDE00\n"),
            "zoo.cfg:2: \\u escape with an unpaired UTF-16 surrogate"
        );
    }

    #[test]
    fn duplicate_key_last_wins() {
        let c = cfg("dataDir=/a\nclientPort=abc\nclientPort=2182\ndataDir=/b\n").unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/b"));
        assert_eq!(c.client_port, Some(2182));
        let c = cfg("dataDir=/a\nfoo=1\nbar=2\nfoo=3\n").unwrap();
        assert_eq!(
            c.unknown_keys,
            vec![
                ("bar".to_owned(), "2".to_owned()),
                ("foo".to_owned(), "3".to_owned())
            ]
        );
    }

    #[test]
    fn overrides() {
        let mut c = cfg("dataDir=/d\ntickTime=2000\nclientPort=2181\n").unwrap();
        c.apply(&Overrides {
            client_port: Some(0),
            client_port_address: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            data_dir: Some(PathBuf::from("/o")),
            tick_time_ms: Some(500),
            max_client_cnxns: Some(10),
            four_letter_words: Some(vec!["ruok,stat".to_owned(), "MNTR".to_owned()]),
            extended_types_enabled: Some(true),
            super_digest: Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=".to_owned()),
            metrics_http_port: Some(9100),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(c.client_port, Some(0));
        assert_eq!(c.client_port_address, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(c.data_dir, PathBuf::from("/o"));
        // dataLogDir was not set, so it follows dataDir.
        assert_eq!(c.data_log_dir, PathBuf::from("/o"));
        assert_eq!(c.tick_time_ms, 500);
        // The timeouts came from tickTime, so they follow it.
        assert_eq!(
            (c.session_timeout_ms_min, c.session_timeout_ms_max),
            (1000, 10000)
        );
        assert_eq!(c.max_client_cnxns, 10);
        assert_eq!(c.four_letter_words, vec!["ruok", "stat", "mntr", "srvr"]);
        assert!(c.extended_types_enabled);
        assert_eq!(
            c.super_digest.as_deref(),
            Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
        );
        assert_eq!(c.metrics_http_port, Some(9100));

        // An explicit dataLogDir stays; explicit timeouts stay.
        let mut c = cfg("dataDir=/d\ndataLogDir=/l\nminSessionTimeout=3000\n").unwrap();
        c.apply(&Overrides {
            data_dir: Some(PathBuf::from("/o")),
            tick_time_ms: Some(1000),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(c.data_log_dir, PathBuf::from("/l"));
        assert_eq!(
            (c.session_timeout_ms_min, c.session_timeout_ms_max),
            (3000, 20000)
        );
        c.apply(&Overrides {
            data_log_dir: Some(PathBuf::from("/l2")),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(c.data_log_dir, PathBuf::from("/l2"));

        // The zero-config default with flags.
        let mut c = Config::default();
        c.apply(&Overrides {
            tick_time_ms: Some(100),
            client_port: Some(12345),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(
            (c.session_timeout_ms_min, c.session_timeout_ms_max),
            (200, 2000)
        );
        assert_eq!(c.client_port, Some(12345));
        assert_eq!(c.data_log_dir, PathBuf::from("data"));
    }

    #[test]
    fn override_errors_leave_the_config_unchanged() {
        let mut c = cfg("dataDir=/d\ntickTime=2000\nminSessionTimeout=30000\n").unwrap();
        let before = c.clone();
        let e = c
            .apply(&Overrides {
                tick_time_ms: Some(100),
                ..Overrides::default()
            })
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "zoo.cfg: minSessionTimeout 30000 must not be larger than maxSessionTimeout 2000"
        );
        assert_eq!(c, before);
        let e = c
            .apply(&Overrides {
                tick_time_ms: Some(0),
                ..Overrides::default()
            })
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "tickTime 0 from the command line must be from 1 to 2147483647"
        );
        let e = c
            .apply(&Overrides {
                super_digest: Some("super:password".to_owned()),
                ..Overrides::default()
            })
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("superDigest from the command line: the value must look like"),
            "{e}"
        );
        assert!(
            !e.to_string().contains("super:password"),
            "the value is not echoed: {e}"
        );
        let e = c
            .apply(&Overrides {
                client_port_address: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                ..Overrides::default()
            })
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "zoo.cfg: clientPortAddress is set but clientPort is not set"
        );
        let mut c = cfg("dataDir=/d\nserver.300=a:1:2\n").unwrap();
        let before = c.clone();
        let e = c
            .apply(&Overrides {
                extended_types_enabled: Some(true),
                ..Overrides::default()
            })
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "zoo.cfg: server.300: server ids must be at most 254 when extendedTypesEnabled is true"
        );
        assert_eq!(c, before);
    }

    #[test]
    fn load_reads_a_file() {
        let dir = temp_dir("load");
        let path = dir.join("zoo.cfg");
        std::fs::write(&path, ZOO_SAMPLE).unwrap();
        let c = load(&path).unwrap();
        assert_eq!(c.source.as_deref(), Some(path.as_path()));
        assert_eq!(c.client_port, Some(2181));

        std::fs::write(&path, "dataDir=/d\nclientPort=abc\n").unwrap();
        assert_eq!(
            load(&path).unwrap_err().to_string(),
            format!(
                "{}:2: clientPort: \"abc\" is not a valid port",
                path.display()
            )
        );

        // Not UTF-8: read as ISO 8859-1, as Java does.
        std::fs::write(&path, b"dataDir=/d\xe9\n").unwrap();
        assert_eq!(load(&path).unwrap().data_dir, PathBuf::from("/d\u{e9}"));
        // A UTF-8 byte order mark is skipped.
        std::fs::write(&path, "\u{feff}dataDir=/d\n").unwrap();
        assert_eq!(load(&path).unwrap().data_dir, PathBuf::from("/d"));

        let missing = dir.join("missing.cfg");
        let e = load(&missing).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "{}: cannot read the config file: ",
                missing.display()
            )),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn myid() {
        let dir = temp_dir("myid");
        let path = dir.join("myid");
        assert_eq!(
            read_myid(&dir).unwrap_err().to_string(),
            format!("{}: myid file is missing", path.display())
        );
        for (text, sid) in [
            ("1\n", 1),
            ("42", 42),
            (" 7 \r\nignored\n", 7),
            ("254\n\n", 254),
        ] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(read_myid(&dir).unwrap(), sid, "{text:?}");
        }
        for (text, message) in [
            ("abc\n", "serverid abc is not a number"),
            ("1 2\n", "serverid 1 2 is not a number"),
            ("\n1\n", "serverid \"\" is not a number"),
            ("", "serverid \"\" is not a number"),
            ("-1\n", "serverid -1 must not be negative"),
        ] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(
                read_myid(&dir).unwrap_err().to_string(),
                format!("{}:1: {message}", path.display()),
                "{text:?}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn java_split_matches_java() {
        assert_eq!(java_split("", ':'), vec![""]);
        assert_eq!(java_split("a", ':'), vec!["a"]);
        assert_eq!(java_split("a:1:2:", ':'), vec!["a", "1", "2"]);
        assert_eq!(java_split(":", ':'), Vec::<&str>::new());
        assert_eq!(java_split("a::b", ':'), vec!["a", "", "b"]);
    }
}
