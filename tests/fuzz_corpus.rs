//! Replays the fuzz corpus (tests/fuzz/corpus/decode) through every decoder, plus the
//! hand-made seeds and a deterministic mutation pass over both, so CI exercises the decoders
//! on stable Rust without libFuzzer. A panic anywhere is a decoder bug. It never runs a
//! server or touches the network. The seeds are ZooKeeper's own record shapes (PROTOCOL.md
//! §4–§7): handshakes, every request, multi, setWatches, replies and txns.
//!
//! `ZK_FUZZ_WRITE_SEEDS=1 cargo test --test fuzz_corpus` (re)writes the seeds into the
//! corpus directory as `seed-<name>` files, for cargo-fuzz to start from.

mod common;

use common::Rng;
use std::path::PathBuf;
use zk::client::codec;
use zk::proto::consts::{op, xid};
use zk::proto::records::{notification_frame, open_acl_unsafe, write_multi_header};
use zk::proto::txn::{self, Txn, TxnHeader};
use zk::proto::{
    Acl, ConnectRequest, ConnectResponse, CreateRequest, MultiOp, ReadOp, ReplyHeader, SetWatches,
    Stat, Writer,
};

/// Mutants made by the deterministic pass.
const MUTANTS: u32 = 20_000;
/// The seed of that pass.
const MUTATION_SEED: u64 = 0xf022_c0de_0000_0001;
/// The most mutations stacked on one mutant.
const MUTATIONS_PER_MUTANT_MAX: u64 = 4;
/// Corpus files larger than this are replayed but not mutated, to keep the pass quick.
const MUTATE_BYTES_MAX: usize = 64 << 10;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus/decode")
}

fn decode_all(data: &[u8]) {
    zk::proto::fuzz_decode(data);
    codec::fuzz_decode_replies(data);
}

fn request(x: i32, code: i32, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.i32(x).i32(code).raw(body);
    w.buf
}

fn with_frame(payload: Vec<u8>) -> Vec<u8> {
    let mut v = (payload.len() as i32).to_be_bytes().to_vec();
    v.extend(payload);
    v
}

fn stat() -> Stat {
    Stat {
        czxid: 5,
        mzxid: 6,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_000_001,
        version: 1,
        cversion: 2,
        aversion: 0,
        ephemeral_owner: 0x1000_0000_0000_0001,
        data_length: 3,
        num_children: 0,
        pzxid: 6,
    }
}

fn txn_bytes(t: Txn) -> Vec<u8> {
    let hdr = TxnHeader {
        client_id: 0x1000_0000_0000_0001,
        cxid: 4,
        zxid: 0x1_0000_0007,
        time_ms: 1_700_000_000_000,
    };
    let mut w = Writer::new();
    txn::encode(&hdr, &t, &mut w);
    w.buf
}

