//! The client's record of the watches it holds, kept as Apache's ZKWatchManager keeps them
//! for a client with one (default) watcher: which one-time data, exists and child watches
//! and which persistent watches are set, by client path. It decides whether a notification
//! reaches the watcher (`materialize`), what a successful request registers (`register`),
//! what `removeWatches` takes away and which WatchRemoved events that produces (`remove`),
//! and what a reconnecting client re-arms (`set_watches`). Pure bookkeeping: it never sends
//! anything and knows nothing of sockets or chroots.

use crate::proto::consts::{event, watcher_type};
use crate::proto::{Code, SetWatches};
use std::collections::BTreeSet;

/// `Watcher.Event.EventType` values the client itself produces (the server sends 1 to 4).
pub mod removed_event {
    pub const DATA_WATCH_REMOVED: i32 = 5;
    pub const CHILD_WATCH_REMOVED: i32 = 6;
    pub const PERSISTENT_WATCH_REMOVED: i32 = 7;
}

/// What a request registers once its reply is in (the WatchRegistration subclasses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchRegistration {
    /// exists: a data watch if the node exists, an exists watch if it does not.
    Exists(String),
    /// getData and getConfig.
    Data(String),
    /// getChildren.
    Child(String),
    /// addWatch: persistent, or persistent recursive.
    Persistent { path: String, recursive: bool },
}

/// The watches of one client, by client path.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WatchManager {
    pub data: BTreeSet<String>,
    pub exist: BTreeSet<String>,
    pub child: BTreeSet<String>,
    pub persistent: BTreeSet<String>,
    pub persistent_recursive: BTreeSet<String>,
}

impl WatchManager {
    /// Records the watch a request asked for, given the reply's error code: exists and
    /// addWatch register on OK and on NoNode, the others only on OK.
    pub fn register(&mut self, reg: &WatchRegistration, err: i32) {
        let ok = err == Code::Ok.code();
        let no_node = err == Code::NoNode.code();
        match reg {
            WatchRegistration::Exists(p) if ok => {
                self.data.insert(p.clone());
            }
            WatchRegistration::Exists(p) if no_node => {
                self.exist.insert(p.clone());
            }
            WatchRegistration::Data(p) if ok => {
                self.data.insert(p.clone());
            }
            WatchRegistration::Child(p) if ok => {
                self.child.insert(p.clone());
            }
            WatchRegistration::Persistent { path, recursive } if ok || no_node => {
                if *recursive {
                    self.persistent_recursive.insert(path.clone());
                } else {
                    self.persistent.insert(path.clone());
                }
            }
            _ => {}
        }
    }

    /// Whether a notification of `event_type` on `path` reaches the watcher, consuming the
    /// one-time watches it fires (ZKWatchManager.materialize). A notification nobody
    /// watches is not delivered, exactly as in the Java client.
    pub fn materialize(&mut self, event_type: i32, path: &str) -> bool {
        let mut hit = false;
        match event_type {
            event::NODE_DATA_CHANGED | event::NODE_CREATED => {
                hit |= self.data.remove(path);
                hit |= self.exist.remove(path);
            }
            event::NODE_CHILDREN_CHANGED => {
                hit |= self.child.remove(path);
            }
            event::NODE_DELETED => {
                hit |= self.data.remove(path);
                hit |= self.exist.remove(path);
                hit |= self.child.remove(path);
            }
            _ => return false,
        }
        hit | self.persistent_hit(path)
    }

    /// A persistent watch on the path itself, or a recursive one on it or any ancestor.
    fn persistent_hit(&self, path: &str) -> bool {
        if self.persistent.contains(path) {
            return true;
        }
        let mut p = path;
        loop {
            if self.persistent_recursive.contains(p) {
                return true;
            }
            if p == "/" {
                return false;
            }
            p = match p.rfind('/') {
                Some(0) => "/",
                Some(i) => &p[..i],
                None => return false,
            };
        }
    }

