//! A logger for a test process that keeps every line logged through `log` (the producer's
//! and transport-std's), to check what they say: that no password or token is in them, say.
//! Every test of the process (test binary) shares it, so [`lines`] holds all of theirs.

use std::sync::{Mutex, OnceLock};

struct Capture {
    lines: Mutex<Vec<String>>,
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        self.lines.lock().unwrap().push(line);
    }

    fn flush(&self) {}
}

static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();

/// Installs the capturing logger (every level) if this process has none yet; another logger
/// already installed is left in place, and then nothing is captured.
pub fn install() {
    CAPTURE.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::new(Capture {
            lines: Mutex::new(Vec::new()),
        }));
        if log::set_logger(capture).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
        capture
    });
}

/// Every line logged since [`install`], as `LEVEL target: message`.
pub fn lines() -> Vec<String> {
    CAPTURE
        .get()
        .map(|c| c.lines.lock().unwrap().clone())
        .unwrap_or_default()
}
