//! Prep: turns a write request into a txn, exactly once, on the server that orders writes.
//! Checks run in ZooKeeper's order (PrepRequestProcessor), so the first failure reported is
//! the one ZooKeeper reports. Checks see the tree plus the changes earlier ops of the same
//! multi would make (an overlay, like Apache's outstanding ChangeRecords), so a multi is
//! validated as a whole before anything applies.

use crate::config::Config;
use crate::proto::consts::{
    op, owner_kind, perms, CreateMode, OwnerKind, CONTAINER_EPHEMERAL_OWNER,
    TTL_EPHEMERAL_OWNER_MASK, TTL_MS_MAX,
};
use crate::proto::txn::Txn;
use crate::proto::{Acl, Code, CreateRequest, Id, MultiOp};
use crate::tree::{acl, DataTree};
use std::collections::HashMap;
use std::sync::Arc;

/// What prep needs to know of a node: the tree's view, or the overlay's after earlier ops.
#[derive(Clone, Debug)]
pub struct View {
    version: i32,
    aversion: i32,
    cversion: i32,
    children: i32,
    owner: i64,
    acl: Arc<[Acl]>,
    data_len: usize,
}

/// Changes made by txns that are logged but not yet applied, by path (`None`: deleted).
pub type Outstanding = HashMap<String, Option<View>>;

pub struct Prep<'a> {
    tree: &'a DataTree,
    cfg: &'a Config,
    ids: &'a [Id],
    session_id: i64,
    outstanding: &'a Outstanding,
    overlay: Outstanding,
}

/// ZooKeeper's PathUtils.validatePath.
pub fn validate_path(path: &str) -> Result<(), Code> {
    if path.is_empty() || !path.starts_with('/') {
        return Err(Code::BadArguments);
    }
    if path == "/" {
        return Ok(());
    }
    if path.ends_with('/') || path.contains("//") {
        return Err(Code::BadArguments);
    }
    for seg in path[1..].split('/') {
        if seg == "." || seg == ".." {
            return Err(Code::BadArguments);
        }
    }
    for c in path.chars() {
        let u = c as u32;
        if u == 0
            || (0x01..=0x1f).contains(&u)
            || (0x7f..=0x9f).contains(&u)
            || (0xd800..=0xf8ff).contains(&u)
            || (0xfff0..=0xffff).contains(&u)
        {
            return Err(Code::BadArguments);
        }
    }
    Ok(())
}

fn is_special(path: &str) -> bool {
    matches!(
        path,
        "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config"
    )
}

/// The parent path as ZooKeeper derives it: everything before the last slash ("" for "/x",
/// which names the root).
fn parent_for(path: &str) -> Result<&str, Code> {
    match path.rfind('/') {
        None => Err(Code::BadArguments),
        Some(_) if path.contains('\0') => Err(Code::BadArguments),
        Some(0) => Ok("/"),
        Some(i) => Ok(&path[..i]),
    }
}

impl<'a> Prep<'a> {
    pub fn new(
        tree: &'a DataTree,
        cfg: &'a Config,
        ids: &'a [Id],
        session_id: i64,
        outstanding: &'a Outstanding,
    ) -> Self {
        Prep {
            tree,
            cfg,
            ids,
            session_id,
            outstanding,
            overlay: HashMap::new(),
        }
    }

    /// The changes this prep made, to be added to the outstanding set once its txn is logged.
    pub fn into_changes(self) -> Outstanding {
        self.overlay
    }

    fn view(&self, path: &str) -> Option<View> {
        if let Some(v) = self.overlay.get(path) {
            return v.clone();
        }
        if let Some(v) = self.outstanding.get(path) {
            return v.clone();
        }
        let n = self.tree.get(path)?;
        Some(View {
            version: n.version,
            aversion: n.aversion,
            cversion: n.cversion,
            children: n.num_children as i32,
            owner: n.ephemeral_owner,
            acl: n.acl.clone(),
            data_len: n.data_len(),
        })
    }

    fn check_acl(&self, v: &View, perm: i32) -> Result<(), Code> {
        acl::check(&v.acl, perm, self.ids, self.cfg.skip_acl)
    }

    fn check_version(current: i32, expected: i32) -> Result<i32, Code> {
        if expected != -1 && expected != current {
            return Err(Code::BadVersion);
        }
        Ok(current.wrapping_add(1))
    }

    /// ZooKeeperServer.checkQuota: only with enforceQuota, only hard limits fail.
    fn check_quota(&self, path: &str, bytes_diff: i64, count_diff: i64) -> Result<(), Code> {
        if !self.cfg.enforce_quota {
            return Ok(());
        }
        let Some((q, limits, stats)) = self.tree.quota_limits(path) else {
            return Ok(());
        };
        let check = |cur: i64, diff: i64, soft: i64, hard: i64| -> Result<(), Code> {
            if diff == 0 || (soft <= -1 && hard <= -1) {
                return Ok(());
            }
            let (limit, is_hard) = if hard > -1 {
                (hard, true)
            } else {
                (soft, false)
            };
            if cur + diff > limit {
                log::warn!(
                    "Quota exceeded: {q} [current={}, {}Limit={limit}]",
                    cur + diff,
                    if is_hard { "hard" } else { "soft" }
                );
                if is_hard {
                    return Err(Code::QuotaExceeded);
                }
            }
            Ok(())
        };
        check(
            stats.count(),
            count_diff,
            limits.count(),
            limits.count_hard_limit(),
        )?;
        check(
            stats.bytes(),
            bytes_diff,
            limits.bytes(),
            limits.byte_hard_limit(),
        )?;
        Ok(())
    }

