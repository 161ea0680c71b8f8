//! Txns: the deterministic changes the leader's prep stage makes out of write requests, which
//! every replica applies blindly (and the txn log stores). Each carries everything apply
//! needs — final sequential names, new versions, the owner of an ephemeral — so replay never
//! consults a clock or a session table. The layout follows ZooKeeper's TxnHeader and txn
//! records, with one simplification: Create carries the raw ephemeralOwner value, so one
//! record covers create, createContainer and createTTL.
//!
//! Grammar (all integers big-endian, jute encoding):
//! ```text
//! txn        := header body
//! header     := client_id:i64 cxid:i32 zxid:i64 time:i64 type:i32
//! body       := create | delete | set_data | set_acl | check | multi | create_session
//!             | close_session | error
//! create     := path:ustring data:buffer acl:vector<ACL> ephemeral_owner:i64 parent_cversion:i32
//! delete     := path:ustring                      (types 2 and 20)
//! set_data   := path:ustring data:buffer version:i32
//! set_acl    := path:ustring acl:vector<ACL> version:i32
//! check      := path:ustring version:i32
//! multi      := count:i32 (type:i32 body)*
//! create_session := timeout_ms:i32
//! close_session  := (empty)
//! error      := err:i32
//! ```

use super::consts::op;
use super::jute::{DResult, DecodeError, Reader, Writer};
use super::records::{read_acl_vec, write_acl_vec, Acl};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxnHeader {
    pub client_id: i64,
    pub cxid: i32,
    pub zxid: i64,
    pub time_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txn {
    CreateSession {
        timeout_ms: i32,
    },
    CloseSession,
    Create {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        ephemeral_owner: i64,
        /// The parent's stored cversion after this create.
        parent_cversion: i32,
    },
    Delete {
        path: String,
    },
    DeleteContainer {
        path: String,
    },
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        /// The node's version after this change.
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        /// The node's aversion after this change.
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    Multi(Vec<Txn>),
    Error {
        err: i32,
    },
}

impl Txn {
    pub fn type_code(&self) -> i32 {
        match self {
            Txn::CreateSession { .. } => op::CREATE_SESSION,
            Txn::CloseSession => op::CLOSE_SESSION,
            Txn::Create { .. } => op::CREATE,
            Txn::Delete { .. } => op::DELETE,
            Txn::DeleteContainer { .. } => op::DELETE_CONTAINER,
            Txn::SetData { .. } => op::SET_DATA,
            Txn::SetAcl { .. } => op::SET_ACL,
            Txn::Check { .. } => op::CHECK,
            Txn::Multi(_) => op::MULTI,
            Txn::Error { .. } => op::ERROR,
        }
    }

    fn write_body(&self, w: &mut Writer) {
        match self {
            Txn::CreateSession { timeout_ms } => {
                w.i32(*timeout_ms);
            }
            Txn::CloseSession => {}
            Txn::Create {
                path,
                data,
                acl,
                ephemeral_owner,
                parent_cversion,
            } => {
                w.string(path).buffer(data.as_deref());
                write_acl_vec(w, acl);
                w.i64(*ephemeral_owner).i32(*parent_cversion);
            }
            Txn::Delete { path } | Txn::DeleteContainer { path } => {
                w.string(path);
            }
            Txn::SetData {
                path,
                data,
                version,
            } => {
                w.string(path).buffer(data.as_deref()).i32(*version);
            }
            Txn::SetAcl { path, acl, version } => {
                w.string(path);
                write_acl_vec(w, acl);
                w.i32(*version);
            }
            Txn::Check { path, version } => {
                w.string(path).i32(*version);
            }
            Txn::Multi(txns) => {
                w.i32(txns.len() as i32);
                for t in txns {
                    w.i32(t.type_code());
                    t.write_body(w);
                }
            }
            Txn::Error { err } => {
                w.i32(*err);
            }
        }
    }

    fn read_body(code: i32, r: &mut Reader, depth: u32) -> DResult<Txn> {
        Ok(match code {
            op::CREATE_SESSION => Txn::CreateSession {
                timeout_ms: r.i32()?,
            },
            op::CLOSE_SESSION => Txn::CloseSession,
            op::CREATE => Txn::Create {
                path: r.string()?,
                data: r.buffer()?,
                acl: read_acl_vec(r)?.unwrap_or_default(),
                ephemeral_owner: r.i64()?,
                parent_cversion: r.i32()?,
            },
            op::DELETE => Txn::Delete { path: r.string()? },
            op::DELETE_CONTAINER => Txn::DeleteContainer { path: r.string()? },
            op::SET_DATA => Txn::SetData {
                path: r.string()?,
                data: r.buffer()?,
                version: r.i32()?,
            },
            op::SET_ACL => Txn::SetAcl {
                path: r.string()?,
                acl: read_acl_vec(r)?.unwrap_or_default(),
                version: r.i32()?,
            },
            op::CHECK => Txn::Check {
                path: r.string()?,
                version: r.i32()?,
            },
            op::MULTI if depth == 0 => {
                let n = r.vec_len(4)?.unwrap_or(0);
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let c = r.i32()?;
                    v.push(Txn::read_body(c, r, depth + 1)?);
                }
                Txn::Multi(v)
            }
            op::ERROR => Txn::Error { err: r.i32()? },
            other => return Err(DecodeError::BadValue("txn type", other as i64)),
        })
    }
}

