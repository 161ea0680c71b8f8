//! The txn log: every committed txn, in zxid order, in preallocated segment files that are
//! mapped into memory. Appending copies a record into the map; a `SyncBatch` then makes
//! everything appended since the last batch durable with one msync per touched segment (group
//! commit), on a thread of the caller's choosing, while appends go on. Recovery reads the
//! segments back, truncates a torn tail and refuses on damage anywhere else. It never applies
//! txns (recovery hands them to the tree). Corresponds to Apache ZooKeeper's FileTxnLog (same
//! file names and directory, different format).
//!
//! # Format, version 1
//!
//! Segments are `<dataLogDir>/version-2/log.<zxid of the first record, lowercase hex>`. All
//! integers are big-endian.
//!
//! ```text
//! segment  := header record* zeros
//! header   := magic:"ZKLG" format_version:u32 (=1) first_zxid:i64 reserved:u64 (=0)  24 bytes
//! record   := len:u32 crc:u32 body[len] pad          starts at an 8-byte aligned offset
//!           | page_pad
//! body     := durable_zxid:i64 txn                   txn as proto::txn::encode writes it
//! pad      := 0x00{0..7}                             up to the next multiple of 8
//! page_pad := 0xFFFFFFFF:u32 crc:u32 0x00*           crc of the 4 marker bytes; the next
//!                                                    record starts at the next 4096-byte
//!                                                    boundary of the file
//! crc      := CRC-32 (IEEE, as crc32fast computes it) of the 4 len bytes then body
//! zeros    := 0x00*                                  the preallocated rest; len 0 ends the records
//! ```
//!
//! A sync batch that does not end on a page boundary is closed with a `page_pad`, so the
//! appends after it go to a page no sync is writing back: the kernel makes a store into a
//! page under writeback wait for the write to finish, which stalled the event loop for
//! milliseconds. A `page_pad` whose crc fails is damage (like a length over the bound).
//!
//! The crc covers `len`, so a damaged length that still points inside the file fails the
//! check instead of shifting every later record. `durable_zxid` is the highest zxid known to
//! be durable when the record was appended; recovery uses it as evidence (below). Records
//! are 8-byte aligned so a record's `len` and `crc` never straddle a disk sector.
//!
//! Writers: a segment is created as `log.<zxid>.tmp`, preallocated with real blocks
//! (posix_fallocate), given its header and renamed, so a full disk fails at creation rather
//! than with SIGBUS inside the map, and a named segment is always full-size. Creation does
//! not sync (that would stall the appending thread): the first batch that covers a segment
//! syncs its first page, header included, and then the directory. A record is written body
//! first, crc next and `len` last, so a process killed mid-copy leaves a zero `len`, which
//! reads as the end. Records never span segments: one that does not fit
//! starts a new segment. A new process never appends to an old segment.
//!
//! Readers stop at the first place a record cannot be read — `len` 0, a header or body
//! running past the end of the file, a `len` over `TXN_RECORD_BYTES_MAX`, a crc mismatch —
//! call it the break, and let `p` be the last good zxid. If only zeros follow, the log simply
//! ends there. Otherwise:
//!
//! 1. If any intact record after the break has `durable_zxid > p`, txns after `p` had been
//!    acknowledged, so the break is damage to acknowledged data: `Corrupt`.
//! 2. Else, in the last segment, the break is a torn tail — the remains of writes that were
//!    in flight when the process or machine stopped, none of them acknowledged — when it is a
//!    zero `len` (written last, so the record was never completed), a record that runs past
//!    the end of the file (a truncated file), or a crc mismatch whose record holds an all-zero
//!    512-byte sector or is followed only by zeros (a write that did not reach the disk).
//!    Recovery zeroes the bytes from the break on, syncs, and logs a warning.
//! 3. Anything else — a crc mismatch over fully written data followed by more data, a
//!    length over the bound, or any break in a segment that is not the last — is `Corrupt`.
//!
//! A last segment whose header is all zeros was created but never covered by a finished
//! batch, so nothing in it was acknowledged: recovery removes it with a warning.
//!
//! An intact record whose txn does not decode, whose padding is not zero, whose zxid differs
//! from the segment's name (for the first record), or that does not follow the previous zxid
//! (the next counter in the same epoch, or any zxid of a later epoch) is `Corrupt` as well, and
//! so is a header with the wrong magic, version, first zxid or non-zero reserved bytes.

use super::{ensure_version_dir, list_named, sync_dir, version_dir, with_path, StorageError};
use crate::proto::jute::Writer;
use crate::proto::txn::{self, Txn, TxnHeader};
use memmap2::{Mmap, MmapRaw};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicI64, Ordering};
use std::sync::Arc;

pub const LOG_MAGIC: [u8; 4] = *b"ZKLG";
pub const LOG_FORMAT_VERSION: u32 = 1;
pub const SEGMENT_HEADER_BYTES: usize = 24;
const RECORD_HEADER_BYTES: usize = 8;
/// Record alignment: keeps `len` and `crc` inside one sector.
const RECORD_ALIGN: usize = 8;
/// The smallest txn body (durable_zxid plus the txn header) a record can hold.
const BODY_BYTES_MIN: usize = 8 + 32;
/// The largest record body accepted. Txns are bounded by jute.maxbuffer (1 MiB by default);
/// this is far above any sane setting and low enough that a damaged length is recognised.
pub const TXN_RECORD_BYTES_MAX: usize = 32 << 20;
/// Segment sizes are whole pages; the smallest is one page (useful in tests).
const PAGE_BYTES: u64 = 4096;
/// The `len` of a page_pad record: skip to the next page boundary.
const PAGE_PAD_MARKER: u32 = u32::MAX;
/// Batches with fewer records are not padded (see `TxnLog::pad_to_page`).
const PAD_BATCH_RECORDS_MIN: u64 = 2;
/// The unit in which a disk persists writes: a torn write leaves whole sectors of zeros.
const SECTOR_BYTES: usize = 512;

/// `log.<zxid hex>`.
pub fn log_name(first_zxid: i64) -> String {
    format!("log.{:x}", first_zxid as u64)
}

fn align_up(n: usize, a: usize) -> usize {
    n.div_ceil(a) * a
}

/// Whether `next` may follow `prev` in the log: the next counter of the same epoch, or any
/// zxid of a later epoch (a new leader restarts the counter).
fn follows(prev: i64, next: i64) -> bool {
    next == prev.wrapping_add(1) || (next >> 32) > (prev >> 32)
}

/// One mapped segment, shared by the log (which appends) and the batches (which sync).
struct Segment {
    path: PathBuf,
    map: MmapRaw,
    len: usize,
    // Kept open for the life of the map; the map is what we write through.
    _file: File,
}

impl Segment {
    /// Drops the whole pages of `[start, end)` from this process's mapping once they are
    /// synced: they stay in the page cache (and in the file), but no longer count in the
    /// server's resident size, which would otherwise grow by every byte logged up to the
    /// segment's size. Reading them again faults them back in. Advice only: a failure leaves
    /// the pages mapped.
    fn release_pages(&self, start: usize, end: usize) {
        let page = PAGE_BYTES as usize;
        let (from, to) = (start / page * page, end / page * page);
        if to <= from {
            return;
        }
        // SAFETY: the range is below `end`, which the writer has passed for good (it only
        // appends, at offsets >= end), and no reference into it is held: the loop writes
        // through raw pointers at its append offset and readers map the file separately. On
        // a shared file mapping MADV_DONTNEED only removes page table entries; the synced
        // data stays in the file and page cache.
        let _ = unsafe {
            self.map
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from)
        };
    }
}

