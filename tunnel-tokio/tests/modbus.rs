//! The async Modbus client and server on loopback: every table, many
//! transactions in flight, timeouts, refused connections, reconnects, and
//! RTU over TCP.

mod common;

use std::time::Duration;

use outpost_modbus_core::frame::rtu::{self, Decoded, Direction, RtuDecoder};
use outpost_modbus_core::server::Server as Dispatcher;
use outpost_modbus_core::{ExceptionCode, Transport, UnitId};
use outpost_tunnel_tokio::modbus::{Client, ClientError, Requests, Sent, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const UNIT: UnitId = UnitId(1);

async fn device() -> (std::net::SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(Server::builder().serve(listener, common::shared()));
    (addr, task)
}

#[tokio::test]
async fn every_table_reads_and_writes() {
    let (addr, _server) = device().await;
    let c = Client::tcp(addr.to_string()).build();
    assert_eq!(c.read_holding_registers(UNIT, 10, 3).await.unwrap(), [10, 11, 12]);
    assert_eq!(c.read_input_registers(UNIT, 0, 2).await.unwrap(), [1000, 1001]);
    assert_eq!(
        c.read_discrete_inputs(UNIT, 0, 7).await.unwrap(),
        [true, false, false, true, false, false, true]
    );
    c.write_single_coil(UNIT, 5, true).await.unwrap();
    c.write_multiple_coils(UNIT, 6, &[true, false, true]).await.unwrap();
    assert_eq!(
        c.read_coils(UNIT, 4, 5).await.unwrap(),
        [false, true, true, false, true]
    );
    c.write_single_register(UNIT, 0, 0xBEEF).await.unwrap();
    c.write_multiple_registers(UNIT, 1, &[7, 8, 9]).await.unwrap();
    c.mask_write_register(UNIT, 2, 0x00F2, 0x0025).await.unwrap();
    assert_eq!(
        c.read_holding_registers(UNIT, 0, 4).await.unwrap(),
        [0xBEEF, 7, 0x0025 & !0xF2, 9] // (8 & 0xF2) is 0
    );
    let read = c.read_write_multiple_registers(UNIT, 50, 2, 50, &[1, 2]).await.unwrap();
    assert_eq!(read, [1, 2]);
    // A device exception comes back typed; the request did reach the device.
    let err = c.read_holding_registers(UNIT, 99, 2).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Exception(ExceptionCode::IllegalDataAddress)),
        "{err}"
    );
    assert_eq!(err.delivery(), Sent::Yes);
    // The raw forwarding call returns exceptions as PDUs.
    let pdu = c
        .send_pdu(UNIT, &[0x03, 0x00, 0x63, 0x00, 0x02], Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(&pdu[..], [0x83, 0x02]);
    // A PDU that is no request never leaves.
    let err = c
        .send_pdu(UNIT, &[0x03, 0x00], Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidRequest(_)));
    assert_eq!(err.delivery(), Sent::No);
}

#[tokio::test]
async fn many_transactions_in_flight() {
    let (addr, _server) = device().await;
    let c = Client::tcp(addr.to_string()).max_in_flight(16).build();
    let mut tasks = Vec::new();
    for i in 0..200u16 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let start = i % 90;
            (start, c.read_holding_registers(UNIT, start, 10).await)
        }));
    }
    for t in tasks {
        let (start, values) = t.await.unwrap();
        let expected: Vec<u16> = (start..start + 10).collect();
        assert_eq!(values.unwrap(), expected);
    }
}

#[tokio::test]
async fn a_silent_device_times_out_and_a_closed_port_is_refused() {
    // Accepts and reads, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut sink = [0u8; 512];
        while s.read(&mut sink).await.is_ok_and(|n| n > 0) {}
    });
    let c = Client::tcp(addr.to_string())
        .timeout(Duration::from_millis(200))
        .build();
    let err = c.read_holding_registers(UNIT, 0, 1).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout), "{err}");
    assert_eq!(err.delivery(), Sent::Maybe);

    // A port nobody listens on: nothing was sent.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let c = Client::tcp(addr.to_string()).build();
    let err = c.read_holding_registers(UNIT, 0, 1).await.unwrap_err();
    assert!(matches!(err, ClientError::Connect(_)), "{err}");
    assert_eq!(err.delivery(), Sent::No);
}

