//! File record payloads: Read File Record (14) and Write File Record (15).
//!
//! Each sub-request names a file (1..=65535), a starting record (0..=9999)
//! and a number of 16-bit records. Reference type is always 6.

use crate::codec::{Reader, Writer, MAX_PDU_LEN};
use crate::data::Words;
use crate::error::{DecodeError, EncodeError, RangeError};

/// The reference type every file sub-request carries.
pub const FILE_REFERENCE_TYPE: u8 = 6;
/// The largest record number a file sub-request may name.
pub const MAX_RECORD_NUMBER: u16 = 0x270F;

fn check_ref(file: u16, record: u16) -> Result<(), RangeError> {
    if file == 0 {
        return Err(RangeError::Value {
            field: "file number",
            value: file,
        });
    }
    if record > MAX_RECORD_NUMBER {
        return Err(RangeError::Value {
            field: "record number",
            value: record,
        });
    }
    Ok(())
}

/// One sub-request of Read File Record: which records to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileRecordRef {
    /// File number (1..=65535).
    pub file: u16,
    /// First record number (0..=9999).
    pub record: u16,
    /// Number of 16-bit records to read (at least 1).
    pub length: u16,
}

/// The sub-requests of a Read File Record request (1..=35 of them, and the
/// response they ask for must fit in one PDU).
#[derive(Clone, Copy)]
pub struct FileReads<'a>(FileReadsRepr<'a>);

#[derive(Clone, Copy)]
enum FileReadsRepr<'a> {
    Wire(&'a [u8]),
    Native(&'a [FileRecordRef]),
}

const READ_REF_LEN: usize = 7;

impl<'a> FileReads<'a> {
    /// The most sub-requests one request may carry (byte count 0xF5 / 7).
    pub const MAX_SUB_REQUESTS: usize = 35;

    /// Checked sub-requests.
    pub fn new(refs: &'a [FileRecordRef]) -> Result<Self, RangeError> {
        if refs.is_empty() || refs.len() > Self::MAX_SUB_REQUESTS {
            return Err(RangeError::Length {
                len: refs.len(),
                min: 1,
                max: Self::MAX_SUB_REQUESTS,
            });
        }
        for r in refs {
            check_ref(r.file, r.record)?;
            if r.length == 0 {
                return Err(RangeError::Value {
                    field: "record length",
                    value: 0,
                });
            }
        }
        let reads = FileReads(FileReadsRepr::Native(refs));
        check_response_fits(reads.response_data_len())?;
        Ok(reads)
    }

    /// Number of sub-requests.
    pub fn len(&self) -> usize {
        match self.0 {
            FileReadsRepr::Wire(b) => b.len() / READ_REF_LEN,
            FileReadsRepr::Native(r) => r.len(),
        }
    }

    /// Whether there are no sub-requests (never true for a valid value).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterate over the sub-requests.
    pub fn iter(&self) -> impl Iterator<Item = FileRecordRef> + 'a {
        let (wire, native): (&'a [u8], &'a [FileRecordRef]) = match self.0 {
            FileReadsRepr::Wire(b) => (b, &[]),
            FileReadsRepr::Native(r) => (&[], r),
        };
        wire.chunks_exact(READ_REF_LEN)
            .map(|c| FileRecordRef {
                file: u16::from_be_bytes([c[1], c[2]]),
                record: u16::from_be_bytes([c[3], c[4]]),
                length: u16::from_be_bytes([c[5], c[6]]),
            })
            .chain(native.iter().copied())
    }

    /// Bytes of the response's data field (after its byte count).
    pub(crate) fn response_data_len(&self) -> usize {
        self.iter().map(|r| 2 + 2 * r.length as usize).sum()
    }

    pub(crate) fn encoded_len(&self) -> usize {
        2 + READ_REF_LEN * self.len()
    }

    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let n = r.u8()? as usize;
        if !(READ_REF_LEN..=0xF5).contains(&n) || !n.is_multiple_of(READ_REF_LEN) {
            return Err(r.byte_count(n, READ_REF_LEN * (n / READ_REF_LEN).max(1)));
        }
        let body = r.take(n)?;
        for c in body.chunks_exact(READ_REF_LEN) {
            if c[0] != FILE_REFERENCE_TYPE {
                return Err(r.range(RangeError::Value {
                    field: "reference type",
                    value: c[0] as u16,
                }));
            }
            let sub = FileRecordRef {
                file: u16::from_be_bytes([c[1], c[2]]),
                record: u16::from_be_bytes([c[3], c[4]]),
                length: u16::from_be_bytes([c[5], c[6]]),
            };
            check_ref(sub.file, sub.record).map_err(|e| r.range(e))?;
            if sub.length == 0 {
                return Err(r.range(RangeError::Value {
                    field: "record length",
                    value: 0,
                }));
            }
        }
        let reads = FileReads(FileReadsRepr::Wire(body));
        check_response_fits(reads.response_data_len()).map_err(|e| r.range(e))?;
        Ok(reads)
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8((READ_REF_LEN * self.len()) as u8)?;
        for sub in self.iter() {
            w.u8(FILE_REFERENCE_TYPE)?;
            w.u16(sub.file)?;
            w.u16(sub.record)?;
            w.u16(sub.length)?;
        }
        Ok(())
    }
}

