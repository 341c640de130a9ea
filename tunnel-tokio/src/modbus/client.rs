//! An async Modbus client over TCP (MBAP, many transactions in flight) or
//! RTU over TCP (one at a time), on the `outpost-modbus-core` codec.

use std::time::Duration;

use bytes::Bytes;
use outpost_modbus_core::{
    Bits, CoilRange, CoilWrite, Expectation, ReadWriteRegisters, RegisterRange, RegisterWrite, Request, Response,
    UnitId, Words, MAX_PDU_LEN,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::connection::{self, Call, Framing};
use super::error::ClientError;

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

    /// Starts the client's connection task on the current tokio runtime. The
    /// connection is made on the first request, and again after it breaks.
    pub fn build(self) -> Client {
        let (tx, rx) = mpsc::channel(self.queue);
        let timeout = self.timeout;
        let rtu = self.framing == Framing::RtuOverTcp;
        tokio::spawn(connection::run(self, rx));
        Client { tx, timeout, rtu }
    }
}

/// A response checked against its request, owning its bytes.
#[derive(Debug, Clone)]
pub struct Answer {
    pdu: Bytes,
    expect: Expectation,
}

impl Answer {
    /// The response PDU as received (a normal response: exceptions are errors).
    pub fn pdu(&self) -> &[u8] {
        &self.pdu
    }

    /// The typed response (coil values trimmed to the quantity asked).
    pub fn response(&self) -> Response<'_> {
        match self.expect.check(&self.pdu) {
            Ok(r) => r,
            // Checked by the connection before it was handed over.
            Err(_) => Response::Exception {
                function: outpost_modbus_core::FunctionCode::from_u8(self.expect.function()),
                code: outpost_modbus_core::ExceptionCode::ServerDeviceFailure,
            },
        }
    }
}

