//! Kafka's jars: the Maven project that names them, and the cache they are fetched into
//! once.

use std::fs::{self, File};
use std::io::{self};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

/// The Maven project that names Kafka's version and jars.
pub const POM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/kafka/pom.xml");

/// The log4j2 configuration every node uses (one log file per node).
pub const LOG4J2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/kafka/log4j2.properties");

/// The Kafka version `tests/kafka/pom.xml` pins (its `kafka.version` property).
pub fn version() -> String {
    let pom = fs::read_to_string(POM).unwrap_or_else(|e| panic!("read {POM}: {e}"));
    let start = pom
        .find("<kafka.version>")
        .map(|i| i + "<kafka.version>".len());
    let end = pom.find("</kafka.version>");
    match (start, end) {
        (Some(s), Some(e)) if s < e => pom[s..e].trim().to_string(),
        _ => panic!("{POM} has no <kafka.version> property"),
    }
}

/// Where the jars are kept: `$KAFKA_JARS` if set, else
/// `$XDG_CACHE_HOME/gateway-producer/kafka-VERSION` (or `~/.cache/...`).
pub fn jars_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KAFKA_JARS") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache
        .join("gateway-producer")
        .join(format!("kafka-{}", version()))
}

/// The directory of Kafka's jars, fetched by Maven on first use (about 45 MB, seconds on a
/// warm network) and reused by later runs. Needs `java` (17 or newer) and `mvn` on the
/// `PATH`; `cargo xtask test` installs both when missing. Panics with what to do otherwise.
pub fn jars() -> PathBuf {
    static JARS: OnceLock<PathBuf> = OnceLock::new();
    JARS.get_or_init(|| {
        let dir = jars_dir();
        let done = dir.join(".complete");
        if done.exists() {
            return dir;
        }
        let parent = dir.parent().expect("cache directory").to_path_buf();
        fs::create_dir_all(&parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        // Another test process may be fetching too: one at a time.
        let _lock = FileLock::take(&parent.join(".kafka-fetch.lock"));
        if done.exists() {
            return dir;
        }
        let staging = parent.join(format!(".kafka-fetch-{}", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        let started = Instant::now();
        eprintln!(
            "kafka: fetching Apache Kafka {} with Maven into {}",
            version(),
            dir.display()
        );
        let status = Command::new("mvn")
            .args(["-q", "-B", "-Dstyle.color=never", "-f", POM, "dependency:copy-dependencies"])
            .arg(format!("-DoutputDirectory={}", staging.display()))
            .stdin(Stdio::null())
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run mvn ({e}): install Maven (`apt-get install -y maven`) or run `cargo xtask test`, which does")
            });
        assert!(status.success(), "mvn dependency:copy-dependencies for {POM} failed: {status}");
        let _ = fs::remove_dir_all(&dir);
        fs::rename(&staging, &dir)
            .unwrap_or_else(|e| panic!("move {} to {}: {e}", staging.display(), dir.display()));
        File::create(&done).unwrap_or_else(|e| panic!("create {}: {e}", done.display()));
        eprintln!("kafka: fetched in {:.1} s", started.elapsed().as_secs_f64());
        dir
    })
    .clone()
}

/// An exclusive `flock` on a file, released on drop.
pub(super) struct FileLock(File);

impl FileLock {
    pub(super) fn take(path: &Path) -> FileLock {
        let file = File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(
            rc,
            0,
            "flock {}: {}",
            path.display(),
            io::Error::last_os_error()
        );
        FileLock(file)
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as above.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}