/// A write-side handle on the txn log. One per server, used from one thread.
pub struct TxnLog {
    dir: PathBuf,
    pre_alloc_bytes: u64,
    current: Option<Arc<Segment>>,
    write_pos: usize,
    /// Byte ranges appended since the last batch, in order, at most one per segment.
    pending: Vec<(Arc<Segment>, usize, usize)>,
    pending_records: u64,
    /// A segment was renamed into place since the last batch: the directory needs a sync.
    dir_sync_pending: bool,
    last_zxid: i64,
    durable_zxid: Arc<AtomicI64>,
    buf: Vec<u8>,
}

impl TxnLog {
    /// Opens `<dir>/version-2` for appending. Call it after recovery: it removes unfinished
    /// `log.*.tmp` files, and the first append starts a new segment named by its zxid.
    pub fn open(dir: &Path, pre_alloc_bytes: u64) -> io::Result<TxnLog> {
        let v = ensure_version_dir(dir)?;
        for ent in fs::read_dir(&v)?.flatten() {
            let name = ent.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("log.") && name.ends_with(".tmp") {
                fs::remove_file(ent.path())?;
            }
        }
        let pre_alloc_bytes = pre_alloc_bytes.max(PAGE_BYTES).div_ceil(PAGE_BYTES) * PAGE_BYTES;
        Ok(TxnLog {
            dir: v,
            pre_alloc_bytes,
            current: None,
            write_pos: 0,
            pending: Vec::new(),
            pending_records: 0,
            dir_sync_pending: false,
            last_zxid: i64::MIN,
            durable_zxid: Arc::new(AtomicI64::new(0)),
            buf: Vec::new(),
        })
    }

    /// The highest zxid appended by this handle.
    pub fn last_zxid(&self) -> Option<i64> {
        (self.last_zxid != i64::MIN).then_some(self.last_zxid)
    }

    /// The highest zxid a finished batch made durable.
    pub fn durable_zxid(&self) -> i64 {
        self.durable_zxid.load(Ordering::Acquire)
    }

    /// Appends one txn. It is in the page cache when this returns and durable once a batch
    /// that covers it has run. Fails without side effects when the txn's zxid does not exceed
    /// the last one, when it is too large, or when a new segment cannot be created (disk full);
    /// a later append can succeed once the cause is gone.
    pub fn append(&mut self, hdr: &TxnHeader, txn: &Txn) -> io::Result<()> {
        if self.last_zxid != i64::MIN && hdr.zxid <= self.last_zxid {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "txn log: zxid 0x{:x} appended after 0x{:x}",
                    hdr.zxid, self.last_zxid
                ),
            ));
        }
        let mut w = Writer {
            buf: std::mem::take(&mut self.buf),
        };
        w.buf.clear();
        w.i64(self.durable_zxid.load(Ordering::Acquire));
        txn::encode(hdr, txn, &mut w);
        self.buf = w.buf;
        let body_len = self.buf.len();
        if body_len > TXN_RECORD_BYTES_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("txn log: record of {body_len} bytes is over {TXN_RECORD_BYTES_MAX}"),
            ));
        }
        let rec_len = align_up(RECORD_HEADER_BYTES + body_len, RECORD_ALIGN);
        let fits = self
            .current
            .as_ref()
            .is_some_and(|s| self.write_pos + rec_len <= s.len);
        if !fits {
            let seg = create_segment(&self.dir, hdr.zxid, rec_len, self.pre_alloc_bytes)?;
            self.current = Some(Arc::new(seg));
            self.write_pos = SEGMENT_HEADER_BYTES;
            self.dir_sync_pending = true;
        }
        let seg = self.current.as_ref().expect("set above");
        let len_bytes = (body_len as u32).to_be_bytes();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&len_bytes);
        crc.update(&self.buf);
        let crc = crc.finalize().to_be_bytes();
        let pos = self.write_pos;
        // A batch that starts a segment also covers its header.
        let range_start = if pos == SEGMENT_HEADER_BYTES { 0 } else { pos };
        // SAFETY: `pos + rec_len <= seg.len`, the mapped length, so every write below stays in
        // the map. Only this handle writes to the map, and only at or after `write_pos`, which
        // no batch range covers (batches end at the old `write_pos`), so the sync thread never
        // sees these bytes change under a range it was given; and no Rust reference to mapped
        // bytes exists anywhere, only raw pointers, so there is no aliasing to violate. The file
        // was preallocated with real blocks, so the stores cannot fault for lack of space.
        unsafe {
            let base = seg.map.as_mut_ptr().add(pos);
            std::ptr::copy_nonoverlapping(
                self.buf.as_ptr(),
                base.add(RECORD_HEADER_BYTES),
                body_len,
            );
            std::ptr::copy_nonoverlapping(crc.as_ptr(), base.add(4), 4);
            // The length goes last: a process killed before this store leaves a zero length,
            // which reads as the end of the log, never as a record with missing bytes.
            fence(Ordering::Release);
            std::ptr::write_volatile(base as *mut [u8; 4], len_bytes);
        }
        match self.pending.last_mut() {
            Some((s, _, end)) if Arc::ptr_eq(s, seg) => *end = pos + rec_len,
            _ => self.pending.push((seg.clone(), range_start, pos + rec_len)),
        }
        self.pending_records += 1;
        self.write_pos = pos + rec_len;
        self.last_zxid = hdr.zxid;
        Ok(())
    }

    /// Closes the batch being taken with a page_pad record when it does not end on a page
    /// boundary, so later appends never store into a page the batch's sync writes back.
    /// Only batches of several records are padded: they show writes arriving while syncs
    /// run, which is when a store would wait; a lightly loaded server (one txn per sync)
    /// would only waste a page per txn.
    fn pad_to_page(&mut self) {
        if self.pending_records < PAD_BATCH_RECORDS_MIN {
            return;
        }
        let Some(seg) = self.current.clone() else {
            return;
        };
        let page = PAGE_BYTES as usize;
        let pos = self.write_pos;
        if pos % page == 0 || pos + RECORD_HEADER_BYTES > seg.len {
            return;
        }
        let marker = PAGE_PAD_MARKER.to_be_bytes();
        let crc = crc32fast::hash(&marker).to_be_bytes();
        // SAFETY: `pos + RECORD_HEADER_BYTES <= seg.len`, so both stores stay in the map; the
        // bytes are at `write_pos`, which no batch range covers yet (the same argument as in
        // `append`), and only raw pointers touch mapped bytes.
        unsafe {
            let base = seg.map.as_mut_ptr().add(pos);
            std::ptr::copy_nonoverlapping(crc.as_ptr(), base.add(4), 4);
            fence(Ordering::Release);
            std::ptr::write_volatile(base as *mut [u8; 4], marker);
        }
        if let Some((s, _, end)) = self.pending.last_mut() {
            if Arc::ptr_eq(s, &seg) {
                *end = pos + RECORD_HEADER_BYTES;
            }
        }
        // Past the end of the segment the next append simply starts a new one.
        self.write_pos = align_up(pos + RECORD_HEADER_BYTES, page).min(seg.len);
    }

    /// Makes the next append start a new segment (called after a snapshot, so purge can drop
    /// whole segments that only hold txns before it).
    pub fn roll(&mut self) {
        self.current = None;
    }

    /// Everything appended since the last call, as one batch to make durable; `None` when
    /// nothing was appended.
    pub fn take_sync_batch(&mut self) -> Option<SyncBatch> {
        if self.pending.is_empty() {
            return None;
        }
        self.pad_to_page();
        Some(SyncBatch {
            ranges: std::mem::take(&mut self.pending),
            records: std::mem::take(&mut self.pending_records),
            dir: std::mem::take(&mut self.dir_sync_pending).then(|| self.dir.clone()),
            last_zxid: self.last_zxid,
            durable_zxid: self.durable_zxid.clone(),
        })
    }
}

