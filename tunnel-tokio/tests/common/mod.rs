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

/// Connections keep arriving at what `start` runs (the addresses it
/// returns) while the runtime it runs on shuts down, 30 times: a
/// connection accepted then has its task dropped inside `spawn`, and
/// nothing it gives back on drop may wait for a lock its accept loop holds
/// (that deadlocked a worker). Panics if a shutdown takes 10 s.
pub(crate) fn shut_down_while_dialed<T: Send + 'static>(
    mut start: impl FnMut(&tokio::runtime::Runtime) -> (Vec<std::net::SocketAddr>, T),
) {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    for round in 0..30 {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (targets, handles) = start(&rt);
        let stop = Arc::new(AtomicBool::new(false));
        let dialers: Vec<_> = targets
            .into_iter()
            .map(|target| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    // Bounded: at most a few thousand dials per round.
                    for _ in 0..5_000 {
                        if stop.load(Relaxed) {
                            break;
                        }
                        let _ = std::net::TcpStream::connect_timeout(&target, std::time::Duration::from_millis(200));
                    }
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let dropper = std::thread::spawn(move || {
            // The handles go after the runtime: its shutdown drops the
            // accept loops while they run.
            drop(rt);
            drop(handles);
            let _ = done_tx.send(());
        });
        let finished = done_rx.recv_timeout(std::time::Duration::from_secs(10)).is_ok();
        stop.store(true, Relaxed);
        for dialer in dialers {
            dialer.join().unwrap();
        }
        assert!(finished, "round {round}: the runtime's shutdown hung");
        dropper.join().unwrap();
    }
}
