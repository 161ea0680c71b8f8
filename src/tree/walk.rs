//! A resumable pre-order walk of the tree, for fuzzy snapshots: the event loop serializes a
//! bounded number of nodes per turn while writes go on between turns. The walk's position
//! (for each open level, the parent's path and the next child to visit) lives in the tree,
//! which moves it along when that child is deleted, so it survives any change between steps.
//! A parent is always emitted before its children; a node created behind the position is
//! missed and one deleted ahead of it is skipped, which is sound because recovery replays
//! every txn after the zxid the walk started at, and apply tolerates replay over such a
//! snapshot (a create of a node already present only advances its parent's counters).
//! One walk runs at a time: starting another abandons the first.

use super::arena::{NONE, ROOT};
use super::{DataTree, NodeRef};

/// The tree's side of a walk.
#[derive(Debug, Default)]
pub(super) struct Walk {
    /// The walk's number (0: none).
    id: u64,
    /// (parent path, next child to visit or NONE) for each open level.
    stack: Vec<(String, u32)>,
    /// Walks started so far, to number the next.
    started: u64,
}

impl Walk {
    /// Record `id`, whose successor in its parent's list was `next`, was removed.
    pub(super) fn removed(&mut self, id: u32, next: u32) {
        for level in &mut self.stack {
            if level.1 == id {
                level.1 = next;
            }
        }
    }
}

/// The caller's side of a walk: which walk it is and whether it is complete.
#[derive(Debug, Default)]
pub struct WalkCursor {
    id: u64,
    done: bool,
}

/// The walk a cursor stood for is gone: another walk started, or the tree was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkLost;

impl std::fmt::Display for WalkLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the tree changed under the snapshot walk (another walk or a new tree)")
    }
}

impl WalkCursor {
    pub fn new() -> WalkCursor {
        WalkCursor::default()
    }

    pub fn is_done(&self) -> bool {
        self.done
    }
}

