//! What `zk bench` measures: the operations it reports on (`Op`), and per operation a latency
//! histogram of the successful replies plus a count of the failed ones by ZooKeeper error
//! code. Each engine thread fills its own `Stats` and adds it into the phase's shared one
//! every so often; nothing here knows about sockets or clocks.

use super::hist::Histogram;
use crate::proto::Code;
use std::collections::BTreeMap;

/// One kind of operation as reported in the table. Workloads that run a recipe report each
/// step and the recipe as a whole (`LockRoundTrip`, `WatchEvent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Set,
    Get,
    Exists,
    List,
    Multi,
    Delete,
    /// getData with a watch, arming the watch that `WatchEvent` times.
    WatchArm,
    /// From sending the setData to receiving the NodeDataChanged event on the other session.
    WatchEvent,
    /// The lock recipe's steps.
    LockCreate,
    LockList,
    LockWait,
    LockRelease,
    /// Lock round trip: from the create of the lock node to the reply to its delete.
    LockRoundTrip,
    /// Setup and cleanup traffic; counted, never shown in the workload's table.
    Populate,
    Clean,
    /// closeSession at the end of a phase; never recorded.
    Close,
}

impl Op {
    pub const ALL: [Op; 17] = [
        Op::Create,
        Op::Set,
        Op::Get,
        Op::Exists,
        Op::List,
        Op::Multi,
        Op::Delete,
        Op::WatchArm,
        Op::WatchEvent,
        Op::LockCreate,
        Op::LockList,
        Op::LockWait,
        Op::LockRelease,
        Op::LockRoundTrip,
        Op::Populate,
        Op::Clean,
        Op::Close,
    ];

    /// The name in the table and the JSON key.
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Set => "set",
            Op::Get => "get",
            Op::Exists => "exists",
            Op::List => "list",
            Op::Multi => "multi",
            Op::Delete => "delete",
            Op::WatchArm => "get+watch",
            Op::WatchEvent => "set->event",
            Op::LockCreate => "lock.create",
            Op::LockList => "lock.list",
            Op::LockWait => "lock.watch",
            Op::LockRelease => "lock.delete",
            Op::LockRoundTrip => "lock",
            Op::Populate => "populate",
            Op::Clean => "cleanup",
            Op::Close => "close",
        }
    }

    /// Codes that are an expected answer rather than a failure for this op: the predecessor
    /// of a lock waiter may already be gone, and cleanup meets nodes that are gone or not
    /// empty yet.
    pub fn benign(self, code: i32) -> bool {
        match self {
            Op::LockWait => code == Code::NoNode.code(),
            Op::Clean => code == Code::NoNode.code() || code == Code::NotEmpty.code(),
            Op::Populate => code == Code::NodeExists.code(),
            _ => false,
        }
    }
}

/// The name of an error code as `Code`'s variant spells it ("NoNode"), or the number.
pub fn code_name(code: i32) -> String {
    match Code::from_code(code) {
        Some(c) => format!("{c:?}"),
        None => format!("code{code}"),
    }
}

/// One operation's numbers.
#[derive(Clone, Default)]
pub struct OpStats {
    /// Latency of the successful replies, in nanoseconds.
    pub hist: Histogram,
    /// Failed replies by error code.
    pub errors: BTreeMap<i32, u64>,
}

impl OpStats {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Every operation's numbers, indexed by `Op`.
#[derive(Clone)]
pub struct Stats {
    pub ops: Vec<OpStats>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            ops: vec![OpStats::default(); Op::ALL.len()],
        }
    }

    pub fn get(&self, op: Op) -> &OpStats {
        &self.ops[op as usize]
    }

    pub fn ok(&mut self, op: Op, ns: u64) {
        self.ops[op as usize].hist.record(ns);
    }

    pub fn error(&mut self, op: Op, code: i32) {
        *self.ops[op as usize].errors.entry(code).or_insert(0) += 1;
    }

    pub fn merge(&mut self, other: &Stats) {
        for (a, b) in self.ops.iter_mut().zip(&other.ops) {
            a.hist.merge(&b.hist);
            for (code, n) in &b.errors {
                *a.errors.entry(*code).or_insert(0) += n;
            }
        }
    }

    pub fn clear(&mut self) {
        for o in &mut self.ops {
            o.hist.clear();
            o.errors.clear();
        }
    }

    /// All successful replies of the ops a workload reports, merged: for the progress line.
    pub fn reported_total(&self) -> Histogram {
        let mut h = Histogram::new();
        for op in Op::ALL.iter().filter(|o| o.is_reported()) {
            h.merge(&self.get(*op).hist);
        }
        h
    }
}

impl Op {
    /// Whether the op belongs in a workload's table (setup, cleanup and close do not).
    pub fn is_reported(self) -> bool {
        !matches!(self, Op::Populate | Op::Clean | Op::Close)
    }

    /// Whether the op is a measurement derived from several requests (a recipe round trip,
    /// a watch event) rather than one request; such ops stay out of the totals.
    pub fn is_derived(self) -> bool {
        matches!(self, Op::WatchEvent | Op::LockRoundTrip)
    }

    /// Whether the driver records the op itself, because success is in the reply body (a
    /// multi's header says ok even when an op in it failed).
    pub fn recorded_by_driver(self) -> bool {
        self == Op::Multi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_index_their_own_slot() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i, "{op:?}");
        }
    }

    #[test]
    fn errors_merge_by_code() {
        let mut a = Stats::new();
        let mut b = Stats::new();
        a.error(Op::Set, -101);
        b.error(Op::Set, -101);
        b.error(Op::Set, -4);
        b.ok(Op::Set, 1000);
        a.merge(&b);
        assert_eq!(a.get(Op::Set).error_count(), 3);
        assert_eq!(a.get(Op::Set).errors[&-101], 2);
        assert_eq!(a.get(Op::Set).hist.count(), 1);
        assert_eq!(code_name(-101), "NoNode");
        assert_eq!(code_name(-9), "code-9");
        assert!(Op::LockWait.benign(-101));
        assert!(!Op::Get.benign(-101));
    }
}
