//! `outpost`: the programs of an Outpost deployment in one command.
//!
//! An agent on the plant network collects data as a Modbus client and
//! opens one outbound, authenticated, encrypted connection to a hub on the
//! IT side; IT software reaches the devices through the hub's gateways.
//!
//! ```sh
//! outpost certs init pki --hub-name hub.example
//! outpost certs agent plant-7 --dir pki
//! outpost check --config hub.toml
//! outpost hub --config hub.toml
//! outpost agent --config agent.toml
//! outpost read --address 127.0.0.1:5020 holding 0 10
//! ```
//!
//! Exit codes: 0 success; 1 a runtime failure (a port in use, a device
//! that answers with an exception, a connection refused); 2 a usage or
//! configuration error (each problem on its own line).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "agent")]
mod agent;
mod certs;
mod check;
mod client;
#[cfg(feature = "hub")]
mod hub;
mod logging;
#[cfg(any(feature = "hub", feature = "agent"))]
mod metrics;
mod signals;
mod sim;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Parser, Subcommand};

/// Why the command failed, and so its exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A usage or configuration error: every problem, one per line (exit 2).
    Config(Vec<String>),
    /// Something failed at run time (exit 1).
    Runtime(String),
}

const EXAMPLES: &str = "\
Examples:
  outpost certs init pki --hub-name hub.example     make the CAs and the hub's certificate
  outpost certs agent plant-7 --dir pki             an agent's certificate and secret
  outpost check --config hub.toml                   check a configuration without starting
  outpost hub --config hub.toml                     run the hub (IT side)
  outpost agent --config agent.toml                 run an agent (plant side; listens on nothing)
  outpost sim --listen 127.0.0.1:5502               a simulated Modbus device
  outpost read -a 127.0.0.1:5020 holding 0 10       read through a gateway

Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.";

/// Secure remote access to Modbus devices: a plant agent dials out to a
/// hub, and IT software reaches the devices through the hub.
#[derive(Debug, Parser)]
#[command(name = "outpost", version, after_help = EXAMPLES)]
struct Cli {
    /// More log output (-v debug, -vv trace); RUST_LOG, when set, wins.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    /// Less log output (-q warnings, -qq errors only).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    quiet: u8,
    /// How log lines (on standard error) are written.
    #[arg(long, value_enum, default_value = "text", global = true)]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the hub: accepts agents, serves its Modbus gateways.
    ///
    /// SIGHUP reloads credentials, certificates and CRLs (revoked agents and
    /// clients are closed at once); SIGTERM or Ctrl-C stop it (exit 0).
    ///
    /// Example: outpost hub --config /etc/outpost/hub.toml
    #[cfg(feature = "hub")]
    Hub {
        /// The hub's configuration file.
        #[arg(short, long)]
        config: PathBuf,
        /// Prints the values agents' scan groups report, as they arrive:
        /// every point, or those of one agent (`plant-7`), device
        /// (`plant-7/plc-1`), group (`plant-7/plc-1/boiler`) or point
        /// (`plant-7/plc-1/boiler/temperature`); `*` matches any.
        #[arg(long, value_name = "FILTER", num_args = 0..=1, default_missing_value = "*")]
        values: Option<String>,
    },
    /// Runs an agent: dials the hub, serves the plant's devices under its policy.
    ///
    /// SIGHUP reloads the access policy from the file; SIGTERM or Ctrl-C
    /// finish the requests in service (5 s at most), tell the hub the stop
    /// is planned, and exit 0.
    ///
    /// Example: outpost agent --config /etc/outpost/agent.toml
    #[cfg(feature = "agent")]
    Agent {
        /// The agent's configuration file.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Checks a hub's or an agent's configuration: every file loads,
    /// certificates match their keys and CAs, modes are safe, routes and
    /// devices are consistent. Lists every problem; exit 2 if there is one.
    ///
    /// Example: outpost check --config /etc/outpost/agent.toml
    Check {
        /// The configuration file (hub or agent, told apart by its keys).
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Makes and revokes certificates (the PKI a small deployment needs).
    #[command(subcommand)]
    Certs(certs::Certs),
    /// A simulated Modbus TCP device (100 of each table).
    ///
    /// Example: outpost sim --listen 127.0.0.1:5502
    Sim {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:5502")]
        listen: String,
    },
    /// Reads from a Modbus TCP device or gateway.
    ///
    /// Example: outpost read --address 127.0.0.1:5020 --unit 1 holding 0 10
    Read {
        #[command(flatten)]
        target: client::Target,
        /// The table.
        #[arg(value_enum)]
        table: client::Table,
        /// The first address.
        start: u16,
        /// How many values.
        #[arg(default_value_t = 1)]
        count: u16,
    },
    /// Writes to a Modbus TCP device or gateway (one value: the single
    /// write; several: the multiple write).
    ///
    /// Example: outpost write --address 127.0.0.1:5020 holding 12 1200
    Write {
        #[command(flatten)]
        target: client::Target,
        /// The table (coils or holding).
        #[arg(value_enum)]
        table: client::Table,
        /// The first address.
        start: u16,
        /// The values: registers as numbers (or 0x hex), coils as 1/0, on/off, true/false.
        #[arg(required = true)]
        values: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(
        i8::try_from(i16::from(cli.verbose) - i16::from(cli.quiet)).unwrap_or(0),
        cli.log_format,
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("outpost: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            #[cfg(feature = "hub")]
            Command::Hub { config, values } => hub::run(&config, values.as_deref()).await,
            #[cfg(feature = "agent")]
            Command::Agent { config } => agent::run(&config).await,
            Command::Check { config } => check::run(&config),
            Command::Certs(command) => certs::run(command),
            Command::Sim { listen } => sim::run(&listen).await,
            Command::Read {
                target,
                table,
                start,
                count,
            } => client::read(target, table, start, count).await,
            Command::Write {
                target,
                table,
                start,
                values,
            } => client::write(target, table, start, values).await,
        }
    });
    // Tasks still running (connections) end with the runtime, at once.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(problems)) => {
            for p in problems {
                eprintln!("outpost: {p}");
            }
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("outpost: {e}");
            ExitCode::from(1)
        }
    }
}
