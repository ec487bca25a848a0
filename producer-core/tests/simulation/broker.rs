//! The broker's side of the small client's connections: like Kafka, a broker reads a
//! connection's next request only once it answered the one before, and a produce request may
//! wait for acks (`Cluster::acks_wait`) before its answer leaves. After the client closes a
//! connection, the broker may still process some of the requests it had (in transit or not
//! read yet): tansu for [`LINGER_AFTER_CLOSE`], Kafka up to a produce timeout per request.
//! The judgement and the log are the shared model cluster's (`model::broker`).

use std::collections::VecDeque;
use std::time::Duration;

use producer_core::ErrorCode;
use producer_core::state::BatchToken;
use producer_core::time::Instant;
use rand::Rng;

use crate::model::Flavour;
use crate::model::broker::{Entry, Judged, PartReply};
use crate::model::net::LINGER_AFTER_CLOSE;
use crate::{Answer, Body, Ev, REQUEST_TIMEOUT, Sim, batch_id};

/// The broker's side of one connection.
pub(crate) struct Inbox {
    pub(crate) broker: usize,
    /// Requests arrived (correlation id, when sent, body), not read yet.
    queue: VecDeque<(u64, Instant, Body)>,
    /// The request being answered, waiting for acks.
    held: Option<(u64, Held)>,
    /// Requests sent and still on their way.
    pub(crate) in_transit: u32,
    /// Its broker went down: nothing more of it is processed.
    dead: bool,
    /// Once closed: when, how many more requests the broker reads, until when.
    closed: Option<(Instant, u32, Instant)>,
}

/// An answer waiting for the end of its acks wait.
enum Held {
    Init(Answer),
    Produce(Vec<BatchToken>, Vec<PartReply>),
}

impl Inbox {
    pub(crate) fn new(broker: usize) -> Self {
        Inbox {
            broker,
            queue: VecDeque::new(),
            held: None,
            in_transit: 0,
            dead: false,
            closed: None,
        }
    }

    /// Something is queued or being answered.
    fn working(&self) -> bool {
        self.held.is_some() || !self.queue.is_empty()
    }

    /// A closed connection's request may still be processed.
    fn lingering(&self, now: Instant) -> bool {
        self.closed.is_some_and(|(_, pending, until)| {
            self.working() || (pending > 0 && self.in_transit > 0 && now <= until)
        })
    }
}

impl Sim {
    /// A closed connection's requests may still be processed.
    pub(crate) fn lingering(&self) -> bool {
        self.inboxes.values().any(|i| i.lingering(self.w.now))
    }

    /// A broker still has a request to process or answer, or one of a closed connection may
    /// still arrive and be read: the seed has not settled.
    pub(crate) fn brokers_busy(&self) -> bool {
        self.inboxes
            .values()
            .any(|i| i.working() || i.lingering(self.w.now))
    }

    /// The client closed `conn`: some of its requests may still be processed (see the
    /// module's doc), `pending` of them.
    pub(crate) fn broker_side_closed(&mut self, conn: u64, pending: u32) {
        let now = self.w.now;
        let flavour = self.cluster.flavour;
        let Some(inbox) = self.inboxes.get_mut(&conn) else {
            return;
        };
        let window = match flavour {
            Flavour::Tansu => LINGER_AFTER_CLOSE,
            Flavour::Kafka => (REQUEST_TIMEOUT * pending).max(LINGER_AFTER_CLOSE),
        };
        let pending = if inbox.dead { 0 } else { pending };
        inbox.closed = Some((now, pending, now + window));
    }

    /// Broker `b` went down: what it had not answered is lost.
    pub(crate) fn broker_side_down(&mut self, b: usize) {
        for inbox in self.inboxes.values_mut().filter(|i| i.broker == b) {
            inbox.dead = true;
            inbox.queue.clear();
            inbox.held = None;
            if let Some((_, pending, _)) = &mut inbox.closed {
                *pending = 0;
            }
        }
    }

    /// A request reaches the broker of `conn`: it joins the inbox if the broker reads it.
    pub(crate) fn arrive(&mut self, conn: u64, corr: u64, sent: Instant, body: Body) {
        let now = self.w.now;
        let Some(inbox) = self.inboxes.get_mut(&conn) else {
            return;
        };
        inbox.in_transit = inbox.in_transit.saturating_sub(1);
        let readable = !inbox.dead
            && inbox
                .closed
                .is_none_or(|(_, pending, until)| pending > 0 && now <= until);
        if readable {
            inbox.queue.push_back((corr, sent, body));
            self.serve(conn);
        }
    }

