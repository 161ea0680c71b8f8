//! Storage: the only module that touches data files. It holds the txn log (preallocated,
//! mmap'd segments of CRC-protected records, made durable in group-commit batches), fuzzy
//! snapshots, recovery (newest valid snapshot plus the log after it), purge of old files, and
//! the data directory lock. It never decides what a txn means — it stores and replays what
//! `proto::txn` encodes and `tree::DataTree::apply` interprets — and it never reads the clock
//! except to name a restore backup. Corresponds to Apache ZooKeeper's FileTxnLog, FileSnap,
//! FileTxnSnapLog and PurgeTxnLog, with ZooKeeper's file names (`version-2/log.<zxid>`,
//! `version-2/snapshot.<zxid>`) but formats of our own, documented in `txnlog` and `snapshot`.
//!
//! Every function takes the configured directory (dataDir or dataLogDir); the files live in
//! its `version-2` subdirectory, as in ZooKeeper, which is created when missing.

pub mod snapshot;
pub mod txnlog;

use crate::proto::txn::Txn;
use crate::tree::DataTree;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

pub use snapshot::{
    encode_node, list_snapshots, load_snapshot, verify_snapshot, write_snapshot, Loaded,
    SnapshotInfo, SnapshotWriter,
};
pub use txnlog::{
    list_logs, replay_logs, scan_logs, verify_logs, LogScan, LogSummary, SegmentInfo, SyncBatch,
    TornTail, TxnLog,
};

/// The subdirectory of dataDir and dataLogDir that holds the files, as in ZooKeeper.
pub const VERSION_DIR: &str = "version-2";
/// The fewest snapshots purge keeps, whatever it is asked: recovery falls back to an older
/// snapshot when the newest is damaged, so there must be older ones to fall back to.
/// (config.rs has the same floor for autopurge.snapRetainCount as SNAP_RETAIN_COUNT_MIN.)
pub const SNAPSHOTS_KEPT_MIN: usize = 3;
/// The lock file in `version-2` that a server holds (flock, exclusive) while it runs.
pub const LOCK_FILE: &str = ".lock";

/// A storage failure: an I/O error on a named file, or damaged data at a known place.
#[derive(Debug)]
pub enum StorageError {
    Io {
        path: PathBuf,
        source: io::Error,
    },
    /// The file is damaged at `offset` in a way recovery must not paper over.
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
}

impl StorageError {
    pub(crate) fn io(path: &Path, source: io::Error) -> StorageError {
        StorageError::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn corrupt(file: &Path, offset: u64, reason: impl Into<String>) -> StorageError {
        StorageError::Corrupt {
            file: file.to_owned(),
            offset,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            StorageError::Corrupt {
                file,
                offset,
                reason,
            } => write!(
                f,
                "{}: damaged at offset {offset}: {reason}",
                file.display()
            ),
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StorageError::Io { source, .. } => Some(source),
            StorageError::Corrupt { .. } => None,
        }
    }
}

/// `dir/version-2`.
pub fn version_dir(dir: &Path) -> PathBuf {
    dir.join(VERSION_DIR)
}

/// `dir/version-2`, created (with `dir`) when missing.
pub fn ensure_version_dir(dir: &Path) -> io::Result<PathBuf> {
    let v = version_dir(dir);
    fs::create_dir_all(&v).map_err(|e| with_path(e, "cannot create", &v))?;
    Ok(v)
}

/// Prefixes an I/O error with what was being done to which path, keeping its kind.
pub(crate) fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Makes a directory's entries (new, renamed or removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| with_path(e, "cannot sync directory", dir))
}

