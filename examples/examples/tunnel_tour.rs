//! A tour of `outpost-tunnel-proto`: an agent and a hub session back to back
//! in memory, with a simulated clock, as a driver would run them over TLS.
//!
//! ```text
//! cargo run -p outpost-examples --example tunnel_tour
//! ```
//!
//! It shows the channel-bound handshake, an agent with the wrong secret
//! turned away (and what each side learns), a request/response exchange on a
//! message channel, a stream held back by flow control until its reader
//! catches up, keepalive round trips, and a graceful shutdown.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_tunnel_proto::{
    AgentId, AgentIdentity, ChannelBinding, ChannelKind, Config, ErrorCode, Event, MemoryCredentials, Random, Secret,
    SendError, Session, Start,
};

/// One-way delay of the simulated network.
const LATENCY: Duration = Duration::from_millis(5);

/// Moves bytes both ways until neither side has anything to say; each hop
/// takes `LATENCY` of simulated time.
fn pump(agent: &mut Session, hub: &mut Session, now: &mut Instant) {
    let mut wire = Vec::new();
    for _ in 0..10_000 {
        wire.clear();
        if agent.poll_transmit(*now, &mut wire) > 0 {
            *now += LATENCY;
            hub.handle_input(*now, &wire);
        } else if hub.poll_transmit(*now, &mut wire) > 0 {
            *now += LATENCY;
            agent.handle_input(*now, &wire);
        } else {
            break;
        }
    }
}

fn events(name: &str, s: &mut Session) -> Vec<Event> {
    let mut all = Vec::new();
    while let Some(e) = s.poll_event() {
        println!("  {name:5} event: {e:?}");
        all.push(e);
    }
    all
}

fn sessions(secret: &[u8], store: &MemoryCredentials, now: Instant) -> (Session, Session) {
    // In a deployment both ends export this from their TLS connection, and
    // the random bytes come from the operating system.
    let binding = ChannelBinding::new(&[0x42; 32]).unwrap();
    let agent = Session::agent(
        Config::default(),
        AgentIdentity::new(AgentId::new("plant-7").unwrap(), Secret::new(secret).unwrap()),
        Start::new(binding.clone(), Random([1; 32])),
        now,
    );
    let hub = Session::hub(
        Config::default(),
        Arc::new(store.clone()),
        Start::new(binding, Random([2; 32])).certified_agent(AgentId::new("plant-7").unwrap()),
        now,
    );
    (agent, hub)
}

fn main() {
    let secret = b"32 bytes of shared agent secret!";
    let mut store = MemoryCredentials::new();
    store.insert(AgentId::new("plant-7").unwrap(), Secret::new(secret).unwrap());
    let start = Instant::now();
    let mut now = start;

    println!("1. An agent with the wrong secret");
    let (mut agent, mut hub) = sessions(b"a guessed secret, 32 bytes long!", &store, now);
    pump(&mut agent, &mut hub, &mut now);
    events("agent", &mut agent);
    events("hub", &mut hub);
    println!("  the hub logs why; the agent is told only AuthFailed\n");

    println!("2. The real agent");
    let (mut agent, mut hub) = sessions(secret, &store, now);
    pump(&mut agent, &mut hub, &mut now);
    events("agent", &mut agent);
    events("hub", &mut hub);

    println!("\n3. The hub opens a message channel to a device; the agent accepts");
    let ch = hub
        .open_channel(ChannelKind::Message, b"plc-1", b"principal=alice role=operator")
        .unwrap();
    pump(&mut agent, &mut hub, &mut now);
    for e in events("agent", &mut agent) {
        if let Event::ChannelRequested { channel, .. } = e {
            agent.accept(channel).unwrap();
        }
    }
    pump(&mut agent, &mut hub, &mut now);
    events("hub", &mut hub);
    hub.send_message(ch, 7, &[1, 3, 0, 0, 0, 2]).unwrap();
    pump(&mut agent, &mut hub, &mut now);
    events("agent", &mut agent);
    let request = agent.recv_message(ch).unwrap().unwrap();
    println!(
        "  agent got request {} {:02x?}",
        request.correlation,
        &request.payload[..]
    );
    agent
        .send_message(ch, request.correlation, &[1, 3, 4, 0, 42, 0, 7])
        .unwrap();
    pump(&mut agent, &mut hub, &mut now);
    events("hub", &mut hub);
    let answer = hub.recv_message(ch).unwrap().unwrap();
    println!("  hub got answer {} {:02x?}", answer.correlation, &answer.payload[..]);

    println!("\n4. A stream the reader does not keep up with");
    let st = agent
        .open_channel(ChannelKind::Stream, b"historian-export", b"")
        .unwrap();
    pump(&mut agent, &mut hub, &mut now);
    events("hub", &mut hub);
    hub.accept(st).unwrap();
    pump(&mut agent, &mut hub, &mut now);
    events("agent", &mut agent);
    let data = vec![0xAB; 1024 * 1024];
    let taken = agent.send(st, &data).unwrap();
    println!("  the agent queued {taken} of {} bytes: the channel window", data.len());
    assert_eq!(agent.send(st, &data[taken..]), Err(SendError::Blocked));
    pump(&mut agent, &mut hub, &mut now);
    events("hub", &mut hub);
    let mut buf = vec![0; 64 * 1024];
    let mut read = 0;
    while let Ok(n) = hub.read(st, &mut buf) {
        if n == 0 {
            break;
        }
        read += n;
    }
    println!("  the hub read {read} bytes; its window updates flow back");
    pump(&mut agent, &mut hub, &mut now);
    events("agent", &mut agent);
    events("hub", &mut hub);

    println!("\n5. A quiet minute: keepalive measures the round trip");
    for _ in 0..4 {
        now += Duration::from_secs(15);
        agent.handle_timeout(now);
        hub.handle_timeout(now);
        pump(&mut agent, &mut hub, &mut now);
    }
    println!(
        "  round trip seen by the agent: {:?}, by the hub: {:?}",
        agent.stats().rtt,
        hub.stats().rtt
    );
    println!("  agent stats: {:?}", agent.stats());

    println!("\n6. The hub shuts down gracefully; open channels drain, then both close");
    hub.shutdown(now, ErrorCode::Shutdown, Duration::from_secs(10));
    pump(&mut agent, &mut hub, &mut now);
    events("agent", &mut agent);
    for s in [&mut agent, &mut hub] {
        s.reset(st, ErrorCode::Cancel).ok();
        s.finish(ch).ok();
    }
    pump(&mut agent, &mut hub, &mut now);
    for s in [&mut agent, &mut hub] {
        while let Ok(Some(_)) = s.recv_message(ch) {}
    }
    pump(&mut agent, &mut hub, &mut now);
    events("agent", &mut agent);
    events("hub", &mut hub);
    println!("  agent: {:?}\n  hub:   {:?}", agent.error(), hub.error());
    println!("  (simulated time elapsed: {:?})", now - start);
}
