//! The client's SASL authentication against a model broker of one node, in simulated time
//! (1 ms steps, every request answered at once): the broker refuses any other request on a
//! connection not authenticated, or whose session lifetime has passed (Kafka closes it), so
//! every test also checks that a connection is used only once authenticated.
//!
//! - each mechanism authenticates and records are persisted, exactly once each (PLAIN,
//!   SCRAM-SHA-256/512 against the `sasl` crate's server, OAUTHBEARER);
//! - failures are outcomes: a refused password (58), a mechanism the listener does not enable
//!   (33), ILLEGAL_SASL_STATE (34), a SCRAM server that cannot prove the password: the
//!   producer stops with the error, its records are decided, and nothing is dialled again;
//! - a connection lost mid-exchange is an ordinary loss: backed off and redialled;
//! - KIP-368: sessions of two seconds, re-authenticated on the same connection while records
//!   flow, nothing lost or duplicated; sessions too short for Kafka's one re-authentication a
//!   second handed to new connections instead (the model broker refuses an early one as
//!   Kafka does);
//! - SCRAM's salted password derived a step per poll, once per client;
//! - OAUTHBEARER tokens asked for at 80% of their life, never sent expired;
//! - no secret in `Debug` output.

#[path = "xmpp_scram/mod.rs"]
mod xmpp_scram;

#[path = "answers/mod.rs"]
mod answers;

use core::time::Duration;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use producer_core::capacity::Fixed;
use producer_core::client::{Client, ClientConfig, ConnId, Entropy, ProducerRecord};
use producer_core::sasl::{self, Mechanism};
use producer_core::state::{FatalReason, NotPersistedReason, Outcome};
use producer_core::time::Instant;
use producer_core::wire::{
    self, ApiVersion, ApiVersionsResponse, InitProducerIdResponse, List, MechanismName,
    ProducePartitionResponse, ProduceResponse, ProduceTopicResponse, Request,
    SaslAuthenticateResponse, SaslHandshakeResponse,
};

type C = Client<Vec<u8>, Fixed<1, 4, 8, 2>>;
const TOPIC: &str = "t";
const USER: &str = "alice";
const PASSWORD: &str = "alice-secret";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn entropy(out: &mut [u8]) {
    static NEXT: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    for b in out {
        *b = (NEXT.fetch_add(0x9e37_79b9, Ordering::Relaxed) >> 24) as u8;
    }
}

/// The broker's SASL side.
#[derive(Clone)]
struct Listener {
    mechanism: &'static str,
    /// The password it accepts (PLAIN, SCRAM).
    password: &'static str,
    /// Session lifetime given on success (0: none).
    lifetime_ms: i64,
    /// Answer every SaslHandshake with this code.
    handshake_error: Option<i16>,
    /// Accept this many authentications, then refuse every one (a rotated password).
    accept: u32,
    /// Close the connection instead of answering this many SaslAuthenticate requests.
    drop_authenticates: u32,
    /// SCRAM: send a wrong server signature.
    forge_signature: bool,
}

impl Listener {
    fn new(mechanism: &'static str) -> Self {
        Listener {
            mechanism,
            password: PASSWORD,
            lifetime_ms: 0,
            handshake_error: None,
            accept: u32::MAX,
            drop_authenticates: 0,
            forge_signature: false,
        }
    }
}

#[derive(Default)]
struct Conn {
    handshaken: bool,
    /// Authenticated until (`Some(None)`: no lifetime).
    session: Option<Option<Instant>>,
    scram: Option<xmpp_scram::Server>,
    oauth_refused: bool,
    /// When its last re-authentication began: Kafka refuses another within a second.
    reauth_began: Option<Instant>,
}