/// Lists `version-2` entries named `<prefix><lowercase hex zxid>` (no suffix), by zxid.
pub(crate) fn list_named(dir: &Path, prefix: &str) -> io::Result<Vec<(i64, PathBuf)>> {
    let v = version_dir(dir);
    let rd = match fs::read_dir(&v) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(with_path(e, "cannot list", &v)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| with_path(e, "cannot list", &v))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(zxid) = parse_zxid_name(name, prefix) {
            out.push((zxid, ent.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// `log.1a` -> 0x1a for prefix `log.`; `None` for anything else (`log.1a.tmp`, `log.x`).
pub(crate) fn parse_zxid_name(name: &str, prefix: &str) -> Option<i64> {
    let hex = name.strip_prefix(prefix)?;
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|v| v as i64)
}

/// Removes `<prefix>*.tmp` files a crash left in `version-2`: half-written snapshots and
/// segments that never got their final name. Only safe while nothing else writes the
/// directory, i.e. at start-up under the lock.
fn remove_stale_tmp(dir: &Path, prefix: &str) -> io::Result<()> {
    let v = version_dir(dir);
    let Ok(rd) = fs::read_dir(&v) else {
        return Ok(());
    };
    for ent in rd.flatten() {
        let name = ent.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(prefix) && name.ends_with(".tmp") {
            log::info!("removing unfinished file {}", ent.path().display());
            fs::remove_file(ent.path()).map_err(|e| with_path(e, "cannot remove", &ent.path()))?;
        }
    }
    Ok(())
}

/// What recovery rebuilt from a data directory.
pub struct Recovered {
    pub tree: DataTree,
    /// Open sessions: id -> timeout in milliseconds.
    pub sessions: BTreeMap<i64, u32>,
    /// The highest zxid in the snapshot or the log.
    pub last_zxid: i64,
    /// The zxid of the snapshot loaded, 0 when there was none.
    pub snapshot_zxid: i64,
    /// The snapshot loaded, if any.
    pub snapshot: Option<PathBuf>,
    /// Txns replayed from the log on top of the snapshot.
    pub txns_replayed: u64,
    /// A torn log tail that was found (and, unless read-only, truncated).
    pub torn_tail: Option<TornTail>,
}

/// Rebuilds the state a server had: the newest snapshot that loads (a damaged newest one
/// falls back to the previous with a warning; none at all starts from a fresh tree at zxid
/// 0), then every logged txn after it. Truncates a torn log tail; refuses on damage anywhere
/// else. Removes unfinished temp files, so call it only while holding the directory lock.
pub fn recover(data_dir: &Path, log_dir: &Path) -> Result<Recovered, StorageError> {
    recover_with(data_dir, log_dir, true)
}

/// Like `recover`, but changes nothing on disk (a torn tail is reported, not truncated), for
/// offline tools that may look at a directory a server is using.
pub fn recover_read_only(data_dir: &Path, log_dir: &Path) -> Result<Recovered, StorageError> {
    recover_with(data_dir, log_dir, false)
}

fn recover_with(data_dir: &Path, log_dir: &Path, repair: bool) -> Result<Recovered, StorageError> {
    if repair {
        for (dir, prefix) in [(data_dir, "snapshot."), (log_dir, "log.")] {
            ensure_version_dir(dir).map_err(|e| StorageError::io(dir, e))?;
            remove_stale_tmp(dir, prefix).map_err(|e| StorageError::io(dir, e))?;
        }
    }
    let snapshots = list_snapshots(data_dir).map_err(|e| StorageError::io(data_dir, e))?;
    let mut loaded = None;
    let mut first_err = None;
    for (_, path) in snapshots.iter().rev() {
        match load_snapshot(path) {
            Ok(l) => {
                loaded = Some((l, path.clone()));
                break;
            }
            Err(e) => {
                log::warn!("snapshot unusable, falling back to the previous one: {e}");
                first_err.get_or_insert(e);
            }
        }
    }
    let (mut tree, mut sessions, snapshot_zxid, snapshot) = match (loaded, first_err) {
        (Some((l, path)), _) => {
            let sessions = l.sessions.into_iter().collect::<BTreeMap<_, _>>();
            (l.tree, sessions, l.zxid, Some(path))
        }
        // Snapshots exist but none loads. Starting from an empty tree would need the log from
        // its very beginning, which purge has usually removed, so refuse rather than guess.
        (None, Some(e)) => return Err(e),
        (None, None) => (DataTree::new(), BTreeMap::new(), 0, None),
    };
    if let Some(p) = &snapshot {
        log::info!(
            "loaded snapshot {} (zxid 0x{snapshot_zxid:x}, {} znodes, {} sessions)",
            p.display(),
            tree.node_count() - 1,
            sessions.len()
        );
    }
    let mut triggers = Vec::new();
    let summary = replay_logs(log_dir, snapshot_zxid, repair, |hdr, txn| {
        // Replay over a fuzzy snapshot may meet txns already reflected in it; apply treats
        // those as no-ops, so its result is not an error here.
        let _ = tree.apply(hdr, txn, &mut triggers);
        triggers.clear();
        match txn {
            Txn::CreateSession { timeout_ms } => {
                sessions.insert(hdr.client_id, (*timeout_ms).max(0) as u32);
            }
            Txn::CloseSession => {
                sessions.remove(&hdr.client_id);
            }
            _ => {}
        }
    })?;
    let last_zxid = summary
        .last_zxid
        .map_or(snapshot_zxid, |z| z.max(snapshot_zxid));
    if summary.txns_after > 0 {
        log::info!(
            "replayed {} txns from the log, last zxid 0x{last_zxid:x}",
            summary.txns_after
        );
    }
    Ok(Recovered {
        tree,
        sessions,
        last_zxid,
        snapshot_zxid,
        snapshot,
        txns_replayed: summary.txns_after,
        torn_tail: summary.torn,
    })
}

/// What purge removed and kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PurgeReport {
    pub snapshots_removed: Vec<PathBuf>,
    pub logs_removed: Vec<PathBuf>,
    pub snapshots_kept: usize,
    pub logs_kept: usize,
}

/// Removes old snapshots and log segments (PurgeTxnLog): keeps the newest `keep_snapshots`
/// snapshots (at least `SNAPSHOTS_KEPT_MIN`) and every segment that may hold a txn after the
/// oldest kept snapshot — the newest segment starting at or before that snapshot's zxid, and
/// all later ones. With no more snapshots than it keeps, it removes nothing. Temp files are
/// never touched: one may be a snapshot being written right now.
pub fn purge(data_dir: &Path, log_dir: &Path, keep_snapshots: usize) -> io::Result<PurgeReport> {
    let keep = keep_snapshots.max(SNAPSHOTS_KEPT_MIN);
    let snaps = list_snapshots(data_dir)?;
    let logs = list_logs(log_dir)?;
    let mut report = PurgeReport {
        snapshots_kept: snaps.len(),
        logs_kept: logs.len(),
        ..Default::default()
    };
    if snaps.len() <= keep {
        return Ok(report);
    }
    let (old, kept) = snaps.split_at(snaps.len() - keep);
    let oldest_kept_zxid = kept[0].0;
    // The first segment to keep: the last one that starts at or before the oldest kept
    // snapshot (it holds the txns right after it); with none, every segment is newer.
    let first_kept_log = logs
        .iter()
        .rposition(|(z, _)| *z <= oldest_kept_zxid)
        .unwrap_or(0);
    for (_, p) in &logs[..first_kept_log] {
        fs::remove_file(p).map_err(|e| with_path(e, "cannot remove", p))?;
        report.logs_removed.push(p.clone());
    }
    for (_, p) in old {
        fs::remove_file(p).map_err(|e| with_path(e, "cannot remove", p))?;
        report.snapshots_removed.push(p.clone());
    }
    report.snapshots_kept = kept.len();
    report.logs_kept = logs.len() - first_kept_log;
    for p in report.logs_removed.iter().chain(&report.snapshots_removed) {
        log::info!("purged {}", p.display());
    }
    Ok(report)
}

/// Checks at start-up that `dir` (dataDir or dataLogDir) can be written, creating it and its
/// `version-2` when missing, so an unwritable or full directory is reported in one clear line
/// instead of as the first failed write.
pub fn check_writable(dir: &Path) -> io::Result<()> {
    let v = ensure_version_dir(dir)?;
    let probe = v.join(format!(".write-probe.{}", std::process::id()));
    let res = (|| {
        let mut f = File::create(&probe)?;
        f.write_all(b"zk")?;
        f.sync_all()
    })();
    let _ = fs::remove_file(&probe);
    res.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("data directory {} is not writable: {e}", dir.display()),
        )
    })
}

