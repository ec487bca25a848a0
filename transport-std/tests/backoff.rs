//! transport-std against a "broker" on loopback that closes every connection at once: it is
//! dialled at the reconnect backoff's pace, not in a loop, and records get their outcome by
//! their deadline, whether the bootstrap address is an IP literal or a name looked up off
//! the poll loop.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use producer_core::backoff::Backoff;
use producer_core::client::ClientConfig;
use transport_std::{Error, Producer, ProducerConfig, ProducerRecord};

/// A listener on 127.0.0.1 that closes what it accepts; counts the connections.
fn closing_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, count)
}

/// The most dials the default reconnect backoff allows in `run`: each wait is at least 3/4
/// of its ceiling.
fn most_dials(run: Duration) -> usize {
    let c = ClientConfig::new("x");
    let rule = Backoff::new(c.reconnect_backoff, c.reconnect_backoff_max);
    let (mut spent, mut n) = (Duration::ZERO, 1u32);
    loop {
        let wait = rule.ceiling(n) * 3 / 4;
        if spent + wait > run {
            return n as usize;
        }
        spent += wait;
        n += 1;
    }
}

fn run_against(host: &str) -> (Duration, usize) {
    let (port, accepted) = closing_listener();
    let config = ProducerConfig::new([format!("{host}:{port}")], ["t"]);
    let mut producer = Producer::new(config).unwrap();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(2);
    match producer.send(&ProducerRecord::value("t", b"v"), deadline) {
        Err(Error::Deadline(_)) => {}
        other => panic!("{host}: {other:?}"),
    }
    let elapsed = start.elapsed();
    assert!(producer.flush(Instant::now() + Duration::from_secs(1)));
    assert!(
        producer.poll_delivery().is_none(),
        "the record was never accepted"
    );
    (elapsed, accepted.load(Ordering::SeqCst))
}

#[test]
fn a_broker_that_closes_at_once_is_redialled_at_the_backoff_pace() {
    let (elapsed, accepted) = run_against("127.0.0.1");
    // The deadline, plus a poll turn of slack.
    assert!(elapsed < Duration::from_millis(2_500), "{elapsed:?}");
    assert!(
        (2..=most_dials(elapsed)).contains(&accepted),
        "{accepted} connections in {elapsed:?}"
    );
}

#[test]
fn a_name_is_looked_up_without_blocking_past_the_deadline() {
    // `localhost` comes from the hosts file: no query leaves the machine. It may name ::1
    // first, where nothing listens (refused): either way, only failures and backoff.
    let (elapsed, accepted) = run_against("localhost");
    assert!(elapsed < Duration::from_millis(2_500), "{elapsed:?}");
    assert!(accepted <= most_dials(elapsed), "{accepted} connections");
}
