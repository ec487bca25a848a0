//! The connection slots' lives, from the client's side: which slot the transport opens next
//! and to where, the handshake that starts once it is connected, and what a lost or
//! given-up connection means for the requests that were out on it. (One connection's own
//! state and its queue of requests are in [`connection`](super::connection); which targets
//! the slots serve, in `routing`.)

use super::Client;
use super::connection::{ConnId, ConnState, PendingKind, Target};
use super::metadata::Endpoint;
use crate::capacity::Capacities;
use crate::state::ProduceResult;
use crate::time::Instant;

impl<S, C: Capacities> Client<S, C>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// A connection's state and target.
    pub fn connection(&self, conn: ConnId) -> Option<(Option<Target>, ConnState)> {
        self.conns
            .get(usize::from(conn.0))
            .map(|c| (c.target, c.state))
    }

    /// A connection the transport should open now: its id and where to. A slot the transport
    /// has yet to close (see [`Client::poll_close`]) is never handed out again before it is.
    pub fn poll_connect(&mut self, now: Instant) -> Option<(ConnId, &Endpoint)> {
        if self.dialling_stopped() {
            return None;
        }
        self.assign_targets(now);
        let i = (0..self.conns.len()).find(|&i| {
            let c = &self.conns[i];
            !self.to_close.contains(&ConnId(i as u8))
                && c.target.is_some()
                && matches!(c.state, ConnState::Idle { retry_at } if retry_at <= now)
                && self.endpoint_of(c.target).is_some()
        })?;
        self.conns[i].state = ConnState::Connecting;
        let target = self.conns[i].target;
        debug!("connecting {:?} to {:?}", i, target);
        self.endpoint_of(target).map(|e| (ConnId(i as u8), e))
    }

    /// The transport connected `conn`.
    pub fn on_connected(&mut self, conn: ConnId, _now: Instant) {
        if let Some(c) = self.conns.get_mut(usize::from(conn.0))
            && c.state == ConnState::Connecting
        {
            c.state = ConnState::Handshake {
                version: 3,
                sent: false,
            };
        }
    }

    /// `conn` failed to connect, or was lost (reset, closed, or closed by the transport after
    /// [`Client::poll_close`]). Everything out on it counts as written and unanswered.
    pub fn on_connection_lost(&mut self, conn: ConnId, now: Instant) {
        let i = usize::from(conn.0);
        if i < self.conns.len() && !matches!(self.conns[i].state, ConnState::Idle { .. }) {
            self.lose(i, now, true, true);
        }
    }

    /// Consecutive failed connections to `target` since it last answered a request: the
    /// reconnect backoff grows with it (see [`ClientConfig::reconnect_backoff`]).
    ///
    /// [`ClientConfig::reconnect_backoff`]: super::ClientConfig::reconnect_backoff
    pub fn dial_failures(&self, target: Target) -> u32 {
        self.dials.failures(target)
    }

    /// The earliest instant `target` is dialled again.
    pub fn dial_ready_at(&self, target: Target) -> Instant {
        self.dials.ready_at(target)
    }

    /// A connection the client wants closed (its requests timed out, or it is no longer
    /// needed). Its requests are already accounted for; report nothing back.
    pub fn poll_close(&mut self) -> Option<ConnId> {
        self.to_close.pop()
    }

    pub(super) fn endpoint_of(&self, target: Option<Target>) -> Option<&Endpoint> {
        match target? {
            Target::Bootstrap(n) => self.bootstrap.get(usize::from(n)),
            Target::Node(id) => self.metadata.broker(id).map(|b| &b.endpoint),
        }
    }

    /// The transport lost connection `i`, or the client gave it up: everything out on it is
    /// unanswered after being written. A lost connection may mean a moved or dead leader, so
    /// metadata is refreshed when `refresh`. `failed`: the broker failed it (not a spare
    /// connection the client let go), which delays the next dial of its target.
    pub(super) fn lose(&mut self, i: usize, now: Instant, refresh: bool, failed: bool) {
        let retry_at = match self.conns[i].target {
            Some(t) if failed => self.dials.failed(t, now),
            Some(t) => self.dials.ready_at(t).max(now),
            None => now,
        };
        let c = &mut self.conns[i];
        c.state = ConnState::Idle { retry_at };
        c.versions = Default::default();
        c.draining = false;
        #[cfg(feature = "sasl")]
        {
            c.auth = None;
            c.reauth_at = None;
            c.reauth_began_at = None;
        }
        if let Some(Target::Bootstrap(_)) = c.target {
            // Try the next bootstrap address next time.
            self.bootstrap_next = self.bootstrap_next.wrapping_add(1);
            c.target = None;
        }
        while let Some(p) = self.conns[i].pending.pop_front() {
            match p.kind {
                PendingKind::ApiVersions => {}
                #[cfg(feature = "sasl")]
                PendingKind::SaslHandshake | PendingKind::SaslAuthenticate => {}
                PendingKind::Metadata => self.want_metadata(now),
                PendingKind::InitProducerId => self.sequencer.on_init_producer_id(now, Err(None)),
                PendingKind::Produce(count) => {
                    let flight = &self.conns[i].flight;
                    for &(token, _) in &flight[..count.min(flight.len())] {
                        let _ = self.sequencer.on_produce_result(
                            token,
                            now,
                            ProduceResult::LostAfterWrite,
                        );
                    }
                    self.conns[i].forget_flight(count);
                }
            }
        }
        if refresh {
            self.want_metadata(now);
        }
    }

    pub(super) fn drop_connection(&mut self, i: usize, now: Instant) {
        let _ = self.to_close.push(ConnId(i as u8));
        self.lose(i, now, true, true);
    }

    /// Connection `i` is a bootstrap connection up and idle, kept only to carry metadata
    /// until a leader's connection is ready.
    pub(super) fn is_spare_bootstrap(&self, i: usize) -> bool {
        let c = &self.conns[i];
        self.metadata.known
            && matches!(c.target, Some(Target::Bootstrap(_)))
            && c.pending.is_empty()
            && !matches!(c.state, ConnState::Idle { .. })
            && !self.to_close.contains(&ConnId(i as u8))
    }
}
