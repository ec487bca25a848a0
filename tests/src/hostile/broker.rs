//! The fake broker: a std `TcpListener` with a thread per connection that reads request
//! frames, answers them as one broker leading every partition of one topic would
//! ([`super::answers`]), and misbehaves in the one way its [`Misbehaviour`] names. It counts
//! what it saw ([`Counts`]) and keeps the [`Ledger`] the outcomes are checked against.
//!
//! It bounds its own reads (frames over 16 MiB, or that do not decode, end the connection and
//! are counted as `undecodable`: a producer should never send one).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::answers::{self, Api, Reply};
use super::ledger::Ledger;

/// The topic the fake broker serves.
pub const TOPIC: &str = "hostile";
/// Its partitions, all led by node 1 (the broker itself), unless the misbehaviour says
/// otherwise.
pub const PARTITIONS: i32 = 2;
/// Node id of the broker itself.
pub const NODE_ID: i32 = 1;
/// Largest request frame it reads.
const MAX_REQUEST: usize = 16 << 20;

/// One way to be a bad broker. Each applies to every request of the API it names, on every
/// connection, for the whole run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// A correct broker (the control case).
    Healthy,
    /// Every answer to `api` is a length prefix of `length` (2^31-1, -1, 0) and 16 bytes,
    /// and the connection stays open.
    FrameLength {
        /// Which requests get it.
        api: Api,
        /// The length prefix written.
        length: i32,
    },
    /// Every answer to `api` is framed correctly around the first half of its body.
    Truncated {
        /// Which requests get it.
        api: Api,
    },
    /// Every answer to `api` has a correct length and correlation id and random bytes for
    /// the rest.
    GarbageAfterHeader {
        /// Which requests get it.
        api: Api,
    },
    /// Every answer to `api` carries a correlation id no request had.
    UnknownCorrelation {
        /// Which requests get it.
        api: Api,
    },
    /// Every answer to `api` is written twice.
    DuplicateAnswer {
        /// Which requests get it.
        api: Api,
    },
    /// Metadata lists this many brokers; the one leading the partitions (itself) comes last.
    ManyBrokers(usize),
    /// The topic has this many partitions.
    ManyPartitions(usize),
    /// The topic's partitions are -1, 0, -7, 1 and 1 again.
    NegativePartitions,
    /// Every produce answer for a partition carries this error code; nothing is appended.
    ProduceError(i16),
    /// Produce answers name only partitions and a topic the request never asked for.
    UnaskedPartitions,
    /// Every answer is written one byte at a time, this long between bytes.
    Dribble(Duration),
    /// Connections are accepted and never read from or written to.
    NeverReads,
    /// Connections are closed as soon as they are accepted.
    CloseOnAccept,
    /// The broker speaks HTTP: it answers whatever arrives with a 400 page and closes.
    Http,
    /// Metadata reports the topic with this error code and no partitions.
    TopicError(i16),
}

/// What the broker counted. Requests are counted when a whole frame was read.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Connections accepted.
    pub connections: u64,
    /// Requests per API: ApiVersions, Metadata, InitProducerId, Produce.
    pub requests: BTreeMap<&'static str, u64>,
    /// Frames that were too long or did not decode.
    pub undecodable: u64,
    /// InitProducerId requests that bumped an existing producer's epoch.
    pub epoch_bumps: u64,
    /// Produce attempts per batch, keyed by the batch's first record value and record count
    /// (its content, whatever stamp it carried).
    pub attempts: BTreeMap<(Vec<u8>, u32), u64>,
    /// First time each request of an API arrived, relative to the broker's start, for the
    /// pacing printed with a case (milliseconds).
    pub arrivals: BTreeMap<&'static str, Vec<u64>>,
}

impl Counts {
    /// Requests of `api` counted.
    pub fn requests_of(&self, api: Api) -> u64 {
        self.requests.get(api.name()).copied().unwrap_or(0)
    }

    /// Distinct batches (by content) the broker saw.
    pub fn batches(&self) -> u64 {
        self.attempts.len() as u64
    }

    /// The most produce attempts any one batch had.
    pub fn max_attempts(&self) -> u64 {
        self.attempts.values().copied().max().unwrap_or(0)
    }
}

/// State every connection thread shares.
pub(crate) struct Shared {
    pub(crate) misbehaviour: Misbehaviour,
    /// `host:port` it advertises for itself.
    pub(crate) advertised: (String, i32),
    pub(crate) counts: Counts,
    pub(crate) ledger: Ledger,
    pub(crate) next_offset: BTreeMap<i32, i64>,
    pub(crate) next_producer_id: i64,
    pub(crate) started: Instant,
}

