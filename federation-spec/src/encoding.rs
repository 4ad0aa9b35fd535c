//! Byte-level encoding shared by every GSP wire structure.
//!
//! GSP uses one deliberately plain binary encoding so that an implementer in any
//! language can reproduce it with a byte buffer and nothing else: unsigned
//! integers are big-endian and fixed width, strings are ASCII or UTF-8 with a
//! one-byte length prefix, and every structure is a fixed sequence of fields
//! (SPEC.md §3). There are no optional fields, no tags and no alternative
//! encodings of the same value, so equal values always have equal bytes.
//!
//! This module only moves bytes; it does not know what any field means.

/// A structural problem found while reading bytes: the input ended early, a
/// length prefix pointed past the end, or bytes were left over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte offset {offset}")]
pub struct DecodeError {
    /// What was wrong (for example "input ends inside field `created`").
    pub what: &'static str,
    /// Offset, from the start of the structure being read, where it went wrong.
    pub offset: usize,
}

/// A forward-only reader over a byte slice that never panics: every read
/// checks the remaining length first.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `bytes` at offset 0.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// The current offset from the start of the input.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    /// Fails unless every byte has been read.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    /// Builds an error located at the current offset.
    pub fn error(&self, what: &'static str) -> DecodeError {
        DecodeError {
            what,
            offset: self.pos,
        }
    }

    /// Reads exactly `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(self.error(what))?;
        let slice = self.bytes.get(self.pos..end).ok_or(self.error(what))?;
        self.pos = end;
        Ok(slice)
    }

    /// Reads every byte that is left.
    pub fn rest(&mut self) -> &'a [u8] {
        let slice = self.bytes.get(self.pos..).unwrap_or_default();
        self.pos = self.bytes.len();
        slice
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let slice = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// Reads a `str8`: a one-byte length followed by that many bytes.
    pub fn str8(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u8(what)?;
        self.take(usize::from(len), what)
    }
}

/// Appends a `str8` (one-byte length, then the bytes). The caller guarantees
/// `bytes.len() <= 255`; longer input is cut to 255 bytes, which the callers'
/// own validation makes unreachable.
pub fn put_str8(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u8::try_from(bytes.len()).unwrap_or(u8::MAX);
    out.push(len);
    out.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or(bytes));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_was_written() {
        let mut out = Vec::new();
        out.extend_from_slice(&7u16.to_be_bytes());
        put_str8(&mut out, b"FRA");
        out.extend_from_slice(&u64::MAX.to_be_bytes());
        let mut r = Reader::new(&out);
        assert_eq!(r.u16("a").unwrap(), 7);
        assert_eq!(r.str8("b").unwrap(), b"FRA");
        assert_eq!(r.u64("c").unwrap(), u64::MAX);
        r.finish("d").unwrap();
    }

    #[test]
    fn short_input_is_an_error_not_a_panic() {
        let mut r = Reader::new(&[0, 5, b'a']);
        assert_eq!(r.u16("len").unwrap(), 5);
        let err = r.take(5, "body").unwrap_err();
        assert_eq!(err.offset, 2);
        let mut r = Reader::new(&[9]);
        assert!(r.str8("s").is_err());
        let mut r = Reader::new(&[]);
        assert!(r.u64("n").is_err());
        assert!(r.take(usize::MAX, "huge").is_err());
    }
}
