//! A linearizability checker for histories of operations on independent ZooKeeper znodes,
//! for the Jepsen-style test (tests/jepsen.rs). Each key is checked on its own (Herlihy and
//! Wing's locality: a history is linearizable iff every key's sub-history is), against a
//! model of one znode as a register of `(value, version)`:
//!
//! - `Read` (sync + getData) returns the whole register and changes nothing;
//! - `Write(v)` (setData with version -1) sets the value and returns the incremented version;
//! - `Cas { expected_version, value }` (setData with a version) does the same if the version
//!   matches and otherwise returns BadVersion, which is itself an observation (the version
//!   differed at the moment it took effect).
//!
//! The search is Wing & Gong's, as refined by Lowe and used by Knossos and porcupine: walk the
//! calls in time order, linearize a pending call whenever the model accepts it, backtrack when
//! some operation's return is reached before it was linearized, and never explore a
//! (set of linearized ops, register) configuration twice. The set is kept as a 128-bit
//! Zobrist hash (a random number per op, XORed in and out), so a configuration costs a few
//! words in the cache; a collision, which could only hide a linearization, has a chance of
//! about (configurations)^2 / 2^129.
//!
//! Outcomes follow Jepsen: `Ok` returned a result; `Fail` definitely did not take effect and
//! is left out; `Unknown` (timeout, connection loss) may have taken effect at any time after
//! its call or never, so its return is +infinity and it may be linearized last, where its
//! effect no longer matters. A read that did not complete observes nothing and is left out.
//! The search is bounded by `SEARCH_STEPS_MAX` (`check_with_limit` to choose another): past it
//! the key is `Inconclusive`, never a pass.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// The most search steps (model steps plus backtracks) spent on one key by `check`.
pub const SEARCH_STEPS_MAX: u64 = 20_000_000;
/// How many of the last linearized operations a failure report's window reaches back to.
pub const REPORT_LINEARIZED_TAIL: usize = 6;
/// The most operations a failure report lists in its window.
pub const REPORT_WINDOW_OPS_MAX: usize = 40;

pub type Value = i64;
pub type Version = i32;

/// One znode's data and data version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Register {
    pub value: Value,
    pub version: Version,
}

impl Register {
    pub fn new(value: Value, version: Version) -> Register {
        Register { value, version }
    }
}

impl fmt::Display for Register {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(value {}, version {})", self.value, self.version)
    }
}

/// What a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Read,
    Write(Value),
    Cas {
        expected_version: Version,
        value: Value,
    },
}

/// What an operation that completed returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// A `Read`'s register.
    Read(Register),
    /// The new version a `Write` or a successful `Cas` returned.
    Version(Version),
    /// A `Cas` found another version.
    BadVersion,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok(Reply),
    /// Definitely did not take effect (an error the server guarantees means "not applied").
    Fail,
    /// May have taken effect at any time after the call, or never.
    Unknown,
}

/// One operation of a history. Times are any clock that is consistent with real time across
/// clients (a shared monotonic counter, or nanoseconds from one `Instant`): if one op returned
/// before another was called, its `return_time` must be smaller than the other's `call_time`.
/// Equal times count as concurrent. `return_time` is ignored for `Unknown`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub key: String,
    /// Who issued it; only for reports.
    pub client: usize,
    pub call: Call,
    pub outcome: Outcome,
    pub call_time: u64,
    pub return_time: u64,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let call = match self.call {
            Call::Read => "read".to_string(),
            Call::Write(v) => format!("write {v}"),
            Call::Cas {
                expected_version,
                value,
            } => format!("cas {value} if version {expected_version}"),
        };
        let (ret, outcome) = match self.outcome {
            Outcome::Ok(Reply::Read(r)) => (self.return_time.to_string(), r.to_string()),
            Outcome::Ok(Reply::Version(v)) => {
                (self.return_time.to_string(), format!("ok, version {v}"))
            }
            Outcome::Ok(Reply::BadVersion) => (self.return_time.to_string(), "BadVersion".into()),
            Outcome::Fail => (self.return_time.to_string(), "failed".into()),
            Outcome::Unknown => ("?".into(), "unknown".into()),
        };
        write!(
            f,
            "client {} [{} .. {}] {} -> {}",
            self.client, self.call_time, ret, call, outcome
        )
    }
}

