//! Made-up sensor readings: what a gateway would collect from its field bus.
//!
//! Reading `seq` comes from sensor `seq % SENSORS`. The key is the sensor's name, so all of a
//! sensor's readings land in one partition, in order; the value is a small JSON object that
//! carries the sequence number, so a consumer can check that every reading arrived once and
//! in order per sensor:
//!
//! ```text
//! key   sensor-3
//! value {"sensor":"sensor-3","seq":11,"celsius":21.7}
//! ```

use core::fmt::Write;

use heapless::String;

/// Sensors on this gateway.
pub const SENSORS: u32 = 8;

/// One reading, encoded.
pub struct Reading {
    /// The sensor's name: the record key.
    pub key: String<16>,
    /// The JSON text: the record value.
    pub value: String<64>,
}

impl Reading {
    /// Reading number `seq`.
    pub fn new(seq: u32) -> Reading {
        let sensor = seq % SENSORS;
        // A temperature that wanders between 18.0 and 27.9 °C, in tenths.
        let tenths = 180 + (sensor * 10 + seq.wrapping_mul(37) % 61) % 100;
        let mut key = String::new();
        let mut value = String::new();
        // Both fit: at most "sensor-7" and about 55 bytes of JSON for a 10-digit `seq`.
        let _ = write!(key, "sensor-{sensor}");
        let _ = write!(
            value,
            "{{\"sensor\":\"{key}\",\"seq\":{seq},\"celsius\":{}.{}}}",
            tenths / 10,
            tenths % 10
        );
        Reading { key, value }
    }
}
