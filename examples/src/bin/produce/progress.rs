//! `produce --progress`: a line on standard error, redrawn at most four times a second.

use std::time::{Duration, Instant};

use transport_std::Producer;

use super::Fates;

pub struct Progress {
    on: bool,
    started: Instant,
    last: Instant,
}

impl Progress {
    pub fn new(on: bool) -> Self {
        Progress {
            on,
            started: Instant::now(),
            last: Instant::now(),
        }
    }

    pub fn show(&mut self, producer: &Producer, fates: &Fates, last: bool) {
        if !self.on || (!last && self.last.elapsed() < Duration::from_millis(250)) {
            return;
        }
        self.last = Instant::now();
        let sent = fates.len();
        let acked = fates.persisted;
        let rate = acked as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let c = producer.counters();
        eprint!(
            "\rsent {sent}  acked {acked}  in flight {}  epoch bumps {}  {rate:.0} rec/s   {}",
            sent - fates.decided,
            c.epoch_bumps,
            if last { "\n" } else { "" }
        );
    }
}
