//! Each length rule of HELLO, at its boundary: the field a broken frame is
//! refused for, and the frame one byte away that is accepted; and the
//! decoder's buffering.

use super::handshake::{Challenge, Hello, MAX_VERSIONS, MIN_FRAME_LIMIT, NONCE_LEN};
use bytes::Bytes;

use super::{Frame, FrameDecoder, FrameError, FrameType, Malformed, HEADER_LEN};

/// A HELLO payload from its fields; `id_len` may differ from `id.len()`.
fn hello(versions: &[u16], count: usize, max_frame: u32, id: &[u8], id_len: usize) -> Vec<u8> {
    let mut p = b"OPTUNNEL".to_vec();
    p.push(count as u8);
    for v in versions {
        p.extend_from_slice(&v.to_be_bytes());
    }
    p.extend_from_slice(&max_frame.to_be_bytes());
    p.extend_from_slice(&65536u32.to_be_bytes());
    p.extend_from_slice(&[7; NONCE_LEN]);
    p.push(id_len as u8);
    p.extend_from_slice(id);
    p
}

fn refused(p: &[u8]) -> Malformed {
    match Hello::decode(p) {
        Err(FrameError::Malformed {
            frame_type: FrameType::Hello,
            field,
        }) => field,
        other => panic!("not refused as a malformed HELLO: {other:?}"),
    }
}

#[test]
fn a_well_formed_hello_decodes_to_its_fields() {
    let h = Hello::decode(&hello(&[1, 2], 2, MIN_FRAME_LIMIT, b"plant-7", 7)).unwrap();
    assert_eq!(h.versions, [1, 2]);
    assert_eq!(h.max_frame, MIN_FRAME_LIMIT);
    assert_eq!(h.session_window, 65536);
    assert_eq!(h.nonce, [7; NONCE_LEN]);
    assert_eq!(h.agent.as_str(), "plant-7");
}

#[test]
fn the_version_list_is_one_to_sixteen_entries_all_present() {
    let all: Vec<u16> = (1..=17).collect();
    assert_eq!(
        Hello::decode(&hello(&all[..MAX_VERSIONS], MAX_VERSIONS, 4096, b"a", 1))
            .unwrap()
            .versions
            .len(),
        MAX_VERSIONS
    );
    // Each rule alone: an empty list, one too many, a list cut short.
    assert_eq!(refused(&hello(&[], 0, 4096, b"a", 1)), Malformed::Versions);
    assert_eq!(refused(&hello(&all, 17, 4096, b"a", 1)), Malformed::Versions);
    let mut short = b"OPTUNNEL".to_vec();
    short.extend_from_slice(&[2, 0, 1]);
    assert_eq!(refused(&short), Malformed::Versions);
    assert_eq!(refused(b"OPTUNNEL"), Malformed::Versions);
    // Three versions need six bytes: five are a list cut short.
    let mut five = b"OPTUNNEL".to_vec();
    five.extend_from_slice(&[3, 0, 1, 0, 2, 0]);
    assert_eq!(refused(&five), Malformed::Versions);
    // A whole list and nothing after it: the list is fine, the frame
    // limit is what is missing.
    let mut list_only = b"OPTUNNEL".to_vec();
    list_only.extend_from_slice(&[2, 0, 1, 0, 2]);
    assert_eq!(refused(&list_only), Malformed::FrameLimit);
}

#[test]
fn a_challenge_announces_at_least_the_minimum_frame_limit() {
    let challenge = |max_frame: u32| {
        let mut p = vec![0, 1];
        p.extend_from_slice(&max_frame.to_be_bytes());
        p.extend_from_slice(&65536u32.to_be_bytes());
        p.extend_from_slice(&[5; NONCE_LEN]);
        p.extend_from_slice(&[6; 16]);
        Challenge::decode(&p)
    };
    assert_eq!(challenge(MIN_FRAME_LIMIT).unwrap().max_frame, MIN_FRAME_LIMIT);
    assert_eq!(challenge(MIN_FRAME_LIMIT + 1).unwrap().max_frame, MIN_FRAME_LIMIT + 1);
    for low in [0, MIN_FRAME_LIMIT - 1] {
        assert!(matches!(
            challenge(low),
            Err(FrameError::Malformed {
                frame_type: FrameType::Challenge,
                field: Malformed::FrameLimit,
            })
        ));
    }
}

