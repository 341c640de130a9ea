//! Borrowed views of coil and register values.
//!
//! A decoded PDU does not copy its values: [`Bits`] and [`Words`] read them
//! straight from the received bytes. The same types wrap the caller's own
//! `&[bool]` and `&[u16]` for encoding, so one request type serves both
//! directions without allocation.

/// A sequence of bit values (coils or discrete inputs).
///
/// Either packed as on the wire (first value in the least significant bit of
/// the first byte) or a slice of `bool`. Two `Bits` are equal when they hold
/// the same values, whatever their representation.
#[derive(Clone, Copy)]
pub struct Bits<'a> {
    repr: BitsRepr<'a>,
    len: usize,
}

#[derive(Clone, Copy)]
enum BitsRepr<'a> {
    Packed(&'a [u8]),
    Bools(&'a [bool]),
}

impl<'a> Bits<'a> {
    /// Values from a slice of `bool`.
    pub const fn from_bools(values: &'a [bool]) -> Self {
        Bits {
            repr: BitsRepr::Bools(values),
            len: values.len(),
        }
    }

    /// The first `len` values packed in `bytes` as on the wire; `None` if
    /// `bytes` holds fewer than `len` bits.
    pub const fn from_packed(bytes: &'a [u8], len: usize) -> Option<Self> {
        if len > bytes.len().saturating_mul(8) {
            return None;
        }
        Some(Bits {
            repr: BitsRepr::Packed(bytes),
            len,
        })
    }

    /// Number of values.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no values.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value at `index`, or `None` past the end.
    #[inline]
    pub fn get(&self, index: usize) -> Option<bool> {
        if index >= self.len {
            return None;
        }
        match self.repr {
            BitsRepr::Packed(bytes) => bytes.get(index / 8).map(|b| b & (1 << (index % 8)) != 0),
            BitsRepr::Bools(values) => values.get(index).copied(),
        }
    }

    /// Iterate over the values.
    pub fn iter(&self) -> BitsIter<'a> {
        BitsIter { bits: *self, index: 0 }
    }

    /// Bytes the values take packed on the wire.
    pub const fn packed_len(&self) -> usize {
        self.len.div_ceil(8)
    }

    /// The wire bytes, when this view was decoded from them.
    pub fn as_packed(&self) -> Option<&'a [u8]> {
        match self.repr {
            BitsRepr::Packed(bytes) => bytes.get(..self.packed_len()),
            BitsRepr::Bools(_) => None,
        }
    }

    /// Copy the values into `out`; returns how many were written
    /// (the lesser of both lengths).
    pub fn copy_to(&self, out: &mut [bool]) -> usize {
        let n = self.len.min(out.len());
        for (slot, value) in out.iter_mut().zip(self.iter()) {
            *slot = value;
        }
        n
    }

    /// The first `len` values (all of them if `len` is larger).
    pub(crate) fn truncated(self, len: usize) -> Self {
        Bits {
            repr: self.repr,
            len: self.len.min(len),
        }
    }

    /// Write the packed form into `out`, which must hold `packed_len()` bytes.
    /// Unused high bits of the last byte are zero, as the specification asks.
    pub(crate) fn write_packed(&self, out: &mut [u8]) {
        let n = self.packed_len();
        let out = &mut out[..n];
        match self.repr {
            BitsRepr::Packed(bytes) => {
                out.copy_from_slice(&bytes[..n]);
                let rem = self.len % 8;
                if rem != 0 {
                    out[n - 1] &= (1u8 << rem) - 1;
                }
            }
            BitsRepr::Bools(values) => {
                for (byte, chunk) in out.iter_mut().zip(values.chunks(8)) {
                    let mut b = 0u8;
                    for (i, &v) in chunk.iter().enumerate() {
                        b |= (v as u8) << i;
                    }
                    *byte = b;
                }
            }
        }
    }
}

impl PartialEq for Bits<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for Bits<'_> {}

impl core::fmt::Debug for Bits<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter().map(u8::from)).finish()
    }
}

