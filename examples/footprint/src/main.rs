//! The smallest firmware that uses the whole producer core (client, sequencer, codec) for one
//! topic with 4 partitions: what a gateway pays in flash and static RAM before its own code and
//! network stack. Built with opt-level "z" and LTO; `cargo xtask bench size` reports its size.
//! It runs nothing useful: bytes that stand in for a socket keep every path of the client
//! reachable, so the linker cannot drop them.
//!
//! With one of the features `plain`, `oauthbearer`, `scram-sha-256` or `scram-sha-512` the
//! client authenticates with that mechanism, and the difference is what it costs.

#![no_std]
#![no_main]

use core::hint::black_box;
use core::panic::PanicInfo;
use producer_core::capacity::Fixed;

use cortex_m_rt::entry;
use producer_core::client::{Client, ClientConfig, ConnId, ProducerRecord};
use producer_core::time::Instant;
use producer_core::wire::{FrameDecoder, FrameStatus};

/// One topic, 4 partitions, 8 batches of 2 KiB, 2 broker connections.
type GatewayClient = Client<&'static mut [u8], Fixed<1, 4, 8, 2>>;

/// Batch size; the buffers below are what `cargo xtask bench size` subtracts from static RAM to
/// report the client's own state (keep them in step with it).
const BATCH_BYTES: usize = 2048;

#[entry]
fn main() -> ! {
    static mut STORAGE: [u8; 8 * BATCH_BYTES] = [0; 8 * BATCH_BYTES];
    static mut TX: [u8; 3 * BATCH_BYTES + 512] = [0; 3 * BATCH_BYTES + 512];
    static mut RX: [u8; 4096] = [0; 4096];
    // SAFETY-free: cortex-m-rt hands `static mut` in `#[entry]` out as `&'static mut` once.
    let storage: &'static mut [u8] = STORAGE;
    let (tx, rx): (&'static mut [u8], &'static mut [u8]) = (TX, RX);

    let mut config = ClientConfig::new("gateway");
    config.batch_bytes = BATCH_BYTES;
    sasl::configure(&mut config);
    // The client lives in a static (placed at run time), so it counts as static RAM, as it
    // would in a firmware that keeps it for its whole life.
    let Ok(client) = GatewayClient::new(config, &["10.0.2.2:9092"], &["sensors"], storage) else {
        loop {
            cortex_m::asm::wfi();
        }
    };
    let Some(client) = cortex_m::singleton!(: GatewayClient = client) else {
        loop {
            cortex_m::asm::wfi();
        }
    };
    let frames = FrameDecoder::new(rx.len() as u32);
    let mut ticks: u64 = 0;
    loop {
        ticks = ticks.wrapping_add(1_000);
        let now = Instant::from_micros(black_box(ticks));
        let value = black_box(b"21.5");
        let record = ProducerRecord {
            topic: "sensors",
            partition: None,
            key: Some(b"sensor-1"),
            value: Some(value),
            headers: &[],
            timestamp: Some(0),
        };
        let _ = black_box(client.send(&record, now + core::time::Duration::from_secs(1), now));
        black_box(client.poll(now));
        if let Some((conn, endpoint)) = client.poll_connect(now) {
            black_box(endpoint.port);
            client.on_connected(conn, now);
        }
        let conn = ConnId(black_box(0));
        if let Some(n) = client.poll_transmit(conn, now, tx) {
            black_box(&tx[..n]);
        }
        // Whatever "arrives" goes through the frame decoder and the client.
        let received = black_box(&rx[..]);
        if let Ok(FrameStatus::Complete { frame, .. }) = frames.decode(received) {
            client.on_frame(conn, now, frame);
        }
        while let Some(d) = client.poll_delivery() {
            black_box(d);
        }
        sasl::drive(client, now);
        if black_box(false) {
            client.on_connection_lost(conn, now);
        }
    }
}

/// The SASL mechanism the features pick, and the calls a firmware makes for it.
mod sasl {
    use super::GatewayClient;
    use core::hint::black_box;
    use producer_core::client::ClientConfig;
    use producer_core::time::Instant;

    #[cfg(any(feature = "scram-sha-256", feature = "scram-sha-512"))]
    fn entropy(out: &mut [u8]) {
        // A firmware reads its hardware RNG here; this build only has to keep the path.
        out.fill(black_box(0x5a));
    }

    pub fn configure(config: &mut ClientConfig<'static>) {
        #[cfg(feature = "plain")]
        {
            config.sasl = Some(producer_core::sasl::Mechanism::Plain {
                username: "gateway",
                password: "secret",
            });
        }
        #[cfg(feature = "oauthbearer")]
        {
            config.sasl = Some(producer_core::sasl::Mechanism::OAuthBearer {
                token: "",
                extensions: &[],
            });
        }
        #[cfg(feature = "scram-sha-256")]
        {
            config.sasl = Some(producer_core::sasl::Mechanism::ScramSha256 {
                username: "gateway",
                password: "secret",
            });
            config.entropy = Some(producer_core::client::Entropy(entropy));
        }
        #[cfg(feature = "scram-sha-512")]
        {
            config.sasl = Some(producer_core::sasl::Mechanism::ScramSha512 {
                username: "gateway",
                password: "secret",
            });
            config.entropy = Some(producer_core::client::Entropy(entropy));
        }
        black_box(config);
    }

    pub fn drive(client: &mut GatewayClient, now: Instant) {
        #[cfg(feature = "oauthbearer")]
        if client.oauth_token_wanted(now) {
            let _ = client.set_oauth_token(black_box("token"), now, None);
        }
        black_box((client, now));
    }
}

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    cortex_m::asm::udf()
}
