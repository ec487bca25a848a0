//! SSL and SASL_SSL listeners, with certificates made in the test.
//!
//! - [`TestCa`]: a CA (ECDSA P-256) made with rcgen, issuing broker and client certificates
//!   with RSA-2048 or ECDSA P-256 keys ([`KeyKind`]), current, expired or not yet valid. RSA
//!   keys come from `openssl genpkey` (ring, rcgen's backend here, signs with RSA keys but
//!   cannot generate them); rcgen makes every certificate.
//! - [`Tls`]: the listeners a cluster gets besides the others (given to
//!   [`super::KafkaBuilder::tls`]), each with its own certificate through Kafka's PEM
//!   keystore (`ssl.keystore.type=PEM`, the chain and key inline), and, for mTLS,
//!   `ssl.client.auth=required` with a PEM truststore of the CA that signs client
//!   certificates. A SASL_SSL listener offers PLAIN with one user, or SCRAM to the cluster's
//!   SCRAM users ([`Tls::scram_ssl_behind`], with [`super::Sasl`] making the users).
//!
//! Replication, the controllers and the fixture's own connections stay on PLAINTEXT, and
//! so does the independent consumer that reads records back.

use std::process::Command;

use super::SaslMechanism;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, date_time_ymd,
};

/// The key of a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA, 2048 bits.
    Rsa,
    /// ECDSA on P-256.
    EcdsaP256,
}

/// When a certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// From 1975 to 4096 (rcgen's defaults).
    Current,
    /// Through 2020 only.
    Expired,
    /// From 2090 on.
    NotYetValid,
}

fn key(kind: KeyKind) -> KeyPair {
    match kind {
        KeyKind::EcdsaP256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("P-256 key"),
        KeyKind::Rsa => {
            let out = Command::new("openssl")
                .args([
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                ])
                .output()
                .expect("run openssl genpkey (apt-get install openssl)");
            assert!(out.status.success(), "openssl genpkey: {out:?}");
            let pem = String::from_utf8(out.stdout).expect("PEM");
            KeyPair::from_pem(&pem).expect("RSA key")
        }
    }
}

/// A certificate chain and its private key (PKCS#8), PEM.
#[derive(Clone, Debug)]
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
}

/// A certificate authority made for the test.
pub struct TestCa {
    pem: String,
    der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = key(KeyKind::EcdsaP256);
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA's certificate, PEM: what a client trusts.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The CA's certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    fn issue(
        &self,
        kind: KeyKind,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
        validity: Validity,
    ) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("certificate params");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        match validity {
            Validity::Current => {}
            Validity::Expired => {
                params.not_before = date_time_ymd(2019, 1, 1);
                params.not_after = date_time_ymd(2020, 12, 31);
            }
            Validity::NotYetValid => {
                params.not_before = date_time_ymd(2090, 1, 1);
                params.not_after = date_time_ymd(2091, 1, 1);
            }
        }
        let key = key(kind);
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        Issued {
            chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A broker certificate for `names` (DNS names or IP addresses).
    pub fn server(&self, kind: KeyKind, names: &[&str], validity: Validity) -> Issued {
        self.issue(kind, names, ExtendedKeyUsagePurpose::ServerAuth, validity)
    }

    /// A client certificate for `name`.
    pub fn client(&self, kind: KeyKind, name: &str) -> Issued {
        self.issue(
            kind,
            &[name],
            ExtendedKeyUsagePurpose::ClientAuth,
            Validity::Current,
        )
    }
}

/// One TLS listener.
#[derive(Clone, Debug)]
pub struct TlsListener {
    /// Its listener name (`SSL_RSA`, …).
    pub name: String,
    cert: Issued,
    /// SASL_SSL: PLAIN with this user and password.
    plain_user: Option<(String, String)>,
    /// SASL_SSL: this SCRAM mechanism, for the cluster's users of it.
    scram: Option<SaslMechanism>,
    /// mTLS: the CA (PEM) client certificates must chain to.
    client_ca: Option<String>,
    /// Listen on this port (default: a free one).
    pub(super) port: Option<u16>,
    /// Advertise this `host:port` (default: where it listens), e.g. a proxy in front.
    pub(super) advertised: Option<String>,
    /// Speak TLS 1.2 and nothing newer (`ssl.enabled.protocols=TLSv1.2`), as a service
    /// with a TLS 1.2-only policy does (Amazon MSK's default).
    tls12_only: bool,
}

/// The TLS listeners of a cluster: see the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Tls {
    listeners: Vec<TlsListener>,
}

/// A PEM value on one `server.properties` line (`\n` is a line break in Java properties).
fn inline(pem: &str) -> String {
    pem.trim_end().replace("\r\n", "\n").replace('\n', "\\n")
}

impl Tls {
    pub fn new() -> Tls {
        Tls::default()
    }

    fn add(&self, name: &str, cert: Issued) -> TlsListener {
        assert!(
            !self.listeners.iter().any(|l| l.name == name),
            "listener {name} twice"
        );
        TlsListener {
            name: name.to_string(),
            cert,
            plain_user: None,
            scram: None,
            client_ca: None,
            port: None,
            advertised: None,
            tls12_only: false,
        }
    }

    fn push(mut self, listener: TlsListener) -> Tls {
        self.listeners.push(listener);
        self
    }