/// Creates `log.<first_zxid>` holding at least `record_bytes` after the header. Nothing is
/// left behind on failure.
fn create_segment(
    dir: &Path,
    first_zxid: i64,
    record_bytes: usize,
    pre_alloc_bytes: u64,
) -> io::Result<Segment> {
    let need = (SEGMENT_HEADER_BYTES + record_bytes) as u64;
    let len = pre_alloc_bytes.max(need.div_ceil(PAGE_BYTES) * PAGE_BYTES);
    let path = dir.join(log_name(first_zxid));
    // A segment of this name can exist only if its first record was torn and truncated
    // (recovery left it empty); replacing it then loses nothing. Anything else is a caller
    // bug that must not destroy data.
    if let Ok(f) = File::open(&path) {
        let mut first_len = [0u8; 4];
        if f.read_exact_at(&mut first_len, SEGMENT_HEADER_BYTES as u64)
            .is_ok()
            && first_len != [0; 4]
        {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("txn log: {} already holds records", path.display()),
            ));
        }
    }
    let tmp = dir.join(format!("{}.tmp", log_name(first_zxid)));
    let res = (|| {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        fallocate(&file, len)?;
        let mut header = [0u8; SEGMENT_HEADER_BYTES];
        header[..4].copy_from_slice(&LOG_MAGIC);
        header[4..8].copy_from_slice(&LOG_FORMAT_VERSION.to_be_bytes());
        header[8..16].copy_from_slice(&first_zxid.to_be_bytes());
        file.write_all_at(&header, 0)?;
        // No sync here: it would stall the appending thread. The first batch that covers the
        // segment syncs its first page, header included, and then the directory; until then
        // nothing in it is acknowledged, and recovery discards a last segment whose header
        // never reached the disk.
        fs::rename(&tmp, &path)?;
        let map = MmapRaw::map_raw(&file)?;
        Ok(Segment {
            path: path.clone(),
            len: map.len(),
            map,
            _file: file,
        })
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res.map_err(|e: io::Error| with_path(e, "cannot create txn log segment", &path))
}

/// Allocates real blocks for `len` bytes, so writes through the map never need space.
fn fallocate(file: &File, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
    // SAFETY: posix_fallocate takes an open descriptor (owned by `file`, alive for the call)
    // and two integers; it touches no memory of ours.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// A group of appended records to make durable: run it on the sync thread, one batch at a
/// time and in the order taken, while the log keeps appending.
///
/// It syncs with msync(MS_SYNC) over the dirty byte range of each touched segment, not
/// fdatasync of the whole file: the records were written through the map, msync is the call
/// defined to make map writes durable, and the range limits the write-back to this batch's
/// pages (on Linux msync(MS_SYNC) is fsync of that range, including the device cache flush).
pub struct SyncBatch {
    ranges: Vec<(Arc<Segment>, usize, usize)>,
    records: u64,
    dir: Option<PathBuf>,
    last_zxid: i64,
    durable_zxid: Arc<AtomicI64>,
}

impl SyncBatch {
    /// The highest zxid in the batch.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    pub fn bytes(&self) -> u64 {
        self.ranges.iter().map(|(_, a, b)| (b - a) as u64).sum()
    }

    /// Makes the batch durable and returns the highest zxid now durable. An error means the
    /// data may not be on disk and must never be retried (a failed fsync may have dropped the
    /// dirty pages): the caller treats it as fatal.
    pub fn run(self) -> io::Result<i64> {
        for (seg, start, end) in &self.ranges {
            seg.map
                .flush_range(*start, end - start)
                .map_err(|e| with_path(e, "cannot sync", &seg.path))?;
            seg.release_pages(*start, *end);
        }
        if let Some(dir) = &self.dir {
            sync_dir(dir)?;
        }
        self.durable_zxid
            .fetch_max(self.last_zxid, Ordering::AcqRel);
        Ok(self.last_zxid)
    }

    /// Treats the batch as done without syncing (forceSync=no, which is unsafe: a power loss
    /// loses txns that clients were told succeeded). The durability evidence later records
    /// carry is not advanced, so recovery does not mistake the loss for damage.
    pub fn skip(self) -> i64 {
        self.last_zxid
    }
}

/// A torn tail recovery found at the end of the last segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub file: PathBuf,
    pub offset: u64,
    /// How many bytes from `offset` on were not zero (and were zeroed when repairing).
    pub bytes: u64,
}

/// What one segment holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub path: PathBuf,
    pub first_zxid: i64,
    /// The zxid of the last intact record, `None` when it holds none.
    pub last_zxid: Option<i64>,
    pub txns: u64,
    /// Where the intact records end.
    pub end_offset: u64,
    pub file_bytes: u64,
    pub torn: Option<TornTail>,
}

/// What `replay_logs` found.
#[derive(Debug, Clone, Default)]
pub struct LogSummary {
    /// The highest zxid in the segments read.
    pub last_zxid: Option<i64>,
    /// Txns passed to the visitor (those after `after_zxid`).
    pub txns_after: u64,
    pub torn: Option<TornTail>,
    pub segments_read: usize,
}

/// The txns `scan_logs` collected.
#[derive(Debug, Clone, Default)]
pub struct LogScan {
    pub txns: Vec<(TxnHeader, Txn)>,
    pub last_zxid: Option<i64>,
    pub torn: Option<TornTail>,
}

/// Every segment `log.<zxid>` in `<dir>/version-2`, by first zxid.
pub fn list_logs(dir: &Path) -> io::Result<Vec<(i64, PathBuf)>> {
    list_named(dir, "log.")
}

/// Recovery's read of the log: every intact txn with zxid > `after_zxid`, in order. Truncates
/// a torn tail (see the module doc); any other damage is `Corrupt`.
pub fn scan_logs(dir: &Path, after_zxid: i64) -> Result<LogScan, StorageError> {
    let mut txns = Vec::new();
    let s = replay_logs(dir, after_zxid, true, |h, t| txns.push((*h, t.clone())))?;
    Ok(LogScan {
        txns,
        last_zxid: s.last_zxid,
        torn: s.torn,
    })
}

