//! The runner's side: one session per connection, through embedded-tls, and what its
//! errors mean.

use core::cell::{Cell, RefCell};
use core::future::poll_fn;
use core::task::Poll;

use embassy_futures::join::{join, join_array};
use embedded_io_async::Write as _;
use embedded_tls::pki::CertVerifier;
use embedded_tls::{
    Aes128GcmSha256, Certificate, CertificateEntryRef, CertificateRef, CertificateVerifyRef,
    CryptoProvider, CryptoRngCore, NoClock, SignatureScheme, TlsConnection, TlsContext, TlsError,
    TlsVerifier,
};
use p256::ecdsa::{DerSignature, SigningKey};
use producer_core::client::HOST_MAX;
use producer_core::tls::TlsFailure;
use rand_core::{CryptoRng, RngCore};

use super::wire::{State, TlsWire, free, register, wake};
use super::{CHAIN_MAX, TlsRecords, TlsRunner, der, now_unix};

type Suite = Aes128GcmSha256;

impl<'d, R, const N: usize, const RX: usize, const TX: usize> TlsRunner<'d, R, N, RX, TX>
where
    R: RngCore + CryptoRng,
{
    /// Runs every connection's sessions, forever. Run it beside the producer (`join` in the
    /// producer's task, or a task of its own) for as long as the producer lives: dropping it
    /// ends every session, and the producer's TLS connections then end as losses.
    pub async fn run(&mut self) -> ! {
        let TlsRunner {
            shared,
            records,
            rng,
            ca,
            client,
        } = self;
        let ctx = Shared {
            rng,
            ca: Certificate::X509(&ca[..]),
            client: client.as_ref().map(|(c, k)| (&c[..], k)),
            clock: &shared.clock,
        };
        let mut records = records.iter_mut();
        let sessions: [_; N] = core::array::from_fn(|i| {
            // `from_fn` asks for exactly N, and there are N records.
            let record = records.next();
            serve(&shared.wires[i], record, &ctx)
        });
        join_array(sessions).await;
        unreachable!("sessions never end")
    }
}

/// What every session of a runner shares.
struct Shared<'r, R> {
    rng: &'r RefCell<R>,
    ca: Certificate<&'r [u8]>,
    client: Option<(&'r [u8], &'r SigningKey)>,
    clock: &'r Cell<Option<(u64, u64)>>,
}

/// Serves one connection's sessions, one after another.
async fn serve<R, const RX: usize, const TX: usize>(
    wire: &TlsWire,
    records: Option<&mut TlsRecords<RX, TX>>,
    ctx: &Shared<'_, R>,
) where
    R: RngCore + CryptoRng,
{
    let Some(records) = records else {
        return;
    };
    loop {
        let (generation, host): (u32, heapless::String<HOST_MAX>) = poll_fn(|cx| {
            let mut w = wire.inner.borrow_mut();
            register(&mut w.runner, cx.waker());
            match w.state {
                State::Handshake => Poll::Ready((w.generation, w.host.clone())),
                _ => Poll::Pending,
            }
        })
        .await;
        let end = session(wire, generation, &host, records, ctx).await;
        let mut w = wire.inner.borrow_mut();
        if w.generation == generation {
            w.state = match end {
                Some(f) => State::Failed(f),
                None => State::Lost,
            };
            wake(&w.producer);
        }
    }
}

