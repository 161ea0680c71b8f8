//! The client's side of the record layer: encoders for the request bodies a client sends and
//! decoders for the reply bodies and notifications it receives. Pure: bytes in, values out,
//! no sockets, and every decoder returns a `DecodeError` rather than panicking on a short or
//! hostile reply. It never frames or sends anything; `Client` does that. Corresponds to the
//! request and response record handling inside Apache ZooKeeper's ClientCnxn and
//! MultiResponse/OpResult.

use crate::proto::consts::op;
use crate::proto::jute::{DResult, DecodeError, Reader, Writer};
use crate::proto::records::{read_acl_vec, write_acl_vec, write_multi_header, Acl, Stat};
use crate::proto::{Code, CreateRequest, MultiOp, ReadOp, SetWatches};

/// A watch notification as the server sent it: `WatcherEvent{type, state, path}` plus the
/// zxid from its reply header (the triggering txn's zxid; -1 from ZooKeeper 3.8 and older).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub event_type: i32,
    pub state: i32,
    pub path: String,
    pub zxid: i64,
}

/// One authenticated identity of a connection, as whoAmI reports it (`ClientInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    pub auth_scheme: String,
    pub user: String,
}

/// The outcome of one op inside a multi or multiRead (Apache's OpResult subclasses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// A create sent as op 1: only the actual path comes back.
    Create {
        path: String,
    },
    /// A create sent as op 15, 19 or 21: the path and the new node's Stat.
    Create2 {
        path: String,
        stat: Stat,
    },
    Delete,
    SetData {
        stat: Stat,
    },
    Check,
    GetChildren {
        children: Vec<String>,
    },
    GetData {
        data: Option<Vec<u8>>,
        stat: Stat,
    },
    /// The op failed with this code; in a failed multi the ops before the failing one report
    /// `Ok` and the ones after it `RuntimeInconsistency`.
    Error(Code),
}

/// Reads an error code, turning a number ZooKeeper never assigned into a decode error so a
/// caller can tell a garbled reply from a real server answer.
pub fn read_code(n: i32) -> DResult<Code> {
    Code::from_code(n).ok_or(DecodeError::BadValue("error code", n as i64))
}

/// `CreateRequest` for ops 1, 15 and 19, or `CreateTTLRequest` for op 21 when `ttl` is set.
pub fn create_body(
    path: &str,
    data: Option<&[u8]>,
    acl: &[Acl],
    flags: i32,
    ttl: Option<i64>,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(path).buffer(data);
    write_acl_vec(&mut w, acl);
    w.i32(flags);
    if let Some(t) = ttl {
        w.i64(t);
    }
    w.buf
}

/// `{ustring path, int n}`: delete (n is a version) and the watch requests checkWatches,
/// removeWatches and addWatch (n is a watcher type or an addWatch mode).
pub fn path_int_body(path: &str, n: i32) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(path).i32(n);
    w.buf
}

/// `{ustring path, boolean watch}`: exists, getData, getChildren and getChildren2.
pub fn path_watch_body(path: &str, watch: bool) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(path).bool(watch);
    w.buf
}

/// `{ustring path}`: getACL, sync, getEphemerals, getAllChildrenNumber.
pub fn path_body(path: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(path);
    w.buf
}

pub fn set_data_body(path: &str, data: Option<&[u8]>, version: i32) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(path).buffer(data).i32(version);
    w.buf
}

pub fn set_acl_body(path: &str, acl: &[Acl], version: i32) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(path);
    write_acl_vec(&mut w, acl);
    w.i32(version);
    w.buf
}

/// `AuthPacket{int type, ustring scheme, buffer auth}`; type is always 0.
pub fn auth_body(scheme: &str, auth: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.i32(0).string(scheme).buffer(Some(auth));
    w.buf
}

/// SetWatches (op 101) or, when persistent watches are present, SetWatches2 (op 105), as the
/// Java client chooses. Returns the opcode and the body.
pub fn set_watches_body(sw: &SetWatches) -> (i32, Vec<u8>) {
    let v2 = !sw.persistent.is_empty() || !sw.persistent_recursive.is_empty();
    let mut w = Writer::new();
    w.i64(sw.relative_zxid)
        .string_vec(&sw.data)
        .string_vec(&sw.exist)
        .string_vec(&sw.child);
    if v2 {
        w.string_vec(&sw.persistent)
            .string_vec(&sw.persistent_recursive);
        (op::SET_WATCHES2, w.buf)
    } else {
        (op::SET_WATCHES, w.buf)
    }
}