fn check_response_fits(data_len: usize) -> Result<(), RangeError> {
    // Function code, data length byte, then the groups.
    if 2 + data_len > MAX_PDU_LEN {
        return Err(RangeError::Length {
            len: data_len,
            min: 4,
            max: MAX_PDU_LEN - 2,
        });
    }
    Ok(())
}

impl PartialEq for FileReads<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}
impl Eq for FileReads<'_> {}
impl core::fmt::Debug for FileReads<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The record groups of a Read File Record response, one per sub-request.
#[derive(Clone, Copy)]
pub struct FileReadResponse<'a>(FileReadResponseRepr<'a>);

#[derive(Clone, Copy)]
enum FileReadResponseRepr<'a> {
    Wire(&'a [u8]),
    Native(&'a [Words<'a>]),
}

impl<'a> FileReadResponse<'a> {
    /// Groups from the caller's values.
    pub fn new(groups: &'a [Words<'a>]) -> Result<Self, RangeError> {
        if groups.is_empty() {
            return Err(RangeError::Length {
                len: 0,
                min: 1,
                max: FileReads::MAX_SUB_REQUESTS,
            });
        }
        let resp = FileReadResponse(FileReadResponseRepr::Native(groups));
        check_response_fits(resp.data_len())?;
        Ok(resp)
    }

    /// Iterate over the groups' record values.
    pub fn iter(&self) -> impl Iterator<Item = Words<'a>> + 'a {
        let (mut wire, native): (&'a [u8], &'a [Words<'a>]) = match self.0 {
            FileReadResponseRepr::Wire(b) => (b, &[]),
            FileReadResponseRepr::Native(g) => (&[], g),
        };
        core::iter::from_fn(move || {
            let (&len, rest) = wire.split_first()?;
            let group = rest.get(..len as usize)?;
            wire = &rest[len as usize..];
            Words::from_be_bytes(group.get(1..)?)
        })
        .chain(native.iter().copied())
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are no groups.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn data_len(&self) -> usize {
        self.iter().map(|g| 2 + 2 * g.len()).sum()
    }

    pub(crate) fn encoded_len(&self) -> usize {
        2 + self.data_len()
    }

    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let n = r.u8()? as usize;
        let body = r.take(n)?;
        if body.is_empty() {
            return Err(r.byte_count(n, 4));
        }
        let mut rest = body;
        while let Some((&len, tail)) = rest.split_first() {
            let len = len as usize;
            // Reference type plus an even, non-zero number of data bytes.
            if len < 3 || len.is_multiple_of(2) || len > tail.len() {
                return Err(r.byte_count(len, tail.len()));
            }
            if tail[0] != FILE_REFERENCE_TYPE {
                return Err(r.range(RangeError::Value {
                    field: "reference type",
                    value: tail[0] as u16,
                }));
            }
            rest = &tail[len..];
        }
        Ok(FileReadResponse(FileReadResponseRepr::Wire(body)))
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(self.data_len() as u8)?;
        for g in self.iter() {
            w.u8((1 + 2 * g.len()) as u8)?;
            w.u8(FILE_REFERENCE_TYPE)?;
            g.write_be(w.reserve(2 * g.len())?);
        }
        Ok(())
    }
}

impl PartialEq for FileReadResponse<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}
impl Eq for FileReadResponse<'_> {}
impl core::fmt::Debug for FileReadResponse<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One group of Write File Record: records to write into a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRecord<'a> {
    /// File number (1..=65535).
    pub file: u16,
    /// First record number (0..=9999).
    pub record: u16,
    /// The record values (at least one).
    pub values: Words<'a>,
}

/// The groups of a Write File Record request; the normal response echoes them.
#[derive(Clone, Copy)]
pub struct FileWrites<'a>(FileWritesRepr<'a>);

#[derive(Clone, Copy)]
enum FileWritesRepr<'a> {
    Wire(&'a [u8]),
    Native(&'a [FileRecord<'a>]),
}

const WRITE_HEADER_LEN: usize = 7;