/// One connection's session: the handshake, then plaintext both ways until it ends.
/// Returns the failure for good, if it was one.
async fn session<R, const RX: usize, const TX: usize>(
    wire: &TlsWire,
    generation: u32,
    host: &str,
    records: &mut TlsRecords<RX, TX>,
    ctx: &Shared<'_, R>,
) -> Option<TlsFailure>
where
    R: RngCore + CryptoRng,
{
    let ended = Cell::new(false);
    let io = WireIo {
        wire,
        generation,
        ended: &ended,
    };
    // With `tls-rsa` (embedded-tls's `alloc`), `new` offers the RSA signature schemes too.
    let config = embedded_tls::TlsConfig::new().with_server_name(host);
    let mut conn: TlsConnection<'_, WireIo<'_>, Suite> =
        TlsConnection::new(io, &mut records.rx, &mut records.tx);
    let mut provider = Provider {
        rng: ctx.rng,
        verifier: Verifier {
            inner: CertVerifier::new(ctx.ca),
            ca: ctx.ca,
            now: now_unix(ctx.clock),
            failure: None,
        },
        client: ctx.client,
    };
    if let Err(e) = conn.open(TlsContext::new(&config, &mut provider)).await {
        let heard = wire.inner.borrow().heard;
        return handshake_failure(e, provider.verifier.failure, heard, host);
    }
    {
        let mut w = wire.inner.borrow_mut();
        if w.generation != generation {
            return None;
        }
        w.state = State::Up;
        wake(&w.producer);
    }
    info!("TLS with {:?} established", host);
    let (mut reader, mut writer) = conn.split();
    let read = async {
        let mut any = false;
        let end = loop {
            // Room for plaintext first: a record is decrypted in place and handed on whole
            // or in parts, never dropped.
            let room = poll_fn(|cx| {
                let mut w = wire.inner.borrow_mut();
                register(&mut w.runner, cx.waker());
                if w.generation != generation || ended.get() {
                    Poll::Ready(false)
                } else if free(&w.plain_in) > 0 {
                    Poll::Ready(true)
                } else {
                    Poll::Pending
                }
            })
            .await;
            if !room {
                break None;
            }
            match reader.read_buffered().await {
                Ok(mut plain) => {
                    let mut w = wire.inner.borrow_mut();
                    let n = free(&w.plain_in);
                    for &b in plain.pop(n) {
                        let _ = w.plain_in.push_back(b);
                    }
                    any = true;
                    wake(&w.producer);
                }
                // The broker refuses the client's certificate after the client's last
                // handshake message (TLS 1.3), by an alert before anything else; embedded-tls
                // reports an alert other than close_notify as InternalError.
                Err(TlsError::InternalError) if !any => {
                    break Some(TlsFailure::ClientCertificateRefused);
                }
                Err(e) => {
                    debug!("TLS read ended: {:?}", e);
                    break None;
                }
            }
        };
        ended.set(true);
        wake(&wire.inner.borrow().runner);
        end
    };
    let write = async {
        let mut chunk = [0u8; 512];
        loop {
            let n = poll_fn(|cx| {
                let mut w = wire.inner.borrow_mut();
                register(&mut w.runner, cx.waker());
                if w.generation != generation || ended.get() {
                    return Poll::Ready(0);
                }
                let mut n = 0;
                while n < chunk.len() {
                    match w.plain_out.pop_front() {
                        Some(b) => {
                            chunk[n] = b;
                            n += 1;
                        }
                        None => break,
                    }
                }
                if n > 0 {
                    wake(&w.producer);
                    Poll::Ready(n)
                } else {
                    Poll::Pending
                }
            })
            .await;
            if n == 0 {
                break;
            }
            if writer.write_all(&chunk[..n]).await.is_err() {
                break;
            }
            let more = !wire.inner.borrow().plain_out.is_empty();
            if !more && writer.flush().await.is_err() {
                break;
            }
        }
        ended.set(true);
        wake(&wire.inner.borrow().runner);
    };
    let (end, ()) = join(read, write).await;
    end
}

/// The wire's ciphertext as embedded-tls's socket. It waits (`Pending`) for bytes or room,
/// and fails once its connection is gone (another generation, or the socket ended and every
/// byte it brought was read).
#[derive(Clone, Copy)]
struct WireIo<'w> {
    wire: &'w TlsWire,
    generation: u32,
    ended: &'w Cell<bool>,
}

