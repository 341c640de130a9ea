//! The typed Modbus requests, shared by every client: the local
//! [`super::Client`] and the hub's client of a device behind an agent.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use outpost_modbus_core::{
    Bits, CoilRange, CoilWrite, Expectation, ReadWriteRegisters, RegisterRange, RegisterWrite, Request, Response,
    UnitId, Words, MAX_PDU_LEN,
};

use super::error::ClientError;

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
    pub fn response(&self) -> Result<Response<'_>, outpost_modbus_core::ResponseError> {
        self.expect.check(&self.pdu)
    }
}

/// Modbus requests with typed arguments and results. Implemented by every
/// client here; bring it into scope to call `read_holding_registers` and
/// the rest.
///
/// Each method sends one request, waits for its answer within the client's
/// default timeout, and turns a device exception into
/// [`ClientError::Exception`].
pub trait Requests: Sync {
    /// Sends a request PDU and returns the response PDU (an exception
    /// included) once it has been checked against `expect`.
    fn exchange(
        &self,
        unit: UnitId,
        expect: Expectation,
        pdu: Bytes,
        timeout: Duration,
    ) -> impl Future<Output = Result<Bytes, ClientError>> + Send;

    /// The timeout of requests that do not name one.
    fn default_timeout(&self) -> Duration;

    /// Sends a request PDU as it is and returns the response PDU, exceptions
    /// included, once it has been checked against the request: the
    /// forwarding call of agents and gateways. The PDU must decode as a request.
    fn send_pdu(
        &self,
        unit: UnitId,
        pdu: &[u8],
        timeout: Duration,
    ) -> impl Future<Output = Result<Bytes, ClientError>> + Send {
        let prepared = Request::decode(pdu)
            .map(|r| (Expectation::new(&r), Bytes::copy_from_slice(pdu)))
            .map_err(ClientError::InvalidRequest);
        async move {
            let (expect, pdu) = prepared?;
            self.exchange(unit, expect, pdu, timeout).await
        }
    }

    /// Sends a typed request within the default timeout.
    fn call(&self, unit: UnitId, request: &Request<'_>) -> impl Future<Output = Result<Answer, ClientError>> + Send {
        let prepared = prepare(request);
        let timeout = self.default_timeout();
        async move {
            let (expect, pdu) = prepared?;
            finish(expect, self.exchange(unit, expect, pdu, timeout).await?)
        }
    }

    /// Sends a typed request within `timeout`.
    fn call_with_timeout(
        &self,
        unit: UnitId,
        request: &Request<'_>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Answer, ClientError>> + Send {
        let prepared = prepare(request);
        async move {
            let (expect, pdu) = prepared?;
            finish(expect, self.exchange(unit, expect, pdu, timeout).await?)
        }
    }

    /// 01: reads `quantity` coils from `start`.
    fn read_coils(
        &self,
        unit: UnitId,
        start: u16,
        quantity: u16,
    ) -> impl Future<Output = Result<Vec<bool>, ClientError>> + Send {
        let request = CoilRange::new(start, quantity)
            .map(Request::ReadCoils)
            .map_err(range_error(0x01));
        typed(self, unit, request, bits)
    }

    /// 02: reads `quantity` discrete inputs from `start`.
    fn read_discrete_inputs(
        &self,
        unit: UnitId,
        start: u16,
        quantity: u16,
    ) -> impl Future<Output = Result<Vec<bool>, ClientError>> + Send {
        let request = CoilRange::new(start, quantity)
            .map(Request::ReadDiscreteInputs)
            .map_err(range_error(0x02));
        typed(self, unit, request, bits)
    }

    /// 03: reads `quantity` holding registers from `start`.
    fn read_holding_registers(
        &self,
        unit: UnitId,
        start: u16,
        quantity: u16,
    ) -> impl Future<Output = Result<Vec<u16>, ClientError>> + Send {
        let request = RegisterRange::new(start, quantity)
            .map(Request::ReadHoldingRegisters)
            .map_err(range_error(0x03));
        typed(self, unit, request, words)
    }

    /// 04: reads `quantity` input registers from `start`.
    fn read_input_registers(
        &self,
        unit: UnitId,
        start: u16,
        quantity: u16,
    ) -> impl Future<Output = Result<Vec<u16>, ClientError>> + Send {
        let request = RegisterRange::new(start, quantity)
            .map(Request::ReadInputRegisters)
            .map_err(range_error(0x04));
        typed(self, unit, request, words)
    }

