//! A latency histogram with log-linear buckets, in the manner of HdrHistogram: exact below
//! `SUB_BUCKETS` nanoseconds, then every power of two split into `SUB_BUCKETS` equal parts, so
//! any recorded value is known to within 1/`SUB_BUCKETS` (under 0.8 %). Recording is an index
//! computation and an increment, merging is an element-wise add, and the memory is fixed
//! (`BUCKETS` counters), so every thread of `zk bench` keeps its own and the main thread adds
//! them up for the progress line and the report. It never allocates after `new`, never
//! panics on any value (values past the top bucket are clamped into it, the exact maximum is
//! kept apart), and knows nothing of clocks: values are plain nanoseconds.

/// log2 of the number of linear sub-buckets per power of two: 7 gives 128, a relative
/// resolution of 1/128.
const SUB_BITS: u32 = 7;
const SUB_BUCKETS: u64 = 1 << SUB_BITS;
/// Values are tracked up to 2^TOP_BITS ns (about 73 minutes); longer ones land in the top
/// bucket, which no benchmark latency should reach.
const TOP_BITS: u32 = 42;
/// The number of counters: the exact range, then one block per power of two above it.
const BUCKETS: usize = ((TOP_BITS - SUB_BITS + 1) as usize) * SUB_BUCKETS as usize;

/// Counts of nanosecond values.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum_ns: u128,
    min_ns: u64,
    max_ns: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

/// The bucket a value falls in.
fn index_of(v: u64) -> usize {
    if v < SUB_BUCKETS {
        return v as usize;
    }
    let v = v.min((1u64 << TOP_BITS) - 1);
    let top_bit = 63 - v.leading_zeros();
    let shift = top_bit - SUB_BITS;
    let mantissa = (v >> shift) - SUB_BUCKETS;
    ((u64::from(shift) + 1) * SUB_BUCKETS + mantissa) as usize
}

/// The smallest value of bucket `i` and the bucket's width.
fn bucket_range(i: usize) -> (u64, u64) {
    let block = i as u64 / SUB_BUCKETS;
    let mantissa = i as u64 % SUB_BUCKETS;
    if block == 0 {
        (mantissa, 1)
    } else {
        ((SUB_BUCKETS + mantissa) << (block - 1), 1 << (block - 1))
    }
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            sum_ns: 0,
            min_ns: u64::MAX,
            max_ns: 0,
        }
    }

    pub fn record(&mut self, ns: u64) {
        self.counts[index_of(ns)] += 1;
        self.total += 1;
        self.sum_ns += u128::from(ns);
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    pub fn merge(&mut self, other: &Histogram) {
        if other.total == 0 {
            return;
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.sum_ns += other.sum_ns;
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    pub fn clear(&mut self) {
        if self.total != 0 {
            self.counts.fill(0);
            self.total = 0;
            self.sum_ns = 0;
            self.min_ns = u64::MAX;
            self.max_ns = 0;
        }
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max_ns(&self) -> u64 {
        self.max_ns
    }

    pub fn mean_ns(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            (self.sum_ns / u128::from(self.total)) as u64
        }
    }

    /// The value below which a fraction `q` (0..=1) of the recorded values lie: the middle of
    /// the bucket holding that rank, kept within the exact minimum and maximum; the highest
    /// rank is the exact maximum. 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).clamp(1, self.total);
        if rank == self.total {
            return self.max_ns;
        }
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (low, width) = bucket_range(i);
                return (low + width / 2).clamp(self.min_ns, self.max_ns);
            }
        }
        self.max_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for v in (0..5000u64).chain([1 << 20, (1 << 20) + 1, 1 << 35, u64::MAX]) {
            let i = index_of(v);
            assert!(i < BUCKETS, "{v} -> {i}");
            assert!(i >= last, "index must not decrease");
            last = i;
            let (low, width) = bucket_range(i);
            if v < 1 << TOP_BITS {
                assert!(
                    low <= v && v < low + width,
                    "{v} not in [{low}, {})",
                    low + width
                );
                assert!(
                    width * SUB_BUCKETS <= v.max(SUB_BUCKETS),
                    "{v}: bucket too wide"
                );
            }
        }
    }

    #[test]
    fn quantiles_are_within_the_resolution() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        for (q, want) in [(0.5, 50_000_000u64), (0.9, 90_000_000), (0.99, 99_000_000)] {
            let got = h.quantile_ns(q);
            let err = (got as f64 - want as f64).abs() / want as f64;
            assert!(err < 1.0 / SUB_BUCKETS as f64, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.quantile_ns(1.0), 100_000_000);
        assert_eq!(h.max_ns(), 100_000_000);
        assert_eq!(h.count(), 100_000);
        assert_eq!(h.mean_ns(), 50_000_500);
    }

    #[test]
    fn merge_adds_and_empty_is_zero() {
        let mut a = Histogram::new();
        assert_eq!(a.quantile_ns(0.99), 0);
        let mut b = Histogram::new();
        a.record(10);
        b.record(1_000_000);
        b.record(3);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.quantile_ns(0.0), 3);
        assert_eq!(a.max_ns(), 1_000_000);
        a.clear();
        assert_eq!(a.count(), 0);
    }
}
