//! [`ChaosProxy`]: a Kafka-framing-aware TCP proxy between a producer and a broker that cuts
//! connections at chosen points of the request/response exchange (counting its cuts per API
//! key, SASL's included), stalls produce responses, or cuts after a random number of bytes
//! when it cannot see frames (TLS; `byte_cuts.rs`).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

mod byte_cuts;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::sasl_frames::{SASL_AUTHENTICATE, SASL_HANDSHAKE};

/// What a [`ChaosProxy`] does to the traffic it relays.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ProxyMode {
    /// Relay everything.
    Pass,
    /// Before relaying each request frame, with probability `cut_probability`, pick one of
    /// the [`Cut`]s uniformly at random (from the proxy's seeded RNG) and apply it.
    Chaos {
        /// Chance per request frame of cutting its connection somewhere around it.
        cut_probability: f64,
    },
    /// [`ProxyMode::Chaos`], but request frames of the SASL exchange (SaslHandshake and
    /// SaslAuthenticate, [`crate::sasl_frames::SASL_HANDSHAKE`] and [`crate::sasl_frames::SASL_AUTHENTICATE`], re-authentications
    /// included) are cut with probability `sasl_cut_probability` instead: a connection
    /// makes only a few of them, so cuts inside the handshake would be rare otherwise.
    SaslChaos {
        /// Chance per request frame of another API.
        cut_probability: f64,
        /// Chance per SaslHandshake or SaslAuthenticate request frame.
        sasl_cut_probability: f64,
    },
    /// Relay requests, but from the first Produce request on a connection, hold every
    /// response of that connection (not relayed, not dropped) until the mode changes back;
    /// then the held responses are relayed in order.
    StallProduce,
    /// Close every new connection at once, and every live one (a broker that went away
    /// while its port still accepts).
    Drop,
    /// Blind to frames (for TLS, whose frames it cannot see): each new connection is, with
    /// probability `cut_probability`, cut after a random number of bytes in one direction
    /// (see `byte_cuts`): a quarter of the cuts within the first 64 bytes (inside the
    /// ClientHello or the ServerHello, each longer), a quarter at 65 to 4,096, half at
    /// 4,097 to 32,768 (inside records).
    Bytes {
        /// Chance per connection of cutting it.
        cut_probability: f64,
    },
}

/// Where a [`ProxyMode::Chaos`] cut falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Close the connection instead of relaying a request: it never reached the broker.
    BeforeRequest,
    /// Relay part of a request frame (a random prefix, possibly inside the size prefix),
    /// then close.
    MidRequest,
    /// Relay the whole request, let the broker process it, then close the connection when
    /// its response arrives, without relaying any of it.
    AfterRequest,
    /// Relay the whole request and part of its response frame, then close.
    MidResponse,
}

/// Counts of what a [`ChaosProxy`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Client connections accepted.
    pub connections: u64,
    /// Request frames seen (complete).
    pub requests: u64,
    /// Produce request frames seen.
    pub produce_requests: u64,
    /// [`Cut::BeforeRequest`] cuts.
    pub cut_before_request: u64,
    /// [`Cut::MidRequest`] cuts.
    pub cut_mid_request: u64,
    /// [`Cut::AfterRequest`] cuts (counted when the response was discarded).
    pub cut_after_request: u64,
    /// [`Cut::MidResponse`] cuts (counted when the response was cut).
    pub cut_mid_response: u64,
    /// Responses held back by [`ProxyMode::StallProduce`].
    pub responses_held: u64,
    /// [`ProxyMode::Bytes`] cuts.
    pub cut_bytes: u64,
    /// … of which within the first 64 bytes of their direction: inside the TLS handshake's
    /// first message (ClientHello, ServerHello).
    pub cut_bytes_in_hello: u64,
    /// … of which after 4,096 bytes of their direction: past any handshake, inside records.
    pub cut_bytes_in_records: u64,
}

/// Request frames of one API key a [`ChaosProxy`] saw, and the cuts it made at them (a
/// [`Cut::AfterRequest`] or [`Cut::MidResponse`] counted when the response came, like
/// [`ProxyStats`] does).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApiStats {
    /// Request frames seen (complete).
    pub requests: u64,
    /// Cuts made at one of them.
    pub cuts: u64,
}

