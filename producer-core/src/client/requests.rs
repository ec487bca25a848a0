//! Request building: what a ready connection sends next (the ApiVersions handshake, then
//! Metadata, InitProducerId, and Produce requests carrying as many stamped batches as the
//! transport's buffer certainly holds), encoded straight into that buffer.

use super::Client;
use super::accumulator::{SlotUse, chunk};
use super::connection::{ConnId, ConnState, PendingKind, Target};
use super::metadata::{Partition, Topic};
use crate::capacity::Capacities;
use crate::state::{BatchToken, Identity, PartitionIndex, ProduceResult};
use crate::time::Instant;
use crate::wire::{
    self, ApiVersionsRequest, InitProducerIdRequest, List, MetadataRequest, MetadataRequestTopic,
    ProducePartition, ProduceRequest, ProduceTopic, Source,
};

/// Fixed request overhead allowance: header, client id, acks, timeout, array lengths.
const REQUEST_OVERHEAD: usize = 64;
/// Per topic and per partition allowance in a produce request, beyond names and batches.
const ENTRY_OVERHEAD: usize = 16;

impl<S, C: Capacities> Client<S, C>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// The smallest transmit buffer that can carry a produce request with one full batch of
    /// any of the client's topics: transports size or check their request buffers with it,
    /// since a smaller one would leave full batches unsendable.
    pub fn request_bytes_needed(&self) -> usize {
        let longest_topic = self
            .metadata
            .topics
            .iter()
            .map(|t| t.name.len())
            .max()
            .unwrap_or(0);
        REQUEST_OVERHEAD
            + self.client_id.len()
            + 2 * ENTRY_OVERHEAD
            + longest_topic
            + self.batch_bytes
    }

    /// The next request to write on `conn`, encoded into `buf`: returns its length. Write all
    /// of it before asking again. `None` when there is nothing to send now (or `buf` is too
    /// small for any request). Produce requests take as many ready batches as `buf` holds.
    pub fn poll_transmit(&mut self, conn: ConnId, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.storage_failed {
            return None;
        }
        self.fresh = false;
        self.last_now = now;
        let i = usize::from(conn.0);
        let c = self.conns.get(i)?;
        if !c.has_room() || c.draining || self.reauthentication_due(i, now) {
            return None;
        }
        let c = &self.conns[i];
        match c.state {
            ConnState::Handshake {
                version,
                sent: false,
            } => {
                let request = ApiVersionsRequest {
                    client_software_name: "gateway-producer",
                    client_software_version: env!("CARGO_PKG_VERSION"),
                };
                let n = self.conns[i].send_request(
                    &self.client_id,
                    buf,
                    version,
                    &request,
                    now,
                    PendingKind::ApiVersions,
                )?;
                self.conns[i].state = ConnState::Handshake {
                    version,
                    sent: true,
                };
                Some(n)
            }
            ConnState::Ready => self.transmit_ready(i, now, buf),
            #[cfg(feature = "sasl")]
            ConnState::Authenticating => self.transmit_auth(i, now, buf),
            _ => None,
        }
    }

    fn transmit_ready(&mut self, i: usize, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let versions = self.conns[i].versions;
        // Metadata first: routing depends on it. One request at a time, cluster-wide.
        let metadata_out = self.conns.iter().any(|c| {
            c.pending
                .iter()
                .any(|p| matches!(p.kind, PendingKind::Metadata))
        });
        if self.metadata_due.is_some_and(|t| t <= now)
            && !metadata_out
            && let Some(version) = versions.metadata
        {
            let topics = MetadataTopics(&self.metadata.topics);
            let request = MetadataRequest {
                topics: Some(List::from_source(&topics, 0, topics.0.len())),
                allow_auto_topic_creation: false,
                include_cluster_authorized_operations: false,
                include_topic_authorized_operations: false,
            };
            let n = self.conns[i].send_request(
                &self.client_id,
                buf,
                version,
                &request,
                now,
                PendingKind::Metadata,
            )?;
            // The next refresh is scheduled by the answer (or by the loss of this request).
            self.metadata_due = None;
            return Some(n);
        }
        if matches!(self.sequencer.identity(), Identity::NoId { .. })
            && let Some(version) = versions.init_producer_id
            && self.sequencer.poll_init_producer_id(now)
        {
            let request = InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: i32::MAX,
                producer_id: -1,
                producer_epoch: -1,
            };
            let n = self.conns[i].send_request(
                &self.client_id,
                buf,
                version,
                &request,
                now,
                PendingKind::InitProducerId,
            );
            if n.is_none() {
                self.sequencer.on_init_producer_id(now, Err(None));
            }
            return n;
        }
        let Some(Target::Node(node)) = self.conns[i].target else {
            return None;
        };
        let version = versions.produce?;
        self.transmit_produce(i, node, version, now, buf)
    }

    fn transmit_produce(
        &mut self,
        i: usize,
        node: i32,
        version: i16,
        now: Instant,
        buf: &mut [u8],
    ) -> Option<usize> {
        // Take batches while the request certainly fits: every batch is at most batch_bytes.
        let mut budget = buf
            .len()
            .checked_sub(REQUEST_OVERHEAD + self.client_id.len())?;
        self.note_partitions_with_work();
        // The request's batches join the connection's flight list as they are taken.
        let start = self.conns[i].flight.len();
        let mut taken = 0;
        self.scratch.topic_used.fill(false);
        for index in 0..self.metadata.partitions.len() {
            let p = self.metadata.partitions[index];
            if p.leader != Some(node) {
                continue;
            }
            let topic_cost = if self.scratch.topic_used[usize::from(p.topic)] {
                0
            } else {
                ENTRY_OVERHEAD + self.metadata.topics[usize::from(p.topic)].name.len()
            };
            // One batch per partition per request: a request names each partition once, and
            // further batches of the partition pipeline in the following requests.
            let cost = topic_cost + ENTRY_OVERHEAD + self.batch_bytes;
            if budget < cost || taken >= self.slots.len() {
                break;
            }
            // A partition with no batch waiting has nothing to send: the checks below each
            // look through the batch slots, so a large table is walked once, not once per
            // partition.
            if !self.scratch.work[index] {
                continue;
            }
            if self.state_may_be_forgotten(index, now) {
                self.sequencer
                    .producer_state_may_be_forgotten(PartitionIndex(index as u16));
            }
            // With `durable`, a stamp is stored before a request carrying it leaves.
            if !self.stamp_stored(PartitionIndex(index as u16), now) {
                continue;
            }
            let Some(permit) = self.sequencer.next_send(PartitionIndex(index as u16), now) else {
                continue;
            };
            let slot = permit.token.slot();
            let len = match self.slots[slot] {
                SlotUse::Sealed { len } => len,
                _ => 0,
            };
            let stamped = len > 0
                && wire::stamp(
                    chunk(self.storage.as_mut(), self.batch_bytes, self.reserve, slot)
                        .get_mut(..len)
                        .unwrap_or(&mut []),
                    permit.stamp.producer_id.0,
                    permit.stamp.epoch.0,
                    permit.stamp.base_sequence.get(),
                )
                .is_ok();
            if !stamped {
                // Storage does not hold this batch: a client bug, never network input. Give
                // the batch its outcome rather than send garbage.
                let _ =
                    self.sequencer
                        .on_produce_result(permit.token, now, ProduceResult::NotWritten);
                let _ = self.sequencer.cancel(permit.token, now);
                continue;
            }
            if self.conns[i]
                .flight
                .push((permit.token, index as u16))
                .is_err()
            {
                // More batches in flight than the producer holds: cannot be.
                let _ =
                    self.sequencer
                        .on_produce_result(permit.token, now, ProduceResult::NotWritten);
                continue;
            }
            budget -= cost;
            if topic_cost > 0 {
                self.scratch.topic_used[usize::from(p.topic)] = true;
            }
            taken += 1;
        }
        if taken == 0 {
            return None;
        }
        let batches = ProduceBatches {
            batches: &self.conns[i].flight[start..],
            partitions: &self.metadata.partitions,
            topics: &self.metadata.topics,
            slots: &self.slots,
            storage: self.storage.as_ref(),
            batch_bytes: self.batch_bytes,
            reserve: self.reserve,
        };
        let topic_count = (0..batches.topics.len())
            .filter(|&t| batches.partitions_of(t) > 0)
            .count();
        let request = ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms: self.request_timeout.as_millis() as i32,
            topics: List::from_source(&batches, 0, topic_count),
        };
        let correlation = self.conns[i].next_correlation;
        let encoded = if self.conns[i].has_room() {
            wire::encode_request(buf, version, correlation, Some(&self.client_id), &request).ok()
        } else {
            None
        };
        let count = self.conns[i].flight.len() - start;
        let sent = encoded
            .filter(|_| self.conns[i].record_request(version, now, PendingKind::Produce(count)));
        if sent.is_some() {
            return sent;
        }
        // Could not be encoded or queued: none of it left.
        for k in start..self.conns[i].flight.len() {
            let (token, _) = self.conns[i].flight[k];
            let _ = self
                .sequencer
                .on_produce_result(token, now, ProduceResult::NotWritten);
        }
        self.conns[i].flight.truncate(start);
        None
    }
}