    pub fn create(&mut self, req: &CreateRequest) -> Result<Txn, Code> {
        let mode = CreateMode::from_flags(req.flags).ok_or(Code::BadArguments)?;
        let ttl = req.ttl.unwrap_or(-1);
        if mode.is_ttl() && !self.cfg.extended_types_enabled {
            return Err(Code::Unimplemented);
        }
        if req.op == op::CREATE_TTL && !self.cfg.extended_types_enabled {
            return Err(Code::Unimplemented);
        }
        if mode.is_ttl() {
            if ttl <= 0 || ttl > TTL_MS_MAX {
                return Err(Code::BadArguments);
            }
        } else if ttl >= 0 {
            return Err(Code::BadArguments);
        }
        let parent_path = parent_for(&req.path)?.to_owned();
        let acl = acl::fixup(req.acl.as_deref(), self.ids)?;
        let parent = self.view(&parent_path).ok_or(Code::NoNode)?;
        self.check_acl(&parent, perms::CREATE)?;
        let mut path = req.path.clone();
        if mode.is_sequential() {
            path.push_str(&format!("{:010}", parent.cversion));
        }
        validate_path(&path)?;
        if path == "/" || self.view(&path).is_some() {
            return Err(Code::NodeExists);
        }
        if let OwnerKind::Session(_) = owner_kind(parent.owner) {
            return Err(Code::NoChildrenForEphemerals);
        }
        let data_len = req.data.as_ref().map_or(0, |d| d.len());
        self.check_quota(&path, data_len as i64, 1)?;
        let owner = if mode.is_ephemeral() {
            self.session_id
        } else if mode.is_container() {
            CONTAINER_EPHEMERAL_OWNER
        } else if mode.is_ttl() {
            TTL_EPHEMERAL_OWNER_MASK | ttl
        } else {
            0
        };
        let parent_cversion = parent.cversion.wrapping_add(1);
        let interned: Arc<[Acl]> = self
            .tree
            .shared_acl(&acl)
            .unwrap_or_else(|| acl.clone().into());
        self.overlay.insert(
            parent_path,
            Some(View {
                cversion: parent_cversion,
                children: parent.children + 1,
                ..parent
            }),
        );
        self.overlay.insert(
            path.clone(),
            Some(View {
                version: 0,
                aversion: 0,
                cversion: 0,
                children: 0,
                owner,
                acl: interned,
                data_len,
            }),
        );
        Ok(Txn::Create {
            path,
            data: req.data.clone(),
            acl,
            ephemeral_owner: owner,
            parent_cversion,
        })
    }

    /// Records in the overlay that `path` is gone and its parent has one child fewer.
    fn note_removed(&mut self, path: &str, parent_path: &str, parent: Option<View>) {
        if let Some(parent) = parent {
            self.overlay.insert(
                parent_path.to_owned(),
                Some(View {
                    children: parent.children - 1,
                    ..parent
                }),
            );
        }
        self.overlay.insert(path.to_owned(), None);
    }

    pub fn delete(&mut self, path: &str, version: i32) -> Result<Txn, Code> {
        let parent_path = parent_for(path)?;
        if is_special(path) || path == "/" {
            return Err(Code::BadArguments);
        }
        let parent = self.view(parent_path).ok_or(Code::NoNode)?;
        self.check_acl(&parent, perms::DELETE)?;
        let node = self.view(path).ok_or(Code::NoNode)?;
        Self::check_version(node.version, version)?;
        if node.children > 0 {
            return Err(Code::NotEmpty);
        }
        self.note_removed(path, parent_path, Some(parent));
        Ok(Txn::Delete {
            path: path.to_owned(),
        })
    }

    /// deleteContainer (op 20): no ACL or session check, as in ZooKeeper.
    pub fn delete_container(&mut self, path: &str) -> Result<Txn, Code> {
        let parent_path = parent_for(path)?;
        if is_special(path) {
            return Err(Code::BadArguments);
        }
        let node = self.view(path).ok_or(Code::NoNode)?;
        if node.children > 0 {
            return Err(Code::NotEmpty);
        }
        if let OwnerKind::Session(_) = owner_kind(node.owner) {
            return Err(Code::BadVersion);
        }
        let parent = self.view(parent_path);
        self.note_removed(path, parent_path, parent);
        Ok(Txn::DeleteContainer {
            path: path.to_owned(),
        })
    }

