//! The messages of data acquisition over a tunnel channel the agent opens:
//! births and samples from the agent, acknowledgements and rebirth
//! requests from the hub. One message per tunnel message; every field is
//! big-endian; every length is checked before anything is allocated.
//!
//! | kind | message | from |
//! |---|---|---|
//! | 0x01 | [`Birth`]: a group's points, its epoch and next sequence number | agent |
//! | 0x02 | [`Samples`]: samples of one group, in sequence order | agent |
//! | 0x03 | [`Ack`]: every sample of a group up to a sequence number arrived | hub |
//! | 0x04 | [`Rebirth`]: send the group's birth and a full snapshot | hub |

mod ack;
mod birth;
mod reader;
mod rebirth;
pub(crate) mod samples;

pub use ack::Ack;
pub use birth::{Birth, PointInfo, MAX_NAME_LEN, MAX_POINTS};
pub use rebirth::Rebirth;
pub use samples::{Samples, MAX_SAMPLES};

use reader::Reader;

/// A data acquisition message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// A group's description (agent to hub).
    Birth(Birth),
    /// A group's samples (agent to hub).
    Samples(Samples),
    /// What arrived (hub to agent).
    Ack(Ack),
    /// A full report asked for (hub to agent).
    Rebirth(Rebirth),
}

/// The kind byte of each message: used by encoding and decoding alike.
const BIRTH: u8 = 0x01;
const SAMPLES: u8 = 0x02;
const ACK: u8 = 0x03;
const REBIRTH: u8 = 0x04;

/// Why bytes are not a message. The peer's fault: the channel's bytes
/// cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The message ends before a field does.
    #[error("the message ends inside its {0}")]
    Truncated(&'static str),
    /// A kind byte no message has.
    #[error("no message has kind {0:#04x}")]
    UnknownKind(u8),
    /// A count or length past its limit.
    #[error("{what} of {len} is past the limit of {max}")]
    TooLong {
        /// What was counted.
        what: &'static str,
        /// The count given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A field with a value it cannot have.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// Bytes after the message's end.
    #[error("{0} bytes after the message")]
    Trailing(usize),
}

impl Message {
    fn kind(&self) -> u8 {
        match self {
            Message::Birth(_) => BIRTH,
            Message::Samples(_) => SAMPLES,
            Message::Ack(_) => ACK,
            Message::Rebirth(_) => REBIRTH,
        }
    }

    /// Appends the message's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind());
        match self {
            Message::Birth(m) => m.encode(out),
            Message::Samples(m) => m.encode(out),
            Message::Ack(m) => m.encode(out),
            Message::Rebirth(m) => m.encode(out),
        }
    }

    /// The message in `bytes`, which must hold exactly one.
    pub fn decode(bytes: &[u8]) -> Result<Message, MessageError> {
        let mut r = Reader::new(bytes);
        let message = match r.u8("kind")? {
            BIRTH => Message::Birth(Birth::decode(&mut r)?),
            SAMPLES => Message::Samples(Samples::decode(&mut r)?),
            ACK => Message::Ack(Ack::decode(&mut r)?),
            REBIRTH => Message::Rebirth(Rebirth::decode(&mut r)?),
            kind => return Err(MessageError::UnknownKind(kind)),
        };
        r.finish()?;
        Ok(message)
    }
}
