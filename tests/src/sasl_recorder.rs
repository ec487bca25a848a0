//! A loopback TCP proxy in front of a broker that records, per connection, the SASL messages
//! passing through: SaslHandshake's mechanism (and the mechanisms offered in answer) and
//! SaslAuthenticate's `auth_bytes` both ways, for capturing a reference client's exchange.
//! Every frame is forwarded unchanged, whole.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::SystemTime;

use crate::sasl_frames::{
    SASL_AUTHENTICATE, SASL_HANDSHAKE, authenticate_request, authenticate_response,
    handshake_response, read_frame, request_header,
};

/// Which way a message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    ClientToBroker,
    BrokerToClient,
}

/// One SASL message seen by a [`SaslRecorder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaslMessage {
    pub direction: Direction,
    /// [`SASL_HANDSHAKE`] or [`SASL_AUTHENTICATE`].
    pub api_key: i16,
    /// The request's version (an answer has its request's).
    pub api_version: i16,
    /// An answer's error code (0 for requests).
    pub error_code: i16,
    /// SaslAuthenticate: `auth_bytes`. SaslHandshake: the mechanism asked for, or the
    /// mechanisms offered, comma-separated.
    pub bytes: Vec<u8>,
    /// SaslAuthenticate answers of v1 and later: the session's lifetime.
    pub session_lifetime_ms: i64,
    /// When the recorder relayed it.
    pub at: SystemTime,
}

type Log = Arc<Mutex<Vec<Vec<SaslMessage>>>>;

/// The proxy: [`SaslRecorder::start`], point a client at [`SaslRecorder::address`], read
/// [`SaslRecorder::connections`]. Stops accepting on drop.
pub struct SaslRecorder {
    addr: SocketAddr,
    log: Log,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl SaslRecorder {
    /// Listens on a free loopback port and relays every connection to `upstream` (a
    /// loopback address).
    pub fn start(upstream: SocketAddr) -> SaslRecorder {
        assert!(upstream.ip().is_loopback(), "a loopback upstream only");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the recorder");
        let addr = listener.local_addr().expect("recorder address");
        let log: Log = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, stop2) = (log.clone(), stop.clone());
        let acceptor = thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let index = {
                    let mut log = log2.lock().unwrap();
                    log.push(Vec::new());
                    log.len() - 1
                };
                let log = log2.clone();
                thread::spawn(move || relay(client, upstream, log, index));
            }
        });
        SaslRecorder {
            addr,
            log,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// `127.0.0.1:PORT` to give a client as its bootstrap address.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The SASL messages of each connection so far, in the order they passed, connections
    /// in the order they were accepted.
    pub fn connections(&self) -> Vec<Vec<SaslMessage>> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for SaslRecorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the acceptor, which sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Relays one connection both ways until either side closes, recording SASL messages.
fn relay(client: TcpStream, upstream: SocketAddr, log: Log, index: usize) {
    let Ok(broker) = TcpStream::connect(upstream) else {
        return;
    };
    // Correlation id → (api key, version) of requests not yet answered.
    let pending: Arc<Mutex<HashMap<i32, (i16, i16)>>> = Arc::default();
    let (c_in, b_out) = (client.try_clone().unwrap(), broker.try_clone().unwrap());
    let (p, l) = (pending.clone(), log.clone());
    let requests = thread::spawn(move || {
        let _ = pump(c_in, b_out, |frame| on_request(frame, &p, &l, index));
    });
    let (b_in, c_out) = (broker.try_clone().unwrap(), client.try_clone().unwrap());
    let _ = pump(b_in, c_out, |frame| {
        on_response(frame, &pending, &log, index)
    });
    let _ = client.shutdown(Shutdown::Both);
    let _ = broker.shutdown(Shutdown::Both);
    let _ = requests.join();
}

/// Copies frames from `from` to `to`, showing each (without its length) to `see` first.
fn pump(mut from: TcpStream, mut to: TcpStream, mut see: impl FnMut(&[u8])) -> io::Result<()> {
    let result = loop {
        let frame = match read_frame(&mut from) {
            Ok(frame) => frame,
            Err(e) => break Err(e),
        };
        see(&frame);
        let mut out = (frame.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&frame);
        if let Err(e) = to.write_all(&out) {
            break Err(e);
        }
    };
    let _ = to.shutdown(Shutdown::Write);
    result
}

fn on_request(frame: &[u8], pending: &Mutex<HashMap<i32, (i16, i16)>>, log: &Log, index: usize) {
    let Ok((header, mut body)) = request_header(frame) else {
        return;
    };
    let (key, version) = (header.api_key, header.api_version);
    pending
        .lock()
        .unwrap()
        .insert(header.correlation_id, (key, version));
    let bytes = match key {
        SASL_HANDSHAKE => body.string(false).ok().flatten().map(String::into_bytes),
        SASL_AUTHENTICATE => authenticate_request(version, &mut body).ok(),
        _ => None,
    };
    if let Some(bytes) = bytes {
        log.lock().unwrap()[index].push(SaslMessage {
            direction: Direction::ClientToBroker,
            api_key: key,
            api_version: version,
            error_code: 0,
            bytes,
            session_lifetime_ms: 0,
            at: SystemTime::now(),
        });
    }
}

fn on_response(frame: &[u8], pending: &Mutex<HashMap<i32, (i16, i16)>>, log: &Log, index: usize) {
    let Some(correlation_id) = frame
        .get(..4)
        .map(|b| i32::from_be_bytes(b.try_into().unwrap()))
    else {
        return;
    };
    let Some((key, version)) = pending.lock().unwrap().remove(&correlation_id) else {
        return;
    };
    let message = match key {
        SASL_HANDSHAKE => handshake_response(frame)
            .ok()
            .map(|(error_code, offered)| (error_code, offered.join(",").into_bytes(), 0)),
        SASL_AUTHENTICATE => authenticate_response(version, frame)
            .ok()
            .map(|a| (a.error_code, a.auth_bytes, a.session_lifetime_ms)),
        _ => None,
    };
    if let Some((error_code, bytes, session_lifetime_ms)) = message {
        log.lock().unwrap()[index].push(SaslMessage {
            direction: Direction::BrokerToClient,
            api_key: key,
            api_version: version,
            error_code,
            bytes,
            session_lifetime_ms,
            at: SystemTime::now(),
        });
    }
}
