//! Kafka's own Java clients, as a reference the producer under test has no part in: the
//! console producer and consumer of `kafka-tools`, from the broker's classpath, with a
//! client settings file (`--command-config`), e.g. SASL's ([`java_client_properties`]).

use std::fs;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::sasl::{SaslMechanism, SaslUser};
use super::{Kafka, spawn_owned};

/// Sizing of a client JVM: a small heap, the quick compiler only (it starts sooner).
const CLIENT_JVM: &[&str] = &["-Xmx256m", "-Xms32m", "-XX:TieredStopAtLevel=1"];

/// A Java client's settings (`--command-config` of Kafka's console tools) for `mechanism`
/// as `user`: SASL_PLAINTEXT, the mechanism, and a `sasl.jaas.config` with the user's
/// credentials (OAUTHBEARER: the client's own unsecured token, subject `user.name`).
pub fn java_client_properties(mechanism: SaslMechanism, user: &SaslUser) -> String {
    let options = match mechanism {
        SaslMechanism::OAuthBearer => format!("unsecuredLoginStringClaim_sub=\"{}\"", user.name),
        _ => format!("username=\"{}\" password=\"{}\"", user.name, user.password),
    };
    format!(
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism={}\nsasl.jaas.config={} required {options};\n",
        mechanism.name(),
        mechanism.login_module()
    )
}

/// What one run of a console client did. Its output has the cluster's passwords hidden;
/// the client's own log is in `dir`.
#[derive(Debug)]
pub struct ClientRun {
    /// It exited with status 0 before its time was up.
    pub success: bool,
    /// It ran out of time and was killed.
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// Its settings file, log (`client.log`) and working directory.
    pub dir: PathBuf,
}

impl ClientRun {
    /// The record values a console consumer printed, one per line.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().filter(|l| !l.is_empty()).collect()
    }

    /// Everything it printed and logged, for a failure message.
    pub fn report(&self) -> String {
        let log = fs::read_to_string(self.dir.join("client.log")).unwrap_or_default();
        let from = log.len().saturating_sub(6000);
        let from = (from..log.len())
            .find(|&i| log.is_char_boundary(i))
            .unwrap_or(0);
        format!(
            "success {}, timed out {}, {:.1} s, in {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- client.log (tail) ---\n{}",
            self.success,
            self.timed_out,
            self.elapsed.as_secs_f64(),
            self.dir.display(),
            self.stdout,
            self.stderr,
            &log[from..]
        )
    }
}

impl Kafka {
    /// Kafka's console producer (`org.apache.kafka.tools.ConsoleProducer`) to `bootstrap`
    /// with the client settings `properties`: writes each of `values` as a record of
    /// `topic` (acks=all, one request each), then closes its input and waits for it to exit
    /// (killed after `timeout`).
    pub fn console_produce(
        &self,
        bootstrap: &str,
        topic: &str,
        properties: &str,
        values: &[&str],
        timeout: Duration,
    ) -> ClientRun {
        let input: String = values.iter().map(|v| format!("{v}\n")).collect();
        let args = [
            "org.apache.kafka.tools.ConsoleProducer",
            "--topic",
            topic,
            "--sync",
            // Its linger (1 s by default): each record would wait that long.
            "--timeout",
            "0",
            "--request-required-acks",
            "all",
            "--max-block-ms",
            &timeout.as_millis().to_string(),
        ];
        self.console_client("produce", bootstrap, properties, &args, &input, timeout)
    }

    /// Kafka's console consumer (`org.apache.kafka.tools.consumer.ConsoleConsumer`) from
    /// `bootstrap` with the client settings `properties`: reads `topic` from the beginning
    /// until it has `count` records or `timeout` passes; the values are
    /// [`ClientRun::lines`].
    pub fn console_consume(
        &self,
        bootstrap: &str,
        topic: &str,
        properties: &str,
        count: usize,
        timeout: Duration,
    ) -> ClientRun {
        let args = [
            "org.apache.kafka.tools.consumer.ConsoleConsumer",
            "--topic",
            topic,
            "--partition",
            "0",
            "--offset",
            "earliest",
            "--max-messages",
            &count.to_string(),
            "--timeout-ms",
            &timeout.as_millis().to_string(),
        ];
        // The consumer's own timeout counts from its last record; the kill comes later.
        let kill_after = timeout + Duration::from_secs(20);
        self.console_client("consume", bootstrap, properties, &args, "", kill_after)
    }

    fn console_client(
        &self,
        kind: &str,
        bootstrap: &str,
        properties: &str,
        args: &[&str],
        input: &str,
        timeout: Duration,
    ) -> ClientRun {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = self
            .dir
            .join("clients")
            .join(format!("{kind}-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let settings = dir.join("client.properties");
        fs::write(&settings, properties).expect("write client settings");
        let mut command = self.java_sized(&dir, CLIENT_JVM);
        // The fixture's log4j2 configuration writes to `broker.log` of the given directory.
        command
            .args(args)
            .arg("--bootstrap-server")
            .arg(bootstrap)
            .arg("--command-config")
            .arg(&settings)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = spawn_owned(command).unwrap_or_else(|e| panic!("cannot start java: {e}"));
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = input.to_string();
        let writer = thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let mut out = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");
        let out = thread::spawn(move || read_all(&mut out));
        let err = thread::spawn(move || read_all(&mut err));
        let mut timed_out = false;
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Some(status);
            }
            if started.elapsed() > timeout {
                timed_out = true;
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(20));
        };
        let _ = writer.join();
        let log = fs::read_to_string(dir.join("broker.log")).unwrap_or_default();
        let _ = fs::write(dir.join("client.log"), self.redact(&log));
        let _ = fs::remove_file(dir.join("broker.log"));
        ClientRun {
            success: status.is_some_and(|s| s.success()),
            timed_out,
            stdout: self.redact(&out.join().unwrap_or_default()),
            stderr: self.redact(&err.join().unwrap_or_default()),
            elapsed: started.elapsed(),
            dir,
        }
    }
}

fn read_all(from: &mut impl Read) -> String {
    let mut bytes = Vec::new();
    let _ = from.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}