/// Well-formed inputs for every decoder, by name.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let acl = open_acl_unsafe();
    let digest_acl = vec![Acl::new(31, "digest", "u:+owfoSBn/am19roBPzR1/MfCblE=")];
    let mut s: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: &str, b: Vec<u8>| s.push((name.to_owned(), b));

    // Handshakes.
    let mut req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 30_000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    };
    let mut w = Writer::new();
    req.write(&mut w);
    add("connect-request", w.buf.clone());
    add("connect-request-framed", with_frame(w.buf));
    req.read_only = None;
    let mut w = Writer::new();
    req.write(&mut w);
    add("connect-request-go", w.buf);
    req.session_id = 0x1000_0000_0000_0001;
    req.passwd = (0..16).collect();
    req.last_zxid_seen = 42;
    req.read_only = Some(true);
    let mut w = Writer::new();
    req.write(&mut w);
    add("connect-request-resume", w.buf);
    let resp = ConnectResponse {
        protocol_version: 0,
        timeout_ms: 30_000,
        session_id: 0x1000_0000_0000_0001,
        passwd: (0..16).collect(),
        read_only: Some(false),
    };
    add("connect-response", resp.to_frame()[4..].to_vec());

    // Requests: header and body, as the server sees a frame's payload.
    let create = codec::create_body("/app/node-", Some(b"data"), &acl, 3, None);
    add("req-create", request(1, op::CREATE, &create));
    add(
        "req-create-framed",
        with_frame(request(1, op::CREATE, &create)),
    );
    add(
        "req-create2-digest-acl",
        request(
            2,
            op::CREATE2,
            &codec::create_body("/a", None, &digest_acl, 0, None),
        ),
    );
    add(
        "req-create-container",
        request(
            3,
            op::CREATE_CONTAINER,
            &codec::create_body("/c", Some(b""), &acl, 4, None),
        ),
    );
    add(
        "req-create-ttl",
        request(
            4,
            op::CREATE_TTL,
            &codec::create_body("/t", Some(b"x"), &acl, 5, Some(60_000)),
        ),
    );
    add(
        "req-delete",
        request(5, op::DELETE, &codec::path_int_body("/a", -1)),
    );
    add(
        "req-exists",
        request(6, op::EXISTS, &codec::path_watch_body("/a", true)),
    );
    add(
        "req-get-data",
        request(7, op::GET_DATA, &codec::path_watch_body("/a", false)),
    );
    add(
        "req-set-data",
        request(
            8,
            op::SET_DATA,
            &codec::set_data_body("/a", Some(b"new"), 3),
        ),
    );
    add(
        "req-get-acl",
        request(9, op::GET_ACL, &codec::path_body("/a")),
    );
    add(
        "req-set-acl",
        request(10, op::SET_ACL, &codec::set_acl_body("/a", &digest_acl, 0)),
    );
    add(
        "req-get-children",
        request(11, op::GET_CHILDREN, &codec::path_watch_body("/", true)),
    );
    add(
        "req-get-children2",
        request(12, op::GET_CHILDREN2, &codec::path_watch_body("/", false)),
    );
    add("req-sync", request(13, op::SYNC, &codec::path_body("/")));
    add("req-ping", request(xid::PING, op::PING, &[]));
    add(
        "req-check-top-level",
        request(14, op::CHECK, &codec::path_int_body("/a", 0)),
    );
    let multi = codec::multi_body(&[
        MultiOp::Create(CreateRequest {
            op: op::CREATE,
            path: "/m".into(),
            data: Some(b"v".to_vec()),
            acl: Some(acl.clone()),
            flags: 0,
            ttl: None,
        }),
        MultiOp::Create(CreateRequest {
            op: op::CREATE_TTL,
            path: "/m/t".into(),
            data: None,
            acl: Some(acl.clone()),
            flags: 6,
            ttl: Some(1000),
        }),
        MultiOp::SetData {
            path: "/m".into(),
            data: None,
            version: 0,
        },
        MultiOp::Check {
            path: "/m".into(),
            version: 1,
        },
        MultiOp::Delete {
            path: "/m".into(),
            version: -1,
        },
    ]);
    add("req-multi", request(15, op::MULTI, &multi));
    add(
        "req-multi-framed",
        with_frame(request(15, op::MULTI, &multi)),
    );
    add(
        "req-multi-empty",
        request(16, op::MULTI, &codec::multi_body(&[])),
    );
    add(
        "req-multi-read",
        request(
            17,
            op::MULTI_READ,
            &codec::multi_read_body(&[
                ReadOp::GetData { path: "/a".into() },
                ReadOp::GetChildren { path: "/".into() },
            ]),
        ),
    );
    let mut w = Writer::new();
    w.string("server.4=h:2888:3888")
        .ustring(None)
        .ustring(None)
        .i64(-1);
    add("req-reconfig", request(18, op::RECONFIG, &w.buf));
    add(
        "req-check-watches",
        request(19, op::CHECK_WATCHES, &codec::path_int_body("/a", 3)),
    );
    add(
        "req-remove-watches",
        request(20, op::REMOVE_WATCHES, &codec::path_int_body("/a", 5)),
    );
    add(
        "req-delete-container",
        request(21, op::DELETE_CONTAINER, &codec::path_body("/c")),
    );
    add(
        "req-auth",
        request(
            xid::AUTH,
            op::AUTH,
            &codec::auth_body("digest", b"user1:12345"),
        ),
    );
    let sw = SetWatches {
        relative_zxid: 7,
        data: vec!["/a".into(), "/b".into()],
        exist: vec!["/x".into()],
        child: vec!["/".into()],
        persistent: vec![],
        persistent_recursive: vec![],
    };
    let (code, body) = codec::set_watches_body(&sw);
    add("req-set-watches", request(xid::SET_WATCHES, code, &body));
    let sw2 = SetWatches {
        persistent: vec!["/p".into()],
        persistent_recursive: vec!["/r".into()],
        ..sw
    };
    let (code, body) = codec::set_watches_body(&sw2);
    add("req-set-watches2", request(xid::SET_WATCHES, code, &body));
    let mut w = Writer::new();
    w.buffer(Some(b"sasl-token"));
    add("req-sasl", request(22, op::SASL, &w.buf));
    add(
        "req-get-ephemerals",
        request(23, op::GET_EPHEMERALS, &codec::path_body("/")),
    );
    add(
        "req-get-all-children-number",
        request(24, op::GET_ALL_CHILDREN_NUMBER, &codec::path_body("/")),
    );
    add(
        "req-add-watch",
        request(25, op::ADD_WATCH, &codec::path_int_body("/", 1)),
    );
    add("req-who-am-i", request(26, op::WHO_AM_I, &[]));
    add("req-close-session", request(27, op::CLOSE_SESSION, &[]));

    // Replies and notifications, as the client reads them.
    let mut w = ReplyHeader {
        xid: 7,
        zxid: 9,
        err: 0,
    }
    .frame();
    w.buffer(Some(b"abc"));
    stat().write(&mut w);
    add("reply-get-data-framed", w.finish_frame());
    add(
        "notification",
        notification_frame(9, 3, 3, "/a")[4..].to_vec(),
    );
    let mut w = Writer::new();
    write_multi_header(&mut w, op::CREATE, false, 0);
    w.string("/m");
    write_multi_header(&mut w, op::CREATE2, false, 0);
    w.string("/m/t");
    stat().write(&mut w);
    write_multi_header(&mut w, op::SET_DATA, false, 0);
    stat().write(&mut w);
    write_multi_header(&mut w, op::CHECK, false, 0);
    write_multi_header(&mut w, op::ERROR, false, -101);
    w.i32(-101);
    write_multi_header(&mut w, -1, true, -1);
    add("reply-multi", w.buf);
    let mut w = Writer::new();
    zk::proto::records::write_acl_vec(&mut w, &digest_acl);
    stat().write(&mut w);
    add("reply-get-acl", w.buf);
    let mut w = Writer::new();
    w.i32(2)
        .string("ip")
        .string("127.0.0.1")
        .string("digest")
        .string("user1");
    add("reply-who-am-i", w.buf);

    // Txns, as the log stores them.
    add(
        "txn-create-session",
        txn_bytes(Txn::CreateSession { timeout_ms: 30_000 }),
    );
    add("txn-close-session", txn_bytes(Txn::CloseSession));
    add(
        "txn-create",
        txn_bytes(Txn::Create {
            path: "/a".into(),
            data: Some(b"v".to_vec()),
            acl: acl.clone(),
            ephemeral_owner: 0,
            parent_cversion: 1,
        }),
    );
    add(
        "txn-set-acl",
        txn_bytes(Txn::SetAcl {
            path: "/a".into(),
            acl: digest_acl,
            version: 1,
        }),
    );
    add(
        "txn-multi",
        txn_bytes(Txn::Multi(vec![
            Txn::Create {
                path: "/m".into(),
                data: None,
                acl,
                ephemeral_owner: i64::MIN,
                parent_cversion: 3,
            },
            Txn::SetData {
                path: "/m".into(),
                data: Some(b"x".to_vec()),
                version: 1,
            },
            Txn::Check {
                path: "/m".into(),
                version: 1,
            },
            Txn::Delete { path: "/m".into() },
            Txn::DeleteContainer { path: "/c".into() },
            Txn::Error { err: -101 },
        ])),
    );
    s
}