/// The verdict for one key.
#[derive(Debug)]
pub enum KeyVerdict {
    Linearizable {
        ops: usize,
        steps: u64,
    },
    NotLinearizable(Box<Anomaly>),
    /// The search hit its step limit; neither a pass nor a proof of a bug.
    Inconclusive {
        ops: usize,
        steps: u64,
    },
}

/// Where the search for a key got furthest before every path failed.
#[derive(Debug)]
pub struct Anomaly {
    pub key: String,
    pub initial: Register,
    pub steps: u64,
    /// Operations of the key that take part in the check (not `Fail`, not incomplete reads).
    pub ops_checked: usize,
    /// The operation whose return was reached without any way to linearize it.
    pub blocked: Op,
    /// The register after the longest partial linearization that reached that point.
    pub register: Register,
    /// How many operations that partial linearization holds.
    pub linearized: usize,
    /// The operations around the point, by call time: the last few of that linearization,
    /// those still pending there (called before the blocked op returned), and those
    /// overlapping that stretch of time.
    pub window: Vec<WindowOp>,
}

/// An operation of a failure report's window.
#[derive(Debug)]
pub struct WindowOp {
    pub op: Op,
    /// Whether the partial linearization holds it.
    pub linearized: bool,
    /// For its last few ops: the place in it (1-based) and the register after.
    pub place: Option<(usize, Register)>,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "key {}: not linearizable (initial register {}, {} ops checked, {} search steps)",
            self.key, self.initial, self.ops_checked, self.steps
        )?;
        writeln!(
            f,
            "  the furthest linearization holds {} ops and leaves the register at {}; it cannot \
             place:",
            self.linearized, self.register
        )?;
        writeln!(f, "    {}", self.blocked)?;
        writeln!(
            f,
            "  window (#n: n-th in that linearization, with the register after it; *: in it \
             earlier; blank: not in it):"
        )?;
        for w in &self.window {
            match (w.place, w.linearized) {
                (Some((n, r)), _) => writeln!(f, "    #{n:<6} {}   => {r}", w.op)?,
                (None, true) => writeln!(f, "    {:<7} {}", "*", w.op)?,
                (None, false) => writeln!(f, "    {:<7} {}", "", w.op)?,
            }
        }
        Ok(())
    }
}

/// The verdicts for every key of a history.
#[derive(Debug)]
pub struct CheckResult {
    pub keys: Vec<(String, KeyVerdict)>,
}

impl CheckResult {
    /// Every key is linearizable.
    pub fn is_linearizable(&self) -> bool {
        self.keys
            .iter()
            .all(|(_, v)| matches!(v, KeyVerdict::Linearizable { .. }))
    }

    /// The keys found not linearizable.
    pub fn anomalies(&self) -> Vec<&Anomaly> {
        self.keys
            .iter()
            .filter_map(|(_, v)| match v {
                KeyVerdict::NotLinearizable(a) => Some(&**a),
                _ => None,
            })
            .collect()
    }

    /// Panics with the report unless every key is linearizable.
    pub fn assert_linearizable(&self) {
        assert!(
            self.is_linearizable(),
            "history is not linearizable:\n{self}"
        );
    }
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, v) in &self.keys {
            match v {
                KeyVerdict::Linearizable { ops, steps } => writeln!(
                    f,
                    "key {key}: linearizable ({ops} ops, {steps} search steps)"
                )?,
                KeyVerdict::Inconclusive { ops, steps } => writeln!(
                    f,
                    "key {key}: INCONCLUSIVE: no answer within {steps} search steps ({ops} ops)"
                )?,
                KeyVerdict::NotLinearizable(a) => write!(f, "{a}")?,
            }
        }
        Ok(())
    }
}

/// Checks every key of `history`, each from its register in `initial` (a key missing there is
/// a bug in the caller and panics), within `SEARCH_STEPS_MAX` steps per key.
pub fn check(history: &[Op], initial: &BTreeMap<String, Register>) -> CheckResult {
    check_with_limit(history, initial, SEARCH_STEPS_MAX)
}

