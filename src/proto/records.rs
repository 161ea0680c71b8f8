//! The client protocol's records (zookeeper.jute): headers, the connect handshake, Stat, ACL,
//! every request body by opcode, and the encoders for replies and notifications. Decoding is
//! total: any byte string yields a value or a `DecodeError`, never a panic.

use super::consts::{op, xid};
use super::jute::{DResult, DecodeError, Reader, Writer};

/// The client-visible Stat (68 bytes on the wire).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

impl Stat {
    pub fn write(&self, w: &mut Writer) {
        w.i64(self.czxid)
            .i64(self.mzxid)
            .i64(self.ctime)
            .i64(self.mtime)
            .i32(self.version)
            .i32(self.cversion)
            .i32(self.aversion)
            .i64(self.ephemeral_owner)
            .i32(self.data_length)
            .i32(self.num_children)
            .i64(self.pzxid);
    }

    pub fn read(r: &mut Reader) -> DResult<Stat> {
        Ok(Stat {
            czxid: r.i64()?,
            mzxid: r.i64()?,
            ctime: r.i64()?,
            mtime: r.i64()?,
            version: r.i32()?,
            cversion: r.i32()?,
            aversion: r.i32()?,
            ephemeral_owner: r.i64()?,
            data_length: r.i32()?,
            num_children: r.i32()?,
            pzxid: r.i64()?,
        })
    }
}

/// An identity: `scheme:id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    pub scheme: String,
    pub id: String,
}

impl Id {
    pub fn new(scheme: &str, id: &str) -> Id {
        Id {
            scheme: scheme.to_owned(),
            id: id.to_owned(),
        }
    }
}

/// One ACL entry: permission bits for an identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Acl {
    pub perms: i32,
    pub id: Id,
}

impl Acl {
    pub fn new(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            id: Id::new(scheme, id),
        }
    }

    pub fn write(&self, w: &mut Writer) {
        w.i32(self.perms)
            .string(&self.id.scheme)
            .string(&self.id.id);
    }

    pub fn read(r: &mut Reader) -> DResult<Acl> {
        Ok(Acl {
            perms: r.i32()?,
            id: Id {
                scheme: r.string()?,
                id: r.string()?,
            },
        })
    }
}

pub fn write_acl_vec(w: &mut Writer, acl: &[Acl]) {
    w.i32(acl.len() as i32);
    for a in acl {
        a.write(w);
    }
}

/// Reads `vector<ACL>`; `None` is the null vector.
pub fn read_acl_vec(r: &mut Reader) -> DResult<Option<Vec<Acl>>> {
    match r.vec_len(12)? {
        None => Ok(None),
        Some(n) => {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(Acl::read(r)?);
            }
            Ok(Some(v))
        }
    }
}

/// `[READ|WRITE|CREATE|DELETE|ADMIN, world:anyone]`
pub fn open_acl_unsafe() -> Vec<Acl> {
    vec![Acl::new(super::consts::perms::ALL, "world", "anyone")]
}

pub fn read_acl_unsafe() -> Vec<Acl> {
    vec![Acl::new(super::consts::perms::READ, "world", "anyone")]
}

/// The first frame a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    /// `None` when the client did not send the optional trailing byte (go-zookeeper); the
    /// reply must then omit it too.
    pub read_only: Option<bool>,
}

impl ConnectRequest {
    pub fn read(buf: &[u8]) -> DResult<ConnectRequest> {
        let mut r = Reader::new(buf);
        let req = ConnectRequest {
            protocol_version: r.i32()?,
            last_zxid_seen: r.i64()?,
            timeout_ms: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?.unwrap_or_default(),
            read_only: if r.is_empty() { None } else { Some(r.bool()?) },
        };
        Ok(req)
    }

    pub fn write(&self, w: &mut Writer) {
        w.i32(self.protocol_version)
            .i64(self.last_zxid_seen)
            .i32(self.timeout_ms)
            .i64(self.session_id)
            .buffer(Some(&self.passwd));
        if let Some(ro) = self.read_only {
            w.bool(ro);
        }
    }
}

/// The server's answer to a ConnectRequest. `timeout_ms == 0` means the session is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub read_only: Option<bool>,
}