impl ProxyStats {
    /// All cuts made.
    pub fn cuts(&self) -> u64 {
        self.cut_before_request
            + self.cut_mid_request
            + self.cut_after_request
            + self.cut_mid_response
            + self.cut_bytes
    }
}

pub(crate) struct ProxyShared {
    upstream: SocketAddr,
    mode: Mutex<ProxyMode>,
    rng: Mutex<StdRng>,
    stats: Mutex<ProxyStats>,
    by_api: Mutex<BTreeMap<i16, ApiStats>>,
    stop: AtomicBool,
    live: Mutex<Vec<(u64, TcpStream, TcpStream)>>,
    next_id: AtomicU64,
}

impl ProxyShared {
    fn mode(&self) -> ProxyMode {
        *self.mode.lock().unwrap()
    }

    fn stat(&self, f: impl FnOnce(&mut ProxyStats)) {
        f(&mut self.stats.lock().unwrap());
    }

    fn api_stat(&self, api_key: i16, f: impl FnOnce(&mut ApiStats)) {
        f(self.by_api.lock().unwrap().entry(api_key).or_default());
    }
}

/// A TCP proxy on a free loopback port that relays Kafka traffic to `upstream`, frame by
/// frame (4-byte big-endian size prefix), and cuts or stalls connections as its
/// [`ProxyMode`] says. Cuts are drawn from an RNG seeded at construction.
///
/// To put it between a client and a broker for every connection (not just bootstrap), the
/// broker must advertise the proxy's address: bind the proxy first with the broker's future
/// port, then start the broker with [`crate::Tansu::start_on`]`(broker_port, proxy.port())`.
pub struct ChaosProxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
    accept: Option<JoinHandle<()>>,
}