/// A fake broker listening until dropped.
pub struct FakeBroker {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    shared: Arc<Mutex<Shared>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeBroker {
    /// Serves on `listener` (bound by the caller, e.g. inside a network namespace), behaving
    /// as `misbehaviour` says, advertising the listener's own address.
    pub fn start(listener: TcpListener, misbehaviour: Misbehaviour) -> FakeBroker {
        let addr = listener.local_addr().expect("listener address");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Mutex::new(Shared {
            misbehaviour,
            advertised: (addr.ip().to_string(), i32::from(addr.port())),
            counts: Counts::default(),
            ledger: Ledger::default(),
            next_offset: BTreeMap::new(),
            next_producer_id: 4000,
            started: Instant::now(),
        }));
        let (flag, state) = (stop.clone(), shared.clone());
        let thread = thread::Builder::new()
            .name("fake-broker".into())
            .spawn(move || accept_loop(listener, flag, state))
            .expect("spawn fake broker");
        FakeBroker {
            addr,
            stop,
            shared,
            thread: Some(thread),
        }
    }

    /// `ip:port` it listens on (and advertises).
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// What it counted so far.
    pub fn counts(&self) -> Counts {
        self.shared.lock().unwrap().counts.clone()
    }

    /// What it did with each record so far.
    pub fn ledger(&self) -> Ledger {
        self.shared.lock().unwrap().ledger.clone()
    }

    /// Stops it and waits for every connection's thread, then says what it counted and did.
    /// A connection notes its acknowledgements just after the answer's last byte is written,
    /// so a client that exits at once could otherwise be checked against a ledger that does
    /// not hold them yet (a CI run saw 40 `Persisted` records "never acknowledged" so).
    pub fn finish(mut self) -> (Counts, Ledger) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let s = self.shared.lock().unwrap();
        (s.counts.clone(), s.ledger.clone())
    }
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, stop: Arc<AtomicBool>, shared: Arc<Mutex<Shared>>) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let misbehaviour = {
                    let mut s = shared.lock().unwrap();
                    s.counts.connections += 1;
                    s.misbehaviour
                };
                if misbehaviour == Misbehaviour::CloseOnAccept {
                    let _ = stream.shutdown(Shutdown::Both);
                    continue;
                }
                let (flag, state) = (stop.clone(), shared.clone());
                connections.push(thread::spawn(move || {
                    let _ = serve(stream, misbehaviour, &flag, &state);
                }));
                connections.retain(|c| !c.is_finished());
            }
            Err(_) => thread::sleep(Duration::from_millis(2)),
        }
    }
    for c in connections {
        let _ = c.join();
    }
}

/// Fills `buf` from `stream`, giving up (`Ok(false)`) at end of stream or when `stop` is set.
fn read_full(stream: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool) -> io::Result<bool> {
    let mut at = 0;
    while at < buf.len() {
        if stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        match stream.read(&mut buf[at..]) {
            Ok(0) => return Ok(false),
            Ok(n) => at += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn serve(
    mut stream: TcpStream,
    misbehaviour: Misbehaviour,
    stop: &AtomicBool,
    shared: &Mutex<Shared>,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_millis(20)))?;
    // A producer that stops reading must not hold the broker (or its drop) forever.
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let _ = stream.set_nodelay(true);
    match misbehaviour {
        Misbehaviour::NeverReads => {
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(10));
            }
            return Ok(());
        }
        Misbehaviour::Http => {
            let mut some = [0u8; 64];
            let _ = read_full(&mut stream, &mut some[..4], stop)?;
            stream.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: 22\r\n\
                  Connection: close\r\n\r\n<h1>Bad Request</h1>\r\n",
            )?;
            let _ = stream.shutdown(Shutdown::Both);
            return Ok(());
        }
        _ => {}
    }
    loop {
        let mut prefix = [0u8; 4];
        if !read_full(&mut stream, &mut prefix, stop)? {
            return Ok(());
        }
        let len = i32::from_be_bytes(prefix);
        let Some(len) = usize::try_from(len).ok().filter(|&l| l <= MAX_REQUEST) else {
            shared.lock().unwrap().counts.undecodable += 1;
            return Ok(());
        };
        let mut frame = vec![0u8; len];
        if !read_full(&mut stream, &mut frame, stop)? {
            return Ok(());
        }
        let reply = answers::answer(&mut shared.lock().unwrap(), &frame);
        match reply {
            Reply::Close => return Ok(()),
            Reply::Write { bytes, acks } => {
                let written = match misbehaviour {
                    Misbehaviour::Dribble(gap) => dribble(&mut stream, &bytes, gap, stop),
                    _ => stream.write_all(&bytes).and_then(|_| stream.flush()),
                };
                if written.is_err() {
                    return Ok(());
                }
                let mut s = shared.lock().unwrap();
                for (value, partition, offset) in acks {
                    s.ledger.acked(&value, partition, offset);
                }
            }
        }
    }
}

fn dribble(
    stream: &mut TcpStream,
    bytes: &[u8],
    gap: Duration,
    stop: &AtomicBool,
) -> io::Result<()> {
    for b in bytes {
        if stop.load(Ordering::Relaxed) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        stream.write_all(std::slice::from_ref(b))?;
        thread::sleep(gap);
    }
    Ok(())
}