/// Passes every intact txn with zxid > `after_zxid` to `visit`, in order, reading only the
/// segments that can hold such txns. With `repair`, a torn tail is truncated; without, it is
/// only reported. Also checks that the first txn after `after_zxid` follows it, so a log that
/// lost txns (over-eager purge, a missing file) is refused rather than replayed with a hole.
pub fn replay_logs<F: FnMut(&TxnHeader, &Txn)>(
    dir: &Path,
    after_zxid: i64,
    repair: bool,
    mut visit: F,
) -> Result<LogSummary, StorageError> {
    let logs = list_logs(dir).map_err(|e| StorageError::io(dir, e))?;
    // Segment i holds only zxids below segment i+1's first, so it is skipped when that first
    // zxid is at most after_zxid + 1.
    let start = logs
        .windows(2)
        .position(|w| w[1].0 > after_zxid.saturating_add(1))
        .unwrap_or(logs.len().saturating_sub(1));
    let mut summary = LogSummary::default();
    let mut prev = match logs.get(start) {
        Some((first, _)) if *first > after_zxid => Some(after_zxid),
        _ => None,
    };
    for (i, (first, path)) in logs.iter().enumerate().skip(start) {
        let is_last = i + 1 == logs.len();
        let info = read_segment(path, *first, is_last, repair, &mut prev, |_, h, t| {
            if h.zxid > after_zxid {
                summary.txns_after += 1;
                visit(h, t);
            }
        })?;
        summary.segments_read += 1;
        if info.last_zxid.is_some() {
            summary.last_zxid = info.last_zxid;
        }
        if info.torn.is_some() {
            summary.torn = info.torn;
        }
    }
    Ok(summary)
}

/// Checks every segment in `<dir>/version-2` (every crc, the structure, the zxid chain
/// across segments) without changing anything. One result per segment; a torn tail of the
/// last segment is reported in its `SegmentInfo`, not as an error.
pub fn verify_logs(dir: &Path) -> io::Result<Vec<Result<SegmentInfo, StorageError>>> {
    let logs = list_logs(dir)?;
    let mut prev = None;
    let mut out = Vec::new();
    for (i, (first, path)) in logs.iter().enumerate() {
        let r = read_segment(
            path,
            *first,
            i + 1 == logs.len(),
            false,
            &mut prev,
            |_, _, _| {},
        );
        if r.is_err() {
            // Chain checks restart after a damaged segment, so each problem is reported once.
            prev = None;
        }
        out.push(r);
    }
    Ok(out)
}

/// Reads one segment file without changing it, passing each intact record (its offset, header
/// and txn) to `visit`. `is_last` says whether a torn tail is acceptable.
pub fn read_log_file<F: FnMut(u64, &TxnHeader, &Txn)>(
    path: &Path,
    is_last: bool,
    visit: F,
) -> Result<SegmentInfo, StorageError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let first = super::parse_zxid_name(name, "log.");
    let first = match first {
        Some(z) => z,
        None => {
            // A segment under another name: take the first zxid from its header.
            let data = ReadMap::open(path).map_err(|e| StorageError::io(path, e))?;
            if data.len() < SEGMENT_HEADER_BYTES {
                return Err(StorageError::corrupt(
                    path,
                    0,
                    "shorter than a segment header",
                ));
            }
            i64::from_be_bytes(data[8..16].try_into().expect("8 bytes"))
        }
    };
    read_segment(path, first, is_last, false, &mut None, visit)
}

/// A read-only view of a whole file.
pub(crate) enum ReadMap {
    Empty,
    Map(Mmap),
}

impl ReadMap {
    pub(crate) fn open(path: &Path) -> io::Result<ReadMap> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(ReadMap::Empty);
        }
        // SAFETY: the map is only read, and its bytes are treated as untrusted input. It is
        // private to this process; the one hazard is another process truncating the file
        // while it is mapped (SIGBUS on access), which the data directory lock rules out for
        // servers, and which offline tools accept as the price of not copying the file.
        let map = unsafe { Mmap::map(&file)? };
        Ok(ReadMap::Map(map))
    }
}

impl std::ops::Deref for ReadMap {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ReadMap::Empty => &[],
            ReadMap::Map(m) => m,
        }
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Why reading stopped before the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Break {
    /// A zero length.
    ZeroLen,
    /// The record header or body runs past the end of the file.
    PastEnd,
    /// A length over TXN_RECORD_BYTES_MAX.
    TooLong(u32),
    /// The crc does not match; the record spans `len` bytes after its header.
    Crc(usize),
}

