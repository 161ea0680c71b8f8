//! zoo.cfg and command-line overrides -> a validated `Config` (Apache's QuorumPeerConfig).
//! The file is read with Java Properties syntax; keys and defaults follow PROTOCOL.md §16.
//! A bad value names the key and the line and is an error, never a silent default.

use std::net::IpAddr;
use std::path::PathBuf;

/// One `server.N=host:quorumPort:electionPort[:role][;[clientHost:]clientPort]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    pub sid: u64,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub observer: bool,
    pub client_addr: Option<(String, u16)>,
}

/// The validated configuration of one server.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub tick_time_ms: u32,
    pub init_limit: Option<u32>,
    pub sync_limit: Option<u32>,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub client_port: Option<u16>,
    pub client_port_address: Option<IpAddr>,
    /// Per client IP; 0 = no limit.
    pub max_client_cnxns: u32,
    /// Total; 0 = no limit.
    pub max_cnxns: u32,
    pub session_timeout_ms_min: u32,
    pub session_timeout_ms_max: u32,
    /// Lower-cased four-letter words allowed; `["*"]` allows all.
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
    pub pre_alloc_size_kb: u64,
    pub autopurge_snap_retain_count: u32,
    pub autopurge_purge_interval_hours: u32,
    pub force_sync: bool,
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: u32,
    pub container_max_never_used_interval_ms: u64,
    pub metrics_http_port: Option<u16>,
    pub servers: Vec<ServerEntry>,
    /// Keys the file set that this server does not interpret (kept for `conf`).
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
            client_port: Some(2181),
            client_port_address: None,
            max_client_cnxns: 60,
            max_cnxns: 0,
            session_timeout_ms_min: 2 * tick,
            session_timeout_ms_max: 20 * tick,
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
            pre_alloc_size_kb: 65536,
            autopurge_snap_retain_count: 3,
            autopurge_purge_interval_hours: 1,
            force_sync: true,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            container_max_never_used_interval_ms: 0,
            metrics_http_port: None,
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
}