impl embedded_io_async::ErrorType for WireIo<'_> {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io_async::Read for WireIo<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        poll_fn(|cx| {
            let mut w = self.wire.inner.borrow_mut();
            if w.generation != self.generation {
                return Poll::Ready(Err(embedded_io::ErrorKind::ConnectionAborted));
            }
            let mut n = 0;
            while n < buf.len() {
                match w.cipher_in.pop_front() {
                    Some(b) => {
                        buf[n] = b;
                        n += 1;
                    }
                    None => break,
                }
            }
            if n > 0 {
                wake(&w.producer);
                return Poll::Ready(Ok(n));
            }
            if w.closed || self.ended.get() {
                return Poll::Ready(Err(embedded_io::ErrorKind::ConnectionReset));
            }
            register(&mut w.runner, cx.waker());
            Poll::Pending
        })
        .await
    }
}

impl embedded_io_async::Write for WireIo<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        poll_fn(|cx| {
            let mut w = self.wire.inner.borrow_mut();
            if w.generation != self.generation || w.closed {
                return Poll::Ready(Err(embedded_io::ErrorKind::ConnectionAborted));
            }
            let n = free(&w.cipher_out).min(buf.len());
            if n == 0 {
                register(&mut w.runner, cx.waker());
                return Poll::Pending;
            }
            for &b in &buf[..n] {
                let _ = w.cipher_out.push_back(b);
            }
            wake(&w.producer);
            Poll::Ready(Ok(n))
        })
        .await
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// The random numbers of a session: the runner's generator, borrowed for each call only.
struct SharedRng<'r, R>(&'r RefCell<R>);

impl<R: RngCore> RngCore for SharedRng<'_, R> {
    fn next_u32(&mut self) -> u32 {
        self.0.borrow_mut().next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.borrow_mut().next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.borrow_mut().fill_bytes(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.borrow_mut().try_fill_bytes(dest)
    }
}

impl<R: CryptoRng> CryptoRng for SharedRng<'_, R> {}

struct Provider<'r, R> {
    rng: &'r RefCell<R>,
    verifier: Verifier<'r>,
    client: Option<(&'r [u8], &'r SigningKey)>,
}

impl<R: RngCore + CryptoRng> CryptoProvider for Provider<'_, R> {
    type CipherSuite = Suite;
    type Signature = DerSignature;

    fn rng(&mut self) -> impl CryptoRngCore {
        SharedRng(self.rng)
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Suite>, TlsError> {
        Ok(&mut self.verifier)
    }

    fn signer(
        &mut self,
    ) -> Result<(impl signature::SignerMut<DerSignature>, SignatureScheme), TlsError> {
        let (_, key) = self.client.ok_or(TlsError::InvalidPrivateKey)?;
        Ok((key.clone(), SignatureScheme::EcdsaSecp256r1Sha256))
    }

    fn client_cert(&mut self) -> Option<Certificate<impl AsRef<[u8]>>> {
        self.client.map(|(cert, _)| Certificate::X509(cert))
    }
}

/// embedded-tls's verifier, and what a refusal means: it answers a chain signed by another
/// CA, a name the certificate lacks and a date out of range alike (`InvalidCertificate`), so
/// on a refusal this checks again with the certificate's own name to tell the first two
/// apart, and it checks the dates itself (embedded-tls's clock is a type without state).
struct Verifier<'r> {
    inner: CertVerifier<'r, Suite, NoClock, CHAIN_MAX>,
    ca: Certificate<&'r [u8]>,
    now: Option<u64>,
    failure: Option<TlsFailure>,
}

