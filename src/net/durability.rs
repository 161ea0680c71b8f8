//! Durability for the event loop: the txn log as the server's `TxnSink`, a sync thread that
//! makes appended txns durable in batches (group commit: one sync covers everything appended
//! since the last one) and wakes the loop through mio's Waker, and fuzzy snapshots written by
//! a second thread from chunks the loop serializes a bounded batch at a time, followed by a
//! purge. Reads never wait for any of this: the loop keeps serving while a sync runs.
//!
//! A failed sync is fatal (DESIGN.md §5): the process exits and recovery decides what
//! survived, because retrying an fsync that failed can report success for lost data.

use crate::config::Config;
use crate::proto::txn::{Txn, TxnHeader};
use crate::server::{Server, TxnSink};
use crate::storage::snapshot::{encode_node, SnapshotWriter};
use crate::storage::txnlog::{SyncBatch, TxnLog};
use crate::tree::walk::WalkCursor;
use std::cell::RefCell;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Nodes serialized per loop turn while a snapshot is in progress.
const SNAPSHOT_NODES_PER_TURN: usize = 4096;
/// A chunk buffer's starting size: a turn's nodes at ~150 bytes each, so that it rarely
/// grows (buffers are reused, and keep what they grew to).
const SNAPSHOT_CHUNK_CAPACITY: usize = SNAPSHOT_NODES_PER_TURN * 160;
/// Serialized chunks that may wait for the snapshot thread (bounds the memory a snapshot
/// holds beyond the tree itself).
const SNAPSHOT_CHUNKS_QUEUED_MAX: usize = 8;

/// The server's view of the log: appends go straight into the mapped segment.
pub struct LogSink(pub Rc<RefCell<TxnLog>>);

impl TxnSink for LogSink {
    fn append(&mut self, hdr: &TxnHeader, txn: &Txn) -> Result<(), String> {
        self.0
            .borrow_mut()
            .append(hdr, txn)
            .map_err(|e| e.to_string())
    }
}

enum SnapMsg {
    Chunk(Vec<u8>, u64),
    Finish(Vec<(i64, u32)>),
}

struct SnapshotJob {
    zxid: i64,
    cursor: WalkCursor,
    tx: SyncSender<SnapMsg>,
    /// Chunk buffers the writer thread has written and hands back for reuse: a fresh
    /// buffer every turn meant fresh pages (zeroed by the kernel) and regrowth copies.
    spare: Receiver<Vec<u8>>,
    /// A chunk built but not yet accepted by the full queue.
    held: Option<(Vec<u8>, u64)>,
    started: Instant,
}

/// Figures for mntr and logs.
#[derive(Debug, Default, Clone)]
pub struct SyncStats {
    pub syncs: u64,
    pub slow_syncs: u64,
    pub last_sync_ms: u64,
    pub max_sync_ms: u64,
    pub snapshots: u64,
}

pub struct Durability {
    log: Rc<RefCell<TxnLog>>,
    sync_tx: mpsc::Sender<SyncBatch>,
    sync_rx: Receiver<(io::Result<i64>, Duration, u64)>,
    sync_in_flight: bool,
    force_sync: bool,
    fsync_warn: Duration,
    data_dir: PathBuf,
    log_dir: PathBuf,
    snap_retain: usize,
    purge_enabled: bool,
    purge_interval: Duration,
    last_purge: Instant,
    snap_threshold: u64,
    last_snapshot_zxid: i64,
    snapshot: Option<SnapshotJob>,
    snap_done_rx: Receiver<io::Result<PathBuf>>,
    snap_done_tx: mpsc::Sender<io::Result<PathBuf>>,
    waker: Arc<mio::Waker>,
    pub stats: SyncStats,
    _sync_thread: JoinHandle<()>,
}

/// A randomized snapshot threshold in [snapCount/2 + 1, snapCount], as ZooKeeper spreads
/// snapshots of an ensemble's servers apart.
fn snap_threshold(snap_count: u64, seed: u64) -> u64 {
    let half = snap_count / 2;
    half + 1 + seed % (snap_count - half).max(1)
}

