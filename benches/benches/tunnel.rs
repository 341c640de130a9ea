//! An agent and a hub session back to back in memory: how fast the
//! protocol itself moves bytes and messages, with no TLS and no sockets.
//!
//! - `bulk/outpost`: 4 MiB through one stream channel, written in 16 KiB
//!   pieces, read on the far side, window updates flowing back.
//! - `bulk/memcpy-floor`: the same bytes copied three times (into the send
//!   queue, onto the wire buffer, out of the receive buffer): the copies
//!   any buffered protocol makes, as a floor.
//! - `messages/outpost-oneway`: 10 000 twelve-byte messages (the size of a
//!   Modbus read request) through one message channel.
//! - `messages/outpost-roundtrip`: 10 000 request/response exchanges, one at
//!   a time, each answered on the same channel.
//!
//! Beside them, yamux 0.13 (the multiplexer of libp2p, the one a Rust user
//! would otherwise pick) over an in-memory `tokio::io::duplex` pipe on a
//! current-thread runtime, doing the same work on one yamux stream
//! (messages are 12-byte writes). yamux is not sans-IO, so its figures
//! include the runtime and the pipe; `*/duplex-floor` moves the same bytes
//! through the same pipe and runtime with no multiplexer, to show that
//! share.
//!
//! Compare ratios within one run; absolute figures on a shared machine are noise.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use outpost_tunnel_proto::{
    AgentId, AgentIdentity, ChannelBinding, ChannelId, ChannelKind, Config, Event, MemoryCredentials, Random, Secret,
    Session, Start,
};