fn write_create_request(w: &mut Writer, c: &CreateRequest) {
    w.string(&c.path).buffer(c.data.as_deref());
    match &c.acl {
        None => {
            w.i32(-1);
        }
        Some(a) => write_acl_vec(w, a),
    }
    w.i32(c.flags);
    if c.op == op::CREATE_TTL {
        w.i64(c.ttl.unwrap_or(0));
    }
}

/// A `MultiOperationRecord` for op 14: one MultiHeader and body per op, then the terminator.
pub fn multi_body(ops: &[MultiOp]) -> Vec<u8> {
    let mut w = Writer::new();
    for o in ops {
        match o {
            MultiOp::Create(c) => {
                write_multi_header(&mut w, c.op, false, -1);
                write_create_request(&mut w, c);
            }
            MultiOp::Delete { path, version } => {
                write_multi_header(&mut w, op::DELETE, false, -1);
                w.string(path).i32(*version);
            }
            MultiOp::SetData {
                path,
                data,
                version,
            } => {
                write_multi_header(&mut w, op::SET_DATA, false, -1);
                w.string(path).buffer(data.as_deref()).i32(*version);
            }
            MultiOp::Check { path, version } => {
                write_multi_header(&mut w, op::CHECK, false, -1);
                w.string(path).i32(*version);
            }
        }
    }
    write_multi_header(&mut w, -1, true, -1);
    w.buf
}

/// A `MultiOperationRecord` for op 22 (multiRead). The watch flag is sent as false because the
/// server ignores it inside multiRead anyway.
pub fn multi_read_body(ops: &[ReadOp]) -> Vec<u8> {
    let mut w = Writer::new();
    for o in ops {
        match o {
            ReadOp::GetChildren { path } => {
                write_multi_header(&mut w, op::GET_CHILDREN, false, -1);
                w.string(path).bool(false);
            }
            ReadOp::GetData { path } => {
                write_multi_header(&mut w, op::GET_DATA, false, -1);
                w.string(path).bool(false);
            }
        }
    }
    write_multi_header(&mut w, -1, true, -1);
    w.buf
}

/// Reads a `MultiResponse`: results until the terminator header (done = true).
pub fn read_multi_response(body: &[u8]) -> DResult<Vec<OpResult>> {
    let mut r = Reader::new(body);
    let mut out = Vec::new();
    loop {
        let t = r.i32()?;
        let done = r.bool()?;
        let err = r.i32()?;
        if done {
            break;
        }
        let res = match t {
            op::CREATE => OpResult::Create { path: r.string()? },
            op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => OpResult::Create2 {
                path: r.string()?,
                stat: Stat::read(&mut r)?,
            },
            op::DELETE => OpResult::Delete,
            op::SET_DATA => OpResult::SetData {
                stat: Stat::read(&mut r)?,
            },
            op::CHECK => OpResult::Check,
            op::GET_CHILDREN => OpResult::GetChildren {
                children: r.string_vec()?.unwrap_or_default(),
            },
            op::GET_DATA => OpResult::GetData {
                data: r.buffer()?,
                stat: Stat::read(&mut r)?,
            },
            op::ERROR => {
                // ErrorResponse repeats the code carried in the header; the header wins.
                r.i32()?;
                OpResult::Error(read_code(err)?)
            }
            other => return Err(DecodeError::BadValue("multi result type", other as i64)),
        };
        out.push(res);
    }
    Ok(out)
}

/// Reads a notification body (`WatcherEvent`); the zxid comes from its reply header.
pub fn read_watch_event(body: &[u8], zxid: i64) -> DResult<WatchEvent> {
    let mut r = Reader::new(body);
    Ok(WatchEvent {
        event_type: r.i32()?,
        state: r.i32()?,
        path: r.string()?,
        zxid,
    })
}

/// `GetDataResponse{buffer data, Stat stat}`.
pub fn read_data_stat(body: &[u8]) -> DResult<(Option<Vec<u8>>, Stat)> {
    let mut r = Reader::new(body);
    Ok((r.buffer()?, Stat::read(&mut r)?))
}

/// A reply that is just a Stat (exists, setData, setACL).
pub fn read_stat(body: &[u8]) -> DResult<Stat> {
    Stat::read(&mut Reader::new(body))
}

/// A reply that is just a ustring (create, sync).
pub fn read_string(body: &[u8]) -> DResult<String> {
    Reader::new(body).string()
}

