//! `outpost read` and `outpost write`: a small Modbus TCP client (plain, or
//! Modbus/TCP Security with a certificate) for checking a gateway or a
//! device, with text or JSON output.

use std::path::PathBuf;
use std::time::Duration;

use outpost_modbus_core::UnitId;
use outpost_tunnel_tokio::modbus::{Client, ClientError, Requests};
use outpost_tunnel_tokio::security::SecureClientTls;

use crate::Failure;

/// Where to send the request, and how.
#[derive(Debug, clap::Args)]
pub(crate) struct Target {
    /// The gateway or device, host:port.
    #[arg(long, short = 'a', default_value = "127.0.0.1:502")]
    address: String,
    /// The unit id.
    #[arg(long, short = 'u', default_value_t = 1)]
    unit: u8,
    /// How long to wait for the answer, in ms.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
    /// Modbus/TCP Security: this client's certificate (carrying its role).
    #[arg(long, requires_all = ["key", "ca"])]
    cert: Option<PathBuf>,
    /// Modbus/TCP Security: this client's key.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Modbus/TCP Security: the CA the server's certificate chains to.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Modbus/TCP Security: the name the server's certificate carries
    /// (default: the host of --address).
    #[arg(long)]
    server_name: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// A table of the Modbus data model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Table {
    /// Coils (read and write).
    Coils,
    /// Discrete inputs (read only).
    DiscreteInputs,
    /// Holding registers (read and write).
    Holding,
    /// Input registers (read only).
    Input,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Coils => "coils",
            Table::DiscreteInputs => "discrete-inputs",
            Table::Holding => "holding",
            Table::Input => "input",
        }
    }
}

impl Target {
    fn client(&self) -> Result<Client, Failure> {
        let mut builder = Client::tcp(self.address.clone()).timeout(Duration::from_millis(self.timeout_ms));
        if let (Some(cert), Some(key), Some(ca)) = (&self.cert, &self.key, &self.ca) {
            let host = self.address.rsplit_once(':').map_or(self.address.as_str(), |(h, _)| h);
            let name = self.server_name.as_deref().unwrap_or(host);
            let tls = SecureClientTls::from_pem_files(cert, key, ca, name)
                .map_err(|e| Failure::Config(vec![e.to_string()]))?;
            builder = builder.tls(tls);
        }
        Ok(builder.build())
    }
}

fn failed(target: &Target, e: ClientError) -> Failure {
    Failure::Runtime(format!("{}: {e}", target.address))
}

/// Reads `count` values of `table` from `start` and prints them.
pub(crate) async fn read(target: Target, table: Table, start: u16, count: u16) -> Result<(), Failure> {
    let client = target.client()?;
    let unit = UnitId(target.unit);
    let values: Vec<serde_json::Value> = match table {
        Table::Coils => bits(client.read_coils(unit, start, count).await),
        Table::DiscreteInputs => bits(client.read_discrete_inputs(unit, start, count).await),
        Table::Holding => words(client.read_holding_registers(unit, start, count).await),
        Table::Input => words(client.read_input_registers(unit, start, count).await),
    }
    .map_err(|e| failed(&target, e))?;
    if target.json {
        let out = serde_json::json!({
            "address": target.address, "unit": target.unit, "table": table.name(), "start": start, "values": values,
        });
        println!("{out}");
    } else {
        for (i, v) in values.iter().enumerate() {
            println!("{} {} = {v}", table.name(), usize::from(start) + i);
        }
    }
    Ok(())
}

fn bits(r: Result<Vec<bool>, ClientError>) -> Result<Vec<serde_json::Value>, ClientError> {
    r.map(|v| v.into_iter().map(serde_json::Value::from).collect())
}

fn words(r: Result<Vec<u16>, ClientError>) -> Result<Vec<serde_json::Value>, ClientError> {
    r.map(|v| v.into_iter().map(serde_json::Value::from).collect())
}

fn coil(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "on" => Ok(true),
        "0" | "false" | "off" => Ok(false),
        _ => Err(format!("{text:?} is not a coil value (1/0, true/false, on/off)")),
    }
}

fn register(text: &str) -> Result<u16, String> {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u16::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("{text:?} is not a register value (0 to 65535, or 0x0000 to 0xFFFF)"))
}

/// Writes `values` to `table` from `start` (one value: the single-write
/// function; more: the multiple-write one).
pub(crate) async fn write(target: Target, table: Table, start: u16, values: Vec<String>) -> Result<(), Failure> {
    let unit = UnitId(target.unit);
    let result = match table {
        Table::Coils => {
            let values: Vec<bool> = values
                .iter()
                .map(|v| coil(v))
                .collect::<Result<_, _>>()
                .map_err(|e| Failure::Config(vec![e]))?;
            let client = target.client()?;
            match values.as_slice() {
                [one] => client.write_single_coil(unit, start, *one).await,
                many => client.write_multiple_coils(unit, start, many).await,
            }
        }
        Table::Holding => {
            let values: Vec<u16> = values
                .iter()
                .map(|v| register(v))
                .collect::<Result<_, _>>()
                .map_err(|e| Failure::Config(vec![e]))?;
            let client = target.client()?;
            match values.as_slice() {
                [one] => client.write_single_register(unit, start, *one).await,
                many => client.write_multiple_registers(unit, start, many).await,
            }
        }
        other => {
            return Err(Failure::Config(vec![format!(
                "{} are read only: write coils or holding registers",
                other.name()
            )]))
        }
    };
    result.map_err(|e| failed(&target, e))?;
    if target.json {
        println!(
            "{}",
            serde_json::json!({"address": target.address, "unit": target.unit, "table": table.name(), "start": start, "written": values.len()})
        );
    } else {
        println!("wrote {} {} from {start}", values.len(), table.name());
    }
    Ok(())
}
