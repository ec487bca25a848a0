//! The network between the client and the model cluster, for the simulations of the whole
//! client: one wire per incarnation of a client connection, with per-direction latency in
//! order, black holes (a direction that silently stops delivering), resets, and the broker's
//! side of each incarnation (its inbox): like Kafka, a broker reads the next request of a
//! connection only once it answered the one before, which may wait for acks (`Reply::wait`).
//! After a close, the broker may still read and process some of the requests in transit or
//! queued (it had them in its socket buffer): tansu for a short while
//! ([`LINGER_AFTER_CLOSE`]), Kafka one at a time, each of which may wait up to the produce
//! timeout it carries, so up to that many produce timeouts after the close. Each wire carries
//! a tag from its simulation (the durable one: the device life that opened it), handed back
//! with every request a broker processes.
//!
//! It schedules its events ([`NetEv`]) in the simulation's own world, so the draws on the
//! world's random source stay in one fixed order per seed.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use producer_core::ErrorCode;
use producer_core::time::Instant;
use producer_core::wire::{self, RecordBatches, Request};
use rand::Rng;

use super::Flavour;
use super::broker::{BROKERS, Cluster, Reply};
use super::faults::Faults;
use crate::harness::World;

/// How long after a connection closes tansu may still process requests it had read.
pub const LINGER_AFTER_CLOSE: Duration = Duration::from_millis(50);

/// The events the network schedules, which the simulation's event type carries (`From`):
/// `conn` is the client's connection id, `inc` the wire's incarnation (an event of an earlier
/// one is stale), `frame` a length-prefixed request (with when it was sent) or response; a broker's return after
/// [`Net::broker_down`]; and the cluster's: the end of an acks wait on incarnation `inc`, a
/// partition's leadership moving during one, and Kafka's periodic producer-expiry check.
#[derive(Debug)]
pub enum NetEv {
    Connected(u8, u64),
    ConnectFailed(u8, u64),
    Arrive(u8, u64, Instant, Vec<u8>),
    Response(u8, u64, Vec<u8>),
    Reset(u8, u64),
    BrokerUp(usize),
    AcksDone(u64),
    LeaderMoves(usize, usize),
    ExpiryCheck,
}

/// One incarnation of a client connection, as the network sees it.
pub struct Wire<T> {
    pub incarnation: u64,
    pub broker: usize,
    pub tag: T,
    pub connected: bool,
    black_requests: bool,
    black_responses: bool,
    last_arrival: Instant,
    last_response: Instant,
}

/// The broker's side of one incarnation.
struct Inbox<T> {
    conn: u8,
    broker: usize,
    tag: T,
    /// Requests arrived (with when they were sent), not read yet: the broker is answering
    /// the one before.
    queue: VecDeque<(Instant, Vec<u8>)>,
    /// The request being answered, waiting for acks.
    held: Option<Reply>,
    /// Requests sent and still on their way.
    in_transit: u32,
    /// The produce timeout the requests carry (Kafka), once one was sent.
    timeout: Option<Duration>,
    /// Its broker went down: nothing more of it is processed.
    dead: bool,
    closed: Option<AfterClose>,
}

/// A closed incarnation whose requests in transit or queued may still be processed.
struct AfterClose {
    at: Instant,
    /// How many more the broker reads.
    pending: u32,
    /// Until when it may read them.
    until: Instant,
}

pub struct Net<T> {
    pub flavour: Flavour,
    pub wires: BTreeMap<u8, Wire<T>>,
    inboxes: BTreeMap<u64, Inbox<T>>,
    next_incarnation: u64,
    /// Trace every request sent, with what it carries.
    pub trace_sends: bool,
    pub faults: Faults,
    /// A stretch of time in which every broker misbehaves at connect.
    pub hostile: Option<(Hostile, Instant, Instant)>,
}

/// How the brokers treat a connection in a hostile stretch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hostile {
    /// Refused, as a port nobody listens on.
    Refuse,
    /// Accepted, then closed a millisecond later, before any answer.
    CloseAtOnce,
}