/// `check` with another step limit per key.
pub fn check_with_limit(
    history: &[Op],
    initial: &BTreeMap<String, Register>,
    steps_max: u64,
) -> CheckResult {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history {
        by_key.entry(&op.key).or_default().push(op);
    }
    let keys = by_key
        .into_iter()
        .map(|(key, ops)| {
            let init = *initial
                .get(key)
                .unwrap_or_else(|| panic!("no initial register for key {key}"));
            (key.to_string(), check_key(key, init, &ops, steps_max))
        })
        .collect();
    CheckResult { keys }
}

/// Whether an op takes part in the search; panics on an op whose reply does not fit its call.
fn relevant(op: &Op) -> bool {
    let fits = match (op.call, op.outcome) {
        (_, Outcome::Fail | Outcome::Unknown) => true,
        (Call::Read, Outcome::Ok(r)) => matches!(r, Reply::Read(_)),
        (Call::Write(_), Outcome::Ok(r)) => matches!(r, Reply::Version(_)),
        (Call::Cas { .. }, Outcome::Ok(r)) => matches!(r, Reply::Version(_) | Reply::BadVersion),
    };
    assert!(fits, "malformed op (reply does not fit the call): {op}");
    if let Outcome::Ok(_) = op.outcome {
        assert!(
            op.call_time <= op.return_time,
            "op returns before its call: {op}"
        );
    }
    match op.outcome {
        Outcome::Fail => false,
        Outcome::Unknown => op.call != Call::Read,
        Outcome::Ok(_) => true,
    }
}

/// The model: the register after `op` from `s`, or None if `op` cannot take effect there.
fn step(s: Register, op: &Op) -> Option<Register> {
    let next = s.version.wrapping_add(1);
    match (op.call, op.outcome) {
        (Call::Read, Outcome::Ok(Reply::Read(r))) => (r == s).then_some(s),
        (Call::Write(value), Outcome::Ok(Reply::Version(v))) => {
            (v == next).then_some(Register::new(value, v))
        }
        (Call::Write(value), Outcome::Unknown) => Some(Register::new(value, next)),
        (
            Call::Cas {
                expected_version,
                value,
            },
            Outcome::Ok(Reply::Version(v)),
        ) => (s.version == expected_version && v == next).then_some(Register::new(value, v)),
        (
            Call::Cas {
                expected_version, ..
            },
            Outcome::Ok(Reply::BadVersion),
        ) => (s.version != expected_version).then_some(s),
        // Where the version differs it took effect as a BadVersion; where it matches it set
        // the register. Not taking effect at all is the same as taking effect last.
        (
            Call::Cas {
                expected_version,
                value,
            },
            Outcome::Unknown,
        ) => Some(if s.version == expected_version {
            Register::new(value, next)
        } else {
            s
        }),
        _ => None,
    }
}

/// Where an `Unknown` write may take effect, from what the rest of the history observed.
/// Sound only when every value is written at most once and differs from the initial one:
/// then versions are produced one at a time in order, a read of `(v, n)` names the one op
/// that wrote `v` as the producer of version `n`, and an op whose value nobody read cannot
/// have produced a version someone observed (a read would have seen its value, or a reply
/// claims that version for another op).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pin {
    /// No restriction (values are not unique, or the op is not an unknown write).
    Any,
    /// A read saw its value at this version: it produced exactly that version.
    Exactly(Version),
    /// Nobody saw its value: only versions nobody observed.
    Unobserved,
}

/// The pins of `ops` (see `Pin`), and every version a read or a reply showed.
fn pins(initial: Register, ops: &[&Op]) -> (Vec<Pin>, HashSet<Version>) {
    let written = |op: &Op| match op.call {
        Call::Read => None,
        Call::Write(v) | Call::Cas { value: v, .. } => Some(v),
    };
    let mut values = HashSet::new();
    let unique = ops
        .iter()
        .filter_map(|op| written(op))
        .all(|v| v != initial.value && values.insert(v));
    let mut seen_at: HashMap<Value, Version> = HashMap::new();
    let mut observed: HashSet<Version> = HashSet::new();
    for op in ops {
        match op.outcome {
            Outcome::Ok(Reply::Read(r)) => {
                seen_at.entry(r.value).or_insert(r.version);
                observed.insert(r.version);
            }
            Outcome::Ok(Reply::Version(v)) => {
                observed.insert(v);
            }
            _ => {}
        }
    }
    let pins = ops
        .iter()
        .map(|op| match (op.outcome, written(op)) {
            (Outcome::Unknown, Some(v)) if unique => match seen_at.get(&v) {
                Some(&n) => Pin::Exactly(n),
                None => Pin::Unobserved,
            },
            _ => Pin::Any,
        })
        .collect();
    (pins, observed)
}