#[tokio::test]
async fn reconnects_after_the_device_drops_the_connection() {
    // Answers one request per connection, then hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let model = common::shared();
        for _ in 0..3 {
            let (mut s, _) = listener.accept().await.unwrap();
            let frame = request(&mut s).await.unwrap();
            s.write_all(&answer(&model, &frame)).await.unwrap();
        }
    });
    let c = Client::tcp(addr.to_string()).build();
    for i in 0..3 {
        assert_eq!(c.read_holding_registers(UNIT, i, 1).await.unwrap(), [i]);
        // Let the hang-up arrive before the next request.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn rtu_over_tcp_through_a_serial_gateway() {
    // A serial gateway with one RTU device behind it, unit 17.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let model = common::shared();
        let mut dispatcher = Dispatcher::new(Transport::Rtu);
        let decoder = RtuDecoder::new(Direction::Request);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 256];
        loop {
            let n = s.read(&mut chunk).await.unwrap();
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            while let Ok(Decoded::Frame { frame, consumed, .. }) = decoder.decode(&buf) {
                let mut out = [0u8; 253];
                let answer = if frame.unit == UnitId(17) {
                    let mut m = model.lock().unwrap();
                    dispatcher.handle(&mut *m, frame.unit, frame.pdu, &mut out).unwrap()
                } else {
                    None // another device would answer; none here
                };
                if let Some(len) = answer {
                    let mut reply = [0u8; 256];
                    // Noise before the answer, as serial lines have: a
                    // byte that would start a long frame of unit 0x11.
                    s.write_all(&[0x05]).await.unwrap();
                    let m = rtu::encode(UnitId(17), &out[..len], &mut reply).unwrap();
                    s.write_all(&reply[..m]).await.unwrap();
                }
                buf.drain(..consumed);
            }
        }
    });
    let c = Client::rtu_over_tcp(addr.to_string())
        .timeout(Duration::from_millis(300))
        .build();
    assert_eq!(c.read_input_registers(UnitId(17), 3, 2).await.unwrap(), [1003, 1004]);
    c.write_single_register(UnitId(17), 9, 99).await.unwrap();
    assert_eq!(c.read_holding_registers(UnitId(17), 9, 1).await.unwrap(), [99]);
    // Nobody answers for unit 18.
    let err = c.read_holding_registers(UnitId(18), 0, 1).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout), "{err}");
    // And the link still works afterwards.
    assert_eq!(c.read_holding_registers(UnitId(17), 9, 1).await.unwrap(), [99]);
    let err = c.read_holding_registers(UnitId(0), 0, 1).await.unwrap_err();
    assert!(matches!(err, ClientError::Broadcast));
}

#[tokio::test]
async fn a_full_server_closes_new_connections() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(Server::builder().max_connections(1).serve(listener, common::shared()));
    let first = Client::tcp(addr.to_string()).build();
    assert_eq!(first.read_holding_registers(UNIT, 0, 1).await.unwrap(), [0]);
    let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert_eq!(first.read_holding_registers(UNIT, 1, 1).await.unwrap(), [1]);
}

/// The answer of the test model to one MBAP request frame.
fn answer(model: &std::sync::Mutex<common::Device>, request: &[u8]) -> Vec<u8> {
    let frame = outpost_modbus_core::frame::mbap::decode(request).unwrap().unwrap();
    let mut out = [0u8; 260];
    let len = {
        let mut m = model.lock().unwrap();
        Dispatcher::new(Transport::Tcp)
            .handle(&mut *m, frame.header.unit, frame.pdu, &mut out)
            .unwrap()
            .unwrap()
    };
    let mut reply = [0u8; 260];
    let n = outpost_modbus_core::frame::mbap::encode(frame.header, &out[..len], &mut reply).unwrap();
    reply[..n].to_vec()
}

/// Reads one MBAP frame (the test's requests come one per write).
async fn request(s: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut header = [0u8; 7];
    s.read_exact(&mut header).await.ok()?;
    let len = u16::from_be_bytes([header[4], header[5]]) as usize;
    let mut rest = vec![0u8; len - 1];
    s.read_exact(&mut rest).await.ok()?;
    Some([&header[..], &rest].concat())
}

