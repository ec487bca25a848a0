//! Part 1: deadline honouring, ours against librdkafka, with the plot.

use super::*;

const DEADLINE: Duration = Duration::from_secs(1);
/// How long after the deadline a trial waits for an outcome before calling it "none by cap".
const CAP: Duration = Duration::from_secs(5);
const LATENCY_TOPIC: &str = "bench-latency";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Situation {
    Refuses,
    Silent,
    Stalls,
}

impl Situation {
    fn name(self) -> &'static str {
        match self {
            Situation::Refuses => "refuses connections",
            Situation::Silent => "accepts, never answers",
            Situation::Stalls => "answers, then stalls mid-stream",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Ours(UnknownOutcome),
    Librdkafka,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Ours(UnknownOutcome::FailAndFence) => "ours, FailAndFence",
            Side::Ours(_) => "ours, Wait",
            Side::Librdkafka => "librdkafka 2.12",
        }
    }
}

/// One trial: milliseconds from the deadline to the outcome (negative: before it), `None` when
/// no outcome came within the cap; and what the caller was told.
struct Trial {
    late_ms: Option<f64>,
    outcome: String,
}

fn ms_since(deadline: Instant, at: Instant) -> f64 {
    if at >= deadline {
        (at - deadline).as_secs_f64() * 1e3
    } else {
        -(deadline - at).as_secs_f64() * 1e3
    }
}

/// The broker of one situation, and how to reach it.
struct Fixture {
    situation: Situation,
    silent: Option<SilentListener>,
    stall: Option<(ChaosProxy, Tansu)>,
}

impl Fixture {
    fn start(situation: Situation) -> Fixture {
        let mut f = Fixture {
            situation,
            silent: None,
            stall: None,
        };
        match situation {
            Situation::Refuses => {}
            Situation::Silent => f.silent = Some(SilentListener::start()),
            Situation::Stalls => {
                let broker_port = free_port();
                let proxy = ChaosProxy::start(
                    SocketAddr::from(([127, 0, 0, 1], broker_port)),
                    ProxyMode::Pass,
                    1,
                );
                let tansu = Tansu::start_on(broker_port, proxy.port());
                tansu.create_topic(LATENCY_TOPIC, 1);
                f.stall = Some((proxy, tansu));
            }
        }
        f
    }

    fn bootstrap(&self) -> String {
        match (&self.silent, &self.stall) {
            (Some(s), _) => s.address(),
            (_, Some((proxy, _))) => proxy.address(),
            _ => refusing_address(),
        }
    }

    fn proxy(&self) -> Option<&ChaosProxy> {
        self.stall.as_ref().map(|(p, _)| p)
    }
}

fn ours_trial(fixture: &Fixture, policy: UnknownOutcome) -> Trial {
    let mut config = ProducerConfig::new([fixture.bootstrap()], [LATENCY_TOPIC]);
    config.client.producer.unknown_outcome = policy;
    let mut producer = Producer::new(config).expect("valid configuration");
    if let Some(proxy) = fixture.proxy() {
        // Warm up: the connection, the producer id and a few acknowledged batches.
        let until = Instant::now() + Duration::from_secs(10);
        for _ in 0..20 {
            let _ = producer.send(&ProducerRecord::value(LATENCY_TOPIC, b"warm-up"), until);
        }
        producer.flush(until);
        while producer.poll_delivery().is_some() {}
        proxy.set_mode(ProxyMode::StallProduce);
    }
    let deadline = Instant::now() + DEADLINE;
    let trial = match producer.send(
        &ProducerRecord::value(LATENCY_TOPIC, &[7; VALUE_LEN]),
        deadline,
    ) {
        Err(e) => Trial {
            late_ms: Some(ms_since(deadline, Instant::now())),
            outcome: match e {
                Error::Deadline(e) => format!("send returned Deadline({e:?})"),
                other => format!("send returned {other}"),
            },
        },
        Ok(_) => loop {
            if let Some(d) = producer.poll_delivery() {
                break Trial {
                    late_ms: Some(ms_since(deadline, Instant::now())),
                    outcome: outcome_label(&d.outcome),
                };
            }
            let left = (deadline + CAP).saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Trial {
                    late_ms: None,
                    outcome: "no outcome by the cap".into(),
                };
            }
            producer.poll(left.min(Duration::from_millis(20)));
        },
    };
    if let Some(proxy) = fixture.proxy() {
        proxy.set_mode(ProxyMode::Pass);
    }
    trial
}

/// Records when the (one) delivery report of interest reached the application.
#[derive(Default)]
struct LatencyContext {
    done: Mutex<Option<(Instant, String)>>,
}

