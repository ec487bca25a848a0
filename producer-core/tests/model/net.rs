//! The network between the client and the model cluster, for the simulations of the whole
//! client: one wire per incarnation of a client connection, with per-direction latency in
//! order, black holes (a direction that silently stops delivering), resets, and, after a
//! close, requests still in transit that the broker processes for a short while (it had read
//! them). Each wire carries a tag from its simulation (the durable one: the device life that
//! opened it), handed back with every request that reaches a broker.
//!
//! It schedules its events ([`NetEv`]) in the simulation's own world, so the draws on the
//! world's random source stay in one fixed order per seed.

use std::collections::BTreeMap;
use std::time::Duration;

use producer_core::time::Instant;
use producer_core::wire::{self, RecordBatches, Request};
use rand::Rng;

use super::broker::{BROKERS, Cluster};
use crate::harness::World;

/// How long after a connection closes the broker may still process requests it had read.
pub const LINGER_AFTER_CLOSE: Duration = Duration::from_millis(50);

/// The events the network schedules, which the simulation's event type carries (`From`):
/// `conn` is the client's connection id, `inc` the wire's incarnation (an event of an earlier
/// one is stale), `frame` a length-prefixed request or response; and a broker's return after
/// [`Net::broker_down`].
#[derive(Debug)]
pub enum NetEv {
    Connected(u8, u64),
    ConnectFailed(u8, u64),
    Arrive(u8, u64, Vec<u8>),
    Response(u8, u64, Vec<u8>),
    Reset(u8, u64),
    BrokerUp(usize),
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

/// A closed incarnation whose requests in transit may still be processed.
struct Closed<T> {
    broker: usize,
    /// How many more the broker processes.
    pending: u32,
    at: Instant,
    tag: T,
}

pub struct Net<T> {
    pub wires: BTreeMap<u8, Wire<T>>,
    closed: BTreeMap<u64, Closed<T>>,
    next_incarnation: u64,
    /// Trace every request sent, with what it carries.
    pub trace_sends: bool,
}

impl<T: Copy> Net<T> {
    pub fn new(trace_sends: bool) -> Self {
        Net {
            wires: BTreeMap::new(),
            closed: BTreeMap::new(),
            next_incarnation: 0,
            trace_sends,
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
        let at = w.now + Duration::from_millis(w.rng.random_range(1..4));
        if up[broker] {
            w.schedule(at, NetEv::Connected(conn, incarnation).into());
        } else {
            w.schedule(at, NetEv::ConnectFailed(conn, incarnation).into());
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

    /// The connection closes (either side): requests in transit may still reach the broker
    /// for a short while (it processes what it had read).
    pub fn close<E>(&mut self, w: &mut World<E>, conn: u8) {
        if let Some(wire) = self.wires.remove(&conn) {
            let pending = w.rng.random_range(0..=3);
            self.closed.insert(
                wire.incarnation,
                Closed {
                    broker: wire.broker,
                    pending,
                    at: w.now,
                    tag: wire.tag,
                },
            );
        }
    }

    /// Every connection closes, in id order.
    pub fn close_all<E>(&mut self, w: &mut World<E>) {
        let conns: Vec<u8> = self.wires.keys().copied().collect();
        for conn in conns {
            self.close(w, conn);
        }
    }

    /// A closed connection's requests may still be processed.
    pub fn lingering(&self, now: Instant) -> bool {
        self.closed
            .values()
            .any(|c| c.pending > 0 && now <= c.at + LINGER_AFTER_CLOSE)
    }

    /// Broker `b` goes down (if the cluster lets it): its connections reset, and it comes
    /// back later.
    pub fn broker_down<E: From<NetEv>>(
        &mut self,
        w: &mut World<E>,
        cluster: &mut Cluster,
        b: usize,
    ) {
        if !cluster.broker_down(w, b) {
            return;
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
        if !blackholed {
            w.schedule(arrival, NetEv::Arrive(conn, inc, frame).into());
        }
        if reset {
            let at = now + Duration::from_micros(w.rng.random_range(0..20_000));
            w.schedule(at, NetEv::Reset(conn, inc).into());
        }
    }

    /// A request of incarnation `inc` reaches its broker: the broker and the wire's tag, if
    /// the wire is current or closed but still processed (which uses one of its pending
    /// requests).
    pub fn route(&mut self, now: Instant, conn: u8, inc: u64) -> Option<(usize, T)> {
        if let Some(wire) = self.wires.get(&conn).filter(|w| w.incarnation == inc) {
            return Some((wire.broker, wire.tag));
        }
        match self.closed.get_mut(&inc) {
            Some(c) if c.pending > 0 && now <= c.at + LINGER_AFTER_CLOSE => {
                c.pending -= 1;
                Some((c.broker, c.tag))
            }
            _ => None,
        }
    }

    /// The broker answers on incarnation `inc`: if it is still current, the response may
    /// fall into a black hole or arrive late.
    pub fn respond<E: From<NetEv>>(
        &mut self,
        w: &mut World<E>,
        conn: u8,
        inc: u64,
        frame: Vec<u8>,
    ) {
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
