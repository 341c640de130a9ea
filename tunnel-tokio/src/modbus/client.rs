//! An async Modbus client over TCP (MBAP, many transactions in flight) or
//! RTU over TCP (one at a time), on the `outpost-modbus-core` codec.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use outpost_modbus_core::{Expectation, UnitId};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::connection::{self, Call, Framing};
use super::error::ClientError;
use super::link::{self, Shared};
use super::requests::Requests;
use crate::security::SecureClientTls;

/// Most transactions a TCP client keeps in flight on one connection.
pub const MAX_IN_FLIGHT: usize = 64;

/// Settings of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    pub(super) address: String,
    pub(super) framing: Framing,
    pub(super) timeout: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) max_in_flight: usize,
    pub(super) queue: usize,
    pub(super) rtu_silence: Duration,
    pub(super) tls: Option<SecureClientTls>,
}

impl ClientBuilder {
    fn new(address: impl Into<String>, framing: Framing) -> Self {
        ClientBuilder {
            address: address.into(),
            framing,
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(3),
            max_in_flight: 16,
            queue: 64,
            rtu_silence: Duration::from_millis(100),
            tls: None,
        }
    }

    /// How long a request waits for its answer by default (1 s), counted
    /// from when it is handed to the client, queueing and connecting included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long one connection attempt may take (3 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Transactions in flight at once on a TCP connection, 1 to
    /// [`MAX_IN_FLIGHT`] (16). Many devices handle one at a time: set 1 for
    /// them. RTU over TCP always has one.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.clamp(1, MAX_IN_FLIGHT);
        self
    }

    /// Requests that may wait for a free slot (64). Callers past it wait
    /// their turn; their timeout keeps running.
    pub fn queue(mut self, n: usize) -> Self {
        self.queue = n.max(1);
        self
    }

    /// RTU over TCP: how long the line must stay silent before buffered
    /// bytes that start no complete frame are dropped as noise (100 ms; the
    /// serial line's 3.5-character gap, stretched for the TCP hop).
    pub fn rtu_silence(mut self, silence: Duration) -> Self {
        self.rtu_silence = silence;
        self
    }

    /// Modbus/TCP Security: each connection is TLS (1.2 or 1.3, AEAD
    /// suites), the server verified against the CA and name of `tls`, this
    /// client presenting the certificate (and role) of `tls`. A handshake
    /// the server refuses fails the request with [`ClientError::Connect`]
    /// (nothing was sent). Modbus TCP framing only: RTU over TCP ignores it.
    pub fn tls(mut self, tls: SecureClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Starts the client's connection task on the current tokio runtime. The
    /// connection is made on the first request, and again after it breaks.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn build(self) -> Client {
        let (tx, rx) = mpsc::channel(self.queue);
        let timeout = self.timeout;
        let rtu = self.framing != Framing::Tcp;
        let shared = Arc::new(Shared::default());
        tokio::spawn(connection::run(self, rx, Arc::clone(&shared)));
        Client {
            tx,
            timeout,
            rtu,
            shared,
        }
    }
}

/// An async Modbus client: cheap to clone, every clone shares one connection.
///
/// Over plain Modbus TCP, a request that finds the connection idle is
/// written and its answer read from the caller's own task, as with a
/// client owned by one caller; while others are in flight, requests go
/// through the connection's task, which pipelines them (transaction ids,
/// up to [`ClientBuilder::max_in_flight`]) and sends all that wait in one
/// write. Either way every request ends by its deadline.
///
/// ```no_run
/// # async fn demo() -> Result<(), outpost_tunnel_tokio::modbus::ClientError> {
/// use outpost_modbus_core::UnitId;
/// use outpost_tunnel_tokio::modbus::{Client, Requests};
///
/// let plc = Client::tcp("192.0.2.10:502").build();
/// let values = plc.read_holding_registers(UnitId(1), 0, 10).await?;
/// plc.write_single_register(UnitId(1), 4, 1234).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    tx: mpsc::Sender<Call>,
    timeout: Duration,
    rtu: bool,
    /// The connection, when idle, for a request to use in its own task.
    shared: Arc<Shared>,
}

impl Client {
    /// A Modbus TCP client of `address` (`host:port`).
    pub fn tcp(address: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(address, Framing::Tcp)
    }

    /// A Modbus RTU client through a serial-to-TCP gateway at `address`:
    /// RTU frames with CRC over the TCP stream, one request at a time.
    /// Unit 0 (broadcast) gets no answer on RTU and is refused here.
    pub fn rtu_over_tcp(address: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(address, Framing::RtuOverTcp)
    }

    /// A Modbus RTU client on the local serial port `path` (for example
    /// `/dev/ttyUSB0`) at `baud` bits per second, 8E1 (feature `serial`).
    /// One request at a time; the line's silence between frames is taken as
    /// 3.5 characters, at least 1.75 ms (the specification's rule above
    /// 19 200 baud), unless [`ClientBuilder::rtu_silence`] says otherwise.
    #[cfg(feature = "serial")]
    pub fn rtu_serial(path: &str, baud: u32) -> ClientBuilder {
        let character = Duration::from_secs_f64(11.0 / f64::from(baud.max(1)));
        ClientBuilder::new(path, Framing::Serial { baud })
            .rtu_silence((character * 7 / 2).max(Duration::from_micros(1750)))
    }

    async fn send(
        &self,
        unit: UnitId,
        expect: Expectation,
        pdu: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, ClientError> {
        if self.rtu && unit.is_broadcast() {
            return Err(ClientError::Broadcast);
        }
        let deadline = Instant::now() + timeout;
        // Nothing in flight and nothing queued: the request goes on the
        // idle connection from this task, with no hand-off.
        if self.tx.capacity() == self.tx.max_capacity() {
            if let Some(link) = self.shared.borrow() {
                if let Some(result) = link::exchange(&self.shared, link, unit, expect, &pdu, deadline).await {
                    return result;
                }
            }
        }
        let (reply, answer) = oneshot::channel();
        let call = Call {
            unit,
            pdu,
            expect,
            deadline,
            reply,
        };
        match tokio::time::timeout_at(deadline, self.tx.send(call)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(ClientError::Closed),
            Err(_) => return Err(ClientError::Expired),
        }
        // The connection answers every call by its deadline.
        answer.await.unwrap_or(Err(ClientError::Closed))
    }
}

impl Requests for Client {
    fn exchange(
        &self,
        unit: UnitId,
        expect: Expectation,
        pdu: Bytes,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<Bytes, ClientError>> + Send {
        self.send(unit, expect, pdu, timeout)
    }

    fn default_timeout(&self) -> Duration {
        self.timeout
    }
}
