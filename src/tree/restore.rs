//! Rebuilding a DataTree from stored nodes, walking it parents-first, and digesting it.
//! `restore_node` is how a snapshot is loaded: it puts a node in place exactly as it was
//! stored (no txn, no watch triggers, no quota recomputation) and keeps every index the tree
//! maintains — ephemerals by session, containers, TTL nodes, quota paths, the approximate data
//! size, the interned ACL lists — consistent with what `apply` would have built. It never
//! touches files: the storage module decodes bytes and calls in here. Corresponds to the
//! deserialization half of Apache's DataTree.deserialize and to its digest (DigestCalculator),
//! though the digest here is our own and not comparable with ZooKeeper's.

use super::arena::{NewRec, ROOT};
use super::quota::LIMIT_NODE;
use super::{child_name, parent_of, DataTree, Node, NodeRef, QUOTA_PATH};
use crate::proto::consts::{owner_kind, OwnerKind};
use std::fmt;

/// Why a stored node could not be put into the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreError {
    /// The path is not absolute, ends in a slash or has an empty component.
    BadPath(String),
    /// The node's parent has not been restored (parents must come before their children).
    NoParent(String),
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::BadPath(p) => write!(f, "invalid znode path {p:?}"),
            RestoreError::NoParent(p) => write!(f, "znode {p:?} comes before its parent"),
        }
    }
}

impl std::error::Error for RestoreError {}

/// Whether `path` is a well-formed absolute znode path. Stored input is untrusted, so this is
/// checked before a path can reach the tree's indexes.
fn valid_path(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    path.starts_with('/') && !path.ends_with('/') && !path[1..].split('/').any(str::is_empty)
}

/// The quota target a `zookeeper_limits` node stands for (`/zookeeper/quota/a/b/zookeeper_limits`
/// -> `/a/b`), mirroring what `quota_on_create` records when such a node is created.
fn quota_target(path: &str) -> Option<&str> {
    let parent = parent_of(path)?;
    if child_name(path) != LIMIT_NODE
        || !parent.starts_with(QUOTA_PATH)
        || parent.len() <= QUOTA_PATH.len()
    {
        return None;
    }
    Some(&parent[QUOTA_PATH.len()..])
}

/// Restores nodes into a tree (see `DataTree::restorer`). It keeps the path of the node put
/// last and the records of it and its ancestors: in a depth-first listing, a node's parent is
/// one of them. A node listed elsewhere is still placed, with a lookup of its parent. Paths
/// are borrowed for `'p` (a snapshot's bytes), so nothing is copied.
pub struct Restorer<'t, 'p> {
    tree: &'t mut DataTree,
    /// The path of the node put last.
    path: &'p str,
    /// (length of a prefix of `path` that is a node's path, that node's record), root first.
    chain: Vec<(usize, u32)>,
}

impl<'p> Restorer<'_, 'p> {
    /// `DataTree::restore_node`.
    pub fn put(&mut self, path: &'p str, node: Node) -> Result<(), RestoreError> {
        if !valid_path(path) {
            return Err(RestoreError::BadPath(path.to_owned()));
        }
        let parent = match parent_of(path) {
            None => {
                self.chain.clear();
                None
            }
            Some(pp) => {
                while let Some(&(len, _)) = self.chain.last() {
                    if len == pp.len() && self.path.as_bytes()[..len] == *pp.as_bytes() {
                        break;
                    }
                    self.chain.pop();
                }
                match self.chain.last() {
                    Some(&(_, id)) => Some(id),
                    None => match self.tree.arena.resolve(pp) {
                        Some(id) => {
                            self.chain.push((pp.len(), id));
                            Some(id)
                        }
                        None => return Err(RestoreError::NoParent(path.to_owned())),
                    },
                }
            }
        };
        let id = self.tree.restore_under(parent, path, node);
        self.path = path;
        self.chain.push((path.len(), id));
        Ok(())
    }
}

impl DataTree {
    /// Makes room for `additional` more nodes, so a snapshot load sizes the index once.
    pub fn reserve(&mut self, additional: usize) {
        self.arena.reserve(additional);
    }