impl Durability {
    pub fn new(
        cfg: &Config,
        log: Rc<RefCell<TxnLog>>,
        last_zxid: i64,
        waker: Arc<mio::Waker>,
        seed: u64,
    ) -> io::Result<Durability> {
        let (sync_tx, batches) = mpsc::channel::<SyncBatch>();
        let (results_tx, sync_rx) = mpsc::channel();
        let w = waker.clone();
        let force_sync = cfg.force_sync;
        let sync_thread = std::thread::Builder::new()
            .name("zk-sync".into())
            .spawn(move || {
                for batch in batches {
                    let bytes = batch.bytes();
                    let start = Instant::now();
                    let r = if force_sync {
                        batch.run()
                    } else {
                        Ok(batch.skip())
                    };
                    if results_tx.send((r, start.elapsed(), bytes)).is_err() {
                        return;
                    }
                    let _ = w.wake();
                }
            })?;
        let (snap_done_tx, snap_done_rx) = mpsc::channel();
        Ok(Durability {
            log,
            sync_tx,
            sync_rx,
            sync_in_flight: false,
            force_sync: cfg.force_sync,
            fsync_warn: Duration::from_millis(cfg.fsync_warning_threshold_ms),
            data_dir: cfg.data_dir.clone(),
            log_dir: cfg.data_log_dir.clone(),
            snap_retain: cfg.autopurge_snap_retain_count.max(3) as usize,
            purge_enabled: cfg.autopurge_purge_interval_hours > 0,
            purge_interval: Duration::from_secs(cfg.autopurge_purge_interval_hours as u64 * 3600),
            last_purge: Instant::now(),
            snap_threshold: snap_threshold(cfg.snap_count.max(2), seed),
            last_snapshot_zxid: last_zxid,
            snapshot: None,
            snap_done_rx,
            snap_done_tx,
            waker,
            stats: SyncStats::default(),
            _sync_thread: sync_thread,
        })
    }

    /// Collects finished syncs, starts the next sync, and advances a snapshot in progress.
    /// Returns the highest zxid that became durable, for the caller to apply and answer
    /// (standalone) or acknowledge (ensemble). Called once per loop turn and on wake-ups.
    pub fn pump(&mut self, server: &Server) -> Option<i64> {
        let mut durable = None;
        while let Ok((r, took, bytes)) = self.sync_rx.try_recv() {
            self.sync_in_flight = false;
            match r {
                Ok(zxid) => {
                    self.record_sync(took, bytes);
                    durable = durable.max(Some(zxid));
                }
                Err(e) => {
                    log::error!("fsync of the txn log failed: {e}; exiting so that recovery decides what is durable");
                    std::process::exit(70);
                }
            }
        }
        if !self.sync_in_flight {
            if let Some(batch) = self.log.borrow_mut().take_sync_batch() {
                if self.sync_tx.send(batch).is_ok() {
                    self.sync_in_flight = true;
                }
            }
        }
        self.advance_snapshot(server);
        if self.purge_enabled
            && self.snapshot.is_none()
            && self.last_purge.elapsed() >= self.purge_interval
        {
            self.last_purge = Instant::now();
            self.spawn_purge();
        }
        if self.snapshot.is_none()
            && server.last_zxid - self.last_snapshot_zxid >= self.snap_threshold as i64
        {
            self.start_snapshot(server);
        }
        durable
    }

    /// Abandons a snapshot in progress (the tree it was walking was replaced by a TRUNC or
    /// SNAP from the leader); its thread drops the unfinished file.
    pub fn abort_snapshot(&mut self, last_zxid: i64) {
        if self.snapshot.take().is_some() {
            log::info!("abandoned a snapshot in progress: the state was replaced");
        }
        self.last_snapshot_zxid = last_zxid;
    }

