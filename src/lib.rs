//! zk: a ZooKeeper-compatible coordination service. The library holds every module; the `zk`
//! binary (src/main.rs) is a thin front-end over it. See DESIGN.md for the map.

pub mod client;
pub mod cmd;
pub mod config;
pub mod net;
pub mod proto;
pub mod server;
pub mod sim;
pub mod storage;
pub mod tree;
pub mod zab;

/// The version string the server reports in `srvr`, `stat`, `mntr` and `envi`. It keeps
/// ZooKeeper's shape (`MAJOR.MINOR.MICRO-<revision>, built on <date> UTC`) so that tools which
/// parse it keep working; the revision names this implementation.
pub const VERSION_STRING: &str = concat!(
    "3.9.4-zk-",
    env!("CARGO_PKG_VERSION"),
    ", built on 2026-11-24 00:00 UTC"
);