impl Verifier<'_> {
    fn fail(&mut self, failure: TlsFailure) -> TlsError {
        self.failure = Some(failure);
        TlsError::InvalidCertificate
    }

    /// Why `chain`, refused by the inner verifier, was refused.
    fn diagnose(&self, transcript: &sha2::Sha256, chain: &[&[u8]]) -> TlsFailure {
        let Some(name) = chain
            .first()
            .and_then(|leaf| der::facts(leaf))
            .and_then(|f| f.name)
            .and_then(|n| core::str::from_utf8(n).ok())
        else {
            return TlsFailure::BadCertificate;
        };
        let mut again: CertVerifier<'_, Suite, NoClock, 0> = CertVerifier::new(self.ca);
        if again.set_hostname_verification(name).is_err() {
            return TlsFailure::BadCertificate;
        }
        let mut rebuilt = CertificateRef::with_context(&[]);
        for &c in chain {
            if rebuilt.add(CertificateEntryRef::X509(c)).is_err() {
                return TlsFailure::BadCertificate;
            }
        }
        match again.verify_certificate(transcript, rebuilt) {
            // The chain is good under the certificate's own name: not the name dialled.
            Ok(()) => TlsFailure::NotValidForName,
            Err(TlsError::InvalidCertificate) => TlsFailure::UnknownIssuer,
            Err(_) => TlsFailure::BadCertificate,
        }
    }
}

impl TlsVerifier<Suite> for Verifier<'_> {
    fn set_hostname_verification(&mut self, hostname: &str) -> Result<(), TlsError> {
        self.inner
            .set_hostname_verification(hostname)
            .map_err(|_| self.fail(TlsFailure::NotValidForName))
    }

    fn verify_certificate(
        &mut self,
        transcript: &sha2::Sha256,
        cert: CertificateRef,
    ) -> Result<(), TlsError> {
        let mut chain: heapless::Vec<&[u8], 16> = heapless::Vec::new();
        for entry in &cert.entries {
            if let CertificateEntryRef::X509(der) = entry {
                let _ = chain.push(der);
            }
        }
        match self.inner.verify_certificate(transcript, cert) {
            Ok(()) => {}
            Err(TlsError::InvalidCertificate) => {
                let failure = self.diagnose(transcript, &chain);
                return Err(self.fail(failure));
            }
            Err(TlsError::InvalidSignatureScheme | TlsError::DecodeError) => {
                return Err(self.fail(TlsFailure::BadCertificate));
            }
            Err(e) => return Err(e),
        }
        if let Some(now) = self.now {
            let ca = match self.ca {
                Certificate::X509(ca) | Certificate::RawPublicKey(ca) => ca,
            };
            for der in chain.iter().copied().chain([ca]) {
                if let Some(f) = der::facts(der) {
                    if now < f.not_before {
                        return Err(self.fail(TlsFailure::NotYetValid));
                    }
                    if now > f.not_after {
                        return Err(self.fail(TlsFailure::Expired));
                    }
                }
            }
        }
        Ok(())
    }

    fn verify_signature(&mut self, verify: CertificateVerifyRef) -> Result<(), TlsError> {
        self.inner
            .verify_signature(verify)
            .map_err(|_| self.fail(TlsFailure::BadCertificate))
    }
}

/// What a failed handshake means: `Some` a failure for good, `None` an ordinary loss.
fn handshake_failure(
    e: TlsError,
    verified: Option<TlsFailure>,
    heard: bool,
    host: &str,
) -> Option<TlsFailure> {
    if verified.is_some() {
        return verified;
    }
    match e {
        TlsError::Io(_) | TlsError::IoError | TlsError::ConnectionClosed => {
            if !heard {
                info!(
                    "TLS handshake with {:?} ended before the server answered: is the listener \
                     PLAINTEXT?",
                    host
                );
            }
            None
        }
        TlsError::HandshakeAborted(_, alert) => TlsFailure::from_alert(alert as u8),
        // The first bytes back were not a TLS record.
        TlsError::InvalidRecord | TlsError::UnknownContentType => Some(TlsFailure::NotTls),
        TlsError::InvalidCipherSuite
        | TlsError::InvalidSupportedVersions
        | TlsError::InvalidKeyShare
        | TlsError::InvalidSignatureScheme
        | TlsError::Unimplemented => Some(TlsFailure::ProtocolMismatch),
        other => {
            warn!("TLS handshake with {:?} failed: {:?}", host, other);
            Some(TlsFailure::BadCertificate)
        }
    }
}