/// `step` for an op with pin `pin`; `observed` holds every version a read or reply showed.
fn pinned_step(s: Register, op: &Op, pin: Pin, observed: &HashSet<Version>) -> Option<Register> {
    let after = step(s, op)?;
    let allowed = after.version == s.version
        || match pin {
            Pin::Any => true,
            Pin::Exactly(n) => after.version == n,
            Pin::Unobserved => !observed.contains(&after.version),
        };
    allowed.then_some(after)
}

/// A hasher for cache keys that are random already (a Zobrist hash and a register).
#[derive(Default)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_u128(&mut self, x: u128) {
        self.write_u64(x as u64);
        self.write_u64((x >> 64) as u64);
    }
    fn write_i64(&mut self, x: i64) {
        self.write_u64(x as u64);
    }
    fn write_i32(&mut self, x: i32) {
        self.write_u64(x as u32 as u64);
    }
}

/// SplitMix64, for the Zobrist numbers (fixed seed: runs are reproducible).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const NIL: usize = usize::MAX;

/// The furthest point the search reached, for the report.
struct Frontier {
    /// Position of the blocking return event in time order.
    position: usize,
    blocked: usize,
    register: Register,
    linearized: Vec<u64>,
    /// The last linearized ops: (op, place in the linearization, register after).
    tail: Vec<(usize, usize, Register)>,
    count: usize,
}

/// Wing & Gong / Lowe over one key's ops.
fn check_key(key: &str, initial: Register, all: &[&Op], steps_max: u64) -> KeyVerdict {
    let ops: Vec<&Op> = all.iter().copied().filter(|op| relevant(op)).collect();
    let n = ops.len();
    let (pin, observed) = pins(initial, &ops);
    let ret_time = |i: usize| match ops[i].outcome {
        Outcome::Unknown => u64::MAX,
        _ => ops[i].return_time,
    };
    // Events in time order: (time, 0 = call / 1 = return, op). At equal times calls come
    // first, so the ops count as concurrent.
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        events.push((op.call_time, 0, i));
        events.push((ret_time(i), 1, i));
    }
    events.sort_unstable();
    let mut call_pos = vec![0; n];
    let mut ret_pos = vec![0; n];
    for (p, &(_, kind, i)) in events.iter().enumerate() {
        if kind == 0 {
            call_pos[i] = p;
        } else {
            ret_pos[i] = p;
        }
    }
    // A doubly linked list over the event positions, with a head sentinel at 2n.
    let head = 2 * n;
    let mut next = vec![NIL; 2 * n + 1];
    let mut prev = vec![NIL; 2 * n + 1];
    for (p, (nx, pv)) in next.iter_mut().zip(prev.iter_mut()).enumerate().take(2 * n) {
        *nx = if p + 1 < 2 * n { p + 1 } else { NIL };
        *pv = if p == 0 { head } else { p - 1 };
    }
    next[head] = if n > 0 { 0 } else { NIL };
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, p: usize| {
        next[prev[p]] = next[p];
        if next[p] != NIL {
            prev[next[p]] = prev[p];
        }
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, p: usize| {
        next[prev[p]] = p;
        if next[p] != NIL {
            prev[next[p]] = p;
        }
    };

    let mut seed = 0x5EED_0F11_AEA5_1200u64;
    let zobrist: Vec<u128> = (0..n)
        .map(|_| (u128::from(splitmix(&mut seed)) << 64) | u128::from(splitmix(&mut seed)))
        .collect();
    let mut cache: HashSet<(u128, Register), BuildHasherDefault<MixHasher>> = HashSet::default();
    let mut linearized = vec![0u64; n.div_ceil(64)];
    let mut stack: Vec<(usize, Register)> = Vec::new();
    let mut state = initial;
    let mut hash = 0u128;
    let mut steps = 0u64;
    let mut frontier: Option<Frontier> = None;
    let mut entry = next[head];

    while next[head] != NIL {
        steps += 1;
        if steps > steps_max {
            return KeyVerdict::Inconclusive { ops: n, steps };
        }
        let (_, kind, i) = events[entry];
        if kind == 0 {
            if let Some(s) = pinned_step(state, ops[i], pin[i], &observed) {
                let h = hash ^ zobrist[i];
                if cache.insert((h, s)) {
                    stack.push((i, state));
                    linearized[i / 64] |= 1 << (i % 64);
                    state = s;
                    hash = h;
                    unlink(&mut next, &mut prev, call_pos[i]);
                    unlink(&mut next, &mut prev, ret_pos[i]);
                    entry = next[head];
                    continue;
                }
            }
            entry = next[entry];
        } else {
            // Op i's return is reached and it is not linearized: this path is dead.
            let further = match &frontier {
                Some(f) => entry > f.position,
                None => true,
            };
            if further {
                let mut tail = Vec::new();
                let mut after = state;
                for (k, &(j, before)) in stack.iter().enumerate().rev().take(REPORT_LINEARIZED_TAIL)
                {
                    tail.push((j, k + 1, after));
                    after = before;
                }
                tail.reverse();
                frontier = Some(Frontier {
                    position: entry,
                    blocked: i,
                    register: state,
                    linearized: linearized.clone(),
                    tail,
                    count: stack.len(),
                });
            }
            let Some((j, before)) = stack.pop() else {
                let f = frontier.expect("a frontier is recorded before giving up");
                return KeyVerdict::NotLinearizable(Box::new(report(key, initial, &ops, steps, f)));
            };
            linearized[j / 64] &= !(1 << (j % 64));
            state = before;
            hash ^= zobrist[j];
            relink(&mut next, &mut prev, ret_pos[j]);
            relink(&mut next, &mut prev, call_pos[j]);
            entry = next[call_pos[j]];
        }
    }
    KeyVerdict::Linearizable { ops: n, steps }
}