impl ConnectResponse {
    pub fn to_frame(&self) -> Vec<u8> {
        let mut w = Writer::frame();
        w.i32(self.protocol_version)
            .i32(self.timeout_ms)
            .i64(self.session_id)
            .buffer(Some(&self.passwd));
        if let Some(ro) = self.read_only {
            w.bool(ro);
        }
        w.finish_frame()
    }

    pub fn read(buf: &[u8]) -> DResult<ConnectResponse> {
        let mut r = Reader::new(buf);
        Ok(ConnectResponse {
            protocol_version: r.i32()?,
            timeout_ms: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?.unwrap_or_default(),
            read_only: if r.is_empty() { None } else { Some(r.bool()?) },
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    pub xid: i32,
    pub op: i32,
}

impl RequestHeader {
    pub fn read(r: &mut Reader) -> DResult<RequestHeader> {
        Ok(RequestHeader {
            xid: r.i32()?,
            op: r.i32()?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
}

impl ReplyHeader {
    pub fn read(r: &mut Reader) -> DResult<ReplyHeader> {
        Ok(ReplyHeader {
            xid: r.i32()?,
            zxid: r.i64()?,
            err: r.i32()?,
        })
    }

    /// Starts a reply frame with this header; the caller appends the body and finishes it.
    pub fn frame(&self) -> Writer {
        let mut w = Writer::frame();
        w.i32(self.xid).i64(self.zxid).i32(self.err);
        w
    }
}

/// A watch notification frame: xid -1, the txn's zxid, and `WatcherEvent{type, state, path}`.
pub fn notification_frame(zxid: i64, event_type: i32, state: i32, path: &str) -> Vec<u8> {
    let mut w = ReplyHeader {
        xid: xid::NOTIFICATION,
        zxid,
        err: 0,
    }
    .frame();
    w.i32(event_type).i32(state).string(path);
    w.finish_frame()
}

/// A create request as sent by ops 1, 15, 19 and 21 (the last with a ttl).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub op: i32,
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub acl: Option<Vec<Acl>>,
    pub flags: i32,
    pub ttl: Option<i64>,
}

impl CreateRequest {
    fn read(op: i32, r: &mut Reader) -> DResult<CreateRequest> {
        Ok(CreateRequest {
            op,
            path: r.string()?,
            data: r.buffer()?,
            acl: read_acl_vec(r)?,
            flags: r.i32()?,
            ttl: if op == op::CREATE_TTL {
                Some(r.i64()?)
            } else {
                None
            },
        })
    }

    pub fn write(&self, w: &mut Writer) {
        w.string(&self.path).buffer(self.data.as_deref());
        match &self.acl {
            None => {
                w.i32(-1);
            }
            Some(a) => write_acl_vec(w, a),
        }
        w.i32(self.flags);
        if let Some(t) = self.ttl {
            w.i64(t);
        }
    }
}

/// One op inside a `multi` (op 14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Create(CreateRequest),
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
}

/// One op inside a `multiRead` (op 22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    GetChildren { path: String },
    GetData { path: String },
}

/// A decoded request body, by opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create(CreateRequest),
    Delete {
        path: String,
        version: i32,
    },
    Exists {
        path: String,
        watch: bool,
    },
    GetData {
        path: String,
        watch: bool,
    },
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    GetAcl {
        path: String,
    },
    SetAcl {
        path: String,
        acl: Option<Vec<Acl>>,
        version: i32,
    },
    GetChildren {
        path: String,
        watch: bool,
        with_stat: bool,
    },
    Sync {
        path: String,
    },
    Ping,
    Check {
        path: String,
        version: i32,
    },
    Multi(Vec<MultiOp>),
    MultiRead(Vec<ReadOp>),
    Reconfig,
    CheckWatches {
        path: String,
        watcher_type: i32,
    },
    RemoveWatches {
        path: String,
        watcher_type: i32,
    },
    DeleteContainer {
        path: String,
    },
    Auth {
        auth_type: i32,
        scheme: String,
        /// `None` is the null buffer, which Apache's digest provider fails.
        auth: Option<Vec<u8>>,
    },
    SetWatches(SetWatches),
    Sasl {
        token: Vec<u8>,
    },
    GetEphemerals {
        prefix: String,
    },
    GetAllChildrenNumber {
        path: String,
    },
    AddWatch {
        path: String,
        mode: i32,
    },
    WhoAmI,
    CloseSession,
}

/// setWatches (op 101) and setWatches2 (op 105): the watches a reconnecting client re-arms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetWatches {
    pub relative_zxid: i64,
    pub data: Vec<String>,
    pub exist: Vec<String>,
    pub child: Vec<String>,
    pub persistent: Vec<String>,
    pub persistent_recursive: Vec<String>,
}

/// Whether the server knows the opcode at all (Request.isValid plus the ops handled before
/// it). Unknown ones are answered with Unimplemented and the connection is closed.
pub fn is_known_op(code: i32) -> bool {
    matches!(
        code,
        op::CREATE
            | op::DELETE
            | op::EXISTS
            | op::GET_DATA
            | op::SET_DATA
            | op::GET_ACL
            | op::SET_ACL
            | op::GET_CHILDREN
            | op::SYNC
            | op::PING
            | op::GET_CHILDREN2
            | op::MULTI
            | op::CREATE2
            | op::RECONFIG
            | op::CHECK_WATCHES
            | op::REMOVE_WATCHES
            | op::CREATE_CONTAINER
            | op::DELETE_CONTAINER
            | op::CREATE_TTL
            | op::MULTI_READ
            | op::AUTH
            | op::SET_WATCHES
            | op::SASL
            | op::GET_EPHEMERALS
            | op::GET_ALL_CHILDREN_NUMBER
            | op::SET_WATCHES2
            | op::ADD_WATCH
            | op::WHO_AM_I
            | op::CLOSE_SESSION
    )
}

const MULTI_HEADER_BYTES: usize = 9;

impl Request {
    /// Decodes the body of a request whose header carried `code`. Call only for known ops.
    pub fn read(code: i32, r: &mut Reader) -> DResult<Request> {
        Ok(match code {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
                Request::Create(CreateRequest::read(code, r)?)
            }
            op::DELETE => Request::Delete {
                path: r.string()?,
                version: r.i32()?,
            },
            op::EXISTS => Request::Exists {
                path: r.string()?,
                watch: r.bool()?,
            },
            op::GET_DATA => Request::GetData {
                path: r.string()?,
                watch: r.bool()?,
            },
            op::SET_DATA => Request::SetData {
                path: r.string()?,
                data: r.buffer()?,
                version: r.i32()?,
            },
            op::GET_ACL => Request::GetAcl { path: r.string()? },
            op::SET_ACL => Request::SetAcl {
                path: r.string()?,
                acl: read_acl_vec(r)?,
                version: r.i32()?,
            },
            op::GET_CHILDREN | op::GET_CHILDREN2 => Request::GetChildren {
                path: r.string()?,
                watch: r.bool()?,
                with_stat: code == op::GET_CHILDREN2,
            },
            op::SYNC => Request::Sync { path: r.string()? },
            op::PING => Request::Ping,
            op::CHECK => Request::Check {
                path: r.string()?,
                version: r.i32()?,
            },
            op::MULTI | op::MULTI_READ => read_multi(code, r)?,
            op::RECONFIG => {
                // The body is parsed only for well-formedness: reconfig is always refused.
                r.ustring()?;
                r.ustring()?;
                r.ustring()?;
                r.i64()?;
                Request::Reconfig
            }
            op::CHECK_WATCHES => Request::CheckWatches {
                path: r.string()?,
                watcher_type: r.i32()?,
            },
            op::REMOVE_WATCHES => Request::RemoveWatches {
                path: r.string()?,
                watcher_type: r.i32()?,
            },
            op::DELETE_CONTAINER => Request::DeleteContainer { path: r.string()? },
            op::AUTH => Request::Auth {
                auth_type: r.i32()?,
                scheme: r.string()?,
                auth: r.buffer()?,
            },
            op::SET_WATCHES | op::SET_WATCHES2 => {
                let mut sw = SetWatches {
                    relative_zxid: r.i64()?,
                    data: r.string_vec()?.unwrap_or_default(),
                    exist: r.string_vec()?.unwrap_or_default(),
                    child: r.string_vec()?.unwrap_or_default(),
                    ..Default::default()
                };
                if code == op::SET_WATCHES2 {
                    sw.persistent = r.string_vec()?.unwrap_or_default();
                    sw.persistent_recursive = r.string_vec()?.unwrap_or_default();
                }
                Request::SetWatches(sw)
            }
            op::SASL => Request::Sasl {
                token: r.buffer()?.unwrap_or_default(),
            },
            op::GET_EPHEMERALS => Request::GetEphemerals {
                prefix: r.ustring()?.unwrap_or_default(),
            },
            op::GET_ALL_CHILDREN_NUMBER => Request::GetAllChildrenNumber { path: r.string()? },
            op::ADD_WATCH => Request::AddWatch {
                path: r.string()?,
                mode: r.i32()?,
            },
            op::WHO_AM_I => Request::WhoAmI,
            op::CLOSE_SESSION => Request::CloseSession,
            other => return Err(DecodeError::BadValue("opcode", other as i64)),
        })
    }
}