    /// Puts a stored node at `path`, or overwrites the node already there (a fuzzy snapshot
    /// may hold a path twice; the later record wins). The parent must already exist; the node
    /// is linked into its parent's children, and an overwritten node keeps the children
    /// already linked to it. The parent's stat is left as stored — a snapshot carries it.
    pub fn restore_node(&mut self, path: &str, node: Node) -> Result<(), RestoreError> {
        if !valid_path(path) {
            return Err(RestoreError::BadPath(path.to_owned()));
        }
        let parent = match parent_of(path) {
            None => None,
            Some(p) => match self.arena.resolve(p) {
                Some(id) => Some(id),
                None => return Err(RestoreError::NoParent(path.to_owned())),
            },
        };
        self.restore_under(parent, path, node);
        Ok(())
    }

    /// A restorer: `restore_node` for nodes that come parents-first and depth-first, as
    /// snapshots hold them, finding each parent without a lookup.
    pub fn restorer<'p>(&mut self) -> Restorer<'_, 'p> {
        Restorer {
            tree: self,
            path: "",
            chain: Vec::new(),
        }
    }

    /// `restore_node` with the parent's record found (`None`: the node is the root).
    fn restore_under(&mut self, parent: Option<u32>, path: &str, node: Node) -> u32 {
        let acl = self.acl_id(node.acl.clone());
        let new = NewRec {
            name: child_name(path),
            data: node.data,
            acl,
            czxid: node.czxid,
            mzxid: node.mzxid,
            pzxid: node.pzxid,
            ctime: node.ctime,
            mtime: node.mtime,
            version: node.version,
            cversion: node.cversion,
            aversion: node.aversion,
            has_owner: node.ephemeral_owner != 0,
        };
        let new_len = node.data_len();
        let (id, added) = match parent {
            None => (ROOT, false),
            Some(p) => self.arena.find_or_add(p, &new),
        };
        if !added {
            // Overwrite: undo what the old contents counted.
            let old = self.node_ref(id);
            let (old_len, old_owner) = (old.data_len(), old.ephemeral_owner);
            let old_acl = self.arena.rec(id).acl;
            self.approximate_data_size -= (path.len() + old_len) as u64;
            self.unregister_owner(path, old_owner);
            self.owners.remove(&id);
            self.arena.overwrite(id, &new);
            self.acls.release(old_acl);
        }
        self.approximate_data_size += (path.len() + new_len) as u64;
        if node.ephemeral_owner != 0 {
            self.owners.insert(id, node.ephemeral_owner);
            self.register_owner(path, node.ephemeral_owner);
        }
        if let Some(q) = quota_target(path) {
            self.quota_paths.insert(q.to_owned());
        }
        id
    }

    pub(super) fn register_owner(&mut self, path: &str, owner: i64) {
        match owner_kind(owner) {
            OwnerKind::Session(s) => {
                self.ephemerals
                    .entry(s)
                    .or_default()
                    .insert(path.to_owned());
            }
            OwnerKind::Container => {
                self.containers.insert(path.to_owned());
            }
            OwnerKind::Ttl(_) => {
                self.ttls.insert(path.to_owned());
            }
            OwnerKind::Persistent => {}
        }
    }

    pub(super) fn unregister_owner(&mut self, path: &str, owner: i64) {
        match owner_kind(owner) {
            OwnerKind::Session(s) => {
                if let Some(set) = self.ephemerals.get_mut(&s) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&s);
                    }
                }
            }
            OwnerKind::Container => {
                self.containers.remove(path);
            }
            OwnerKind::Ttl(_) => {
                self.ttls.remove(path);
            }
            OwnerKind::Persistent => {}
        }
    }

    /// Every path, parents before children, siblings in name order (see
    /// `for_each_preorder`).
    pub fn nodes_preorder(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.arena.len());
        self.for_each_preorder(|p, _| out.push(p.to_owned()));
        out
    }

    /// An order-independent digest of every node's path, data (null differs from empty),
    /// stored stat fields and ACL. Two trees with equal digests hold the same znodes; the
    /// digest is a fixed function (FNV-1a 64 per node, mixed and summed) so it is equal across
    /// processes, machines and runs.
    pub fn digest(&self) -> u64 {
        let mut sum = 0u64;
        self.for_each_preorder(|path, n| sum = sum.wrapping_add(mix64(node_hash(path, &n))));
        sum
    }
}

