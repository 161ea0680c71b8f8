//! The ZooKeeper client protocol as bytes in, values out: jute encoding, records, opcodes and
//! error codes, frame splitting, and the txn records the tree applies. Pure: no I/O, no
//! clock; never panics on hostile input. Corresponds to zookeeper-jute plus ZooDefs and
//! KeeperException in Apache ZooKeeper.

pub mod consts;
pub mod frame;
pub mod jute;
pub mod peer;
pub mod records;
pub mod txn;

pub use consts::{Code, CreateMode};
pub use jute::{DecodeError, Reader, Writer};
pub use records::*;

/// Every opcode `Request::read` has a branch for, including the ones the server refuses as
/// top-level requests (check), so that each decoder is reachable from `fuzz_decode`.
const FUZZ_OPS: &[i32] = &[
    consts::op::CREATE,
    consts::op::DELETE,
    consts::op::EXISTS,
    consts::op::GET_DATA,
    consts::op::SET_DATA,
    consts::op::GET_ACL,
    consts::op::SET_ACL,
    consts::op::GET_CHILDREN,
    consts::op::SYNC,
    consts::op::PING,
    consts::op::GET_CHILDREN2,
    consts::op::CHECK,
    consts::op::MULTI,
    consts::op::CREATE2,
    consts::op::RECONFIG,
    consts::op::CHECK_WATCHES,
    consts::op::REMOVE_WATCHES,
    consts::op::CREATE_CONTAINER,
    consts::op::DELETE_CONTAINER,
    consts::op::CREATE_TTL,
    consts::op::MULTI_READ,
    consts::op::AUTH,
    consts::op::SET_WATCHES,
    consts::op::SASL,
    consts::op::GET_EPHEMERALS,
    consts::op::GET_ALL_CHILDREN_NUMBER,
    consts::op::SET_WATCHES2,
    consts::op::ADD_WATCH,
    consts::op::WHO_AM_I,
    consts::op::CLOSE_SESSION,
];

/// Runs every decoder of this module over `data`, as the fuzzer (tests/fuzz) and its replay
/// test (tests/fuzz_corpus.rs) do: frame checks, the handshake records, a request header
/// followed by the body its opcode names, the body read as every opcode, reply headers,
/// Stat, ACL vectors and txns. It returns nothing; its only job is to never panic, and to
/// check that what decodes re-encodes to something that decodes to the same value.
pub fn fuzz_decode(data: &[u8]) {
    // Small limits reach the TooLarge branch without megabyte inputs.
    for max in [0, 16, 0xfffff] {
        let _ = frame::check(data, max);
    }
    if let Ok(req) = ConnectRequest::read(data) {
        let mut w = Writer::new();
        req.write(&mut w);
        assert_eq!(
            ConnectRequest::read(&w.buf).as_ref(),
            Ok(&req),
            "ConnectRequest round trip"
        );
    }
    if let Ok(resp) = ConnectResponse::read(data) {
        let frame_bytes = resp.to_frame();
        assert_eq!(
            ConnectResponse::read(&frame_bytes[4..]).as_ref(),
            Ok(&resp),
            "ConnectResponse round trip"
        );
    }
    let mut r = Reader::new(data);
    if let Ok(hdr) = RequestHeader::read(&mut r) {
        if is_known_op(hdr.op) {
            let _ = Request::read(hdr.op, &mut r);
        }
    }
    for &code in FUZZ_OPS {
        let _ = Request::read(code, &mut Reader::new(data));
    }
    let _ = Request::read(consts::op::NOTIFICATION, &mut Reader::new(data));
    let _ = ReplyHeader::read(&mut Reader::new(data));
    let _ = Stat::read(&mut Reader::new(data));
    let _ = read_acl_vec(&mut Reader::new(data));
    let _ = Reader::new(data).string_vec();
    if let Ok(m) = peer::PeerMsg::decode(data) {
        assert_eq!(
            peer::PeerMsg::decode(&m.encode()),
            Ok(m),
            "peer message round trip"
        );
    }
    if let Ok((hdr, t)) = txn::decode(data) {
        let mut w = Writer::new();
        txn::encode(&hdr, &t, &mut w);
        assert_eq!(txn::decode(&w.buf), Ok((hdr, t)), "txn round trip");
    }
}