/// Encodes a header and txn as one record.
pub fn encode(hdr: &TxnHeader, txn: &Txn, w: &mut Writer) {
    w.i64(hdr.client_id)
        .i32(hdr.cxid)
        .i64(hdr.zxid)
        .i64(hdr.time_ms)
        .i32(txn.type_code());
    txn.write_body(w);
}

/// Decodes a record written by `encode`; trailing bytes are an error.
pub fn decode(buf: &[u8]) -> DResult<(TxnHeader, Txn)> {
    let mut r = Reader::new(buf);
    let hdr = TxnHeader {
        client_id: r.i64()?,
        cxid: r.i32()?,
        zxid: r.i64()?,
        time_ms: r.i64()?,
    };
    let code = r.i32()?;
    let txn = Txn::read_body(code, &mut r, 0)?;
    if !r.is_empty() {
        return Err(DecodeError::BadLength(r.remaining() as i64));
    }
    Ok((hdr, txn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::records::open_acl_unsafe;

    #[test]
    fn roundtrip_every_kind() {
        let txns = vec![
            Txn::CreateSession { timeout_ms: 4000 },
            Txn::CloseSession,
            Txn::Create {
                path: "/a".into(),
                data: None,
                acl: open_acl_unsafe(),
                ephemeral_owner: 5,
                parent_cversion: 3,
            },
            Txn::Delete { path: "/a".into() },
            Txn::DeleteContainer { path: "/c".into() },
            Txn::SetData {
                path: "/a".into(),
                data: Some(b"x".to_vec()),
                version: 2,
            },
            Txn::SetAcl {
                path: "/a".into(),
                acl: open_acl_unsafe(),
                version: 1,
            },
            Txn::Multi(vec![
                Txn::Check {
                    path: "/a".into(),
                    version: 1,
                },
                Txn::Error { err: -101 },
            ]),
        ];
        for t in txns {
            let hdr = TxnHeader {
                client_id: 9,
                cxid: 3,
                zxid: 77,
                time_ms: 123,
            };
            let mut w = Writer::new();
            encode(&hdr, &t, &mut w);
            assert_eq!(decode(&w.buf).unwrap(), (hdr, t));
        }
    }

    #[test]
    fn nested_multi_rejected() {
        let mut w = Writer::new();
        encode(
            &TxnHeader::default(),
            &Txn::Multi(vec![Txn::Multi(vec![])]),
            &mut w,
        );
        assert!(decode(&w.buf).is_err());
    }
}
