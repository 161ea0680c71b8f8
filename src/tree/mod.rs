//! The DataTree: znodes with data, Stat and ACL; ephemeral, container and TTL bookkeeping;
//! sequential counters (the parent's stored cversion); quotas under /zookeeper/quota.
//! `apply` turns one committed txn into changes plus the watch triggers they cause; it is
//! deterministic and has no clock, I/O or session table, so every replica that applies the
//! same txns holds the same tree. Corresponds to Apache's DataTree and DataNode.

pub mod acl;
pub mod arena;
pub mod quota;
pub mod restore;
pub mod walk;

use crate::proto::consts::{event, owner_kind, OwnerKind};
use crate::proto::txn::{Txn, TxnHeader};
use crate::proto::{open_acl_unsafe, read_acl_unsafe, Acl, Code, Stat};
use arena::{Arena, NewRec, ROOT};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

pub const ZOOKEEPER_PATH: &str = "/zookeeper";
pub const QUOTA_PATH: &str = "/zookeeper/quota";
pub const CONFIG_PATH: &str = "/zookeeper/config";

/// An interned ACL list: nearly every znode shares one, so nodes hold its index in the
/// tree's table and readers get the shared copy.
pub type AclRef = Arc<[Acl]>;

/// A znode as stored in a snapshot, before it is placed in a tree (see
/// `DataTree::restore_node`). The stored cversion counts child creations only.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub data: Option<&'a [u8]>,
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
}

impl Node<'_> {
    pub fn data_len(&self) -> usize {
        self.data.map_or(0, |d| d.len())
    }
}

/// A read-only view of one znode in the tree: its fields copied out, its data and ACL
/// borrowed. The stored cversion counts child creations only (see `stat`).
#[derive(Clone, Copy)]
pub struct NodeRef<'a> {
    tree: &'a DataTree,
    id: u32,
    pub data: Option<&'a [u8]>,
    pub acl: &'a AclRef,
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub num_children: usize,
}

impl std::fmt::Debug for NodeRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRef")
            .field("id", &self.id)
            .field("data", &self.data)
            .field("stat", &self.stat())
            .finish()
    }
}

impl<'a> NodeRef<'a> {
    pub fn data_len(&self) -> usize {
        self.data.map_or(0, |d| d.len())
    }

    /// The children's names in name order (getChildren's order).
    pub fn children(&self) -> Vec<&'a str> {
        let mut v: Vec<&'a str> = self.children_unordered().collect();
        v.sort_unstable();
        v
    }

    /// The children's names, newest first.
    pub fn children_unordered(&self) -> impl Iterator<Item = &'a str> + 'a {
        let arena = &self.tree.arena;
        arena.children(self.id).map(move |c| arena.rec(c).name())
    }

    /// An owned copy, as a snapshot would store it.
    pub fn to_node(&self) -> Node<'a> {
        Node {
            data: self.data,
            acl: self.acl.clone(),
            czxid: self.czxid,
            mzxid: self.mzxid,
            pzxid: self.pzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion,
            aversion: self.aversion,
            ephemeral_owner: self.ephemeral_owner,
        }
    }

    /// The client-visible Stat (DataNode.copyStat): cversion counts creations and deletions,
    /// and container and TTL nodes show ephemeralOwner 0.
    pub fn stat(&self) -> Stat {
        let n = self.num_children as i32;
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

/// The interned ACL lists, counted by the nodes that use them; a list goes when its last
/// node does.
#[derive(Default)]
struct AclTable {
    lists: Vec<AclRef>,
    users: Vec<u32>,
    ids: HashMap<AclRef, u32>,
    free: Vec<u32>,
    /// The `Arc` last acquired and its id: a snapshot load hands the same `Arc` for runs of
    /// nodes, and comparing pointers skips hashing the list. Cleared when that id is freed.
    last: Option<(AclRef, u32)>,
}

impl AclTable {
    /// The id of `acl` with one more user.
    fn acquire(&mut self, acl: AclRef) -> u32 {
        if let Some((a, id)) = &self.last {
            if Arc::ptr_eq(a, &acl) {
                self.users[*id as usize] += 1;
                return *id;
            }
        }
        if let Some(&id) = self.ids.get(&acl) {
            self.users[id as usize] += 1;
            self.last = Some((acl, id));
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.lists[id as usize] = acl.clone();
                self.users[id as usize] = 1;
                id
            }
            None => {
                self.lists.push(acl.clone());
                self.users.push(1);
                (self.lists.len() - 1) as u32
            }
        };
        self.ids.insert(acl.clone(), id);
        self.last = Some((acl, id));
        id
    }

    /// `acquire` for a list not yet in an `Arc` (a create's): allocates only for a new list.
    fn acquire_slice(&mut self, acl: &[Acl]) -> u32 {
        if let Some((a, id)) = &self.last {
            if **a == *acl {
                self.users[*id as usize] += 1;
                return *id;
            }
        }
        match self.ids.get_key_value(acl) {
            Some((a, &id)) => {
                self.users[id as usize] += 1;
                self.last = Some((a.clone(), id));
                id
            }
            None => self.acquire(Arc::from(acl)),
        }
    }

    fn release(&mut self, id: u32) {
        let u = &mut self.users[id as usize];
        *u -= 1;
        if *u == 0 {
            let acl = std::mem::replace(&mut self.lists[id as usize], Arc::from(Vec::new()));
            self.ids.remove(&acl);
            self.free.push(id);
            if self.last.as_ref().is_some_and(|(_, l)| *l == id) {
                self.last = None;
            }
        }
    }

    fn get(&self, id: u32) -> &AclRef {
        &self.lists[id as usize]
    }
}

