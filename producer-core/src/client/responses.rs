//! Response handling: each frame answers the oldest request out on its connection (Kafka
//! answers in order); its answer goes to the sequencer (InitProducerId, Produce), to the
//! connection (ApiVersions) or to the metadata (in `metadata_answer`). A frame that does not
//! decode, or answers another request, closes the connection.

use super::connection::{ConnId, ConnState, Pending, PendingKind};
use super::{Client, NO_TIMESTAMP};
use crate::capacity::Capacities;
use crate::error_code::ErrorCode;
use crate::state::{Attempt, ProduceResult, ProducerEpoch, ProducerId};
use crate::time::Instant;
use crate::wire::{
    self, ApiVersionsResponse, InitProducerIdResponse, ProduceResponse, ResponseHeader,
};

impl<S, C: Capacities> Client<S, C>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// A complete response frame (without its size prefix) arrived on `conn`. A frame that
    /// does not decode, or answers out of order, closes the connection: what was on it is
    /// retried as unanswered.
    pub fn on_frame(&mut self, conn: ConnId, now: Instant, frame: &[u8]) {
        let i = usize::from(conn.0);
        if i >= self.conns.len() {
            return;
        }
        let Some(pending) = self.conns[i].pending.pop_front() else {
            warn!("connection {:?}: a response nobody asked for", i);
            self.drop_connection(i, now);
            return;
        };
        let ok = match &pending.kind {
            PendingKind::ApiVersions => self.on_api_versions(i, &pending, frame, now),
            PendingKind::Metadata => self.on_metadata(&pending, frame, now),
            PendingKind::InitProducerId => self.on_init_producer_id(&pending, frame, now),
            PendingKind::Produce(count) => {
                let ok = self.on_produce(i, &pending, *count, frame, now);
                if ok {
                    self.conns[i].forget_flight(*count);
                }
                ok
            }
            #[cfg(feature = "sasl")]
            PendingKind::SaslHandshake => self.on_sasl_handshake(i, &pending, frame, now),
            #[cfg(feature = "sasl")]
            PendingKind::SaslAuthenticate => self.on_sasl_authenticate(i, &pending, frame, now),
        };
        // A real answer, beyond the handshake (and authentication): the broker works, its
        // reconnect backoff starts again from the beginning.
        if ok
            && !pending.kind.is_handshake()
            && let Some(target) = self.conns[i].target
        {
            self.dials.answered(target);
        }
        if !ok {
            warn!("connection {:?}: malformed or mismatched response", i);
            // The popped request is as unanswered as the rest.
            let _ = self.conns[i].pending.push_front(pending);
            self.drop_connection(i, now);
        }
    }

    /// Decodes a response, tolerating (and logging) bytes after its body.
    pub(super) fn decode<'f, B: wire::ResponseBody<'f>>(
        frame: &'f [u8],
        version: i16,
    ) -> Option<(ResponseHeader, B)> {
        let (header, body, trailing) = wire::decode_response_lenient::<B>(frame, version).ok()?;
        if trailing > 0 {
            debug!("{:?} trailing bytes after a response", trailing);
        }
        Some((header, body))
    }

    pub(super) fn check_correlation(pending: &Pending, header: &ResponseHeader) -> bool {
        header.correlation_id == pending.correlation
    }

    fn on_api_versions(&mut self, i: usize, p: &Pending, frame: &[u8], now: Instant) -> bool {
        let Some((header, response)) = Self::decode::<ApiVersionsResponse<'_>>(frame, p.version)
        else {
            return false;
        };
        if !Self::check_correlation(p, &header) {
            return false;
        }
        if response.error_code == ErrorCode::UNSUPPORTED_VERSION.0 && p.version > 0 {
            // Ask again in the version every broker understands.
            self.conns[i].state = ConnState::Handshake {
                version: 0,
                sent: false,
            };
            return true;
        }
        let versions = response.negotiate_all();
        if response.error_code != 0
            || versions.produce.is_none()
            || versions.metadata.is_none()
            || versions.init_producer_id.is_none()
        {
            warn!("broker lacks the APIs an idempotent producer needs");
            return false;
        }
        self.conns[i].versions = versions;
        self.after_api_versions(i, now);
        true
    }

    fn on_init_producer_id(&mut self, p: &Pending, frame: &[u8], now: Instant) -> bool {
        let Some((header, r)) = Self::decode::<InitProducerIdResponse>(frame, p.version) else {
            return false;
        };
        if !Self::check_correlation(p, &header) {
            return false;
        }
        let answer = if r.error_code == 0 {
            Ok((ProducerId(r.producer_id), ProducerEpoch(r.producer_epoch)))
        } else {
            Err(Some(ErrorCode(r.error_code)))
        };
        self.sequencer.on_init_producer_id(now, answer);
        true
    }

    /// The answer to a Produce request that carried the first `count` batches of connection
    /// `i`'s flight list.
    fn on_produce(
        &mut self,
        i: usize,
        p: &Pending,
        count: usize,
        frame: &[u8],
        now: Instant,
    ) -> bool {
        let Some((header, response)) = Self::decode::<ProduceResponse<'_>>(frame, p.version) else {
            return false;
        };
        if !Self::check_correlation(p, &header) {
            return false;
        }
        let flight = &self.conns[i].flight;
        let batches = &flight[..count.min(flight.len())];
        let answered = &mut self.scratch.answered[..batches.len()];
        answered.fill(false);
        let mut refresh = false;
        for t in &response.topics {
            let Some(topic) = self.metadata.topic_index(t.name) else {
                continue;
            };
            for part in &t.partitions {
                let found = batches.iter().position(|&(_, index)| {
                    self.metadata
                        .partitions
                        .get(usize::from(index))
                        .is_some_and(|m| m.topic == topic && m.partition == part.index)
                });
                let Some(k) = found else { continue };
                if answered[k] {
                    continue;
                }
                answered[k] = true;
                let result = ProduceResult::Answered {
                    error: ErrorCode(part.error_code),
                    base_offset: part.base_offset,
                };
                let Ok(class) = self.sequencer.on_produce_result(batches[k].0, now, result) else {
                    continue;
                };
                refresh |= class.refresh_metadata;
                if let Attempt::Appended { .. } = class.attempt {
                    let newest = super::lifetime::max_timestamp(
                        self.storage.as_ref(),
                        self.batch_bytes,
                        self.reserve,
                        &self.slots,
                        batches[k].0.slot(),
                    );
                    if let Some(at) = self.acked_at.get_mut(usize::from(batches[k].1)) {
                        *at = Some((now, newest.unwrap_or(NO_TIMESTAMP)));
                    }
                }
            }
        }
        // A batch the broker did not answer for was written and is unanswered.
        for (k, &(token, _)) in batches.iter().enumerate() {
            if !answered[k] {
                let _ = self
                    .sequencer
                    .on_produce_result(token, now, ProduceResult::LostAfterWrite);
            }
        }
        if refresh {
            self.want_metadata(now);
        }
        true
    }
}
