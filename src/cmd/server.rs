//! `zk server`: read zoo.cfg (or run on the zero-config default), apply command-line
//! overrides, bind the client port and serve until SIGTERM or SIGINT.

use crate::config::{self, Config, Overrides};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Default)]
pub struct ServerArgs {
    /// zoo.cfg to read (ZooKeeper's format). Without it: standalone, port 2181, data in ./data.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Client port (clientPort).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Address to listen on for clients (clientPortAddress).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<std::net::IpAddr>,
    /// Snapshot directory (dataDir).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Txn log directory (dataLogDir).
    #[arg(long, value_name = "DIR")]
    pub data_log_dir: Option<PathBuf>,
    /// Tick length in milliseconds (tickTime).
    #[arg(long, value_name = "MS")]
    pub tick_time: Option<u32>,
    /// Connections allowed per client IP, 0 for no limit (maxClientCnxns).
    #[arg(long, value_name = "N")]
    pub max_client_cnxns: Option<u32>,
    /// Comma-separated four-letter words to allow, or * (4lw.commands.whitelist).
    #[arg(long = "4lw-whitelist", value_name = "WORDS")]
    pub four_letter_words: Option<String>,
    /// Allow TTL nodes (extendedTypesEnabled).
    #[arg(long)]
    pub extended_types: bool,
}

/// Reads the configuration the arguments describe.
pub fn load_config(a: &ServerArgs) -> Result<Config, config::ConfigError> {
    let mut cfg = match &a.config {
        Some(p) => config::load(p)?,
        None => Config::default(),
    };
    let o = Overrides {
        client_port: a.port,
        client_port_address: a.bind,
        data_dir: a.data_dir.clone(),
        data_log_dir: a.data_log_dir.clone(),
        tick_time_ms: a.tick_time,
        max_client_cnxns: a.max_client_cnxns,
        four_letter_words: a.four_letter_words.as_ref().map(|s| {
            s.split(',')
                .map(|w| w.trim().to_owned())
                .filter(|w| !w.is_empty())
                .collect()
        }),
        extended_types_enabled: a.extended_types.then_some(true),
        ..Default::default()
    };
    cfg.apply(&o)?;
    Ok(cfg)
}

pub fn run(a: ServerArgs) -> Result<i32, Box<dyn std::error::Error>> {
    let cfg = load_config(&a)?;
    for dir in [&cfg.data_dir, &cfg.data_log_dir] {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    }
    if cfg.is_distributed() {
        let myid = config::read_myid(&cfg.data_dir)?;
        crate::cmd::set_log_myid(myid);
        log::info!(
            "starting zk {} as server {myid} of an ensemble of {} ({} voting), dataDir {}",
            env!("CARGO_PKG_VERSION"),
            cfg.servers.len(),
            cfg.voting_members().count(),
            cfg.data_dir.display()
        );
    } else {
        // A standalone server has no myid; one left in the data dir still labels the log lines.
        if cfg.data_dir.join("myid").exists() {
            if let Ok(id) = config::read_myid(&cfg.data_dir) {
                crate::cmd::set_log_myid(id);
            }
        }
        log::info!(
            "starting zk {} standalone, dataDir {}",
            env!("CARGO_PKG_VERSION"),
            cfg.data_dir.display()
        );
    }
    let mut rt = crate::net::Runtime::bind(cfg)?;
    rt.run()?;
    Ok(0)
}