/// Reads one segment, checking its header, every record and the zxid chain (continuing from
/// `prev`). See the module doc for how a break is classified.
fn read_segment<F: FnMut(u64, &TxnHeader, &Txn)>(
    path: &Path,
    first_zxid: i64,
    is_last: bool,
    repair: bool,
    prev: &mut Option<i64>,
    mut visit: F,
) -> Result<SegmentInfo, StorageError> {
    let data = ReadMap::open(path).map_err(|e| StorageError::io(path, e))?;
    let corrupt = |off: usize, why: String| StorageError::corrupt(path, off as u64, why);
    if data.len() < SEGMENT_HEADER_BYTES {
        return Err(corrupt(
            0,
            format!("{} bytes, shorter than a segment header", data.len()),
        ));
    }
    if is_last && data[..SEGMENT_HEADER_BYTES] == [0; SEGMENT_HEADER_BYTES] {
        return unsynced_segment(path, &data, first_zxid, repair);
    }
    if data[..4] != LOG_MAGIC {
        return Err(corrupt(0, "not a txn log segment (bad magic)".into()));
    }
    let version = be_u32(&data, 4);
    if version != LOG_FORMAT_VERSION {
        return Err(corrupt(4, format!("unsupported format version {version}")));
    }
    let header_zxid = be_i64(&data, 8);
    if header_zxid != first_zxid {
        return Err(corrupt(
            8,
            format!("header says first zxid 0x{header_zxid:x}, name says 0x{first_zxid:x}"),
        ));
    }
    if data[16..SEGMENT_HEADER_BYTES] != [0; 8] {
        return Err(corrupt(16, "reserved header bytes are not zero".into()));
    }
    let mut info = SegmentInfo {
        path: path.to_owned(),
        first_zxid,
        last_zxid: None,
        txns: 0,
        end_offset: SEGMENT_HEADER_BYTES as u64,
        file_bytes: data.len() as u64,
        torn: None,
    };
    let mut o = SEGMENT_HEADER_BYTES;
    let brk = loop {
        if o >= data.len() {
            break None;
        }
        if o + RECORD_HEADER_BYTES > data.len() {
            break Some(Break::PastEnd);
        }
        let len = be_u32(&data, o);
        if len == 0 {
            break Some(Break::ZeroLen);
        }
        if is_partial_page_pad(&data[o..o + RECORD_HEADER_BYTES]) {
            // A page pad cut short by a torn write: only part of its header reached the disk.
            break Some(Break::ZeroLen);
        }
        if len == PAGE_PAD_MARKER && be_u32(&data, o + 4) == crc32fast::hash(&data[o..o + 4]) {
            let next = align_up(o + RECORD_HEADER_BYTES, PAGE_BYTES as usize).min(data.len());
            if let Some(i) = data[o + RECORD_HEADER_BYTES..next]
                .iter()
                .position(|&b| b != 0)
            {
                return Err(corrupt(
                    o + RECORD_HEADER_BYTES + i,
                    "non-zero bytes after a page pad".into(),
                ));
            }
            o = next;
            info.end_offset = o as u64;
            continue;
        }
        if len as usize > TXN_RECORD_BYTES_MAX {
            break Some(Break::TooLong(len));
        }
        let len = len as usize;
        let end = o + RECORD_HEADER_BYTES + len;
        if end > data.len() {
            break Some(Break::PastEnd);
        }
        let body = &data[o + RECORD_HEADER_BYTES..end];
        let mut crc = crc32fast::Hasher::new();
        crc.update(&data[o..o + 4]);
        crc.update(body);
        if crc.finalize() != be_u32(&data, o + 4) {
            break Some(Break::Crc(len));
        }
        // From here on the record is exactly what a writer wrote, so anything wrong with it
        // is damage (or a writer bug), never a torn write.
        if len < BODY_BYTES_MIN {
            return Err(corrupt(o, format!("record of {len} bytes is too short")));
        }
        let (hdr, txn) = txn::decode(&body[8..])
            .map_err(|e| corrupt(o, format!("record does not decode: {e}")))?;
        if info.txns == 0 && hdr.zxid != first_zxid {
            return Err(corrupt(
                o,
                format!(
                    "first record has zxid 0x{:x}, segment name says 0x{first_zxid:x}",
                    hdr.zxid
                ),
            ));
        }
        if let Some(p) = *prev {
            if !follows(p, hdr.zxid) {
                return Err(corrupt(
                    o,
                    format!(
                        "zxid 0x{:x} does not follow 0x{p:x} (gap or out of order)",
                        hdr.zxid
                    ),
                ));
            }
        }
        let pad_end = align_up(end, RECORD_ALIGN).min(data.len());
        if let Some(i) = data[end..pad_end].iter().position(|&b| b != 0) {
            // Padding is never written, so anything but zeros there is damage.
            return Err(corrupt(end + i, "non-zero padding after a record".into()));
        }
        visit(o as u64, &hdr, &txn);
        *prev = Some(hdr.zxid);
        info.last_zxid = Some(hdr.zxid);
        info.txns += 1;
        o = align_up(end, RECORD_ALIGN);
        info.end_offset = o.min(data.len()) as u64;
    };
    let Some(brk) = brk else {
        return Ok(info);
    };
    let tail_end = match last_nonzero(&data[o..]) {
        None => return Ok(info), // only zeros: the records simply end here
        Some(i) => o + i + 1,
    };
    // The smallest zxid the broken record can have had.
    let threshold = prev.map_or(first_zxid, |p| p.wrapping_add(1));
    if let Some((at, zxid, durable)) = durable_evidence(&data[..tail_end], o, threshold) {
        return Err(corrupt(
            o,
            format!(
                "unreadable record ({brk:?}), but the intact record at offset {at} (zxid \
                 0x{zxid:x}) was appended when zxid 0x{durable:x} was already durable: \
                 acknowledged txns are damaged"
            ),
        ));
    }
    let torn = match brk {
        Break::ZeroLen | Break::PastEnd => true,
        Break::TooLong(_) => false,
        Break::Crc(len) => {
            let rec_end = (o + RECORD_HEADER_BYTES + len).min(data.len());
            tail_end <= rec_end || has_zero_sector(&data, o, rec_end)
        }
    };
    if !is_last || !torn {
        let why = match brk {
            Break::TooLong(n) => {
                format!("record length {n} is over the bound {TXN_RECORD_BYTES_MAX}")
            }
            Break::Crc(_) => "crc mismatch, with more data after the record".into(),
            Break::ZeroLen | Break::PastEnd => "records end early, with data after them".into(),
        };
        let where_ = if is_last {
            ""
        } else {
            " (not the last segment)"
        };
        return Err(corrupt(o, format!("{why}{where_}")));
    }
    let tail = TornTail {
        file: path.to_owned(),
        offset: o as u64,
        bytes: (tail_end - o) as u64,
    };
    drop(data);
    if repair {
        zero_range(path, o as u64, tail_end as u64).map_err(|e| StorageError::io(path, e))?;
        log::warn!(
            "txn log {}: torn tail at offset {} ({} bytes of an unfinished write) truncated",
            path.display(),
            tail.offset,
            tail.bytes
        );
    }
    info.torn = Some(tail);
    Ok(info)
}

/// The index of the last non-zero byte. Recovery scans the preallocated zeros after a
/// segment's records with it, so it tests whole blocks at a time (which compiles to wide
/// vector ORs) before looking at single bytes.
fn last_nonzero(data: &[u8]) -> Option<usize> {
    const BLOCK: usize = 4096;
    let mut end = data.len();
    let head = end % BLOCK;
    if let Some(i) = data[end - head..].iter().rposition(|&b| b != 0) {
        return Some(end - head + i);
    }
    end -= head;
    while end > 0 {
        let block = &data[end - BLOCK..end];
        if block.iter().fold(0u8, |a, &b| a | b) != 0 {
            return block.iter().rposition(|&b| b != 0).map(|i| end - BLOCK + i);
        }
        end -= BLOCK;
    }
    None
}

/// The last segment's header never reached the disk: no batch covering the segment finished
/// (the first one syncs the header), so nothing in it was acknowledged. It is reported as a
/// torn tail from offset 0 and, when repairing, removed.
fn unsynced_segment(
    path: &Path,
    data: &[u8],
    first_zxid: i64,
    repair: bool,
) -> Result<SegmentInfo, StorageError> {
    let tail_end = last_nonzero(data).map_or(0, |i| i + 1);
    let info = SegmentInfo {
        path: path.to_owned(),
        first_zxid,
        last_zxid: None,
        txns: 0,
        end_offset: 0,
        file_bytes: data.len() as u64,
        torn: Some(TornTail {
            file: path.to_owned(),
            offset: 0,
            bytes: tail_end as u64,
        }),
    };
    if repair {
        fs::remove_file(path).map_err(|e| StorageError::io(path, e))?;
        if let Some(dir) = path.parent() {
            sync_dir(dir).map_err(|e| StorageError::io(dir, e))?;
        }
        log::warn!(
            "txn log {}: segment header never reached the disk; removed the unfinished segment",
            path.display()
        );
    }
    Ok(info)
}

/// Whether an 8-byte record header is a proper, non-empty prefix of a page pad header with
/// zeros after it: what a write torn inside the pad header leaves (its marker bytes are not
/// zero, unlike a real length's leading bytes, so it needs its own rule).
fn is_partial_page_pad(header: &[u8]) -> bool {
    let marker = PAGE_PAD_MARKER.to_be_bytes();
    let mut full = [0u8; RECORD_HEADER_BYTES];
    full[..4].copy_from_slice(&marker);
    full[4..].copy_from_slice(&crc32fast::hash(&marker).to_be_bytes());
    if header == full {
        return false;
    }
    (1..RECORD_HEADER_BYTES)
        .any(|k| header[..k] == full[..k] && header[k..].iter().all(|&b| b == 0))
}