/// The corpus files, by name (empty if the directory is missing).
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir())
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_file())
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let bytes = std::fs::read(e.path()).expect("read corpus file");
                    (name, bytes)
                })
                .collect()
        })
        .unwrap_or_default();
    // Sorted, so the mutation pass is the same on every machine.
    v.sort();
    v
}

#[test]
fn seeds_decode_and_are_in_the_corpus() {
    let seeds = seeds();
    if std::env::var_os("ZK_FUZZ_WRITE_SEEDS").is_some() {
        std::fs::create_dir_all(corpus_dir()).unwrap();
        for (name, bytes) in &seeds {
            std::fs::write(corpus_dir().join(format!("seed-{name}")), bytes).unwrap();
        }
    }
    for (name, bytes) in &seeds {
        decode_all(bytes);
        // Every seed must be valid for the decoder it targets, or it seeds nothing.
        let valid = zk::proto::ConnectRequest::read(bytes).is_ok()
            || matches!(
                zk::proto::frame::check(bytes, 0xfffff),
                zk::proto::frame::FrameCheck::Complete { len } if len + 4 == bytes.len()
            )
            || txn::decode(bytes).is_ok()
            || request_decodes(bytes)
            || codec::read_multi_response(bytes).is_ok()
            || codec::read_acl_stat(bytes).is_ok()
            || codec::read_client_infos(bytes).is_ok()
            || codec::read_watch_event(bytes, 0).is_ok();
        assert!(valid, "seed {name} decodes as nothing");
    }
    let names: Vec<String> = corpus().into_iter().map(|(n, _)| n).collect();
    for (name, _) in &seeds {
        assert!(
            names.contains(&format!("seed-{name}")),
            "seed {name} is missing from {}; run ZK_FUZZ_WRITE_SEEDS=1 cargo test --test fuzz_corpus",
            corpus_dir().display()
        );
    }
}