/// A request given up on while its answer is on its way (the caller's
/// future dropped, or the client's own timeout) leaves the connection in
/// step: the late answer is dropped, and every later request gets its own.
#[tokio::test]
async fn requests_given_up_on_leave_the_connection_in_step() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let accepted = std::sync::Arc::clone(&connections);
    tokio::spawn(async move {
        let model = common::shared();
        let (mut s, _) = listener.accept().await.unwrap();
        accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Requests for address 0 are answered slowly, the rest at once, in order.
        while let Some(frame) = request(&mut s).await {
            if frame[8..10] == [0, 0] {
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            s.write_all(&answer(&model, &frame)).await.unwrap();
        }
    });
    let c = Client::tcp(addr.to_string()).timeout(Duration::from_secs(2)).build();
    // Connected and idle: later requests go out from the caller's task.
    assert_eq!(c.read_holding_registers(UNIT, 1, 1).await.unwrap(), [1]);
    for round in 0..3u16 {
        // The caller stops waiting.
        let dropped = tokio::time::timeout(Duration::from_millis(20), c.read_holding_registers(UNIT, 0, 1)).await;
        assert!(dropped.is_err(), "round {round}: answered too soon");
        // The client's own deadline.
        let err = c
            .send_pdu(UNIT, &[0x03, 0, 0, 0, 2], Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Timeout), "round {round}: {err}");
        // Sent while the late answers are still to come, and after.
        let address = 10 + round;
        assert_eq!(c.read_holding_registers(UNIT, address, 1).await.unwrap(), [address]);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            c.read_holding_registers(UNIT, address + 5, 2).await.unwrap(),
            [address + 5, address + 6]
        );
    }
    // All on the first connection: late answers are no reason to reconnect.
    assert_eq!(connections.load(std::sync::atomic::Ordering::Relaxed), 1);
}

/// Bytes a device sends while nobody asked (here a frame with a
/// transaction id never sent) mean its answers can no longer be matched:
/// the next request goes on a new connection, and succeeds.
#[tokio::test]
async fn a_device_that_talks_out_of_turn_gets_a_new_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let model = common::shared();
        let (mut first, _) = listener.accept().await.unwrap();
        let frame = request(&mut first).await.unwrap();
        first.write_all(&answer(&model, &frame)).await.unwrap();
        // Out of turn: an answer to transaction 0x7777.
        first
            .write_all(&[0x77, 0x77, 0, 0, 0, 5, 1, 0x03, 2, 0, 42])
            .await
            .unwrap();
        let (mut second, _) = listener.accept().await.unwrap();
        while let Some(frame) = request(&mut second).await {
            second.write_all(&answer(&model, &frame)).await.unwrap();
        }
        drop(first);
    });
    let c = Client::tcp(addr.to_string()).build();
    assert_eq!(c.read_holding_registers(UNIT, 3, 1).await.unwrap(), [3]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(c.read_holding_registers(UNIT, 4, 2).await.unwrap(), [4, 5]);
    assert_eq!(c.read_holding_registers(UNIT, 6, 1).await.unwrap(), [6]);
}

/// Callers one after the other on their own (the caller-driven path) and
/// at the same time (the connection task's path) mix on one connection:
/// each gets its own answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_alone_and_together_each_get_their_own_answers() {
    let (addr, _server) = device().await;
    let c = Client::tcp(addr.to_string()).max_in_flight(4).build();
    let tasks: Vec<_> = (0..8u16)
        .map(|t| {
            let c = c.clone();
            tokio::spawn(async move {
                for i in 0..250u16 {
                    let start = (t * 11 + i) % 90;
                    let count = 1 + (i % 8);
                    let expected: Vec<u16> = (start..start + count).collect();
                    assert_eq!(c.read_holding_registers(UNIT, start, count).await.unwrap(), expected);
                    if i % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // And alone again afterwards.
    assert_eq!(c.read_holding_registers(UNIT, 7, 2).await.unwrap(), [7, 8]);
}

/// A request whose time is up before it leaves is not sent, on an idle
/// connection as on a busy one.
#[tokio::test]
async fn a_request_out_of_time_is_not_sent() {
    let (addr, _server) = device().await;
    let c = Client::tcp(addr.to_string()).build();
    assert_eq!(c.read_holding_registers(UNIT, 0, 1).await.unwrap(), [0]);
    let err = c.send_pdu(UNIT, &[0x06, 0, 9, 0, 7], Duration::ZERO).await.unwrap_err();
    assert!(matches!(err, ClientError::Expired), "{err}");
    assert_eq!(err.delivery(), Sent::No);
    // The write did not happen.
    assert_eq!(c.read_holding_registers(UNIT, 9, 1).await.unwrap(), [9]);
}