    /// Whether any watch at all is held (the default watcher always gets None events).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.persistent_recursive.is_empty()
    }

    pub fn clear(&mut self) {
        *self = WatchManager::default();
    }

    /// Applies a removeWatches reply (ZKWatchManager.removeWatcher for the default watcher):
    /// `rc` is the server's code, `local` the `-l` flag. On success returns the
    /// WatchRemoved event types to deliver, in the order zkCli prints them; on failure the
    /// code the call fails with.
    pub fn remove(
        &mut self,
        path: &str,
        wtype: i32,
        local: bool,
        rc: i32,
    ) -> Result<Vec<i32>, Code> {
        if !self.contains(path, wtype) {
            return Err(Code::NoWatcher);
        }
        let ok = rc == Code::Ok.code();
        let server_error = || Code::from_code(rc).unwrap_or(Code::SystemError);
        if !local && !ok {
            return Err(server_error());
        }
        let mut child = false;
        let mut data = false;
        let mut persistent = false;
        match wtype {
            watcher_type::CHILDREN => child = self.child.remove(path),
            watcher_type::DATA => {
                data = self.data.remove(path);
                data |= self.exist.remove(path);
            }
            _ => {
                child = self.child.remove(path);
                data = self.data.remove(path);
                data |= self.exist.remove(path);
                persistent = self.persistent.remove(path);
                persistent |= self.persistent_recursive.remove(path);
            }
        }
        if !(child || data || persistent) {
            return Err(Code::NoWatcher);
        }
        let mut events = Vec::new();
        if child {
            events.push(removed_event::CHILD_WATCH_REMOVED);
        }
        if data {
            events.push(removed_event::DATA_WATCH_REMOVED);
        }
        if persistent {
            events.push(removed_event::PERSISTENT_WATCH_REMOVED);
        }
        Ok(events)
    }

    /// ZKWatchManager.containsWatcher for the default watcher.
    fn contains(&self, path: &str, wtype: i32) -> bool {
        let persistent = self.persistent.contains(path) || self.persistent_recursive.contains(path);
        match wtype {
            watcher_type::CHILDREN => self.child.contains(path) || persistent,
            watcher_type::DATA => {
                self.data.contains(path) || self.exist.contains(path) || persistent
            }
            _ => {
                self.child.contains(path)
                    || self.data.contains(path)
                    || self.exist.contains(path)
                    || persistent
            }
        }
    }

    /// The SetWatches record a reconnecting client sends, with server paths made by
    /// `to_server`.
    pub fn set_watches(
        &self,
        relative_zxid: i64,
        to_server: impl Fn(&str) -> String,
    ) -> SetWatches {
        let conv = |s: &BTreeSet<String>| s.iter().map(|p| to_server(p)).collect::<Vec<_>>();
        SetWatches {
            relative_zxid,
            data: conv(&self.data),
            exist: conv(&self.exist),
            child: conv(&self.child),
            persistent: conv(&self.persistent),
            persistent_recursive: conv(&self.persistent_recursive),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_time_watches_fire_once() {
        let mut w = WatchManager::default();
        w.register(&WatchRegistration::Data("/a".into()), 0);
        w.register(&WatchRegistration::Child("/a".into()), 0);
        assert!(w.materialize(event::NODE_DATA_CHANGED, "/a"));
        assert!(!w.materialize(event::NODE_DATA_CHANGED, "/a"));
        assert!(w.materialize(event::NODE_CHILDREN_CHANGED, "/a"));
        assert!(w.is_empty());
        // exists on a missing node watches for its creation; a failed getData sets nothing
        w.register(&WatchRegistration::Exists("/n".into()), Code::NoNode.code());
        w.register(&WatchRegistration::Data("/m".into()), Code::NoNode.code());
        assert_eq!(w.exist.len(), 1);
        assert!(w.data.is_empty());
        assert!(w.materialize(event::NODE_CREATED, "/n"));
        // a delete fires data and child watches alike
        w.register(&WatchRegistration::Child("/d".into()), 0);
        assert!(w.materialize(event::NODE_DELETED, "/d"));
    }

    #[test]
    fn persistent_and_recursive_watches_stay() {
        let mut w = WatchManager::default();
        w.register(
            &WatchRegistration::Persistent {
                path: "/r".into(),
                recursive: true,
            },
            0,
        );
        w.register(
            &WatchRegistration::Persistent {
                path: "/p".into(),
                recursive: false,
            },
            Code::NoNode.code(),
        );
        for _ in 0..2 {
            assert!(w.materialize(event::NODE_DATA_CHANGED, "/r/a/b"));
            assert!(w.materialize(event::NODE_CREATED, "/r"));
            assert!(w.materialize(event::NODE_CHILDREN_CHANGED, "/p"));
        }
        assert!(!w.materialize(event::NODE_CREATED, "/rx"));
        assert!(!w.materialize(event::NODE_CREATED, "/p/child"));
        let mut root = WatchManager::default();
        root.register(
            &WatchRegistration::Persistent {
                path: "/".into(),
                recursive: true,
            },
            0,
        );
        assert!(root.materialize(event::NODE_DELETED, "/x/y"));
    }

    #[test]
    fn remove_follows_zk_watch_manager() {
        let mut w = WatchManager::default();
        assert_eq!(
            w.remove("/x", watcher_type::ANY, false, 0),
            Err(Code::NoWatcher)
        );
        w.register(&WatchRegistration::Data("/r".into()), 0);
        // only a data watch: removing the child watch finds nothing
        assert_eq!(
            w.remove("/r", watcher_type::CHILDREN, false, Code::NoWatcher.code()),
            Err(Code::NoWatcher)
        );
        assert_eq!(
            w.remove("/r", watcher_type::DATA, false, 0),
            Ok(vec![removed_event::DATA_WATCH_REMOVED])
        );
        // a server error wins unless the removal is local
        w.register(&WatchRegistration::Child("/r".into()), 0);
        assert_eq!(
            w.remove("/r", watcher_type::ANY, false, Code::ConnectionLoss.code()),
            Err(Code::ConnectionLoss)
        );
        assert_eq!(
            w.remove("/r", watcher_type::ANY, true, Code::ConnectionLoss.code()),
            Ok(vec![removed_event::CHILD_WATCH_REMOVED])
        );
        // a persistent watch counts for containsWatcher but only Any removes it
        w.register(
            &WatchRegistration::Persistent {
                path: "/p".into(),
                recursive: false,
            },
            0,
        );
        assert_eq!(
            w.remove("/p", watcher_type::DATA, false, 0),
            Err(Code::NoWatcher)
        );
        assert_eq!(
            w.remove("/p", watcher_type::ANY, false, 0),
            Ok(vec![removed_event::PERSISTENT_WATCH_REMOVED])
        );
        assert!(w.is_empty());
    }

    #[test]
    fn set_watches_lists_every_kind() {
        let mut w = WatchManager::default();
        w.register(&WatchRegistration::Data("/a".into()), 0);
        w.register(&WatchRegistration::Exists("/b".into()), Code::NoNode.code());
        w.register(&WatchRegistration::Child("/c".into()), 0);
        let sw = w.set_watches(9, |p| format!("/chroot{p}"));
        assert_eq!(sw.relative_zxid, 9);
        assert_eq!(sw.data, ["/chroot/a"]);
        assert_eq!(sw.exist, ["/chroot/b"]);
        assert_eq!(sw.child, ["/chroot/c"]);
        assert!(sw.persistent.is_empty() && sw.persistent_recursive.is_empty());
    }
}