/// An async Modbus client: cheap to clone, every clone shares one connection.
///
/// ```no_run
/// # async fn demo() -> Result<(), outpost_tunnel_tokio::modbus::ClientError> {
/// use outpost_modbus_core::UnitId;
/// use outpost_tunnel_tokio::modbus::Client;
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

    /// Sends a request PDU as it is and returns the device's response PDU,
    /// exceptions included, once it has been checked against the request.
    /// This is the forwarding call: the PDU must decode as a request.
    pub async fn send_pdu(&self, unit: UnitId, pdu: &[u8], timeout: Duration) -> Result<Bytes, ClientError> {
        let request = Request::decode(pdu).map_err(ClientError::InvalidRequest)?;
        self.exchange(unit, Expectation::new(&request), Bytes::copy_from_slice(pdu), timeout)
            .await
    }

    /// Sends a typed request; a device exception is [`ClientError::Exception`].
    pub async fn call(&self, unit: UnitId, request: &Request<'_>) -> Result<Answer, ClientError> {
        self.call_with_timeout(unit, request, self.timeout).await
    }

    /// [`Client::call`] with its own timeout.
    pub async fn call_with_timeout(
        &self,
        unit: UnitId,
        request: &Request<'_>,
        timeout: Duration,
    ) -> Result<Answer, ClientError> {
        let mut buf = [0u8; MAX_PDU_LEN];
        let n = request.encode(&mut buf)?;
        let expect = Expectation::new(request);
        let pdu = self
            .exchange(unit, expect, Bytes::copy_from_slice(&buf[..n]), timeout)
            .await?;
        match expect.check(&pdu)? {
            Response::Exception { code, .. } => Err(ClientError::Exception(code)),
            _ => Ok(Answer { pdu, expect }),
        }
    }

    async fn exchange(
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

    /// 01: reads `quantity` coils from `start`.
    pub async fn read_coils(&self, unit: UnitId, start: u16, quantity: u16) -> Result<Vec<bool>, ClientError> {
        let range = CoilRange::new(start, quantity).map_err(range_error(0x01))?;
        let answer = self.call(unit, &Request::ReadCoils(range)).await?;
        Ok(bits(answer.response()))
    }

    /// 02: reads `quantity` discrete inputs from `start`.
    pub async fn read_discrete_inputs(
        &self,
        unit: UnitId,
        start: u16,
        quantity: u16,
    ) -> Result<Vec<bool>, ClientError> {
        let range = CoilRange::new(start, quantity).map_err(range_error(0x02))?;
        let answer = self.call(unit, &Request::ReadDiscreteInputs(range)).await?;
        Ok(bits(answer.response()))
    }

    /// 03: reads `quantity` holding registers from `start`.
    pub async fn read_holding_registers(
        &self,
        unit: UnitId,
        start: u16,
        quantity: u16,
    ) -> Result<Vec<u16>, ClientError> {
        let range = RegisterRange::new(start, quantity).map_err(range_error(0x03))?;
        let answer = self.call(unit, &Request::ReadHoldingRegisters(range)).await?;
        Ok(words(answer.response()))
    }

    /// 04: reads `quantity` input registers from `start`.
    pub async fn read_input_registers(&self, unit: UnitId, start: u16, quantity: u16) -> Result<Vec<u16>, ClientError> {
        let range = RegisterRange::new(start, quantity).map_err(range_error(0x04))?;
        let answer = self.call(unit, &Request::ReadInputRegisters(range)).await?;
        Ok(words(answer.response()))
    }

    /// 05: sets one coil.
    pub async fn write_single_coil(&self, unit: UnitId, address: u16, value: bool) -> Result<(), ClientError> {
        self.call(unit, &Request::WriteSingleCoil { address, value }).await?;
        Ok(())
    }

    /// 06: sets one holding register.
    pub async fn write_single_register(&self, unit: UnitId, address: u16, value: u16) -> Result<(), ClientError> {
        self.call(unit, &Request::WriteSingleRegister { address, value })
            .await?;
        Ok(())
    }

    /// 0F: sets consecutive coils from `start`.
    pub async fn write_multiple_coils(&self, unit: UnitId, start: u16, values: &[bool]) -> Result<(), ClientError> {
        let write = CoilWrite::new(start, Bits::from_bools(values)).map_err(range_error(0x0F))?;
        self.call(unit, &Request::WriteMultipleCoils(write)).await?;
        Ok(())
    }

    /// 10: sets consecutive holding registers from `start`.
    pub async fn write_multiple_registers(&self, unit: UnitId, start: u16, values: &[u16]) -> Result<(), ClientError> {
        let write = RegisterWrite::new(start, Words::from_slice(values)).map_err(range_error(0x10))?;
        self.call(unit, &Request::WriteMultipleRegisters(write)).await?;
        Ok(())
    }

    /// 16: `value = (value AND and_mask) OR (or_mask AND NOT and_mask)`.
    pub async fn mask_write_register(
        &self,
        unit: UnitId,
        address: u16,
        and_mask: u16,
        or_mask: u16,
    ) -> Result<(), ClientError> {
        let request = Request::MaskWriteRegister {
            address,
            and_mask,
            or_mask,
        };
        self.call(unit, &request).await?;
        Ok(())
    }

    /// 17: writes `values` from `write_start`, then reads `read_quantity`
    /// registers from `read_start`, in one transaction.
    pub async fn read_write_multiple_registers(
        &self,
        unit: UnitId,
        read_start: u16,
        read_quantity: u16,
        write_start: u16,
        values: &[u16],
    ) -> Result<Vec<u16>, ClientError> {
        let request = ReadWriteRegisters {
            read: RegisterRange::new(read_start, read_quantity).map_err(range_error(0x17))?,
            write: RegisterWrite::new(write_start, Words::from_slice(values)).map_err(range_error(0x17))?,
        };
        let answer = self.call(unit, &Request::ReadWriteMultipleRegisters(request)).await?;
        Ok(words(answer.response()))
    }
}

fn range_error(function: u8) -> impl Fn(outpost_modbus_core::RangeError) -> ClientError {
    move |error| ClientError::InvalidRequest(outpost_modbus_core::DecodeError::Range { function, error })
}

fn bits(response: Response<'_>) -> Vec<bool> {
    match response {
        Response::ReadCoils(b) | Response::ReadDiscreteInputs(b) => b.iter().collect(),
        _ => Vec::new(),
    }
}

fn words(response: Response<'_>) -> Vec<u16> {
    match response {
        Response::ReadHoldingRegisters(w)
        | Response::ReadInputRegisters(w)
        | Response::ReadWriteMultipleRegisters(w) => w.iter().collect(),
        _ => Vec::new(),
    }
}