#[test]
fn the_frame_limit_is_at_least_the_minimum() {
    assert!(Hello::decode(&hello(&[1], 1, MIN_FRAME_LIMIT, b"a", 1)).is_ok());
    assert_eq!(
        refused(&hello(&[1], 1, MIN_FRAME_LIMIT - 1, b"a", 1)),
        Malformed::FrameLimit
    );
    let mut cut = b"OPTUNNEL".to_vec();
    cut.extend_from_slice(&[1, 0, 1, 0, 0]);
    assert_eq!(refused(&cut), Malformed::FrameLimit);
}

#[test]
fn the_agent_id_fills_the_rest_exactly() {
    assert_eq!(refused(&hello(&[1], 1, 4096, b"plant-7", 8)), Malformed::AgentId);
    let mut trailing = hello(&[1], 1, 4096, b"plant-7", 7);
    trailing.push(b'x');
    assert_eq!(refused(&trailing), Malformed::Trailing);
    assert_eq!(refused(&hello(&[1], 1, 4096, b"", 0)), Malformed::AgentId);
    assert_eq!(refused(&hello(&[1], 1, 4096, b"a b", 3)), Malformed::AgentId);
    // Cut inside the window, the nonce, or before the id's length.
    let whole = hello(&[1], 1, 4096, b"a", 1);
    for cut in [8 + 1 + 2 + 4 + 2, 8 + 1 + 2 + 4 + 4 + 10, 8 + 1 + 2 + 4 + 4 + NONCE_LEN] {
        assert_eq!(refused(&whole[..cut]), Malformed::AgentId, "cut at {cut}");
    }
}

#[test]
fn the_magic_comes_first() {
    assert_eq!(refused(b""), Malformed::Magic);
    assert_eq!(refused(b"OPTUNNE"), Malformed::Magic);
    let mut wrong = hello(&[1], 1, 4096, b"a", 1);
    wrong[0] = b'X';
    assert_eq!(refused(&wrong), Malformed::Magic);
}

/// The decoder holds a frame's bytes until the frame is whole, makes room
/// for its whole payload once the header has announced it, and forgets
/// everything, a header already read included, when cleared.
#[test]
fn the_decoder_holds_a_frame_until_whole_and_forgets_it_when_cleared() {
    let data = Frame::Data {
        channel: crate::ChannelId::new(2).unwrap(),
        data: Bytes::from(vec![7u8; 10_000]),
    };
    let mut wire = Vec::new();
    data.encode(&mut wire);
    let mut d = FrameDecoder::new(1 << 20, 1 << 16);
    d.push(&wire[..100]);
    assert_eq!(d.next_frame(), Ok(None));
    assert_eq!(d.buffered(), 100 - HEADER_LEN);
    assert!(d.capacity() >= 10_000, "room for the payload: {}", d.capacity());
    d.push(&wire[100..wire.len() - 1]);
    assert_eq!(d.next_frame(), Ok(None));
    assert_eq!(d.buffered(), wire.len() - 1 - HEADER_LEN);
    d.push(&wire[wire.len() - 1..]);
    let raw = d.next_frame().unwrap().expect("the whole frame");
    assert_eq!(Frame::decode(raw), Ok(data));
    assert_eq!(d.buffered(), 0);

    // A header read, then cleared: the next bytes start a new frame.
    d.push(&wire[..20]);
    assert_eq!(d.next_frame(), Ok(None));
    d.clear();
    assert_eq!((d.buffered(), d.capacity()), (0, 0));
    let mut ping = Vec::new();
    Frame::Ping(9).encode(&mut ping);
    d.push(&ping);
    let raw = d.next_frame().unwrap().expect("the ping");
    assert_eq!(Frame::decode(raw), Ok(Frame::Ping(9)));
}
