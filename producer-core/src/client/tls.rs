//! A TLS failure, as the transport reports it: the producer stops, as after a refused
//! authentication (see [`crate::tls`] for why retrying cannot help).

use super::Client;
use super::connection::{ConnId, ConnState};
use crate::capacity::Capacities;
use crate::state::FatalReason;
use crate::time::Instant;
use crate::tls::TlsFailure;

impl<S, C: Capacities> Client<S, C>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// The transport's TLS handshake on `conn` failed for good with `failure` (its TLS
    /// library's error mapped to a [`TlsFailure`]; the transport closes the socket itself).
    /// The producer stops ([`FatalReason::Tls`]): the client dials no more, every batch not
    /// in flight is decided `NotPersisted` with that reason at once, and new records are
    /// refused with it. A connection that merely ended mid-handshake is
    /// [`Client::on_connection_lost`] instead.
    pub fn on_tls_failure(&mut self, conn: ConnId, now: Instant, failure: TlsFailure) {
        warn!("connection {:?}: TLS failed: {:?}", conn.0, failure);
        if self.tls_error.is_none() {
            self.tls_error = Some(failure);
        }
        self.sequencer.stop(FatalReason::Tls(failure));
        let i = usize::from(conn.0);
        if i < self.conns.len() && !matches!(self.conns[i].state, ConnState::Idle { .. }) {
            self.lose(i, now, true, true);
        }
    }

    /// Why TLS failed, once it has: the client then dials no more. Its `Display` says which
    /// setting to change.
    pub fn tls_error(&self) -> Option<TlsFailure> {
        self.tls_error
    }

    /// Authentication or TLS failed: the client dials no more (each broker would refuse
    /// alike).
    pub(super) fn dialling_stopped(&self) -> bool {
        self.tls_error.is_some() || self.authentication_stopped()
    }
}