/// Looks after a break at `from` for an intact record whose durable_zxid is at least
/// `threshold`: proof that the txn at the break had been made durable (and acknowledged).
/// Candidates must sit at 8-byte offsets, have a plausible length and zxids, and pass the crc.
fn durable_evidence(data: &[u8], from: usize, threshold: i64) -> Option<(usize, i64, i64)> {
    let mut q = from + RECORD_ALIGN;
    while q + RECORD_HEADER_BYTES + BODY_BYTES_MIN <= data.len() {
        let len = be_u32(data, q) as usize;
        let body = q + RECORD_HEADER_BYTES;
        if (BODY_BYTES_MIN..=TXN_RECORD_BYTES_MAX).contains(&len) && body + len <= data.len() {
            let durable = be_i64(data, body);
            // The zxid sits after durable_zxid, client_id and cxid.
            let zxid = be_i64(data, body + 8 + 12);
            if durable >= threshold && zxid > durable {
                let mut crc = crc32fast::Hasher::new();
                crc.update(&data[q..q + 4]);
                crc.update(&data[body..body + len]);
                if crc.finalize() == be_u32(data, q + 4) {
                    return Some((q, zxid, durable));
                }
            }
        }
        q += RECORD_ALIGN;
    }
    None
}

/// Whether a 512-byte aligned sector within [from, to) is all zeros.
fn has_zero_sector(data: &[u8], from: usize, to: usize) -> bool {
    let mut s = align_up(from, SECTOR_BYTES);
    while s + SECTOR_BYTES <= to {
        if data[s..s + SECTOR_BYTES].iter().all(|&b| b == 0) {
            return true;
        }
        s += SECTOR_BYTES;
    }
    false
}

/// Overwrites [from, to) with zeros and syncs, keeping the file's length (and blocks).
fn zero_range(path: &Path, from: u64, to: u64) -> io::Result<()> {
    const CHUNK_BYTES: u64 = 1 << 20;
    let file = OpenOptions::new().write(true).open(path)?;
    let zeros = vec![0u8; CHUNK_BYTES.min(to - from) as usize];
    let mut at = from;
    while at < to {
        let n = (to - at).min(CHUNK_BYTES) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    file.sync_all()
}

/// The newest txns of the log, as `read_tail` returns them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogTail {
    /// The zxid of the record just before the first of `txns` (with no `txns`, the last
    /// record of the log); `None` when no earlier record is in the log directory. That does
    /// not mean the log starts at zxid 0: purge may have removed older segments.
    pub base: Option<i64>,
    /// Oldest first: each txn's zxid and its bytes exactly as `proto::txn::encode` wrote them
    /// (header and txn, without the record framing or durable_zxid).
    pub txns: Vec<(i64, Vec<u8>)>,
}

/// The last `max_txns` txns of the log in `<dir>/version-2`, across segments, oldest first
/// (what a Zab leader keeps as its committed log, to send DIFF instead of a snapshot). Reads
/// only as many segments, from the newest back, as it takes to find them and `base`. It
/// changes nothing: a torn tail simply ends the list (recovery has repaired it by the time a
/// server calls this); any other damage is `Corrupt`, as in recovery.
pub fn read_tail(dir: &Path, max_txns: usize) -> Result<LogTail, StorageError> {
    let logs = list_logs(dir).map_err(|e| StorageError::io(dir, e))?;
    // Newest segment first, so `parts` is in reverse order.
    let mut parts: Vec<Vec<(i64, Vec<u8>)>> = Vec::new();
    let mut found = 0;
    let mut base = None;
    for (i, (first, path)) in logs.iter().enumerate().rev() {
        // The last `keep` records: the ones to return and the one before them (`base`). A
        // ring keeps memory bounded by what is returned, not by the segment's size.
        let keep = (max_txns - found).saturating_add(1);
        let mut ring = std::collections::VecDeque::with_capacity(keep.min(1 << 16));
        let is_last = i + 1 == logs.len();
        read_segment(path, *first, is_last, false, &mut None, |off, h, _| {
            if ring.len() == keep {
                ring.pop_front();
            }
            ring.push_back((h.zxid, off as usize));
        })?;
        if ring.len() == keep {
            base = ring.pop_front().map(|r| r.0);
        }
        if !ring.is_empty() {
            // The records were just read whole and checked, so their framing is sound; the
            // file cannot change meanwhile, as the data directory lock is held.
            let data = ReadMap::open(path).map_err(|e| StorageError::io(path, e))?;
            let mut part = Vec::with_capacity(ring.len());
            for (zxid, off) in ring {
                let body = off + RECORD_HEADER_BYTES;
                let len = be_u32(&data, off) as usize;
                let bytes = data.get(body + 8..body + len).ok_or_else(|| {
                    StorageError::corrupt(path, off as u64, "record changed while being read")
                })?;
                part.push((zxid, bytes.to_vec()));
            }
            found += part.len();
            parts.push(part);
        }
        if base.is_some() {
            break;
        }
    }
    let txns: Vec<(i64, Vec<u8>)> = parts.into_iter().rev().flatten().collect();
    // Each segment's own chain was checked; check the joints between segments too, so a
    // missing segment is never passed off as a contiguous history.
    let mut prev = base;
    for (zxid, _) in &txns {
        if let Some(p) = prev {
            if !follows(p, *zxid) {
                return Err(StorageError::corrupt(
                    &version_dir(dir),
                    0,
                    format!(
                        "txn log: zxid 0x{zxid:x} does not follow 0x{p:x} (a segment is missing)"
                    ),
                ));
            }
        }
        prev = Some(*zxid);
    }
    Ok(LogTail { base, txns })
}

/// What truncating the log after a zxid takes away, found without changing anything (see
/// `plan_truncate`), so the caller can refuse before touching the disk.
#[derive(Debug)]
pub(crate) struct LogCut {
    /// Whole segments to delete, newest first, so that a crash part-way leaves a log that is
    /// a prefix of the old one (deleting an older segment first would leave a gap).
    remove: Vec<PathBuf>,
    /// The segment that keeps the last record, and the range after that record to zero:
    /// from the end of its padding to the last non-zero byte.
    zero: Option<(PathBuf, u64, u64)>,
    /// The highest zxid left in the log.
    pub(crate) last_kept: Option<i64>,
    /// Whether any logged txn goes (a segment after the zxid, or a record after it).
    pub(crate) removes_txns: bool,
}

