//! A misbehaving peer: every fault closes the session with a code, never a panic.

use super::util::*;
use crate::frame::{Frame, FrameError, FrameType, Header};
use crate::*;

fn established_agent_fed(bytes: &[u8]) -> Pair {
    let mut pair = Pair::connected();
    pair.agent.handle_input(pair.now, bytes);
    pair
}

fn header(len: u32, frame_type: u8, channel: u32) -> [u8; 8] {
    Header {
        len,
        frame_type: FrameType::from_u8(frame_type),
        channel,
    }
    .to_bytes()
}

#[test]
fn oversized_frame_is_refused_from_its_header() {
    // Only the 8-byte header arrives: the length alone condemns it.
    let mut pair = established_agent_fed(&header(16 * 1024 + 1, 0x13, 1));
    let expected = FrameError::TooLarge {
        frame_type: FrameType::Data,
        len: 16 * 1024 + 1,
        max: 16 * 1024,
    };
    assert_eq!(
        pair.agent.error(),
        Some(&SessionError::Violation(Violation::Frame(expected)))
    );
    pair.drive();
    assert!(matches!(
        pair.hub.error(),
        Some(SessionError::Remote {
            code: ErrorCode::FrameSizeError,
            ..
        })
    ));
}

#[test]
fn oversized_hello_is_refused_before_buffering() {
    let mut pair = Builder::new().build();
    pair.hub.handle_input(pair.now, &header(100_000, 0x01, 0));
    assert!(matches!(
        pair.hub.error(),
        Some(SessionError::Violation(Violation::Frame(FrameError::TooLarge {
            frame_type: FrameType::Hello,
            ..
        })))
    ));
}

#[test]
fn unknown_frame_type_closes_with_protocol_error() {
    let mut pair = established_agent_fed(&header(0, 0x7F, 0));
    assert_eq!(
        pair.agent.error(),
        Some(&SessionError::Violation(Violation::Frame(FrameError::UnknownType(
            0x7F
        ))))
    );
    pair.drive();
    assert!(matches!(
        pair.hub.error(),
        Some(SessionError::Remote {
            code: ErrorCode::ProtocolError,
            ..
        })
    ));
}

#[test]
fn wrong_channel_and_wrong_length_are_refused() {
    let pair = established_agent_fed(&header(8, 0x20, 3));
    assert!(matches!(
        pair.agent.error(),
        Some(SessionError::Violation(Violation::Frame(FrameError::BadChannel { .. })))
    ));
    let pair = established_agent_fed(&header(7, 0x20, 0));
    assert!(matches!(
        pair.agent.error(),
        Some(SessionError::Violation(Violation::Frame(FrameError::BadLength { .. })))
    ));
    let pair = established_agent_fed(&header(0, 0x13, 1));
    assert!(matches!(
        pair.agent.error(),
        Some(SessionError::Violation(Violation::Frame(FrameError::BadLength { .. })))
    ));
}

#[test]
fn frames_for_channels_never_opened_are_violations() {
    let bytes = Frame::Data {
        channel: ChannelId::new(4).unwrap(),
        data: vec![1].into(),
    }
    .to_vec();
    let pair = established_agent_fed(&bytes);
    assert_eq!(
        pair.agent.error(),
        Some(&SessionError::Violation(Violation::NotOpened(
            ChannelId::new(4).unwrap()
        )))
    );
}

#[test]
fn open_with_the_wrong_parity_or_a_reused_id_is_a_violation() {
    let open = |id: u32| {
        Frame::Open(crate::frame::Open {
            channel: ChannelId::new(id).unwrap(),
            kind: ChannelKind::Stream,
            window: 10,
            target: Default::default(),
            metadata: Default::default(),
        })
        .to_vec()
    };
    // The hub may only open even ids.
    let pair = established_agent_fed(&open(3));
    assert!(matches!(
        pair.agent.error(),
        Some(SessionError::Violation(Violation::BadOpenId(_)))
    ));
    let mut twice = open(4);
    twice.extend(open(4));
    let pair = established_agent_fed(&twice);
    assert!(matches!(
        pair.agent.error(),
        Some(SessionError::Violation(Violation::BadOpenId(_)))
    ));
}

#[test]
fn handshake_frames_after_the_handshake_are_violations() {
    let bytes = Frame::Proof([0; 32]).to_vec();
    let pair = established_agent_fed(&bytes);
    assert_eq!(
        pair.agent.error(),
        Some(&SessionError::Violation(Violation::Unexpected(FrameType::Proof)))
    );
}

#[test]
fn garbage_instead_of_hello_is_refused() {
    let mut pair = Builder::new().build();
    pair.hub.handle_input(pair.now, b"GET / HTTP/1.1\r\nHost: hub\r\n\r\n");
    assert!(pair.hub.is_closed());
    let mut pair = Builder::new().build();
    // A Modbus request to the wrong port.
    pair.hub.handle_input(pair.now, &[0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 10]);
    assert!(pair.hub.is_closed());
}

#[test]
fn a_peer_that_never_reads_refusals_is_cut_off() {
    let mut b = Builder::new();
    b.agent_config.max_channels(1).unwrap();
    let mut pair = b.connect();
    let mut flood = Vec::new();
    for i in 0..40_000u32 {
        hub_open(i, &mut flood);
    }
    pair.agent.handle_input(pair.now, &flood);
    assert_eq!(pair.agent.error(), Some(&SessionError::Violation(Violation::Backlog)));
}

