//! Property tests: frame round trips, arbitrary input, chunking
//! independence, and bulk transfer with tiny windows.

use bytes::Bytes;
use proptest::prelude::*;

use super::util::*;
use crate::frame::{Challenge, Frame, FrameDecoder, Hello, Open};
use crate::*;

fn channel() -> impl Strategy<Value = ChannelId> {
    (1u32..).prop_map(|v| ChannelId::new(v).unwrap())
}

fn code() -> impl Strategy<Value = ErrorCode> {
    any::<u32>().prop_map(ErrorCode::from_u32)
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (
            proptest::collection::vec(any::<u16>(), 1..16),
            1024u32..,
            any::<u32>(),
            any::<[u8; 32]>(),
            "[!-~]{1,128}"
        )
            .prop_map(|(versions, max_frame, session_window, nonce, id)| Frame::Hello(Hello {
                versions,
                max_frame,
                session_window,
                nonce,
                agent: AgentId::new(&id).unwrap(),
            })),
        (
            any::<u16>(),
            1024u32..,
            any::<u32>(),
            any::<[u8; 32]>(),
            any::<[u8; 16]>()
        )
            .prop_map(
                |(version, max_frame, session_window, nonce, sid)| Frame::Challenge(Challenge {
                    version,
                    max_frame,
                    session_window,
                    nonce,
                    session: SessionId(sid),
                })
            ),
        any::<[u8; 32]>().prop_map(Frame::Proof),
        any::<[u8; 32]>().prop_map(Frame::Confirm),
        (
            channel(),
            prop_oneof![Just(ChannelKind::Message), Just(ChannelKind::Stream)],
            any::<u32>(),
            bytes(255),
            bytes(300)
        )
            .prop_map(|(channel, kind, window, target, metadata)| Frame::Open(Open {
                channel,
                kind,
                window,
                target,
                metadata
            })),
        (channel(), any::<u32>()).prop_map(|(channel, window)| Frame::Accept { channel, window }),
        (channel(), code()).prop_map(|(channel, code)| Frame::Refuse { channel, code }),
        (channel(), bytes(2000).prop_filter("non-empty", |b| !b.is_empty()))
            .prop_map(|(channel, data)| Frame::Data { channel, data }),
        (channel(), any::<u32>(), bytes(2000)).prop_map(|(channel, correlation, payload)| Frame::Message {
            channel,
            correlation,
            payload
        }),
        channel().prop_map(|channel| Frame::Fin { channel }),
        (channel(), code()).prop_map(|(channel, code)| Frame::Reset { channel, code }),
        (proptest::option::of(channel()), 1u32..)
            .prop_map(|(channel, increment)| Frame::WindowUpdate { channel, increment }),
        any::<u64>().prop_map(Frame::Ping),
        any::<u64>().prop_map(Frame::Pong),
        (code(), any::<u32>()).prop_map(|(code, drain_ms)| Frame::GoAway { code, drain_ms }),
        (code(), bytes(256)).prop_map(|(code, reason)| Frame::Close { code, reason }),
    ]
}