impl ClientContext for LatencyContext {}

impl ProducerContext for LatencyContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let label = match result {
            Ok(_) => "Persisted".to_string(),
            Err((e, message)) => {
                // SAFETY: the message is alive for the duration of the callback.
                let status = unsafe { rdkafka::bindings::rd_kafka_message_status(message.ptr()) };
                let status = match status {
                    rdkafka::bindings::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED => {
                        "NotPersisted"
                    }
                    rdkafka::bindings::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_PERSISTED => {
                        "Persisted"
                    }
                    _ => "PossiblyPersisted",
                };
                format!("{} (status {status})", kafka_error_label(e))
            }
        };
        *self.done.lock().unwrap() = Some((Instant::now(), label));
    }
}

fn kafka_error_label(e: &KafkaError) -> String {
    e.rdkafka_error_code()
        .map_or_else(|| e.to_string(), |c| format!("{c:?}"))
}

fn librdkafka_trial(fixture: &Fixture) -> Trial {
    let producer: BaseProducer<LatencyContext> = ClientConfig::new()
        .set("bootstrap.servers", fixture.bootstrap())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "1000")
        .set("log_level", "0")
        .create_with_context(LatencyContext::default())
        .expect("librdkafka producer");
    let proxy = fixture.proxy();
    if let Some(proxy) = proxy {
        for _ in 0..20 {
            let _ = producer.send(BaseRecord::<(), [u8]>::to(LATENCY_TOPIC).payload(b"warm-up"));
        }
        let _ = producer.flush(Duration::from_secs(5));
        producer.context().done.lock().unwrap().take();
        proxy.set_mode(ProxyMode::StallProduce);
    }
    let value = [7u8; VALUE_LEN];
    let deadline = Instant::now() + DEADLINE;
    let trial = match producer.send(BaseRecord::<(), [u8]>::to(LATENCY_TOPIC).payload(&value)) {
        Err((e, _)) => Trial {
            late_ms: Some(ms_since(deadline, Instant::now())),
            outcome: format!("produce() returned {}", kafka_error_label(&e)),
        },
        Ok(()) => loop {
            producer.poll(Duration::from_millis(10));
            if let Some((at, label)) = producer.context().done.lock().unwrap().take() {
                break Trial {
                    late_ms: Some(ms_since(deadline, at)),
                    outcome: label,
                };
            }
            if Instant::now() >= deadline + CAP {
                break Trial {
                    late_ms: None,
                    outcome: "no outcome by the cap".into(),
                };
            }
        },
    };
    if let Some(proxy) = proxy {
        proxy.set_mode(ProxyMode::Pass);
    }
    trial
}

struct Series {
    situation: Situation,
    side: Side,
    trials: Vec<Trial>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Measures the part and writes its section.
pub(crate) fn run() {
    let trials = env_usize("BENCH_TRIALS", 20);
    let sides = [
        Side::Ours(UnknownOutcome::FailAndFence),
        Side::Ours(UnknownOutcome::Wait),
        Side::Librdkafka,
    ];
    let mut all = Vec::new();
    for situation in [Situation::Refuses, Situation::Silent, Situation::Stalls] {
        let fixture = Fixture::start(situation);
        for side in sides {
            eprintln!(
                "bench latency: {} / {}: {trials} trials",
                situation.name(),
                side.name()
            );
            let results = (0..trials)
                .map(|_| match side {
                    Side::Ours(policy) => ours_trial(&fixture, policy),
                    Side::Librdkafka => librdkafka_trial(&fixture),
                })
                .collect();
            all.push(Series {
                situation: fixture.situation,
                side,
                trials: results,
            });
        }
    }
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Deadline honouring\n\n\
         Time from a record's 1 s deadline to its outcome reaching the caller (ms; negative: \
         before the deadline), {trials} trials per row, each with a fresh producer. A trial \
         waits at most {} s past the deadline; \"no outcome\" counts the trials that got none \
         by then (they are left out of the distribution). librdkafka: \
         `enable.idempotence=true`, `message.timeout.ms=1000`; its outcome is the delivery \
         report's error and `rd_kafka_message_status`. Ours under \"refuses\" and \"never \
         answers\": no metadata ever arrives, so `send` itself returns the deadline error \
         (the record was never accepted, so never sent). \"answers, then stalls\": tansu \
         behind a proxy that, after 20 acknowledged warm-up records, holds every produce \
         response. Percentiles are nearest-rank (with 20 trials p99 \
         is the maximum). Plot: `BENCHMARKS-latency.png` (log scale; outcomes within 0.1 ms \
         of the deadline are drawn at 0.1).\n",
        CAP.as_secs()
    );
    md.push_str(
        "| broker | producer | min | median | p99 | max | no outcome | outcomes reported |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for s in &all {
        let mut late: Vec<f64> = s.trials.iter().filter_map(|t| t.late_ms).collect();
        late.sort_by(f64::total_cmp);
        let none = s.trials.len() - late.len();
        let stat = |f: &dyn Fn(&[f64]) -> f64| {
            if late.is_empty() {
                "–".to_string()
            } else {
                format!("{:.2}", f(&late))
            }
        };
        let mut outcomes: Vec<(String, usize)> = Vec::new();
        for t in &s.trials {
            match outcomes.iter_mut().find(|(o, _)| *o == t.outcome) {
                Some((_, n)) => *n += 1,
                None => outcomes.push((t.outcome.clone(), 1)),
            }
        }
        let outcomes: Vec<String> = outcomes
            .iter()
            .map(|(o, n)| format!("{n}× `{o}`"))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {none} | {} |",
            s.situation.name(),
            s.side.name(),
            stat(&|v| v[0]),
            stat(&|v| percentile(v, 0.5)),
            stat(&|v| percentile(v, 0.99)),
            stat(&|v| v[v.len() - 1]),
            outcomes.join(", ")
        );
    }
    let png = workspace_root().join("BENCHMARKS-latency.png");
    match plot(&all, &png) {
        Ok(()) => eprintln!("bench latency: plot written to {}", png.display()),
        Err(e) => {
            eprintln!("bench latency: no plot: {e}");
            let _ = writeln!(md, "\n(no plot this run: {e})");
        }
    }
    write_section("latency", &md);
}

