//! The DataTree: znodes with data, Stat and ACL; ephemeral, container and TTL bookkeeping;
//! sequential counters (the parent's stored cversion); quotas under /zookeeper/quota.
//! `apply` turns one committed txn into changes plus the watch triggers they cause; it is
//! deterministic and has no clock, I/O or session table, so every replica that applies the
//! same txns holds the same tree. Corresponds to Apache's DataTree and DataNode.

pub mod acl;
pub mod quota;
pub mod restore;
pub mod shards;
pub mod walk;

use crate::proto::consts::{event, owner_kind, OwnerKind};
use crate::proto::txn::{Txn, TxnHeader};
use crate::proto::{open_acl_unsafe, read_acl_unsafe, Acl, Code, Stat};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

pub const ZOOKEEPER_PATH: &str = "/zookeeper";
pub const QUOTA_PATH: &str = "/zookeeper/quota";
pub const CONFIG_PATH: &str = "/zookeeper/config";

/// An interned ACL list: nearly every znode shares one, so nodes hold a pointer.
pub type AclRef = Arc<[Acl]>;

/// One znode. The stored cversion counts child creations only (see `stat`).
#[derive(Debug, Clone)]
pub struct Node {
    pub data: Option<Box<[u8]>>,
    pub acl: AclRef,
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub children: BTreeSet<Box<str>>,
}

impl Node {
    fn special(acl: AclRef) -> Node {
        Node {
            data: Some(Box::new([])),
            acl,
            czxid: 0,
            mzxid: 0,
            pzxid: 0,
            ctime: 0,
            mtime: 0,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            children: BTreeSet::new(),
        }
    }

    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.len())
    }

    /// The client-visible Stat (DataNode.copyStat): cversion counts creations and deletions,
    /// and container and TTL nodes show ephemeralOwner 0.
    pub fn stat(&self) -> Stat {
        let n = self.children.len() as i32;
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion.wrapping_mul(2).wrapping_sub(n),
            aversion: self.aversion,
            ephemeral_owner: match owner_kind(self.ephemeral_owner) {
                OwnerKind::Session(s) => s,
                _ => 0,
            },
            data_length: self.data_len() as i32,
            num_children: n,
            pzxid: self.pzxid,
        }
    }
}

/// A watch trigger produced by apply: the server's watch manager turns it into notifications
/// for the watchers allowed to read `acl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub path: String,
    pub event_type: i32,
    pub acl: AclRef,
}

/// The result of one applied txn (or one op of a multi).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    Created { path: String, stat: Stat },
    Deleted,
    DataSet { stat: Stat },
    AclSet { stat: Stat },
    Checked,
    SessionCreated,
    SessionClosed,
    Error(Code),
    Multi(Vec<OpResult>),
}

/// The parent path of `path` ("/a/b" -> "/a", "/a" -> "/"). `None` for "/" and paths with no
/// slash.
pub fn parent_of(path: &str) -> Option<&str> {
    let i = path.rfind('/')?;
    if path == "/" {
        None
    } else if i == 0 {
        Some("/")
    } else {
        Some(&path[..i])
    }
}

fn child_name(path: &str) -> &str {
    &path[path.rfind('/').map_or(0, |i| i + 1)..]
}

