//! TLS on a broker connection: rustls between the socket and the driver's byte stream.
//!
//! The core never sees ciphertext: a connection's turn runs over [`Conn`], which is the
//! plain socket or the socket through a rustls client (bytes in, bytes out). What a failed
//! handshake means is the core's ([`producer_core::tls`]): this file maps rustls's errors to
//! a [`TlsFailure`] and the producer hands it to the client, which stops.
//!
//! - The server is verified against the system roots (`rustls-native-certs`: the operating
//!   system's store, `SSL_CERT_FILE`/`SSL_CERT_DIR` respected), a CA bundle file, or CA
//!   certificates given as PEM; TLS 1.2 and 1.3, rustls's default cipher suites.
//! - The name verified (and sent as SNI, for a DNS name) is the host the client dials: the
//!   bootstrap host, then each broker's advertised host. An IP address is verified against
//!   the certificate's IP subject alternative names.
//! - Crypto: rustls with `ring`, chosen explicitly. rustls's default, aws-lc-rs, builds a
//!   large C library (and, off its prebuilt platforms, wants cmake and clang); ring builds
//!   with a C compiler alone, on a fresh Debian and for the ARM gateways alike, and
//!   has the suites a Kafka broker offers.
//! - A connection that ends mid-handshake is an ordinary loss (backed off); one that ends
//!   before the server said anything is logged as a likely PLAINTEXT listener, since
//!   that is what Kafka does with a ClientHello: it reads it as an oversized frame and closes.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use mio::net::TcpStream;
use producer_core::driver::{Broken, Io};
use producer_core::tls::TlsFailure;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{CertificateError, ClientConnection, InvalidMessage, RootCertStore};

/// How the producer talks to the brokers, as Kafka's `security.protocol` names it. SASL is on
/// when the client has a mechanism (`client.sasl`), TLS when this says so; the two must
/// agree (checked at construction).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    /// Neither TLS nor SASL (or SASL without TLS, when `client.sasl` is set: what this crate
    /// did before it had this setting).
    #[default]
    Plaintext,
    /// TLS, no SASL.
    Ssl,
    /// SASL over plain TCP.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Every protocol, in Kafka's order.
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// Whether connections run over TLS.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// Kafka's name: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Kafka's names, in any case.
impl FromStr for SecurityProtocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SecurityProtocol::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown security protocol {s:?}: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
                )
            })
    }
}

/// PEM text: a file read when the producer is built, or the text itself.
#[derive(Clone, PartialEq, Eq)]
pub enum Pem {
    /// A PEM file.
    File(PathBuf),
    /// PEM text.
    Text(Vec<u8>),
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(p) => f.debug_tuple("File").field(p).finish(),
            Pem::Text(t) => write!(f, "Text({} bytes)", t.len()),
        }
    }
}

impl Pem {
    fn describe(&self) -> String {
        match self {
            Pem::File(p) => p.display().to_string(),
            Pem::Text(_) => "the PEM text given".to_string(),
        }
    }

    fn bytes(&self, what: &str) -> Result<Vec<u8>, String> {
        match self {
            Pem::File(p) => {
                std::fs::read(p).map_err(|e| format!("cannot read the {what} {}: {e}", p.display()))
            }
            Pem::Text(t) => Ok(t.clone()),
        }
    }

    fn certificates(&self, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
        let bytes = self.bytes(what)?;
        let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&bytes).collect();
        match certs {
            Ok(c) if !c.is_empty() => Ok(c),
            Ok(_) => Err(format!(
                "no PEM certificate (-----BEGIN CERTIFICATE-----) in the {what} {}",
                self.describe()
            )),
            Err(e) => Err(format!("the {what} {} is not PEM: {e}", self.describe())),
        }
    }
}

/// Where the broker's certificate is verified against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TlsRoots {
    /// The operating system's CA certificates (`SSL_CERT_FILE` and `SSL_CERT_DIR` are
    /// respected).
    #[default]
    System,
    /// These CA certificates only (a bundle: one or more PEM certificates).
    Ca(Pem),
}

/// The TLS side of a [`ProducerConfig`](crate::ProducerConfig), used with
/// [`SecurityProtocol::Ssl`] and [`SecurityProtocol::SaslSsl`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// What the broker's certificate must chain to.
    pub roots: TlsRoots,
    /// The client's certificate chain (PEM, its own certificate first), for brokers that
    /// want one (`ssl.client.auth=required`: mTLS). With [`TlsConfig::client_key`].
    pub client_cert: Option<Pem>,
    /// The private key of [`TlsConfig::client_cert`] (PEM: PKCS#8, PKCS#1 or SEC1). Never
    /// shown by `Debug`.
    pub client_key: Option<Pem>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.client_key.as_ref().map(|k| match k {
            Pem::File(p) => p.display().to_string(),
            Pem::Text(_) => "<redacted>".to_string(),
        });
        f.debug_struct("TlsConfig")
            .field("roots", &self.roots)
            .field("client_cert", &self.client_cert)
            .field("client_key", &key)
            .finish()
    }
}

