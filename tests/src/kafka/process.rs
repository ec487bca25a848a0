//! The JVMs the fixture starts: owned by one long-lived thread so that they die with the test
//! process, and what killed runs left behind, found and removed.

use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::AtomicU32;
use std::sync::{Mutex, OnceLock, mpsc};
use std::thread;

/// Starts `command` from a thread that lives as long as the process, with the child set to
/// be SIGKILLed when that thread (so the process) dies: a test that panics, is killed or
/// exits leaves no broker running. (`PR_SET_PDEATHSIG` follows the thread that forked, which
/// is why one thread does every fork.)
pub fn spawn_owned(command: Command) -> io::Result<Child> {
    type Job = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("kafka-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    // SAFETY: prctl only changes this child's own death signal; it is
                    // async-signal-safe, as a pre_exec hook requires.
                    unsafe {
                        command.pre_exec(|| {
                            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                                return Err(io::Error::last_os_error());
                            }
                            Ok(())
                        });
                    }
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("spawn the spawner thread");
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap()
        .send((command, tx))
        .map_err(|_| io::Error::other("spawner thread gone"))?;
    rx.recv()
        .map_err(|_| io::Error::other("spawner thread gone"))?
}

/// Where clusters live: `TMP/kp-kafka-PID-N`.
pub(super) const DIR_PREFIX: &str = "kp-kafka-";

pub(super) static NEXT_CLUSTER: AtomicU32 = AtomicU32::new(0);

/// Removes cluster directories of processes that no longer exist, SIGKILLing any JVM still
/// running from one (its command line names the directory).
pub(super) fn remove_leftovers() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(DIR_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        kill_jvms_under(&dir);
        let _ = fs::remove_dir_all(&dir);
    }
}

/// SIGKILLs processes whose command line mentions `dir`.
pub(super) fn kill_jvms_under(dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(procs) = fs::read_dir("/proc") else {
        return;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let cmdline = fs::read(p.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            // SAFETY: kill on a pid; a pid that went away makes it fail harmlessly.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// A fresh Kafka cluster id: 16 random bytes, base64url without padding, as Kafka's
/// `Uuid.toString` writes them.
pub(super) fn cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes: [u8; 16] = rand::random();
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = String::new();
    for b in bytes {
        bits = (bits << 8) | u32::from(b);
        n += 8;
        while n >= 6 {
            n -= 6;
            out.push(ALPHABET[((bits >> n) & 63) as usize] as char);
        }
    }
    if n > 0 {
        out.push(ALPHABET[((bits << (6 - n)) & 63) as usize] as char);
    }
    out
}
