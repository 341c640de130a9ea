//! The plant devices an agent serves: where each is, which units it
//! answers for, and how many requests it takes at once.

use std::sync::Arc;
use std::time::Duration;

use outpost_modbus_core::UnitId;
use tokio::sync::Semaphore;

use crate::modbus::Client;

/// How the agent reaches a device.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Link {
    Tcp(String),
    RtuOverTcp(String),
    #[cfg(feature = "serial")]
    Serial(String, u32),
}

/// A named plant device the hub may address through the agent.
///
/// ```
/// use std::time::Duration;
/// use outpost_modbus_core::UnitId;
/// use outpost_tunnel_tokio::agent::Device;
///
/// let plc = Device::tcp("plc-1", "10.1.2.3:502").units([UnitId(1)]);
/// let meters = Device::rtu_over_tcp("meters", "10.1.2.9:4001")
///     .units((1..=8).map(UnitId))
///     .timeout(Duration::from_millis(500));
/// ```
#[derive(Debug, Clone)]
pub struct Device {
    pub(crate) name: String,
    link: Link,
    units: [bool; 256],
    max_in_flight: usize,
    queue: usize,
    timeout: Duration,
}

impl Device {
    fn new(name: &str, link: Link) -> Self {
        Device {
            name: name.to_owned(),
            link,
            units: [false; 256],
            max_in_flight: 1,
            queue: 16,
            timeout: Duration::from_secs(1),
        }
    }

    /// A Modbus TCP device at `address` (`host:port`).
    pub fn tcp(name: &str, address: &str) -> Self {
        Self::new(name, Link::Tcp(address.to_owned()))
    }

    /// RTU devices behind a serial-to-TCP gateway at `address`.
    pub fn rtu_over_tcp(name: &str, address: &str) -> Self {
        Self::new(name, Link::RtuOverTcp(address.to_owned()))
    }

    /// RTU devices on a local serial port (feature `serial`), 8E1 at `baud`.
    #[cfg(feature = "serial")]
    pub fn rtu_serial(name: &str, path: &str, baud: u32) -> Self {
        Self::new(name, Link::Serial(path.to_owned(), baud))
    }

    /// Unit ids the hub may address on this device (none by default: every
    /// request is denied with exception 0A until units are listed).
    pub fn units(mut self, units: impl IntoIterator<Item = UnitId>) -> Self {
        for u in units {
            self.units[usize::from(u.0)] = true;
        }
        self
    }

    /// Requests sent to the device at once (1: many devices handle one at a
    /// time). RTU over TCP always has one.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.clamp(1, crate::modbus::MAX_IN_FLIGHT);
        self
    }

    /// Requests that may wait for the device (16); past that they are
    /// answered BUSY.
    pub fn queue(mut self, n: usize) -> Self {
        self.queue = n;
        self
    }

    /// How long the device may take to answer (1 s); the hub's budget may
    /// shorten it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The device's name, as the hub addresses it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A device with its client, shared by every session of the agent.
#[derive(Debug)]
pub(crate) struct DeviceRuntime {
    pub(crate) name: String,
    pub(crate) client: Client,
    units: [bool; 256],
    /// Permits for requests in flight or waiting.
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) timeout: Duration,
}

impl DeviceRuntime {
    /// Starts the device's client (it connects on the first request).
    pub(crate) fn start(device: &Device) -> Self {
        let builder = match &device.link {
            Link::Tcp(address) => Client::tcp(address.clone()),
            Link::RtuOverTcp(address) => Client::rtu_over_tcp(address.clone()),
            #[cfg(feature = "serial")]
            Link::Serial(path, baud) => Client::rtu_serial(path, *baud),
        };
        let client = builder
            .max_in_flight(device.max_in_flight)
            .queue(device.queue.max(1))
            .timeout(device.timeout)
            .build();
        DeviceRuntime {
            name: device.name.clone(),
            client,
            units: device.units,
            slots: Arc::new(Semaphore::new(device.max_in_flight + device.queue)),
            timeout: device.timeout,
        }
    }

    /// Whether the hub may address `unit` here.
    pub(crate) fn serves(&self, unit: UnitId) -> bool {
        self.units[usize::from(unit.0)]
    }
}