/// Found by the `roundtrip_tunnel` fuzz target: a HELLO built with more
/// versions than the frame carries lost the extra ones silently, undocumented.
/// The limit is now public and documented; the first `MAX_VERSIONS` are sent.
#[test]
fn hello_sends_at_most_max_versions() {
    use crate::frame::{FrameDecoder, Hello, MAX_VERSIONS};
    let hello = Hello {
        versions: (1..=MAX_VERSIONS as u16 + 1).collect(),
        max_frame: 1024,
        session_window: 65536,
        nonce: [7; 32],
        agent: AgentId::new("plant-7").unwrap(),
    };
    let mut d = FrameDecoder::new(1 << 16, 1 << 16);
    d.push(&Frame::Hello(hello.clone()).to_vec());
    let Frame::Hello(back) = Frame::decode(d.next_frame().unwrap().unwrap()).unwrap() else {
        panic!("not a HELLO");
    };
    assert_eq!(back.versions, hello.versions[..MAX_VERSIONS]);
}

/// Found by the `roundtrip_tunnel` fuzz target: a CLOSE built with a reason
/// longer than the frame carries lost the rest silently, undocumented. The
/// limit is documented; the first `MAX_REASON_LEN` bytes are sent.
#[test]
fn close_sends_at_most_max_reason_len() {
    use crate::frame::{FrameDecoder, MAX_REASON_LEN};
    let close = Frame::Close {
        code: ErrorCode::Shutdown,
        reason: bytes::Bytes::from(vec![b'x'; MAX_REASON_LEN + 10]),
    };
    let mut d = FrameDecoder::new(1 << 16, 1 << 16);
    d.push(&close.to_vec());
    let Frame::Close { reason, .. } = Frame::decode(d.next_frame().unwrap().unwrap()).unwrap() else {
        panic!("not a CLOSE");
    };
    assert_eq!(reason.len(), MAX_REASON_LEN);
}

/// Found by the `roundtrip_tunnel` fuzz target: an OPEN built with a target
/// longer than the frame carries lost the rest silently, undocumented. The
/// limit is documented; the first `MAX_TARGET_LEN` bytes are sent (the
/// session's `open_channel` refuses a longer target with `TargetTooLong`).
#[test]
fn open_sends_at_most_max_target_len() {
    use crate::frame::{FrameDecoder, Open};
    let open = Frame::Open(Open {
        channel: ChannelId::new(2).unwrap(),
        kind: ChannelKind::Stream,
        window: 1000,
        target: bytes::Bytes::from(vec![b't'; Open::MAX_TARGET_LEN + 1]),
        metadata: bytes::Bytes::from_static(b"m"),
    });
    let mut d = FrameDecoder::new(1 << 16, 1 << 16);
    d.push(&open.to_vec());
    let Frame::Open(back) = Frame::decode(d.next_frame().unwrap().unwrap()).unwrap() else {
        panic!("not an OPEN");
    };
    assert_eq!(back.target.len(), Open::MAX_TARGET_LEN);
    assert_eq!(&back.metadata[..], b"m");
}

#[test]
fn a_second_fin_resets_the_channel() {
    let mut pair = Pair::connected();
    let ch = pair.open_from_hub(ChannelKind::Stream);
    let fin = Frame::Fin { channel: ch }.to_vec();
    pair.agent.handle_input(pair.now, &fin);
    assert!(pair.agent.is_open(ch), "one FIN ends the peer's direction only");
    assert_eq!(pair.agent.stats().channels_reset, 0);
    pair.agent.handle_input(pair.now, &fin);
    assert_eq!(
        std::iter::from_fn(|| pair.agent.poll_event()).find(|e| matches!(e, Event::ChannelReset { .. })),
        Some(Event::ChannelReset {
            channel: ch,
            code: ErrorCode::ProtocolError,
            by_peer: false,
        })
    );
    assert_eq!(
        pair.agent.stats().channels_reset,
        1,
        "resets for the peer's faults are counted"
    );
    assert!(pair.agent.is_established(), "the session lives on");
}

#[test]
fn a_fin_before_the_channel_is_accepted_resets_it() {
    let mut pair = Pair::connected();
    let ch = pair.hub.open_channel(ChannelKind::Stream, b"plc-1", b"").unwrap();
    pair.drive();
    let fin = Frame::Fin { channel: ch }.to_vec();
    pair.agent.handle_input(pair.now, &fin);
    let reset = std::iter::from_fn(|| pair.agent.poll_event()).find(|e| matches!(e, Event::ChannelReset { .. }));
    assert!(matches!(reset, Some(Event::ChannelReset { channel, .. }) if channel == ch));
}

#[test]
fn a_peer_that_never_reads_the_resets_it_causes_is_cut_off() {
    // Each pair of frames opens a channel and breaks its rules at once
    // (data before the channel is accepted): each costs a RESET.
    let mut pair = Pair::connected();
    let mut flood = Vec::new();
    for i in 0..40_000u32 {
        let channel = hub_open(i, &mut flood);
        Frame::Data {
            channel,
            data: vec![0].into(),
        }
        .encode(&mut flood);
    }
    pair.agent.handle_input(pair.now, &flood);
    assert_eq!(pair.agent.error(), Some(&SessionError::Violation(Violation::Backlog)));
}
