//! Data acquisition's messages (what a hub reads from an agent and an
//! agent from a hub), and what each side does with them.

use outpost_acquisition::message::Message;
use outpost_acquisition::{GroupSpec, Publisher, Subscriber};
use outpost_modbus_core::UnitId;

/// Target `acquisition`: what decodes re-encodes to the same bytes; the
/// hub's subscriber takes it (twice: the second time as a resend) and
/// the agent's publisher takes the hub's kinds, without a panic and with
/// their counters consistent.
pub fn acquisition(data: &[u8]) {
    let Ok(message) = Message::decode(data) else {
        return;
    };
    let mut out = Vec::new();
    message.encode(&mut out);
    assert_eq!(out, data);
    let mut subscriber = Subscriber::new();
    subscriber.handle(message.clone());
    let gaps = subscriber.gaps();
    subscriber.handle(message.clone());
    assert_eq!(subscriber.gaps(), gaps, "a resend is no gap");
    while subscriber.poll_message().is_some() {}
    while subscriber.poll_update().is_some() {}
    let groups = [GroupSpec::new("g", UnitId(1), std::time::Duration::from_secs(1))];
    let mut publisher = Publisher::new(1, &groups, 1 << 16);
    publisher.connected();
    match message {
        Message::Ack(ack) => publisher.handle_ack(ack),
        Message::Rebirth(rebirth) => {
            let known = publisher.handle_rebirth(rebirth);
            assert_eq!(known, rebirth.group == 0);
        }
        _ => {}
    }
    while publisher.poll_message(1024).is_some() {}
    assert!(publisher.is_empty());
}
