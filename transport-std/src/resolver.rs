//! Name lookups off the poll loop.
//!
//! `getaddrinfo` blocks, for as long as the system's resolver likes (seconds per server it
//! cannot reach), and a producer's loop must never block past a record's deadline. So each
//! lookup runs on a thread of its own, which sends its answer back and wakes the loop
//! through a [`mio::Waker`]. The loop bounds each lookup by the connect timeout: one that has
//! not answered by then is a failed connection (the core backs the broker off), and its
//! late answer is ignored. A thread stuck in the system's resolver cannot be stopped, so the
//! number running at once is bounded: past [`MAX_RUNNING`], a lookup fails at once, which
//! the reconnect backoff paces like any other failure.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use mio::{Registry, Token, Waker};

/// Lookup threads that may run at once (some may outlive their timeout in the system's
/// resolver).
pub(crate) const MAX_RUNNING: usize = 32;

/// A lookup's result: its id and the first address, if any.
pub(crate) struct Answer {
    pub id: u64,
    pub address: Option<SocketAddr>,
}

pub(crate) struct Resolver {
    waker: Arc<Waker>,
    tx: Sender<Answer>,
    rx: Receiver<Answer>,
    next_id: u64,
    running: Arc<AtomicUsize>,
}

impl Resolver {
    /// A resolver whose answers wake `registry`'s poll with `token`.
    pub fn new(registry: &Registry, token: Token) -> io::Result<Self> {
        let (tx, rx) = channel();
        Ok(Resolver {
            waker: Arc::new(Waker::new(registry, token)?),
            tx,
            rx,
            next_id: 0,
            running: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Starts looking `host` up; returns the lookup's id, or `None` when it cannot start
    /// (too many lookups still running, or no thread): a failed lookup.
    pub fn lookup(&mut self, host: &str, port: u16) -> Option<u64> {
        if self.running.load(Ordering::Acquire) >= MAX_RUNNING {
            log::warn!("{MAX_RUNNING} name lookups still running: {host} fails for now");
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        let (host, tx, waker, running) = (
            host.to_owned(),
            self.tx.clone(),
            Arc::clone(&self.waker),
            Arc::clone(&self.running),
        );
        running.fetch_add(1, Ordering::AcqRel);
        let spawned = std::thread::Builder::new()
            .name("kafka-lookup".into())
            .spawn(move || {
                let address = (host.as_str(), port)
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut a| a.next());
                if address.is_none() {
                    log::info!("cannot resolve {host}");
                }
                running.fetch_sub(1, Ordering::AcqRel);
                // The producer may be gone: then nobody waits for the answer.
                if tx.send(Answer { id, address }).is_ok() {
                    let _ = waker.wake();
                }
            });
        match spawned {
            Ok(_) => Some(id),
            Err(e) => {
                self.running.fetch_sub(1, Ordering::AcqRel);
                log::warn!("cannot start a lookup thread: {e}");
                None
            }
        }
    }

    /// The next answer that arrived, without waiting.
    pub fn answer(&self) -> Option<Answer> {
        self.rx.try_recv().ok()
    }
}
