//! The agents' process: `count` agents, each with its own certificate,
//! started together when the coordinator says `go`; how many are connected,
//! and how many connection attempts they made, is reported ten times a
//! second.

use std::io::BufRead;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use outpost_tunnel_tokio::agent::Agent;

use crate::pki::{self, AgentSigner, Error};

/// The address agent `n` dials from: one of `sources` loopback addresses,
/// as agents at `sources` sites would.
fn source(n: usize, sources: usize) -> IpAddr {
    let k = n % sources.max(1);
    IpAddr::from([127, 1, (k / 250) as u8, (k % 250) as u8 + 1])
}

pub(crate) fn run(dir: &Path, hub: SocketAddr, count: usize, sources: usize) -> Result<(), Error> {
    let signer = AgentSigner::load(dir)?;
    let mut agents = Vec::with_capacity(count);
    for n in 0..count {
        agents.push(
            Agent::builder()
                .hub(hub.to_string())
                .tls(signer.agent_tls(n)?)
                .identity(pki::agent_id(n), pki::secret(n))
                .local_address(source(n, sources))
                .build()?,
        );
    }
    println!("ready 1");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let running: Vec<_> = agents.into_iter().map(Agent::spawn).collect();
        loop {
            let up = running.iter().filter(|a| a.is_connected()).count();
            let attempts: u64 = running.iter().map(|a| a.stats().connects).sum();
            println!("connected {up} attempts {attempts}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}
