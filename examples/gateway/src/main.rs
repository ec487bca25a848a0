//! Sensor gateway firmware for QEMU's mps2-an386 (Cortex-M4F with a LAN9118 Ethernet chip).
//!
//! It produces sensor readings into a Kafka topic through the idempotent producer
//! (`transport-embassy` over embassy-net), each with a delivery deadline, waits until every
//! reading has its outcome, closes its connections, and exits with a status that says how it
//! went (QEMU passes it on):
//!
//! | status | meaning |
//! |---|---|
//! | 0 | every record is persisted |
//! | 2 | some record is not (or possibly) persisted |
//! | 3 | SASL authentication failed: the producer stopped (wrong credentials or mechanism) |
//! | 4 | TLS failed: the producer stopped (the broker's certificate not trusted, not for its name, out of date, or no TLS) |
//! | 1 | bad arguments, or the chip or producer could not be set up |
//! | 101 | panic or hard fault |
//!
//! The network is QEMU's user mode: static address 10.0.2.15/24, gateway 10.0.2.2, which is
//! the host's loopback. The broker is `10.0.2.2:PORT`; brokers that advertise a loopback
//! address (a broker on the host's 127.0.0.1) are reached there too. No DNS servers are
//! configured (slirp's 10.0.2.3 would forward queries off the machine), so brokers must be
//! IP literals. Arguments come through semihosting (see [`settings::Settings`]); the log is
//! defmt over semihosting, decoded on the host by `defmt-print`.
//!
//! With feature `scram` (default) it can authenticate with SASL SCRAM-SHA-256/512
//! (`sasl=`, `username=`, `password=`), its nonces from a ChaCha20 RNG seeded by the host
//! (`entropy_seed=`, see `entropy.rs`), and `bench=scram` times one SCRAM-SHA-512 exchange
//! (see `bench.rs`). With feature `tls` (default) it connects over TLS 1.3
//! (`security_protocol=SSL` or `SASL_SSL`, the CA as `ca=`, the broker's name as `host=`;
//! see `tls.rs`), its key shares from the same RNG.

#![no_std]
#![no_main]

#[cfg(feature = "scram")]
mod bench;
#[cfg(feature = "tls")]
mod bench_tls;
#[cfg(any(feature = "scram", feature = "tls"))]
mod entropy;
mod lan9118;
mod readings;
mod settings;
mod stack;
mod systick;
#[cfg(feature = "tls")]
mod tls;

use core::cell::Cell;
use core::fmt::Write as _;

use cortex_m_rt::{ExceptionFrame, exception};
use defmt::{error, info, warn};
use defmt_semihosting as _;
use embassy_executor::Spawner;
use embassy_net::{IpAddress, IpEndpoint, Ipv4Address, Ipv4Cidr, StackResources, StaticConfigV4};
use embassy_time::{Duration, Instant};
use static_cell::ConstStaticCell;
use transport_embassy::{
    ClientConfig, ConnectionBuffers, Counters, Error, Fixed, OutcomeKind, Producer, ProducerConfig,
    ProducerRecord, RecordDelivery,
};

use lan9118::Lan9118;
use readings::Reading;
use settings::{Security, Settings};

/// Topics the producer writes to.
const TOPICS: usize = 1;
/// Partitions it can track across them (the test topic has 4).
const PARTITIONS: usize = 4;
/// Batches held at once: buffered, in flight, or decided and not yet taken.
const BATCHES: usize = 16;
/// Largest record batch.
const BATCH_BYTES: usize = 2048;
/// Broker connections (bootstrap and leader may differ).
pub(crate) const BROKERS: usize = 2;
/// Largest response frame a connection accepts, and its TCP receive window.
const RX: usize = 4096;
/// Largest request (one full batch plus headers), and the TCP send window.
const TX: usize = BATCH_BYTES + 1024;
/// Sockets in the stack: one per broker connection and the DNS socket.
const SOCKETS: usize = BROKERS + 1;

/// The four capacities, named once.
type Capacities = Fixed<TOPICS, PARTITIONS, BATCHES, BROKERS>;

