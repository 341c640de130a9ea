//! A tour of `outpost-modbus-core`: a client and a simulated device talk
//! Modbus TCP and RTU through the sans-IO codec, in memory.
//!
//! ```text
//! cargo run -p outpost-examples --example codec_tour
//! ```
//!
//! It shows a read, a write, the device's exception for an address it lacks,
//! a request the access policy denies, and a malformed frame refused before
//! anything is buffered.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use outpost_modbus_core::access::{Policy, RoleRules, Span};
use outpost_modbus_core::client::{Matched, Transactions};
use outpost_modbus_core::frame::mbap::{self, MbapHeader};
use outpost_modbus_core::frame::rtu::{self, Decoded, Direction, RtuDecoder};
use outpost_modbus_core::server::{DataModel, Server};
use outpost_modbus_core::{
    object_id, Bits, CoilRange, CoilWrite, ExceptionCode, FunctionClass, ReadDeviceIdCode, RegisterRange, Request,
    Response, Transport, UnitId,
};

/// A small device: 16 coils and 32 holding registers.
struct Device {
    coils: [bool; 16],
    registers: [u16; 32],
}

impl DataModel for Device {
    fn read_coils(&mut self, range: CoilRange, out: &mut [bool]) -> Result<(), ExceptionCode> {
        let values = self
            .coils
            .get(range.start() as usize..=range.last() as usize)
            .ok_or(ExceptionCode::IllegalDataAddress)?;
        out.copy_from_slice(values);
        Ok(())
    }

    fn write_multiple_coils(&mut self, start: u16, values: Bits<'_>) -> Result<(), ExceptionCode> {
        let slots = self
            .coils
            .get_mut(start as usize..start as usize + values.len())
            .ok_or(ExceptionCode::IllegalDataAddress)?;
        values.copy_to(slots);
        Ok(())
    }