proptest! {
    #[test]
    fn every_frame_decodes_to_itself(frames in proptest::collection::vec(frame(), 1..8), cut in 1usize..64) {
        let mut wire = Vec::new();
        for f in &frames {
            f.encode(&mut wire);
        }
        // Fed in pieces of `cut` bytes.
        let mut d = FrameDecoder::new(1 << 20, 1 << 16);
        let mut out = Vec::new();
        for piece in wire.chunks(cut) {
            d.push(piece);
            while let Some(raw) = d.next_frame().unwrap() {
                out.push(Frame::decode(raw).unwrap());
            }
        }
        prop_assert_eq!(out, frames);
        prop_assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_end_cleanly(
        data in proptest::collection::vec(any::<u8>(), 0..2000),
        cut in 1usize..300,
        state in 0u8..4,
    ) {
        // In every state: hub before HELLO, agent before CHALLENGE, both established, with a channel open.
        let mut pair = Builder::new().build();
        let ch = match state {
            0 | 1 => None,
            2 => { pair.drive(); None }
            _ => { pair.drive(); Some(pair.open_from_hub(ChannelKind::Stream)) }
        };
        let target = if state == 1 { &mut pair.agent } else { &mut pair.hub };
        for piece in data.chunks(cut) {
            target.handle_input(pair.now, piece);
        }
        if target.is_closed() {
            // A clean close: CLOSE queued, the error kept, no timers left.
            let mut out = Vec::new();
            let _ = target.poll_transmit(pair.now, &mut out);
            prop_assert!(target.is_drained());
            prop_assert!(target.poll_timeout().is_none());
            prop_assert!(target.error().is_some());
        }
        if let Some(ch) = ch {
            let _ = pair.hub.send(ch, b"still callable");
        }
        pair.run_for(std::time::Duration::from_secs(60));
    }

    #[test]
    fn bulk_both_ways_with_tiny_windows_never_deadlocks(
        window in 1u32..64,
        session_extra in 0u32..64,
        max_chunk in 1usize..40,
        seed in any::<u64>(),
        len in 1usize..3000,
    ) {
        let mut b = Builder::new();
        for c in [&mut b.agent_config, &mut b.hub_config] {
            c.channel_window(window).unwrap();
            c.session_window(window + session_extra).unwrap();
            c.max_send_buffer(u64::from(window) * 2).unwrap();
        }
        b.chunking = Chunking::Random { seed, max: max_chunk };
        let mut pair = b.connect();
        let ch = pair.open_from_hub(ChannelKind::Stream);
        let up: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let down: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let (mut sent_up, mut sent_down) = (0, 0);
        let (mut got_up, mut got_down) = (Vec::new(), Vec::new());
        let mut buf = [0u8; 17];
        for _ in 0..200_000 {
            if sent_up < len {
                sent_up += pair.agent.send(ch, &up[sent_up..]).unwrap_or(0);
            }
            if sent_down < len {
                sent_down += pair.hub.send(ch, &down[sent_down..]).unwrap_or(0);
            }
            pair.step();
            if let Ok(n) = pair.hub.read(ch, &mut buf) { got_up.extend_from_slice(&buf[..n]); }
            if let Ok(n) = pair.agent.read(ch, &mut buf) { got_down.extend_from_slice(&buf[..n]); }
            if got_up.len() == len && got_down.len() == len {
                break;
            }
            // Nothing moved: let time pass for the bytes in flight.
            pair.run_for(std::time::Duration::from_millis(10));
        }
        prop_assert_eq!(got_up, up);
        prop_assert_eq!(got_down, down);
    }
}

/// Runs a fixed exchange with the given chunking; returns what each side
/// received and the events each reported.
fn scripted(chunking: Chunking) -> (Vec<u8>, Vec<u8>, Vec<Event>, Vec<Event>) {
    let mut b = Builder::new();
    b.chunking = chunking;
    b.agent_config.max_frame_size(1024).unwrap();
    let mut pair = b.build();
    pair.record = true;
    pair.drive();
    let s = pair.open_from_hub(ChannelKind::Stream);
    let m = pair.open_from_hub(ChannelKind::Message);
    pair.hub.send(s, &[9; 5000]).unwrap();
    pair.hub.send_message(m, 1, b"request").unwrap();
    pair.agent.send_message(m, 1, b"response").unwrap();
    pair.hub.finish(s).unwrap();
    pair.drive();
    let mut buf = vec![0; 6000];
    let n = pair.agent.read(s, &mut buf).unwrap();
    assert_eq!(n, 5000);
    pair.drive();
    let agent_events = pair.agent_events.drain(..).collect();
    let hub_events = pair.hub_events.drain(..).collect();
    (
        pair.to_hub.delivered.clone(),
        pair.to_agent.delivered.clone(),
        agent_events,
        hub_events,
    )
}

#[test]
fn delivery_byte_by_byte_equals_delivery_in_one_piece() {
    let whole = scripted(Chunking::Whole);
    let bytewise = scripted(Chunking::Fixed(1));
    let random = scripted(Chunking::Random { seed: 42, max: 100 });
    assert_eq!(whole, bytewise);
    assert_eq!(whole, random);
}
