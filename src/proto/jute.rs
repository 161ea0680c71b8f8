//! Jute binary encoding: the big-endian integers, length-prefixed buffers and strings, and
//! counted vectors that every ZooKeeper record is built from (Apache's BinaryInputArchive and
//! BinaryOutputArchive). The reader never panics and never allocates more than the bytes it
//! was given can justify: a declared length is checked against what is left before any
//! allocation, so hostile input costs at most its own size.

use std::fmt;

/// Why a record could not be decoded. Decoding errors close the offending connection; they
/// never reach the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The record needs more bytes than the frame holds.
    Truncated { needed: usize, left: usize },
    /// A length field is negative (other than -1 for null) or larger than the frame.
    BadLength(i64),
    /// A string is not valid UTF-8.
    BadUtf8,
    /// A value outside the set the protocol allows (an opcode, a flag, a multi op type).
    BadValue(&'static str, i64),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { needed, left } => {
                write!(f, "record truncated: needed {needed} bytes, {left} left")
            }
            DecodeError::BadLength(n) => write!(f, "bad length field {n}"),
            DecodeError::BadUtf8 => write!(f, "string is not valid UTF-8"),
            DecodeError::BadValue(what, v) => write!(f, "bad {what}: {v}"),
        }
    }
}

impl std::error::Error for DecodeError {}

pub type DResult<T> = Result<T, DecodeError>;

/// A cursor over one frame's payload.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn take(&mut self, n: usize) -> DResult<&'a [u8]> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                needed: n,
                left: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u8(&mut self) -> DResult<u8> {
        Ok(self.take(1)?[0])
    }

    /// Java's readBoolean: any non-zero byte is true.
    pub fn bool(&mut self) -> DResult<bool> {
        Ok(self.u8()? != 0)
    }

    pub fn i32(&mut self) -> DResult<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i64(&mut self) -> DResult<i64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// A length field for a buffer or string: -1 means null; any other negative value, or a
    /// length longer than what is left, is an error before anything is allocated.
    fn len(&mut self) -> DResult<Option<usize>> {
        let n = self.i32()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 || n as usize > self.remaining() {
            return Err(DecodeError::BadLength(n as i64));
        }
        Ok(Some(n as usize))
    }

    /// A jute `buffer`; `None` is the null buffer (length -1).
    pub fn buffer(&mut self) -> DResult<Option<Vec<u8>>> {
        match self.len()? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?.to_vec())),
        }
    }

    /// A jute `buffer`, borrowed from the input.
    pub fn buffer_ref(&mut self) -> DResult<Option<&'a [u8]>> {
        match self.len()? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?)),
        }
    }

    /// A jute `ustring`, borrowed from the input.
    pub fn ustr(&mut self) -> DResult<Option<&'a str>> {
        match self.len()? {
            None => Ok(None),
            Some(n) => std::str::from_utf8(self.take(n)?)
                .map(Some)
                .map_err(|_| DecodeError::BadUtf8),
        }
    }

    /// A jute `ustring`; `None` is the null string (length -1).
    pub fn ustring(&mut self) -> DResult<Option<String>> {
        match self.len()? {
            None => Ok(None),
            Some(n) => {
                let b = self.take(n)?;
                match std::str::from_utf8(b) {
                    Ok(s) => Ok(Some(s.to_owned())),
                    Err(_) => Err(DecodeError::BadUtf8),
                }
            }
        }
    }

    /// A ustring where null reads as the empty string (paths, schemes).
    pub fn string(&mut self) -> DResult<String> {
        Ok(self.ustring()?.unwrap_or_default())
    }

    /// A vector count: -1 is the null vector. Every element takes at least `min_elem` bytes,
    /// which bounds the count by what is left before anything is allocated.
    pub fn vec_len(&mut self, min_elem: usize) -> DResult<Option<usize>> {
        let n = self.i32()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 || (n as usize).saturating_mul(min_elem.max(1)) > self.remaining() {
            return Err(DecodeError::BadLength(n as i64));
        }
        Ok(Some(n as usize))
    }

    pub fn string_vec(&mut self) -> DResult<Option<Vec<String>>> {
        match self.vec_len(4)? {
            None => Ok(None),
            Some(n) => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.string()?);
                }
                Ok(Some(v))
            }
        }
    }

    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }
}

/// Appends jute-encoded values to a byte vector.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    pub fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }

    /// Starts a frame: reserves the 4-byte length prefix that `finish_frame` fills in.
    pub fn frame() -> Self {
        let mut w = Writer::with_capacity(64);
        w.buf.extend_from_slice(&[0, 0, 0, 0]);
        w
    }

    /// Fills in the length prefix reserved by `frame` and returns the bytes.
    pub fn finish_frame(mut self) -> Vec<u8> {
        let n = (self.buf.len() - 4) as i32;
        self.buf[..4].copy_from_slice(&n.to_be_bytes());
        self.buf
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.buf.push(v as u8);
        self
    }

    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn buffer(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            None => self.i32(-1),
            Some(b) => {
                self.i32(b.len() as i32);
                self.buf.extend_from_slice(b);
                self
            }
        }
    }

    pub fn ustring(&mut self, v: Option<&str>) -> &mut Self {
        self.buffer(v.map(|s| s.as_bytes()))
    }

    pub fn string(&mut self, v: &str) -> &mut Self {
        self.buffer(Some(v.as_bytes()))
    }

    pub fn string_vec<S: AsRef<str>>(&mut self, v: &[S]) -> &mut Self {
        self.i32(v.len() as i32);
        for s in v {
            self.string(s.as_ref());
        }
        self
    }

    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_primitives() {
        let mut w = Writer::new();
        w.i32(-5)
            .i64(1 << 40)
            .bool(true)
            .ustring(None)
            .string("héllo")
            .buffer(Some(b"\x00\x01"));
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.i32().unwrap(), -5);
        assert_eq!(r.i64().unwrap(), 1 << 40);
        assert!(r.bool().unwrap());
        assert_eq!(r.ustring().unwrap(), None);
        assert_eq!(r.string().unwrap(), "héllo");
        assert_eq!(r.buffer().unwrap(), Some(vec![0, 1]));
        assert!(r.is_empty());
    }

    #[test]
    fn huge_length_rejected_before_allocation() {
        let mut w = Writer::new();
        w.i32(i32::MAX);
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.buffer(), Err(DecodeError::BadLength(i32::MAX as i64)));
        let mut r = Reader::new(&w.buf);
        assert!(r.vec_len(4).is_err());
    }

    #[test]
    fn negative_length_other_than_null_rejected() {
        let mut w = Writer::new();
        w.i32(-2);
        assert!(Reader::new(&w.buf).ustring().is_err());
    }

    #[test]
    fn frame_prefix_counts_payload_only() {
        let mut w = Writer::frame();
        w.i32(7);
        assert_eq!(w.finish_frame(), vec![0, 0, 0, 4, 0, 0, 0, 7]);
    }
}