impl ChaosProxy {
    /// Listens on a free loopback port and relays to `upstream` (which need not be up yet:
    /// each accepted connection dials it then).
    pub fn start(upstream: SocketAddr, mode: ProxyMode, seed: u64) -> ChaosProxy {
        ChaosProxy::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), upstream, mode, seed)
    }

    /// [`ChaosProxy::start`], listening on `listen` (port 0: a free one), e.g. a network
    /// namespace's broker address, from inside that namespace (`NetNs::run`: the proxy's
    /// threads stay in it).
    pub fn start_on(
        listen: SocketAddr,
        upstream: SocketAddr,
        mode: ProxyMode,
        seed: u64,
    ) -> ChaosProxy {
        let listener = TcpListener::bind(listen).expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(ProxyShared {
            upstream,
            mode: Mutex::new(mode),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            stats: Mutex::new(ProxyStats::default()),
            by_api: Mutex::new(BTreeMap::new()),
            stop: AtomicBool::new(false),
            live: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
        });
        let s = shared.clone();
        let accept = thread::spawn(move || {
            while !s.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let s = s.clone();
                        thread::spawn(move || serve(s, client));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        ChaosProxy {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:PORT` it listens on.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Changes what it does from now on. Leaving [`ProxyMode::StallProduce`] releases the
    /// held responses; entering [`ProxyMode::Drop`] closes every live connection.
    pub fn set_mode(&self, mode: ProxyMode) {
        *self.shared.mode.lock().unwrap() = mode;
        if mode == ProxyMode::Drop {
            self.cut_all();
        }
    }

    /// Closes every live connection now.
    pub fn cut_all(&self) {
        for (_, client, upstream) in self.shared.live.lock().unwrap().iter() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
    }

    /// What it did so far.
    pub fn stats(&self) -> ProxyStats {
        *self.shared.stats.lock().unwrap()
    }

    /// What it saw and cut so far, per API key of the request frames (frames too short to
    /// have one under -1).
    pub fn by_api_key(&self) -> BTreeMap<i16, ApiStats> {
        self.shared.by_api.lock().unwrap().clone()
    }

    /// What it saw and cut so far at request frames of `api_key`.
    pub fn api_stats(&self, api_key: i16) -> ApiStats {
        self.by_api_key().get(&api_key).copied().unwrap_or_default()
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.cut_all();
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Per-connection state shared by its two relay directions.
#[derive(Default)]
struct ConnPlan {
    /// Discard the response with this correlation id and close ([`Cut::AfterRequest`]).
    drop_response: Option<i32>,
    /// Relay part of the response with this correlation id and close.
    cut_response: Option<i32>,
    /// The API key of the request whose response is dropped or cut.
    cut_api_key: i16,
    /// A produce request went out while stalling: hold responses.
    stalled: bool,
    /// The connection is being closed.
    closed: bool,
}

fn serve(shared: Arc<ProxyShared>, client: TcpStream) {
    shared.stat(|s| s.connections += 1);
    if shared.mode() == ProxyMode::Drop || shared.stop.load(Ordering::Relaxed) {
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let Ok(upstream) = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(2)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    shared.live.lock().unwrap().push((id, c2, u2));
    if let ProxyMode::Bytes { cut_probability } = shared.mode() {
        byte_cuts::relay(&shared, cut_probability, client, upstream);
        shared.live.lock().unwrap().retain(|(i, _, _)| *i != id);
        return;
    }
    let plan = Arc::new(Mutex::new(ConnPlan::default()));
    let (Ok(c3), Ok(u3)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let (s2, p2) = (shared.clone(), plan.clone());
    let responses = thread::spawn(move || relay_responses(&s2, &p2, u3, c3));
    relay_requests(
        &shared,
        &plan,
        client.try_clone().unwrap(),
        upstream.try_clone().unwrap(),
    );
    close(&plan, &client, &upstream);
    let _ = responses.join();
    shared.live.lock().unwrap().retain(|(i, _, _)| *i != id);
}

fn close(plan: &Mutex<ConnPlan>, client: &TcpStream, upstream: &TcpStream) {
    plan.lock().unwrap().closed = true;
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.shutdown(Shutdown::Both);
}

/// Reads whole frames (size prefix included) from a socket with a read timeout, so the
/// caller can look at shared state between reads.
struct FrameReader {
    stream: TcpStream,
    buf: Vec<u8>,
}

enum Next {
    Frame(Vec<u8>),
    Idle,
    Closed,
}

impl FrameReader {
    fn new(stream: TcpStream) -> FrameReader {
        let _ = stream.set_read_timeout(Some(Duration::from_millis(10)));
        FrameReader {
            stream,
            buf: Vec::new(),
        }
    }

    fn next(&mut self) -> Next {
        loop {
            if self.buf.len() >= 4 {
                let size = i32::from_be_bytes(self.buf[..4].try_into().unwrap());
                if size < 0 {
                    return Next::Closed;
                }
                let total = 4 + size as usize;
                if self.buf.len() >= total {
                    let rest = self.buf.split_off(total);
                    let frame = std::mem::replace(&mut self.buf, rest);
                    return Next::Frame(frame);
                }
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Next::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Next::Idle;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Closed,
            }
        }
    }
}

fn relay_requests(
    shared: &ProxyShared,
    plan: &Mutex<ConnPlan>,
    client: TcpStream,
    mut upstream: TcpStream,
) {
    let mut reader = FrameReader::new(client);
    loop {
        if plan.lock().unwrap().closed || shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let frame = match reader.next() {
            Next::Frame(f) => f,
            Next::Idle => {
                if shared.mode() == ProxyMode::Drop {
                    return;
                }
                continue;
            }
            Next::Closed => return,
        };
        // Request header v1+: api key (2), api version (2), correlation id (4).
        let api_key = frame.get(4..6).map(|b| i16::from_be_bytes([b[0], b[1]]));
        let correlation = frame
            .get(8..12)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let is_produce = api_key == Some(0);
        let api_key = api_key.unwrap_or(-1);
        shared.stat(|s| {
            s.requests += 1;
            if is_produce {
                s.produce_requests += 1;
            }
        });
        shared.api_stat(api_key, |s| s.requests += 1);
        let mode = shared.mode();
        let cut = match mode {
            ProxyMode::Pass | ProxyMode::Bytes { .. } => None,
            ProxyMode::Drop => return,
            ProxyMode::StallProduce => {
                if is_produce {
                    plan.lock().unwrap().stalled = true;
                }
                None
            }
            ProxyMode::Chaos { cut_probability }
            | ProxyMode::SaslChaos {
                cut_probability, ..
            } => {
                let p = match mode {
                    ProxyMode::SaslChaos {
                        sasl_cut_probability,
                        ..
                    } if matches!(api_key, SASL_HANDSHAKE | SASL_AUTHENTICATE) => {
                        sasl_cut_probability
                    }
                    _ => cut_probability,
                };
                let mut rng = shared.rng.lock().unwrap();
                if rng.random_bool(p.clamp(0.0, 1.0)) {
                    Some(match rng.random_range(0..4) {
                        0 => Cut::BeforeRequest,
                        1 => Cut::MidRequest,
                        2 => Cut::AfterRequest,
                        _ => Cut::MidResponse,
                    })
                } else {
                    None
                }
            }
        };
        match cut {
            Some(Cut::BeforeRequest) => {
                shared.stat(|s| s.cut_before_request += 1);
                shared.api_stat(api_key, |s| s.cuts += 1);
                return;
            }
            Some(Cut::MidRequest) => {
                let at = shared.rng.lock().unwrap().random_range(1..frame.len());
                let _ = upstream.write_all(&frame[..at]);
                let _ = upstream.flush();
                shared.stat(|s| s.cut_mid_request += 1);
                shared.api_stat(api_key, |s| s.cuts += 1);
                // Let the partial bytes reach the broker before the close.
                thread::sleep(Duration::from_millis(2));
                return;
            }
            Some(Cut::AfterRequest) => {
                let mut p = plan.lock().unwrap();
                p.drop_response = correlation;
                p.cut_api_key = api_key;
            }
            Some(Cut::MidResponse) => {
                let mut p = plan.lock().unwrap();
                p.cut_response = correlation;
                p.cut_api_key = api_key;
            }
            None => {}
        }
        if upstream.write_all(&frame).is_err() {
            return;
        }
        if matches!(cut, Some(Cut::AfterRequest | Cut::MidResponse)) {
            // Relay nothing more: wait (bounded) for the response side to close.
            let until = Instant::now() + Duration::from_secs(5);
            while !plan.lock().unwrap().closed && Instant::now() < until {
                thread::sleep(Duration::from_millis(2));
            }
            return;
        }
    }
}

fn relay_responses(
    shared: &ProxyShared,
    plan: &Mutex<ConnPlan>,
    upstream: TcpStream,
    mut client: TcpStream,
) {
    let mut reader = FrameReader::new(upstream.try_clone().unwrap());
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let stalling = plan.lock().unwrap().stalled && shared.mode() == ProxyMode::StallProduce;
        if !stalling {
            plan.lock().unwrap().stalled = false;
            for frame in held.drain(..) {
                if client.write_all(&frame).is_err() {
                    break;
                }
            }
        }
        let frame = match reader.next() {
            Next::Frame(f) => f,
            Next::Idle => {
                if plan.lock().unwrap().closed {
                    break;
                }
                continue;
            }
            Next::Closed => break,
        };
        let correlation = frame
            .get(4..8)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let (drop_it, cut_it, stalled, cut_api_key) = {
            let p = plan.lock().unwrap();
            (
                correlation.is_some() && p.drop_response == correlation,
                correlation.is_some() && p.cut_response == correlation,
                p.stalled,
                p.cut_api_key,
            )
        };
        if drop_it {
            shared.stat(|s| s.cut_after_request += 1);
            shared.api_stat(cut_api_key, |s| s.cuts += 1);
            break;
        }
        if cut_it {
            let at = shared.rng.lock().unwrap().random_range(1..frame.len());
            let _ = client.write_all(&frame[..at]);
            let _ = client.flush();
            shared.stat(|s| s.cut_mid_response += 1);
            shared.api_stat(cut_api_key, |s| s.cuts += 1);
            thread::sleep(Duration::from_millis(2));
            break;
        }
        if stalled && shared.mode() == ProxyMode::StallProduce {
            shared.stat(|s| s.responses_held += 1);
            held.push(frame);
            continue;
        }
        if client.write_all(&frame).is_err() {
            break;
        }
    }
    close(plan, &client, &upstream);
}
