//! `zk snapshot`: offline tools over a data directory — list snapshots and log segments,
//! dump the tree, print txn records, verify every file, restore a snapshot into a stopped
//! server's directory, and `save`: ask a running server to take a snapshot now (zk's own
//! four-letter word `snap`, allowed from loopback). A thin front-end over `storage`. Reading
//! verbs never change files; `restore` takes the directory lock first. Corresponds to ZooKeeper's
//! SnapshotFormatter, TxnLogToolkit and the manual restore procedure.

use crate::cmd::json::json_str;
use crate::config::{self, Config};
use crate::proto::consts::{owner_kind, OwnerKind};
use crate::proto::txn::{Txn, TxnHeader};
use crate::proto::Acl;
use crate::server::fourlw::java_date;
use crate::storage::{self, txnlog, StorageError};
use crate::tree::acl::perm_string;
use crate::tree::{DataTree, NodeRef};
use base64::Engine;
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::error::Error;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    /// zoo.cfg to take dataDir and dataLogDir from.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Snapshot directory (dataDir); default ./data, or the config's.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Txn log directory (dataLogDir); default the data directory, or the config's.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_log_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Subcommand, Debug)]
pub enum Verb {
    /// List snapshots and txn log segments with their zxid ranges and sizes.
    Ls,
    /// Print the tree (path, stat, ACL, data) of a snapshot, or by default the state the data
    /// directory recovers to (newest snapshot plus the log).
    Dump {
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// A snapshot file to dump instead of the recovered state.
        snapshot: Option<PathBuf>,
    },
    /// Print txn log records one per line, like ZooKeeper's TxnLogToolkit: time, session,
    /// cxid, zxid, type, details.
    Log {
        /// One segment file; default every segment of the log directory, in order.
        file: Option<PathBuf>,
    },
    /// Check every CRC and the structure of every snapshot and log segment, and that the
    /// directory recovers. Exits non-zero, naming the file and offset, on damage.
    Verify,
    /// Ask a running server to take a snapshot now. With a known data directory (--data-dir
    /// or --config), wait until the snapshot file is complete and print its path.
    Save {
        /// host:port of the server; default the config's clientPort on localhost, or
        /// localhost:2181.
        #[arg(long, short = 's', value_name = "HOST:PORT")]
        server: Option<String>,
    },
    /// Install a snapshot into a stopped server's data directory. Existing snapshots and logs
    /// are moved to restore-backup-<time>, never deleted.
    Restore {
        /// The snapshot file to install.
        snapshot: PathBuf,
    },
}

pub fn run(mut a: SnapshotArgs) -> Result<i32, Box<dyn Error>> {
    // `save` with a config and no --server asks the server that config describes.
    if let (Verb::Save { server: s @ None }, Some(cfg)) = (&mut a.verb, &a.config) {
        if let Some(port) = config::load(cfg)?.client_port {
            *s = Some(format!("127.0.0.1:{port}"));
        }
    }
    let explicit = a.data_dir.is_some() || a.config.is_some();
    let (data_dir, log_dir) = dirs(&a)?;
    let out = io::stdout();
    let mut out = BufWriter::new(out.lock());
    let res = run_verb(&mut out, a.verb, explicit, &data_dir, &log_dir).and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match res {
        // A reader that stopped early (`zk snapshot dump | head`) is not an error.
        Err(e)
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            Ok(0)
        }
        r => r,
    }
}

/// How long `save` waits for the server to finish writing the snapshot.
const SAVE_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