/// `Create2Response{ustring path, Stat stat}`.
pub fn read_string_stat(body: &[u8]) -> DResult<(String, Stat)> {
    let mut r = Reader::new(body);
    Ok((r.string()?, Stat::read(&mut r)?))
}

/// A reply that is just `vector<ustring>` (getChildren, getEphemerals).
pub fn read_strings(body: &[u8]) -> DResult<Vec<String>> {
    Ok(Reader::new(body).string_vec()?.unwrap_or_default())
}

/// `GetChildren2Response{vector<ustring> children, Stat stat}`.
pub fn read_strings_stat(body: &[u8]) -> DResult<(Vec<String>, Stat)> {
    let mut r = Reader::new(body);
    Ok((r.string_vec()?.unwrap_or_default(), Stat::read(&mut r)?))
}

/// `GetACLResponse{vector<ACL> acl, Stat stat}`.
pub fn read_acl_stat(body: &[u8]) -> DResult<(Vec<Acl>, Stat)> {
    let mut r = Reader::new(body);
    Ok((
        read_acl_vec(&mut r)?.unwrap_or_default(),
        Stat::read(&mut r)?,
    ))
}

/// A reply that is a single int (getAllChildrenNumber, addWatch's ErrorResponse).
pub fn read_int(body: &[u8]) -> DResult<i32> {
    Reader::new(body).i32()
}

/// `WhoAmIResponse{vector<ClientInfo> clientInfo}`.
pub fn read_client_infos(body: &[u8]) -> DResult<Vec<ClientInfo>> {
    let mut r = Reader::new(body);
    let n = r.vec_len(8)?.unwrap_or(0);
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(ClientInfo {
            auth_scheme: r.string()?,
            user: r.string()?,
        });
    }
    Ok(v)
}