    fn record_sync(&mut self, took: Duration, bytes: u64) {
        let ms = took.as_millis() as u64;
        self.stats.syncs += 1;
        self.stats.last_sync_ms = ms;
        self.stats.max_sync_ms = self.stats.max_sync_ms.max(ms);
        if self.force_sync && took > self.fsync_warn {
            self.stats.slow_syncs += 1;
            log::warn!(
                "fsync-ing the write ahead log took {ms}ms which will adversely effect operation latency. The batch held {bytes} bytes. See the ZooKeeper troubleshooting guide"
            );
        }
    }

    /// Waits for the sync in flight and syncs whatever else was appended; returns the highest
    /// zxid made durable (SIGTERM: finish the in-flight sync before exiting).
    pub fn finish(&mut self) -> Option<i64> {
        let mut durable = None;
        if self.sync_in_flight {
            if let Ok((r, took, bytes)) = self.sync_rx.recv() {
                self.sync_in_flight = false;
                match r {
                    Ok(z) => {
                        self.record_sync(took, bytes);
                        durable = Some(z);
                    }
                    Err(e) => {
                        log::error!("fsync of the txn log failed: {e}");
                        std::process::exit(70);
                    }
                }
            }
        }
        let batch = self.log.borrow_mut().take_sync_batch();
        if let Some(b) = batch {
            let r = if self.force_sync {
                b.run()
            } else {
                Ok(b.skip())
            };
            match r {
                Ok(z) => durable = durable.max(Some(z)),
                Err(e) => {
                    log::error!("fsync of the txn log failed: {e}");
                    std::process::exit(70);
                }
            }
        }
        durable
    }

    /// Starts a fuzzy snapshot at the last applied zxid (`zk snapshot save`, or snapCount).
    /// Returns the zxid, or None when one is already running.
    pub fn start_snapshot(&mut self, server: &Server) -> Option<i64> {
        if self.snapshot.is_some() {
            return None;
        }
        let zxid = server.last_zxid;
        // Later txns go to a new segment, so purge can drop whole old segments.
        self.log.borrow_mut().roll();
        self.last_snapshot_zxid = zxid;
        let (tx, rx) = mpsc::sync_channel::<SnapMsg>(SNAPSHOT_CHUNKS_QUEUED_MAX);
        let (spare_tx, spare) = mpsc::sync_channel::<Vec<u8>>(SNAPSHOT_CHUNKS_QUEUED_MAX + 2);
        let dir = self.data_dir.clone();
        let log_dir = self.log_dir.clone();
        let done = self.snap_done_tx.clone();
        let waker = self.waker.clone();
        let (retain, purge) = (self.snap_retain, self.purge_enabled);
        let spawned = std::thread::Builder::new()
            .name("zk-snapshot".into())
            .spawn(move || {
                let r = write_snapshot(&dir, zxid, rx, spare_tx);
                if r.is_ok() && purge {
                    purge_now(&dir, &log_dir, retain);
                }
                let _ = done.send(r);
                let _ = waker.wake();
            });
        if let Err(e) = spawned {
            log::error!("cannot start the snapshot thread: {e}");
            return None;
        }
        log::info!("Creating new snapshot at zxid 0x{zxid:x}");
        self.snapshot = Some(SnapshotJob {
            zxid,
            cursor: WalkCursor::new(),
            tx,
            spare,
            held: None,
            started: Instant::now(),
        });
        Some(zxid)
    }