    fn read_holding_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
        let values = self
            .registers
            .get(range.start() as usize..=range.last() as usize)
            .ok_or(ExceptionCode::IllegalDataAddress)?;
        out.copy_from_slice(values);
        Ok(())
    }

    fn write_single_register(&mut self, address: u16, value: u16) -> Result<(), ExceptionCode> {
        *self
            .registers
            .get_mut(address as usize)
            .ok_or(ExceptionCode::IllegalDataAddress)? = value;
        Ok(())
    }

    fn device_object(&self, id: u8) -> Option<&[u8]> {
        match id {
            object_id::VENDOR_NAME => Some(b"Outpost"),
            object_id::PRODUCT_CODE => Some(b"SIM-1"),
            object_id::MAJOR_MINOR_REVISION => Some(b"1.0"),
            _ => None,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ")
}

/// One Modbus TCP exchange: the tracker gives the header, the server answers,
/// the tracker matches and checks the response, which is then printed.
fn exchange(
    tracker: &mut Transactions<Instant>,
    server: &mut Server,
    device: &mut Device,
    request: Request<'_>,
) -> Result<(), Box<dyn std::error::Error>> {
    let header = tracker.start(UnitId(1), &request, Instant::now(), Duration::from_secs(1))?;
    let mut wire = [0u8; mbap::MAX_ADU_LEN];
    let n = mbap::encode(header, &request, &mut wire)?;
    println!("  request  {:<48} {}", format!("{request:?}"), hex(&wire[..n]));

    let frame = mbap::decode(&wire[..n])?.ok_or("incomplete")?;
    let mut pdu = [0u8; outpost_modbus_core::MAX_PDU_LEN];
    let len = server
        .handle(device, frame.header.unit, frame.pdu, &mut pdu)?
        .ok_or("no reply")?;
    let mut reply = [0u8; mbap::MAX_ADU_LEN];
    let n = mbap::encode(frame.header, &pdu[..len], &mut reply)?;

    let frame = mbap::decode(&reply[..n])?.ok_or("incomplete")?;
    match tracker.handle_frame(frame) {
        Matched::Response { result, .. } => {
            let response = result?;
            println!("  response {:<48} {}", format!("{response:?}"), hex(&reply[..n]));
        }
        other => println!("  unexpected: {other:?}"),
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut device = Device {
        coils: [false; 16],
        registers: core::array::from_fn(|i| i as u16 * 10),
    };
    let mut server = Server::new(Transport::Tcp);
    let mut tracker: Transactions<Instant> = Transactions::new();

    println!("Modbus TCP, in memory:");
    let read = Request::ReadHoldingRegisters(RegisterRange::new(4, 3)?);
    exchange(&mut tracker, &mut server, &mut device, read)?;
    let write = Request::WriteSingleRegister {
        address: 5,
        value: 0xBEEF,
    };
    exchange(&mut tracker, &mut server, &mut device, write)?;
    exchange(&mut tracker, &mut server, &mut device, read)?;
    let coils = [true, false, true, true];
    let write = Request::WriteMultipleCoils(CoilWrite::new(2, Bits::from_bools(&coils))?);
    exchange(&mut tracker, &mut server, &mut device, write)?;
    exchange(
        &mut tracker,
        &mut server,
        &mut device,
        Request::ReadCoils(CoilRange::new(0, 8)?),
    )?;
    let ident = Request::ReadDeviceIdentification {
        code: ReadDeviceIdCode::Basic,
        object_id: 0,
    };
    exchange(&mut tracker, &mut server, &mut device, ident)?;

    println!("\nThe device has 32 registers; asking for 40..50 gets its exception:");
    let beyond = Request::ReadHoldingRegisters(RegisterRange::new(40, 10)?);
    exchange(&mut tracker, &mut server, &mut device, beyond)?;

    println!("\nAn access policy in front of the device (role \"viewer\": read 0..=9 only):");
    let mut viewer = RoleRules::default();
    viewer.units.insert(UnitId(1));
    viewer.functions.insert(FunctionClass::Read);
    viewer.holding_registers.read.push(Span::new(0, 9)?);
    let policy = Policy::new().with_role("viewer", viewer);
    for request in [
        Request::ReadHoldingRegisters(RegisterRange::new(0, 10)?),
        Request::ReadHoldingRegisters(RegisterRange::new(5, 10)?),
        Request::WriteSingleRegister { address: 1, value: 0 },
    ] {
        match policy.check("viewer", UnitId(1), &request) {
            Ok(()) => println!("  allowed  {request:?}"),
            Err(denial) => println!(
                "  denied   {request:?}: {denial} -> exception {}",
                denial.exception_code()
            ),
        }
    }

    println!("\nThe same read over RTU, with CRC:");
    let mut rtu_server = Server::new(Transport::Rtu);
    let mut wire = [0u8; rtu::MAX_ADU_LEN];
    let n = rtu::encode(UnitId(1), &read, &mut wire)?;
    println!("  request  {}", hex(&wire[..n]));
    if let Decoded::Frame { frame, .. } = RtuDecoder::new(Direction::Request).decode(&wire[..n])? {
        let mut pdu = [0u8; outpost_modbus_core::MAX_PDU_LEN];
        let len = rtu_server
            .handle(&mut device, frame.unit, frame.pdu, &mut pdu)?
            .ok_or("no reply")?;
        let n = rtu::encode(frame.unit, &pdu[..len], &mut wire)?;
        println!("  response {}", hex(&wire[..n]));
        if let Decoded::Frame { frame, .. } = RtuDecoder::new(Direction::Response).decode(&wire[..n])? {
            println!("  decoded  {:?}", Response::decode(frame.pdu)?);
        }
    }

    println!("\nA frame claiming 0xFFFF bytes is refused from its first 6 bytes:");
    let hostile = [0x00, 0x01, 0x00, 0x00, 0xFF, 0xFF];
    println!("  {} -> {}", hex(&hostile), mbap::decode(&hostile).unwrap_err());

    let header = MbapHeader {
        transaction_id: 9,
        unit: UnitId(1),
    };
    let mut wire = [0u8; mbap::MAX_ADU_LEN];
    let n = mbap::encode(header, &[0x0Fu8, 0x00, 0x00, 0x00, 0x10, 0x01, 0xFF][..], &mut wire)?;
    let frame = mbap::decode(&wire[..n])?.ok_or("incomplete")?;
    println!(
        "  FC 0F, 16 coils but 1 data byte -> {}",
        Request::decode(frame.pdu).unwrap_err()
    );
    println!("\nTracker: {:?}", tracker.stats());
    Ok(())
}