fn save(
    out: &mut dyn Write,
    server: Option<String>,
    data_dir: Option<&Path>,
) -> Result<i32, Box<dyn Error>> {
    let server = server.unwrap_or_else(|| "localhost:2181".to_owned());
    let reply =
        crate::client::four_letter_word(&server, "snap", std::time::Duration::from_secs(10))
            .map_err(|e| format!("cannot reach {server}: {e}"))?;
    let Some(zxid_hex) = reply
        .trim()
        .strip_prefix("Snapshot started at zxid 0x")
        .map(str::to_owned)
    else {
        writeln!(out, "{}", reply.trim())?;
        return Ok(1);
    };
    writeln!(out, "snapshot of zxid 0x{zxid_hex} started on {server}")?;
    let Some(dir) = data_dir else {
        return Ok(0);
    };
    let file = storage::version_dir(dir).join(format!("snapshot.{zxid_hex}"));
    let deadline = std::time::Instant::now() + SAVE_WAIT;
    while !file.exists() {
        if std::time::Instant::now() > deadline {
            return Err(format!("{} did not appear within {SAVE_WAIT:?}", file.display()).into());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    writeln!(out, "{}", file.display())?;
    Ok(0)
}

fn run_verb(
    out: &mut dyn Write,
    verb: Verb,
    explicit: bool,
    data_dir: &Path,
    log_dir: &Path,
) -> Result<i32, Box<dyn Error>> {
    let (data_dir, log_dir) = (data_dir.to_owned(), log_dir.to_owned());
    let code = match verb {
        Verb::Ls => ls(out, &data_dir, &log_dir)?,
        Verb::Dump { json, snapshot } => dump(out, &data_dir, &log_dir, snapshot, json)?,
        Verb::Log { file } => print_log(out, &log_dir, file)?,
        Verb::Verify => verify(out, &data_dir, &log_dir)?,
        Verb::Save { server } => save(out, server, explicit.then_some(data_dir.as_path()))?,
        Verb::Restore { snapshot } => {
            if !explicit {
                return Err(
                    "restore needs --data-dir DIR or --config FILE: it will not guess \
                            which directory to overwrite"
                        .into(),
                );
            }
            restore(out, &snapshot, &data_dir, &log_dir)?
        }
    };
    Ok(code)
}

/// dataDir and dataLogDir: flags first, then the config, then ZooKeeper's rule that the log
/// lives in dataDir unless dataLogDir says otherwise.
fn dirs(a: &SnapshotArgs) -> Result<(PathBuf, PathBuf), Box<dyn Error>> {
    let cfg = match &a.config {
        Some(p) => config::load(p)?,
        None => Config::default(),
    };
    let data = a.data_dir.clone().unwrap_or_else(|| cfg.data_dir.clone());
    let log = match (&a.data_log_dir, cfg.data_log_dir_explicit) {
        (Some(l), _) => l.clone(),
        (None, true) => cfg.data_log_dir.clone(),
        (None, false) => data.clone(),
    };
    Ok((data, log))
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn ls(out: &mut dyn Write, data_dir: &Path, log_dir: &Path) -> Result<i32, Box<dyn Error>> {
    writeln!(
        out,
        "snapshots in {}",
        storage::version_dir(data_dir).display()
    )?;
    writeln!(
        out,
        "logs in      {}",
        storage::version_dir(log_dir).display()
    )?;
    writeln!(
        out,
        "{:<9} {:<22} {:<24} {:<30} {:>10}",
        "TYPE", "FILE", "ZXIDS", "COUNT", "SIZE"
    )?;
    for (zxid, p) in storage::list_snapshots(data_dir)? {
        let size = fs::metadata(&p)?.len();
        let (zxids, count) = match storage::snapshot::peek_snapshot(&p) {
            Ok((z, nodes, sessions)) => (
                format!("0x{z:x}"),
                format!("{nodes} nodes, {sessions} sessions"),
            ),
            Err(e) => (format!("0x{zxid:x}"), format!("unreadable: {e}")),
        };
        writeln!(
            out,
            "{:<9} {:<22} {:<24} {:<30} {:>10}",
            "snapshot",
            file_name(&p),
            zxids,
            count,
            human_bytes(size)
        )?;
    }
    let logs = storage::list_logs(log_dir)?;
    for (i, (first, p)) in logs.iter().enumerate() {
        let size = fs::metadata(p)?.len();
        let (zxids, count) = match txnlog::read_log_file(p, i + 1 == logs.len(), |_, _, _| {}) {
            Ok(info) => {
                let zxids = match info.last_zxid {
                    Some(l) => format!("0x{first:x} - 0x{l:x}"),
                    None => format!("0x{first:x} (empty)"),
                };
                let used = format!("{} txns, {} used", info.txns, human_bytes(info.end_offset));
                (zxids, used)
            }
            Err(e) => (format!("0x{first:x} - ?"), format!("DAMAGED: {e}")),
        };
        writeln!(
            out,
            "{:<9} {:<22} {:<24} {:<30} {:>10}",
            "log",
            file_name(p),
            zxids,
            count,
            human_bytes(size)
        )?;
    }
    Ok(0)
}

/// Data as dump shows it: quoted text when it is printable UTF-8, base64 otherwise.
fn data_text(d: Option<&[u8]>) -> String {
    match d {
        None => "null".into(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) if !s.chars().any(char::is_control) => format!("{s:?}"),
            _ => format!(
                "base64:{}",
                base64::engine::general_purpose::STANDARD.encode(b)
            ),
        },
    }
}

fn acl_text(acl: &[Acl]) -> String {
    acl.iter()
        .map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, perm_string(a.perms)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn kind_text(owner: i64) -> String {
    match owner_kind(owner) {
        OwnerKind::Persistent => "persistent".into(),
        OwnerKind::Session(s) => format!("ephemeral (session 0x{s:x})"),
        OwnerKind::Container => "container".into(),
        OwnerKind::Ttl(ms) => format!("ttl ({ms} ms)"),
    }
}

fn node_json(path: &str, n: &NodeRef) -> String {
    let s = n.stat();
    let acl: Vec<String> = n
        .acl
        .iter()
        .map(|a| {
            format!(
                "{{\"perms\":{},\"scheme\":{},\"id\":{}}}",
                a.perms,
                json_str(&a.id.scheme),
                json_str(&a.id.id)
            )
        })
        .collect();
    let (data, enc) = match n.data {
        None => ("null".to_owned(), "null"),
        Some(b) => match std::str::from_utf8(b) {
            Ok(t) => (json_str(t), "\"utf8\""),
            Err(_) => (
                json_str(&base64::engine::general_purpose::STANDARD.encode(b)),
                "\"base64\"",
            ),
        },
    };
    format!(
        "{{\"path\":{},\"czxid\":{},\"mzxid\":{},\"pzxid\":{},\"ctime\":{},\"mtime\":{},\
         \"version\":{},\"cversion\":{},\"aversion\":{},\"ephemeralOwner\":\"0x{:x}\",\
         \"kind\":{},\"dataLength\":{},\"numChildren\":{},\"acl\":[{}],\"data\":{},\
         \"dataEncoding\":{}}}",
        json_str(path),
        s.czxid,
        s.mzxid,
        s.pzxid,
        s.ctime,
        s.mtime,
        s.version,
        s.cversion,
        s.aversion,
        n.ephemeral_owner,
        json_str(&kind_text(n.ephemeral_owner)),
        s.data_length,
        s.num_children,
        acl.join(","),
        data,
        enc
    )
}

fn node_text(out: &mut dyn Write, path: &str, n: &NodeRef) -> io::Result<()> {
    let s = n.stat();
    writeln!(out, "{path}")?;
    writeln!(out, "  cZxid = 0x{:x}", s.czxid)?;
    writeln!(out, "  ctime = {}", java_date(s.ctime))?;
    writeln!(out, "  mZxid = 0x{:x}", s.mzxid)?;
    writeln!(out, "  mtime = {}", java_date(s.mtime))?;
    writeln!(out, "  pZxid = 0x{:x}", s.pzxid)?;
    writeln!(out, "  cversion = {}", s.cversion)?;
    writeln!(out, "  dataVersion = {}", s.version)?;
    writeln!(out, "  aclVersion = {}", s.aversion)?;
    writeln!(out, "  ephemeralOwner = 0x{:x}", s.ephemeral_owner)?;
    writeln!(out, "  dataLength = {}", s.data_length)?;
    writeln!(out, "  numChildren = {}", s.num_children)?;
    writeln!(out, "  kind = {}", kind_text(n.ephemeral_owner))?;
    writeln!(out, "  acl = {}", acl_text(n.acl))?;
    writeln!(out, "  data = {}", data_text(n.data))?;
    writeln!(out, "----")
}

fn dump(
    out: &mut dyn Write,
    data_dir: &Path,
    log_dir: &Path,
    snapshot: Option<PathBuf>,
    json: bool,
) -> Result<i32, Box<dyn Error>> {
    let (tree, sessions, zxid, source): (DataTree, BTreeMap<i64, u32>, i64, String) = match snapshot
    {
        Some(p) => {
            let l = storage::load_snapshot(&p)?;
            let source = format!("snapshot {}", p.display());
            (l.tree, l.sessions.into_iter().collect(), l.zxid, source)
        }
        None => {
            let r = storage::recover_read_only(data_dir, log_dir)?;
            let source = match &r.snapshot {
                Some(p) => format!("snapshot {} + {} logged txns", p.display(), r.txns_replayed),
                None => format!("{} logged txns (no snapshot)", r.txns_replayed),
            };
            (r.tree, r.sessions, r.last_zxid, source)
        }
    };
    if !json {
        writeln!(
            out,
            "# zxid 0x{zxid:x}, {} znodes, from {source}",
            tree.node_count() - 1
        )?;
    }
    for path in tree.nodes_preorder() {
        let n = tree.get(&path).expect("listed");
        if json {
            writeln!(out, "{}", node_json(&path, &n))?;
        } else {
            node_text(out, &path, &n)?;
        }
    }
    if !json {
        writeln!(out, "Sessions ({}):", sessions.len())?;
    }
    for (id, timeout) in &sessions {
        let eph = tree.ephemerals_of(*id).map_or(0, |s| s.len());
        if json {
            writeln!(
                out,
                "{{\"session\":\"0x{id:x}\",\"timeoutMs\":{timeout},\"ephemerals\":{eph}}}"
            )?;
        } else {
            writeln!(out, "  0x{id:x}  timeout {timeout} ms  ephemerals {eph}")?;
        }
    }
    Ok(0)
}

/// One txn in TxnLogToolkit's spirit: the type and what it changes.
fn txn_text(t: &Txn) -> String {
    let data = |d: &Option<Vec<u8>>| data_text(d.as_deref());
    match t {
        Txn::CreateSession { timeout_ms } => format!("createSession timeout={timeout_ms}"),
        Txn::CloseSession => "closeSession".into(),
        Txn::Create {
            path,
            data: d,
            acl,
            ephemeral_owner,
            parent_cversion,
        } => format!(
            "create {path} data={} acl=[{}] {} parentCversion={parent_cversion}",
            data(d),
            acl_text(acl),
            kind_text(*ephemeral_owner)
        ),
        Txn::Delete { path } => format!("delete {path}"),
        Txn::DeleteContainer { path } => format!("deleteContainer {path}"),
        Txn::SetData {
            path,
            data: d,
            version,
        } => format!("setData {path} data={} version={version}", data(d)),
        Txn::SetAcl { path, acl, version } => {
            format!("setACL {path} acl=[{}] version={version}", acl_text(acl))
        }
        Txn::Check { path, version } => format!("check {path} version={version}"),
        Txn::Multi(ops) => format!(
            "multi [{}]",
            ops.iter().map(txn_text).collect::<Vec<_>>().join("; ")
        ),
        Txn::Error { err } => format!("error {err}"),
    }
}

fn txn_line(h: &TxnHeader, t: &Txn) -> String {
    format!(
        "{} session 0x{:x} cxid 0x{:x} zxid 0x{:x} {}",
        java_date(h.time_ms),
        h.client_id,
        h.cxid,
        h.zxid,
        txn_text(t)
    )
}

fn print_log(
    out: &mut dyn Write,
    log_dir: &Path,
    file: Option<PathBuf>,
) -> Result<i32, Box<dyn Error>> {
    let files: Vec<(PathBuf, bool)> = match file {
        Some(f) => vec![(f, true)],
        None => {
            let logs = storage::list_logs(log_dir)?;
            let n = logs.len();
            logs.into_iter()
                .enumerate()
                .map(|(i, (_, p))| (p, i + 1 == n))
                .collect()
        }
    };
    let mut total = 0u64;
    for (f, is_last) in files {
        let mut werr = None;
        let res = txnlog::read_log_file(&f, is_last, |_, h, t| {
            if werr.is_none() {
                if let Err(e) = writeln!(out, "{}", txn_line(h, t)) {
                    werr = Some(e);
                }
            }
        });
        if let Some(e) = werr {
            return Err(e.into());
        }
        let info = res?;
        total += info.txns;
        if let Some(t) = info.torn {
            writeln!(
                out,
                "# {}: torn tail at offset {} ({} bytes): recovery truncates it",
                f.display(),
                t.offset,
                t.bytes
            )?;
        }
    }
    writeln!(out, "EOF reached after {total} txns.")?;
    Ok(0)
}

fn verify(out: &mut dyn Write, data_dir: &Path, log_dir: &Path) -> Result<i32, Box<dyn Error>> {
    let mut bad = 0;
    for (_, p) in storage::list_snapshots(data_dir)? {
        match storage::verify_snapshot(&p) {
            Ok(i) => writeln!(
                out,
                "OK   {}  zxid 0x{:x}, {} nodes, {} sessions, digest {:016x}",
                p.display(),
                i.zxid,
                i.nodes,
                i.sessions,
                i.digest
            )?,
            Err(e) => {
                bad += 1;
                writeln!(out, "BAD  {e}")?;
            }
        }
    }
    for r in storage::verify_logs(log_dir)? {
        match r {
            Ok(i) => {
                let zxids = match i.last_zxid {
                    Some(l) => format!("zxids 0x{:x} - 0x{l:x}", i.first_zxid),
                    None => "no txns".into(),
                };
                let torn = match &i.torn {
                    Some(t) => format!(
                        "; torn tail at offset {} ({} bytes), recovery truncates it",
                        t.offset, t.bytes
                    ),
                    None => String::new(),
                };
                writeln!(
                    out,
                    "OK   {}  {zxids}, {} txns{torn}",
                    i.path.display(),
                    i.txns
                )?;
            }
            Err(e) => {
                bad += 1;
                writeln!(out, "BAD  {e}")?;
            }
        }
    }
    // Files can each be sound and still not recover (a missing segment after the snapshot),
    // so finish with a dry run of recovery.
    if bad == 0 {
        match storage::recover_read_only(data_dir, log_dir) {
            Ok(r) => writeln!(
                out,
                "OK   recovery: zxid 0x{:x}, {} znodes, {} sessions, digest {:016x}",
                r.last_zxid,
                r.tree.node_count() - 1,
                r.sessions.len(),
                r.tree.digest()
            )?,
            Err(e) => {
                bad += 1;
                writeln!(out, "BAD  recovery would fail: {e}")?;
            }
        }
    }
    if bad > 0 {
        out.flush()?;
        eprintln!("zk: error: {bad} damaged file(s)");
        return Ok(1);
    }
    Ok(0)
}

/// Moves the snapshots and log segments of `<dir>/version-2` (finished or not) except `keep`
/// into `backup`. Other files stay: the lock, the session secret (sessions in the restored
/// snapshot resume with their passwords only if it is kept) and any epoch files.
fn move_aside(dir: &Path, backup: &Path, keep: &Path) -> io::Result<usize> {
    let v = storage::version_dir(dir);
    let mut n = 0;
    for ent in fs::read_dir(&v)? {
        let p = ent?.path();
        let name = p.file_name().map(|f| f.to_string_lossy().into_owned());
        let ours = name
            .as_deref()
            .is_some_and(|f| f.starts_with("snapshot.") || f.starts_with("log."));
        if p == keep || !ours {
            continue;
        }
        fs::create_dir_all(backup)?;
        fs::rename(&p, backup.join(p.file_name().expect("entry has a name")))?;
        n += 1;
    }
    Ok(n)
}

fn restore(
    out: &mut dyn Write,
    src: &Path,
    data_dir: &Path,
    log_dir: &Path,
) -> Result<i32, Box<dyn Error>> {
    let info = storage::verify_snapshot(src)?;
    let _data_lock =
        storage::lock_data_dir(data_dir).map_err(|e| format!("refusing to restore: {e}"))?;
    let _log_lock = if log_dir != data_dir {
        Some(storage::lock_data_dir(log_dir).map_err(|e| format!("refusing to restore: {e}"))?)
    } else {
        None
    };
    let v = storage::version_dir(data_dir);
    let name = storage::snapshot::snapshot_name(info.zxid);
    // Copy first: the source may itself be one of the files about to be moved aside.
    let tmp = v.join(format!("{name}.restore.tmp"));
    fs::copy(src, &tmp).map_err(|e| format!("cannot copy {}: {e}", src.display()))?;
    fs::File::open(&tmp)?.sync_all()?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let backup_name = format!("restore-backup-{stamp}");
    // A restored directory holds exactly the installed snapshot: recovery must not mix it with
    // logs or snapshots of another history, so all of those go aside, kept for undo.
    let mut moved = move_aside(data_dir, &data_dir.join(&backup_name), &tmp)?;
    if log_dir != data_dir {
        moved += move_aside(log_dir, &log_dir.join(&backup_name), &tmp)?;
    }
    let dst = v.join(&name);
    fs::rename(&tmp, &dst)?;
    fs::File::open(&v)?.sync_all()?;
    let check = storage::verify_snapshot(&dst).map_err(|e: StorageError| e.to_string())?;
    writeln!(
        out,
        "restored {} (zxid 0x{:x}, {} nodes, {} sessions) as {}",
        src.display(),
        check.zxid,
        check.nodes,
        check.sessions,
        dst.display()
    )?;
    if moved > 0 {
        writeln!(
            out,
            "moved {moved} earlier file(s) to {}",
            data_dir.join(&backup_name).display()
        )?;
        if log_dir != data_dir {
            writeln!(out, "  and {}", log_dir.join(&backup_name).display())?;
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::open_acl_unsafe;

    #[test]
    fn data_is_text_or_base64() {
        assert_eq!(data_text(None), "null");
        assert_eq!(data_text(Some(b"")), "\"\"");
        assert_eq!(data_text(Some(b"hi \"x\"")), "\"hi \\\"x\\\"\"");
        assert_eq!(data_text(Some(&[0, 255])), "base64:AP8=");
    }

    #[test]
    fn json_lines_escape_and_encode() {
        let mut t = DataTree::new();
        t.apply(
            &TxnHeader {
                zxid: 1,
                ..Default::default()
            },
            &Txn::Create {
                path: "/q\"x".into(),
                data: Some(vec![0xff]),
                acl: open_acl_unsafe(),
                ephemeral_owner: 0,
                parent_cversion: 1,
            },
            &mut vec![],
        );
        let j = node_json("/q\"x", &t.get("/q\"x").unwrap());
        assert!(j.starts_with("{\"path\":\"/q\\\"x\",\"czxid\":1,"), "{j}");
        assert!(
            j.contains("\"data\":\"/w==\",\"dataEncoding\":\"base64\""),
            "{j}"
        );
        assert!(j.contains("\"acl\":[{\"perms\":31,\"scheme\":\"world\",\"id\":\"anyone\"}]"));
    }

    #[test]
    fn txn_lines_read_like_txnlogtoolkit() {
        let h = TxnHeader {
            client_id: 0x1f,
            cxid: 2,
            zxid: 0x10,
            time_ms: 0,
        };
        let l = txn_line(
            &h,
            &Txn::Multi(vec![
                Txn::Delete { path: "/a".into() },
                Txn::Error { err: -101 },
            ]),
        );
        assert_eq!(
            l,
            "Thu Jan 01 00:00:00 UTC 1970 session 0x1f cxid 0x2 zxid 0x10 multi [delete /a; error -101]"
        );
    }
}