/// The failure report: the window of ops around the furthest point reached.
fn report(key: &str, initial: Register, ops: &[&Op], steps: u64, f: Frontier) -> Anomaly {
    let blocked = ops[f.blocked];
    let done = |i: usize| f.linearized[i / 64] & (1 << (i % 64)) != 0;
    let end = blocked.return_time;
    let pending = |i: usize| !done(i) && ops[i].call_time <= end;
    // The window opens at the earliest call among the last linearized ops and the completed
    // ops still pending; pending Unknown ops are listed whenever they were called.
    let start = f
        .tail
        .iter()
        .map(|&(j, _, _)| ops[j].call_time)
        .chain(
            (0..ops.len())
                .filter(|&i| pending(i) && ops[i].outcome != Outcome::Unknown)
                .map(|i| ops[i].call_time),
        )
        .min()
        .unwrap_or(blocked.call_time);
    let mut window: Vec<usize> = (0..ops.len())
        .filter(|&i| {
            pending(i)
                || f.tail.iter().any(|&(j, _, _)| j == i)
                || (ops[i].call_time <= end
                    && ops[i].outcome != Outcome::Unknown
                    && ops[i].return_time >= start)
        })
        .collect();
    window.sort_by_key(|&i| (ops[i].call_time, i));
    if window.len() > REPORT_WINDOW_OPS_MAX {
        // Keep the ops nearest the blocked one.
        let at = window.iter().position(|&i| i == f.blocked).unwrap_or(0);
        let lo = at
            .saturating_sub(REPORT_WINDOW_OPS_MAX / 2)
            .min(window.len() - REPORT_WINDOW_OPS_MAX);
        window = window[lo..lo + REPORT_WINDOW_OPS_MAX].to_vec();
    }
    Anomaly {
        key: key.to_string(),
        initial,
        steps,
        ops_checked: ops.len(),
        blocked: blocked.clone(),
        register: f.register,
        linearized: f.count,
        window: window
            .into_iter()
            .map(|i| WindowOp {
                op: ops[i].clone(),
                linearized: done(i),
                place: f
                    .tail
                    .iter()
                    .find(|&&(j, _, _)| j == i)
                    .map(|&(_, n, r)| (n, r)),
            })
            .collect(),
    }
}
