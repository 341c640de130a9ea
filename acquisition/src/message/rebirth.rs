//! 0x04: the hub asks for a group's birth and a full snapshot.

use super::{MessageError, Reader};

/// Send the birth of `group` and a full snapshot of its points (the hub
/// lost track: a gap in the sequence, or a new session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rebirth {
    /// The group.
    pub group: u16,
}

impl Rebirth {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.group.to_be_bytes());
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Rebirth, MessageError> {
        Ok(Rebirth { group: r.u16("group")? })
    }
}
