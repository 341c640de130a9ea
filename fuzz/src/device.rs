//! A device for the server target: every function implemented, values
//! computed from addresses, and an exception for addresses at or above
//! [`LIMIT`], so both the answer and the refusal paths are reached.

use outpost_modbus_core::server::DataModel;
use outpost_modbus_core::{Bits, CoilRange, ExceptionCode, RegisterRange, Words, MAX_FIFO_COUNT};

/// Addresses at or above this answer 02 Illegal Data Address.
pub(crate) const LIMIT: u32 = 0xF000;

/// Identification objects 0x00..=0x06, plus a long private one.
const OBJECTS: [&[u8]; 7] = [
    b"Outpost",
    b"FZ-1",
    b"1.0",
    b"https://example.invalid",
    b"fuzz",
    b"F1",
    b"app",
];

fn check(start: u16, quantity: usize) -> Result<(), ExceptionCode> {
    if u32::from(start) + quantity as u32 > LIMIT {
        Err(ExceptionCode::IllegalDataAddress)
    } else {
        Ok(())
    }
}

fn value(address: usize) -> u16 {
    (address as u16).rotate_left(5) ^ 0x5A5A
}

/// The fuzzed device.
#[derive(Debug, Default)]
pub(crate) struct Device {
    /// The last value written, so writes have somewhere to go.
    pub(crate) last: u16,
}

impl DataModel for Device {
    fn read_coils(&mut self, range: CoilRange, out: &mut [bool]) -> Result<(), ExceptionCode> {
        check(range.start(), out.len())?;
        for (i, o) in out.iter_mut().enumerate() {
            *o = value(range.start() as usize + i) & 1 == 1;
        }
        Ok(())
    }

    fn read_discrete_inputs(&mut self, range: CoilRange, out: &mut [bool]) -> Result<(), ExceptionCode> {
        self.read_coils(range, out)
    }

    fn read_holding_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
        check(range.start(), out.len())?;
        for (i, o) in out.iter_mut().enumerate() {
            *o = value(range.start() as usize + i);
        }
        Ok(())
    }

    fn read_input_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
        self.read_holding_registers(range, out)
    }

    fn write_single_coil(&mut self, address: u16, value: bool) -> Result<(), ExceptionCode> {
        check(address, 1)?;
        self.last = u16::from(value);
        Ok(())
    }

    fn write_single_register(&mut self, address: u16, value: u16) -> Result<(), ExceptionCode> {
        check(address, 1)?;
        self.last = value;
        Ok(())
    }

    fn write_multiple_coils(&mut self, start: u16, values: Bits<'_>) -> Result<(), ExceptionCode> {
        check(start, values.len())?;
        self.last = values.iter().filter(|v| *v).count() as u16;
        Ok(())
    }

    fn write_multiple_registers(&mut self, start: u16, values: Words<'_>) -> Result<(), ExceptionCode> {
        check(start, values.len())?;
        self.last = values.iter().fold(0, u16::wrapping_add);
        Ok(())
    }

    fn read_exception_status(&mut self) -> Result<u8, ExceptionCode> {
        Ok(self.last as u8)
    }

    fn diagnostic_register(&mut self) -> Result<u16, ExceptionCode> {
        Ok(self.last)
    }

    fn report_server_id(&mut self, out: &mut [u8]) -> Result<usize, ExceptionCode> {
        let id = b"\x2A\xFFoutpost fuzz device";
        let n = id.len().min(out.len());
        out[..n].copy_from_slice(&id[..n]);
        Ok(n)
    }

    fn read_file_record(&mut self, file: u16, record: u16, out: &mut [u16]) -> Result<(), ExceptionCode> {
        if file > 8 {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        for (i, o) in out.iter_mut().enumerate() {
            *o = value(usize::from(file) << 16 | (usize::from(record) + i));
        }
        Ok(())
    }

    fn write_file_record(&mut self, file: u16, _record: u16, values: Words<'_>) -> Result<(), ExceptionCode> {
        if file > 8 {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        self.last = values.len() as u16;
        Ok(())
    }

    fn read_fifo_queue(&mut self, address: u16, out: &mut [u16; MAX_FIFO_COUNT]) -> Result<usize, ExceptionCode> {
        // Queues of 0..=39 values: those over 31 must be refused by the server.
        let count = usize::from(address % 40);
        if count > MAX_FIFO_COUNT {
            return Err(ExceptionCode::IllegalDataValue);
        }
        for (i, o) in out.iter_mut().take(count).enumerate() {
            *o = value(i);
        }
        Ok(count)
    }

    fn device_object(&self, id: u8) -> Option<&[u8]> {
        match id {
            0..=6 => Some(OBJECTS[usize::from(id)]),
            // Private objects big enough to need several responses.
            0x80..=0x8F => Some(&[0xEE; 60]),
            _ => None,
        }
    }

    fn encapsulated_interface(&mut self, mei_type: u8, data: &[u8], out: &mut [u8]) -> Result<usize, ExceptionCode> {
        if mei_type == 0x0D {
            return Err(ExceptionCode::IllegalFunction);
        }
        let n = data.len().min(out.len());
        out[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }

    fn custom(&mut self, function: u8, data: &[u8], out: &mut [u8]) -> Result<usize, ExceptionCode> {
        match function {
            0x41 | 0x64 => {
                let n = data.len().min(out.len());
                out[..n].copy_from_slice(&data[..n]);
                Ok(n)
            }
            _ => Err(ExceptionCode::IllegalFunction),
        }
    }
}