#[derive(Default, Debug)]
struct Log {
    dials: u32,
    handshakes: u32,
    authentications: u32,
    /// Requests other than SASL and ApiVersions on a connection not authenticated (or past
    /// its session): each closed it, as Kafka does.
    unauthenticated: u32,
    /// Tokens presented after their expiry.
    expired_tokens: u32,
    /// Re-authentications begun less than a second after the connection's previous one,
    /// which Kafka refuses with ILLEGAL_SASL_STATE.
    early_reauths: u32,
    /// Each SaslAuthenticate request: its connection and when it came.
    sasl_authenticates: Vec<(u8, Instant)>,
    /// Batches appended: base sequence to (offset, records).
    appended: HashMap<i32, (i64, i32)>,
    next_offset: i64,
}

struct Broker {
    listener: Listener,
    conns: HashMap<u8, Conn>,
    log: Log,
}

impl Broker {
    fn new(listener: Listener) -> Self {
        Broker {
            listener,
            conns: HashMap::new(),
            log: Log::default(),
        }
    }

    /// The answer to `frame` on `conn`, or `None`: the broker closes the connection.
    fn respond(&mut self, conn: u8, frame: &[u8], now: Instant) -> Option<Vec<u8>> {
        let (header, request) = wire::decode_request(frame).unwrap();
        let (version, corr) = (header.api_version, header.correlation_id);
        let mut out = vec![0u8; 1 << 16];
        let l = self.listener.clone();
        let c = self.conns.entry(conn).or_default();
        let authenticated = c.session.is_some_and(|s| s.is_none_or(|until| now < until));
        let n = match request {
            Request::ApiVersions(_) => {
                let keys = [
                    (0, 3, 11),
                    (3, 1, 12),
                    (17, 0, 1),
                    (18, 0, 3),
                    (22, 0, 5),
                    (36, 0, 2),
                ]
                .map(|(k, lo, hi)| ApiVersion {
                    api_key: k,
                    min_version: lo,
                    max_version: hi,
                });
                let body = ApiVersionsResponse {
                    api_keys: List::from_slice(&keys),
                    ..Default::default()
                };
                wire::encode_response(&mut out, version, corr, &body)
            }
            Request::SaslHandshake(h) => {
                self.log.handshakes += 1;
                // KafkaChannel: a re-authentication may not begin within a second of the
                // previous one; the handshake then goes to the request handler, which
                // answers ILLEGAL_SASL_STATE.
                if c.session.is_some() {
                    if c.reauth_began.is_some_and(|t| now < t + ms(1000)) {
                        self.log.early_reauths += 1;
                        let body = SaslHandshakeResponse {
                            error_code: 34,
                            mechanisms: List::from_slice(&[]),
                        };
                        let n = wire::encode_response(&mut out, version, corr, &body).unwrap();
                        out.truncate(n);
                        return Some(out);
                    }
                    c.reauth_began = Some(now);
                }
                let enabled = [MechanismName(l.mechanism)];
                let error_code = match l.handshake_error {
                    Some(code) => code,
                    None if h.mechanism != l.mechanism => 33,
                    None => 0,
                };
                c.handshaken = error_code == 0;
                c.oauth_refused = false;
                if c.handshaken && l.mechanism.starts_with("SCRAM") {
                    let store = xmpp_scram::Store {
                        username: USER.into(),
                        password: l.password.into(),
                        salt: b"model-salt".to_vec(),
                        iterations: 4096,
                    };
                    c.scram = Some(xmpp_scram::Server::new(l.mechanism.ends_with("512"), store));
                }
                let body = SaslHandshakeResponse {
                    error_code,
                    mechanisms: List::from_slice(&enabled),
                };
                wire::encode_response(&mut out, version, corr, &body)
            }
            Request::SaslAuthenticate(a) => {
                self.log.sasl_authenticates.push((conn, now));
                if self.listener.drop_authenticates > 0 {
                    self.listener.drop_authenticates -= 1;
                    return None;
                }
                let refused = self.log.authentications >= l.accept;
                let (mut error_code, mut bytes, mut done) = (0, Vec::new(), false);
                if !c.handshaken {
                    error_code = 34;
                } else if l.mechanism == "PLAIN" {
                    let expected = format!("\0{USER}\0{}", l.password);
                    done = a.auth_bytes == expected.as_bytes() && !refused;
                    error_code = if done { 0 } else { 58 };
                } else if l.mechanism == "OAUTHBEARER" {
                    if c.oauth_refused {
                        error_code = 58;
                    } else {
                        let text = String::from_utf8_lossy(a.auth_bytes).to_string();
                        let token = text.split("auth=Bearer ").nth(1).unwrap_or("");
                        let token = token.split('\x01').next().unwrap_or("");
                        let expiry: u64 = token.trim_start_matches("tok-").parse().unwrap_or(0);
                        if expiry <= now.as_micros() / 1000 || refused {
                            self.log.expired_tokens += 1;
                            c.oauth_refused = true;
                            bytes = br#"{"status":"invalid_token"}"#.to_vec();
                        } else {
                            done = true;
                        }
                    }
                } else {
                    use xmpp_sasl::server::Response;
                    match c.scram.as_mut().map(|s| s.respond(a.auth_bytes)) {
                        Some(Ok(Response::Proceed(b))) => bytes = b,
                        Some(Ok(Response::Success(_, b))) if !refused => {
                            bytes = b;
                            if l.forge_signature {
                                bytes = b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_vec();
                            }
                            done = true;
                        }
                        _ => error_code = 58,
                    }
                }
                let lifetime = if done { l.lifetime_ms } else { 0 };
                if done {
                    self.log.authentications += 1;
                    c.handshaken = false;
                    c.session = Some((lifetime > 0).then(|| now + ms(lifetime as u64)));
                }
                if error_code != 0 {
                    c.handshaken = false;
                }
                let body = SaslAuthenticateResponse {
                    error_code,
                    error_message: None,
                    auth_bytes: &bytes,
                    session_lifetime_ms: lifetime,
                };
                wire::encode_response(&mut out, version, corr, &body)
            }
            _ if !authenticated => {
                self.log.unauthenticated += 1;
                return None;
            }
            Request::Metadata(_) => {
                answers::metadata(&mut out, version, corr, TOPIC, &[1], Some(&[(0, 1)]))
            }
            Request::InitProducerId(_) => {
                let body = InitProducerIdResponse {
                    throttle_time_ms: 0,
                    error_code: 0,
                    producer_id: 7,
                    producer_epoch: 0,
                };
                wire::encode_response(&mut out, version, corr, &body)
            }
            Request::Produce(p) => {
                let mut answers = Vec::new();
                for part in p.topics.iter().flat_map(|t| t.partitions.iter()) {
                    let batch = part.records.unwrap_or(&[]);
                    let sequence = i32::from_be_bytes(batch[53..57].try_into().unwrap());
                    let count = i32::from_be_bytes(batch[57..61].try_into().unwrap());
                    let log = &mut self.log;
                    let (offset, _) = *log.appended.entry(sequence).or_insert_with(|| {
                        let at = log.next_offset;
                        log.next_offset += i64::from(count);
                        (at, count)
                    });
                    answers.push(ProducePartitionResponse {
                        index: part.index,
                        error_code: 0,
                        base_offset: offset,
                        ..Default::default()
                    });
                }
                let topics = [ProduceTopicResponse {
                    name: TOPIC,
                    partitions: List::from_slice(&answers),
                }];
                let body = ProduceResponse {
                    topics: List::from_slice(&topics),
                    ..Default::default()
                };
                wire::encode_response(&mut out, version, corr, &body)
            }
        }
        .unwrap();
        out.truncate(n);
        Some(out)
    }
}