    pub fn set_data(
        &mut self,
        path: &str,
        data: &Option<Vec<u8>>,
        version: i32,
    ) -> Result<Txn, Code> {
        validate_path(path)?;
        let node = self.view(path).ok_or(Code::NoNode)?;
        self.check_acl(&node, perms::WRITE)?;
        let new_len = data.as_ref().map_or(0, |d| d.len());
        self.check_quota(path, new_len as i64 - node.data_len as i64, 0)?;
        let new_version = Self::check_version(node.version, version)?;
        self.overlay.insert(
            path.to_owned(),
            Some(View {
                version: new_version,
                data_len: new_len,
                ..node
            }),
        );
        Ok(Txn::SetData {
            path: path.to_owned(),
            data: data.clone(),
            version: new_version,
        })
    }

    pub fn set_acl(
        &mut self,
        path: &str,
        acl_in: Option<&[Acl]>,
        version: i32,
    ) -> Result<Txn, Code> {
        validate_path(path)?;
        let acl = acl::fixup(acl_in, self.ids)?;
        let node = self.view(path).ok_or(Code::NoNode)?;
        self.check_acl(&node, perms::ADMIN)?;
        let new_version = Self::check_version(node.aversion, version)?;
        self.overlay.insert(
            path.to_owned(),
            Some(View {
                aversion: new_version,
                acl: acl.clone().into(),
                ..node
            }),
        );
        Ok(Txn::SetAcl {
            path: path.to_owned(),
            acl,
            version: new_version,
        })
    }

    pub fn check(&mut self, path: &str, version: i32) -> Result<Txn, Code> {
        validate_path(path)?;
        let node = self.view(path).ok_or(Code::NoNode)?;
        self.check_acl(&node, perms::READ)?;
        Self::check_version(node.version, version)?;
        Ok(Txn::Check {
            path: path.to_owned(),
            version,
        })
    }

    /// A multi: all ops succeed against the evolving overlay, or the txn is all errors:
    /// Ok for the ops before the failure, its code for the failing op, RuntimeInconsistency
    /// after.
    pub fn multi(&mut self, ops: &[MultiOp]) -> Txn {
        let mut txns = Vec::with_capacity(ops.len());
        for (i, o) in ops.iter().enumerate() {
            let r = match o {
                MultiOp::Create(c) => self.create(c),
                MultiOp::Delete { path, version } => self.delete(path, *version),
                MultiOp::SetData {
                    path,
                    data,
                    version,
                } => self.set_data(path, data, *version),
                MultiOp::Check { path, version } => self.check(path, *version),
            };
            match r {
                Ok(t) => txns.push(t),
                Err(code) => {
                    let mut errs = Vec::with_capacity(ops.len());
                    for j in 0..ops.len() {
                        let err = match j.cmp(&i) {
                            std::cmp::Ordering::Less => 0,
                            std::cmp::Ordering::Equal => code.code(),
                            std::cmp::Ordering::Greater => Code::RuntimeInconsistency.code(),
                        };
                        errs.push(Txn::Error { err });
                    }
                    self.overlay.clear();
                    return Txn::Multi(errs);
                }
            }
        }
        Txn::Multi(txns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_validation() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/..a"] {
            assert!(validate_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "/a/",
            "//a",
            "/a//b",
            "/.",
            "/a/..",
            "/a\u{1}",
            "/a\0b",
            "/\u{e000}",
        ] {
            assert_eq!(validate_path(bad), Err(Code::BadArguments), "{bad}");
        }
    }

    #[test]
    fn failed_multi_reports_zookeeper_codes() {
        let tree = DataTree::new();
        let cfg = Config::default();
        let none = Outstanding::new();
        let mut p = Prep::new(&tree, &cfg, &[], 1, &none);
        let mk = |path: &str| {
            MultiOp::Create(CreateRequest {
                op: op::CREATE,
                path: path.into(),
                data: None,
                acl: Some(crate::proto::open_acl_unsafe()),
                flags: 0,
                ttl: None,
            })
        };
        let t = p.multi(&[mk("/a"), mk("/a"), mk("/b")]);
        assert_eq!(
            t,
            Txn::Multi(vec![
                Txn::Error { err: 0 },
                Txn::Error { err: -110 },
                Txn::Error { err: -2 }
            ])
        );
        // Within one multi, a later op sees the earlier create.
        let mut p = Prep::new(&tree, &cfg, &[], 1, &none);
        let t = p.multi(&[mk("/a"), mk("/a/b")]);
        assert!(matches!(t, Txn::Multi(v) if v.len() == 2 && matches!(v[1], Txn::Create{..})));
    }

    #[test]
    fn sequential_suffix_uses_parent_cversion() {
        let tree = DataTree::new();
        let cfg = Config::default();
        let none = Outstanding::new();
        let mut p = Prep::new(&tree, &cfg, &[], 1, &none);
        let t = p
            .create(&CreateRequest {
                op: op::CREATE,
                path: "/q-".into(),
                data: None,
                acl: Some(crate::proto::open_acl_unsafe()),
                flags: 2,
                ttl: None,
            })
            .unwrap();
        assert!(matches!(t, Txn::Create { ref path, .. } if path == "/q-0000000000"));
    }
}