impl TlsConfig {
    /// Anything set beyond the defaults (system roots, no client certificate).
    pub(crate) fn is_set(&self) -> bool {
        *self != TlsConfig::default()
    }

    /// The rustls client configuration, or what to change.
    pub(crate) fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        match (&self.client_cert, &self.client_key) {
            (Some(_), None) => {
                return Err(
                    "a client certificate without its key: give the key too (--key)".into(),
                );
            }
            (None, Some(_)) => {
                return Err(
                    "a client key without its certificate: give the certificate too (--cert)"
                        .into(),
                );
            }
            _ => {}
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        match &self.roots {
            TlsRoots::System => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    let why = found
                        .errors
                        .first()
                        .map_or(String::new(), |e| format!(" ({e})"));
                    return Err(format!(
                        "no CA certificate found in the system's store{why}: give a CA file \
                         (--ca-file), or install the CA certificates (ca-certificates)"
                    ));
                }
            }
            TlsRoots::Ca(pem) => {
                for cert in pem.certificates("CA file")? {
                    roots.add(cert).map_err(|e| {
                        format!(
                            "a certificate of the CA file {} is refused: {e}",
                            pem.describe()
                        )
                    })?;
                }
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_root_certificates(roots);
        let config = match (&self.client_cert, &self.client_key) {
            // Neither (one alone was refused above).
            (None, _) | (_, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = cert.certificates("client certificate")?;
                let bytes = key.bytes("client key")?;
                let der = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
                    format!(
                        "no PEM private key in the client key {} ({e}): give its key in PEM \
                         (PKCS#8, PKCS#1 or SEC1), unencrypted",
                        key.describe()
                    )
                })?;
                builder.with_client_auth_cert(chain, der).map_err(|e| {
                    format!(
                        "the client key {} does not go with the client certificate {}: {e}",
                        key.describe(),
                        cert.describe()
                    )
                })?
            }
        };
        Ok(Arc::new(config))
    }
}

/// One connection's TLS state.
pub(crate) struct Tls {
    conn: ClientConnection,
    /// The server sent something (so a close is not a PLAINTEXT listener's).
    heard: bool,
    /// The failure that broke the connection, for the client.
    pub(crate) failure: Option<TlsFailure>,
}

/// A handshake step's result.
pub(crate) enum Handshake {
    /// Waiting for the socket.
    Pending,
    /// Established: the client may use the connection.
    Done,
    /// The connection ended: an ordinary loss. `heard`: the server had answered.
    Lost { heard: bool },
    /// The handshake failed for good.
    Failed(TlsFailure),
}

impl Tls {
    /// A client for `host` (what the certificate must name). An invalid name cannot be
    /// verified: a failure for good.
    pub(crate) fn new(config: &Arc<rustls::ClientConfig>, host: &str) -> Result<Tls, TlsFailure> {
        let name =
            ServerName::try_from(host.to_string()).map_err(|_| TlsFailure::NotValidForName)?;
        let conn =
            ClientConnection::new(config.clone(), name).map_err(|_| TlsFailure::NotValidForName)?;
        Ok(Tls {
            conn,
            heard: false,
            failure: None,
        })
    }

    /// Moves the handshake on as far as the socket allows.
    pub(crate) fn handshake(&mut self, tcp: &mut TcpStream) -> Handshake {
        loop {
            if self.flush(tcp).is_err() {
                return Handshake::Lost { heard: self.heard };
            }
            if !self.conn.is_handshaking() {
                return Handshake::Done;
            }
            match self.conn.read_tls(tcp) {
                Ok(0) => return Handshake::Lost { heard: self.heard },
                Ok(_) => self.heard = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Handshake::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Handshake::Lost { heard: self.heard },
            }
            if let Err(e) = self.conn.process_new_packets() {
                // The alert rustls queued, if the socket takes it.
                let _ = self.flush(tcp);
                log::debug!("TLS handshake: {e}");
                return match handshake_failure(&e) {
                    Some(f) => Handshake::Failed(f),
                    None => Handshake::Lost { heard: self.heard },
                };
            }
        }
    }

    /// Writes what rustls has for the socket, until it takes no more.
    pub(crate) fn flush(&mut self, tcp: &mut TcpStream) -> Result<(), Broken> {
        while self.conn.wants_write() {
            match self.conn.write_tls(tcp) {
                Ok(0) => return Err(Broken),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Broken),
            }
        }
        Ok(())
    }
}