impl<T: Copy> Net<T> {
    pub fn new(flavour: Flavour, trace_sends: bool) -> Self {
        Net {
            flavour,
            wires: BTreeMap::new(),
            inboxes: BTreeMap::new(),
            next_incarnation: 0,
            trace_sends,
            faults: Faults::default(),
            hostile: None,
        }
    }

    /// The longest after a close that the broker may still process a request of the
    /// connection, for a client sending `timeout` as its produce timeout: tansu's short
    /// linger, Kafka's five produce timeouts (the requests a connection pipelines).
    pub fn linger_bound(&self, timeout: Duration) -> Duration {
        match self.flavour {
            Flavour::Tansu => LINGER_AFTER_CLOSE,
            Flavour::Kafka => timeout * 5,
        }
    }

    /// The client opens connection `conn` to `host` (`b1`..): a new incarnation, which
    /// connects a few milliseconds later if the broker is up, or fails.
    pub fn connect<E: From<NetEv>>(
        &mut self,
        w: &mut World<E>,
        conn: u8,
        host: &str,
        tag: T,
        up: &[bool; BROKERS],
    ) -> Result<(), String> {
        let broker = host
            .trim_start_matches('b')
            .parse::<usize>()
            .map_err(|e| e.to_string())?
            - 1;
        let incarnation = self.next_incarnation;
        self.next_incarnation += 1;
        self.wires.insert(
            conn,
            Wire {
                incarnation,
                broker,
                tag,
                connected: false,
                black_requests: false,
                black_responses: false,
                last_arrival: w.now,
                last_response: w.now,
            },
        );
        self.inboxes.insert(
            incarnation,
            Inbox {
                conn,
                broker,
                tag,
                queue: VecDeque::new(),
                held: None,
                in_transit: 0,
                timeout: None,
                dead: false,
                closed: None,
            },
        );
        let at = w.now + Duration::from_millis(w.rng.random_range(1..4));
        let hostile = self
            .hostile
            .filter(|&(_, from, until)| (from..until).contains(&w.now))
            .map(|(h, _, _)| h);
        match (up[broker], hostile) {
            (true, None) => w.schedule(at, NetEv::Connected(conn, incarnation).into()),
            (true, Some(Hostile::CloseAtOnce)) => {
                self.faults.hostile_closed += 1;
                w.schedule(at, NetEv::Connected(conn, incarnation).into());
                let reset = at + Duration::from_millis(1);
                w.schedule(reset, NetEv::Reset(conn, incarnation).into());
            }
            (up, hostile) => {
                if up && hostile == Some(Hostile::Refuse) {
                    self.faults.hostile_refused += 1;
                }
                w.schedule(at, NetEv::ConnectFailed(conn, incarnation).into());
            }
        }
        Ok(())
    }

    /// The connections established, in id order.
    pub fn connected(&self) -> Vec<u8> {
        self.wires
            .iter()
            .filter(|(_, w)| w.connected)
            .map(|(c, _)| *c)
            .collect()
    }

    pub fn is_connected(&self, conn: u8) -> bool {
        self.wires.get(&conn).is_some_and(|w| w.connected)
    }

    /// Incarnation `inc` is still connection `conn`'s.
    pub fn is_current(&self, conn: u8, inc: u64) -> bool {
        self.wires.get(&conn).is_some_and(|w| w.incarnation == inc)
    }

    /// `Connected`: true (and the wire is up) if `inc` is still current.
    pub fn on_connected(&mut self, conn: u8, inc: u64) -> bool {
        match self.wires.get_mut(&conn) {
            Some(w) if w.incarnation == inc => {
                w.connected = true;
                true
            }
            _ => false,
        }
    }

    /// `ConnectFailed`: true (and the wire is gone) if `inc` is still current.
    pub fn on_connect_failed(&mut self, conn: u8, inc: u64) -> bool {
        let current = self.is_current(conn, inc);
        if current {
            self.wires.remove(&conn);
            self.inboxes.remove(&inc);
        }
        current
    }