/// FNV-1a 64 over the fields of one node, each length-prefixed so that field boundaries
/// cannot shift between nodes.
fn node_hash(path: &str, n: &NodeRef) -> u64 {
    let mut h = Fnv1a64::new();
    h.bytes_prefixed(path.as_bytes());
    match n.data {
        None => h.bytes(&[0]),
        Some(d) => {
            h.bytes(&[1]);
            h.bytes_prefixed(d);
        }
    }
    for v in [
        n.czxid,
        n.mzxid,
        n.pzxid,
        n.ctime,
        n.mtime,
        n.ephemeral_owner,
    ] {
        h.bytes(&v.to_be_bytes());
    }
    for v in [n.version, n.cversion, n.aversion] {
        h.bytes(&v.to_be_bytes());
    }
    h.bytes(&(n.acl.len() as u64).to_be_bytes());
    for a in n.acl.iter() {
        h.bytes(&a.perms.to_be_bytes());
        h.bytes_prefixed(a.id.scheme.as_bytes());
        h.bytes_prefixed(a.id.id.as_bytes());
    }
    h.0
}

/// SplitMix64's finalizer: spreads FNV's weak high bits before the per-node hashes are summed.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Fnv1a64(u64);

impl Fnv1a64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Fnv1a64(Self::OFFSET_BASIS)
    }

    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= x as u64;
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    fn bytes_prefixed(&mut self, b: &[u8]) {
        self.bytes(&(b.len() as u64).to_be_bytes());
        self.bytes(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::consts::{CONTAINER_EPHEMERAL_OWNER, TTL_EPHEMERAL_OWNER_MASK};
    use crate::proto::txn::{Txn, TxnHeader};
    use crate::proto::{open_acl_unsafe, Acl};
    use std::sync::Arc;

    fn create(t: &mut DataTree, zxid: i64, path: &str, data: Option<&[u8]>, owner: i64) {
        let pcv = t.get(parent_of(path).unwrap()).unwrap().cversion + 1;
        let hdr = TxnHeader {
            client_id: 1,
            cxid: 1,
            zxid,
            time_ms: 1000 + zxid,
        };
        let txn = Txn::Create {
            path: path.into(),
            data: data.map(|d| d.to_vec()),
            acl: if path.ends_with("secret") {
                vec![Acl::new(1, "digest", "u:x")]
            } else {
                open_acl_unsafe()
            },
            ephemeral_owner: owner,
            parent_cversion: pcv,
        };
        let r = t.apply(&hdr, &txn, &mut vec![]);
        assert!(matches!(r, super::super::OpResult::Created { .. }), "{r:?}");
    }

    fn sample() -> DataTree {
        let mut t = DataTree::new();
        create(&mut t, 1, "/a", Some(b"x"), 0);
        create(&mut t, 2, "/a/e", None, 0x77);
        create(&mut t, 3, "/c", Some(b""), CONTAINER_EPHEMERAL_OWNER);
        create(&mut t, 4, "/t", None, TTL_EPHEMERAL_OWNER_MASK | 100);
        create(&mut t, 5, "/zookeeper/quota/a", None, 0);
        create(
            &mut t,
            6,
            "/zookeeper/quota/a/zookeeper_limits",
            Some(b"count=5,bytes=-1"),
            0,
        );
        create(
            &mut t,
            7,
            "/zookeeper/quota/a/zookeeper_stats",
            Some(b""),
            0,
        );
        create(&mut t, 8, "/a/secret", Some(b"s"), 0);
        t
    }

    /// Copies `t` node by node, parents first, as a snapshot load would.
    fn copy(t: &DataTree) -> DataTree {
        let mut u = DataTree::new();
        for p in t.nodes_preorder() {
            let mut n = t.get(&p).unwrap().to_node();
            n.acl = Arc::from(n.acl.to_vec());
            u.restore_node(&p, n).unwrap();
        }
        u
    }

    #[test]
    fn restore_rebuilds_every_index() {
        let t = sample();
        let u = copy(&t);
        assert_eq!(t.digest(), u.digest());
        assert_eq!(t.node_count(), u.node_count());
        assert_eq!(t.approximate_data_size(), u.approximate_data_size());
        assert_eq!(u.ephemerals_of(0x77).unwrap().len(), 1);
        assert_eq!(t.containers, u.containers);
        assert_eq!(t.ttls, u.ttls);
        assert_eq!(t.quota_paths, u.quota_paths);
        assert!(u.quota_paths.contains("/a"));
        for p in t.nodes_preorder() {
            assert_eq!(
                t.get(&p).unwrap().children(),
                u.get(&p).unwrap().children(),
                "{p}"
            );
        }
        // ACL lists are shared again after the load.
        assert!(Arc::ptr_eq(
            u.get("/a").unwrap().acl,
            u.get("/c").unwrap().acl
        ));
    }

    #[test]
    fn restorer_places_nodes_in_any_parents_first_order() {
        let t = sample();
        let preorder = t.nodes_preorder();
        // Breadth-first: parents still come first, but the previous node is rarely the
        // parent or one of its ancestors, so the restorer has to look parents up.
        let mut bfs = preorder.clone();
        bfs.sort_by_key(|p| if p == "/" { 0 } else { p.matches('/').count() });
        for order in [&preorder, &bfs] {
            let mut u = DataTree::new();
            let mut r = u.restorer();
            for p in order.iter() {
                r.put(p, t.get(p).unwrap().to_node()).unwrap();
            }
            let n = t.get("/a").unwrap().to_node();
            assert_eq!(
                r.put("/nope/x", n.clone()),
                Err(RestoreError::NoParent("/nope/x".into()))
            );
            assert_eq!(
                r.put("/a//x", n),
                Err(RestoreError::BadPath("/a//x".into()))
            );
            assert_eq!(u.digest(), t.digest());
            assert_eq!(u.node_count(), t.node_count());
            assert_eq!(u.approximate_data_size(), t.approximate_data_size());
        }
    }

    #[test]
    fn overwrite_keeps_children_and_fixes_indexes() {
        let t = sample();
        let mut u = copy(&t);
        let mut n = t.get("/a/e").unwrap().to_node();
        n.ephemeral_owner = 0;
        n.data = Some(b"longer");
        let before = u.approximate_data_size();
        u.restore_node("/a/e", n).unwrap();
        assert!(u.ephemerals_of(0x77).is_none());
        assert_eq!(u.approximate_data_size(), before + 6);
        let a = t.get("/a").unwrap().to_node();
        u.restore_node("/a", a).unwrap();
        assert_eq!(u.get("/a").unwrap().num_children, 2);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let t = DataTree::new();
        let mut u = DataTree::new();
        let n = t.get("/zookeeper").unwrap().to_node();
        for p in ["", "a", "/a/", "//a", "/a//b"] {
            assert_eq!(
                u.restore_node(p, n.clone()),
                Err(RestoreError::BadPath(p.into()))
            );
        }
        assert_eq!(
            u.restore_node("/x/y", n),
            Err(RestoreError::NoParent("/x/y".into()))
        );
    }

    #[test]
    fn digest_sees_every_field() {
        let t = sample();
        let d = t.digest();
        let tweaks: [fn(&mut Node); 9] = [
            |n| n.data = None,
            |n| n.data = Some(&[]),
            |n| n.version += 1,
            |n| n.cversion += 1,
            |n| n.aversion += 1,
            |n| n.pzxid += 1,
            |n| n.ctime += 1,
            |n| n.ephemeral_owner = 5,
            |n| n.acl = Arc::from(vec![Acl::new(31, "world", "anyone2")]),
        ];
        for (i, f) in tweaks.iter().enumerate() {
            let mut u = copy(&t);
            let mut n = t.get("/a").unwrap().to_node();
            f(&mut n);
            u.restore_node("/a", n).unwrap();
            assert_ne!(u.digest(), d, "tweak {i}");
        }
        assert_eq!(copy(&t).digest(), d);
    }

    #[test]
    fn preorder_puts_parents_first() {
        let t = sample();
        let order = t.nodes_preorder();
        assert_eq!(order.len(), t.node_count() - 1);
        assert_eq!(order[0], "/");
        for (i, p) in order.iter().enumerate().skip(1) {
            let parent = parent_of(p).unwrap();
            assert!(order[..i].iter().any(|q| q == parent), "{p}");
        }
    }
}