    /// The broker processes `conn`'s queued requests, one at a time: each answer leaves at
    /// once, or when its acks wait is over (`Ev::AcksDone`).
    pub(crate) fn serve(&mut self, conn: u64) {
        loop {
            let now = self.w.now;
            let Some(inbox) = self.inboxes.get_mut(&conn) else {
                return;
            };
            if inbox.held.is_some() || inbox.dead {
                return;
            }
            let closed_at = inbox.closed.map(|(at, _, _)| at);
            if let Some((_, pending, until)) = &mut inbox.closed {
                if *pending == 0 || now > *until {
                    inbox.queue.clear();
                    return;
                }
                if inbox.queue.is_empty() {
                    return;
                }
                *pending -= 1;
            }
            let Some((corr, sent, body)) = inbox.queue.pop_front() else {
                return;
            };
            let broker = inbox.broker;
            self.faults.longest_to_process = self
                .faults
                .longest_to_process
                .max(now.saturating_duration_since(sent));
            if !self.cluster.up[broker] {
                continue;
            }
            let (held, wait) = self.process(broker, body);
            if let Some(at) = closed_at {
                self.faults.stragglers += 1;
                self.faults.straggler_max_delay = self
                    .faults
                    .straggler_max_delay
                    .max(now.saturating_duration_since(at));
                if let Held::Produce(_, parts) = &held {
                    self.faults.stragglers_fenced += parts
                        .iter()
                        .filter(|p| p.error == ErrorCode::INVALID_PRODUCER_EPOCH)
                        .count() as u64;
                }
                self.w
                    .log(|| format!("broker {broker} processes a request of closed conn {conn}"));
            }
            if wait > Duration::ZERO {
                self.w.schedule(now + wait, Ev::AcksDone(conn));
                if let Some(inbox) = self.inboxes.get_mut(&conn) {
                    inbox.held = Some((corr, held));
                }
                return;
            }
            self.answer(conn, corr, broker, held);
        }
    }

    /// `AcksDone`: the held answer of `conn` leaves, and the next request is read.
    pub(crate) fn acks_done(&mut self, conn: u64) {
        let Some((corr, held)) = self.inboxes.get_mut(&conn).and_then(|i| i.held.take()) else {
            return;
        };
        let broker = self.inboxes[&conn].broker;
        self.answer(conn, corr, broker, held);
        self.serve(conn);
    }

    /// Broker `broker` processes a request: its answer as prepared, and its acks wait.
    fn process(&mut self, broker: usize, body: Body) -> (Held, Duration) {
        match body {
            Body::InitProducerId => {
                let answer = if self.w.chance(0.05) {
                    Answer::Init(Err(ErrorCode::COORDINATOR_NOT_AVAILABLE))
                } else {
                    // A Kafka broker may hand out any epoch; near the top, exhaustion is tested.
                    let epoch =
                        if self.cluster.flavour == Flavour::Kafka && self.w.rng.random_bool(0.2) {
                            i16::MAX - self.w.rng.random_range(0..3)
                        } else {
                            0
                        };
                    let pid = self.cluster.idempotence.issue(epoch);
                    Answer::Init(Ok((pid, epoch)))
                };
                (Held::Init(answer), Duration::ZERO)
            }
            Body::Produce(items) => {
                let mut tokens = Vec::new();
                let mut parts = Vec::new();
                for item in items {
                    let b = &self.app[item.uid as usize];
                    let entry = Entry {
                        broker,
                        partition: item.partition,
                        id: batch_id(item.stamp, item.records, b.timestamp),
                        uids: vec![item.uid],
                    };
                    let poison = b.too_large;
                    let produced = self
                        .cluster
                        .produce(&mut self.w, entry, poison, &mut Judged)
                        .expect("the small client sends what the model reads");
                    tokens.push(item.token);
                    parts.push(self.cluster.part(0, produced));
                }
                let wait = self
                    .cluster
                    .acks_wait(&mut self.w, REQUEST_TIMEOUT, &mut parts);
                (Held::Produce(tokens, parts), wait)
            }
        }
    }

    /// The answer leaves the broker: on a connection still open it may fall into a black
    /// hole or arrive late.
    fn answer(&mut self, conn: u64, corr: u64, broker: usize, held: Held) {
        let answer = match held {
            Held::Init(answer) => answer,
            Held::Produce(tokens, parts) => Answer::Produce(
                tokens
                    .into_iter()
                    .zip(&parts)
                    .map(|(token, part)| {
                        let (error, offset) = self.cluster.settle(&mut self.w, broker, part);
                        (token, error, offset)
                    })
                    .collect(),
            ),
        };
        self.w
            .log(|| format!("broker {broker} answers corr {corr}: {answer:?}"));
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.blackhole_responses {
            return;
        }
        let black = self.w.faults() && self.w.rng.random_bool(0.015);
        let latency = self.w.latency(0.03, 300..2500, 200..8000);
        let c = self.conns.get_mut(&conn).expect("conn");
        c.blackhole_responses |= black;
        if black {
            return;
        }
        let at = c.last_response.max(self.w.now + latency);
        c.last_response = at;
        self.w.schedule(at, Ev::Response(conn, corr, answer));
    }
}