/// An exclusive hold on a data directory: while a `DirLock` lives, no other process can take
/// the lock of the same directory.
///
/// Lock protocol: the lock is `flock(LOCK_EX)` on `<dir>/version-2/.lock`, taken without
/// waiting. The holder writes its pid into the file, for the message others print. The
/// kernel drops the lock when the holder exits, however it exits (kill -9 included), so a
/// stale file never blocks anyone. A server takes it on dataDir and on dataLogDir (when they
/// differ) before recovery and keeps it until it exits; offline tools that change files
/// (`zk snapshot restore`) take it too. flock is advisory and does not work across NFS
/// clients, like ZooKeeper's own checks.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the lock of `dir` (see `DirLock`); fails with `WouldBlock` when another process
/// holds it.
pub fn lock_data_dir(dir: &Path) -> io::Result<DirLock> {
    let v = ensure_version_dir(dir)?;
    let path = v.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| with_path(e, "cannot open lock file", &path))?;
    // SAFETY: flock takes a valid open descriptor (owned by `file`, alive for the call) and
    // integer flags; it touches no memory of ours.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "data directory {} is in use by another process (pid {} per the lock file {})",
                    dir.display(),
                    pid.trim(),
                    path.display()
                ),
            ));
        }
        return Err(with_path(e, "cannot lock", &path));
    }
    file.set_len(0)?;
    writeln!(file, "{}", std::process::id())?;
    Ok(DirLock { _file: file, path })
}

