//! Bounds-checked byte reader and writer shared by every PDU codec.

use crate::error::{DecodeError, EncodeError};

/// Reads big-endian fields from a PDU; every read checks its length first.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    function: u8,
}

impl<'a> Reader<'a> {
    /// A reader over a PDU body, positioned after the function code byte.
    pub(crate) fn new(pdu: &'a [u8]) -> Result<(u8, Self), DecodeError> {
        let (&function, _) = pdu.split_first().ok_or(DecodeError::Empty)?;
        if pdu.len() > MAX_PDU_LEN {
            return Err(DecodeError::TooLong {
                function,
                len: pdu.len(),
            });
        }
        Ok((
            function,
            Reader {
                buf: pdu,
                pos: 1,
                function,
            },
        ))
    }

    pub(crate) fn truncated(&self, needed: usize) -> DecodeError {
        DecodeError::Truncated {
            function: self.function,
            needed,
            got: self.buf.len(),
        }
    }

    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.truncated(usize::MAX))?;
        let bytes = self.buf.get(self.pos..end).ok_or_else(|| self.truncated(end))?;
        self.pos = end;
        Ok(bytes)
    }

    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    #[inline]
    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Everything not yet read.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        rest
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Fails if bytes remain after the last field.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes {
                function: self.function,
                extra,
            }),
        }
    }

    pub(crate) fn function(&self) -> u8 {
        self.function
    }

    pub(crate) fn byte_count(&self, byte_count: usize, expected: usize) -> DecodeError {
        DecodeError::ByteCount {
            function: self.function,
            byte_count,
            expected,
        }
    }

    pub(crate) fn range(&self, error: crate::error::RangeError) -> DecodeError {
        DecodeError::Range {
            function: self.function,
            error,
        }
    }
}

/// Writes big-endian fields into a caller's buffer.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// A writer that first checks the whole encoding (`len` bytes, a PDU at
    /// most `max` bytes long) fits.
    pub(crate) fn new(buf: &'a mut [u8], len: usize, max: usize) -> Result<Self, EncodeError> {
        if len > max {
            return Err(EncodeError::PduTooLarge { len });
        }
        if buf.len() < len {
            return Err(EncodeError::BufferTooSmall {
                needed: len,
                available: buf.len(),
            });
        }
        Ok(Writer { buf, pos: 0 })
    }

    /// The next `n` bytes of the buffer, to fill.
    #[inline]
    pub(crate) fn reserve(&mut self, n: usize) -> Result<&mut [u8], EncodeError> {
        let end = self.pos + n;
        let available = self.buf.len();
        let slot = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(EncodeError::BufferTooSmall { needed: end, available })?;
        self.pos = end;
        Ok(slot)
    }

    #[inline]
    pub(crate) fn u8(&mut self, v: u8) -> Result<(), EncodeError> {
        self.reserve(1)?[0] = v;
        Ok(())
    }

    #[inline]
    pub(crate) fn u16(&mut self, v: u16) -> Result<(), EncodeError> {
        self.reserve(2)?.copy_from_slice(&v.to_be_bytes());
        Ok(())
    }

    #[inline]
    pub(crate) fn bytes(&mut self, v: &[u8]) -> Result<(), EncodeError> {
        self.reserve(v.len())?.copy_from_slice(v);
        Ok(())
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }
}

/// The largest PDU the specification allows (256-byte RTU ADU less address and CRC).
pub const MAX_PDU_LEN: usize = 253;
