//! Storage: the only module that touches data files. It holds the txn log (preallocated,
//! mmap'd segments of CRC-protected records, made durable in group-commit batches), fuzzy
//! snapshots, recovery (newest valid snapshot plus the log after it), purge of old files, and
//! the data directory lock, and what a Zab follower needs to follow its leader: the epoch
//! files, truncation of a divergent log (TRUNC), installing a snapshot received in SNAP, and
//! adopting the leader's session secret. It never decides what a txn means — it stores and replays what
//! `proto::txn` encodes and `tree::DataTree::apply` interprets — and it never reads the clock
//! except to name a restore backup. Corresponds to Apache ZooKeeper's FileTxnLog, FileSnap,
//! FileTxnSnapLog and PurgeTxnLog, with ZooKeeper's file names (`version-2/log.<zxid>`,
//! `version-2/snapshot.<zxid>`) but formats of our own, documented in `txnlog` and `snapshot`.
//!
//! Every function takes the configured directory (dataDir or dataLogDir); the files live in
//! its `version-2` subdirectory, as in ZooKeeper, which is created when missing.

pub mod epoch;
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

pub use epoch::{read_epochs, write_accepted_epoch, write_current_epoch};
pub use snapshot::{
    decode_snapshot, encode_node, encode_snapshot, list_snapshots, load_snapshot, verify_snapshot,
    write_snapshot, Loaded, SnapshotInfo, SnapshotWriter,
};
pub use txnlog::{
    list_logs, read_tail, replay_logs, scan_logs, verify_logs, LogScan, LogSummary, LogTail,
    SegmentInfo, SyncBatch, TornTail, TxnLog,
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

/// Replaces `path` with a file holding `bytes`, durably: written to `<path>.tmp` (created
/// with `mode`), fsynced, renamed over `path`, and the directory fsynced, so after a crash
/// the file holds either the old bytes or the new ones, never a mix, and once this returns
/// the new ones survive a power loss.
pub(crate) fn write_durably(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // A temp file left by a crash may have other permissions, which `mode` would not change.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(with_path(e, "cannot remove", &tmp))
        }
        _ => {}
    }
    let res = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(with_path(e, "cannot write", path));
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
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

/// Zab's TRUNC: removes every logged txn with a zxid above `zxid` and every snapshot named
/// above it, so that recovery rebuilds exactly the state at `zxid`. Segments that start after
/// `zxid` are deleted; in the segment holding `zxid`, every byte after that record is zeroed
/// and synced (where the log then ends, as if never written). Call it only while no `TxnLog`
/// is open on `log_dir`; reopen with `TxnLog::open`, whose first append starts a new segment.
///
/// It refuses, changing nothing, when it would remove something but what stays would not
/// reach `zxid` — `zxid` is neither a logged txn, nor a snapshot's zxid, nor 0 — because the
/// follower would then rebuild an older state while its leader believes it is at `zxid`
/// (the leader should send SNAP instead). Truncating at or beyond the last zxid changes
/// nothing. A crash part-way leaves a prefix of the old history, which recovery accepts:
/// snapshots go first, then segments newest first, then the tail of the holding segment.
/// Snapshots at or below `zxid` stay even though they are fuzzy: they hold only committed
/// txns (the tree applies nothing else), and Zab never truncates a committed txn.
pub fn truncate_to(data_dir: &Path, log_dir: &Path, zxid: i64) -> Result<(), StorageError> {
    let snaps = list_snapshots(data_dir).map_err(|e| StorageError::io(data_dir, e))?;
    let (kept, newer): (Vec<_>, Vec<_>) = snaps.into_iter().partition(|(z, _)| *z <= zxid);
    let cut = txnlog::plan_truncate(log_dir, zxid)?;
    let reached = kept
        .last()
        .map_or(0, |s| s.0)
        .max(cut.last_kept.unwrap_or(0));
    if (cut.removes_txns || !newer.is_empty()) && reached != zxid {
        return Err(StorageError::io(
            log_dir,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot truncate to zxid 0x{zxid:x}: it is neither logged nor a snapshot                      here, so the newest state left would be 0x{reached:x}"
                ),
            ),
        ));
    }
    for (_, p) in newer.iter().rev() {
        fs::remove_file(p).map_err(|e| StorageError::io(p, e))?;
        log::info!("truncation to 0x{zxid:x} removed {}", p.display());
    }
    if !newer.is_empty() {
        let v = version_dir(data_dir);
        sync_dir(&v).map_err(|e| StorageError::io(&v, e))?;
    }
    cut.apply(log_dir)
}