type GatewayProducer = Producer<'static, &'static mut [u8; BATCHES * BATCH_BYTES], Capacities>;

/// The guest's address on QEMU's user network.
const ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
/// QEMU's user-network gateway, which is also the host's loopback.
const HOST: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);

/// How long closing the connections may take once every record is decided.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// A progress line every this many records.
const PROGRESS_EVERY: u32 = 1000;

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, Lan9118>) -> ! {
    runner.run().await
}

/// The broker name `host=` gave, once `main` has read the settings.
static BROKER_NAME: critical_section::Mutex<Cell<Option<&'static str>>> =
    critical_section::Mutex::new(Cell::new(None));

/// Where the producer connects for a broker address: QEMU's user network reaches the host's
/// loopback at 10.0.2.2, so a broker on the host advertising `127.0.0.1` or `localhost` is
/// reached there, and so is the broker name `host=` gave (there is no DNS). Other addresses
/// are used as they are.
fn map_address(host: &str, port: u16) -> Option<IpEndpoint> {
    let named = critical_section::with(|cs| BROKER_NAME.borrow(cs).get()) == Some(host);
    (named || matches!(host, "127.0.0.1" | "localhost"))
        .then(|| IpEndpoint::new(IpAddress::Ipv4(HOST), port))
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    stack::paint();
    let Some(core) = cortex_m::Peripherals::take() else {
        fail("core peripherals already taken")
    };
    systick::init(core.SYST);
    let settings = match Settings::from_args() {
        Ok(s) => s,
        Err(e) => {
            error!("bad arguments: {}", e);
            semihosting::process::exit(1)
        }
    };
    info!(
        "gateway: {=u32} records to topic {=str} at {}:{=u16}, deadline {=u64} ms, seed {=u64}",
        settings.records,
        settings.topic,
        HOST,
        settings.port,
        settings.deadline.as_millis(),
        settings.seed
    );
    if settings.bench {
        bench()
    }
    if settings.bench_tls {
        bench_tls()
    }

    let nic = match Lan9118::new() {
        Ok(nic) => nic,
        Err(e) => {
            error!("LAN9118 not usable: {}", e);
            semihosting::process::exit(1)
        }
    };
    info!(
        "LAN9118 id {=u32:#010x}, MAC {=[u8]:02x}",
        nic.id_rev(),
        nic.mac_address()[..]
    );
    let net_config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(ADDRESS, 24),
        gateway: Some(HOST),
        dns_servers: heapless::Vec::new(),
    });
    static RESOURCES: ConstStaticCell<StackResources<SOCKETS>> =
        ConstStaticCell::new(StackResources::new());
    let (stack, runner) = embassy_net::new(nic, net_config, RESOURCES.take(), settings.seed);
    match net_task(runner) {
        Ok(token) => spawner.spawn(token),
        Err(_) => fail("network task already running"),
    }
    stack.wait_config_up().await;

    let mut bootstrap = heapless::String::<80>::new();
    let written = match settings.host {
        Some(name) => {
            critical_section::with(|cs| BROKER_NAME.borrow(cs).set(Some(name)));
            write!(bootstrap, "{name}:{}", settings.port)
        }
        None => write!(bootstrap, "{HOST}:{}", settings.port),
    };
    if written.is_err() {
        fail("host= is longer than 73 characters")
    }
    let bootstrap = [bootstrap.as_str()];
    let topics = [settings.topic];
    let mut config = ProducerConfig::new("gateway", &bootstrap, &topics);
    config.client = ClientConfig {
        batch_bytes: BATCH_BYTES,
        ..config.client
    };
    config.map_address = Some(map_address);
    if let Err(why) = configure_sasl(&mut config.client, &settings) {
        fail(why)
    }
    let security = settings.security.unwrap_or(if settings.sasl.is_some() {
        Security::SaslPlaintext
    } else {
        Security::Plaintext
    });
    if security.sasl() != settings.sasl.is_some() {
        fail("security_protocol=: SASL_PLAINTEXT and SASL_SSL need sasl=, the others refuse it")
    }
    if settings.ca.is_some() && !security.tls() {
        fail("ca= given without security_protocol=SSL or SASL_SSL")
    }
    info!("security protocol {=str}", security.name());

    static STORAGE: ConstStaticCell<[u8; BATCHES * BATCH_BYTES]> =
        ConstStaticCell::new([0; BATCHES * BATCH_BYTES]);
    static BUFFERS: ConstStaticCell<[ConnectionBuffers<RX, TX>; BROKERS]> =
        ConstStaticCell::new([const { ConnectionBuffers::new() }; BROKERS]);
    let producer: GatewayProducer =
        match Producer::new(stack, config, STORAGE.take(), BUFFERS.take()) {
            Ok(p) => p,
            Err(e) => {
                error!("producer not usable: {}", e);
                semihosting::process::exit(1)
            }
        };
    let mut producer = if security.tls() {
        with_tls(producer, security, &settings, spawner)
    } else {
        producer
    };

    // After `with_tls`: the wall clock is the TLS sessions' too, for certificate dates.
    match settings.epoch_ms {
        Some(epoch_ms) => producer.set_wall_clock((epoch_ms + Instant::now().as_millis()) as i64),
        None => warn!(
            "no wall clock (epoch_ms): records go without a timestamp, and a broker that keeps \
             the producer's (CreateTime) may forget this producer at once; use a LogAppendTime \
             topic; certificate dates are not checked"
        ),
    }
    stack::report("setup");
    stack::paint();
    let tally = produce(&mut producer, &settings).await;
    producer.close(Instant::now() + CLOSE_TIMEOUT).await;
    let counters = producer.counters();
    info!(
        "summary records={=u32} persisted={=u32} not_persisted={=u32} possibly_persisted={=u32} \
         undecided={=u32} elapsed_ms={=u64} retries={=u64} epoch_bumps={=u64} producer_ids={=u64}",
        settings.records,
        tally.persisted,
        tally.not_persisted,
        tally.possibly_persisted,
        tally.undecided(settings.records),
        tally.elapsed.as_millis(),
        counters.retries,
        counters.epoch_bumps,
        counters.producer_ids,
    );
    let code = if let Some(e) = authentication_error(&producer) {
        error!(
            "authentication failed, exiting with status 3: {}",
            defmt::Display2Format(&e)
        );
        3
    } else if let Some(failure) = producer.client().tls_error() {
        error!(
            "TLS failed ({}), exiting with status 4: {}",
            failure,
            defmt::Display2Format(&failure)
        );
        4
    } else if tally.persisted == settings.records {
        0
    } else {
        2
    };
    stack::report("the run");
    semihosting::process::exit(code)
}

