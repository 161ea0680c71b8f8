//! Seeded runs of the simulator. `ZK_SIM_SEEDS` sets how many seeds each ensemble size runs;
//! `ZK_SIM_SEED` (with `ZK_SIM_NODES`) replays one seed with a full trace through `replay`.

use super::*;

/// Seeds per ensemble size in CI unless ZK_SIM_SEEDS says otherwise.
const DEFAULT_SEEDS: u64 = 3000;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn many(nodes: usize) {
    let count = env_u64("ZK_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let base = env_u64("ZK_SIM_SEED_BASE").unwrap_or(0);
    let started = std::time::Instant::now();
    let mut total = Stats::default();
    for seed in base..base + count {
        match run(&Options::new(seed, nodes)) {
            Ok(s) => {
                total.events += s.events;
                total.committed += s.committed;
                total.acked_writes += s.acked_writes;
                total.epochs += s.epochs;
                total.crashes += s.crashes;
                total.partitions += s.partitions;
                total.snapshots_sent += s.snapshots_sent;
            }
            Err(f) => panic!("{f}"),
        }
    }
    eprintln!(
        "sim: {count} seeds x {nodes} servers in {:.1?}: {} events, {} txns committed, {} writes acked, {} epochs, {} crashes, {} partitions, {} SNAPs",
        started.elapsed(),
        total.events,
        total.committed,
        total.acked_writes,
        total.epochs,
        total.crashes,
        total.partitions,
        total.snapshots_sent
    );
}

#[test]
fn seeds_three_servers() {
    many(3);
}

#[test]
fn seeds_five_servers() {
    many(5);
}

/// `ZK_SIM_SEED=<n> ZK_SIM_NODES=<3|5> cargo test --release --lib sim::tests::replay -- --nocapture`
#[test]
fn replay() {
    let Some(seed) = env_u64("ZK_SIM_SEED") else {
        return;
    };
    let nodes = env_u64("ZK_SIM_NODES").unwrap_or(3) as usize;
    let mut o = Options::new(seed, nodes);
    o.trace = true;
    enable_trace();
    match run(&o) {
        Ok(s) => println!("seed {seed} passed: {s:?}"),
        Err(f) => panic!("{f}"),
    }
}

#[test]
fn a_run_is_a_function_of_its_seed() {
    for seed in [1, 2, 3] {
        let a = run(&Options::new(seed, 3)).unwrap_or_else(|f| panic!("{f}"));
        let b = run(&Options::new(seed, 3)).unwrap_or_else(|f| panic!("{f}"));
        assert_eq!(a, b, "seed {seed}");
    }
}

#[test]
fn without_faults_every_write_is_acked_and_replicated() {
    let mut o = Options::new(42, 5);
    o.faults = false;
    let s = run(&o).unwrap_or_else(|f| panic!("{f}"));
    assert!(s.acked_writes > 50, "{s:?}");
    assert_eq!(s.epochs, 1, "{s:?}");
}
