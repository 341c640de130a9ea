//! The hub's process: every agent's secret, a hub on `listen`, and how
//! many agents it has, reported ten times a second.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use outpost_tunnel_proto::MemoryCredentials;
use outpost_tunnel_tokio::hub::Hub;

use crate::pki::{self, Error};

pub(crate) fn run(
    dir: &Path,
    listen: SocketAddr,
    agents: usize,
    max_handshakes: Option<usize>,
    per_source: Option<usize>,
) -> Result<(), Error> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let mut credentials = MemoryCredentials::new();
        for n in 0..agents {
            credentials.insert(pki::agent_id(n), pki::secret(n));
        }
        let mut builder = Hub::builder();
        if let Some(n) = max_handshakes {
            builder = builder.max_handshakes(n);
        }
        if let Some(n) = per_source {
            builder = builder.max_handshakes_per_source(n);
        }
        let hub = builder
            .listen(listen)
            .tls(pki::hub_tls(dir)?)
            .credentials(Arc::new(credentials))
            .start()
            .await?;
        println!("listening {}", hub.local_addr());
        loop {
            println!("agents {}", hub.stats().agents);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}