impl DataTree {
    /// Emits up to `budget` nodes in pre-order, continuing from `cursor` (a new cursor starts
    /// a walk). Returns the number emitted; the cursor says when the walk is complete.
    pub fn walk_step(
        &self,
        cursor: &mut WalkCursor,
        budget: usize,
        mut emit: impl FnMut(&str, NodeRef<'_>),
    ) -> Result<usize, WalkLost> {
        if cursor.done {
            return Ok(0);
        }
        let mut w = self.walk.borrow_mut();
        let mut n = 0;
        if cursor.id == 0 {
            w.started += 1;
            w.id = w.started;
            cursor.id = w.id;
            w.stack.clear();
            emit("/", self.node_ref(ROOT));
            n += 1;
            w.stack
                .push(("/".to_owned(), self.arena.rec(ROOT).first_child));
        } else if cursor.id != w.id {
            return Err(WalkLost);
        }
        // One buffer for every emitted path; only a path that opens a level is copied.
        let mut path = String::new();
        while n < budget {
            let Some((parent, next)) = w.stack.last_mut() else {
                break;
            };
            if *next == NONE {
                w.stack.pop();
                continue;
            }
            let id = *next;
            let r = self.arena.rec(id);
            *next = r.next;
            path.clear();
            if parent != "/" {
                path.push_str(parent);
            }
            path.push('/');
            path.push_str(r.name());
            emit(&path, self.node_ref(id));
            n += 1;
            if r.first_child != NONE {
                w.stack.push((path.clone(), r.first_child));
            }
        }
        if w.stack.is_empty() {
            cursor.done = true;
            w.id = 0;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::open_acl_unsafe;
    use crate::proto::txn::{Txn, TxnHeader};

    fn mk(t: &mut DataTree, zxid: i64, path: &str) {
        let parent = super::super::parent_of(path).unwrap();
        let pcv = t.get(parent).unwrap().cversion + 1;
        t.apply(
            &TxnHeader {
                zxid,
                ..Default::default()
            },
            &Txn::Create {
                path: path.into(),
                data: None,
                acl: open_acl_unsafe(),
                ephemeral_owner: 0,
                parent_cversion: pcv,
            },
            &mut vec![],
        );
    }

    fn del(t: &mut DataTree, zxid: i64, path: &str) {
        let hdr = TxnHeader {
            zxid,
            ..Default::default()
        };
        let r = t.apply(&hdr, &Txn::Delete { path: path.into() }, &mut vec![]);
        assert_eq!(r, super::super::OpResult::Deleted, "{path}");
    }

    /// Every path appears once and after its parent.
    fn check_order(seen: &[String]) {
        for (i, p) in seen.iter().enumerate().skip(1) {
            let parent = super::super::parent_of(p).unwrap();
            assert!(
                seen[..i].iter().any(|q| q == parent),
                "{p} before its parent"
            );
            assert!(!seen[..i].contains(p), "{p} twice");
        }
    }

    #[test]
    fn walks_everything_parents_first_in_small_steps() {
        let mut t = DataTree::new();
        mk(&mut t, 1, "/a");
        mk(&mut t, 2, "/a/b");
        mk(&mut t, 3, "/a/b/c");
        mk(&mut t, 4, "/d");
        let mut c = WalkCursor::new();
        let mut seen = Vec::new();
        while !c.is_done() {
            t.walk_step(&mut c, 1, |p, _| seen.push(p.to_owned()))
                .unwrap();
        }
        check_order(&seen);
        seen.sort();
        assert_eq!(seen, t.nodes_preorder());
        assert_eq!(seen.len(), 8);
    }

    #[test]
    fn survives_changes_between_steps() {
        let mut t = DataTree::new();
        for i in 0..10 {
            mk(&mut t, i + 1, &format!("/n{i}"));
        }
        mk(&mut t, 11, "/n9/y");
        let mut c = WalkCursor::new();
        let mut seen = Vec::new();
        // "/" and the three newest children of the root: /n9 (opening its level), /n9/y,
        // then /n8 and /n7, leaving the root's level on /n6.
        t.walk_step(&mut c, 5, |p, _| seen.push(p.to_owned()))
            .unwrap();
        assert_eq!(seen, ["/", "/n9", "/n9/y", "/n8", "/n7"]);
        // Delete the very node the walk stands on, one ahead and one behind; create one
        // ahead and one behind; delete and recreate a node ahead (its record may be reused).
        del(&mut t, 20, "/n6");
        del(&mut t, 21, "/n3");
        del(&mut t, 22, "/n8");
        mk(&mut t, 23, "/n1/x");
        mk(&mut t, 24, "/n9/z");
        del(&mut t, 25, "/n2");
        mk(&mut t, 26, "/n2");
        while !c.is_done() {
            t.walk_step(&mut c, 3, |p, _| seen.push(p.to_owned()))
                .unwrap();
        }
        check_order(&seen);
        for gone in ["/n6", "/n3"] {
            assert!(!seen.iter().any(|p| p == gone), "{gone} deleted ahead");
        }
        for p in [
            "/n8",
            "/n5",
            "/n4",
            "/n1",
            "/n1/x",
            "/n0",
            "/zookeeper/quota",
        ] {
            assert!(seen.iter().any(|q| q == p), "{p} missing");
        }
        // Created behind the walk: missed (replay brings it back), never a crash.
        assert!(!seen.iter().any(|p| p == "/n9/z"));
    }

    #[test]
    fn a_second_walk_or_a_new_tree_loses_the_first() {
        let mut t = DataTree::new();
        mk(&mut t, 1, "/a");
        let mut first = WalkCursor::new();
        t.walk_step(&mut first, 1, |_, _| {}).unwrap();
        let mut second = WalkCursor::new();
        t.walk_step(&mut second, 1, |_, _| {}).unwrap();
        assert_eq!(t.walk_step(&mut first, 1, |_, _| {}), Err(WalkLost));
        let fresh = DataTree::new();
        assert_eq!(fresh.walk_step(&mut second, 1, |_, _| {}), Err(WalkLost));
        while !second.is_done() {
            t.walk_step(&mut second, 1, |_, _| {}).unwrap();
        }
    }
}
