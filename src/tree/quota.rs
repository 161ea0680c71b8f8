//! Quotas: a quota on `/p` lives in `/zookeeper/quota/p/zookeeper_limits` (limits) and
//! `/zookeeper/quota/p/zookeeper_stats` (usage, kept up to date by the tree itself, without
//! changing that node's version, as ZooKeeper does). Soft limits only warn; hard limits are
//! checked by the server's prep stage when enforceQuota is on. Corresponds to Apache's
//! Quotas, StatsTrack and the quota parts of DataTree.

use super::{join, DataTree, QUOTA_PATH};
use std::collections::BTreeMap;

pub const LIMIT_NODE: &str = "zookeeper_limits";
pub const STAT_NODE: &str = "zookeeper_stats";

/// A parsed `count=..,bytes=..[=;key=value...]` text (StatsTrack). Missing keys read as -1.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    pub stats: BTreeMap<String, i64>,
}

impl StatsTrack {
    pub fn parse(text: &str) -> StatsTrack {
        let mut stats = BTreeMap::new();
        for kv in text.split([',', ';']).filter(|s| !s.is_empty()) {
            let mut it = kv.split('=');
            let k = it.next().unwrap_or("");
            let v = it.next().unwrap_or("");
            let v = if v.is_empty() {
                -1
            } else {
                v.trim().parse().unwrap_or(-1)
            };
            if !k.is_empty() {
                stats.insert(k.to_owned(), v);
            }
        }
        StatsTrack { stats }
    }

    pub fn get(&self, k: &str) -> i64 {
        *self.stats.get(k).unwrap_or(&-1)
    }

    pub fn set(&mut self, k: &str, v: i64) {
        self.stats.insert(k.to_owned(), v);
    }

    pub fn count(&self) -> i64 {
        self.get("count")
    }

    pub fn bytes(&self) -> i64 {
        self.get("bytes")
    }

    pub fn count_hard_limit(&self) -> i64 {
        self.get("countHardLimit")
    }

    pub fn byte_hard_limit(&self) -> i64 {
        self.get("byteHardLimit")
    }
}

impl std::fmt::Display for StatsTrack {
    /// `count` and `bytes` first; any further keys sorted after an extra `=` (the new format).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "count={},bytes={}", self.count(), self.bytes())?;
        let extra: Vec<_> = self
            .stats
            .iter()
            .filter(|(k, _)| k.as_str() != "count" && k.as_str() != "bytes")
            .collect();
        if !extra.is_empty() {
            write!(f, "=")?;
            for (k, v) in extra {
                write!(f, ";{k}={v}")?;
            }
        }
        Ok(())
    }
}

/// The path a quota node's parent stands for: `/zookeeper/quota/a/b` -> `/a/b`.
fn trim_quota_path(quota_parent: &str) -> &str {
    &quota_parent[QUOTA_PATH.len()..]
}

impl DataTree {
    /// The longest path with a quota that is `path` or one of its ancestors.
    pub fn quota_prefix(&self, path: &str) -> Option<String> {
        if self.quota_paths.is_empty() || path.starts_with("/zookeeper") {
            return None;
        }
        let mut p = path;
        loop {
            if self.quota_paths.contains(p) {
                return Some(p.to_owned());
            }
            p = super::parent_of(p)?;
            if p == "/" {
                return None;
            }
        }
    }

    /// The limits that apply to `path`, if any, with the quota's path.
    pub fn quota_limits(&self, path: &str) -> Option<(String, StatsTrack, StatsTrack)> {
        let q = self.quota_prefix(path)?;
        let base = format!("{QUOTA_PATH}{q}");
        let read = |name: &str| {
            self.get(&join(&base, name))
                .and_then(|n| n.data)
                .map(|d| StatsTrack::parse(&String::from_utf8_lossy(d)))
                .unwrap_or_default()
        };
        Some((q, read(LIMIT_NODE), read(STAT_NODE)))
    }

    pub(super) fn quota_on_create(&mut self, parent_path: &str, name: &str) {
        if !parent_path.starts_with(QUOTA_PATH) || parent_path.len() <= QUOTA_PATH.len() {
            return;
        }
        let target = trim_quota_path(parent_path).to_owned();
        if name == LIMIT_NODE {
            self.quota_paths.insert(target);
        } else if name == STAT_NODE {
            self.recompute_quota_stats(&target);
        }
    }

    pub(super) fn quota_on_delete(&mut self, parent_path: &str, name: &str) {
        if name == LIMIT_NODE && parent_path.starts_with(QUOTA_PATH) {
            self.quota_paths.remove(trim_quota_path(parent_path));
        }
    }

    /// Sets the stats node of quota path `q` to the subtree's real usage.
    fn recompute_quota_stats(&mut self, q: &str) {
        let (mut count, mut bytes) = (0i64, 0i64);
        let mut stack = vec![q.to_owned()];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.get(&p) {
                count += 1;
                bytes += n.data_len() as i64;
                for c in n.children_unordered() {
                    stack.push(join(&p, c));
                }
            }
        }
        let mut st = StatsTrack::default();
        st.set("count", count);
        st.set("bytes", bytes);
        self.write_stats_node(q, st);
    }

    fn write_stats_node(&mut self, q: &str, st: StatsTrack) {
        let stat_path = format!("{QUOTA_PATH}{q}/{STAT_NODE}");
        self.replace_data(&stat_path, st.to_string().as_bytes());
    }

    /// Adds to the usage of the quota covering `path`, warning when a soft limit is passed.
    pub(super) fn update_quota_usage(&mut self, path: &str, count_diff: i64, bytes_diff: i64) {
        let Some((q, limits, mut stats)) = self.quota_limits(path) else {
            return;
        };
        if stats.stats.is_empty() {
            return;
        }
        stats.set("count", stats.count() + count_diff);
        stats.set("bytes", stats.bytes() + bytes_diff);
        let (lc, lb) = (limits.count(), limits.bytes());
        if lc > -1 && stats.count() > lc {
            self.quota_warnings.push(format!(
                "Quota exceeded: {q} count={} limit={lc}",
                stats.count()
            ));
        }
        if lb > -1 && stats.bytes() > lb {
            self.quota_warnings.push(format!(
                "Quota exceeded: {q} bytes={} limit={lb}",
                stats.bytes()
            ));
        }
        self.write_stats_node(&q, stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_track_formats() {
        let s = StatsTrack::parse("count=2,bytes=-1=;byteHardLimit=-1;countHardLimit=-1");
        assert_eq!(s.count(), 2);
        assert_eq!(s.bytes(), -1);
        assert_eq!(
            s.to_string(),
            "count=2,bytes=-1=;byteHardLimit=-1;countHardLimit=-1"
        );
        let s = StatsTrack::parse("count=1,bytes=0");
        assert_eq!(s.to_string(), "count=1,bytes=0");
    }
}