#[cfg(test)]
pub(crate) mod testdir {
    //! Unique temp directories for tests, removed on drop (no tempfile dependency).
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};

    pub struct TestDir(PathBuf);

    impl TestDir {
        pub fn new(tag: &str) -> TestDir {
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "zk-storage-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TestDir(p)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The secret session passwords derive from; kept in the data dir so that sessions can be
/// resumed across a restart.
pub fn load_or_create_secret(
    data_dir: &Path,
    random: impl FnOnce() -> [u8; 32],
) -> io::Result<[u8; 32]> {
    let path = version_dir(data_dir).join("secret");
    if let Ok(b) = fs::read(&path) {
        if b.len() == 32 {
            let mut s = [0u8; 32];
            s.copy_from_slice(&b);
            return Ok(s);
        }
        log::warn!(
            "{} is damaged; new sessions get a new secret",
            path.display()
        );
    }
    let s = random();
    let tmp = path.with_extension("tmp");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        std::io::Write::write_all(&mut f, &s)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &path)?;
    Ok(s)
}

/// Bytes available to an unprivileged writer on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs only writes into the struct passed; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::testdir::TestDir;
    use super::*;
    use crate::proto::open_acl_unsafe;
    use crate::proto::txn::TxnHeader;

    fn hdr(zxid: i64, client_id: i64) -> TxnHeader {
        TxnHeader {
            client_id,
            cxid: 1,
            zxid,
            time_ms: 1000 + zxid,
        }
    }

    #[test]
    fn zxid_names_parse_strictly() {
        assert_eq!(parse_zxid_name("log.1a", "log."), Some(0x1a));
        assert_eq!(parse_zxid_name("log.1a.tmp", "log."), None);
        assert_eq!(parse_zxid_name("log.", "log."), None);
        assert_eq!(parse_zxid_name("log.-1", "log."), None);
        assert_eq!(parse_zxid_name("snapshot.ff", "log."), None);
    }

    #[test]
    fn recover_empty_dir_is_a_fresh_tree() {
        let d = TestDir::new("empty");
        let r = recover(d.path(), d.path()).unwrap();
        assert_eq!(r.last_zxid, 0);
        assert_eq!(r.tree.digest(), DataTree::new().digest());
        assert!(version_dir(d.path()).is_dir());
    }

    #[test]
    fn recover_snapshot_plus_log_and_sessions() {
        let d = TestDir::new("rec");
        let mut tree = DataTree::new();
        let mut log = TxnLog::open(d.path(), 1 << 16).unwrap();
        let mut zxid = 0;
        let mut step = |tree: &mut DataTree, log: &mut TxnLog, client: i64, txn: Txn| {
            zxid += 1;
            tree.apply(&hdr(zxid, client), &txn, &mut vec![]);
            log.append(&hdr(zxid, client), &txn).unwrap();
            zxid
        };
        step(
            &mut tree,
            &mut log,
            7,
            Txn::CreateSession { timeout_ms: 5000 },
        );
        step(
            &mut tree,
            &mut log,
            8,
            Txn::CreateSession { timeout_ms: 6000 },
        );
        let create = |p: &str, owner: i64, pcv: i32| Txn::Create {
            path: p.into(),
            data: Some(b"v".to_vec()),
            acl: open_acl_unsafe(),
            ephemeral_owner: owner,
            parent_cversion: pcv,
        };
        step(&mut tree, &mut log, 7, create("/a", 0, 1));
        let snap_zxid = step(&mut tree, &mut log, 7, create("/e", 7, 2));
        write_snapshot(d.path(), snap_zxid, &tree, &[(7, 5000), (8, 6000)]).unwrap();
        log.roll();
        step(&mut tree, &mut log, 8, create("/e8", 8, 3));
        step(&mut tree, &mut log, 7, Txn::CloseSession);
        log.take_sync_batch().unwrap().run().unwrap();
        drop(log);

        let r = recover(d.path(), d.path()).unwrap();
        assert_eq!(r.snapshot_zxid, snap_zxid);
        assert_eq!(r.last_zxid, zxid);
        assert_eq!(r.txns_replayed, 2);
        assert_eq!(r.tree.digest(), tree.digest());
        assert!(r.tree.get("/e").is_none() && r.tree.get("/e8").is_some());
        assert_eq!(r.sessions, BTreeMap::from([(8, 6000)]));
    }

    #[test]
    fn purge_keeps_snapshots_and_the_logs_they_need() {
        let d = TestDir::new("purge");
        let tree = DataTree::new();
        let mut log = TxnLog::open(d.path(), 1 << 16).unwrap();
        for z in 1..=50i64 {
            log.append(&hdr(z, 1), &Txn::CreateSession { timeout_ms: 1 })
                .unwrap();
            if z % 10 == 0 {
                write_snapshot(d.path(), z, &tree, &[]).unwrap();
            }
            if z % 5 == 0 {
                log.roll();
            }
        }
        drop(log);
        // Segments start at 1, 6, 11, ..., 46; snapshots at 10, 20, 30, 40, 50.
        let r = purge(d.path(), d.path(), 1).unwrap();
        assert_eq!(r.snapshots_kept, 3);
        assert_eq!(r.snapshots_removed.len(), 2);
        let snaps: Vec<i64> = list_snapshots(d.path())
            .unwrap()
            .iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(snaps, vec![30, 40, 50]);
        let logs: Vec<i64> = list_logs(d.path()).unwrap().iter().map(|s| s.0).collect();
        assert_eq!(logs, vec![26, 31, 36, 41, 46]);
        // Nothing more to do the second time.
        assert_eq!(purge(d.path(), d.path(), 3).unwrap().logs_removed.len(), 0);
        // The oldest kept snapshot still recovers to the end of the log.
        let r = recover(d.path(), d.path()).unwrap();
        assert_eq!(r.last_zxid, 50);
    }

    #[test]
    fn lock_is_exclusive_and_released_on_drop() {
        let d = TestDir::new("lock");
        let l = lock_data_dir(d.path()).unwrap();
        // flock locks belong to the open file description, so a second open in the same
        // process conflicts just as another process would.
        let e = lock_data_dir(d.path()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(
            e.to_string().contains(&std::process::id().to_string()),
            "{e}"
        );
        drop(l);
        lock_data_dir(d.path()).unwrap();
    }

    #[test]
    fn check_writable_reports_the_directory() {
        let d = TestDir::new("wr");
        check_writable(d.path()).unwrap();
        let f = d.path().join("file");
        fs::write(&f, b"x").unwrap();
        let e = check_writable(&f.join("sub")).unwrap_err();
        assert!(e.to_string().contains("file"), "{e}");
    }
}
