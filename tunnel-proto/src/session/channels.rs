//! One channel's state: how it was opened, what waits to be sent, what waits
//! to be read, and its two flow-control windows.
//!
//! ```text
//!  opener:   open_channel ─> Opening ──ACCEPT──> Open ──FIN both ways, read──> closed
//!                               └──REFUSE──> closed
//!  acceptor: OPEN ─> Pending ──accept──> Open ──...
//!                       └──refuse──> closed
//!  any state ──RESET (either way)──> closed
//! ```

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use super::flow::{RecvWindow, SendWindow};
use crate::id::ChannelKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// This side sent OPEN; waiting for ACCEPT or REFUSE.
    Opening,
    /// The peer sent OPEN; waiting for the application.
    Pending,
    /// Accepted.
    Open,
}

/// One unit queued to send.
#[derive(Debug, Clone)]
pub(crate) enum Chunk {
    Data(Bytes),
    Message(u32, Bytes),
}

impl Chunk {
    /// Flow-control cost: the frame payload it takes.
    pub(crate) fn cost(&self) -> u64 {
        match self {
            Chunk::Data(b) => b.len() as u64,
            Chunk::Message(_, b) => (crate::frame::MESSAGE_OVERHEAD + b.len()) as u64,
        }
    }
}

/// What one DATA or MESSAGE frame carried, borrowed from the input.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Incoming<'a> {
    Data(&'a [u8]),
    Message(u32, &'a [u8]),
}

impl Incoming<'_> {
    /// Flow-control cost: the frame payload it took.
    pub(crate) fn cost(&self) -> u64 {
        match self {
            Incoming::Data(b) => b.len() as u64,
            Incoming::Message(_, b) => (crate::frame::MESSAGE_OVERHEAD + b.len()) as u64,
        }
    }

    pub(crate) fn kind(&self) -> ChannelKind {
        match self {
            Incoming::Data(_) => ChannelKind::Stream,
            Incoming::Message(..) => ChannelKind::Message,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) kind: ChannelKind,
    pub(crate) state: State,
    // Sending.
    pub(crate) send: SendWindow,
    pub(crate) outgoing: VecDeque<Chunk>,
    pub(crate) outgoing_bytes: u64,
    pub(crate) fin_queued: bool,
    pub(crate) fin_sent: bool,
    /// In the session's round-robin queue.
    pub(crate) scheduled: bool,
    /// A send returned `Blocked`; owe a `Writable` event.
    pub(crate) blocked: bool,
    // Receiving.
    pub(crate) recv: RecvWindow,
    /// Received and not yet read, contiguous so that many tiny frames cost
    /// no more memory than their bytes: stream bytes as they came, or
    /// message records `correlation(4) length(4) payload`.
    pub(crate) incoming: BytesMut,
    /// Flow-control cost of what `incoming` holds.
    pub(crate) incoming_bytes: u64,
    pub(crate) fin_received: bool,
    pub(crate) fin_delivered: bool,
    /// A `Readable` event is out and not yet answered by a read.
    pub(crate) readable_signalled: bool,
}

impl Channel {
    pub(crate) fn new(kind: ChannelKind, state: State, recv_window: u32, send_window: u32) -> Self {
        Channel {
            kind,
            state,
            send: SendWindow::new(send_window),
            outgoing: VecDeque::new(),
            outgoing_bytes: 0,
            fin_queued: false,
            fin_sent: false,
            scheduled: false,
            blocked: false,
            recv: RecvWindow::new(recv_window),
            incoming: BytesMut::new(),
            incoming_bytes: 0,
            fin_received: false,
            fin_delivered: false,
            readable_signalled: false,
        }
    }

    /// Stores what a DATA or MESSAGE frame carried.
    pub(crate) fn push_incoming(&mut self, chunk: Incoming<'_>) {
        match chunk {
            Incoming::Data(b) => self.incoming.extend_from_slice(b),
            Incoming::Message(correlation, payload) => {
                self.incoming.reserve(8 + payload.len());
                self.incoming.put_u32(correlation);
                self.incoming.put_u32(payload.len() as u32);
                self.incoming.extend_from_slice(payload);
            }
        }
        self.incoming_bytes += chunk.cost();
    }

    /// Takes the next message record, if one is held.
    pub(crate) fn pop_message(&mut self) -> Option<(u32, Bytes)> {
        let header = self.incoming.first_chunk::<8>()?;
        let correlation = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut record = self.incoming.split_to(8 + len);
        let payload = record.split_off(8).freeze();
        self.incoming_bytes -= (crate::frame::MESSAGE_OVERHEAD + len) as u64;
        Some((correlation, payload))
    }

    /// Takes up to `max` stream bytes, if any are held.
    pub(crate) fn pop_data(&mut self, max: usize) -> Option<Bytes> {
        if self.incoming.is_empty() {
            return None;
        }
        let n = max.min(self.incoming.len());
        self.incoming_bytes -= n as u64;
        Some(self.incoming.split_to(n).freeze())
    }

    /// Both directions finished and the application has seen the peer's FIN.
    pub(crate) fn is_done(&self) -> bool {
        self.fin_sent && self.fin_delivered
    }

    /// Whether a frame is waiting to be sent (data, or the FIN after it).
    pub(crate) fn wants_to_send(&self) -> bool {
        self.state == State::Open && (!self.outgoing.is_empty() || (self.fin_queued && !self.fin_sent))
    }
}
