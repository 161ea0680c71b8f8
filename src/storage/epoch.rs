//! The epoch files of a quorum member: `acceptedEpoch`, the newest epoch this server agreed
//! to follow (written when it sends ACKEPOCH, or as a leader when it proposes the epoch), and
//! `currentEpoch`, the epoch whose history this server has fully synchronized with (written on
//! NEWLEADER). Zab needs both to survive a crash, so each write is durable before it returns.
//! This module only reads and writes the numbers; what they mean and when they change is
//! `zab`'s business. Corresponds to Apache ZooKeeper's QuorumPeer.readLongFromFile and
//! writeLongToFile, with the same names, place and format, so a data directory can move
//! between Apache ZooKeeper and `zk` without losing them.
//!
//! # Format
//!
//! Files are `<dataDir>/version-2/acceptedEpoch` and `<dataDir>/version-2/currentEpoch`.
//!
//! ```text
//! epoch_file := digit+ ws*        the epoch in decimal ASCII; Apache writes no newline
//! ws         := " " | "\t" | "\r" | "\n"
//! ```
//!
//! There is no version number: the format is Apache's, and it has none. Writers write the
//! digits alone, to `<name>.tmp`, fsync, rename over `<name>` and fsync the directory (Apache
//! uses the same `.tmp` name in its AtomicFileOutputStream). A missing file means the epoch
//! was never recorded; anything else that does not parse is damage and is reported with the
//! file's path, never read as zero.

use super::{ensure_version_dir, version_dir, with_path, write_durably};
use std::fs;
use std::io;
use std::path::Path;

/// The file that holds the accepted epoch, in `version-2`.
pub const ACCEPTED_EPOCH_FILE: &str = "acceptedEpoch";
/// The file that holds the current epoch, in `version-2`.
pub const CURRENT_EPOCH_FILE: &str = "currentEpoch";
/// Room for any u64 in decimal and some trailing white space; a longer file is not an epoch
/// file, and reading no more than this keeps a stray large file from being loaded whole.
const EPOCH_FILE_BYTES_MAX: u64 = 64;

/// Reads `(acceptedEpoch, currentEpoch)` from `<data_dir>/version-2`; a missing file is
/// `None`, a file that does not hold a decimal number is an error naming it.
pub fn read_epochs(data_dir: &Path) -> io::Result<(Option<u64>, Option<u64>)> {
    Ok((
        read_epoch_file(data_dir, ACCEPTED_EPOCH_FILE)?,
        read_epoch_file(data_dir, CURRENT_EPOCH_FILE)?,
    ))
}

/// Records the accepted epoch durably (see the module doc).
pub fn write_accepted_epoch(data_dir: &Path, epoch: u64) -> io::Result<()> {
    write_epoch_file(data_dir, ACCEPTED_EPOCH_FILE, epoch)
}

/// Records the current epoch durably (see the module doc).
pub fn write_current_epoch(data_dir: &Path, epoch: u64) -> io::Result<()> {
    write_epoch_file(data_dir, CURRENT_EPOCH_FILE, epoch)
}

fn read_epoch_file(data_dir: &Path, name: &str) -> io::Result<Option<u64>> {
    use std::io::Read;
    let path = version_dir(data_dir).join(name);
    let file = match fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(with_path(e, "cannot read", &path)),
    };
    let mut bytes = Vec::new();
    file.take(EPOCH_FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| with_path(e, "cannot read", &path))?;
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is damaged: {why}", path.display()),
        )
    };
    if bytes.len() as u64 > EPOCH_FILE_BYTES_MAX {
        return Err(bad("too long for an epoch"));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("not text"))?;
    // Apache reads the first line (readLine), so a trailing newline from a hand edit is fine.
    // Only digits are accepted: u64's parser alone would also take a leading '+'.
    let digits = text.trim_end_matches([' ', '\t', '\r', '\n']);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(&format!("{digits:?} is not a decimal epoch")));
    }
    digits
        .parse::<u64>()
        .map(Some)
        .map_err(|e| bad(&format!("{digits:?}: {e}")))
}

fn write_epoch_file(data_dir: &Path, name: &str, epoch: u64) -> io::Result<()> {
    let v = ensure_version_dir(data_dir)?;
    write_durably(&v.join(name), epoch.to_string().as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::super::testdir::TestDir;
    use super::*;

    #[test]
    fn epochs_round_trip_in_apaches_format() {
        let d = TestDir::new("epoch");
        write_accepted_epoch(d.path(), 7).unwrap();
        assert_eq!(read_epochs(d.path()).unwrap(), (Some(7), None));
        write_current_epoch(d.path(), 6).unwrap();
        write_accepted_epoch(d.path(), u64::MAX).unwrap();
        assert_eq!(read_epochs(d.path()).unwrap(), (Some(u64::MAX), Some(6)));
        // Byte for byte what Apache writes: the digits, no newline, and no temp file left.
        let v = version_dir(d.path());
        assert_eq!(fs::read(v.join(CURRENT_EPOCH_FILE)).unwrap(), b"6");
        let mut names: Vec<_> = fs::read_dir(&v)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [ACCEPTED_EPOCH_FILE, CURRENT_EPOCH_FILE]);
        // A newline a person added by hand is tolerated, as Apache's readLine does.
        fs::write(v.join(CURRENT_EPOCH_FILE), b"12\n").unwrap();
        assert_eq!(read_epochs(d.path()).unwrap(), (Some(u64::MAX), Some(12)));
    }

    #[test]
    fn missing_epoch_files_are_none() {
        let d = TestDir::new("epoch-missing");
        // Neither the files nor even version-2 exist yet.
        assert_eq!(read_epochs(d.path()).unwrap(), (None, None));
        write_current_epoch(d.path(), 3).unwrap();
        assert_eq!(read_epochs(d.path()).unwrap(), (None, Some(3)));
    }

    #[test]
    fn garbage_epoch_file_is_an_error_naming_it() {
        let d = TestDir::new("epoch-garbage");
        let v = ensure_version_dir(d.path()).unwrap();
        let long = "9".repeat(100);
        let garbage: [&[u8]; 8] = [
            b"",
            b"\n",
            b"abc",
            b"-1",
            b"12 3",
            b"18446744073709551616",
            b"\xff\xfe",
            long.as_bytes(),
        ];
        for g in garbage {
            fs::write(v.join(ACCEPTED_EPOCH_FILE), g).unwrap();
            let e = read_epochs(d.path()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{g:?}");
            assert!(e.to_string().contains(ACCEPTED_EPOCH_FILE), "{e}");
        }
        fs::write(v.join(ACCEPTED_EPOCH_FILE), b"5").unwrap();
        fs::write(v.join(CURRENT_EPOCH_FILE), b"x5").unwrap();
        let e = read_epochs(d.path()).unwrap_err();
        assert!(e.to_string().contains(CURRENT_EPOCH_FILE), "{e}");
    }
}
