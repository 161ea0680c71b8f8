//! The `zk` binary: parse argv, run one subcommand, map the result to an exit code.

fn main() {
    std::process::exit(zk::cmd::main());
}

/// See Cargo.toml for why the allocator is mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