    /// An SSL listener `name` serving `cert`.
    pub fn ssl(self, name: &str, cert: Issued) -> Tls {
        let l = self.add(name, cert);
        self.push(l)
    }

    /// An SSL listener `name` on `port`, advertising `advertised` (a proxy in front of it).
    pub fn ssl_behind(self, name: &str, cert: Issued, port: u16, advertised: &str) -> Tls {
        let mut l = self.add(name, cert);
        l.port = Some(port);
        l.advertised = Some(advertised.to_string());
        self.push(l)
    }

    /// A SASL_SSL listener `name` serving `cert`, offering PLAIN to `user` with `password`.
    pub fn sasl_ssl(self, name: &str, cert: Issued, user: &str, password: &str) -> Tls {
        let mut l = self.add(name, cert);
        l.plain_user = Some((user.to_string(), password.to_string()));
        self.push(l)
    }

    /// An SSL listener `name` serving `cert` that requires a client certificate signed by
    /// `client_ca` (PEM).
    pub fn mtls(self, name: &str, cert: Issued, client_ca: &str) -> Tls {
        let mut l = self.add(name, cert);
        l.client_ca = Some(client_ca.to_string());
        self.push(l)
    }

    /// [`Tls::sasl_ssl`] on `port`, advertising `advertised`.
    pub fn sasl_ssl_behind(
        self,
        name: &str,
        cert: Issued,
        user: &str,
        password: &str,
        port: u16,
        advertised: &str,
    ) -> Tls {
        let mut l = self.add(name, cert);
        l.plain_user = Some((user.to_string(), password.to_string()));
        l.port = Some(port);
        l.advertised = Some(advertised.to_string());
        self.push(l)
    }

    /// A SASL_SSL listener `name` on `port`, advertising `advertised`, serving `cert` and
    /// offering the SCRAM `mechanism` to the users of it the cluster's [`super::Sasl`] made.
    pub fn scram_ssl_behind(
        self,
        name: &str,
        cert: Issued,
        mechanism: SaslMechanism,
        port: u16,
        advertised: &str,
    ) -> Tls {
        assert!(mechanism.is_scram(), "{} is not SCRAM", mechanism.name());
        let mut l = self.add(name, cert);
        l.scram = Some(mechanism);
        l.port = Some(port);
        l.advertised = Some(advertised.to_string());
        self.push(l)
    }

    /// [`Tls::mtls`] on `port`, advertising `advertised`.
    pub fn mtls_behind(
        self,
        name: &str,
        cert: Issued,
        client_ca: &str,
        port: u16,
        advertised: &str,
    ) -> Tls {
        let mut l = self.add(name, cert);
        l.client_ca = Some(client_ca.to_string());
        l.port = Some(port);
        l.advertised = Some(advertised.to_string());
        self.push(l)
    }

    /// The listener `name`, added before, speaks TLS 1.2 only.
    pub fn tls12_only(mut self, name: &str) -> Tls {
        let i = self.index(name);
        self.listeners[i].tls12_only = true;
        self
    }

    pub(super) fn listeners(&self) -> &[TlsListener] {
        &self.listeners
    }

    /// The position of listener `name`; panics if there is none.
    pub(super) fn index(&self, name: &str) -> usize {
        self.listeners
            .iter()
            .position(|l| l.name == name)
            .unwrap_or_else(|| panic!("no TLS listener {name}"))
    }

    /// `listener.security.protocol.map` entries.
    pub(super) fn protocol_map(&self) -> String {
        self.listeners
            .iter()
            .map(|l| {
                let p = if l.plain_user.is_some() || l.scram.is_some() {
                    "SASL_SSL"
                } else {
                    "SSL"
                };
                format!(",{}:{p}", l.name)
            })
            .collect()
    }

    /// Each listener's keystore, truststore, client authentication and SASL settings.
    pub(super) fn broker_settings(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for l in &self.listeners {
            let prefix = format!("listener.name.{}", l.name.to_lowercase());
            let mut set = |k: &str, v: String| out.push((format!("{prefix}.{k}"), v));
            set("ssl.keystore.type", "PEM".into());
            set("ssl.keystore.certificate.chain", inline(&l.cert.chain_pem));
            set("ssl.keystore.key", inline(&l.cert.key_pem));
            if l.tls12_only {
                set("ssl.enabled.protocols", "TLSv1.2".into());
                set("ssl.protocol", "TLSv1.2".into());
            }
            if let Some(ca) = &l.client_ca {
                set("ssl.client.auth", "required".into());
                set("ssl.truststore.type", "PEM".into());
                set("ssl.truststore.certificates", inline(ca));
            }
            if let Some(m) = l.scram {
                set("sasl.enabled.mechanisms", m.name().into());
                set(
                    &format!("{}.sasl.jaas.config", m.name().to_lowercase()),
                    format!("{} required;", m.login_module()),
                );
            }
            if let Some((user, password)) = &l.plain_user {
                set("sasl.enabled.mechanisms", "PLAIN".into());
                set(
                    "plain.sasl.jaas.config",
                    format!(
                        "org.apache.kafka.common.security.plain.PlainLoginModule required \
                         user_{user}=\"{password}\";"
                    ),
                );
            }
        }
        out
    }
}
