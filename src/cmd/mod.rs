//! Subcommands: one file each, each a thin front-end over the library. `main` parses argv
//! with clap, runs one subcommand and maps its result to an exit code. Errors print once as
//! `zk: error: ...`.

pub mod server;
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
    /// Print a server's mode, like `zkServer.sh status`.
    Status(status::StatusArgs),
}

fn init_logging(level: Option<&str>) {
    let mut b = env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(level.unwrap_or("info")),
    );
    if let Some(l) = level {
        b.parse_filters(l);
    }
    b.format_timestamp_millis();
    let _ = b.try_init();
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_logging(cli.log_level.as_deref());
    let result = match cli.command {
        Command::Server(a) => server::run(a),
        Command::Status(a) => status::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("zk: error: {e}");
            1
        }
    }
}
