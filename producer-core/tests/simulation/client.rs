//! The small client's connections: one per broker the metadata names (and one for
//! InitProducerId), up to five requests pipelined on each, a request timeout that closes the
//! connection, the metadata view it refreshes, and the answers it feeds the sequencer.

use std::collections::VecDeque;
use std::time::Duration;

use producer_core::state::{
    Attempt, BatchState, Identity, Outcome, PartitionIndex, ProduceResult, ProducerEpoch,
    ProducerId,
};
use rand::Rng;

use crate::simulation::broker::Inbox;
use crate::{
    Answer, Body, Conn, Ev, Item, MAX_REQUESTS_PER_CONNECTION, PARTITIONS, REQUEST_TIMEOUT,
    Request, Sim, ms,
};

impl Sim {
    pub(crate) fn open(&mut self, broker: usize) {
        let id = self.next_conn;
        self.next_conn += 1;
        self.inboxes.insert(id, Inbox::new(broker));
        self.conns.insert(
            id,
            Conn {
                broker,
                up: false,
                requests: VecDeque::new(),
                blackhole_requests: false,
                blackhole_responses: false,
                last_arrival: self.w.now,
                last_response: self.w.now,
            },
        );
        let at = self.w.now + ms(self.w.rng.random_range(1..4));
        if self.cluster.up[broker] {
            self.w.schedule(at, Ev::Connected(id));
        } else {
            self.w.schedule(at, Ev::ConnectFailed(id));
        }
    }

    pub(crate) fn conn_to(&self, broker: usize) -> Option<u64> {
        self.conns
            .iter()
            .find(|(_, c)| c.broker == broker)
            .map(|(id, _)| *id)
    }

