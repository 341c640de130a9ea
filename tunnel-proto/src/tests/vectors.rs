//! The worked example of PROTOCOL.md's appendix: a complete handshake from
//! fixed inputs. The implementation must produce exactly the bytes printed
//! in the specification.

use std::sync::Arc;
use std::time::Instant;

use crate::*;

const SPEC: &str = include_str!("../../PROTOCOL.md");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex of `bytes` as the appendix prints it: 32 bytes per line.
fn spec_hex(bytes: &[u8]) -> String {
    bytes.chunks(32).map(hex).collect::<Vec<_>>().join("\n")
}

#[test]
fn handshake_matches_the_specification_appendix() {
    let secret: Vec<u8> = (0..32).collect();
    let id = AgentId::new("plant-7").unwrap();
    let mut store = MemoryCredentials::new();
    store.insert(id.clone(), Secret::new(&secret).unwrap());
    let binding = ChannelBinding::new(&[0x42; 32]).unwrap();
    let now = Instant::now();
    let mut agent = Session::agent(
        Config::default(),
        AgentIdentity::new(id, Secret::new(&secret).unwrap()),
        Start::new(binding.clone(), Random([0x11; 32])),
        now,
    );
    let mut hub = Session::hub(
        Config::default(),
        Arc::new(store),
        Start::new(binding, Random([0x22; 32])),
        now,
    );
    let mut frames = Vec::new();
    for i in 0..4 {
        let (from, to) = if i % 2 == 0 {
            (&mut agent, &mut hub)
        } else {
            (&mut hub, &mut agent)
        };
        let mut wire = Vec::new();
        let _ = from.poll_transmit(now, &mut wire);
        to.handle_input(now, &wire);
        frames.push(wire);
    }
    assert!(agent.is_established() && hub.is_established());
    let transcript = crate::session::transcript_hash(&frames[0], &frames[1]);
    let printed = [
        ("HELLO", spec_hex(&frames[0])),
        ("CHALLENGE", spec_hex(&frames[1])),
        ("T", spec_hex(&transcript)),
        ("PROOF", spec_hex(&frames[2])),
        ("CONFIRM", spec_hex(&frames[3])),
    ];
    let missing: Vec<String> = printed
        .iter()
        .filter(|(_, hex)| !SPEC.contains(hex.as_str()))
        .map(|(name, hex)| format!("{name}:\n{hex}"))
        .collect();
    assert!(missing.is_empty(), "PROTOCOL.md must print\n{}", missing.join("\n"));
}