fn request_decodes(b: &[u8]) -> bool {
    let mut r = zk::proto::Reader::new(b);
    match zk::proto::RequestHeader::read(&mut r) {
        Ok(h) => zk::proto::Request::read(h.op, &mut r).is_ok(),
        Err(_) => false,
    }
}

#[test]
fn corpus_replays_without_panics() {
    let files = corpus();
    for (name, bytes) in &files {
        let r = std::panic::catch_unwind(|| decode_all(bytes));
        assert!(r.is_ok(), "corpus file {name} makes a decoder panic");
    }
    eprintln!("replayed {} corpus files", files.len());
}

/// Lengths that sit on decoder boundaries.
const AWKWARD_I32: &[i32] = &[
    -1,
    -2,
    0,
    1,
    3,
    4,
    8,
    12,
    0x7f,
    0xff,
    0xfffff,
    0x100000,
    i32::MAX,
    i32::MIN,
];

fn mutate_once(b: &mut Vec<u8>, rng: &mut Rng, donors: &[Vec<u8>]) {
    match rng.below(8) {
        0 if !b.is_empty() => {
            let at = rng.below(b.len() as u64) as usize;
            b[at] ^= 1 << rng.below(8);
        }
        1 if !b.is_empty() => {
            let at = rng.below(b.len() as u64) as usize;
            b[at] = *rng.pick(&[0u8, 1, 0x7f, 0x80, 0xff]);
        }
        2 => {
            let n = rng.below(b.len() as u64 + 1) as usize;
            b.truncate(n);
        }
        3 if b.len() >= 4 => {
            // Length-field corruption: overwrite an aligned or unaligned 4-byte window.
            let at = rng.below(b.len() as u64 - 3) as usize;
            let v = *rng.pick(AWKWARD_I32);
            let v = if v == 3 { (b.len() - at) as i32 } else { v };
            b[at..at + 4].copy_from_slice(&v.to_be_bytes());
        }
        4 => {
            let at = rng.below(b.len() as u64 + 1) as usize;
            let extra = rng.bytes_below(16);
            b.splice(at..at, extra);
        }
        5 if b.len() >= 2 => {
            // Duplicate a chunk, as a repeated vector element would be.
            let from = rng.below(b.len() as u64) as usize;
            let to = from + rng.below((b.len() - from) as u64 + 1) as usize;
            let chunk = b[from..to].to_vec();
            let at = rng.below(b.len() as u64 + 1) as usize;
            b.splice(at..at, chunk);
        }
        6 if !donors.is_empty() => {
            // Splice: our head with another input's tail.
            let d = rng.pick(donors);
            let cut = rng.below(b.len() as u64 + 1) as usize;
            let dcut = rng.below(d.len() as u64 + 1) as usize;
            b.truncate(cut);
            b.extend_from_slice(&d[dcut..]);
        }
        _ => {
            let at = rng.below(b.len() as u64 + 1) as usize;
            b.insert(at, rng.next_u64() as u8);
        }
    }
}

#[test]
fn seeded_mutants_never_panic() {
    let mut inputs: Vec<(String, Vec<u8>)> = seeds();
    inputs.extend(
        corpus()
            .into_iter()
            .filter(|(_, b)| b.len() <= MUTATE_BYTES_MAX),
    );
    let donors: Vec<Vec<u8>> = inputs.iter().map(|(_, b)| b.clone()).collect();
    let mut rng = Rng::new(MUTATION_SEED);
    for i in 0..MUTANTS {
        let (name, base) = rng.pick(&inputs).clone();
        let mut b = base;
        for _ in 0..1 + rng.below(MUTATIONS_PER_MUTANT_MAX) {
            mutate_once(&mut b, &mut rng, &donors);
        }
        let r = std::panic::catch_unwind(|| decode_all(&b));
        assert!(
            r.is_ok(),
            "mutant {i} of {name} makes a decoder panic: {b:02x?}"
        );
    }
}