fn client(mechanism: Mechanism<'static>) -> C {
    let mut config = ClientConfig::new("sasl-test");
    config.producer.jitter_seed = 5;
    config.sasl = Some(mechanism);
    config.entropy = Some(Entropy(entropy));
    C::new(config, &["boot:9092"], &[TOPIC], vec![0; 8 * 16 * 1024]).unwrap()
}

fn plain(password: &'static str) -> Mechanism<'static> {
    Mechanism::Plain {
        username: USER,
        password,
    }
}

/// What a run saw.
#[derive(Default)]
struct Run {
    outcomes: Vec<Outcome>,
    offsets: Vec<i64>,
    /// Polls that asked to be polled again at once while nothing could happen.
    sent: u32,
}

/// Drives `c` against `broker` for `run`, sending a record every `every` (deadline 2 s)
/// while `sending`, and calling `each` at every step.
fn drive(
    c: &mut C,
    broker: &mut Broker,
    run: Duration,
    every: Option<Duration>,
    mut each: impl FnMut(&mut C, Instant),
) -> Run {
    let mut result = Run::default();
    let mut up = [false; 2];
    let mut buf = vec![0u8; 1 << 17];
    let mut now = Instant::ZERO;
    let mut last_send = None::<Instant>;
    while now.as_micros() < run.as_micros() as u64 {
        if let Some(every) = every
            && last_send.is_none_or(|at| at + every <= now)
            && now.as_micros() + 3_000_000 < run.as_micros() as u64
        {
            let record = ProducerRecord {
                topic: TOPIC,
                partition: Some(0),
                key: None,
                value: Some(b"v"),
                headers: &[],
                timestamp: None,
            };
            if c.send(&record, now + ms(2000), now).is_ok() {
                result.sent += 1;
                last_send = Some(now);
            }
        }
        c.poll(now);
        while let Some(conn) = c.poll_close() {
            up[usize::from(conn.0)] = false;
            broker.conns.remove(&conn.0);
        }
        while let Some((conn, _)) = c.poll_connect(now) {
            broker.log.dials += 1;
            c.on_connected(conn, now);
            up[usize::from(conn.0)] = true;
        }
        for (i, up) in up.iter_mut().enumerate() {
            let conn = ConnId(i as u8);
            while *up && let Some(n) = c.poll_transmit(conn, now, &mut buf) {
                match broker.respond(conn.0, &buf[4..n], now) {
                    Some(answer) => c.on_frame(conn, now, &answer[4..]),
                    None => {
                        broker.conns.remove(&conn.0);
                        *up = false;
                        c.on_connection_lost(conn, now);
                    }
                }
            }
        }
        while let Some(d) = c.poll_delivery() {
            for r in d.records() {
                result.outcomes.push(r.outcome);
                result.offsets.extend(r.offset);
            }
        }
        each(c, now);
        now = now + ms(1);
    }
    result
}

/// Every record sent persisted once, at its own offset, and the log holds exactly them.
fn assert_exactly_once(run: &Run, broker: &Broker) {
    assert!(run.sent > 0);
    assert_eq!(
        run.outcomes.len() as u32,
        run.sent,
        "one outcome per record"
    );
    assert!(
        run.outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Persisted { .. })),
        "{:?}",
        run.outcomes
            .iter()
            .find(|o| !matches!(o, Outcome::Persisted { .. }))
    );
    let mut offsets = run.offsets.clone();
    offsets.sort();
    offsets.dedup();
    assert_eq!(offsets.len() as u32, run.sent, "distinct offsets");
    assert_eq!(
        broker.log.next_offset,
        i64::from(run.sent),
        "the log holds each once"
    );
    assert_eq!(
        broker.log.unauthenticated, 0,
        "a request before authentication"
    );
}

