//! The node table: a hash map from full path to node, split into `SHARDS` maps by a hash of
//! the path. A single map doubles its table as it grows, and at a million znodes that copy
//! (hundreds of MB) stalled the event loop for tens of milliseconds in the middle of a write
//! load; each shard grows on its own, so a doubling moves 1/SHARDS of the nodes.

use std::collections::hash_map::{Entry, HashMap};

/// How many maps the table is split into.
pub const SHARDS: usize = 64;

pub struct ShardedMap<V> {
    shards: Vec<HashMap<String, V>>,
    len: usize,
}

/// The shard of a path, from its length and last (up to) 16 bytes, mixed: O(1) whatever the
/// path's length, and sibling paths (which differ at the end) spread. The maps hash the
/// whole path again with their own (DoS-resistant) hasher, so a skewed spread here only
/// unbalances the shards, never a map.
fn shard_of(key: &str) -> usize {
    let b = key.as_bytes();
    let tail = &b[b.len().saturating_sub(16)..];
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    let split = tail.len().saturating_sub(8);
    lo[..tail.len() - split].copy_from_slice(&tail[split..]);
    hi[..split].copy_from_slice(&tail[..split]);
    let mut h = u64::from_le_bytes(lo) ^ u64::from_le_bytes(hi).rotate_left(29) ^ b.len() as u64;
    h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    h = (h ^ (h >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    (h ^ (h >> 33)) as usize % SHARDS
}

impl<V> Default for ShardedMap<V> {
    fn default() -> Self {
        ShardedMap {
            shards: (0..SHARDS).map(|_| HashMap::new()).collect(),
            len: 0,
        }
    }
}

impl<V> ShardedMap<V> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn reserve(&mut self, additional: usize) {
        let each = additional.div_ceil(SHARDS);
        for s in &mut self.shards {
            s.reserve(each);
        }
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.shards[shard_of(key)].get(key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.shards[shard_of(key)].get_mut(key)
    }

    pub fn get_key_value(&self, key: &str) -> Option<(&String, &V)> {
        self.shards[shard_of(key)].get_key_value(key)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.shards[shard_of(key)].contains_key(key)
    }

    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        let old = self.shards[shard_of(&key)].insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        let old = self.shards[shard_of(key)].remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// The entry for `key`; an insert through a vacant entry must be reported with
    /// `inserted` to keep the count (the std Entry cannot tell us).
    pub fn entry(&mut self, key: String) -> Entry<'_, String, V> {
        let i = shard_of(&key);
        self.shards[i].entry(key)
    }

    /// Counts a node inserted through a vacant `entry`.
    pub fn inserted(&mut self) {
        self.len += 1;
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.shards.iter().flat_map(|s| s.iter())
    }
}

impl<V> std::ops::Index<&str> for ShardedMap<V> {
    type Output = V;

    fn index(&self, key: &str) -> &V {
        self.get(key).expect("no such path")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_one_map() {
        let mut m = ShardedMap::default();
        let mut reference = HashMap::new();
        for i in 0..5000u32 {
            let k = format!("/n/{}", i * 7 % 1013);
            if i % 3 == 0 {
                assert_eq!(m.remove(&k), reference.remove(&k));
            } else {
                assert_eq!(m.insert(k.clone(), i), reference.insert(k, i));
            }
            assert_eq!(m.len(), reference.len());
        }
        for (k, v) in &reference {
            assert_eq!(m.get(k), Some(v));
            assert_eq!(m[k.as_str()], *v);
        }
        assert_eq!(m.iter().count(), reference.len());
        let used = m.shards.iter().filter(|s| !s.is_empty()).count();
        assert!(
            used > SHARDS / 2,
            "paths spread over the shards ({used} used)"
        );
    }
}