/// Why SASL authentication failed, once it has (never without SASL).
fn authentication_error(producer: &GatewayProducer) -> Option<transport_embassy::SaslError> {
    #[cfg(feature = "scram")]
    return producer.authentication_error();
    #[cfg(not(feature = "scram"))]
    {
        let _ = producer;
        None
    }
}

/// Puts every connection of `producer` over TLS (`security` is `SSL` or `SASL_SSL`), with
/// the CA of `ca=`, and starts the sessions' runner in its own task. Exits with status 1 if
/// that cannot be done.
#[cfg(feature = "tls")]
fn with_tls(
    producer: GatewayProducer,
    security: Security,
    settings: &Settings,
    spawner: Spawner,
) -> GatewayProducer {
    use transport_embassy::tls::SecurityProtocol;

    let Some(ca) = settings.ca else {
        fail("security_protocol=SSL and SASL_SSL need ca= (the brokers' CA, DER in hex)")
    };
    // The key shares' generator; with SASL `configure_sasl` seeded it already.
    match settings.entropy_seed {
        Some(seed) if !security.sasl() => entropy::seed(seed),
        Some(_) => {}
        None => fail(
            "security_protocol=SSL|SASL_SSL: give entropy_seed= (64 hex digits, fresh per \
             boot): this board has no TRNG to seed the key shares' RNG from",
        ),
    }
    let (links, runner) = match tls::setup(ca) {
        Ok(tls) => tls,
        Err(e) => {
            error!("TLS not usable: {}", e);
            semihosting::process::exit(1)
        }
    };
    let protocol = if security.sasl() {
        SecurityProtocol::SaslSsl
    } else {
        SecurityProtocol::Ssl
    };
    let wires = links.wires();
    let producer = match producer.with_tls(protocol, links) {
        Ok(p) => p,
        Err(e) => {
            error!("TLS not usable: {}", defmt::Display2Format(&e));
            semihosting::process::exit(1)
        }
    };
    match tls::run(runner, wires) {
        Ok(token) => spawner.spawn(token),
        Err(_) => fail("TLS task already running"),
    }
    info!(
        "tls: TLS 1.3, CA of {=usize} bytes, broker name {=str}",
        ca.len() / 2,
        settings
            .host
            .unwrap_or("10.0.2.2 (no host=: an IP literal no certificate names)")
    );
    producer
}