    fn advance_snapshot(&mut self, server: &Server) {
        while let Ok(r) = self.snap_done_rx.try_recv() {
            match r {
                Ok(p) => {
                    self.stats.snapshots += 1;
                    log::info!("Snapshot taken: {}", p.display());
                }
                Err(e) => log::error!("snapshot failed: {e}"),
            }
        }
        let Some(job) = self.snapshot.as_mut() else {
            return;
        };
        loop {
            if let Some(chunk) = job.held.take() {
                match job.tx.try_send(SnapMsg::Chunk(chunk.0, chunk.1)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(SnapMsg::Chunk(b, n))) => {
                        job.held = Some((b, n));
                        return;
                    }
                    Err(_) => {
                        // The writer thread failed and said so through snap_done.
                        self.snapshot = None;
                        return;
                    }
                }
            }
            if job.cursor.is_done() {
                let mut sessions = server.session_list();
                sessions.sort_unstable();
                let _ = job.tx.send(SnapMsg::Finish(sessions));
                log::info!(
                    "snapshot 0x{:x} serialized in {} ms",
                    job.zxid,
                    job.started.elapsed().as_millis()
                );
                self.snapshot = None;
                return;
            }
            let mut buf = job
                .spare
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(SNAPSHOT_CHUNK_CAPACITY));
            let step =
                server
                    .tree
                    .walk_step(&mut job.cursor, SNAPSHOT_NODES_PER_TURN, |path, node| {
                        encode_node(&mut buf, path, &node)
                    });
            let n = match step {
                Ok(n) => n,
                Err(e) => {
                    // Dropping the job closes the channel: the writer thread discards the
                    // partial file.
                    log::error!("snapshot 0x{:x} abandoned: {e}", job.zxid);
                    self.snapshot = None;
                    return;
                }
            };
            job.held = Some((buf, n as u64));
            // One chunk per turn keeps the loop responsive while a large tree is written.
            if !job.cursor.is_done() {
                if let Some(chunk) = job.held.take() {
                    if let Err(TrySendError::Full(SnapMsg::Chunk(b, n))) =
                        job.tx.try_send(SnapMsg::Chunk(chunk.0, chunk.1))
                    {
                        job.held = Some((b, n));
                    }
                }
                return;
            }
        }
    }

    /// autopurge.purgeInterval: purge on a thread of its own (it only lists and unlinks).
    fn spawn_purge(&self) {
        let (dir, log_dir, retain) = (
            self.data_dir.clone(),
            self.log_dir.clone(),
            self.snap_retain,
        );
        let r = std::thread::Builder::new()
            .name("zk-purge".into())
            .spawn(move || purge_now(&dir, &log_dir, retain));
        if let Err(e) = r {
            log::warn!("cannot start the purge thread: {e}");
        }
    }

    /// Whether a snapshot is being serialized (the loop then wakes often to feed it; a sync
    /// in flight needs no polling, its thread wakes the loop when done).
    pub fn busy(&self) -> bool {
        self.snapshot.is_some()
    }
}

/// Keeps the newest `retain` snapshots and the log segments they need.
fn purge_now(dir: &std::path::Path, log_dir: &std::path::Path, retain: usize) {
    match crate::storage::purge(dir, log_dir, retain) {
        Ok(rep) => {
            if !rep.snapshots_removed.is_empty() || !rep.logs_removed.is_empty() {
                log::info!(
                    "purged {} snapshot(s) and {} log segment(s), keeping the newest {retain} snapshots",
                    rep.snapshots_removed.len(),
                    rep.logs_removed.len()
                );
            }
        }
        Err(e) => log::warn!("purge failed: {e}"),
    }
}

fn write_snapshot(
    dir: &std::path::Path,
    zxid: i64,
    rx: Receiver<SnapMsg>,
    spare: SyncSender<Vec<u8>>,
) -> io::Result<PathBuf> {
    let mut w = SnapshotWriter::create(dir, zxid)?;
    for msg in rx {
        match msg {
            SnapMsg::Chunk(mut bytes, n) => {
                w.write_chunk(&bytes, n)?;
                bytes.clear();
                // Back to the loop for the next chunk; dropped if it has enough.
                let _ = spare.try_send(bytes);
            }
            SnapMsg::Finish(sessions) => return w.finish(&sessions),
        }
    }
    Err(io::Error::other(
        "snapshot abandoned before it was finished",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_is_within_zookeepers_range() {
        for seed in 0..1000 {
            let t = snap_threshold(100_000, seed);
            assert!((50_001..=100_000).contains(&t), "{t}");
        }
        assert_eq!(snap_threshold(2, 0), 2);
    }
}