    /// `Reset`: true (and the wire is closed) if `inc` is still current.
    pub fn on_reset<E>(&mut self, w: &mut World<E>, conn: u8, inc: u64) -> bool {
        let current = self.is_current(conn, inc);
        if current {
            w.log(|| format!("connection {conn} reset"));
            self.close(w, conn);
        }
        current
    }

    /// The connection closes (either side): some of its requests in transit or not read yet
    /// may still be processed, for a while (see the module's doc).
    pub fn close<E>(&mut self, w: &mut World<E>, conn: u8) {
        let Some(wire) = self.wires.remove(&conn) else {
            return;
        };
        let pending = match self.flavour {
            Flavour::Tansu => w.rng.random_range(0..=3),
            Flavour::Kafka => w.rng.random_range(0..=5),
        };
        let Some(inbox) = self.inboxes.get_mut(&wire.incarnation) else {
            return;
        };
        let window = match (self.flavour, inbox.timeout) {
            (Flavour::Kafka, Some(timeout)) => (timeout * pending).max(LINGER_AFTER_CLOSE),
            _ => LINGER_AFTER_CLOSE,
        };
        inbox.closed = Some(AfterClose {
            at: w.now,
            pending: if inbox.dead { 0 } else { pending },
            until: w.now + window,
        });
        self.tidy(wire.incarnation, w.now);
    }

    /// Every connection closes, in id order.
    pub fn close_all<E>(&mut self, w: &mut World<E>) {
        let conns: Vec<u8> = self.wires.keys().copied().collect();
        for conn in conns {
            self.close(w, conn);
        }
    }

    /// A closed connection's requests may still be processed: one is queued or being
    /// answered, or one on its way may still be read.
    pub fn lingering(&self, now: Instant) -> bool {
        self.inboxes.values().any(|i| {
            i.closed.as_ref().is_some_and(|c| {
                i.held.is_some()
                    || !i.queue.is_empty()
                    || (c.pending > 0 && i.in_transit > 0 && now <= c.until)
            })
        })
    }

    /// Some broker still has a request of any connection to process or answer, or one of a
    /// closed connection may still arrive and be read: a seed has not settled before this is
    /// false (a late append must be in the log it checks).
    pub fn busy(&self, now: Instant) -> bool {
        self.lingering(now)
            || self
                .inboxes
                .values()
                .any(|i| i.held.is_some() || !i.queue.is_empty())
    }

    /// Broker `b` goes down (if the cluster lets it): its connections reset, what it had
    /// not answered is lost, and it comes back later, leading its partitions again (from its
    /// snapshot if `clean`) if `lead_again` (Kafka).
    pub fn broker_down<E: From<NetEv>>(
        &mut self,
        w: &mut World<E>,
        cluster: &mut Cluster,
        b: usize,
        lead_again: bool,
        clean: bool,
    ) {
        if !cluster.broker_down(w, b, lead_again, clean) {
            return;
        }
        for inbox in self.inboxes.values_mut().filter(|i| i.broker == b) {
            inbox.dead = true;
            inbox.queue.clear();
            inbox.held = None;
            if let Some(c) = &mut inbox.closed {
                c.pending = 0;
            }
        }
        let doomed: Vec<(u8, u64)> = self
            .wires
            .iter()
            .filter(|(_, wire)| wire.broker == b)
            .map(|(c, wire)| (*c, wire.incarnation))
            .collect();
        for (c, inc) in doomed {
            let at = w.now + Duration::from_millis(1);
            w.schedule(at, NetEv::Reset(c, inc).into());
        }
        let at = w.now + Duration::from_millis(w.rng.random_range(50..1500));
        w.schedule(at, NetEv::BrokerUp(b).into());
    }