/// Finds what removing every logged txn after `zxid` takes: every segment that starts after
/// it, and in the segment holding the last record at or before it, every byte after that
/// record (records after it, a page_pad, a torn tail). Segments between the two that hold no
/// record (a first record torn and zeroed by recovery, a header that never reached the disk)
/// go as well: left in place they would sit before newer segments and read as damage. When
/// no record follows the kept one, its segment's tail is left alone (a page_pad there is
/// part of a well-formed log), so truncating at the last zxid changes nothing.
pub(crate) fn plan_truncate(dir: &Path, zxid: i64) -> Result<LogCut, StorageError> {
    let logs = list_logs(dir).map_err(|e| StorageError::io(dir, e))?;
    let mut cut = LogCut {
        remove: Vec::new(),
        zero: None,
        last_kept: None,
        removes_txns: false,
    };
    let mut i = logs.len();
    while i > 0 && logs[i - 1].0 > zxid {
        i -= 1;
        cut.remove.push(logs[i].1.clone());
        cut.removes_txns = true;
    }
    while i > 0 {
        i -= 1;
        let (first, path) = &logs[i];
        let is_last = i + 1 == logs.len();
        let mut kept = None;
        let mut after = false;
        read_segment(path, *first, is_last, false, &mut None, |off, h, _| {
            if h.zxid <= zxid {
                kept = Some((h.zxid, off as usize));
            } else {
                after = true;
            }
        })?;
        let Some((kept_zxid, off)) = kept else {
            cut.remove.push(path.clone());
            continue;
        };
        cut.last_kept = Some(kept_zxid);
        if after {
            cut.removes_txns = true;
            let data = ReadMap::open(path).map_err(|e| StorageError::io(path, e))?;
            let end = align_up(
                off + RECORD_HEADER_BYTES + be_u32(&data, off) as usize,
                RECORD_ALIGN,
            );
            let end = end.min(data.len());
            if let Some(j) = data[end..].iter().rposition(|&b| b != 0) {
                cut.zero = Some((path.clone(), end as u64, (end + j + 1) as u64));
            }
        }
        break;
    }
    Ok(cut)
}

impl LogCut {
    /// Deletes the segments (newest first), syncs the directory, then zeroes and syncs the
    /// tail of the segment that keeps the last record, so recovery finds the log's end there.
    pub(crate) fn apply(&self, dir: &Path) -> Result<(), StorageError> {
        for p in &self.remove {
            fs::remove_file(p).map_err(|e| StorageError::io(p, e))?;
            log::info!("txn log truncation removed {}", p.display());
        }
        if !self.remove.is_empty() {
            let v = version_dir(dir);
            sync_dir(&v).map_err(|e| StorageError::io(&v, e))?;
        }
        if let Some((path, from, to)) = &self.zero {
            zero_range(path, *from, *to).map_err(|e| StorageError::io(path, e))?;
            log::info!(
                "txn log truncation zeroed {} from offset {from}",
                path.display()
            );
        }
        Ok(())
    }
}