    pub(crate) fn pump(&mut self) -> Result<(), String> {
        // Connections to every broker the metadata names, and to one for InitProducerId.
        let mut wanted: Vec<usize> = self.view.to_vec();
        wanted.push(0);
        for b in wanted {
            if self.conn_to(b).is_none() && self.reconnect_at[b] <= self.w.now {
                self.open(b);
            }
        }
        let ready: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.up && c.requests.len() < MAX_REQUESTS_PER_CONNECTION)
            .map(|(id, _)| *id)
            .collect();
        if let Some(&conn) = ready.first()
            && matches!(self.seq.identity(), Identity::NoId { .. })
            && self.seq.poll_init_producer_id(self.w.now)
        {
            self.send(conn, Body::InitProducerId);
        }
        for conn in ready {
            let broker = self.conns[&conn].broker;
            let mut items = Vec::new();
            for p in 0..PARTITIONS {
                if self.view[p] != broker {
                    continue;
                }
                if self.state_may_be_forgotten(p) {
                    self.seq
                        .producer_state_may_be_forgotten(PartitionIndex(p as u16));
                }
                while let Some(permit) = self.seq.next_send(PartitionIndex(p as u16), self.w.now) {
                    let uid = self.tokens[&permit.token];
                    self.app[uid as usize].sent = true;
                    self.resends.sent(uid, permit.stamp, self.w.now);
                    items.push(Item {
                        token: permit.token,
                        uid,
                        partition: p,
                        stamp: permit.stamp,
                        records: permit.records,
                    });
                }
            }
            if !items.is_empty() {
                self.send(conn, Body::Produce(items));
            }
        }
        Ok(())
    }

    pub(crate) fn send(&mut self, conn: u64, body: Body) {
        let corr = self.next_corr;
        self.next_corr += 1;
        self.w
            .log(|| format!("conn {conn} corr {corr} sends {body:?}"));
        let black = self.w.chance(0.015);
        let reset = self.w.chance(0.01);
        let latency = self.w.latency(0.03, 300..2500, 200..8000);
        let now = self.w.now;
        let c = self.conns.get_mut(&conn).expect("conn");
        c.requests.push_back(Request {
            corr,
            body: body.clone(),
            sent_at: now,
        });
        c.blackhole_requests |= black;
        let blackholed = c.blackhole_requests;
        let arrival = c.last_arrival.max(now + latency);
        c.last_arrival = arrival;
        if !blackholed {
            if let Some(inbox) = self.inboxes.get_mut(&conn) {
                inbox.in_transit += 1;
            }
            self.w.schedule(arrival, Ev::Arrive(conn, corr, now, body));
        }
        if reset {
            let at = now + Duration::from_micros(self.w.rng.random_range(0..20_000));
            self.w.schedule(at, Ev::Reset(conn));
        }
    }

    pub(crate) fn response(&mut self, conn: u64, corr: u64, answer: Answer) -> Result<(), String> {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        let request = c
            .requests
            .pop_front()
            .ok_or("response with nothing in flight")?;
        if request.corr != corr {
            return Err(format!(
                "response {corr} out of order (expected {})",
                request.corr
            ));
        }
        match answer {
            Answer::Init(result) => {
                let result = result
                    .map(|(id, epoch)| (ProducerId(id), ProducerEpoch(epoch)))
                    .map_err(Some);
                self.seq.on_init_producer_id(self.w.now, result);
            }
            Answer::Produce(parts) => {
                for (token, error, base_offset) in parts {
                    let class = self
                        .seq
                        .on_produce_result(
                            token,
                            self.w.now,
                            ProduceResult::Answered { error, base_offset },
                        )
                        .map_err(|e| format!("{e:?}"))?;
                    if class.refresh_metadata {
                        self.refresh_metadata();
                    }
                    if let (Attempt::Appended { .. }, Some(&uid)) =
                        (class.attempt, self.tokens.get(&token))
                    {
                        let b = &self.app[uid as usize];
                        self.acked_at[b.partition] = Some((self.w.now, b.timestamp));
                    }
                }
            }
        }
        Ok(())
    }

    /// As the real client judges it: the broker may have forgotten the producer's state on
    /// partition `p` once its last success is a TTL old, or the records of that batch or of
    /// one in flight there are older than the TTL by the wall clock.
    fn state_may_be_forgotten(&self, p: usize) -> bool {
        let Some((at, timestamp)) = self.acked_at[p] else {
            return false;
        };
        let now = self.w.now;
        now.saturating_duration_since(at) >= self.clocks.ttl
            || self.clocks.stale(timestamp, now)
            || self.tokens.iter().any(|(&token, &uid)| {
                let b = &self.app[uid as usize];
                b.partition == p
                    && matches!(
                        self.seq.batch_state(token),
                        Some(BatchState::InFlight { .. })
                    )
                    && self.clocks.stale(b.timestamp, now)
            })
    }

    pub(crate) fn refresh_metadata(&mut self) {
        if !self.refresh_pending {
            self.refresh_pending = true;
            let at = self.w.now + ms(self.w.rng.random_range(1..20));
            self.w.schedule(at, Ev::MetadataRefreshed);
        }
    }

    pub(crate) fn expire_requests(&mut self) -> Result<(), String> {
        let expired: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.requests
                    .front()
                    .is_some_and(|r| r.sent_at + REQUEST_TIMEOUT <= self.w.now)
            })
            .map(|(id, _)| *id)
            .collect();
        for conn in expired {
            self.w.log(|| format!("conn {conn} request timeout"));
            self.close(conn)?;
        }
        Ok(())
    }

    /// The client closes a connection: every request still on it is lost after being written.
    pub(crate) fn close(&mut self, conn: u64) -> Result<(), String> {
        let Some(c) = self.conns.remove(&conn) else {
            return Ok(());
        };
        let still_arriving = self.w.rng.random_range(0..=c.requests.len() as u32);
        self.broker_side_closed(conn, still_arriving);
        self.reconnect_at[c.broker] = self.w.now + ms(self.w.rng.random_range(1..30));
        for request in c.requests {
            match request.body {
                Body::InitProducerId => self.seq.on_init_producer_id(self.w.now, Err(None)),
                Body::Produce(items) => {
                    for item in items {
                        self.seq
                            .on_produce_result(
                                item.token,
                                self.w.now,
                                ProduceResult::LostAfterWrite,
                            )
                            .map_err(|e| format!("{e:?}"))?;
                    }
                }
            }
        }
        self.refresh_metadata();
        Ok(())
    }

    pub(crate) fn drain_outcomes(&mut self) -> Result<(), String> {
        while let Some(d) = self.seq.poll_event() {
            let uid = self
                .tokens
                .remove(&d.token)
                .ok_or("outcome for an unknown token")?;
            let b = &mut self.app[uid as usize];
            if b.outcome.is_some() {
                return Err(format!("batch {uid} got a second outcome {:?}", d.outcome));
            }
            b.outcome = Some((d.outcome, self.w.now));
            if matches!(d.outcome, Outcome::Persisted { .. }) {
                let (base, max) = self.backoff;
                self.bumps.progress(base, max);
            }
            let line = format!("batch {uid} (p{}) -> {:?}", b.partition, d.outcome);
            self.w.log(|| line);
        }
        Ok(())
    }
}
