//! `outpost check`: loads a hub's or an agent's configuration as the
//! program would, says what it found, and lists every problem.

use std::path::Path;

use crate::Failure;

/// Which program a configuration file is for, by its keys.
fn kind(path: &Path) -> Result<&'static str, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure::Config(vec![format!("{}: {e}", path.display())]))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| Failure::Config(vec![format!("{}: {}", path.display(), e.message().replace('\n', " "))]))?;
    if table.contains_key("credentials") {
        Ok("hub")
    } else if table.contains_key("id") && table.contains_key("hub") {
        Ok("agent")
    } else {
        Err(Failure::Config(vec![format!(
            "{}: neither a hub configuration (it has `credentials`) nor an agent's (it has `id` and `hub`)",
            path.display()
        )]))
    }
}

pub(crate) fn run(path: &Path) -> Result<(), Failure> {
    match kind(path)? {
        #[cfg(feature = "hub")]
        "hub" => {
            use outpost_tunnel_tokio::config::HubConfig;
            let config = HubConfig::load(path).map_err(|e| Failure::Config(e.lines()))?;
            config.prepare().map_err(|e| Failure::Config(e.lines()))?;
            println!("{}: hub configuration OK", path.display());
            println!("  agents dial {}", config.listen);
            for g in &config.gateway {
                println!(
                    "  gateway on {} acting as role {}",
                    g.listen,
                    g.role.as_deref().unwrap_or("?")
                );
            }
            for g in &config.secure_gateway {
                println!(
                    "  modbus/tcp security gateway on {} (roles from certificates)",
                    g.listen
                );
            }
            Ok(())
        }
        #[cfg(feature = "agent")]
        "agent" => {
            use outpost_tunnel_tokio::config::AgentConfig;
            let config = AgentConfig::load(path).map_err(|e| Failure::Config(e.lines()))?;
            config.prepare().map_err(|e| Failure::Config(e.lines()))?;
            println!("{}: agent configuration OK", path.display());
            println!(
                "  agent {} dials {} (certificate name {})",
                config.id, config.hub, config.hub_name
            );
            for d in &config.device {
                println!("  device {} units {:?}", d.name, d.units);
            }
            let roles: Vec<&str> = config.policy.roles().collect();
            if roles.is_empty() {
                println!("  policy: no roles (every request is denied)");
            } else {
                println!("  policy roles: {}", roles.join(", "));
            }
            Ok(())
        }
        other => Err(Failure::Config(vec![format!(
            "{}: a {other} configuration, but this build has no {other} (cargo feature `{other}`)",
            path.display()
        )])),
    }
}