impl<'a> IntoIterator for Bits<'a> {
    type Item = bool;
    type IntoIter = BitsIter<'a>;
    fn into_iter(self) -> BitsIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Bits`].
#[derive(Debug, Clone)]
pub struct BitsIter<'a> {
    bits: Bits<'a>,
    index: usize,
}

impl Iterator for BitsIter<'_> {
    type Item = bool;

    #[inline]
    fn next(&mut self) -> Option<bool> {
        let value = self.bits.get(self.index)?;
        self.index += 1;
        Some(value)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.bits.len - self.index;
        (n, Some(n))
    }
}

impl ExactSizeIterator for BitsIter<'_> {}

/// A sequence of 16-bit register values.
///
/// Either big-endian bytes as on the wire or a slice of `u16`. Two `Words`
/// are equal when they hold the same values, whatever their representation.
#[derive(Clone, Copy)]
pub struct Words<'a>(WordsRepr<'a>);

#[derive(Clone, Copy)]
enum WordsRepr<'a> {
    Wire(&'a [u8]),
    Native(&'a [u16]),
}

impl<'a> Words<'a> {
    /// Values from a slice of `u16`.
    pub const fn from_slice(values: &'a [u16]) -> Self {
        Words(WordsRepr::Native(values))
    }

    /// Values from big-endian wire bytes; `None` for an odd number of bytes.
    pub const fn from_be_bytes(bytes: &'a [u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(2) {
            return None;
        }
        Some(Words(WordsRepr::Wire(bytes)))
    }

    /// Number of values.
    #[inline]
    pub const fn len(&self) -> usize {
        match self.0 {
            WordsRepr::Wire(b) => b.len() / 2,
            WordsRepr::Native(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value at `index`, or `None` past the end.
    #[inline]
    pub fn get(&self, index: usize) -> Option<u16> {
        match self.0 {
            WordsRepr::Wire(b) => {
                let i = index.checked_mul(2)?;
                match b.get(i..i + 2) {
                    Some(&[hi, lo]) => Some(u16::from_be_bytes([hi, lo])),
                    _ => None,
                }
            }
            WordsRepr::Native(v) => v.get(index).copied(),
        }
    }

    /// Iterate over the values.
    #[inline]
    pub fn iter(&self) -> WordsIter<'a> {
        match self.0 {
            WordsRepr::Wire(b) => WordsIter(WordsIterRepr::Wire(b.as_chunks::<2>().0.iter())),
            WordsRepr::Native(v) => WordsIter(WordsIterRepr::Native(v.iter())),
        }
    }

    /// The wire bytes, when this view was decoded from them.
    pub fn as_be_bytes(&self) -> Option<&'a [u8]> {
        match self.0 {
            WordsRepr::Wire(b) => Some(b),
            WordsRepr::Native(_) => None,
        }
    }

    /// Copy the values into `out`; returns how many were written
    /// (the lesser of both lengths).
    pub fn copy_to(&self, out: &mut [u16]) -> usize {
        let n = self.len().min(out.len());
        for (slot, value) in out.iter_mut().zip(self.iter()) {
            *slot = value;
        }
        n
    }

    /// Write big-endian bytes into `out`, which must hold `2 * len()` bytes.
    pub(crate) fn write_be(&self, out: &mut [u8]) {
        match self.0 {
            WordsRepr::Wire(b) => out[..b.len()].copy_from_slice(b),
            WordsRepr::Native(v) => {
                for (chunk, value) in out.chunks_exact_mut(2).zip(v) {
                    chunk.copy_from_slice(&value.to_be_bytes());
                }
            }
        }
    }
}

impl PartialEq for Words<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Words<'_> {}

impl core::fmt::Debug for Words<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for Words<'a> {
    type Item = u16;
    type IntoIter = WordsIter<'a>;
    fn into_iter(self) -> WordsIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Words`].
#[derive(Debug, Clone)]
pub struct WordsIter<'a>(WordsIterRepr<'a>);

#[derive(Debug, Clone)]
enum WordsIterRepr<'a> {
    Wire(core::slice::Iter<'a, [u8; 2]>),
    Native(core::slice::Iter<'a, u16>),
}

impl Iterator for WordsIter<'_> {
    type Item = u16;

    #[inline]
    fn next(&mut self) -> Option<u16> {
        match &mut self.0 {
            WordsIterRepr::Wire(pairs) => pairs.next().map(|p| u16::from_be_bytes(*p)),
            WordsIterRepr::Native(iter) => iter.next().copied(),
        }
    }

    // Choosing the representation once, outside the loop, lets `sum`,
    // `for_each` and friends compile to a tight (vectorised) loop.
    #[inline]
    fn fold<B, F: FnMut(B, u16) -> B>(self, init: B, mut f: F) -> B {
        match self.0 {
            WordsIterRepr::Wire(pairs) => pairs.fold(init, |acc, p| f(acc, u16::from_be_bytes(*p))),
            WordsIterRepr::Native(iter) => iter.fold(init, |acc, &v| f(acc, v)),
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            WordsIterRepr::Wire(chunks) => chunks.size_hint(),
            WordsIterRepr::Native(iter) => iter.size_hint(),
        }
    }
}

impl ExactSizeIterator for WordsIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_bits_read_lsb_first() {
        // Spec example for FC 01: 0xCD holds coils 27..20 as 1100 1101.
        let bits = Bits::from_packed(&[0xCD, 0x6B, 0x05], 19).unwrap();
        let expect = [
            true, false, true, true, false, false, true, true, // 0xCD
            true, true, false, true, false, true, true, false, // 0x6B
            true, false, true, // 0x05
        ];
        assert_eq!(bits, Bits::from_bools(&expect));
        assert_eq!(bits.get(19), None);
        let mut out = [0u8; 3];
        Bits::from_bools(&expect).write_packed(&mut out);
        assert_eq!(out, [0xCD, 0x6B, 0x05]);
    }

    #[test]
    fn packed_padding_is_cleared() {
        let bits = Bits::from_packed(&[0xFF], 3).unwrap();
        let mut out = [0u8; 1];
        bits.write_packed(&mut out);
        assert_eq!(out, [0x07]);
        assert!(Bits::from_packed(&[0xFF], 9).is_none());
    }

    #[test]
    fn words_both_ways() {
        let w = Words::from_be_bytes(&[0x02, 0x2B, 0x00, 0x00, 0x00, 0x64]).unwrap();
        assert_eq!(w, Words::from_slice(&[0x022B, 0, 100]));
        assert_eq!(w.get(2), Some(100));
        assert_eq!(w.get(3), None);
        assert_eq!(w.get(usize::MAX), None);
        assert!(Words::from_be_bytes(&[1]).is_none());
        let mut out = [0u8; 6];
        Words::from_slice(&[0x022B, 0, 100]).write_be(&mut out);
        assert_eq!(out, [0x02, 0x2B, 0x00, 0x00, 0x00, 0x64]);
    }
}