    /// The client sends a frame on `conn`: it may fall into a black hole, arrive late, or
    /// the connection may reset soon after.
    pub fn transmit<E: From<NetEv>>(&mut self, w: &mut World<E>, conn: u8, frame: Vec<u8>) {
        let black = w.chance(0.01);
        let reset = w.chance(0.008);
        let latency = w.latency(0.02, 300..2500, 200..6000);
        if self.trace_sends {
            w.log(|| {
                format!(
                    "send on {conn} ({latency:?}{}{}): {}",
                    if black { ", black hole" } else { "" },
                    if reset { ", reset" } else { "" },
                    describe(&frame[4..])
                )
            });
        }
        let now = w.now;
        let Some(wire) = self.wires.get_mut(&conn) else {
            return;
        };
        wire.black_requests |= black;
        let arrival = wire.last_arrival.max(now + latency);
        wire.last_arrival = arrival;
        let (inc, blackholed) = (wire.incarnation, wire.black_requests);
        if let Some(inbox) = self.inboxes.get_mut(&inc) {
            if self.flavour == Flavour::Kafka && inbox.timeout.is_none() {
                inbox.timeout = produce_timeout(&frame[4..]);
            }
            if !blackholed {
                inbox.in_transit += 1;
            }
        }
        if !blackholed {
            w.schedule(arrival, NetEv::Arrive(conn, inc, now, frame).into());
        }
        if reset {
            let at = now + Duration::from_micros(w.rng.random_range(0..20_000));
            w.schedule(at, NetEv::Reset(conn, inc).into());
        }
    }

    /// A request of incarnation `inc` reaches its broker: true if it joined the broker's
    /// inbox (the wire is current, or closed but the broker still reads it), so the
    /// simulation [serves](Net::serve) it.
    pub fn on_arrive(&mut self, now: Instant, inc: u64, sent: Instant, frame: Vec<u8>) -> bool {
        let Some(inbox) = self.inboxes.get_mut(&inc) else {
            return false;
        };
        inbox.in_transit = inbox.in_transit.saturating_sub(1);
        let readable = !inbox.dead
            && inbox
                .closed
                .as_ref()
                .is_none_or(|c| c.pending > 0 && now <= c.until);
        if readable {
            inbox.queue.push_back((sent, frame));
        }
        self.tidy(inc, now);
        readable
    }

    /// The broker processes what incarnation `inc` has queued, one request at a time:
    /// `answer` processes one (given the world, the cluster, the broker, the wire's tag and
    /// the frame without its length prefix), and the reply goes out at once, or when its
    /// acks wait is over (`NetEv::AcksDone`), and only then is the next one read.
    pub fn serve<E: From<NetEv>>(
        &mut self,
        w: &mut World<E>,
        cluster: &mut Cluster,
        inc: u64,
        mut answer: impl FnMut(&mut World<E>, &mut Cluster, usize, T, &[u8]) -> Result<Reply, String>,
    ) -> Result<(), String> {
        loop {
            let now = w.now;
            let Some(inbox) = self.inboxes.get_mut(&inc) else {
                return Ok(());
            };
            if inbox.held.is_some() || inbox.dead {
                return Ok(());
            }
            if let Some(c) = &mut inbox.closed {
                if c.pending == 0 || now > c.until {
                    inbox.queue.clear();
                    break;
                }
                if inbox.queue.is_empty() {
                    break;
                }
                c.pending -= 1;
            }
            let Some((sent, frame)) = inbox.queue.pop_front() else {
                break;
            };
            self.faults.longest_to_process = self
                .faults
                .longest_to_process
                .max(now.saturating_duration_since(sent));
            let (broker, tag, closed_at) =
                (inbox.broker, inbox.tag, inbox.closed.as_ref().map(|c| c.at));
            if !cluster.up[broker] {
                continue;
            }
            let reply = answer(w, cluster, broker, tag, &frame[4..])?;
            if let Some(at) = closed_at {
                self.faults.stragglers += 1;
                self.faults.straggler_max_delay = self
                    .faults
                    .straggler_max_delay
                    .max(now.saturating_duration_since(at));
                self.faults.stragglers_fenced += reply
                    .produce_errors()
                    .filter(|&e| e == ErrorCode::INVALID_PRODUCER_EPOCH)
                    .count() as u64;
                w.log(|| format!("broker {broker} processes a request of a closed connection"));
            }
            if reply.wait > Duration::ZERO {
                w.schedule(now + reply.wait, NetEv::AcksDone(inc).into());
                if let Some(inbox) = self.inboxes.get_mut(&inc) {
                    inbox.held = Some(reply);
                }
                return Ok(());
            }
            let frame = cluster.finish(w, reply)?;
            self.respond(w, inc, frame);
        }
        self.tidy(inc, w.now);
        Ok(())
    }