/// The segments of `<dir>/version-2`, for listing: (first zxid, path, size in bytes).
pub fn segment_sizes(dir: &Path) -> io::Result<Vec<(i64, PathBuf, u64)>> {
    let v = version_dir(dir);
    let mut out = Vec::new();
    for (z, p) in list_logs(dir)? {
        let len = fs::metadata(&p)
            .map_err(|e| with_path(e, "cannot stat", &v))?
            .len();
        out.push((z, p, len));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testdir::TestDir;
    use super::*;

    fn hdr(zxid: i64) -> TxnHeader {
        TxnHeader {
            client_id: 0x1234,
            cxid: zxid as i32,
            zxid,
            time_ms: 1_700_000_000_000 + zxid,
        }
    }

    fn txn(i: i64) -> Txn {
        Txn::SetData {
            path: format!("/node{}", i % 7),
            data: Some(vec![b'x'; (i % 50) as usize]),
            version: i as i32,
        }
    }

    #[test]
    fn last_nonzero_finds_the_last_set_byte_anywhere() {
        assert_eq!(last_nonzero(&[]), None);
        for len in [1, 100, 4095, 4096, 4097, 3 * 4096 + 17] {
            let mut v = vec![0u8; len];
            assert_eq!(last_nonzero(&v), None, "{len}");
            for at in [0, len / 2, len - 1] {
                v[at] = 7;
                assert_eq!(last_nonzero(&v), Some(at), "{len} {at}");
                v[at] = 0;
            }
            v[0] = 1;
            if len > 1 {
                v[len / 3] = 1;
                assert_eq!(last_nonzero(&v), Some(len / 3).max(Some(0)), "{len}");
            }
        }
    }

    #[test]
    fn each_batch_ends_on_a_page_boundary_and_reads_back_whole() {
        let d = TestDir::new("txnlog-pad");
        let mut log = TxnLog::open(d.path(), 1 << 20).unwrap();
        let mut batch_starts = Vec::new();
        for z in 1..=50 {
            if z % 5 == 1 {
                batch_starts.push(log.write_pos);
            }
            log.append(&hdr(z), &txn(z)).unwrap();
            if z % 5 == 0 {
                log.take_sync_batch().unwrap().run().unwrap();
            }
        }
        // The first batch starts after the header; every later one on a fresh page.
        for pos in &batch_starts[1..] {
            assert_eq!(*pos as u64 % PAGE_BYTES, 0, "batch starts at {pos}");
        }
        let s = scan_logs(d.path(), 0).unwrap();
        assert_eq!(s.txns.len(), 50);
        assert_eq!(s.last_zxid, Some(50));
        // A page pad whose crc is damaged is reported, not skipped.
        let (_, path) = list_logs(d.path()).unwrap().remove(0);
        let bytes = std::fs::read(&path).unwrap();
        let marker = PAGE_PAD_MARKER.to_be_bytes();
        let at = (0..bytes.len() - 8)
            .step_by(RECORD_ALIGN)
            .find(|&i| bytes[i..i + 4] == marker)
            .expect("a page pad was written");
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0xAB], (at + 5) as u64).unwrap();
        match scan_logs(d.path(), 0) {
            Err(StorageError::Corrupt { offset, .. }) => assert_eq!(offset, at as u64),
            other => panic!(
                "damaged page pad not reported: {:?}",
                other.map(|s| s.txns.len())
            ),
        }
    }

    #[test]
    fn torn_tail_at_every_offset_of_a_padded_log_recovers_the_prefix() {
        let d = TestDir::new("txnlog-pad-torn");
        let mut log = TxnLog::open(d.path(), 1 << 16).unwrap();
        for z in 1..=30 {
            log.append(&hdr(z), &txn(z)).unwrap();
            if z % 3 == 0 {
                log.take_sync_batch().unwrap().run().unwrap();
            }
        }
        let (_, path) = list_logs(d.path()).unwrap().remove(0);
        let pristine = std::fs::read(&path).unwrap();
        let mut ends = Vec::new();
        read_log_file(&path, true, |off, _, _| {
            let len = be_u32(&pristine, off as usize) as u64;
            ends.push(off + RECORD_HEADER_BYTES as u64 + len);
        })
        .unwrap();
        assert_eq!(ends.len(), 30);
        let from = ends[ends.len() - 7] as usize - 8;
        let to = *ends.last().unwrap() as usize + 8;
        for cut in from..to {
            // A torn write: everything from `cut` on never reached the disk.
            let mut torn = pristine.clone();
            torn[cut..].fill(0);
            std::fs::write(&path, &torn).unwrap();
            let s = scan_logs(d.path(), 0).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
            let want = ends.iter().filter(|&&e| e <= cut as u64).count();
            assert_eq!(s.txns.len(), want, "cut at {cut}");
        }
        std::fs::write(&path, &pristine).unwrap();
    }

    #[test]
    fn append_sync_scan_roundtrip_across_segments() {
        let d = TestDir::new("txnlog");
        let mut log = TxnLog::open(d.path(), 4096).unwrap();
        for z in 1..=200 {
            log.append(&hdr(z), &txn(z)).unwrap();
            if z % 30 == 0 {
                let b = log.take_sync_batch().unwrap();
                assert_eq!(b.run().unwrap(), z);
            }
        }
        let b = log.take_sync_batch().unwrap();
        assert_eq!(b.records(), 20);
        b.run().unwrap();
        assert!(log.take_sync_batch().is_none());
        assert_eq!(log.durable_zxid(), 200);
        let segs = list_logs(d.path()).unwrap();
        assert!(segs.len() > 3, "{}", segs.len());
        let s = scan_logs(d.path(), 0).unwrap();
        assert_eq!(s.txns.len(), 200);
        for (i, (h, t)) in s.txns.iter().enumerate() {
            let z = i as i64 + 1;
            assert_eq!((h, t), (&hdr(z), &txn(z)));
        }
        assert_eq!(s.last_zxid, Some(200));
        let s = scan_logs(d.path(), 150).unwrap();
        assert_eq!(s.txns.first().unwrap().0.zxid, 151);
        assert_eq!(s.txns.len(), 50);
        assert!(verify_logs(d.path()).unwrap().iter().all(|r| r.is_ok()));
    }

    #[test]
    fn new_handle_starts_a_new_segment_and_zxids_must_grow() {
        let d = TestDir::new("txnlog2");
        let mut log = TxnLog::open(d.path(), 1 << 16).unwrap();
        log.append(&hdr(1), &txn(1)).unwrap();
        let e = log.append(&hdr(1), &txn(1)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        drop(log);
        let mut log = TxnLog::open(d.path(), 1 << 16).unwrap();
        log.append(&hdr(2), &txn(2)).unwrap();
        log.take_sync_batch().unwrap().run().unwrap();
        let names: Vec<i64> = list_logs(d.path()).unwrap().iter().map(|l| l.0).collect();
        assert_eq!(names, vec![1, 2]);
        assert_eq!(scan_logs(d.path(), 0).unwrap().txns.len(), 2);
    }

    #[test]
    fn oversized_record_gets_its_own_segment() {
        let d = TestDir::new("txnlog3");
        let mut log = TxnLog::open(d.path(), 4096).unwrap();
        let big = Txn::SetData {
            path: "/big".into(),
            data: Some(vec![7; 10_000]),
            version: 1,
        };
        log.append(&hdr(1), &txn(1)).unwrap();
        log.append(&hdr(2), &big).unwrap();
        log.append(&hdr(3), &txn(3)).unwrap();
        log.take_sync_batch().unwrap().run().unwrap();
        let s = scan_logs(d.path(), 0).unwrap();
        assert_eq!(s.txns[1].1, big);
        // The big record starts a segment sized to hold it; the next one fits behind it.
        let sizes = segment_sizes(d.path()).unwrap();
        assert_eq!(
            sizes.iter().map(|s| (s.0, s.2)).collect::<Vec<_>>(),
            [(1, 4096), (2, 12288)]
        );
    }

    #[test]
    fn batch_runs_on_another_thread_while_appends_go_on() {
        let d = TestDir::new("txnlog4");
        let mut log = TxnLog::open(d.path(), 1 << 16).unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel::<SyncBatch>(1);
        let syncer = std::thread::spawn(move || {
            let mut last = 0;
            for b in rx {
                last = b.run().unwrap();
            }
            last
        });
        for z in 1..=2000 {
            log.append(&hdr(z), &txn(z)).unwrap();
            if let Some(b) = log.take_sync_batch() {
                tx.send(b).unwrap();
            }
        }
        drop(tx);
        assert_eq!(syncer.join().unwrap(), 2000);
        assert_eq!(scan_logs(d.path(), 0).unwrap().txns.len(), 2000);
    }

    #[test]
    fn batches_and_snapshot_writers_can_move_to_other_threads() {
        fn send<T: Send>() {}
        send::<SyncBatch>();
        send::<crate::storage::SnapshotWriter>();
    }

    #[test]
    fn follows_allows_next_counter_or_new_epoch() {
        assert!(follows(5, 6));
        assert!(!follows(5, 7));
        assert!(!follows(5, 5));
        assert!(follows(0x1_0000_0005, 0x2_0000_0001));
        assert!(!follows(0x2_0000_0005, 0x1_0000_0006));
    }

    #[test]
    fn read_tail_returns_the_last_txns_as_encoded_with_their_base() {
        let d = TestDir::new("txnlog-tail");
        let empty = read_tail(d.path(), 10).unwrap();
        assert_eq!(empty, LogTail::default());
        let mut log = TxnLog::open(d.path(), 4096).unwrap();
        for z in 1..=100 {
            log.append(&hdr(z), &txn(z)).unwrap();
            if z % 4 == 0 {
                log.take_sync_batch().unwrap().run().unwrap();
            }
        }
        drop(log);
        assert!(list_logs(d.path()).unwrap().len() > 3);
        let encoded = |z: i64| {
            let mut w = Writer::new();
            txn::encode(&hdr(z), &txn(z), &mut w);
            w.buf
        };
        // Every length, so the cut falls at, just after and just before segment starts.
        for n in 0..=101usize {
            let t = read_tail(d.path(), n).unwrap();
            let first = 100 - n.min(100) as i64 + 1;
            assert_eq!(t.base, (first > 1).then_some(first - 1), "n {n}");
            let want: Vec<(i64, Vec<u8>)> = (first..=100).map(|z| (z, encoded(z))).collect();
            assert_eq!(t.txns, want, "n {n}");
        }
        // A torn tail ends the list and is left as it is.
        let (_, path) = list_logs(d.path()).unwrap().pop().unwrap();
        let mut last_off = 0;
        read_log_file(&path, true, |off, _, _| last_off = off).unwrap();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0, 0, 0, 0], last_off).unwrap();
        let torn = std::fs::read(&path).unwrap();
        let t = read_tail(d.path(), 3).unwrap();
        assert_eq!(t.base, Some(96));
        assert_eq!(t.txns.iter().map(|t| t.0).collect::<Vec<_>>(), [97, 98, 99]);
        assert_eq!(std::fs::read(&path).unwrap(), torn);
    }

    #[test]
    fn read_tail_refuses_a_missing_segment() {
        let d = TestDir::new("txnlog-tail-gap");
        let mut log = TxnLog::open(d.path(), 4096).unwrap();
        for z in 1..=30 {
            log.append(&hdr(z), &txn(z)).unwrap();
            if z % 10 == 0 {
                log.roll();
            }
        }
        log.take_sync_batch().unwrap().run().unwrap();
        drop(log);
        fs::remove_file(&list_logs(d.path()).unwrap()[1].1).unwrap();
        // The txns 21..=30 alone are contiguous; with the record before them (base 10) the
        // hole shows.
        assert_eq!(read_tail(d.path(), 9).unwrap().base, Some(21));
        for n in [10, 11] {
            assert!(matches!(
                read_tail(d.path(), n),
                Err(StorageError::Corrupt { .. })
            ));
        }
    }
}
