//! Splitting a byte stream into length-prefixed frames. A frame is a big-endian i32 length and
//! that many bytes. The length is checked before anything is allocated: negative or over the
//! limit is a protocol error that closes the connection; an incomplete frame just waits.

/// The outcome of looking at the front of a connection's input buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameCheck {
    /// Not enough bytes yet.
    Incomplete,
    /// A whole frame: the payload spans `buf[4..4 + len]`.
    Complete { len: usize },
    /// The length field is negative or exceeds the limit.
    TooLarge(i32),
}

/// Looks at the front of `buf` for one frame of at most `frame_bytes_max` payload bytes.
pub fn check(buf: &[u8], frame_bytes_max: usize) -> FrameCheck {
    if buf.len() < 4 {
        return FrameCheck::Incomplete;
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len < 0 || len as usize > frame_bytes_max {
        return FrameCheck::TooLarge(len);
    }
    if buf.len() - 4 < len as usize {
        return FrameCheck::Incomplete;
    }
    FrameCheck::Complete { len: len as usize }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(check(&[0, 0], 10), FrameCheck::Incomplete);
        assert_eq!(check(&[0, 0, 0, 2, 1], 10), FrameCheck::Incomplete);
        assert_eq!(
            check(&[0, 0, 0, 2, 1, 2, 3], 10),
            FrameCheck::Complete { len: 2 }
        );
        assert_eq!(check(&[0, 0, 0, 11], 10), FrameCheck::TooLarge(11));
        assert_eq!(
            check(&[0xff, 0xff, 0xff, 0xff], 10),
            FrameCheck::TooLarge(-1)
        );
    }
}