/// The topics of a Metadata request: every topic the client was built with.
struct MetadataTopics<'a>(&'a [Topic]);

impl<'a> Source<'a, MetadataRequestTopic<'a>> for MetadataTopics<'a> {
    fn item(&'a self, _key: usize, index: usize) -> Option<MetadataRequestTopic<'a>> {
        self.0.get(index).map(|t| MetadataRequestTopic {
            topic_id: [0; 16],
            name: Some(t.name.as_str()),
        })
    }
}

/// The batches of one Produce request, read as its topics (in the order the client was
/// built with them) and each topic's partitions (in the order the batches were taken),
/// straight from the client's tables as the request is encoded.
struct ProduceBatches<'a> {
    batches: &'a [(BatchToken, u16)],
    partitions: &'a [Partition],
    topics: &'a [Topic],
    slots: &'a [SlotUse],
    storage: &'a [u8],
    batch_bytes: usize,
    reserve: usize,
}

impl<'a> ProduceBatches<'a> {
    fn topic_of(&self, &(_, index): &(BatchToken, u16)) -> Option<usize> {
        self.partitions
            .get(usize::from(index))
            .map(|p| usize::from(p.topic))
    }

    /// How many of the batches are topic `t`'s.
    fn partitions_of(&self, t: usize) -> usize {
        self.batches
            .iter()
            .filter(|b| self.topic_of(b) == Some(t))
            .count()
    }
}

