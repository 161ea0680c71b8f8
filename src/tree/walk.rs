//! A resumable pre-order walk of the tree, for fuzzy snapshots: the event loop serializes a
//! bounded number of nodes per turn while writes go on between turns. The cursor holds paths
//! and child names, never references, so the tree may change between steps. A parent is
//! always emitted before its children; a node created behind the cursor is missed and one
//! deleted ahead of it is skipped, which is sound because recovery replays every txn after
//! the zxid the walk started at, and apply tolerates replay over such a snapshot (a create
//! of a node already present only advances its parent's counters).

use super::{join, DataTree, Node};
use std::ops::Bound;

/// Where a walk stands: for each open level, the parent path and the last child emitted.
#[derive(Debug, Default)]
pub struct WalkCursor {
    stack: Vec<(String, Option<Box<str>>)>,
    started: bool,
    done: bool,
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
    /// Emits up to `budget` nodes in pre-order, continuing from `cursor`. Returns the number
    /// emitted; the cursor says when the walk is complete.
    pub fn walk_step(
        &self,
        cursor: &mut WalkCursor,
        budget: usize,
        mut emit: impl FnMut(&str, &Node),
    ) -> usize {
        let mut n = 0;
        if cursor.done {
            return 0;
        }
        if !cursor.started {
            cursor.started = true;
            if let Some(root) = self.get("/") {
                emit("/", root);
                n += 1;
            }
            cursor.stack.push(("/".to_owned(), None));
        }
        while n < budget {
            let Some((parent, last)) = cursor.stack.last_mut() else {
                cursor.done = true;
                break;
            };
            let next = self.get(parent).and_then(|p| {
                let range = match last {
                    None => p
                        .children
                        .range::<str, _>((Bound::Unbounded, Bound::Unbounded)),
                    Some(l) => p
                        .children
                        .range::<str, _>((Bound::Excluded(&**l), Bound::Unbounded)),
                };
                range.into_iter().next().cloned()
            });
            match next {
                None => {
                    cursor.stack.pop();
                }
                Some(child) => {
                    let path = join(parent, &child);
                    *last = Some(child);
                    if let Some(node) = self.get(&path) {
                        emit(&path, node);
                        n += 1;
                        if !node.children.is_empty() {
                            cursor.stack.push((path, None));
                        }
                    }
                }
            }
        }
        if cursor.stack.is_empty() {
            cursor.done = true;
        }
        n
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
            t.walk_step(&mut c, 1, |p, _| seen.push(p.to_owned()));
        }
        assert_eq!(
            seen,
            vec![
                "/",
                "/a",
                "/a/b",
                "/a/b/c",
                "/d",
                "/zookeeper",
                "/zookeeper/config",
                "/zookeeper/quota"
            ]
        );
    }

    #[test]
    fn survives_changes_between_steps() {
        let mut t = DataTree::new();
        for i in 0..10 {
            mk(&mut t, i + 1, &format!("/n{i}"));
        }
        let mut c = WalkCursor::new();
        let mut seen = Vec::new();
        t.walk_step(&mut c, 4, |p, _| seen.push(p.to_owned()));
        // Delete a node ahead of the cursor and one behind it; create one ahead.
        t.apply(
            &TxnHeader {
                zxid: 20,
                ..Default::default()
            },
            &Txn::Delete { path: "/n8".into() },
            &mut vec![],
        );
        t.apply(
            &TxnHeader {
                zxid: 21,
                ..Default::default()
            },
            &Txn::Delete { path: "/n0".into() },
            &mut vec![],
        );
        mk(&mut t, 22, "/n9/x");
        while !c.is_done() {
            t.walk_step(&mut c, 3, |p, _| seen.push(p.to_owned()));
        }
        assert!(!seen.contains(&"/n8".to_owned()));
        assert!(seen.contains(&"/n9/x".to_owned()));
        assert!(
            seen.contains(&"/n0".to_owned()),
            "emitted before its delete"
        );
    }
}
