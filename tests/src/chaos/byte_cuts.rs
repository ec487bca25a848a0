//! [`ProxyMode::Bytes`](crate::ProxyMode::Bytes): the [`ChaosProxy`](crate::ChaosProxy)
//! relaying bytes it cannot read (TLS), cutting a connection after a random number of bytes
//! in one direction, so that cuts land inside the handshake as well as inside records.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use rand::Rng;

use super::ProxyShared;

/// Cuts within this many bytes of a direction are inside its first TLS message (a
/// ClientHello is some 200 bytes or more, a ServerHello record some 90 or more).
const HELLO: usize = 64;
/// Cuts past this many bytes of a direction are past any handshake (the longest, a server's
/// first flight with an RSA certificate, is under 3 KiB).
const HANDSHAKE: usize = 4096;

/// Relays `client` ⇄ `upstream` until either side closes, cutting both after `at` bytes in
/// one direction (drawn per connection with probability `cut_probability`).
pub(super) fn relay(
    shared: &ProxyShared,
    cut_probability: f64,
    client: TcpStream,
    upstream: TcpStream,
) {
    let cut = {
        let mut rng = shared.rng.lock().unwrap();
        rng.random_bool(cut_probability.clamp(0.0, 1.0)).then(|| {
            let at = match rng.random_range(0..4) {
                0 => rng.random_range(1..=HELLO),
                1 => rng.random_range(HELLO + 1..=HANDSHAKE),
                _ => rng.random_range(HANDSHAKE + 1..=32_768),
            };
            (rng.random_bool(0.5), at)
        })
    };
    let closed = &AtomicBool::new(false);
    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    thread::scope(|s| {
        let to_server = cut.filter(|c| c.0).map(|c| c.1);
        s.spawn(move || copy(shared, client, upstream, to_server, closed));
        copy(shared, u2, c2, cut.filter(|c| !c.0).map(|c| c.1), closed);
    });
}

/// Copies `from` to `to`, cutting both after `cut_at` bytes; closes both when done.
fn copy(
    shared: &ProxyShared,
    mut from: TcpStream,
    mut to: TcpStream,
    cut_at: Option<usize>,
    closed: &AtomicBool,
) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(10)));
    let mut relayed = 0usize;
    let mut buf = [0u8; 16 * 1024];
    while !closed.load(Ordering::Relaxed) && !shared.stop.load(Ordering::Relaxed) {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(_) => break,
        };
        if let Some(at) = cut_at
            && relayed + n >= at
        {
            let _ = to.write_all(&buf[..at - relayed]);
            let _ = to.flush();
            shared.stat(|s| {
                s.cut_bytes += 1;
                if at <= HELLO {
                    s.cut_bytes_in_hello += 1;
                }
                if at > HANDSHAKE {
                    s.cut_bytes_in_records += 1;
                }
            });
            // Let the partial bytes arrive before the close.
            thread::sleep(Duration::from_millis(2));
            break;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        relayed += n;
    }
    closed.store(true, Ordering::Relaxed);
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