/// A handshake error that retrying cannot fix, as the core names it; `None` for the rest
/// (an ordinary loss).
fn handshake_failure(e: &rustls::Error) -> Option<TlsFailure> {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => Some(match c {
            CertificateError::UnknownIssuer => TlsFailure::UnknownIssuer,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsFailure::NotValidForName
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                TlsFailure::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                TlsFailure::NotYetValid
            }
            _ => TlsFailure::BadCertificate,
        }),
        E::PeerIncompatible(_) => Some(TlsFailure::ProtocolMismatch),
        // Not a TLS record at all: the listener speaks something else.
        E::InvalidMessage(
            InvalidMessage::InvalidContentType
            | InvalidMessage::UnknownProtocolVersion
            | InvalidMessage::MessageTooLarge,
        ) => Some(TlsFailure::NotTls),
        E::AlertReceived(a) => TlsFailure::from_alert(u8::from(*a)),
        _ => None,
    }
}

/// A connection's byte stream as the driver sees it: the socket, or the socket through TLS.
/// "Would block" is "nothing now".
pub(crate) enum Conn<'a> {
    Plain(&'a mut TcpStream),
    Tls(&'a mut TcpStream, &'a mut Tls),
}

fn plain_read(s: &mut TcpStream, buf: &mut [u8]) -> Result<usize, Broken> {
    loop {
        match s.read(buf) {
            Ok(0) => return Err(Broken),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(Broken),
        }
    }
}

fn plain_write(s: &mut TcpStream, buf: &[u8]) -> Result<usize, Broken> {
    loop {
        match s.write(buf) {
            Ok(0) => return Err(Broken),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(Broken),
        }
    }
}

impl Io for Conn<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Broken> {
        let (tcp, tls) = match self {
            Conn::Plain(s) => return plain_read(s, buf),
            Conn::Tls(s, t) => (s, t),
        };
        loop {
            // What was decrypted first; the socket only when that is empty.
            match tls.conn.reader().read(buf) {
                // The broker's close_notify.
                Ok(0) => return Err(Broken),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Err(Broken),
            }
            match tls.conn.read_tls(*tcp) {
                Ok(0) => return Err(Broken),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(Broken),
            }
            if let Err(e) = tls.conn.process_new_packets() {
                let _ = tls.flush(tcp);
                log::debug!("TLS: {e}");
                if let rustls::Error::AlertReceived(a) = e {
                    tls.failure = TlsFailure::from_alert(u8::from(a))
                        .filter(|f| *f == TlsFailure::ClientCertificateRefused);
                }
                return Err(Broken);
            }
            // Post-handshake messages may want an answer (a key update).
            tls.flush(tcp)?;
        }
    }

    fn write(&mut self, buf: &[u8]) -> Result<usize, Broken> {
        let (tcp, tls) = match self {
            Conn::Plain(s) => return plain_write(s, buf),
            Conn::Tls(s, t) => (s, t),
        };
        // Room first: rustls takes plaintext only while its buffer is under its limit.
        tls.flush(tcp)?;
        let n = tls.conn.writer().write(buf).map_err(|_| Broken)?;
        tls.flush(tcp)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_parse_in_any_case() {
        for p in SecurityProtocol::ALL {
            assert_eq!(p.name().parse::<SecurityProtocol>(), Ok(p));
            assert_eq!(p.name().to_lowercase().parse::<SecurityProtocol>(), Ok(p));
        }
        assert!("TLS".parse::<SecurityProtocol>().is_err());
    }

    #[test]
    fn a_key_given_as_text_is_never_shown() {
        let config = TlsConfig {
            client_cert: Some(Pem::Text(b"cert".to_vec())),
            client_key: Some(Pem::Text(b"-----BEGIN PRIVATE KEY-----secret".to_vec())),
            ..TlsConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("secret") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn bad_settings_say_what_to_change() {
        let missing = TlsConfig {
            roots: TlsRoots::Ca(Pem::File("/nonexistent/ca.pem".into())),
            ..TlsConfig::default()
        };
        let e = missing.client_config().unwrap_err();
        assert!(
            e.contains("cannot read the CA file /nonexistent/ca.pem"),
            "{e}"
        );
        let empty = TlsConfig {
            roots: TlsRoots::Ca(Pem::Text(b"not pem".to_vec())),
            ..TlsConfig::default()
        };
        let e = empty.client_config().unwrap_err();
        assert!(e.contains("no PEM certificate"), "{e}");
        let half = TlsConfig {
            client_key: Some(Pem::Text(Vec::new())),
            ..TlsConfig::default()
        };
        assert!(half.client_config().unwrap_err().contains("--cert"));
    }
}
