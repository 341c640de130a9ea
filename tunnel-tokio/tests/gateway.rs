//! The hub's Modbus TCP gateway: unmodified Modbus TCP clients reach the
//! device behind the agent; policy denials arrive as exceptions; a client
//! flooding the gateway costs bounded memory and others are still served.

mod common;

use std::time::Duration;

use common::deploy::*;
use common::pki::Pki;
use outpost_modbus_core::frame::mbap::{self, MbapHeader};
use outpost_modbus_core::{ExceptionCode, UnitId};
use outpost_tunnel_proto::AgentId;
use outpost_tunnel_tokio::binding::Role;
use outpost_tunnel_tokio::hub::{GatewayBuilder, Route};
use outpost_tunnel_tokio::modbus::{Client, ClientError, Requests};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Writes a raw MBAP read of holding registers 0-1 of `UNIT`.
async fn send_read(stream: &mut tokio::net::TcpStream, transaction_id: u16) {
    let mut frame = [0u8; 12];
    let n = mbap::encode(
        MbapHeader {
            transaction_id,
            unit: UNIT,
        },
        &[0x03u8, 0x00, 0x00, 0x00, 0x02][..],
        &mut frame,
    )
    .unwrap();
    stream.write_all(&frame[..n]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn modbus_tcp_clients_reach_the_device_through_the_gateway() {
    let pki = Pki::new();
    let (hub, _agent) = connected(&pki).await;
    let plant = AgentId::new(AGENT).unwrap();
    // Unit 1 as it is; unit 9 maps to the device's unit 1; others unrouted.
    let gateway = hub
        .gateway(
            GatewayBuilder::new("127.0.0.1:0".parse().unwrap(), Role::new("operator").unwrap())
                .route_unit(UNIT, Route::new(plant.clone(), "plc-1"))
                .route_unit(UnitId(9), Route::new(plant.clone(), "plc-1").with_unit(UNIT)),
        )
        .await
        .unwrap();
    let scada = Client::tcp(gateway.local_addr().to_string()).build();
    assert_eq!(scada.read_holding_registers(UNIT, 0, 3).await.unwrap(), [0, 1, 2]);
    scada.write_multiple_registers(UNIT, 0, &[5, 6]).await.unwrap();
    assert_eq!(scada.read_holding_registers(UnitId(9), 0, 2).await.unwrap(), [5, 6]);
    scada.write_single_coil(UNIT, 1, true).await.unwrap();
    assert_eq!(scada.read_coils(UNIT, 0, 3).await.unwrap(), [false, true, false]);
    assert_eq!(scada.read_input_registers(UNIT, 1, 1).await.unwrap(), [1001]);
    assert_eq!(scada.read_discrete_inputs(UNIT, 2, 2).await.unwrap(), [false, true]);
    // A policy denial is the exception the policy names.
    let err = scada.write_single_register(UNIT, 70, 1).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Exception(ExceptionCode::IllegalDataAddress)),
        "{err}"
    );
    // An unrouted unit: gateway path unavailable.
    let err = scada.read_holding_registers(UnitId(5), 0, 1).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Exception(ExceptionCode::GatewayPathUnavailable)),
        "{err}"
    );

    // Many clients at once, many requests each.
    let mut tasks = Vec::new();
    for c in 0..8u16 {
        let addr = gateway.local_addr();
        tasks.push(tokio::spawn(async move {
            let client = Client::tcp(addr.to_string()).max_in_flight(8).build();
            for i in 0..25u16 {
                let start = 10 + (c * 7 + i) % 80;
                let values = client.read_holding_registers(UNIT, start, 2).await.unwrap();
                assert_eq!(values, [start, start + 1]);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flooding_client_is_held_back_and_others_are_served() {
    let pki = Pki::new();
    let (hub, agent) = connected(&pki).await;
    let gateway = hub
        .gateway(
            GatewayBuilder::new("127.0.0.1:0".parse().unwrap(), Role::new("operator").unwrap())
                .route_all(Route::new(AgentId::new(AGENT).unwrap(), "plc-1"))
                .max_in_flight(4),
        )
        .await
        .unwrap();

    // A client that writes 20 000 requests as fast as it can and never reads.
    let mut flood = tokio::net::TcpStream::connect(gateway.local_addr()).await.unwrap();
    let flooder = tokio::spawn(async move {
        let mut frame = [0u8; 12];
        let mut sent = 0u32;
        for id in 0..20_000u32 {
            let header = MbapHeader {
                transaction_id: id as u16,
                unit: UNIT,
            };
            let n = mbap::encode(header, &[0x03u8, 0x00, 0x00, 0x00, 0x0A][..], &mut frame).unwrap();
            match tokio::time::timeout(Duration::from_secs(2), flood.write_all(&frame[..n])).await {
                Ok(Ok(())) => sent += 1,
                // The gateway stopped reading: the flood is held back.
                _ => break,
            }
        }
        (sent, flood)
    });

    // Meanwhile another client is served.
    let other = Client::tcp(gateway.local_addr().to_string()).build();
    for i in 0..20u16 {
        assert_eq!(other.read_holding_registers(UNIT, i, 1).await.unwrap(), [i]);
    }
    let (sent, mut flood) = flooder.await.unwrap();
    // The gateway did not read everything the flood wrote into memory: it
    // held back once its replies had nowhere to go.
    let served = agent.stats().requests;
    assert!(served < 20_000, "the agent served {served} of the flood");
    assert!(sent > 0);
    // The flooder can still read its answers, in whatever order they came.
    let mut reply = [0u8; 9];
    flood.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply[7], 0x03);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_gateway_closes_the_client_idle_longest() {
    let pki = Pki::new();
    let (hub, _agent) = connected(&pki).await;
    let gateway = hub
        .gateway(
            GatewayBuilder::new("127.0.0.1:0".parse().unwrap(), Role::new("operator").unwrap())
                .route_all(Route::new(AgentId::new(AGENT).unwrap(), "plc-1"))
                .max_clients(2),
        )
        .await
        .unwrap();
    // Two clients fill the gateway; the first is served, then idles.
    let read = [0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x00, 0x00, 0x00, 0x01];
    let mut idle = tokio::net::TcpStream::connect(gateway.local_addr()).await.unwrap();
    idle.write_all(&read).await.unwrap();
    let mut answer = [0u8; 11];
    idle.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer[7], 0x03);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let busy = Client::tcp(gateway.local_addr().to_string()).build();
    assert_eq!(busy.read_holding_registers(UNIT, 0, 1).await.unwrap(), [0]);
    // A third makes room by closing the idle one, not the one just served.
    let third = Client::tcp(gateway.local_addr().to_string()).build();
    assert_eq!(third.read_holding_registers(UNIT, 1, 1).await.unwrap(), [1]);
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the idle client was closed");
    assert_eq!(busy.read_holding_registers(UNIT, 1, 1).await.unwrap(), [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopping_gateway_answers_what_is_in_flight_then_closes() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let (device, _writes, _device_task) = common::slow_device(Duration::from_millis(300)).await;
    let mut agent = agent(&pki, &hub, device, AGENT, SECRET);
    agent.connected().await;
    hub.wait_for_agent(AGENT, Duration::from_secs(5)).await.unwrap();
    let gateway = hub
        .gateway(
            GatewayBuilder::new("127.0.0.1:0".parse().unwrap(), Role::new("operator").unwrap())
                .route_all(Route::new(AgentId::new(AGENT).unwrap(), "plc-1")),
        )
        .await
        .unwrap();
    let mut stream = tokio::net::TcpStream::connect(gateway.local_addr()).await.unwrap();
    send_read(&mut stream, 7).await;
    taken(&agent, 1).await;
    let started = std::time::Instant::now();
    gateway.stop(Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "it waited only for the read in flight"
    );
    // The answer came before the close.
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let reply = mbap::decode(&answer).unwrap().expect("a whole answer");
    assert_eq!(reply.header.transaction_id, 7);
    assert_eq!(reply.pdu, [0x03, 0x04, 0x00, 0x00, 0x00, 0x01]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_waiting_for_an_answer_is_not_idle() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    // The answer takes three idle periods.
    let (device, _writes, _device_task) = common::slow_device(Duration::from_millis(600)).await;
    let mut agent = agent(&pki, &hub, device, AGENT, SECRET);
    agent.connected().await;
    hub.wait_for_agent(AGENT, Duration::from_secs(5)).await.unwrap();
    let gateway = hub
        .gateway(
            GatewayBuilder::new("127.0.0.1:0".parse().unwrap(), Role::new("operator").unwrap())
                .route_all(Route::new(AgentId::new(AGENT).unwrap(), "plc-1"))
                .idle_timeout(Duration::from_millis(200)),
        )
        .await
        .unwrap();
    let mut stream = tokio::net::TcpStream::connect(gateway.local_addr()).await.unwrap();
    send_read(&mut stream, 9).await;
    // The answer comes, though the client sent nothing for longer than
    // the idle time while it waited.
    let mut header = [0u8; mbap::HEADER_LEN];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut header))
        .await
        .expect("answered within 5 s")
        .expect("not closed while the request was in flight");
    assert_eq!(u16::from_be_bytes([header[0], header[1]]), 9);
    let mut pdu = [0u8; 6];
    stream.read_exact(&mut pdu).await.unwrap();
    assert_eq!(pdu, [0x03, 0x04, 0x00, 0x00, 0x00, 0x01]);
    // Then, with nothing in flight, the idle time closes it.
    let started = std::time::Instant::now();
    let mut rest = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut rest))
        .await
        .expect("closed within 5 s")
        .unwrap_or(0);
    assert_eq!(n, 0, "the idle client was closed");
    assert!(started.elapsed() >= Duration::from_millis(100));
}
