//! 0x03: every sample of a group up to a sequence number arrived.

use super::{MessageError, Reader};

/// The hub has every sample of `group` (of `epoch`) up to and including
/// `upto`: the agent may forget them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The group.
    pub group: u16,
    /// The epoch of the sequence numbers.
    pub epoch: u64,
    /// The last sequence number received, all before it included.
    pub upto: u64,
}

impl Ack {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.group.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.upto.to_be_bytes());
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Ack, MessageError> {
        Ok(Ack {
            group: r.u16("group")?,
            epoch: r.u64("epoch")?,
            upto: r.u64("sequence number")?,
        })
    }
}
