//! 0x02: samples of one group, in sequence order.

use outpost_modbus_core::scan::Value;
use outpost_modbus_core::ExceptionCode;

use super::{MessageError, Reader};
use crate::sample::{Quality, Sample};

/// The most samples one message carries.
pub const MAX_SAMPLES: usize = 1024;

/// Samples of one group, in sequence order (their `group` field is the
/// message's).
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    /// The group.
    pub group: u16,
    /// The epoch of the sequence numbers.
    pub epoch: u64,
    /// The samples.
    pub samples: Vec<Sample>,
}

/// A sample's fixed part: sequence number, point, timestamp, quality,
/// flags, value tag.
const MIN_SAMPLE: usize = 8 + 2 + 8 + 1 + 1 + 1;
/// The flag byte's one flag.
const SNAPSHOT: u8 = 0x01;

/// A sample's size on the wire.
pub(crate) fn encoded_len(sample: &Sample) -> usize {
    let quality = match sample.quality {
        Quality::DeviceException(_) => 1,
        _ => 0,
    };
    let value = match sample.value {
        None => 0,
        Some(Value::Bool(_)) => 1,
        Some(Value::U16(_) | Value::I16(_)) => 2,
        Some(_) => 4,
    };
    MIN_SAMPLE + quality + value
}

fn put_sample(out: &mut Vec<u8>, s: &Sample) {
    out.extend_from_slice(&s.seq.to_be_bytes());
    out.extend_from_slice(&(s.point as u16).to_be_bytes());
    out.extend_from_slice(&s.at_ms.to_be_bytes());
    match s.quality {
        Quality::Good => out.push(0),
        Quality::Stale => out.push(1),
        Quality::CommFailure => out.push(2),
        Quality::DeviceException(code) => out.extend_from_slice(&[3, code.value()]),
    }
    out.push(if s.snapshot { SNAPSHOT } else { 0 });
    match s.value {
        None => out.push(0),
        Some(Value::Bool(b)) => out.extend_from_slice(&[1, u8::from(b)]),
        Some(Value::U16(v)) => out.extend_from_slice(&[2, (v >> 8) as u8, v as u8]),
        Some(Value::I16(v)) => {
            out.push(3);
            out.extend_from_slice(&v.to_be_bytes());
        }
        Some(Value::U32(v)) => {
            out.push(4);
            out.extend_from_slice(&v.to_be_bytes());
        }
        Some(Value::I32(v)) => {
            out.push(5);
            out.extend_from_slice(&v.to_be_bytes());
        }
        Some(Value::F32(v)) => {
            out.push(6);
            out.extend_from_slice(&v.to_bits().to_be_bytes());
        }
        // A value this version does not know goes as none.
        Some(_) => out.push(0),
    }
}

fn sample(r: &mut Reader<'_>, group: usize) -> Result<Sample, MessageError> {
    let seq = r.u64("sequence number")?;
    let point = usize::from(r.u16("point")?);
    let at_ms = r.u64("timestamp")?;
    let quality = match r.u8("quality")? {
        0 => Quality::Good,
        1 => Quality::Stale,
        2 => Quality::CommFailure,
        3 => Quality::DeviceException(ExceptionCode::from_u8(r.u8("exception code")?)),
        _ => return Err(MessageError::Invalid("quality")),
    };
    let flags = r.u8("flags")?;
    if flags & !SNAPSHOT != 0 {
        return Err(MessageError::Invalid("flags"));
    }
    let value = match r.u8("value")? {
        0 => None,
        1 => Some(Value::Bool(match r.u8("value")? {
            0 => false,
            1 => true,
            _ => return Err(MessageError::Invalid("bit")),
        })),
        2 => Some(Value::U16(r.u16("value")?)),
        3 => Some(Value::I16(r.u16("value")? as i16)),
        4 => Some(Value::U32(r.u32("value")?)),
        5 => Some(Value::I32(r.u32("value")? as i32)),
        6 => Some(Value::F32(f32::from_bits(r.u32("value")?))),
        _ => return Err(MessageError::Invalid("value")),
    };
    Ok(Sample {
        group,
        seq,
        point,
        at_ms,
        quality,
        value,
        snapshot: flags & SNAPSHOT != 0,
    })
}

impl Samples {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.group.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        let count = self.samples.len().min(MAX_SAMPLES);
        out.extend_from_slice(&(count as u16).to_be_bytes());
        for s in &self.samples[..count] {
            put_sample(out, s);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Samples, MessageError> {
        let group = r.u16("group")?;
        let epoch = r.u64("epoch")?;
        let count = r.count(MAX_SAMPLES, MIN_SAMPLE, "samples")?;
        let mut samples = Vec::with_capacity(count);
        for _ in 0..count {
            samples.push(sample(r, usize::from(group))?);
        }
        Ok(Samples { group, epoch, samples })
    }
}
