//! A bounds-checked big-endian cursor over borrowed bytes: every read says what it was reading
//! so a short or malformed input becomes a [`DecodeError`] that names the field.

use super::error::DecodeError;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Buf<'a> {
    rest: &'a [u8],
}

impl<'a> Buf<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Buf { rest: bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The unread bytes, consuming them.
    pub(crate) fn take_rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        match self.rest.split_at_checked(n) {
            Some((head, tail)) => {
                self.rest = tail;
                Ok(head)
            }
            None => Err(DecodeError::Truncated {
                what,
                needed: n,
                available: self.rest.len(),
            }),
        }
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        match self.rest.split_first_chunk::<N>() {
            Some((head, tail)) => {
                self.rest = tail;
                Ok(*head)
            }
            None => Err(DecodeError::Truncated {
                what,
                needed: N,
                available: self.rest.len(),
            }),
        }
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        self.array(what).map(i16::from_be_bytes)
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        self.array(what).map(u16::from_be_bytes)
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        self.array(what).map(i32::from_be_bytes)
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.array(what).map(u32::from_be_bytes)
    }

    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        self.array(what).map(i64::from_be_bytes)
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        self.array(what).map(u64::from_be_bytes)
    }

    /// A NUL-terminated string (the terminator is consumed, not returned), as UTF-8.
    pub(crate) fn cstr(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        let Some(end) = self.rest.iter().position(|&b| b == 0) else {
            return Err(DecodeError::Truncated {
                what,
                needed: self.rest.len() + 1,
                available: self.rest.len(),
            });
        };
        let (s, tail) = self.rest.split_at(end);
        self.rest = tail.get(1..).unwrap_or_default();
        utf8(s, what)
    }

    /// Error unless everything was consumed.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                what,
                count: self.rest.len(),
            })
        }
    }
}

/// `bytes` as UTF-8 text, or an error naming `what`.
pub(crate) fn utf8<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a str, DecodeError> {
    std::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8 {
        what,
        valid_up_to: e.valid_up_to(),
    })
}

/// The exact length a fixed-width value must have.
pub(crate) fn fixed<const N: usize>(
    bytes: &[u8],
    what: &'static str,
) -> Result<[u8; N], DecodeError> {
    bytes.try_into().map_err(|_| DecodeError::Length {
        what,
        expected: N,
        found: bytes.len(),
    })
}
