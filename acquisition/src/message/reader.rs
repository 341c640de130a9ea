//! Reading big-endian fields, every length checked.

use super::MessageError;

/// A cursor over a message's bytes.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    /// How many bytes are left.
    pub(crate) fn left(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], MessageError> {
        if self.bytes.len() < n {
            return Err(MessageError::Truncated(what));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, MessageError> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, MessageError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, MessageError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, MessageError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A name: a length byte, then UTF-8 of at most `max` bytes.
    pub(crate) fn name(&mut self, max: usize, what: &'static str) -> Result<String, MessageError> {
        let len = usize::from(self.u8(what)?);
        if len > max {
            return Err(MessageError::TooLong { what, len, max });
        }
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| MessageError::Invalid(what))
    }

    /// A count of items each at least `min_size` bytes long, no more than
    /// `max` and no more than the bytes left can hold.
    pub(crate) fn count(&mut self, max: usize, min_size: usize, what: &'static str) -> Result<usize, MessageError> {
        let len = usize::from(self.u16(what)?);
        if len > max {
            return Err(MessageError::TooLong { what, len, max });
        }
        if len * min_size > self.left() {
            return Err(MessageError::Truncated(what));
        }
        Ok(len)
    }

    /// The end: no bytes may be left.
    pub(crate) fn finish(&self) -> Result<(), MessageError> {
        match self.bytes.len() {
            0 => Ok(()),
            n => Err(MessageError::Trailing(n)),
        }
    }
}

/// Appends a name (its length, then its bytes; at most 255).
pub(crate) fn put_name(out: &mut Vec<u8>, name: &str) {
    let bytes = &name.as_bytes()[..name.len().min(255)];
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}
