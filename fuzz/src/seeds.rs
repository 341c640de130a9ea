//! Writes the seed corpora from the specifications' worked examples and
//! from real session traffic. Run with
//! `cargo test --test seeds -- --ignored` after changing a target's input
//! format; the files are committed.

use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use outpost_modbus_core::frame::{mbap, rtu};
use outpost_modbus_core::UnitId;
use outpost_tunnel_proto::frame::Frame;
use outpost_tunnel_proto::{ChannelId, ChannelKind, ErrorCode};

use crate::records::write_records;
use crate::tunnel::{Role, World};

/// Request PDUs of the Modbus Application Protocol V1.1b3, section 6.
const REQUESTS: &[&str] = &[
    "0100130013",
    "0200c40016",
    "03006b0003",
    "0400080001",
    "0500acff00",
    "0600010003",
    "07",
    "080000a537",
    "0b",
    "0c",
    "0f0013000a02cd01",
    "100001000204000a0102",
    "11",
    "140e0600040001000206000300090002",
    "150d0600040007000306af04be100d",
    "16000400f20025",
    "17000300060000000306ff00ff00ff",
    "1804de",
    "2b0e0100",
    "2b0e0102",
];

/// Response PDUs of the same section, and the exception example of section 7.
const RESPONSES: &[&str] = &[
    "0103cd6b05",
    "0203acdb35",
    "0306022b00000064",
    "0402000a",
    "0500acff00",
    "0600010003",
    "076d",
    "080000a537",
    "0bffff0108",
    "0c080000010801212000",
    "0f0013000a",
    "1000010002",
    "110302ff00",
    "140c06060dfe0020050633cd0040",
    "150d0600040007000306af04be100d",
    "16000400f20025",
    "170c00fe0acd00010003000d00ff",
    "180006000201b81284",
    "2b0e01010000000100074f7574706f7374",
    "8102",
];

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .filter(|p| p.len() == 2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap_or("00"), 16).unwrap_or(0))
        .collect()
}

fn write(dir: &Path, target: &str, name: &str, data: &[u8]) {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).expect("corpus directory");
    std::fs::write(dir.join(name), data).expect("seed written");
}

fn frames(frames: &[Frame]) -> Vec<u8> {
    frames.iter().flat_map(Frame::to_vec).collect()
}

