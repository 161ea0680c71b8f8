//! Watch tables: which connection watches which path, in which mode. Two tables as in
//! ZooKeeper's WatchManager: data watches (getData, exists, addWatch) and child watches
//! (getChildren, addWatch PERSISTENT). Each (path, connection) holds a set of modes, so a
//! one-shot and a persistent watch on the same path coexist; firing clears only the one-shot.
//! Recursive watches also match every ancestor of an event's path.

use super::ConnId;
use std::collections::{BTreeSet, HashMap};

pub const STANDARD: u8 = 1;
pub const PERSISTENT: u8 = 2;
pub const RECURSIVE: u8 = 4;

#[derive(Default)]
pub struct WatchTable {
    by_path: HashMap<String, HashMap<ConnId, u8>>,
    by_conn: HashMap<ConnId, BTreeSet<String>>,
    recursive: usize,
}

impl WatchTable {
    pub fn add(&mut self, path: &str, conn: ConnId, mode: u8) {
        let modes = self
            .by_path
            .entry(path.to_owned())
            .or_default()
            .entry(conn)
            .or_insert(0);
        if mode & RECURSIVE != 0 && *modes & RECURSIVE == 0 {
            self.recursive += 1;
        }
        *modes |= mode;
        self.by_conn
            .entry(conn)
            .or_default()
            .insert(path.to_owned());
    }

    /// Clears `mask` from the (path, conn) entry; true if anything was there to clear.
    pub fn remove(&mut self, path: &str, conn: ConnId, mask: u8) -> bool {
        let Some(watchers) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(modes) = watchers.get_mut(&conn) else {
            return false;
        };
        if *modes & mask == 0 {
            return false;
        }
        if *modes & mask & RECURSIVE != 0 {
            self.recursive -= 1;
        }
        *modes &= !mask;
        if *modes == 0 {
            watchers.remove(&conn);
            if watchers.is_empty() {
                self.by_path.remove(path);
            }
            if let Some(paths) = self.by_conn.get_mut(&conn) {
                paths.remove(path);
                if paths.is_empty() {
                    self.by_conn.remove(&conn);
                }
            }
        }
        true
    }

    pub fn contains(&self, path: &str, conn: ConnId, mask: u8) -> bool {
        self.by_path
            .get(path)
            .and_then(|w| w.get(&conn))
            .is_some_and(|m| m & mask != 0)
    }

    /// Forgets every watch of a closed connection.
    pub fn remove_conn(&mut self, conn: ConnId) {
        if let Some(paths) = self.by_conn.remove(&conn) {
            for p in paths {
                if let Some(w) = self.by_path.get_mut(&p) {
                    if let Some(m) = w.remove(&conn) {
                        if m & RECURSIVE != 0 {
                            self.recursive -= 1;
                        }
                    }
                    if w.is_empty() {
                        self.by_path.remove(&p);
                    }
                }
            }
        }
    }

    /// The connections to notify for an event on `path`; one-shot watches on `path` itself
    /// are consumed. Recursive watches on ancestors match too.
    pub fn trigger(&mut self, path: &str, out: &mut Vec<ConnId>) {
        if let Some(w) = self.by_path.get_mut(path) {
            let mut emptied = Vec::new();
            for (conn, modes) in w.iter_mut() {
                out.push(*conn);
                if *modes & STANDARD != 0 {
                    *modes &= !STANDARD;
                    if *modes == 0 {
                        emptied.push(*conn);
                    }
                }
            }
            for c in emptied {
                w.remove(&c);
                if let Some(paths) = self.by_conn.get_mut(&c) {
                    paths.remove(path);
                    if paths.is_empty() {
                        self.by_conn.remove(&c);
                    }
                }
            }
            if w.is_empty() {
                self.by_path.remove(path);
            }
        }
        if self.recursive > 0 {
            let mut p = path;
            while let Some(parent) = crate::tree::parent_of(p) {
                if let Some(w) = self.by_path.get(parent) {
                    for (conn, modes) in w {
                        if modes & RECURSIVE != 0 {
                            out.push(*conn);
                        }
                    }
                }
                p = parent;
            }
        }
    }

    /// Number of (path, connection) watch entries.
    pub fn count(&self) -> usize {
        self.by_path.values().map(|w| w.len()).sum()
    }

    pub fn path_count(&self) -> usize {
        self.by_path.len()
    }

    pub fn conn_count(&self) -> usize {
        self.by_conn.len()
    }

    pub fn by_conn(&self) -> &HashMap<ConnId, BTreeSet<String>> {
        &self.by_conn
    }

    pub fn by_path(&self) -> &HashMap<String, HashMap<ConnId, u8>> {
        &self.by_path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_fires_once_persistent_stays() {
        let mut t = WatchTable::default();
        t.add("/a", 1, STANDARD);
        t.add("/a", 2, PERSISTENT);
        let mut out = vec![];
        t.trigger("/a", &mut out);
        out.sort();
        assert_eq!(out, vec![1, 2]);
        out.clear();
        t.trigger("/a", &mut out);
        assert_eq!(out, vec![2]);
        assert_eq!(t.count(), 1);
    }

    #[test]
    fn recursive_matches_ancestors() {
        let mut t = WatchTable::default();
        t.add("/a", 7, RECURSIVE);
        let mut out = vec![];
        t.trigger("/a/b/c", &mut out);
        assert_eq!(out, vec![7]);
        t.remove("/a", 7, RECURSIVE);
        out.clear();
        t.trigger("/a/b/c", &mut out);
        assert!(out.is_empty());
        assert_eq!(t.count(), 0);
    }

    #[test]
    fn remove_conn_forgets_everything() {
        let mut t = WatchTable::default();
        t.add("/a", 1, STANDARD | PERSISTENT);
        t.add("/b", 1, RECURSIVE);
        t.remove_conn(1);
        assert_eq!(t.count(), 0);
        let mut out = vec![];
        t.trigger("/b/x", &mut out);
        assert!(out.is_empty());
    }
}
