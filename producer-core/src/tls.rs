//! What a failed TLS handshake means, for every transport alike.
//!
//! TLS itself is the transports' (rustls on hosts; a no_std TLS client on targets): it sits
//! between the socket and the driver's [`Io`](crate::driver::Io), so the client never sees
//! ciphertext. What the client decides is what a failure *means*: a certificate the client
//! cannot trust, a name it does not cover, a client certificate the broker refuses, a
//! listener that does not speak TLS, or no protocol version or cipher suite in common. Each
//! is the same on every attempt, and every broker of a cluster is set up alike, so retrying
//! cannot fix it: the transport maps its TLS library's error to a [`TlsFailure`] and calls
//! [`Client::on_tls_failure`](crate::client::Client::on_tls_failure), and the producer stops
//! for good ([`FatalReason::Tls`](crate::state::FatalReason::Tls)): no more dialling, the
//! records it held decided `NotPersisted` with that reason. Never a plaintext fallback.
//!
//! A connection that ends in the middle of a handshake (a cut, a broker restarting, or a
//! PLAINTEXT listener, which Kafka closes on a ClientHello it reads as an oversized frame)
//! is not one of these: it is an ordinary connection loss, backed off and redialled, and
//! records end by their deadlines.

use core::fmt;

/// Why a TLS handshake failed for good. Its `Display` says which setting to change.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TlsFailure {
    /// The broker's certificate is not signed by a CA the client trusts.
    UnknownIssuer,
    /// The broker's certificate does not name the host the client dialled (its advertised
    /// or bootstrap host, a DNS name or an IP address).
    NotValidForName,
    /// The broker's certificate has expired (or this host's clock is ahead).
    Expired,
    /// The broker's certificate is not valid yet (or this host's clock is behind).
    NotYetValid,
    /// The broker's certificate cannot be used: a bad signature, an unsupported algorithm,
    /// not meant for a TLS server, revoked.
    BadCertificate,
    /// The broker refused the client's certificate, or wanted one and got none (mTLS,
    /// `ssl.client.auth=required`).
    ClientCertificateRefused,
    /// No TLS version or cipher suite both sides accept.
    ProtocolMismatch,
    /// The broker answered with bytes that are not TLS: a listener without TLS.
    NotTls,
}

impl TlsFailure {
    /// What a TLS alert from the broker means, by its description code (RFC 8446, 6.2), for
    /// every transport alike: a certificate alert is the broker refusing the client's
    /// certificate (or wanting one), and a handshake, version or security alert is no version
    /// or cipher suite in common. Under TLS 1.3 the client's side of the handshake is done
    /// before the server has checked its certificate, so a refusal can arrive as an alert on
    /// an established connection. Any other alert (close_notify, a decode error, ...) is not a
    /// failure for good: `None`, and the connection is an ordinary loss.
    pub fn from_alert(description: u8) -> Option<TlsFailure> {
        match description {
            // bad_certificate, unsupported_certificate, certificate_revoked,
            // certificate_expired, certificate_unknown, unknown_ca, access_denied,
            // certificate_required
            42..=46 | 48 | 49 | 116 => Some(TlsFailure::ClientCertificateRefused),
            // handshake_failure, protocol_version, insufficient_security
            40 | 70 | 71 => Some(TlsFailure::ProtocolMismatch),
            _ => None,
        }
    }

    /// Every failure, in the order of their codes ([`TlsFailure::code`]).
    pub const ALL: [TlsFailure; 8] = [
        TlsFailure::UnknownIssuer,
        TlsFailure::NotValidForName,
        TlsFailure::Expired,
        TlsFailure::NotYetValid,
        TlsFailure::BadCertificate,
        TlsFailure::ClientCertificateRefused,
        TlsFailure::ProtocolMismatch,
        TlsFailure::NotTls,
    ];

    /// A stable number for the failure (the durable store keeps it): 1 and up.
    pub fn code(self) -> u8 {
        match self {
            TlsFailure::UnknownIssuer => 1,
            TlsFailure::NotValidForName => 2,
            TlsFailure::Expired => 3,
            TlsFailure::NotYetValid => 4,
            TlsFailure::BadCertificate => 5,
            TlsFailure::ClientCertificateRefused => 6,
            TlsFailure::ProtocolMismatch => 7,
            TlsFailure::NotTls => 8,
        }
    }

    /// The failure with this [`TlsFailure::code`]; `None` for a code no failure has.
    pub fn from_code(code: u8) -> Option<TlsFailure> {
        TlsFailure::ALL.into_iter().find(|f| f.code() == code)
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFailure::UnknownIssuer => {
                "the broker's certificate is not signed by a trusted CA: set the CA setting \
                 (the CA file or certificate, or the system roots) to the CA that signed the \
                 broker's certificate"
            }
            TlsFailure::NotValidForName => {
                "the broker's certificate does not name the host dialled: compare the broker's \
                 advertised host (and the bootstrap address) with the certificate's subject \
                 alternative names"
            }
            TlsFailure::Expired => {
                "the broker's certificate has expired: renew the broker's certificate, or \
                 check this host's clock"
            }
            TlsFailure::NotYetValid => {
                "the broker's certificate is not valid yet: check this host's clock, or the \
                 broker's certificate"
            }
            TlsFailure::BadCertificate => {
                "the broker's certificate cannot be used (bad signature, unsupported \
                 algorithm, not for a TLS server): check the broker's certificate"
            }
            TlsFailure::ClientCertificateRefused => {
                "the broker refused this client's certificate, or wanted one: set the client \
                 certificate and key (--cert/--key) to a pair the broker's truststore accepts"
            }
            TlsFailure::ProtocolMismatch => {
                "no TLS version, cipher suite or signature algorithm in common with the broker: \
                 check the broker's ssl.enabled.protocols and ssl.cipher.suites against the \
                 client's (transport-std: TLS 1.2 and 1.3; transport-embassy: TLS 1.3 only, \
                 RSA certificates with its tls-rsa feature)"
            }
            TlsFailure::NotTls => {
                "the broker answered without TLS: the listener is not SSL or SASL_SSL; use \
                 security.protocol PLAINTEXT (or SASL_PLAINTEXT), or the broker's TLS listener"
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_distinct() {
        for f in TlsFailure::ALL {
            assert_eq!(TlsFailure::from_code(f.code()), Some(f));
        }
        assert_eq!(TlsFailure::from_code(0), None);
        assert_eq!(TlsFailure::from_code(9), None);
    }

    #[test]
    fn alerts_that_say_a_setting_is_wrong_are_failures_for_good() {
        for refused in [42, 43, 44, 45, 46, 48, 49, 116] {
            assert_eq!(
                TlsFailure::from_alert(refused),
                Some(TlsFailure::ClientCertificateRefused),
                "{refused}"
            );
        }
        for mismatch in [40, 70, 71] {
            assert_eq!(
                TlsFailure::from_alert(mismatch),
                Some(TlsFailure::ProtocolMismatch),
                "{mismatch}"
            );
        }
        // close_notify, unexpected_message, bad_record_mac, illegal_parameter, decode_error,
        // internal_error: not about the settings.
        for other in [0, 10, 20, 47, 50, 80, 255] {
            assert_eq!(TlsFailure::from_alert(other), None, "{other}");
        }
    }
}
