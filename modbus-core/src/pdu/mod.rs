//! Protocol data units: the function code and data, independent of framing.

mod build;
pub(crate) mod device_id;
pub(crate) mod file;
pub(crate) mod raw;
pub(crate) mod request;
pub(crate) mod response;

use crate::error::EncodeError;

/// Something that encodes as one PDU: a [`crate::Request`], a
/// [`crate::Response`], or raw PDU bytes (`[u8]`).
pub trait Encode {
    /// Length of the encoded PDU in bytes.
    fn encoded_len(&self) -> usize;
    /// Encode into `buf`; returns the number of bytes written.
    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError>;
}

impl Encode for request::Request<'_> {
    #[inline]
    fn encoded_len(&self) -> usize {
        request::Request::encoded_len(self)
    }
    #[inline]
    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        request::Request::encode(self, buf)
    }
}

impl Encode for response::Response<'_> {
    #[inline]
    fn encoded_len(&self) -> usize {
        response::Response::encoded_len(self)
    }
    #[inline]
    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        response::Response::encode(self, buf)
    }
}

impl Encode for [u8] {
    #[inline]
    fn encoded_len(&self) -> usize {
        self.len()
    }
    #[inline]
    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = crate::codec::Writer::new(buf, self.len(), crate::codec::MAX_PDU_LEN)?;
        w.bytes(self)?;
        Ok(self.len())
    }
}