/// Zab's SNAP on a follower: stores a snapshot received from the leader as
/// `snapshot.<zxid>` and makes it the whole state. The bytes are decoded and checked first,
/// so damaged ones are refused before anything on disk changes. Then every txn log segment
/// is deleted — the follower's log may hold txns the leader never committed, and the
/// snapshot supersedes all of it — and so is every snapshot named above the new one (recovery
/// would otherwise prefer it); older snapshots stay for purge. Call it only while no `TxnLog`
/// is open on `log_dir`.
///
/// Order, for crashes: the new file is written and synced under a temp name, the old log and
/// newer snapshots go, and only then is the file renamed into place. A crash before the
/// rename leaves an older snapshot with no log after it, which is committed state the leader
/// brings up to date again; never the old divergent log on top of the new snapshot.
pub fn install_snapshot(
    data_dir: &Path,
    log_dir: &Path,
    bytes: &[u8],
) -> Result<Loaded, StorageError> {
    let loaded = decode_snapshot(bytes)?;
    let v = ensure_version_dir(data_dir).map_err(|e| StorageError::io(data_dir, e))?;
    let lv = ensure_version_dir(log_dir).map_err(|e| StorageError::io(log_dir, e))?;
    let path = v.join(snapshot::snapshot_name(loaded.zxid));
    let tmp = v.join(format!("{}.tmp", snapshot::snapshot_name(loaded.zxid)));
    let res = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(StorageError::io(&tmp, e));
    }
    let superseded = (|| -> Result<(), StorageError> {
        let logs = list_logs(log_dir).map_err(|e| StorageError::io(log_dir, e))?;
        let snaps = list_snapshots(data_dir).map_err(|e| StorageError::io(data_dir, e))?;
        // Newest first, so that a crash part-way leaves a prefix of the old history.
        let newer = snaps.iter().filter(|(z, _)| *z > loaded.zxid);
        for (_, p) in logs.iter().rev().chain(newer.rev()) {
            fs::remove_file(p).map_err(|e| StorageError::io(p, e))?;
            log::info!(
                "snapshot 0x{:x} from the leader supersedes {}",
                loaded.zxid,
                p.display()
            );
        }
        sync_dir(&lv).map_err(|e| StorageError::io(&lv, e))?;
        if v != lv {
            sync_dir(&v).map_err(|e| StorageError::io(&v, e))?;
        }
        Ok(())
    })();
    if let Err(e) = superseded {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, &path).map_err(|e| StorageError::io(&path, e))?;
    sync_dir(&v).map_err(|e| StorageError::io(&v, e))?;
    Ok(loaded)
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
    let path = version_dir(data_dir).join(SECRET_FILE);
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
    ensure_version_dir(data_dir)?;
    write_durably(&path, &s, SECRET_FILE_MODE)?;
    Ok(s)
}

/// The secret file in `version-2`; only its owner may read it (passwords derive from it).
const SECRET_FILE: &str = "secret";
const SECRET_FILE_MODE: u32 = 0o600;

