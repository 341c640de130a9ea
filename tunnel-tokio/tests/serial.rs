//! Modbus RTU on a serial port (feature `serial`), against a device on the
//! other end of a pseudo-terminal pair: the client opens the slave side with
//! tokio-serial like any serial port; the device answers on the master side.
#![cfg(all(feature = "serial", target_os = "linux"))]

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use outpost_modbus_core::frame::rtu::{self, Decoded, Direction, RtuDecoder};
use outpost_modbus_core::server::Server as Dispatcher;
use outpost_modbus_core::{Transport, UnitId};
use outpost_tunnel_tokio::modbus::{Client, ClientError, Requests};

#[tokio::test]
async fn rtu_on_a_serial_port() {
    let pty = nix::pty::openpty(None, None).unwrap();
    let path = nix::unistd::ttyname(&pty.slave).unwrap();
    // Unit 3 behind the line, answering on the master side.
    let mut line = std::fs::File::from(pty.master);
    std::thread::spawn(move || {
        let model = common::shared();
        let mut dispatcher = Dispatcher::new(Transport::Rtu);
        let decoder = RtuDecoder::new(Direction::Request);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 256];
        // Ends when the client side closes (EIO on the master).
        while let Ok(n) = line.read(&mut chunk) {
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            while let Ok(Decoded::Frame { frame, consumed, .. }) = decoder.decode(&buf) {
                if frame.unit == UnitId(3) {
                    let mut out = [0u8; 253];
                    let answer = dispatcher
                        .handle(&mut *model.lock().unwrap(), frame.unit, frame.pdu, &mut out)
                        .unwrap();
                    if let Some(len) = answer {
                        let mut reply = [0u8; 256];
                        let m = rtu::encode(UnitId(3), &out[..len], &mut reply).unwrap();
                        if line.write_all(&reply[..m]).is_err() {
                            return;
                        }
                    }
                }
                buf.drain(..consumed);
            }
        }
    });
    let client = Client::rtu_serial(path.to_str().unwrap(), 19_200)
        .timeout(Duration::from_millis(500))
        .build();
    assert_eq!(
        client.read_input_registers(UnitId(3), 7, 2).await.unwrap(),
        [1007, 1008]
    );
    client.write_multiple_registers(UnitId(3), 2, &[20, 21]).await.unwrap();
    assert_eq!(
        client.read_holding_registers(UnitId(3), 1, 3).await.unwrap(),
        [1, 20, 21]
    );
    // Nobody is unit 4 on this line.
    let err = client.read_holding_registers(UnitId(4), 0, 1).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout), "{err}");
    drop(pty.slave);
}