/// Reads a MultiOperationRecord. Mixing reads with writes, an unknown op type, or a create
/// with flags outside CreateMode fails the whole record (the server answers MarshallingError).
fn read_multi(code: i32, r: &mut Reader) -> DResult<Request> {
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    loop {
        if r.remaining() < MULTI_HEADER_BYTES {
            return Err(DecodeError::Truncated {
                needed: MULTI_HEADER_BYTES,
                left: r.remaining(),
            });
        }
        let t = r.i32()?;
        let done = r.bool()?;
        let _err = r.i32()?;
        if done {
            break;
        }
        if code == op::MULTI {
            let o = match t {
                op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
                    let c = CreateRequest::read(t, r)?;
                    if super::consts::CreateMode::from_flags(c.flags).is_none() {
                        return Err(DecodeError::BadValue("create flags", c.flags as i64));
                    }
                    MultiOp::Create(c)
                }
                op::DELETE => MultiOp::Delete {
                    path: r.string()?,
                    version: r.i32()?,
                },
                op::SET_DATA => MultiOp::SetData {
                    path: r.string()?,
                    data: r.buffer()?,
                    version: r.i32()?,
                },
                op::CHECK => MultiOp::Check {
                    path: r.string()?,
                    version: r.i32()?,
                },
                other => return Err(DecodeError::BadValue("multi op type", other as i64)),
            };
            writes.push(o);
        } else {
            let o = match t {
                op::GET_CHILDREN => {
                    let path = r.string()?;
                    r.bool()?;
                    ReadOp::GetChildren { path }
                }
                op::GET_DATA => {
                    let path = r.string()?;
                    r.bool()?;
                    ReadOp::GetData { path }
                }
                other => return Err(DecodeError::BadValue("multiRead op type", other as i64)),
            };
            reads.push(o);
        }
    }
    Ok(if code == op::MULTI {
        Request::Multi(writes)
    } else {
        Request::MultiRead(reads)
    })
}

