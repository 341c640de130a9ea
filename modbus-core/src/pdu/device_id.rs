//! Read Device Identification (function 2B, MEI type 0E).

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EncodeError, RangeError};

/// What a Read Device Identification request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReadDeviceIdCode {
    /// 01: stream the basic objects (0x00..=0x02).
    Basic,
    /// 02: stream the regular objects (0x00..=0x7F).
    Regular,
    /// 03: stream the extended objects (0x00..=0xFF).
    Extended,
    /// 04: one specific object.
    Specific,
}

impl ReadDeviceIdCode {
    /// The byte on the wire.
    pub const fn value(self) -> u8 {
        match self {
            ReadDeviceIdCode::Basic => 1,
            ReadDeviceIdCode::Regular => 2,
            ReadDeviceIdCode::Extended => 3,
            ReadDeviceIdCode::Specific => 4,
        }
    }

    /// The code for a wire byte, if it is one of 1..=4.
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(ReadDeviceIdCode::Basic),
            2 => Some(ReadDeviceIdCode::Regular),
            3 => Some(ReadDeviceIdCode::Extended),
            4 => Some(ReadDeviceIdCode::Specific),
            _ => None,
        }
    }

    /// The highest object id a stream access of this category reaches.
    pub const fn last_object(self) -> u8 {
        match self {
            ReadDeviceIdCode::Basic => 0x02,
            ReadDeviceIdCode::Regular => 0x7F,
            ReadDeviceIdCode::Extended | ReadDeviceIdCode::Specific => 0xFF,
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = r.u8()?;
        ReadDeviceIdCode::from_u8(v).ok_or_else(|| {
            r.range(RangeError::Value {
                field: "read device id code",
                value: v as u16,
            })
        })
    }
}

/// Well-known object ids of Read Device Identification.
pub mod object_id {
    /// VendorName (basic, mandatory).
    pub const VENDOR_NAME: u8 = 0x00;
    /// ProductCode (basic, mandatory).
    pub const PRODUCT_CODE: u8 = 0x01;
    /// MajorMinorRevision (basic, mandatory).
    pub const MAJOR_MINOR_REVISION: u8 = 0x02;
    /// VendorUrl (regular).
    pub const VENDOR_URL: u8 = 0x03;
    /// ProductName (regular).
    pub const PRODUCT_NAME: u8 = 0x04;
    /// ModelName (regular).
    pub const MODEL_NAME: u8 = 0x05;
    /// UserApplicationName (regular).
    pub const USER_APPLICATION_NAME: u8 = 0x06;
}

/// One object of a Read Device Identification response.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceObject<'a> {
    /// Object id.
    pub id: u8,
    /// Object value (ASCII text for the standard objects).
    pub value: &'a [u8],
}

impl core::fmt::Debug for DeviceObject<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("DeviceObject");
        d.field("id", &self.id);
        // Standard objects are text: show them as text when they are.
        match core::str::from_utf8(self.value) {
            Ok(text) => d.field("value", &text),
            Err(_) => d.field("value", &self.value),
        };
        d.finish()
    }
}

/// The objects of a Read Device Identification response.
#[derive(Clone, Copy)]
pub struct DeviceObjects<'a>(ObjectsRepr<'a>);

#[derive(Clone, Copy)]
enum ObjectsRepr<'a> {
    Wire { bytes: &'a [u8], count: u8 },
    Native(&'a [DeviceObject<'a>]),
}