#[test]
fn every_mechanism_authenticates_before_any_other_request() {
    let mechanisms: [(&str, Mechanism<'static>); 4] = [
        ("PLAIN", plain(PASSWORD)),
        (
            "SCRAM-SHA-256",
            Mechanism::ScramSha256 {
                username: USER,
                password: PASSWORD,
            },
        ),
        (
            "SCRAM-SHA-512",
            Mechanism::ScramSha512 {
                username: USER,
                password: PASSWORD,
            },
        ),
        (
            "OAUTHBEARER",
            Mechanism::OAuthBearer {
                token: "tok-99999999",
                extensions: &[("logicalCluster", "lkc-1")],
            },
        ),
    ];
    for (name, mechanism) in mechanisms {
        let mut c = client(mechanism);
        let mut broker = Broker::new(Listener::new(name));
        let run = drive(&mut c, &mut broker, ms(3500), Some(ms(10)), |_, _| {});
        assert_exactly_once(&run, &broker);
        assert_eq!(c.authentication_error(), None, "{name}");
        // The bootstrap connection and the leader's, each authenticated once.
        assert_eq!(broker.log.dials, 2, "{name}");
        assert_eq!(broker.log.authentications, 2, "{name}");
    }
}

/// `listener` makes the exchange fail: the producer stops with `expected`, decides every
/// record it held, and dials nothing more.
fn fails_for_good(mechanism: Mechanism<'static>, listener: Listener, expected: sasl::Error) {
    let mut c = client(mechanism);
    let accept = listener.accept;
    let mut broker = Broker::new(listener);
    let mut busy = 0;
    let run = drive(&mut c, &mut broker, ms(30_000), Some(ms(5)), |c, now| {
        // Once the failed connection is handed to the transport to close, nothing is left
        // to do at once.
        if c.authentication_error().is_some()
            && c.poll(now) == Some(now)
            && c.poll_close().is_none()
        {
            busy += 1;
        }
    });
    assert_eq!(c.authentication_error(), Some(expected));
    let dials = if accept == u32::MAX { 1 } else { 2 };
    assert_eq!(broker.log.dials, dials, "dialled again after the failure");
    assert_eq!(
        busy, 0,
        "polls asking to be polled at once after the failure"
    );
    assert_eq!(broker.log.unauthenticated, 0);
    assert!(c.is_decided());
    let fatal = Outcome::NotPersisted(NotPersistedReason::ProducerFatal(
        FatalReason::Authentication(expected),
    ));
    assert!(
        run.outcomes.iter().all(|o| *o == fatal),
        "{:?}",
        run.outcomes
    );
    if accept != u32::MAX {
        // Records were accepted once the bootstrap connection had metadata: all decided.
        assert!(!run.outcomes.is_empty());
    }
    let message = FatalReason::Authentication(expected).to_string();
    assert!(message.contains("sasl"), "{message}");
    assert!(!message.contains(PASSWORD));
}

#[test]
fn the_scram_salted_password_is_derived_a_step_per_poll_once_per_client() {
    let mut c = client(Mechanism::ScramSha512 {
        username: USER,
        password: PASSWORD,
    });
    let mut broker = Broker::new(Listener::new("SCRAM-SHA-512"));
    let run = drive(&mut c, &mut broker, ms(3500), Some(ms(10)), |_, _| {});
    assert_exactly_once(&run, &broker);
    // Two connections (bootstrap, leader), each with a client-first and a client-final.
    let times = &broker.log.sasl_authenticates;
    assert_eq!(times.len(), 4, "{times:?}");
    let gap = |conn: u8| {
        let mut at = times.iter().filter(|(c, _)| *c == conn).map(|(_, t)| *t);
        let (first, last) = (at.next().unwrap(), at.next().unwrap());
        last.saturating_duration_since(first)
    };
    // The first connection waits for the 4096 iterations, 32 a poll (1 ms apart here): the
    // derivation never ran in one call. The second finds the salted password kept.
    let (first, second) = (times[0].0, times[3].0);
    assert_ne!(first, second);
    assert!(gap(first) >= ms(127), "{:?}", gap(first));
    assert!(gap(second) < ms(2), "{:?}", gap(second));
}

#[test]
fn a_refused_password_stops_the_producer_and_the_dialling() {
    let wrong = plain("wrong");
    let failed = sasl::Error::AuthenticationFailed { error_code: 58 };
    fails_for_good(wrong, Listener::new("PLAIN"), failed);
    // Accepted on the bootstrap connection, refused on the leader's (a rotated password):
    // the records accepted meanwhile are decided, none sent.
    let rotated = Listener {
        accept: 1,
        ..Listener::new("PLAIN")
    };
    fails_for_good(plain(PASSWORD), rotated, failed);
    let scram = Mechanism::ScramSha512 {
        username: USER,
        password: "wrong",
    };
    fails_for_good(scram, Listener::new("SCRAM-SHA-512"), failed);
}

#[test]
fn a_mechanism_not_enabled_illegal_state_or_forged_signature_stops_the_producer() {
    let scram = Mechanism::ScramSha256 {
        username: USER,
        password: PASSWORD,
    };
    let not_enabled = sasl::Error::MechanismNotEnabled {
        mechanism: "SCRAM-SHA-256",
    };
    fails_for_good(scram, Listener::new("PLAIN"), not_enabled);
    let illegal = Listener {
        handshake_error: Some(34),
        ..Listener::new("PLAIN")
    };
    let code_34 = sasl::Error::AuthenticationFailed { error_code: 34 };
    fails_for_good(plain(PASSWORD), illegal, code_34);
    let forged = Listener {
        forge_signature: true,
        ..Listener::new("SCRAM-SHA-256")
    };
    fails_for_good(scram, forged, sasl::Error::ScramServerSignatureMismatch);
}

#[test]
fn a_connection_lost_mid_exchange_is_redialled_with_the_backoff() {
    let mut c = client(plain(PASSWORD));
    let mut broker = Broker::new(Listener {
        drop_authenticates: 3,
        ..Listener::new("PLAIN")
    });
    let run = drive(&mut c, &mut broker, ms(5000), Some(ms(20)), |_, _| {});
    assert_eq!(c.authentication_error(), None);
    // Three losses, backed off 100, 200, 400 ms (less a quarter at most), then the two
    // connections that work.
    assert_eq!(broker.log.dials, 5);
    assert_exactly_once(&run, &broker);
}

#[test]
fn sessions_are_renewed_on_the_same_connection_while_records_flow() {
    let mut c = client(Mechanism::ScramSha512 {
        username: USER,
        password: PASSWORD,
    });
    let mut broker = Broker::new(Listener {
        lifetime_ms: 2000,
        ..Listener::new("SCRAM-SHA-512")
    });
    let run = drive(&mut c, &mut broker, ms(10_000), Some(ms(3)), |_, _| {});
    assert_exactly_once(&run, &broker);
    assert_eq!(
        broker.log.dials, 2,
        "re-authentication needs no new connection"
    );
    assert_eq!(broker.log.early_reauths, 0);
    // The leader's connection every 1.7 s for about 10 s.
    assert!(broker.log.authentications >= 6, "{:?}", broker.log);
}

#[test]
fn sessions_too_short_to_renew_in_place_are_handed_to_new_connections() {
    // 700 ms sessions (a token near its expiry): renewing each at 85% would begin a
    // re-authentication every 595 ms, and Kafka refuses one within a second of the last
    // (ILLEGAL_SASL_STATE, which would stop the producer). The first renewal of a connection
    // is in place; the next would be too soon, so the connection drains and a new one
    // authenticates afresh.
    let mut c = client(Mechanism::ScramSha512 {
        username: USER,
        password: PASSWORD,
    });
    let mut broker = Broker::new(Listener {
        lifetime_ms: 700,
        ..Listener::new("SCRAM-SHA-512")
    });
    let run = drive(&mut c, &mut broker, ms(8_000), Some(ms(3)), |_, _| {});
    assert_eq!(c.authentication_error(), None);
    assert_eq!(broker.log.early_reauths, 0, "{:?}", broker.log);
    assert_exactly_once(&run, &broker);
    // A new connection about every 1.2 s, each authenticated twice.
    assert!(broker.log.dials >= 5, "{:?}", broker.log);
    assert!(broker.log.authentications >= 2 * 5, "{:?}", broker.log);
}

#[test]
fn oauth_tokens_are_asked_for_before_they_expire_and_never_sent_expired() {
    // No token at first: the client asks for one, and waits.
    let mut c = client(Mechanism::OAuthBearer {
        token: "",
        extensions: &[],
    });
    let mut broker = Broker::new(Listener {
        lifetime_ms: 1000,
        ..Listener::new("OAUTHBEARER")
    });
    let mut asked: Vec<(Instant, bool)> = Vec::new();
    let run = drive(&mut c, &mut broker, ms(8000), Some(ms(7)), |c, now| {
        // The identity provider answers 200 ms after it is asked (from 1 s on): tokens of 2 s.
        let pending = asked.last().is_some_and(|&(_, set)| !set);
        let answered = asked.last().is_some_and(|&(at, _)| at + ms(200) <= now);
        if !c.oauth_token_wanted(now) || now.as_micros() < 1_000_000 {
            return;
        }
        if pending && answered {
            let expiry = now + ms(2000);
            let token = format!("tok-{}", expiry.as_micros() / 1000);
            c.set_oauth_token(&token, now, Some(expiry)).unwrap();
            asked.last_mut().unwrap().1 = true;
        } else if !pending {
            asked.push((now, false));
        }
    });
    assert_eq!(broker.log.expired_tokens, 0, "an expired token was sent");
    assert_eq!(c.authentication_error(), None);
    assert!(asked.len() >= 4, "{asked:?}");
    // After the first, each token is asked for at 80% of the previous one's 2 s life.
    for pair in asked.windows(2).skip(1) {
        let gap = pair[1].0.saturating_duration_since(pair[0].0);
        assert!(gap >= ms(1700) && gap <= ms(1900), "{asked:?}");
    }
    assert_exactly_once(&run, &broker);
    // Not OAUTHBEARER: refused.
    let mut plain_client = client(plain(PASSWORD));
    assert_eq!(
        plain_client.set_oauth_token("t", Instant::ZERO, None),
        Err(sasl::Error::WrongMechanism)
    );
}

#[test]
fn no_secret_in_debug_output() {
    let mut config = ClientConfig::new("x");
    config.sasl = Some(plain(PASSWORD));
    config.entropy = Some(Entropy(entropy));
    let text = format!("{config:?}");
    assert!(text.contains("alice") && !text.contains(PASSWORD), "{text}");
    config.sasl = Some(Mechanism::OAuthBearer {
        token: "tok-secret-token",
        extensions: &[],
    });
    assert!(!format!("{config:?}").contains("secret-token"));
}

#[test]
fn credentials_too_long_are_refused_with_the_limit() {
    use producer_core::client::{ClientConfigError, MAX_SASL_SECRET};
    let long = "p".repeat(MAX_SASL_SECRET + 1);
    let long: &'static str = Box::leak(long.into_boxed_str());
    let mut config = ClientConfig::new("x");
    config.sasl = Some(plain(long));
    let e = C::new(config, &["b:1"], &[TOPIC], vec![0; 8 * 16 * 1024]).err();
    assert_eq!(e, Some(ClientConfigError::SaslSecretTooLong));
    assert!(e.unwrap().to_string().contains("2048"));
    config.sasl = Some(Mechanism::ScramSha256 {
        username: USER,
        password: PASSWORD,
    });
    let e = C::new(config, &["b:1"], &[TOPIC], vec![0; 8 * 16 * 1024]).err();
    assert_eq!(e, Some(ClientConfigError::SaslEntropy));
}