/// Writes every target's seeds under `dir` (normally `fuzz/corpus`).
pub fn write_seeds(dir: &Path) {
    let requests: Vec<Vec<u8>> = REQUESTS.iter().map(|s| hex(s)).collect();
    let responses: Vec<Vec<u8>> = RESPONSES.iter().map(|s| hex(s)).collect();
    let mut mbap_stream = Vec::new();
    let mut rtu_requests = vec![0xFF];
    let mut rtu_responses = vec![0xFF];
    let mut server_tcp = vec![0];
    let mut server_rtu = vec![1];
    for (i, pdu) in requests.iter().enumerate() {
        write(dir, "request_pdu", &format!("spec-{i:02}"), pdu);
        let mut buf = [0u8; 300];
        let header = mbap::MbapHeader {
            transaction_id: i as u16,
            unit: UnitId(1),
        };
        let n = mbap::encode(header, &pdu[..], &mut buf).expect("fits");
        mbap_stream.extend_from_slice(&buf[..n]);
        let n = rtu::encode(UnitId(0x11), &pdu[..], &mut buf).expect("fits");
        rtu_requests.extend_from_slice(&buf[..n]);
        write_records(&mut server_tcp, 1, pdu);
        write_records(&mut server_rtu, 0x11, pdu);
    }
    for (i, pdu) in responses.iter().enumerate() {
        write(dir, "response_pdu", &format!("spec-{i:02}"), pdu);
        let mut buf = [0u8; 300];
        let n = rtu::encode(UnitId(0x11), &pdu[..], &mut buf).expect("fits");
        rtu_responses.extend_from_slice(&buf[..n]);
        // Arbitrary-structured targets start from the same bytes.
        write(dir, "response_check", &format!("spec-{i:02}"), pdu);
        write(dir, "roundtrip_modbus", &format!("spec-{i:02}"), pdu);
        write(dir, "client", &format!("spec-{i:02}"), pdu);
    }
    write(dir, "mbap", "spec-requests", &mbap_stream);
    write(dir, "rtu_request", "spec-requests", &rtu_requests);
    write(dir, "rtu_response", "spec-responses", &rtu_responses);
    write(dir, "server", "spec-tcp", &server_tcp);
    write(dir, "server", "spec-rtu", &server_rtu);
    // Serial Line V1.02, CRC example: 02 07 -> 41 12.
    write(dir, "rtu_request", "spec-crc", &[0xFF, 0x02, 0x07, 0x41, 0x12]);

    // The Modbus binding (PROTOCOL.md section 12): its worked messages.
    let binding = [
        ("metadata", hex("00 01 08 6f70657261746f72 00")),
        ("request", hex("01 01 11 000009c4 00 03006b0003")),
        ("answered", hex("02 02 00 0306022b00000064")),
        ("denied", hex("02 02 01 02")),
        ("malformed", hex("02 02 06 03")),
        ("no-answer", hex("02 02 02")),
    ];
    for (name, bytes) in binding {
        write(dir, "binding", name, &bytes);
    }

    // Data acquisition: a birth of two points, samples of every quality
    // and value kind, an acknowledgement, a rebirth.
    let acquisition = [
        (
            "birth",
            hex(
                "01 0001 0000000000000009 0000000000000000 05 706c632d31 11 000003e8 04 7461 6e6b 0002 \
                 05 6c6576656c 02 0000 0200 01 04 666c6f77 03 0010 0601 00",
            ),
        ),
        (
            "samples",
            hex("02 0001 0000000000000009 0003 \
                 0000000000000000 0000 0000018bcfe56800 00 01 02 0102 \
                 0000000000000001 0001 0000018bcfe56800 03 06 00 06 3fc00000 \
                 0000000000000002 0000 0000018bcfe56800 02 00 01 01"),
        ),
        ("ack", hex("03 0001 0000000000000009 0000000000000002")),
        ("rebirth", hex("04 0001")),
    ];
    for (name, bytes) in acquisition {
        write(dir, "acquisition", name, &bytes);
    }

    // Modbus/TCP Security: role extension values, and a certificate made
    // by OpenSSL carrying the role "operator".
    let roles = [
        ("utf8", hex("00 0c 08 6f70657261746f72")),
        ("printable", hex("00 13 08 6f70657261746f72")),
        ("long-form", hex("00 0c 81 02 6f70")),
    ];
    for (name, bytes) in roles {
        write(dir, "role_certificate", name, &bytes);
    }
    let cert = include_bytes!("../../tunnel-tokio/src/security/testdata/openssl-role.der");
    write(
        dir,
        "role_certificate",
        "openssl-cert",
        &[&[1u8][..], &cert[..]].concat(),
    );

    // The profile's machines: the scenario tests' sequences, as steps.
    for (name, bytes) in profile_seeds() {
        let (target, name) = name.split_once('/').expect("target/name");
        write(dir, target, name, &bytes);
    }

    // Tunnel: a real handshake, then one of every session frame.
    let (hello, challenge, proof, confirm) = handshake();
    let ch = |v| ChannelId::new(v).expect("non-zero");
    let session_frames = frames(&[
        Frame::Open(outpost_tunnel_proto::frame::Open {
            channel: ch(2),
            kind: ChannelKind::Message,
            window: 65536,
            target: Bytes::from_static(b"plc-1"),
            metadata: Bytes::new(),
        }),
        Frame::Accept {
            channel: ch(1),
            window: 65536,
        },
        Frame::Data {
            channel: ch(1),
            data: Bytes::from_static(b"stream bytes"),
        },
        Frame::Message {
            channel: ch(3),
            correlation: 7,
            payload: Bytes::from_static(b"\x03\x00\x6b\x00\x03"),
        },
        Frame::WindowUpdate {
            channel: None,
            increment: 4096,
        },
        Frame::WindowUpdate {
            channel: Some(ch(1)),
            increment: 100,
        },
        Frame::Ping(42),
        Frame::Pong(42),
        Frame::Fin { channel: ch(1) },
        Frame::Reset {
            channel: ch(3),
            code: ErrorCode::Cancel,
        },
        Frame::Refuse {
            channel: ch(5),
            code: ErrorCode::Refused,
        },
        Frame::GoAway {
            code: ErrorCode::Shutdown,
            drain_ms: 1000,
        },
        Frame::Close {
            code: ErrorCode::NoError,
            reason: Bytes::from_static(b"bye"),
        },
    ]);
    let mut stream = vec![0x4A, 0xFF];
    for part in [&hello, &challenge, &proof, &confirm, &session_frames] {
        stream.extend_from_slice(part);
    }
    write(dir, "tunnel_frame", "handshake-and-session", &stream);
    write(dir, "roundtrip_tunnel", "session-frames", &session_frames);
    for (target, role) in [("hub_session", Role::Hub), ("agent_session", Role::Agent)] {
        let (first, second) = match role {
            Role::Hub => (&hello, &proof),
            Role::Agent => (&challenge, &confirm),
        };
        for state in 0..7u8 {
            let mut input = vec![state, 0];
            let handshake = match state {
                0 => Some(first),
                1 => Some(second),
                _ => None,
            };
            if let Some(h) = handshake {
                write_records(&mut input, 0x80, h);
            }
            write_records(&mut input, 0x80, &session_frames[..session_frames.len() - 19]);
            write_records(&mut input, 7, &[]);
            write_records(&mut input, 1, &[0, 0x3A, 0x98]);
            write(dir, target, &format!("state-{state}"), &input);
        }
    }
}