    /// `AcksDone`: the held reply of `inc` goes out (if its broker did not go down
    /// meanwhile); then the simulation serves the next request.
    pub fn on_acks_done<E: From<NetEv>>(
        &mut self,
        w: &mut World<E>,
        cluster: &mut Cluster,
        inc: u64,
    ) -> Result<(), String> {
        let Some(reply) = self.inboxes.get_mut(&inc).and_then(|i| i.held.take()) else {
            return Ok(());
        };
        let frame = cluster.finish(w, reply)?;
        self.respond(w, inc, frame);
        Ok(())
    }

    /// Forgets a closed incarnation once nothing of it can be processed any more.
    fn tidy(&mut self, inc: u64, now: Instant) {
        let done = self.inboxes.get(&inc).is_some_and(|i| {
            i.closed.as_ref().is_some_and(|c| {
                i.held.is_none()
                    && i.queue.is_empty()
                    && (i.in_transit == 0 || c.pending == 0 || now > c.until)
            })
        });
        if done {
            self.inboxes.remove(&inc);
        }
    }

    /// The broker answers on incarnation `inc`: if it is still current, the response may
    /// fall into a black hole or arrive late.
    fn respond<E: From<NetEv>>(&mut self, w: &mut World<E>, inc: u64, frame: Vec<u8>) {
        let Some(conn) = self.inboxes.get(&inc).map(|i| i.conn) else {
            return;
        };
        let Some(wire) = self.wires.get_mut(&conn).filter(|w| w.incarnation == inc) else {
            return;
        };
        if wire.black_responses {
            return;
        }
        let black = w.now < w.fault_end && w.rng.random_bool(0.01);
        let latency = w.latency(0.02, 300..2500, 200..6000);
        let now = w.now;
        let wire = self.wires.get_mut(&conn).expect("wire");
        wire.black_responses |= black;
        if black {
            return;
        }
        let at = wire.last_response.max(now + latency);
        wire.last_response = at;
        w.schedule(at, NetEv::Response(conn, inc, frame).into());
    }
}

/// The produce timeout a request frame carries, if it is a produce request.
fn produce_timeout(frame: &[u8]) -> Option<Duration> {
    match wire::decode_request(frame) {
        Ok((_, Request::Produce(p))) => Some(Duration::from_millis(p.timeout_ms.max(0) as u64)),
        _ => None,
    }
}

/// What a request carries, for the trace: per produce entry, partition, stamp and values.
fn describe(frame: &[u8]) -> String {
    let Ok((header, request)) = wire::decode_request(frame) else {
        return "garbage".into();
    };
    let Request::Produce(produce) = request else {
        return format!("{:?} corr {}", header.api_key, header.correlation_id);
    };
    let mut out = format!("produce corr {}", header.correlation_id);
    for topic in &produce.topics {
        for p in &topic.partitions {
            let Some(Ok(batch)) = p.records.and_then(|r| RecordBatches::new(r).next()) else {
                continue;
            };
            let h = batch.header;
            let values: Vec<String> = batch
                .records
                .iter()
                .map(|r| {
                    let v = String::from_utf8_lossy(r.value.unwrap_or_default()).to_string();
                    v.split('-').next().unwrap_or_default().to_string()
                })
                .collect();
            out += &format!(
                "; p{} ({}, {}, {}) {values:?}",
                p.index, h.producer_id, h.producer_epoch, h.base_sequence
            );
        }
    }
    out
}