/// Draws one panel per situation: each trial a dot at its lateness (log scale, 0.1 ms to the
/// cap; earlier than 0.1 ms past the deadline is drawn at 0.1), one row per producer; trials
/// with no outcome by the cap are red crosses at the right edge.
fn plot(all: &[Series], path: &std::path::Path) -> Result<(), String> {
    use plotters::prelude::*;
    let font_path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    let font = std::fs::read(font_path).map_err(|e| format!("cannot read {font_path}: {e}"))?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into()))
        .map_err(|_| "font not usable".to_string())?;
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = BitMapBackend::new(path, (1500, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(
            "Time from the 1 s deadline to the outcome (ms, log scale); red x: no outcome by the cap",
            ("sans-serif", 20),
        )
        .map_err(|e| err(&e))?;
    let panels = root.split_evenly((1, 3));
    let cap_ms = CAP.as_secs_f64() * 1e3;
    let colors = [BLUE, RGBColor(0, 150, 0), MAGENTA];
    for (panel, situation) in
        panels
            .iter()
            .zip([Situation::Refuses, Situation::Silent, Situation::Stalls])
    {
        let mut chart = ChartBuilder::on(panel)
            .caption(situation.name(), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(140)
            .build_cartesian_2d((0.1f64..cap_ms * 1.5).log_scale(), -0.5f64..2.5f64)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .y_labels(3)
            .disable_y_mesh()
            .y_label_formatter(&|y| {
                let i = y.round() as i64;
                if (y - i as f64).abs() > 0.01 {
                    return String::new();
                }
                match i {
                    0 => "librdkafka".into(),
                    1 => "ours, Wait".into(),
                    2 => "ours, FailAndFence".into(),
                    _ => String::new(),
                }
            })
            .x_desc("ms after the deadline")
            .x_label_formatter(&|x| format!("{x}"))
            .draw()
            .map_err(|e| err(&e))?;
        for s in all.iter().filter(|s| s.situation == situation) {
            let row = match s.side {
                Side::Ours(UnknownOutcome::FailAndFence) => 2.0,
                Side::Ours(_) => 1.0,
                Side::Librdkafka => 0.0,
            };
            let color = colors[row as usize];
            let n = s.trials.len().max(1) as f64;
            let dots = s.trials.iter().enumerate().filter_map(|(i, t)| {
                t.late_ms.map(|ms| {
                    let y = row - 0.3 + 0.6 * i as f64 / n;
                    Circle::new((ms.max(0.1), y), 4, color.filled())
                })
            });
            chart.draw_series(dots).map_err(|e| err(&e))?;
            let crosses = s
                .trials
                .iter()
                .enumerate()
                .filter(|(_, t)| t.late_ms.is_none())
                .map(|(i, _)| {
                    let y = row - 0.3 + 0.6 * i as f64 / n;
                    Cross::new((cap_ms * 1.2, y), 5, RED.stroke_width(2))
                });
            chart.draw_series(crosses).map_err(|e| err(&e))?;
        }
    }
    root.present().map_err(|e| err(&e))
}