/// The four handshake frames of a real session, as sent.
fn handshake() -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
    let now = Instant::now();
    let mut w = World::new(Role::Hub, 0, 0);
    let mut take = |from_target: bool| {
        let mut buf = Vec::new();
        let (from, to) = if from_target {
            (&mut w.target, &mut w.peer)
        } else {
            (&mut w.peer, &mut w.target)
        };
        while from.poll_transmit(now, &mut buf) > 0 {}
        to.handle_input(now, &buf);
        buf
    };
    let hello = take(false);
    let challenge = take(true);
    let proof = take(false);
    let confirm = take(true);
    (hello, challenge, proof, confirm)
}

/// The scenario tests of `outpost_tunnel_tokio::profile`, as step codes of
/// the `requester`, `admission` and `device_queue` targets.
fn profile_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use crate::profile::step::*;
    let read = |role: u8| vec![SUBMIT_READ, role, 0x07, 0xD0];
    let write = |role: u8| vec![SUBMIT_WRITE, role, 0x07, 0xD0];
    let answer = |index: u8| vec![ANSWER, index, 0];
    let cat = |parts: &[Vec<u8>]| parts.concat();
    // Admission: open channel 0 as operator (role 0) or viewer (1).
    let open = |role: u8| vec![0, 0, 1, 1, 1, role];
    let request = |correlation: u8, retry: u8, pdu: &[u8]| {
        let mut r = vec![1, 0, correlation, 1, retry, pdu.len() as u8];
        r.extend_from_slice(pdu);
        r.extend_from_slice(&[0x07, 0xD0]);
        r
    };
    let read_pdu = [0x03, 0x00, 0x00, 0x00, 0x01];
    let write_pdu = [0x06, 0x00, 0x01, 0x00, 0x07];
    vec![
        (
            "requester/burst-shares-one-open",
            cat(&[
                read(0),
                read(0),
                read(0),
                vec![ACCEPT_OPENS],
                answer(0),
                answer(1),
                answer(2),
            ]),
        ),
        (
            "requester/read-retried-on-next-session",
            cat(&[
                read(0),
                vec![ACCEPT_OPENS, SESSION_DOWN, SESSION_UP, ACCEPT_OPENS],
                answer(1),
            ]),
        ),
        (
            "requester/write-outcome-unknown",
            cat(&[write(0), vec![ACCEPT_OPENS, SESSION_DOWN, SESSION_UP]]),
        ),
        (
            "requester/malformed-outcome-resets",
            cat(&[
                read(0),
                read(0),
                vec![ACCEPT_OPENS, ANSWER_BYTES, 0, 2, 0x02, 0x01, ACCEPT_OPENS],
                answer(2),
            ]),
        ),
        (
            "requester/idle-channel-closed",
            cat(&[
                read(1),
                vec![ACCEPT_OPENS],
                answer(0),
                vec![ADVANCE, 0x0B, 0xB8],
                read(1),
                vec![ACCEPT_OPENS],
            ]),
        ),
        ("requester/refused", cat(&[read(2), write(2), vec![REFUSE_OPEN, 9]])),
        (
            "requester/deadlines",
            cat(&[read(0), write(0), vec![ACCEPT_OPENS, ADVANCE, 0x0A, 0x00]]),
        ),
        (
            "requester/cancelled",
            cat(&[read(0), vec![ACCEPT_OPENS, CANCEL, 0], answer(0)]),
        ),
        (
            "admission/read-forwarded",
            cat(&[open(0), request(0, 1, &read_pdu), vec![3, 0, 0]]),
        ),
        (
            "admission/retried-write-refused",
            cat(&[open(0), request(0, 0, &write_pdu)]),
        ),
        (
            "admission/duplicate-id-resets",
            cat(&[open(0), request(0, 1, &read_pdu), request(0, 1, &read_pdu)]),
        ),
        (
            "admission/denied-by-policy",
            cat(&[open(1), request(0, 1, &[0x03, 0x00, 0x32, 0x00, 0x01])]),
        ),
        (
            "device_queue/wait-in-order",
            vec![0, 4, 0, 0x03, 0xE8, 0, 0x03, 0xE8, 0, 0x03, 0xE8, 1, 0, 1, 1],
        ),
        (
            "device_queue/expire-while-waiting",
            vec![0, 4, 0, 0x13, 0x88, 0, 0x00, 0x64, 2, 0x00, 0xC8],
        ),
        (
            "device_queue/busy-past-the-bound",
            vec![
                1, 1, 0, 0x03, 0xE8, 0, 0x03, 0xE8, 0, 0x03, 0xE8, 0, 0x03, 0xE8, 0, 0x03, 0xE8,
            ],
        ),
    ]
}