pub struct DataTree {
    arena: Arena,
    acls: AclTable,
    /// Record -> ephemeralOwner, for the nodes where it is not 0 (ephemeral, container, TTL).
    owners: HashMap<u32, i64>,
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
    /// The fuzzy-snapshot walk in progress, if any (see walk.rs).
    walk: std::cell::RefCell<walk::Walk>,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`.
    pub fn new() -> DataTree {
        let mut acls = AclTable::default();
        let open = acls.acquire(open_acl_unsafe().into());
        let special = |name, acl| NewRec {
            name,
            data: Some(&[]),
            acl,
            czxid: 0,
            mzxid: 0,
            pzxid: 0,
            ctime: 0,
            mtime: 0,
            version: 0,
            cversion: 0,
            aversion: 0,
            has_owner: false,
        };
        let arena = Arena::new(&special("", open));
        let mut t = DataTree {
            arena,
            acls,
            owners: HashMap::new(),
            ephemerals: HashMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            quota_paths: BTreeSet::new(),
            approximate_data_size: 1,
            quota_warnings: Vec::new(),
            walk: Default::default(),
        };
        let acl = t.acl_id(open_acl_unsafe().into());
        t.add_special("/", special("zookeeper", acl));
        let acl = t.acl_id(open_acl_unsafe().into());
        t.add_special(ZOOKEEPER_PATH, special("quota", acl));
        let mut config = special("config", t.acl_id(read_acl_unsafe().into()));
        config.aversion = -1;
        t.add_special(ZOOKEEPER_PATH, config);
        t
    }

    /// Takes a user of an ACL list (interning it) for a node about to hold it.
    fn acl_id(&mut self, acl: AclRef) -> u32 {
        self.acls.acquire(acl)
    }

    /// Adds one of the nodes a fresh tree starts with under the existing node at
    /// `parent_path`, counting its size; the caller has taken the ACL user in `new.acl`.
    fn add_special(&mut self, parent_path: &str, new: NewRec) {
        let parent = self.arena.resolve(parent_path).expect("parent exists");
        let path_len = if parent == ROOT { 0 } else { parent_path.len() } + 1 + new.name.len();
        self.approximate_data_size += (path_len + new.data.map_or(0, |d| d.len())) as u64;
        self.arena.add_child(parent, &new);
    }

    fn node_ref(&self, id: u32) -> NodeRef<'_> {
        let r = self.arena.rec(id);
        NodeRef {
            tree: self,
            id,
            data: r.data(),
            acl: self.acls.get(r.acl),
            czxid: r.czxid,
            mzxid: r.mzxid,
            pzxid: r.pzxid,
            ctime: r.ctime,
            mtime: r.mtime,
            version: r.version,
            cversion: r.cversion,
            aversion: r.aversion,
            ephemeral_owner: if r.has_owner() {
                self.owners.get(&id).copied().unwrap_or(0)
            } else {
                0
            },
            num_children: r.num_children as usize,
        }
    }

    /// The node at `path` ("" is the root, as in ZooKeeper).
    pub fn get(&self, path: &str) -> Option<NodeRef<'_>> {
        self.arena.resolve(path).map(|id| self.node_ref(id))
    }

    /// Node count as ZooKeeper reports it: the root is also stored under the alias "".
    pub fn node_count(&self) -> usize {
        self.arena.len() + 1
    }

    pub fn approximate_data_size(&self) -> u64 {
        // The "" alias adds its data length (0) and no path bytes; the root's "/" is counted.
        self.approximate_data_size
    }

    /// The shared copy of `acl` if some node uses that list.
    pub fn shared_acl(&self, acl: &[Acl]) -> Option<AclRef> {
        self.acls.ids.get_key_value(acl).map(|(a, _)| a.clone())
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
        let Some(id) = self.arena.resolve(path) else {
            return 0;
        };
        let mut n = 0;
        let mut stack = vec![id];
        while let Some(p) = stack.pop() {
            for c in self.arena.children(p) {
                n += 1;
                stack.push(c);
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
                acl,
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
            Txn::SetAcl { path, acl, version } => match self.arena.resolve(path) {
                None => Err(Code::NoNode),
                Some(id) => {
                    let new = self.acl_id(acl.as_slice().into());
                    let r = self.arena.rec_mut(id);
                    let old = std::mem::replace(&mut r.acl, new);
                    r.aversion = *version;
                    self.acls.release(old);
                    Ok(OpResult::AclSet {
                        stat: self.node_ref(id).stat(),
                    })
                }
            },
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
        acl: &[Acl],
        ephemeral_owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time_ms: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<OpResult, Code> {
        let parent_path = parent_of(path).ok_or(Code::BadArguments)?;
        let name = child_name(path);
        let parent = self.arena.resolve(parent_path).ok_or(Code::NoNode)?;
        if name.is_empty() {
            return Err(Code::BadArguments);
        }
        let acl = self.acls.acquire_slice(acl);
        let new = NewRec {
            name,
            data,
            acl,
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time_ms,
            mtime: time_ms,
            version: 0,
            cversion: 0,
            aversion: 0,
            has_owner: ephemeral_owner != 0,
        };
        let (id, added) = self.arena.find_or_add(parent, &new);
        let pr = self.arena.rec_mut(parent);
        if !added {
            // Only replay over a fuzzy snapshot gets here (prep rejects such a create): the
            // snapshot caught the node, but maybe not its parent's counters, which the txn
            // carries absolutely (as Apache's DataTree.setCversionPzxid does).
            if parent_cversion > pr.cversion {
                pr.cversion = parent_cversion;
                pr.pzxid = zxid;
            }
            self.acls.release(acl);
            return Err(Code::NodeExists);
        }
        pr.cversion = parent_cversion;
        pr.pzxid = zxid;
        let parent_acl = pr.acl;
        self.approximate_data_size += (path.len() + data.map_or(0, |d| d.len())) as u64;
        if ephemeral_owner != 0 {
            self.owners.insert(id, ephemeral_owner);
        }
        let stat = self.node_ref(id).stat();
        let len = data.map_or(0, |d| d.len());
        self.register_owner(path, ephemeral_owner);
        self.quota_on_create(parent_path, name);
        self.update_quota_usage(path, 1, len as i64);
        triggers.push(Trigger {
            path: path.to_owned(),
            event_type: event::NODE_CREATED,
            acl: self.acls.get(acl).clone(),
        });
        triggers.push(Trigger {
            path: parent_path.to_owned(),
            event_type: event::NODE_CHILDREN_CHANGED,
            acl: self.acls.get(parent_acl).clone(),
        });
        Ok(OpResult::Created {
            path: path.to_owned(),
            stat,
        })
    }

    /// Unlinks the childless node `id` at `path` and undoes everything it counted in: its
    /// ACL user, owner, size and any walk positioned on it. Returns its ACL and owner.
    fn remove_rec(&mut self, id: u32, path: &str) -> (AclRef, i64) {
        let owner = if self.arena.rec(id).has_owner() {
            self.owners.remove(&id).unwrap_or(0)
        } else {
            0
        };
        let old = self.arena.remove(id);
        self.walk.get_mut().removed(id, old.next);
        self.approximate_data_size -= (path.len() + old.data_len()) as u64;
        let acl = self.acls.get(old.acl).clone();
        self.acls.release(old.acl);
        self.unregister_owner(path, owner);
        (acl, owner)
    }

    fn delete_node(
        &mut self,
        path: &str,
        zxid: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<(), Code> {
        let parent_path = parent_of(path).ok_or(Code::BadArguments)?;
        let id = self.arena.resolve(path).ok_or(Code::NoNode)?;
        if self.arena.rec(id).num_children > 0 {
            return Err(Code::NotEmpty);
        }
        let parent = self.arena.rec(id).parent;
        let data_len = self.arena.rec(id).data_len() as i64;
        let (acl, _) = self.remove_rec(id, path);
        let pr = self.arena.rec_mut(parent);
        if zxid > pr.pzxid {
            pr.pzxid = zxid;
        }
        let parent_acl = self.acls.get(pr.acl).clone();
        let name = child_name(path);
        self.quota_on_delete(parent_path, name);
        self.update_quota_usage(path, -1, -data_len);
        triggers.push(Trigger {
            path: path.to_owned(),
            event_type: event::NODE_DELETED,
            acl,
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
        let id = self.arena.resolve(path).ok_or(Code::NoNode)?;
        let n = self.arena.rec_mut(id);
        let old_len = n.data_len() as i64;
        n.set_data(data);
        n.version = version;
        n.mzxid = zxid;
        n.mtime = time_ms;
        let new_len = n.data_len() as i64;
        let node = self.node_ref(id);
        let (stat, acl) = (node.stat(), node.acl.clone());
        self.approximate_data_size = (self.approximate_data_size as i64 + new_len - old_len) as u64;
        self.update_quota_usage(path, 0, new_len - old_len);
        triggers.push(Trigger {
            path: path.to_owned(),
            event_type: event::NODE_DATA_CHANGED,
            acl,
        });
        Ok(OpResult::DataSet { stat })
    }

    /// Replaces the data of the node at `path` without touching its stat (the quota stats
    /// node, which ZooKeeper updates without a version change). False if there is none.
    fn replace_data(&mut self, path: &str, data: &[u8]) -> bool {
        let Some(id) = self.arena.resolve(path) else {
            return false;
        };
        let n = self.arena.rec_mut(id);
        let old_len = n.data_len() as i64;
        n.set_data(Some(data));
        self.approximate_data_size =
            (self.approximate_data_size as i64 + data.len() as i64 - old_len) as u64;
        true
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

    /// Calls `f` with every node's path and view, parents before children, siblings in name
    /// order: the order snapshots are written in and dumps are printed in.
    pub fn for_each_preorder(&self, mut f: impl FnMut(&str, NodeRef<'_>)) {
        f("/", self.node_ref(ROOT));
        // (path of the parent, its children sorted by name, next index)
        type Level<'t> = (String, Vec<(&'t str, u32)>, usize);
        let mut stack: Vec<Level> = Vec::new();
        stack.push(("/".to_owned(), self.sorted_children(ROOT), 0));
        while let Some((parent, kids, i)) = stack.last_mut() {
            let Some(&(name, id)) = kids.get(*i) else {
                stack.pop();
                continue;
            };
            *i += 1;
            let path = join(parent, name);
            f(&path, self.node_ref(id));
            if self.arena.rec(id).num_children > 0 {
                let kids = self.sorted_children(id);
                stack.push((path, kids, 0));
            }
        }
    }

    fn sorted_children(&self, id: u32) -> Vec<(&str, u32)> {
        let mut v: Vec<(&str, u32)> = self
            .arena
            .children(id)
            .map(|c| (self.arena.rec(c).name(), c))
            .collect();
        v.sort_unstable();
        v
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
            t.get("/a").unwrap().acl,
            t.get("/b").unwrap().acl
        ));
    }
}