/// Writes a MultiHeader.
pub fn write_multi_header(w: &mut Writer, t: i32, done: bool, err: i32) {
    w.i32(t).bool(done).i32(err);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_request_with_and_without_read_only() {
        let mut req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 30000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: Some(false),
        };
        let mut w = Writer::new();
        req.write(&mut w);
        assert_eq!(w.buf.len(), 45);
        assert_eq!(ConnectRequest::read(&w.buf).unwrap(), req);
        req.read_only = None;
        let mut w = Writer::new();
        req.write(&mut w);
        assert_eq!(w.buf.len(), 44);
        assert_eq!(ConnectRequest::read(&w.buf).unwrap(), req);
    }

    #[test]
    fn connect_response_is_41_bytes_with_read_only() {
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms: 30000,
            session_id: 1,
            passwd: vec![7; 16],
            read_only: Some(false),
        };
        assert_eq!(resp.to_frame().len(), 41);
    }

    #[test]
    fn multi_mixing_reads_and_writes_fails() {
        let mut w = Writer::new();
        write_multi_header(&mut w, op::GET_DATA, false, -1);
        w.string("/a").bool(false);
        write_multi_header(&mut w, -1, true, -1);
        assert!(Request::read(op::MULTI, &mut Reader::new(&w.buf)).is_err());
        assert!(Request::read(op::MULTI_READ, &mut Reader::new(&w.buf)).is_ok());
    }

    #[test]
    fn stat_is_68_bytes() {
        let mut w = Writer::new();
        Stat::default().write(&mut w);
        assert_eq!(w.buf.len(), 68);
    }
}