const BULK: usize = 4 * 1024 * 1024;
const PIECE: usize = 16 * 1024;
const MESSAGES: u32 = 10_000;
/// A Modbus TCP read request for 10 registers.
const REQUEST: [u8; 12] = [0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 10];
/// Its answer.
const ANSWER: [u8; 29] = [
    0, 1, 0, 0, 0, 23, 1, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

struct Pair {
    agent: Session,
    hub: Session,
    now: Instant,
    wire: Vec<u8>,
}

impl Pair {
    fn new() -> Pair {
        let id = AgentId::new("bench-agent").unwrap();
        let secret = Secret::new(&[3; 32]).unwrap();
        let mut store = MemoryCredentials::new();
        store.insert(id.clone(), secret.clone());
        let binding = ChannelBinding::new(&[9; 32]).unwrap();
        let now = Instant::now();
        let agent = Session::agent(
            Config::default(),
            AgentIdentity::new(id, secret),
            Start::new(binding.clone(), Random([1; 32])),
            now,
        );
        let hub = Session::hub(
            Config::default(),
            Arc::new(store),
            Start::new(binding, Random([2; 32])),
            now,
        );
        let mut pair = Pair {
            agent,
            hub,
            now,
            wire: Vec::with_capacity(128 * 1024),
        };
        pair.pump();
        assert!(pair.agent.is_established() && pair.hub.is_established());
        pair
    }

    /// Moves bytes both ways until neither side has anything to send.
    fn pump(&mut self) {
        loop {
            self.wire.clear();
            if self.agent.poll_transmit(self.now, &mut self.wire) > 0 {
                self.hub.handle_input(self.now, &self.wire);
            } else if self.hub.poll_transmit(self.now, &mut self.wire) > 0 {
                self.agent.handle_input(self.now, &self.wire);
            } else {
                return;
            }
        }
    }

    /// A channel from the hub, accepted by the agent.
    fn channel(&mut self, kind: ChannelKind) -> ChannelId {
        let ch = self.hub.open_channel(kind, b"bench", b"").unwrap();
        self.pump();
        self.agent.accept(ch).unwrap();
        self.pump();
        self.drain_events();
        ch
    }

    fn drain_events(&mut self) {
        while let Some(e) = self.agent.poll_event() {
            if let Event::Closed(e) = e {
                panic!("{e}");
            }
        }
        while self.hub.poll_event().is_some() {}
    }
}

/// Agent to hub, `BULK` bytes; returns a checksum of what the hub read.
fn bulk(pair: &mut Pair, ch: ChannelId, data: &[u8]) -> u64 {
    let mut sent = 0;
    let mut received = 0;
    let mut sum = 0u64;
    while received < data.len() {
        while sent < data.len() {
            match pair.agent.send(ch, &data[sent..(sent + PIECE).min(data.len())]) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        pair.wire.clear();
        while pair.agent.poll_transmit(pair.now, &mut pair.wire) > 0 {}
        pair.hub.handle_input(pair.now, &pair.wire);
        while let Ok(Some(chunk)) = pair.hub.read_chunk(ch, usize::MAX) {
            received += chunk.len();
            sum = sum.wrapping_add(u64::from(chunk[chunk.len() - 1]));
        }
        pair.wire.clear();
        while pair.hub.poll_transmit(pair.now, &mut pair.wire) > 0 {}
        pair.agent.handle_input(pair.now, &pair.wire);
        pair.drain_events();
    }
    sum
}

fn memcpy_floor(data: &[u8], queue: &mut Vec<u8>, wire: &mut Vec<u8>, out: &mut [u8]) -> u64 {
    let mut sum = 0u64;
    for piece in data.chunks(PIECE) {
        queue.clear();
        queue.extend_from_slice(piece);
        wire.clear();
        wire.extend_from_slice(queue);
        out[..piece.len()].copy_from_slice(wire);
        sum = sum.wrapping_add(u64::from(out[piece.len() - 1]));
    }
    sum
}

fn bench_bulk(c: &mut Criterion) {
    let data: Vec<u8> = (0..BULK).map(|i| i as u8).collect();
    let mut g = c.benchmark_group("bulk");
    g.throughput(Throughput::Bytes(BULK as u64));
    g.bench_function("outpost", |b| {
        let mut pair = Pair::new();
        let ch = pair.channel(ChannelKind::Stream);
        b.iter(|| black_box(bulk(&mut pair, ch, &data)));
    });
    g.bench_function("memcpy-floor", |b| {
        let (mut queue, mut wire, mut out) = (Vec::new(), Vec::new(), vec![0; PIECE]);
        b.iter(|| black_box(memcpy_floor(&data, &mut queue, &mut wire, &mut out)));
    });
    g.finish();
}

fn bench_messages(c: &mut Criterion) {
    let request = REQUEST;
    let mut g = c.benchmark_group("messages");
    g.throughput(Throughput::Elements(MESSAGES.into()));
    g.bench_function("outpost-oneway", |b| {
        let mut pair = Pair::new();
        let ch = pair.channel(ChannelKind::Message);
        b.iter(|| {
            let mut sum = 0u32;
            let mut sent = 0;
            let mut received = 0;
            while received < MESSAGES {
                while sent < MESSAGES && pair.hub.send_message(ch, sent, &request).is_ok() {
                    sent += 1;
                }
                pair.wire.clear();
                while pair.hub.poll_transmit(pair.now, &mut pair.wire) > 0 {}
                pair.agent.handle_input(pair.now, &pair.wire);
                while let Ok(Some(m)) = pair.agent.recv_message(ch) {
                    sum = sum.wrapping_add(m.correlation);
                    received += 1;
                }
                pair.wire.clear();
                while pair.agent.poll_transmit(pair.now, &mut pair.wire) > 0 {}
                pair.hub.handle_input(pair.now, &pair.wire);
                pair.drain_events();
            }
            black_box(sum)
        });
    });
    g.bench_function("outpost-roundtrip", |b| {
        let mut pair = Pair::new();
        let ch = pair.channel(ChannelKind::Message);
        let answer = ANSWER;
        b.iter(|| {
            let mut sum = 0u32;
            for i in 0..MESSAGES {
                pair.hub.send_message(ch, i, &request).unwrap();
                pair.wire.clear();
                while pair.hub.poll_transmit(pair.now, &mut pair.wire) > 0 {}
                pair.agent.handle_input(pair.now, &pair.wire);
                let m = pair.agent.recv_message(ch).unwrap().unwrap();
                pair.agent.send_message(ch, m.correlation, &answer).unwrap();
                pair.wire.clear();
                while pair.agent.poll_transmit(pair.now, &mut pair.wire) > 0 {}
                pair.hub.handle_input(pair.now, &pair.wire);
                let r = pair.hub.recv_message(ch).unwrap().unwrap();
                sum = sum.wrapping_add(r.correlation);
                pair.drain_events();
            }
            black_box(sum)
        });
    });
    g.finish();
}

mod yamux_side {
    use futures::future::poll_fn;
    use futures::{AsyncReadExt, AsyncWriteExt};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};
    use tokio::runtime::Runtime;
    use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};
    use yamux::{Config, Connection, Mode, Stream};

    pub(super) struct Yamux {
        pub(super) rt: Runtime,
        pub(super) client: Stream,
        pub(super) server: Stream,
    }

    fn drive(mut conn: Connection<Compat<DuplexStream>>, accepted: Option<futures::channel::oneshot::Sender<Stream>>) {
        tokio::spawn(async move {
            let mut accepted = accepted;
            while let Some(Ok(stream)) = poll_fn(|cx| conn.poll_next_inbound(cx)).await {
                if let Some(tx) = accepted.take() {
                    let _ = tx.send(stream);
                }
            }
        });
    }

    impl Yamux {
        pub(super) fn new() -> Yamux {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (client, server) = rt.block_on(async {
                let (a, b) = tokio::io::duplex(256 * 1024);
                let mut client = Connection::new(a.compat(), Config::default(), Mode::Client);
                let server = Connection::new(b.compat(), Config::default(), Mode::Server);
                let (tx, rx) = futures::channel::oneshot::channel();
                drive(server, Some(tx));
                let mut out = poll_fn(|cx| client.poll_new_outbound(cx)).await.unwrap();
                drive(client, None);
                out.write_all(b"x").await.unwrap();
                out.flush().await.unwrap();
                let mut inbound = rx.await.unwrap();
                let mut one = [0u8; 1];
                inbound.read_exact(&mut one).await.unwrap();
                (out, inbound)
            });
            Yamux { rt, client, server }
        }

        pub(super) fn bulk(&mut self, data: &[u8], piece: usize) -> u64 {
            let Yamux { rt, client, server } = self;
            rt.block_on(async {
                let write = async {
                    for p in data.chunks(piece) {
                        client.write_all(p).await.unwrap();
                    }
                    client.flush().await.unwrap();
                };
                let read = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    let (mut got, mut sum) = (0, 0u64);
                    while got < data.len() {
                        let n = server.read(&mut buf).await.unwrap();
                        got += n;
                        sum = sum.wrapping_add(u64::from(buf[n - 1]));
                    }
                    sum
                };
                futures::join!(write, read).1
            })
        }

        pub(super) fn roundtrips(&mut self, request: &[u8], answer: &[u8], count: u32) -> u64 {
            let Yamux { rt, client, server } = self;
            rt.block_on(async {
                let mut req = vec![0u8; request.len()];
                let mut ans = vec![0u8; answer.len()];
                let mut sum = 0u64;
                for _ in 0..count {
                    client.write_all(request).await.unwrap();
                    client.flush().await.unwrap();
                    server.read_exact(&mut req).await.unwrap();
                    server.write_all(answer).await.unwrap();
                    server.flush().await.unwrap();
                    client.read_exact(&mut ans).await.unwrap();
                    sum = sum.wrapping_add(u64::from(ans[2]));
                }
                sum
            })
        }
    }

    /// The same bytes through the pipe and runtime alone.
    pub(super) struct Duplex {
        rt: Runtime,
        a: DuplexStream,
        b: DuplexStream,
    }

    impl Duplex {
        pub(super) fn new() -> Duplex {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (a, b) = tokio::io::duplex(256 * 1024);
            Duplex { rt, a, b }
        }

        pub(super) fn bulk(&mut self, data: &[u8], piece: usize) -> u64 {
            let Duplex { rt, a, b } = self;
            rt.block_on(async {
                let write = async {
                    for p in data.chunks(piece) {
                        a.write_all(p).await.unwrap();
                    }
                };
                let read = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    let (mut got, mut sum) = (0, 0u64);
                    while got < data.len() {
                        let n = b.read(&mut buf).await.unwrap();
                        got += n;
                        sum = sum.wrapping_add(u64::from(buf[n - 1]));
                    }
                    sum
                };
                futures::join!(write, read).1
            })
        }

        pub(super) fn roundtrips(&mut self, request: &[u8], answer: &[u8], count: u32) -> u64 {
            let Duplex { rt, a, b } = self;
            rt.block_on(async {
                let mut req = vec![0u8; request.len()];
                let mut ans = vec![0u8; answer.len()];
                let mut sum = 0u64;
                for _ in 0..count {
                    a.write_all(request).await.unwrap();
                    b.read_exact(&mut req).await.unwrap();
                    b.write_all(answer).await.unwrap();
                    a.read_exact(&mut ans).await.unwrap();
                    sum = sum.wrapping_add(u64::from(ans[2]));
                }
                sum
            })
        }
    }
}

