//! Limits and timers of a session, with safe defaults.

use std::time::Duration;

use crate::frame::{MAX_PAYLOAD_LEN, MIN_FRAME_LIMIT};

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// A setting refused because it is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{setting} must be in {min}..={max} (got {value})")]
pub struct ConfigError {
    /// The setting.
    pub setting: &'static str,
    /// The value given.
    pub value: u64,
    /// The smallest value allowed.
    pub min: u64,
    /// The largest value allowed.
    pub max: u64,
}

fn check(setting: &'static str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError {
            setting,
            value,
            min,
            max,
        })
    }
}

/// Limits and timers shared by both roles.
///
/// Every limit bounds memory or work an untrusted peer can cause. The
/// defaults suit a tunnel carrying Modbus transactions and a few forwarded
/// streams; a hub with thousands of agents may want smaller windows.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) versions: Vec<u16>,
    pub(crate) max_frame_size: u32,
    pub(crate) max_handshake_size: u32,
    pub(crate) max_channels: u32,
    pub(crate) max_pending_opens: u32,
    pub(crate) channel_window: u32,
    pub(crate) session_window: u32,
    pub(crate) max_send_buffer: u64,
    pub(crate) handshake_timeout: Duration,
    pub(crate) keepalive_interval: Duration,
    pub(crate) peer_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            versions: vec![PROTOCOL_VERSION],
            max_frame_size: 16 * 1024,
            max_handshake_size: 512,
            max_channels: 256,
            max_pending_opens: 32,
            channel_window: 256 * 1024,
            session_window: 1024 * 1024,
            max_send_buffer: 1024 * 1024,
            handshake_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(15),
            peer_timeout: Duration::from_secs(45),
            idle_timeout: None,
        }
    }
}

impl Config {
    /// Largest frame payload this side accepts, announced in the handshake;
    /// the peer splits data to fit. Default 16 KiB; 1 KiB to 16 MiB − 1.
    pub fn max_frame_size(&mut self, bytes: u32) -> Result<&mut Self, ConfigError> {
        check(
            "max_frame_size",
            bytes.into(),
            MIN_FRAME_LIMIT.into(),
            MAX_PAYLOAD_LEN.into(),
        )?;
        self.max_frame_size = bytes;
        Ok(self)
    }

    /// Largest HELLO this side accepts. Default 512 bytes; 256 to 65 536.
    pub fn max_handshake_size(&mut self, bytes: u32) -> Result<&mut Self, ConfigError> {
        check("max_handshake_size", bytes.into(), 256, 65_536)?;
        self.max_handshake_size = bytes;
        Ok(self)
    }

    /// Most channels open at once, both directions and every state counted.
    /// Default 256; 1 to 2^20. Opens beyond it are refused with `LimitExceeded`.
    pub fn max_channels(&mut self, channels: u32) -> Result<&mut Self, ConfigError> {
        check("max_channels", channels.into(), 1, 1 << 20)?;
        self.max_channels = channels;
        Ok(self)
    }

    /// Most channels the peer opened that the application has not yet
    /// accepted or refused. Default 32; 1 to 2^20.
    pub fn max_pending_opens(&mut self, opens: u32) -> Result<&mut Self, ConfigError> {
        check("max_pending_opens", opens.into(), 1, 1 << 20)?;
        self.max_pending_opens = opens;
        Ok(self)
    }

    /// Receive window of each channel: the most bytes buffered for one
    /// channel before the application reads them. Default 256 KiB; at least
    /// 1. On a message channel no message longer than the window can arrive.
    pub fn channel_window(&mut self, bytes: u32) -> Result<&mut Self, ConfigError> {
        check("channel_window", bytes.into(), 1, u32::MAX.into())?;
        self.channel_window = bytes;
        Ok(self)
    }

    /// Receive window of the whole session: the most bytes buffered for all
    /// channels together. Default 1 MiB; at least 1.
    pub fn session_window(&mut self, bytes: u32) -> Result<&mut Self, ConfigError> {
        check("session_window", bytes.into(), 1, u32::MAX.into())?;
        self.session_window = bytes;
        Ok(self)
    }

    /// Most bytes the application may queue for sending before the session
    /// has transmitted them, over all channels. Default 1 MiB; at least 1.
    pub fn max_send_buffer(&mut self, bytes: u64) -> Result<&mut Self, ConfigError> {
        check("max_send_buffer", bytes, 1, u64::MAX)?;
        self.max_send_buffer = bytes;
        Ok(self)
    }

    /// Time from the session's start for the handshake to finish. Default 10 s.
    pub fn handshake_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Quiet time after which a PING is sent. Default 15 s. Keep it well
    /// under [`Config::peer_timeout`].
    pub fn keepalive_interval(&mut self, interval: Duration) -> &mut Self {
        self.keepalive_interval = interval;
        self
    }

    /// Silence after which the peer is taken for dead and the session
    /// closes with `Timeout`. Default 45 s.
    pub fn peer_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.peer_timeout = timeout;
        self
    }

    /// Time with no open channel after which the session shuts down with
    /// `Idle`. Default: never.
    pub fn idle_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.idle_timeout = timeout;
        self
    }

    #[cfg(test)]
    pub(crate) fn versions(&mut self, versions: &[u16]) -> &mut Self {
        self.versions = versions.to_vec();
        self
    }
}