#[cfg(not(feature = "tls"))]
fn with_tls(_: GatewayProducer, _: Security, _: &Settings, _: Spawner) -> GatewayProducer {
    fail("security_protocol=SSL|SASL_SSL: this firmware was built without the tls feature")
}

/// `bench=scram`: times one SCRAM-SHA-512 exchange and exits (0, or 1 if it went wrong).
fn bench() -> ! {
    #[cfg(feature = "scram")]
    semihosting::process::exit(if bench::scram() { 0 } else { 1 });
    #[cfg(not(feature = "scram"))]
    fail("bench=scram: this firmware was built without the scram feature")
}

/// `bench=tls`: times a TLS handshake's P-256 operations and exits (0, or 1 if one went
/// wrong).
fn bench_tls() -> ! {
    #[cfg(feature = "tls")]
    semihosting::process::exit(if bench_tls::tls() { 0 } else { 1 });
    #[cfg(not(feature = "tls"))]
    fail("bench=tls: this firmware was built without the tls feature")
}

/// Sets the client's SASL mechanism and credentials from the settings, and the entropy
/// source its SCRAM nonces come from (seeded here). Without `sasl=` the connections stay
/// unauthenticated, and credentials without it are refused rather than ignored.
fn configure_sasl(client: &mut ClientConfig<'_>, settings: &Settings) -> Result<(), &'static str> {
    let Some(sasl) = settings.sasl else {
        if settings.username.is_some() || settings.password.is_some() {
            return Err("username= or password= given without sasl=");
        }
        return Ok(());
    };
    #[cfg(feature = "scram")]
    {
        use settings::SaslSetting;
        use transport_embassy::Entropy;
        use transport_embassy::Mechanism;

        let (Some(username), Some(password)) = (settings.username, settings.password) else {
            return Err("sasl= needs username= and password=");
        };
        let Some(seed) = settings.entropy_seed else {
            return Err(
                "sasl=scram-*: give entropy_seed= (64 hex digits, fresh per boot): this board \
                 has no TRNG to seed the nonces' RNG from",
            );
        };
        entropy::seed(seed);
        client.entropy = Some(Entropy(entropy::fill));
        client.sasl = Some(match sasl {
            SaslSetting::ScramSha256 => Mechanism::ScramSha256 { username, password },
            SaslSetting::ScramSha512 => Mechanism::ScramSha512 { username, password },
        });
        info!("sasl: {=str} as user {=str}", sasl.name(), username);
        Ok(())
    }
    #[cfg(not(feature = "scram"))]
    {
        let _ = (client, sasl);
        Err("sasl=: this firmware was built without the scram feature")
    }
}

/// Record outcomes counted so far.
#[derive(Default)]
struct Tally {
    persisted: u32,
    not_persisted: u32,
    possibly_persisted: u32,
    /// From the first record to the last outcome.
    elapsed: Duration,
}

impl Tally {
    fn count(&mut self, delivery: &RecordDelivery) {
        match delivery.outcome.kind() {
            OutcomeKind::Persisted => self.persisted += 1,
            OutcomeKind::NotPersisted => self.not_persisted += 1,
            OutcomeKind::PossiblyPersisted => self.possibly_persisted += 1,
        }
    }

    fn undecided(&self, records: u32) -> u32 {
        records - (self.persisted + self.not_persisted + self.possibly_persisted).min(records)
    }
}

/// Produces `settings.records` readings, each with its own deadline, and takes every outcome.
async fn produce(producer: &mut GatewayProducer, settings: &Settings) -> Tally {
    let mut tally = Tally::default();
    let mut watch = Watch::default();
    let started = Instant::now();
    let mut last_deadline = started;
    for seq in 0..settings.records {
        let reading = Reading::new(seq);
        let now = Instant::now();
        let record = ProducerRecord {
            topic: settings.topic,
            partition: None,
            key: Some(reading.key.as_bytes()),
            value: Some(reading.value.as_bytes()),
            headers: &[],
            // The producer stamps the wall clock it was told (`set_wall_clock` above), or no
            // timestamp at all without one.
            timestamp: None,
        };
        last_deadline = now + settings.deadline;
        match producer.send(&record, last_deadline).await {
            Ok(_) => {}
            Err(Error::Stopped(reason)) => {
                // For good (refused credentials, or the broker refused the producer): this
                // record and the rest are never sent. (The reason's message, which says what
                // to change, ends the run: see `main`.)
                error!("producer stopped at record {=u32}: {}", seq, reason);
                tally.not_persisted += settings.records - seq;
                break;
            }
            Err(e) => {
                // Never accepted: certainly not in the log.
                warn!("record {=u32} refused: {}", seq, e);
                tally.not_persisted += 1;
            }
        }
        while let Some(delivery) = producer.poll_delivery() {
            tally.count(&delivery);
        }
        watch.check(producer.counters());
        if (seq + 1) % PROGRESS_EVERY == 0 {
            info!(
                "progress sent={=u32} persisted={=u32} not_persisted={=u32} \
                 possibly_persisted={=u32} retries={=u64}",
                seq + 1,
                tally.persisted,
                tally.not_persisted,
                tally.possibly_persisted,
                producer.counters().retries
            );
        }
    }
    // Every record is decided by its own deadline, the last of which is `last_deadline`.
    let decided = producer
        .flush(last_deadline + Duration::from_millis(100))
        .await;
    while let Some(delivery) = producer.poll_delivery() {
        tally.count(&delivery);
    }
    watch.check(producer.counters());
    if !decided {
        warn!("flush: some records still undecided");
    }
    tally.elapsed = started.elapsed();
    tally
}

/// Notices when the producer fenced (bumped its epoch or fetched a new producer id) and logs
/// it once. Resends after a lost connection show in the progress lines' `retries`, and the
/// connections themselves in the transport's log.
#[derive(Default)]
struct Watch {
    fences: u64,
    producer_ids: u64,
}

impl Watch {
    fn check(&mut self, c: Counters) {
        let new_id = self.producer_ids > 0 && c.producer_ids > self.producer_ids;
        if c.fences != self.fences || new_id {
            info!(
                "fenced: fences={=u64} epoch_bumps={=u64} producer_ids={=u64}",
                c.fences, c.epoch_bumps, c.producer_ids
            );
        }
        self.fences = c.fences;
        self.producer_ids = c.producer_ids;
    }
}

/// Logs `why` and exits with status 1.
fn fail(why: &str) -> ! {
    error!("{=str}", why);
    semihosting::process::exit(1)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    error!("panic: {}", defmt::Display2Format(info));
    semihosting::process::exit(101)
}

/// Every interrupt without its own handler lands here; the only one enabled is the LAN9118's.
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == lan9118::IRQ as i16 {
        lan9118::on_interrupt();
    } else {
        panic!("unexpected exception or interrupt {}", irqn);
    }
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    error!("hard fault at pc {=u32:#010x}", frame.pc());
    semihosting::process::exit(101)
}
