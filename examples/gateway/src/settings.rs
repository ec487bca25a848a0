//! The run's settings, from the semihosting command line (QEMU's
//! `-semihosting-config ...,arg=gateway,arg=port=9092,arg=records=1000`).

use embassy_time::Duration;
use semihosting::experimental::env::{Args, args};
use static_cell::StaticCell;

/// Bytes kept for the whole command line.
const ARGS_BYTES: usize = 512;

/// What to do in this run. Every field has a default; `KEY=VALUE` arguments override them.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// `port=PORT`: the broker's port on the host, reached at 10.0.2.2 (default 9092).
    pub port: u16,
    /// `records=N`: how many sensor readings to produce (default 1000).
    pub records: u32,
    /// `topic=NAME`: where to produce them (default `sensors`).
    pub topic: &'static str,
    /// `deadline_ms=MS`: each record's delivery deadline, counted from when it is produced
    /// (default 30000).
    pub deadline: Duration,
    /// `seed=N`: seed of the TCP stack's random numbers (initial sequence numbers, local
    /// ports). Give a different one per run, or a broker may see a new connection reuse the
    /// last run's local port (default 0x5eed).
    pub seed: u64,
    /// `epoch_ms=MS`: Unix time at boot, in milliseconds, the clock the application sets:
    /// record timestamps count from it, and the producer is told it
    /// (`Producer::set_wall_clock`). Without it the firmware has no wall clock: records go
    /// without a timestamp and nothing checks them (see the README on gateways without a
    /// clock).
    pub epoch_ms: Option<u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            port: 9092,
            records: 1000,
            topic: "sensors",
            deadline: Duration::from_secs(30),
            seed: 0x5eed,
            epoch_ms: None,
        }
    }
}

/// Why the command line was refused.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub enum SettingsError {
    /// The host gave no command line, or one longer than the buffer.
    Unavailable,
    /// An argument is not valid UTF-8.
    NotUtf8,
    /// An argument is not `KEY=VALUE` with a known key and a valid value.
    Invalid(&'static str),
}

impl Settings {
    /// Reads the command line (argument 0, the program name, is skipped). Call once: the
    /// arguments are kept in a static for the topic name to borrow.
    pub fn from_args() -> Result<Settings, SettingsError> {
        static ARGS: StaticCell<Args<ARGS_BYTES>> = StaticCell::new();
        let args: &'static Args<ARGS_BYTES> =
            ARGS.init(args::<ARGS_BYTES>().map_err(|_| SettingsError::Unavailable)?);
        let mut settings = Settings::default();
        for arg in args.skip(1) {
            let arg = arg.map_err(|_| SettingsError::NotUtf8)?;
            settings.apply(arg).ok_or(SettingsError::Invalid(arg))?;
        }
        Ok(settings)
    }

    /// Applies one `KEY=VALUE`; `None` if the key is unknown or the value invalid.
    fn apply(&mut self, arg: &'static str) -> Option<()> {
        let (key, value) = arg.split_once('=')?;
        match key {
            "port" => self.port = value.parse().ok().filter(|&p| p != 0)?,
            "records" => self.records = value.parse().ok()?,
            "topic" if !value.is_empty() => self.topic = value,
            "deadline_ms" => {
                self.deadline = Duration::from_millis(value.parse().ok().filter(|&ms| ms > 0)?);
            }
            "seed" => self.seed = value.parse().ok()?,
            "epoch_ms" => self.epoch_ms = Some(value.parse().ok()?),
            _ => return None,
        }
        Some(())
    }
}
