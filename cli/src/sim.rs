//! `outpost sim`: a Modbus TCP device simulator with 100 of each table:
//! input register 0 counts seconds, input register i holds 1000 + i,
//! discrete input i is set when i is even, holding registers and coils keep
//! what is written (holding register i starts at i).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outpost_modbus_core::server::DataModel;
use outpost_modbus_core::{Bits, CoilRange, ExceptionCode, RegisterRange, Words};
use outpost_tunnel_tokio::modbus::Server;

use crate::Failure;

const SIZE: usize = 100;

struct Sim {
    started: Instant,
    coils: [bool; SIZE],
    holding: [u16; SIZE],
}

fn span(start: u16, len: usize) -> Result<std::ops::Range<usize>, ExceptionCode> {
    let start = usize::from(start);
    if start + len > SIZE {
        return Err(ExceptionCode::IllegalDataAddress);
    }
    Ok(start..start + len)
}

impl DataModel for Sim {
    fn read_coils(&mut self, range: CoilRange, out: &mut [bool]) -> Result<(), ExceptionCode> {
        out.copy_from_slice(&self.coils[span(range.start(), out.len())?]);
        Ok(())
    }
    fn read_discrete_inputs(&mut self, range: CoilRange, out: &mut [bool]) -> Result<(), ExceptionCode> {
        let r = span(range.start(), out.len())?;
        for (o, i) in out.iter_mut().zip(r) {
            *o = i % 2 == 0;
        }
        Ok(())
    }
    fn read_holding_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
        out.copy_from_slice(&self.holding[span(range.start(), out.len())?]);
        Ok(())
    }
    fn read_input_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
        let r = span(range.start(), out.len())?;
        let seconds = self.started.elapsed().as_secs() as u16;
        for (o, i) in out.iter_mut().zip(r) {
            *o = if i == 0 { seconds } else { 1000 + i as u16 };
        }
        Ok(())
    }
    fn write_single_coil(&mut self, address: u16, value: bool) -> Result<(), ExceptionCode> {
        self.coils[span(address, 1)?.start] = value;
        Ok(())
    }
    fn write_single_register(&mut self, address: u16, value: u16) -> Result<(), ExceptionCode> {
        self.holding[span(address, 1)?.start] = value;
        Ok(())
    }
    fn write_multiple_coils(&mut self, start: u16, values: Bits<'_>) -> Result<(), ExceptionCode> {
        for (slot, v) in self.coils[span(start, values.len())?].iter_mut().zip(values.iter()) {
            *slot = v;
        }
        Ok(())
    }
    fn write_multiple_registers(&mut self, start: u16, values: Words<'_>) -> Result<(), ExceptionCode> {
        for (slot, v) in self.holding[span(start, values.len())?].iter_mut().zip(values.iter()) {
            *slot = v;
        }
        Ok(())
    }
}

/// Serves the simulator on `listen` until the process is told to stop.
pub(crate) async fn run(listen: &str) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Failure::Runtime(format!("cannot listen on {listen}: {e}")))?;
    let local = listener.local_addr().map_err(|e| Failure::Runtime(e.to_string()))?;
    println!("outpost sim listening on {local}");
    let sim = Sim {
        started: Instant::now(),
        coils: [false; SIZE],
        holding: std::array::from_fn(|i| i as u16),
    };
    let serve = Server::builder()
        .idle_timeout(Duration::from_secs(600))
        .serve(listener, Arc::new(Mutex::new(sim)));
    tokio::select! {
        result = serve => result.map_err(|e| Failure::Runtime(e.to_string())),
        () = crate::signals::terminated() => Ok(()),
    }
}
