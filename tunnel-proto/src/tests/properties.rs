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

/// Channel ids near those a session has in use, so frames hit live channels.
fn near_channel() -> impl Strategy<Value = ChannelId> {
    (1u32..12).prop_map(|v| ChannelId::new(v).unwrap())
}

/// Frames a misbehaving but well-framed peer could send after the handshake.
fn session_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (
            near_channel(),
            prop_oneof![Just(ChannelKind::Message), Just(ChannelKind::Stream)],
            0u32..2000,
            bytes(8)
        )
            .prop_map(|(channel, kind, window, target)| Frame::Open(Open {
                channel,
                kind,
                window,
                target,
                metadata: Bytes::new()
            })),
        (near_channel(), 0u32..2000).prop_map(|(channel, window)| Frame::Accept { channel, window }),
        (near_channel(), code()).prop_map(|(channel, code)| Frame::Refuse { channel, code }),
        (near_channel(), bytes(600).prop_filter("non-empty", |b| !b.is_empty()))
            .prop_map(|(channel, data)| Frame::Data { channel, data }),
        (near_channel(), any::<u32>(), bytes(600)).prop_map(|(channel, correlation, payload)| Frame::Message {
            channel,
            correlation,
            payload
        }),
        near_channel().prop_map(|channel| Frame::Fin { channel }),
        (near_channel(), code()).prop_map(|(channel, code)| Frame::Reset { channel, code }),
        (proptest::option::of(near_channel()), 1u32..5000)
            .prop_map(|(channel, increment)| Frame::WindowUpdate { channel, increment }),
        any::<u64>().prop_map(Frame::Ping),
        any::<u64>().prop_map(Frame::Pong),
        (code(), 0u32..10_000).prop_map(|(code, drain_ms)| Frame::GoAway { code, drain_ms }),
    ]
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
        state in 0u8..7,
    ) {
        // In every state: hub before HELLO (0), agent before CHALLENGE (1),
        // hub before PROOF (2), agent before CONFIRM (3), established (4),
        // with a channel open (5), after a shutdown began (6).
        let mut pair = Builder::new().build();
        let now = pair.now;
        let mut wire = Vec::new();
        let mut hop = |from: &mut Session, to: &mut Session| {
            wire.clear();
            let _ = from.poll_transmit(now, &mut wire);
            to.handle_input(now, &wire);
        };
        if state == 2 || state == 3 {
            hop(&mut pair.agent, &mut pair.hub);
        }
        if state == 3 {
            hop(&mut pair.hub, &mut pair.agent);
        }
        let ch = match state {
            4 => { pair.drive(); None }
            5 | 6 => { pair.drive(); Some(pair.open_from_hub(ChannelKind::Stream)) }
            _ => None,
        };
        if state == 6 {
            pair.agent.shutdown(now, ErrorCode::Shutdown, std::time::Duration::from_secs(5));
        }
        let target = if state % 2 == 1 { &mut pair.agent } else { &mut pair.hub };
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

proptest! {
    #[test]
    fn well_framed_nonsense_keeps_the_books_balanced(
        frames in proptest::collection::vec((any::<bool>(), session_frame()), 1..40),
        app in proptest::collection::vec(0u8..6, 40),
    ) {
        let mut b = Builder::new();
        for c in [&mut b.agent_config, &mut b.hub_config] {
            c.channel_window(1000).unwrap();
            c.session_window(3000).unwrap();
            c.max_channels(6).unwrap();
            c.max_pending_opens(3).unwrap();
        }
        let mut pair = b.connect();
        let s = pair.open_from_hub(ChannelKind::Stream);
        let m = pair.open_from_hub(ChannelKind::Message);
        let a = pair.agent.open_channel(ChannelKind::Stream, b"x", b"").unwrap();
        pair.drive();
        let mut wire = Vec::new();
        for (i, (to_agent, frame)) in frames.iter().enumerate() {
            wire.clear();
            frame.encode(&mut wire);
            let target = if *to_agent { &mut pair.agent } else { &mut pair.hub };
            let was_closed = target.is_closed();
            target.handle_input(pair.now, &wire);
            target.check_invariants();
            if target.is_closed() && !was_closed {
                // A fault is answered with CLOSE, the last frame out.
                let mut out = Vec::new();
                let _ = target.poll_transmit(pair.now, &mut out);
                let mut d = FrameDecoder::new(1 << 24, 1 << 16);
                d.push(&out);
                let mut last = None;
                while let Ok(Some(raw)) = d.next_frame() {
                    last = Some(raw.header.frame_type);
                }
                prop_assert_eq!(last, Some(crate::frame::FrameType::Close));
            }
            // The applications act too: read, write, accept, finish, reset.
            let mut buf = [0u8; 300];
            for side in [&mut pair.agent, &mut pair.hub] {
                for ch in [s, m, a] {
                    match app[i] {
                        0 => { let _ = side.read(ch, &mut buf); }
                        1 => { let _ = side.recv_message(ch); }
                        2 => { let _ = side.send(ch, &buf); }
                        3 => { let _ = side.send_message(ch, 1, &buf[..20]); }
                        4 => { let _ = side.finish(ch); }
                        _ => { let _ = side.accept(ChannelId::new(2 * i as u32 + 2).unwrap()); }
                    }
                }
                side.check_invariants();
            }
            pair.step();
        }
        pair.run_for(std::time::Duration::from_secs(100));
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
