//! An async Modbus TCP server over a user's data model.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::tasks::accept_loop;
use bytes::{Buf, BytesMut};
use outpost_modbus_core::access::Denial;
use outpost_modbus_core::frame::mbap;
use outpost_modbus_core::server::{DataModel, Server as Dispatcher};
use outpost_modbus_core::{ExceptionCode, Request, Transport, UnitId};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

/// Settings of a [`Server`].
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    max_connections: usize,
    idle_timeout: Duration,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            max_connections: 32,
            idle_timeout: Duration::from_secs(120),
        }
    }
}

impl ServerBuilder {
    /// Clients served at once (32); a connection past it is closed at once.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// A connection silent this long is closed (120 s).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Accepts clients on `listener` and answers them from `model` until
    /// the returned future is dropped (which also ends every connection).
    pub async fn serve<M>(self, listener: TcpListener, model: Arc<Mutex<M>>) -> io::Result<()>
    where
        M: DataModel + Send + 'static,
    {
        let max_connections = self.max_connections;
        let idle = self.idle_timeout;
        accept_loop(listener, "modbus server", |stream, peer, connections| {
            if connections.len() >= max_connections {
                warn!(%peer, limit = max_connections, "modbus server full; connection closed");
                return;
            }
            let _ = stream.set_nodelay(true);
            let model = Arc::clone(&model);
            connections.spawn(async move {
                if let Err(e) = serve_connection(stream, model, idle, None).await {
                    debug!(%peer, error = %e, "modbus connection ended");
                }
            });
        })
        .await;
        Ok(())
    }
}

/// An async Modbus TCP server: each connection's requests are answered in
/// order from a shared data model.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use std::sync::{Arc, Mutex};
/// use outpost_modbus_core::server::DataModel;
/// use outpost_tunnel_tokio::modbus::Server;
///
/// struct Device;
/// impl DataModel for Device {}
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// Server::builder().serve(listener, Arc::new(Mutex::new(Device))).await
/// # }
/// ```
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Settings, to start serving with [`ServerBuilder::serve`].
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Binds `address` and serves `model` with default settings.
    pub async fn bind<M>(address: SocketAddr, model: Arc<Mutex<M>>) -> io::Result<()>
    where
        M: DataModel + Send + 'static,
    {
        let listener = TcpListener::bind(address).await?;
        info!(address = %listener.local_addr()?, "modbus server listening");
        ServerBuilder::default().serve(listener, model).await
    }
}

/// Decides, before the model sees it, whether a request may be served;
/// a refusal is answered with exception 01 (Modbus/TCP Security).
pub(crate) type Gatekeeper<'a> = &'a (dyn Fn(UnitId, &Request<'_>) -> Result<(), Denial> + Send + Sync);

/// Answers the Modbus TCP requests on one connection until it closes, it
/// breaks the framing, or it is silent for `idle`.
pub(crate) async fn serve_connection<M, S>(
    mut stream: S,
    model: Arc<Mutex<M>>,
    idle: Duration,
    authorize: Option<Gatekeeper<'_>>,
) -> io::Result<()>
where
    M: DataModel + Send + ?Sized,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut dispatcher = Dispatcher::new(Transport::Tcp);
    let mut buf = BytesMut::with_capacity(2 * mbap::MAX_ADU_LEN);
    let mut out = [0u8; mbap::MAX_ADU_LEN];
    let mut replies: Vec<u8> = Vec::new();
    loop {
        loop {
            let frame = match mbap::decode(&buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            };
            let len = frame.len();
            let refused = match (authorize, Request::decode(frame.pdu)) {
                (Some(authorize), Ok(request)) => authorize(frame.header.unit, &request).is_err(),
                // Undecodable requests never reach the model: the
                // dispatcher answers them with their exception.
                _ => false,
            };
            let answer = if refused {
                // Not authorised: exception 01, the model never sees it.
                let response = &mut out[mbap::HEADER_LEN..];
                response[0] = frame.pdu[0] | 0x80;
                response[1] = ExceptionCode::IllegalFunction.value();
                Ok(Some(2))
            } else {
                let mut model = model.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                dispatcher.handle(&mut *model, frame.header.unit, frame.pdu, &mut out[mbap::HEADER_LEN..])
            };
            match answer {
                Ok(Some(n)) => {
                    let start = replies.len();
                    replies.resize(start + mbap::MAX_ADU_LEN, 0);
                    let n = mbap::encode(
                        frame.header,
                        &out[mbap::HEADER_LEN..mbap::HEADER_LEN + n],
                        &mut replies[start..],
                    )
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    replies.truncate(start + n);
                    buf.advance(len);
                }
                Ok(None) => buf.advance(len),
                Err(e) => return Err(io::Error::other(e)),
            }
        }
        // Every answer to what was read goes out, in one write, before
        // waiting for more (a TLS stream keeps records back until flushed).
        if !replies.is_empty() {
            stream.write_all(&replies).await?;
            replies.clear();
        }
        stream.flush().await?;
        match tokio::time::timeout(idle, stream.read_buf(&mut buf)).await {
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "idle")),
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use outpost_modbus_core::RegisterRange;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::held::HeldUntilFlush;

    struct Counting;

    impl DataModel for Counting {
        fn read_holding_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
            for (i, o) in out.iter_mut().enumerate() {
                *o = range.start() + i as u16;
            }
            Ok(())
        }
    }

    /// Over a stream that sends nothing until flushed (TLS), every answer
    /// still goes out before the server waits for the next request.
    #[tokio::test]
    async fn answers_are_flushed_before_the_next_read() {
        let (mut client, server) = tokio::io::duplex(4096);
        let model = Arc::new(Mutex::new(Counting));
        let served = tokio::spawn(async move {
            serve_connection(HeldUntilFlush::new(server), model, Duration::from_secs(10), None).await
        });
        for id in 1..=3u8 {
            client
                .write_all(&[0, id, 0, 0, 0, 6, 1, 0x03, 0, 7, 0, 2])
                .await
                .unwrap();
            let mut answer = [0u8; 13];
            tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut answer))
                .await
                .expect("the answer went out")
                .unwrap();
            assert_eq!(answer, [0, id, 0, 0, 0, 7, 1, 0x03, 4, 0, 7, 0, 8]);
        }
        drop(client);
        served.await.unwrap().unwrap();
    }
}