/// Runs every reply decoder of this module over `data`; for the fuzzer and its replay test,
/// next to `proto::fuzz_decode`. Its only job is to never panic.
pub fn fuzz_decode_replies(data: &[u8]) {
    let _ = read_multi_response(data);
    let _ = read_watch_event(data, -1);
    let _ = read_data_stat(data);
    let _ = read_stat(data);
    let _ = read_string(data);
    let _ = read_string_stat(data);
    let _ = read_strings(data);
    let _ = read_strings_stat(data);
    let _ = read_acl_stat(data);
    let _ = read_int(data);
    let _ = read_client_infos(data);
    if let Ok(n) = read_int(data) {
        let _ = read_code(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::records::{open_acl_unsafe, Request};

    /// What the client encodes, the server's decoder must read back as the same request.
    #[test]
    fn create_body_decodes_as_the_server_reads_it() {
        let acl = open_acl_unsafe();
        let body = create_body("/a", Some(b"x"), &acl, 1, None);
        let req = Request::read(op::CREATE, &mut Reader::new(&body)).unwrap();
        assert_eq!(
            req,
            Request::Create(CreateRequest {
                op: op::CREATE,
                path: "/a".into(),
                data: Some(b"x".to_vec()),
                acl: Some(acl.clone()),
                flags: 1,
                ttl: None,
            })
        );
        let body = create_body("/t", None, &acl, 5, Some(1000));
        match Request::read(op::CREATE_TTL, &mut Reader::new(&body)).unwrap() {
            Request::Create(c) => assert_eq!((c.ttl, c.data), (Some(1000), None)),
            other => panic!("decoded as {other:?}"),
        }
    }

    #[test]
    fn multi_body_round_trips_through_the_server_decoder() {
        let ops = vec![
            MultiOp::Create(CreateRequest {
                op: op::CREATE,
                path: "/m".into(),
                data: None,
                acl: Some(open_acl_unsafe()),
                flags: 0,
                ttl: None,
            }),
            MultiOp::SetData {
                path: "/m".into(),
                data: Some(b"v".to_vec()),
                version: -1,
            },
            MultiOp::Check {
                path: "/m".into(),
                version: 1,
            },
            MultiOp::Delete {
                path: "/m".into(),
                version: 1,
            },
        ];
        let body = multi_body(&ops);
        assert_eq!(
            Request::read(op::MULTI, &mut Reader::new(&body)).unwrap(),
            Request::Multi(ops)
        );
        let reads = vec![
            ReadOp::GetData { path: "/a".into() },
            ReadOp::GetChildren { path: "/".into() },
        ];
        let body = multi_read_body(&reads);
        assert_eq!(
            Request::read(op::MULTI_READ, &mut Reader::new(&body)).unwrap(),
            Request::MultiRead(reads)
        );
    }

    #[test]
    fn set_watches_picks_op_by_content() {
        let mut sw = SetWatches {
            relative_zxid: 7,
            data: vec!["/a".into()],
            ..Default::default()
        };
        let (code, body) = set_watches_body(&sw);
        assert_eq!(code, op::SET_WATCHES);
        assert_eq!(
            Request::read(code, &mut Reader::new(&body)).unwrap(),
            Request::SetWatches(sw.clone())
        );
        sw.persistent_recursive = vec!["/r".into()];
        let (code, body) = set_watches_body(&sw);
        assert_eq!(code, op::SET_WATCHES2);
        assert_eq!(
            Request::read(code, &mut Reader::new(&body)).unwrap(),
            Request::SetWatches(sw)
        );
    }

    #[test]
    fn multi_response_with_failure() {
        let stat = Stat {
            version: 3,
            ..Default::default()
        };
        let mut w = Writer::new();
        write_multi_header(&mut w, op::CREATE, false, 0);
        w.string("/x");
        write_multi_header(&mut w, op::CREATE2, false, 0);
        w.string("/y");
        stat.write(&mut w);
        write_multi_header(&mut w, op::SET_DATA, false, 0);
        stat.write(&mut w);
        write_multi_header(&mut w, op::DELETE, false, 0);
        write_multi_header(&mut w, op::CHECK, false, 0);
        write_multi_header(&mut w, op::ERROR, false, -101);
        w.i32(-101);
        write_multi_header(&mut w, -1, true, -1);
        assert_eq!(
            read_multi_response(&w.buf).unwrap(),
            vec![
                OpResult::Create { path: "/x".into() },
                OpResult::Create2 {
                    path: "/y".into(),
                    stat
                },
                OpResult::SetData { stat },
                OpResult::Delete,
                OpResult::Check,
                OpResult::Error(Code::NoNode),
            ]
        );
    }

    #[test]
    fn multi_read_response() {
        let mut w = Writer::new();
        write_multi_header(&mut w, op::GET_CHILDREN, false, 0);
        w.string_vec(&["a", "b"]);
        write_multi_header(&mut w, op::GET_DATA, false, 0);
        w.buffer(None);
        Stat::default().write(&mut w);
        write_multi_header(&mut w, -1, true, -1);
        assert_eq!(
            read_multi_response(&w.buf).unwrap(),
            vec![
                OpResult::GetChildren {
                    children: vec!["a".into(), "b".into()]
                },
                OpResult::GetData {
                    data: None,
                    stat: Stat::default()
                },
            ]
        );
    }

    #[test]
    fn hostile_multi_responses_are_errors() {
        // Missing terminator, unknown result type, unknown error code, truncated stat.
        let mut w = Writer::new();
        write_multi_header(&mut w, op::DELETE, false, 0);
        assert!(read_multi_response(&w.buf).is_err());
        let mut w = Writer::new();
        write_multi_header(&mut w, 77, false, 0);
        assert!(read_multi_response(&w.buf).is_err());
        let mut w = Writer::new();
        write_multi_header(&mut w, op::ERROR, false, -9);
        w.i32(-9);
        write_multi_header(&mut w, -1, true, -1);
        assert!(read_multi_response(&w.buf).is_err());
        let mut w = Writer::new();
        write_multi_header(&mut w, op::SET_DATA, false, 0);
        w.i64(1);
        assert!(read_multi_response(&w.buf).is_err());
    }

    #[test]
    fn watch_event_and_small_replies() {
        let mut w = Writer::new();
        w.i32(3).i32(3).string("/n");
        assert_eq!(
            read_watch_event(&w.buf, 9).unwrap(),
            WatchEvent {
                event_type: 3,
                state: 3,
                path: "/n".into(),
                zxid: 9
            }
        );
        assert!(read_watch_event(&w.buf[..6], 9).is_err());
        let mut w = Writer::new();
        w.i32(2)
            .string("digest")
            .string("u")
            .string("ip")
            .string("127.0.0.1");
        assert_eq!(
            read_client_infos(&w.buf).unwrap(),
            vec![
                ClientInfo {
                    auth_scheme: "digest".into(),
                    user: "u".into()
                },
                ClientInfo {
                    auth_scheme: "ip".into(),
                    user: "127.0.0.1".into()
                },
            ]
        );
        // A count far beyond the bytes present is refused before allocating.
        let mut w = Writer::new();
        w.i32(i32::MAX);
        assert!(read_client_infos(&w.buf).is_err());
        assert!(read_strings(&w.buf).is_err());
        assert!(read_acl_stat(&w.buf).is_err());
    }
}
