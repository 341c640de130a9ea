//! What goes to the peer: control frames first, then data from the
//! channels round-robin, one frame per channel per turn, each frame at most
//! the peer's frame limit, so one busy channel cannot hold up the others.

use std::time::Instant;

use super::channels::Chunk;
use super::Session;
use crate::frame::{put_header, Frame, FrameType};

/// `poll_transmit` stops adding data frames once it has appended this much.
const TRANSMIT_BATCH: usize = 64 * 1024;

impl Session {
    /// Appends bytes to send to the peer to `out` and returns how many; 0
    /// when there is nothing to send. Call until it returns 0 after every
    /// input, timeout and command.
    #[must_use = "the bytes appended must be written to the connection"]
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> usize {
        self.advance(now);
        let start = out.len();
        if let Some(seq) = self.pending_pong.take() {
            Frame::Pong(seq).encode(out);
        }
        out.extend_from_slice(&self.control);
        self.control.clear();
        if std::mem::take(&mut self.ping_unsent) {
            // The round trip is timed from when the PING leaves.
            if let Some((_, sent)) = &mut self.ping_outstanding {
                *sent = now;
            }
        }
        let mut freed = false;
        let batch_end = start + TRANSMIT_BATCH;
        while out.len() < batch_end {
            let Some(id) = self.send_queue.pop_front() else { break };
            let max_frame = self.peer_max_frame as usize;
            let Some(ch) = self.channels.get_mut(&id) else { continue };
            ch.scheduled = false;
            if !ch.wants_to_send() {
                continue;
            }
            match ch.outgoing.front_mut() {
                Some(Chunk::Data(bytes)) => {
                    let n = bytes.len().min(max_frame);
                    put_header(out, FrameType::Data, id.value(), n);
                    out.extend_from_slice(&bytes[..n]);
                    if n == bytes.len() {
                        ch.outgoing.pop_front();
                    } else {
                        let _ = bytes.split_to(n);
                    }
                    ch.outgoing_bytes -= n as u64;
                    self.queued_bytes -= n as u64;
                    self.stats.data_sent += n as u64;
                    freed = true;
                }
                Some(Chunk::Message(correlation, payload)) => {
                    crate::frame::encode_message(out, id, *correlation, payload);
                    let cost = (crate::frame::MESSAGE_OVERHEAD + payload.len()) as u64;
                    ch.outgoing.pop_front();
                    ch.outgoing_bytes -= cost;
                    self.queued_bytes -= cost;
                    self.stats.data_sent += cost;
                    freed = true;
                }
                None => {
                    Frame::Fin { channel: id }.encode(out);
                    ch.fin_sent = true;
                }
            }
            if ch.wants_to_send() {
                ch.scheduled = true;
                self.send_queue.push_back(id);
            } else if ch.fin_sent {
                self.retire_if_done(id);
            }
        }
        if freed && !self.blocked.is_empty() {
            self.wake_blocked();
        }
        let n = out.len() - start;
        self.stats.bytes_sent += n as u64;
        n
    }
}