pub struct DataTree {
    nodes: shards::ShardedMap<Node>,
    acl_cache: HashMap<Arc<[Acl]>, ()>,
    /// Session id -> paths of its ephemerals.
    ephemerals: HashMap<i64, BTreeSet<String>>,
    pub containers: BTreeSet<String>,
    pub ttls: BTreeSet<String>,
    /// Paths that have a quota (a zookeeper_limits node under /zookeeper/quota).
    quota_paths: BTreeSet<String>,
    /// Σ(path length + data length) over all nodes, as ZooKeeper's approximateDataSize.
    approximate_data_size: u64,
    /// Soft-quota warnings produced by the last apply, for the caller to log.
    pub quota_warnings: Vec<String>,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`.
    pub fn new() -> DataTree {
        let mut t = DataTree {
            nodes: shards::ShardedMap::default(),
            acl_cache: HashMap::new(),
            ephemerals: HashMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            quota_paths: BTreeSet::new(),
            approximate_data_size: 0,
            quota_warnings: Vec::new(),
        };
        let open = t.intern(open_acl_unsafe());
        let read = t.intern(read_acl_unsafe());
        let mut root = Node::special(open.clone());
        root.children.insert("zookeeper".into());
        let mut zk = Node::special(open.clone());
        zk.children.insert("quota".into());
        zk.children.insert("config".into());
        let mut config = Node::special(read);
        config.aversion = -1;
        t.insert_node("/".into(), root);
        t.insert_node(ZOOKEEPER_PATH.into(), zk);
        t.insert_node(QUOTA_PATH.into(), Node::special(open));
        t.insert_node(CONFIG_PATH.into(), config);
        t
    }

    fn insert_node(&mut self, path: String, node: Node) {
        self.approximate_data_size += (path.len() + node.data_len()) as u64;
        self.nodes.insert(path, node);
    }

    /// Returns the shared copy of an ACL list.
    pub fn intern(&mut self, acl: Vec<Acl>) -> AclRef {
        self.intern_ref(acl.into())
    }

    /// The shared copy of an ACL list that is already in an `Arc`.
    pub fn intern_ref(&mut self, acl: AclRef) -> AclRef {
        if let Some((k, _)) = self.acl_cache.get_key_value(&acl) {
            return k.clone();
        }
        self.acl_cache.insert(acl.clone(), ());
        acl
    }

    /// Drops interned ACL lists no node uses any more.
    pub fn purge_unused_acls(&mut self) {
        self.acl_cache.retain(|k, _| Arc::strong_count(k) > 1);
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        if path.is_empty() {
            return self.nodes.get("/");
        }
        self.nodes.get(path)
    }

    /// Node count as ZooKeeper reports it: the root is also stored under the alias "".
    pub fn node_count(&self) -> usize {
        self.nodes.len() + 1
    }

    pub fn approximate_data_size(&self) -> u64 {
        // The "" alias adds its data length (0) and no path bytes.
        self.approximate_data_size
    }

    pub fn ephemerals_of(&self, session_id: i64) -> Option<&BTreeSet<String>> {
        self.ephemerals.get(&session_id)
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    pub fn sessions_with_ephemerals(&self) -> impl Iterator<Item = (&i64, &BTreeSet<String>)> {
        self.ephemerals.iter()
    }

    /// All descendants of `path`, excluding the node itself.
    pub fn descendant_count(&self, path: &str) -> usize {
        let mut n = 0;
        let mut stack = vec![path.to_owned()];
        while let Some(p) = stack.pop() {
            if let Some(node) = self.nodes.get(&p) {
                for c in &node.children {
                    n += 1;
                    stack.push(join(&p, c));
                }
            }
        }
        n
    }

    /// Applies one committed txn. Replay of a valid log never fails; an error here means the
    /// txn does not fit the tree (a replica diverged), reported as the op's result.
    pub fn apply(&mut self, hdr: &TxnHeader, txn: &Txn, triggers: &mut Vec<Trigger>) -> OpResult {
        self.quota_warnings.clear();
        match txn {
            Txn::Multi(ops) => {
                let results = ops
                    .iter()
                    .map(|t| self.apply_one(hdr, t, triggers))
                    .collect();
                OpResult::Multi(results)
            }
            t => self.apply_one(hdr, t, triggers),
        }
    }

    fn apply_one(&mut self, hdr: &TxnHeader, txn: &Txn, triggers: &mut Vec<Trigger>) -> OpResult {
        let res = match txn {
            Txn::CreateSession { .. } => Ok(OpResult::SessionCreated),
            Txn::CloseSession => {
                self.kill_session(hdr.client_id, hdr.zxid, triggers);
                Ok(OpResult::SessionClosed)
            }
            Txn::Create {
                path,
                data,
                acl,
                ephemeral_owner,
                parent_cversion,
            } => self.create_node(
                path,
                data.as_deref(),
                acl.clone(),
                *ephemeral_owner,
                *parent_cversion,
                hdr.zxid,
                hdr.time_ms,
                triggers,
            ),
            Txn::Delete { path } | Txn::DeleteContainer { path } => self
                .delete_node(path, hdr.zxid, triggers)
                .map(|_| OpResult::Deleted),
            Txn::SetData {
                path,
                data,
                version,
            } => self.set_data(
                path,
                data.as_deref(),
                *version,
                hdr.zxid,
                hdr.time_ms,
                triggers,
            ),
            Txn::SetAcl { path, acl, version } => {
                let acl = self.intern(acl.clone());
                match self.nodes.get_mut(path.as_str()) {
                    None => Err(Code::NoNode),
                    Some(n) => {
                        n.acl = acl;
                        n.aversion = *version;
                        Ok(OpResult::AclSet { stat: n.stat() })
                    }
                }
            }
            Txn::Check { .. } => Ok(OpResult::Checked),
            Txn::Error { err } => Ok(OpResult::Error(
                Code::from_code(*err).unwrap_or(Code::RuntimeInconsistency),
            )),
            Txn::Multi(_) => Err(Code::MarshallingError),
        };
        res.unwrap_or_else(OpResult::Error)
    }

    #[allow(clippy::too_many_arguments)]
    fn create_node(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: Vec<Acl>,
        ephemeral_owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time_ms: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<OpResult, Code> {
        let parent_path = parent_of(path).ok_or(Code::BadArguments)?;
        if self.nodes.contains_key(path) {
            // Only replay over a fuzzy snapshot gets here (prep rejects such a create): the
            // snapshot caught the node, but maybe not its parent's counters, which the txn
            // carries absolutely (as Apache's DataTree.setCversionPzxid does).
            if let Some(parent) = self.nodes.get_mut(parent_path) {
                if parent_cversion > parent.cversion {
                    parent.cversion = parent_cversion;
                    parent.pzxid = zxid;
                }
            }
            return Err(Code::NodeExists);
        }
        let acl = self.intern(acl);
        let name = child_name(path);
        let parent = self.nodes.get_mut(parent_path).ok_or(Code::NoNode)?;
        parent.children.insert(name.into());
        parent.cversion = parent_cversion;
        parent.pzxid = zxid;
        let parent_acl = parent.acl.clone();
        let node = Node {
            data: data.map(|d| d.into()),
            acl: acl.clone(),
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time_ms,
            mtime: time_ms,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner,
            children: BTreeSet::new(),
        };
        let stat = node.stat();
        let len = node.data_len();
        self.insert_node(path.to_owned(), node);
        self.register_owner(path, ephemeral_owner);
        self.quota_on_create(parent_path, name);
        self.update_quota_usage(path, 1, len as i64);
        triggers.push(Trigger {
            path: path.to_owned(),
            event_type: event::NODE_CREATED,
            acl,
        });
        triggers.push(Trigger {
            path: parent_path.to_owned(),
            event_type: event::NODE_CHILDREN_CHANGED,
            acl: parent_acl,
        });
        Ok(OpResult::Created {
            path: path.to_owned(),
            stat,
        })
    }

    fn delete_node(
        &mut self,
        path: &str,
        zxid: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<(), Code> {
        let parent_path = parent_of(path).ok_or(Code::BadArguments)?;
        match self.nodes.get(path) {
            None => return Err(Code::NoNode),
            Some(n) if !n.children.is_empty() => return Err(Code::NotEmpty),
            Some(_) => {}
        }
        let node = self.nodes.remove(path).expect("checked above");
        self.approximate_data_size -= (path.len() + node.data_len()) as u64;
        let name = child_name(path);
        let parent_acl = match self.nodes.get_mut(parent_path) {
            Some(parent) => {
                parent.children.remove(name);
                if zxid > parent.pzxid {
                    parent.pzxid = zxid;
                }
                parent.acl.clone()
            }
            None => node.acl.clone(),
        };
        self.unregister_owner(path, node.ephemeral_owner);
        self.quota_on_delete(parent_path, name);
        self.update_quota_usage(path, -1, -(node.data_len() as i64));
        triggers.push(Trigger {
            path: path.to_owned(),
            event_type: event::NODE_DELETED,
            acl: node.acl.clone(),
        });
        triggers.push(Trigger {
            path: parent_path.to_owned(),
            event_type: event::NODE_CHILDREN_CHANGED,
            acl: parent_acl,
        });
        Ok(())
    }

    fn set_data(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        version: i32,
        zxid: i64,
        time_ms: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<OpResult, Code> {
        let n = self.nodes.get_mut(path).ok_or(Code::NoNode)?;
        let old_len = n.data_len() as i64;
        n.data = data.map(|d| d.into());
        n.version = version;
        n.mzxid = zxid;
        n.mtime = time_ms;
        let stat = n.stat();
        let acl = n.acl.clone();
        let new_len = n.data_len() as i64;
        self.approximate_data_size = (self.approximate_data_size as i64 + new_len - old_len) as u64;
        self.update_quota_usage(path, 0, new_len - old_len);
        triggers.push(Trigger {
            path: path.to_owned(),
            event_type: event::NODE_DATA_CHANGED,
            acl,
        });
        Ok(OpResult::DataSet { stat })
    }

    /// Deletes every ephemeral of a closed or expired session, in path order.
    fn kill_session(&mut self, session_id: i64, zxid: i64, triggers: &mut Vec<Trigger>) {
        if let Some(paths) = self.ephemerals.remove(&session_id) {
            for p in paths {
                // An ephemeral has no children, so this cannot fail on a consistent tree.
                let _ = self.delete_node(&p, zxid, triggers);
            }
        }
    }

    /// Every path in the tree, for dumps and digests (unordered).
    pub fn paths(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(zxid: i64) -> TxnHeader {
        TxnHeader {
            client_id: 0x100,
            cxid: 1,
            zxid,
            time_ms: 1000 + zxid,
        }
    }

    fn create(t: &mut DataTree, zxid: i64, path: &str, owner: i64) -> OpResult {
        let parent = parent_of(path).unwrap();
        let pcv = t.get(parent).unwrap().cversion + 1;
        t.apply(
            &hdr(zxid),
            &Txn::Create {
                path: path.into(),
                data: Some(b"hi".to_vec()),
                acl: open_acl_unsafe(),
                ephemeral_owner: owner,
                parent_cversion: pcv,
            },
            &mut vec![],
        )
    }

    #[test]
    fn fresh_tree_matches_zookeeper() {
        let t = DataTree::new();
        assert_eq!(t.node_count(), 5);
        assert_eq!(t.approximate_data_size(), 44);
        assert_eq!(t.get("/").unwrap().stat().cversion, -1);
        assert_eq!(t.get("/zookeeper").unwrap().stat().cversion, -2);
        assert_eq!(t.get(CONFIG_PATH).unwrap().stat().aversion, -1);
        assert_eq!(t.descendant_count("/"), 3);
    }

    #[test]
    fn cversion_and_pzxid_quirks() {
        let mut t = DataTree::new();
        create(&mut t, 1, "/a", 0);
        create(&mut t, 2, "/a/b", 0);
        create(&mut t, 3, "/a/c", 0);
        let mut trig = vec![];
        t.apply(
            &hdr(4),
            &Txn::Delete {
                path: "/a/b".into(),
            },
            &mut trig,
        );
        let s = t.get("/a").unwrap().stat();
        // Two creates and one delete: cversion 3; pzxid is the delete's zxid.
        assert_eq!(s.cversion, 3);
        assert_eq!(s.pzxid, 4);
        assert_eq!(s.num_children, 1);
        assert_eq!(trig[0].event_type, event::NODE_DELETED);
        assert_eq!(trig[1].path, "/a");
    }

    #[test]
    fn close_session_removes_ephemerals() {
        let mut t = DataTree::new();
        create(&mut t, 1, "/e1", 0x55);
        create(&mut t, 2, "/e2", 0x55);
        create(&mut t, 3, "/p", 0);
        assert_eq!(t.ephemeral_count(), 2);
        let mut h = hdr(4);
        h.client_id = 0x55;
        let mut trig = vec![];
        t.apply(&h, &Txn::CloseSession, &mut trig);
        assert!(t.get("/e1").is_none() && t.get("/e2").is_none());
        assert!(t.get("/p").is_some());
        assert_eq!(t.ephemeral_count(), 0);
        assert_eq!(trig.len(), 4);
    }

    #[test]
    fn container_and_ttl_owner_hidden_in_stat() {
        let mut t = DataTree::new();
        create(
            &mut t,
            1,
            "/c",
            crate::proto::consts::CONTAINER_EPHEMERAL_OWNER,
        );
        create(
            &mut t,
            2,
            "/t",
            crate::proto::consts::TTL_EPHEMERAL_OWNER_MASK | 500,
        );
        assert_eq!(t.get("/c").unwrap().stat().ephemeral_owner, 0);
        assert_eq!(t.get("/t").unwrap().stat().ephemeral_owner, 0);
        assert!(t.containers.contains("/c") && t.ttls.contains("/t"));
    }

    #[test]
    fn acl_lists_are_shared() {
        let mut t = DataTree::new();
        create(&mut t, 1, "/a", 0);
        create(&mut t, 2, "/b", 0);
        assert!(Arc::ptr_eq(
            &t.get("/a").unwrap().acl,
            &t.get("/b").unwrap().acl
        ));
    }
}