/// Replaces the session secret with `secret`, durably: a follower adopts its leader's, so a
/// session password issued by any server of the ensemble verifies on every other one.
pub fn store_secret(data_dir: &Path, secret: &[u8; 32]) -> io::Result<()> {
    let v = ensure_version_dir(data_dir)?;
    write_durably(&v.join(SECRET_FILE), secret, SECRET_FILE_MODE)
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

    /// A log of `n` creates, `/n1` .. `/n<n>` with 1500 bytes each, in 4096-byte segments
    /// (two records each) synced in batches of three (so page pads appear too). Returns the
    /// tree's digest after each zxid, index 0 being the empty tree.
    fn log_of_creates(dir: &Path, n: i64) -> Vec<u64> {
        let mut tree = DataTree::new();
        let mut digests = vec![tree.digest()];
        let mut log = TxnLog::open(dir, 4096).unwrap();
        for z in 1..=n {
            let txn = create_txn(&tree, &format!("/n{z}"), z as u8);
            tree.apply(&hdr(z, 1), &txn, &mut vec![]);
            log.append(&hdr(z, 1), &txn).unwrap();
            digests.push(tree.digest());
            if z % 3 == 0 {
                log.take_sync_batch().unwrap().run().unwrap();
            }
        }
        if let Some(b) = log.take_sync_batch() {
            b.run().unwrap();
        }
        digests
    }

    fn create_txn(tree: &DataTree, path: &str, fill: u8) -> Txn {
        Txn::Create {
            path: path.into(),
            data: Some(vec![fill; 1500]),
            acl: open_acl_unsafe(),
            ephemeral_owner: 0,
            parent_cversion: tree.get("/").unwrap().cversion + 1,
        }
    }

    /// Every file in `version-2` with its bytes, for checking that nothing changed.
    fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        fs::read_dir(version_dir(dir))
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.file_name().into_string().unwrap(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    }

    fn assert_logs_clean(dir: &Path) {
        for r in verify_logs(dir).unwrap() {
            let info = r.unwrap_or_else(|e| panic!("{e}"));
            assert!(info.torn.is_none(), "{info:?}");
        }
    }

    #[test]
    fn truncate_to_every_zxid_recovers_exactly_that_state() {
        let pristine = TestDir::new("trunc-pristine");
        let digests = log_of_creates(pristine.path(), 10);
        assert!(list_logs(pristine.path()).unwrap().len() >= 4);
        for k in 0..=10i64 {
            let d = TestDir::new("trunc");
            let v = ensure_version_dir(d.path()).unwrap();
            for (name, bytes) in files(pristine.path()) {
                fs::write(v.join(name), bytes).unwrap();
            }
            truncate_to(d.path(), d.path(), k).unwrap();
            assert_logs_clean(d.path());
            // No segment is left that starts after k; truncating to 0 leaves no log at all.
            let logs = list_logs(d.path()).unwrap();
            assert!(logs.iter().all(|l| l.0 <= k), "k {k}: {logs:?}");
            assert_eq!(logs.is_empty(), k == 0);
            let r = recover(d.path(), d.path()).unwrap();
            assert_eq!(r.last_zxid, k);
            assert!(r.torn_tail.is_none());
            assert_eq!(r.tree.digest(), digests[k as usize], "k {k}");
            assert!(r.tree.get(&format!("/n{}", k + 1)).is_none());
            // Appending after the cut works and recovers, also from a different history.
            let mut tree = r.tree;
            let mut log = TxnLog::open(d.path(), 4096).unwrap();
            for z in k + 1..=k + 3 {
                let txn = create_txn(&tree, &format!("/m{z}"), 0xEE);
                tree.apply(&hdr(z, 2), &txn, &mut vec![]);
                log.append(&hdr(z, 2), &txn).unwrap();
            }
            log.take_sync_batch().unwrap().run().unwrap();
            drop(log);
            assert_logs_clean(d.path());
            let r = recover(d.path(), d.path()).unwrap();
            assert_eq!((r.last_zxid, r.tree.digest()), (k + 3, tree.digest()));
        }
    }

    #[test]
    fn truncate_to_the_last_zxid_or_beyond_changes_nothing() {
        let d = TestDir::new("trunc-last");
        log_of_creates(d.path(), 10);
        let before = files(d.path());
        truncate_to(d.path(), d.path(), 10).unwrap();
        assert_eq!(files(d.path()), before);
        truncate_to(d.path(), d.path(), 0x5_0000_0000).unwrap();
        assert_eq!(files(d.path()), before);
    }

    #[test]
    fn truncate_removes_newer_snapshots_and_refuses_an_unreachable_zxid() {
        let d = TestDir::new("trunc-snap");
        let digests = log_of_creates(d.path(), 10);
        let r = recover(d.path(), d.path()).unwrap();
        write_snapshot(d.path(), 10, &r.tree, &[]).unwrap();
        // Snapshot 10 goes with the txns after 6; recovery then replays the log to 6.
        truncate_to(d.path(), d.path(), 6).unwrap();
        assert!(list_snapshots(d.path()).unwrap().is_empty());
        let r = recover(d.path(), d.path()).unwrap();
        assert_eq!((r.last_zxid, r.tree.digest()), (6, digests[6]));
        // With a snapshot at 6 and the log before it gone (as purge leaves it), the state at
        // 4 can no longer be rebuilt: refused, and nothing changes.
        write_snapshot(d.path(), 6, &r.tree, &[]).unwrap();
        for (z, p) in list_logs(d.path()).unwrap() {
            if z < 5 {
                fs::remove_file(p).unwrap();
            }
        }
        let before = files(d.path());
        let e = truncate_to(d.path(), d.path(), 4).unwrap_err();
        assert!(e.to_string().contains("cannot truncate to zxid 0x4"), "{e}");
        assert_eq!(files(d.path()), before);
        // Truncating to the snapshot's own zxid is fine: it is the whole state.
        truncate_to(d.path(), d.path(), 6).unwrap();
        let r = recover(d.path(), d.path()).unwrap();
        assert_eq!((r.last_zxid, r.tree.digest()), (6, digests[6]));
    }

    /// A tree with a few nodes (one ephemeral) and its sessions, as a leader would send it.
    fn leader_state() -> (DataTree, Vec<(i64, u32)>, i64) {
        let mut tree = DataTree::new();
        let zxid = 0x2_0000_0000 + 3;
        for (i, (path, owner)) in [("/app", 0), ("/app/cfg", 0), ("/app/lock", 0x77)]
            .into_iter()
            .enumerate()
        {
            let parent = crate::tree::parent_of(path).unwrap();
            let txn = Txn::Create {
                path: path.into(),
                data: Some(path.as_bytes().to_vec()),
                acl: open_acl_unsafe(),
                ephemeral_owner: owner,
                parent_cversion: tree.get(parent).unwrap().cversion + 1,
            };
            tree.apply(&hdr(zxid - 2 + i as i64, 0x77), &txn, &mut vec![]);
        }
        (tree, vec![(0x77, 10_000), (0x78, 4000)], zxid)
    }

    #[test]
    fn install_snapshot_into_an_empty_dir_recovers_it() {
        let d = TestDir::new("install-empty");
        let (tree, sessions, zxid) = leader_state();
        let bytes = encode_snapshot(&tree, &sessions, zxid);
        let l = install_snapshot(d.path(), d.path(), &bytes).unwrap();
        assert_eq!((l.zxid, l.tree.digest()), (zxid, tree.digest()));
        let r = recover(d.path(), d.path()).unwrap();
        assert_eq!((r.last_zxid, r.snapshot_zxid), (zxid, zxid));
        assert_eq!(r.tree.digest(), tree.digest());
        assert_eq!(r.sessions, sessions.iter().copied().collect());
        // Stored byte for byte, under its final name only.
        assert_eq!(
            files(d.path()),
            BTreeMap::from([(snapshot::snapshot_name(zxid), bytes)])
        );
    }

    #[test]
    fn install_snapshot_supersedes_the_log_and_newer_snapshots() {
        let d = TestDir::new("install-logs");
        let logs = TestDir::new("install-logs-log");
        // The follower's own, divergent history: a log and snapshots before and after the
        // leader's zxid.
        log_of_creates(logs.path(), 10);
        let own = recover(d.path(), logs.path()).unwrap();
        let (tree, sessions, zxid) = leader_state();
        write_snapshot(d.path(), 0x1_0000_0005, &own.tree, &[]).unwrap();
        write_snapshot(d.path(), zxid + 5, &own.tree, &[(1, 1)]).unwrap();
        let bytes = encode_snapshot(&tree, &sessions, zxid);
        install_snapshot(d.path(), logs.path(), &bytes).unwrap();
        assert!(list_logs(logs.path()).unwrap().is_empty());
        let snaps: Vec<i64> = list_snapshots(d.path())
            .unwrap()
            .iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(snaps, [0x1_0000_0005, zxid]);
        let r = recover(d.path(), logs.path()).unwrap();
        assert_eq!((r.last_zxid, r.tree.digest()), (zxid, tree.digest()));
        assert_eq!(r.sessions, sessions.iter().copied().collect());
        // The follower then logs the leader's next txns after the snapshot.
        let mut tree = r.tree;
        let mut log = TxnLog::open(logs.path(), 4096).unwrap();
        let txn = create_txn(&tree, "/after", 1);
        tree.apply(&hdr(zxid + 1, 0x77), &txn, &mut vec![]);
        log.append(&hdr(zxid + 1, 0x77), &txn).unwrap();
        log.take_sync_batch().unwrap().run().unwrap();
        drop(log);
        let r = recover(d.path(), logs.path()).unwrap();
        assert_eq!((r.last_zxid, r.tree.digest()), (zxid + 1, tree.digest()));
    }

    #[test]
    fn install_snapshot_refuses_damage_before_touching_the_disk() {
        let d = TestDir::new("install-bad");
        log_of_creates(d.path(), 4);
        let before = files(d.path());
        let (tree, sessions, zxid) = leader_state();
        let good = encode_snapshot(&tree, &sessions, zxid);
        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 1;
        for bad in [&good[..good.len() - 1], &flipped[..], &[][..]] {
            assert!(matches!(
                install_snapshot(d.path(), d.path(), bad),
                Err(StorageError::Corrupt { .. })
            ));
            assert_eq!(files(d.path()), before);
        }
    }

    #[test]
    fn stored_secret_is_the_one_loaded() {
        use std::os::unix::fs::PermissionsExt;
        let d = TestDir::new("secret");
        let first = load_or_create_secret(d.path(), || [1; 32]).unwrap();
        assert_eq!(first, [1; 32]);
        let leaders = [0xA5; 32];
        store_secret(d.path(), &leaders).unwrap();
        assert_eq!(
            load_or_create_secret(d.path(), || panic!("kept")).unwrap(),
            leaders
        );
        let path = version_dir(d.path()).join(SECRET_FILE);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(files(d.path()).len(), 1, "no temp file is left");
        // Into a directory that has no version-2 yet, too.
        let e = TestDir::new("secret-new");
        store_secret(e.path(), &leaders).unwrap();
        assert_eq!(
            load_or_create_secret(e.path(), || [0; 32]).unwrap(),
            leaders
        );
    }
}