impl<'a> DeviceObjects<'a> {
    /// Objects from the caller's list.
    pub const fn from_slice(objects: &'a [DeviceObject<'a>]) -> Self {
        DeviceObjects(ObjectsRepr::Native(objects))
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        match self.0 {
            ObjectsRepr::Wire { count, .. } => count as usize,
            ObjectsRepr::Native(o) => o.len(),
        }
    }

    /// Whether there are no objects.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterate over the objects.
    pub fn iter(&self) -> impl Iterator<Item = DeviceObject<'a>> + 'a {
        let (mut wire, native): (&'a [u8], &'a [DeviceObject<'a>]) = match self.0 {
            ObjectsRepr::Wire { bytes, .. } => (bytes, &[]),
            ObjectsRepr::Native(o) => (&[], o),
        };
        core::iter::from_fn(move || {
            let (&id, rest) = wire.split_first()?;
            let (&len, rest) = rest.split_first()?;
            let value = rest.get(..len as usize)?;
            wire = &rest[len as usize..];
            Some(DeviceObject { id, value })
        })
        .chain(native.iter().copied())
    }

    /// The value of object `id`, if present.
    pub fn get(&self, id: u8) -> Option<&'a [u8]> {
        self.iter().find(|o| o.id == id).map(|o| o.value)
    }

    fn wire_len(&self) -> usize {
        self.iter().map(|o| 2 + o.value.len()).sum()
    }
}

impl PartialEq for DeviceObjects<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}
impl Eq for DeviceObjects<'_> {}
impl core::fmt::Debug for DeviceObjects<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A Read Device Identification response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceIdentification<'a> {
    /// The read code of the request, echoed.
    pub read_code: ReadDeviceIdCode,
    /// The device's conformity level (0x01..=0x03, 0x81..=0x83).
    pub conformity: u8,
    /// More objects follow: ask again from `next_object_id`.
    pub more_follows: bool,
    /// Where the next request starts when `more_follows` is set (else 0).
    pub next_object_id: u8,
    /// The objects in this response.
    pub objects: DeviceObjects<'a>,
}

/// Fixed part after the function code: MEI type, read code, conformity,
/// more follows, next object id, number of objects.
const HEADER_LEN: usize = 6;

impl<'a> DeviceIdentification<'a> {
    pub(crate) fn encoded_len(&self) -> usize {
        1 + HEADER_LEN + self.objects.wire_len()
    }

    /// Decode after the MEI type byte.
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let read_code = ReadDeviceIdCode::decode(r)?;
        let conformity = r.u8()?;
        let more_follows = match r.u8()? {
            0x00 => false,
            0xFF => true,
            other => {
                return Err(r.range(RangeError::Value {
                    field: "more follows",
                    value: other as u16,
                }))
            }
        };
        let next_object_id = r.u8()?;
        let count = r.u8()?;
        let all = r.rest();
        let len = objects_len(all, count).ok_or_else(|| r.truncated(usize::MAX))?;
        if len != all.len() {
            return Err(DecodeError::TrailingBytes {
                function: r.function(),
                extra: all.len() - len,
            });
        }
        Ok(DeviceIdentification {
            read_code,
            conformity,
            more_follows,
            next_object_id,
            objects: DeviceObjects(ObjectsRepr::Wire { bytes: all, count }),
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(crate::function::MEI_READ_DEVICE_ID)?;
        w.u8(self.read_code.value())?;
        w.u8(self.conformity)?;
        w.u8(if self.more_follows { 0xFF } else { 0x00 })?;
        w.u8(self.next_object_id)?;
        // The writer was made for the whole encoded length, which it checked
        // against the PDU's 253 bytes: the count and every value length fit
        // a byte.
        w.u8(self.objects.len() as u8)?;
        for o in self.objects.iter() {
            w.u8(o.id)?;
            w.u8(o.value.len() as u8)?;
            w.bytes(o.value)?;
        }
        Ok(())
    }
}

/// Bytes `count` objects take at the start of `bytes`; `None` if they run past it.
pub(crate) fn objects_len(bytes: &[u8], count: u8) -> Option<usize> {
    let mut pos = 0usize;
    for _ in 0..count {
        let len = *bytes.get(pos + 1)? as usize;
        pos += 2 + len;
        if pos > bytes.len() {
            return None;
        }
    }
    Some(pos)
}