impl<'a> Source<'a, ProduceTopic<'a>> for ProduceBatches<'a> {
    /// The `index`-th topic with batches.
    fn item(&'a self, _key: usize, index: usize) -> Option<ProduceTopic<'a>> {
        let (t, count) = (0..self.topics.len())
            .map(|t| (t, self.partitions_of(t)))
            .filter(|&(_, count)| count > 0)
            .nth(index)?;
        Some(ProduceTopic {
            name: self.topics.get(t)?.name.as_str(),
            partitions: List::from_source(self, t, count),
        })
    }
}

impl<'a> Source<'a, ProducePartition<'a>> for ProduceBatches<'a> {
    /// The `index`-th batch of topic `t`.
    fn item(&'a self, t: usize, index: usize) -> Option<ProducePartition<'a>> {
        let &(token, p) = self
            .batches
            .iter()
            .filter(|b| self.topic_of(b) == Some(t))
            .nth(index)?;
        let slot = token.slot();
        let len = match self.slots.get(slot)? {
            SlotUse::Sealed { len, .. } => *len,
            _ => 0,
        };
        let start = slot * self.batch_bytes + self.reserve;
        Some(ProducePartition {
            index: self.partitions.get(usize::from(p))?.partition,
            records: self.storage.get(start..start + len),
        })
    }
}