impl<'a> FileWrites<'a> {
    /// Checked groups: at least one, each with at least one value, and the
    /// whole fitting in one PDU.
    pub fn new(groups: &'a [FileRecord<'a>]) -> Result<Self, RangeError> {
        if groups.is_empty() {
            return Err(RangeError::Length {
                len: 0,
                min: 1,
                max: 27,
            });
        }
        for g in groups {
            check_ref(g.file, g.record)?;
            if g.values.is_empty() {
                return Err(RangeError::Value {
                    field: "record length",
                    value: 0,
                });
            }
        }
        let writes = FileWrites(FileWritesRepr::Native(groups));
        if writes.encoded_len() > MAX_PDU_LEN {
            return Err(RangeError::Length {
                len: writes.data_len(),
                min: 9,
                max: 0xFB,
            });
        }
        Ok(writes)
    }

    /// Iterate over the groups.
    pub fn iter(&self) -> impl Iterator<Item = FileRecord<'a>> + 'a {
        let (mut wire, native): (&'a [u8], &'a [FileRecord<'a>]) = match self.0 {
            FileWritesRepr::Wire(b) => (b, &[]),
            FileWritesRepr::Native(g) => (&[], g),
        };
        core::iter::from_fn(move || {
            let head = wire.get(..WRITE_HEADER_LEN)?;
            let len = u16::from_be_bytes([head[5], head[6]]) as usize;
            let data = wire.get(WRITE_HEADER_LEN..WRITE_HEADER_LEN + 2 * len)?;
            wire = &wire[WRITE_HEADER_LEN + 2 * len..];
            Some(FileRecord {
                file: u16::from_be_bytes([head[1], head[2]]),
                record: u16::from_be_bytes([head[3], head[4]]),
                values: Words::from_be_bytes(data)?,
            })
        })
        .chain(native.iter().copied())
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are no groups.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn data_len(&self) -> usize {
        self.iter().map(|g| WRITE_HEADER_LEN + 2 * g.values.len()).sum()
    }

    pub(crate) fn encoded_len(&self) -> usize {
        2 + self.data_len()
    }

    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let n = r.u8()? as usize;
        let body = r.take(n)?;
        if body.is_empty() {
            return Err(r.byte_count(0, WRITE_HEADER_LEN + 2));
        }
        let mut rest = body;
        while !rest.is_empty() {
            let Some(head) = rest.get(..WRITE_HEADER_LEN) else {
                return Err(r.byte_count(n, n - rest.len() + WRITE_HEADER_LEN));
            };
            if head[0] != FILE_REFERENCE_TYPE {
                return Err(r.range(RangeError::Value {
                    field: "reference type",
                    value: head[0] as u16,
                }));
            }
            let file = u16::from_be_bytes([head[1], head[2]]);
            let record = u16::from_be_bytes([head[3], head[4]]);
            check_ref(file, record).map_err(|e| r.range(e))?;
            let len = u16::from_be_bytes([head[5], head[6]]) as usize;
            if len == 0 {
                return Err(r.range(RangeError::Value {
                    field: "record length",
                    value: 0,
                }));
            }
            let group_len = WRITE_HEADER_LEN + 2 * len;
            if group_len > rest.len() {
                return Err(r.byte_count(n, n - rest.len() + group_len));
            }
            rest = &rest[group_len..];
        }
        Ok(FileWrites(FileWritesRepr::Wire(body)))
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(self.data_len() as u8)?;
        for g in self.iter() {
            w.u8(FILE_REFERENCE_TYPE)?;
            w.u16(g.file)?;
            w.u16(g.record)?;
            w.u16(g.values.len() as u16)?;
            g.values.write_be(w.reserve(2 * g.values.len())?);
        }
        Ok(())
    }

    /// A short fingerprint of the groups, so a client can check that a
    /// response echoes its request without keeping the request's bytes.
    pub(crate) fn fingerprint(&self) -> u32 {
        // FNV-1a over the wire layout.
        let mut h: u32 = 0x811C_9DC5;
        let mut eat = |b: u8| {
            h ^= b as u32;
            h = h.wrapping_mul(0x0100_0193);
        };
        for g in self.iter() {
            for b in g.file.to_be_bytes().into_iter().chain(g.record.to_be_bytes()) {
                eat(b);
            }
            for b in (g.values.len() as u16).to_be_bytes() {
                eat(b);
            }
            for v in g.values.iter() {
                for b in v.to_be_bytes() {
                    eat(b);
                }
            }
        }
        h
    }
}

impl PartialEq for FileWrites<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}
impl Eq for FileWrites<'_> {}
impl core::fmt::Debug for FileWrites<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
