//! HELLO, CHALLENGE, PROOF and CONFIRM: the four handshake frames.

use bytes::{BufMut, Bytes};

use super::{put_header, FrameError, FrameType, Malformed};
use crate::id::{AgentId, SessionId};

/// Length of a handshake nonce.
pub const NONCE_LEN: usize = 32;
/// Length of a PROOF or CONFIRM MAC (HMAC-SHA256).
pub const MAC_LEN: usize = 32;
/// The first bytes of every HELLO.
pub(crate) const MAGIC: [u8; 8] = *b"OPTUNNEL";
/// The most versions a HELLO may offer.
pub const MAX_VERSIONS: usize = 16;
/// The smallest frame-size limit a peer may announce.
pub const MIN_FRAME_LIMIT: u32 = 1024;

/// HELLO: the agent's opening frame.
///
/// `magic(8) count(1) versions(2*count) max_frame(4) session_window(4) nonce(32) id_len(1) id`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Versions the agent speaks, in its order of preference: 1 to
    /// [`MAX_VERSIONS`]. Encoding sends only the first [`MAX_VERSIONS`].
    pub versions: Vec<u16>,
    /// The largest frame payload the agent accepts.
    pub max_frame: u32,
    /// The agent's session-wide receive window.
    pub session_window: u32,
    /// The agent's fresh nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Who the agent says it is.
    pub agent: AgentId,
}

impl Hello {
    pub(crate) fn decode(p: &[u8]) -> Result<Self, FrameError> {
        let bad = |field| FrameError::Malformed {
            frame_type: FrameType::Hello,
            field,
        };
        let (magic, rest) = p.split_first_chunk::<8>().ok_or(bad(Malformed::Magic))?;
        if *magic != MAGIC {
            return Err(bad(Malformed::Magic));
        }
        let (&count, rest) = rest.split_first().ok_or(bad(Malformed::Versions))?;
        let count = usize::from(count);
        if count == 0 || count > MAX_VERSIONS || rest.len() < 2 * count {
            return Err(bad(Malformed::Versions));
        }
        let (list, rest) = rest.split_at(2 * count);
        let versions = list.chunks_exact(2).map(|v| u16::from_be_bytes([v[0], v[1]])).collect();
        let (max_frame, rest) = rest.split_first_chunk::<4>().ok_or(bad(Malformed::FrameLimit))?;
        let max_frame = u32::from_be_bytes(*max_frame);
        if max_frame < MIN_FRAME_LIMIT {
            return Err(bad(Malformed::FrameLimit));
        }
        let (window, rest) = rest.split_first_chunk::<4>().ok_or(bad(Malformed::AgentId))?;
        let (nonce, rest) = rest.split_first_chunk::<NONCE_LEN>().ok_or(bad(Malformed::AgentId))?;
        let (&id_len, rest) = rest.split_first().ok_or(bad(Malformed::AgentId))?;
        if rest.len() < usize::from(id_len) {
            return Err(bad(Malformed::AgentId));
        }
        if rest.len() > usize::from(id_len) {
            return Err(bad(Malformed::Trailing));
        }
        let agent = AgentId::from_bytes(Bytes::copy_from_slice(rest)).map_err(|_| bad(Malformed::AgentId))?;
        Ok(Hello {
            versions,
            max_frame,
            session_window: u32::from_be_bytes(*window),
            nonce: *nonce,
            agent,
        })
    }

    pub(crate) fn encode(&self, out: &mut impl BufMut) {
        let versions = &self.versions[..self.versions.len().min(MAX_VERSIONS)];
        let id = self.agent.as_bytes();
        let len = 8 + 1 + 2 * versions.len() + 4 + 4 + NONCE_LEN + 1 + id.len();
        put_header(out, FrameType::Hello, 0, len);
        out.put_slice(&MAGIC);
        out.put_u8(versions.len() as u8);
        for v in versions {
            out.put_u16(*v);
        }
        out.put_u32(self.max_frame);
        out.put_u32(self.session_window);
        out.put_slice(&self.nonce);
        out.put_u8(id.len() as u8);
        out.put_slice(id);
    }
}

/// CHALLENGE: the hub's answer to HELLO.
///
/// `version(2) max_frame(4) session_window(4) nonce(32) session_id(16)`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The version chosen from the agent's list.
    pub version: u16,
    /// The largest frame payload the hub accepts.
    pub max_frame: u32,
    /// The hub's session-wide receive window.
    pub session_window: u32,
    /// The hub's fresh nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The session's id.
    pub session: SessionId,
}

impl Challenge {
    pub(crate) fn decode(p: &[u8]) -> Result<Self, FrameError> {
        let Ok(p) = <&[u8; 58]>::try_from(p) else {
            return Err(FrameError::BadLength {
                frame_type: FrameType::Challenge,
                len: p.len() as u32,
            });
        };
        let max_frame = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
        if max_frame < MIN_FRAME_LIMIT {
            return Err(FrameError::Malformed {
                frame_type: FrameType::Challenge,
                field: Malformed::FrameLimit,
            });
        }
        let mut nonce = [0; NONCE_LEN];
        nonce.copy_from_slice(&p[10..42]);
        let mut session = [0; 16];
        session.copy_from_slice(&p[42..58]);
        Ok(Challenge {
            version: u16::from_be_bytes([p[0], p[1]]),
            max_frame,
            session_window: u32::from_be_bytes([p[6], p[7], p[8], p[9]]),
            nonce,
            session: SessionId(session),
        })
    }

    pub(crate) fn encode(&self, out: &mut impl BufMut) {
        put_header(out, FrameType::Challenge, 0, 58);
        out.put_u16(self.version);
        out.put_u32(self.max_frame);
        out.put_u32(self.session_window);
        out.put_slice(&self.nonce);
        out.put_slice(&self.session.0);
    }
}

pub(super) fn mac(p: &[u8], frame_type: FrameType) -> Result<[u8; MAC_LEN], FrameError> {
    <[u8; MAC_LEN]>::try_from(p).map_err(|_| FrameError::BadLength {
        frame_type,
        len: p.len() as u32,
    })
}