fn bench_yamux(c: &mut Criterion) {
    let data: Vec<u8> = (0..BULK).map(|i| i as u8).collect();
    let mut g = c.benchmark_group("bulk");
    g.throughput(Throughput::Bytes(BULK as u64));
    g.bench_function("yamux", |b| {
        let mut y = yamux_side::Yamux::new();
        b.iter(|| black_box(y.bulk(&data, PIECE)));
    });
    g.bench_function("duplex-floor", |b| {
        let mut d = yamux_side::Duplex::new();
        b.iter(|| black_box(d.bulk(&data, PIECE)));
    });
    g.finish();
    let mut g = c.benchmark_group("messages");
    g.throughput(Throughput::Elements(MESSAGES.into()));
    g.bench_function("yamux-roundtrip", |b| {
        let mut y = yamux_side::Yamux::new();
        b.iter(|| black_box(y.roundtrips(&REQUEST, &ANSWER, MESSAGES)));
    });
    g.bench_function("duplex-floor-roundtrip", |b| {
        let mut d = yamux_side::Duplex::new();
        b.iter(|| black_box(d.roundtrips(&REQUEST, &ANSWER, MESSAGES)));
    });
    g.finish();
}

criterion_group!(benches, bench_bulk, bench_messages, bench_yamux);
criterion_main!(benches);