    /// 05: sets one coil.
    fn write_single_coil(
        &self,
        unit: UnitId,
        address: u16,
        value: bool,
    ) -> impl Future<Output = Result<(), ClientError>> + Send {
        typed(self, unit, Ok(Request::WriteSingleCoil { address, value }), |_| ())
    }

    /// 06: sets one holding register.
    fn write_single_register(
        &self,
        unit: UnitId,
        address: u16,
        value: u16,
    ) -> impl Future<Output = Result<(), ClientError>> + Send {
        typed(self, unit, Ok(Request::WriteSingleRegister { address, value }), |_| ())
    }

    /// 0F: sets consecutive coils from `start`.
    fn write_multiple_coils(
        &self,
        unit: UnitId,
        start: u16,
        values: &[bool],
    ) -> impl Future<Output = Result<(), ClientError>> + Send {
        let request = CoilWrite::new(start, Bits::from_bools(values))
            .map(Request::WriteMultipleCoils)
            .map_err(range_error(0x0F));
        typed(self, unit, request, |_| ())
    }

    /// 10: sets consecutive holding registers from `start`.
    fn write_multiple_registers(
        &self,
        unit: UnitId,
        start: u16,
        values: &[u16],
    ) -> impl Future<Output = Result<(), ClientError>> + Send {
        let request = RegisterWrite::new(start, Words::from_slice(values))
            .map(Request::WriteMultipleRegisters)
            .map_err(range_error(0x10));
        typed(self, unit, request, |_| ())
    }

    /// 16: `value = (value AND and_mask) OR (or_mask AND NOT and_mask)`.
    fn mask_write_register(
        &self,
        unit: UnitId,
        address: u16,
        and_mask: u16,
        or_mask: u16,
    ) -> impl Future<Output = Result<(), ClientError>> + Send {
        let request = Request::MaskWriteRegister {
            address,
            and_mask,
            or_mask,
        };
        typed(self, unit, Ok(request), |_| ())
    }

    /// 17: writes `values` from `write_start`, then reads `read_quantity`
    /// registers from `read_start`, in one transaction.
    fn read_write_multiple_registers(
        &self,
        unit: UnitId,
        read_start: u16,
        read_quantity: u16,
        write_start: u16,
        values: &[u16],
    ) -> impl Future<Output = Result<Vec<u16>, ClientError>> + Send {
        let request = RegisterRange::new(read_start, read_quantity)
            .and_then(|read| {
                Ok(ReadWriteRegisters {
                    read,
                    write: RegisterWrite::new(write_start, Words::from_slice(values))?,
                })
            })
            .map(Request::ReadWriteMultipleRegisters)
            .map_err(range_error(0x17));
        typed(self, unit, request, words)
    }
}

/// Encodes a request: the expectation and the PDU bytes.
fn prepare(request: &Request<'_>) -> Result<(Expectation, Bytes), ClientError> {
    let mut buf = [0u8; MAX_PDU_LEN];
    let n = request.encode(&mut buf)?;
    Ok((Expectation::new(request), Bytes::copy_from_slice(&buf[..n])))
}

/// A checked answer, or the device's exception as an error.
fn finish(expect: Expectation, pdu: Bytes) -> Result<Answer, ClientError> {
    match expect.check(&pdu)? {
        Response::Exception { code, .. } => Err(ClientError::Exception(code)),
        _ => Ok(Answer { pdu, expect }),
    }
}

/// Sends a request built from typed arguments and reads its answer with `read`.
fn typed<'c, C, T>(
    client: &'c C,
    unit: UnitId,
    request: Result<Request<'_>, ClientError>,
    read: fn(Response<'_>) -> T,
) -> impl Future<Output = Result<T, ClientError>> + Send + 'c
where
    C: Requests + ?Sized,
    T: Send + 'c,
{
    let prepared = request.and_then(|r| prepare(&r));
    let timeout = client.default_timeout();
    async move {
        let (expect, pdu) = prepared?;
        let answer = finish(expect, client.exchange(unit, expect, pdu, timeout).await?)?;
        Ok(read(answer.response()?))
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
