//! `produce`'s security protocol and TLS settings, with librdkafka's names in brackets. The
//! files are read when the producer is built; a file that cannot be read, or a key that
//! does not go with its certificate, is refused then with what to change.

use std::path::PathBuf;

use clap::Args;
use transport_std::{Pem, ProducerConfig, SecurityProtocol, TlsRoots};

/// TLS (SSL and SASL_SSL listeners).
#[derive(Args, Debug)]
pub struct TlsArgs {
    /// PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL [security.protocol] [default: PLAINTEXT,
    /// or SASL_PLAINTEXT with --sasl-mechanism].
    #[arg(long, value_name = "PROTOCOL", value_parser = parse_protocol)]
    pub security_protocol: Option<SecurityProtocol>,
    /// Verify the brokers' certificates against the CA certificates in FILE (PEM) instead
    /// of the system's [ssl.ca.location].
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// This client's certificate chain (PEM), for brokers that require one (mTLS)
    /// [ssl.certificate.location].
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key of --cert (PEM, unencrypted) [ssl.key.location].
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
}

fn parse_protocol(text: &str) -> Result<SecurityProtocol, String> {
    text.parse()
}

impl TlsArgs {
    /// Sets `config`'s security protocol and TLS settings (after the SASL ones).
    pub fn configure(&self, config: &mut ProducerConfig<'_>) {
        config.security_protocol =
            self.security_protocol
                .unwrap_or(if config.client.sasl.is_some() {
                    SecurityProtocol::SaslPlaintext
                } else {
                    SecurityProtocol::Plaintext
                });
        if let Some(ca) = &self.ca_file {
            config.tls.roots = TlsRoots::Ca(Pem::File(ca.clone()));
        }
        config.tls.client_cert = self.cert.clone().map(Pem::File);
        config.tls.client_key = self.key.clone().map(Pem::File);
    }
}
