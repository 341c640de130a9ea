//! A device for the tests: 100 of each table, values from their addresses.
#![allow(dead_code)]

pub(crate) mod deploy;
pub(crate) mod pki;

use std::sync::{Arc, Mutex};

use outpost_modbus_core::server::DataModel;
use outpost_modbus_core::{Bits, CoilRange, ExceptionCode, RegisterRange, Words};

/// Size of every table.
pub(crate) const SIZE: usize = 100;

#[derive(Debug)]
pub(crate) struct Device {
    pub(crate) coils: [bool; SIZE],
    pub(crate) discrete: [bool; SIZE],
    pub(crate) holding: [u16; SIZE],
    pub(crate) input: [u16; SIZE],
}

impl Default for Device {
    fn default() -> Self {
        let mut d = Device {
            coils: [false; SIZE],
            discrete: [false; SIZE],
            holding: [0; SIZE],
            input: [0; SIZE],
        };
        for i in 0..SIZE {
            d.discrete[i] = i % 3 == 0;
            d.input[i] = 1000 + i as u16;
            d.holding[i] = i as u16;
        }
        d
    }
}

pub(crate) fn shared() -> Arc<Mutex<Device>> {
    Arc::new(Mutex::new(Device::default()))
}

fn span(start: u16, len: usize) -> Result<std::ops::Range<usize>, ExceptionCode> {
    let start = usize::from(start);
    if start + len > SIZE {
        return Err(ExceptionCode::IllegalDataAddress);
    }
    Ok(start..start + len)
}

impl DataModel for Device {
    fn read_coils(&mut self, range: CoilRange, out: &mut [bool]) -> Result<(), ExceptionCode> {
        out.copy_from_slice(&self.coils[span(range.start(), out.len())?]);
        Ok(())
    }
    fn read_discrete_inputs(&mut self, range: CoilRange, out: &mut [bool]) -> Result<(), ExceptionCode> {
        out.copy_from_slice(&self.discrete[span(range.start(), out.len())?]);
        Ok(())
    }
    fn read_holding_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
        out.copy_from_slice(&self.holding[span(range.start(), out.len())?]);
        Ok(())
    }
    fn read_input_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
        out.copy_from_slice(&self.input[span(range.start(), out.len())?]);
        Ok(())
    }
    fn write_single_coil(&mut self, address: u16, value: bool) -> Result<(), ExceptionCode> {
        let r = span(address, 1)?;
        self.coils[r.start] = value;
        Ok(())
    }
    fn write_single_register(&mut self, address: u16, value: u16) -> Result<(), ExceptionCode> {
        let r = span(address, 1)?;
        self.holding[r.start] = value;
        Ok(())
    }
    fn write_multiple_coils(&mut self, start: u16, values: Bits<'_>) -> Result<(), ExceptionCode> {
        let r = span(start, values.len())?;
        for (slot, v) in self.coils[r].iter_mut().zip(values.iter()) {
            *slot = v;
        }
        Ok(())
    }
    fn write_multiple_registers(&mut self, start: u16, values: Words<'_>) -> Result<(), ExceptionCode> {
        let r = span(start, values.len())?;
        for (slot, v) in self.holding[r].iter_mut().zip(values.iter()) {
            *slot = v;
        }
        Ok(())
    }
}

/// A device that answers each request after `delay`, counting the writes it
/// executes. Serves connections until the returned task is aborted.
pub(crate) async fn slow_device(
    delay: std::time::Duration,
) -> (
    std::net::SocketAddr,
    Arc<std::sync::atomic::AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    use outpost_modbus_core::frame::mbap;
    use outpost_modbus_core::server::Server as Dispatcher;
    use outpost_modbus_core::Transport;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&writes);
    let task = tokio::spawn(async move {
        let model = shared();
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let model = Arc::clone(&model);
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 512];
                loop {
                    let n = match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    while let Ok(Some(frame)) = mbap::decode(&buf) {
                        let len = frame.len();
                        let header = frame.header;
                        let pdu = frame.pdu.to_vec();
                        buf.drain(..len);
                        tokio::time::sleep(delay).await;
                        if outpost_modbus_core::Request::decode(&pdu).is_ok_and(|r| r.is_write()) {
                            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        let mut out = [0u8; 253];
                        let answer = {
                            let mut m = model.lock().unwrap();
                            Dispatcher::new(Transport::Tcp)
                                .handle(&mut *m, header.unit, &pdu, &mut out)
                                .unwrap()
                        };
                        if let Some(len) = answer {
                            let mut reply = [0u8; 260];
                            let n = mbap::encode(header, &out[..len], &mut reply).unwrap();
                            if s.write_all(&reply[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, writes, task)
}
