//! `peak_rss OUT PROGRAM [ARGS...]`: runs PROGRAM (stdio inherited), waits for it with
//! `wait4`, writes `MAXRSS_KIB USER_MS SYSTEM_MS` of that child alone to OUT, and exits with
//! its exit code (128 + the signal that ended it).
//!
//! Why a process of its own: Linux folds the memory of the process that forks (and execs) a
//! child into the child's `ru_maxrss` (`exec` records the old address space's high-water
//! mark), so a test process with a fake broker's buffers would inflate every figure it
//! measured itself. This helper is small, so what it measures is the program's own peak.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, program, rest @ ..] = &args[..] else {
        eprintln!("usage: peak_rss OUT PROGRAM [ARGS...]");
        return ExitCode::from(125);
    };
    let child = match Command::new(program).args(rest).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("peak_rss: cannot run {program}: {e}");
            return ExitCode::from(126);
        }
    };
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our unreaped child; status and usage point to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            eprintln!("peak_rss: wait4: {}", std::io::Error::last_os_error());
            return ExitCode::from(125);
        }
    }
    let ms = |t: libc::timeval| t.tv_sec * 1000 + t.tv_usec / 1000;
    let line = format!(
        "{} {} {}\n",
        usage.ru_maxrss,
        ms(usage.ru_utime),
        ms(usage.ru_stime)
    );
    if let Err(e) = std::fs::write(out, line) {
        eprintln!("peak_rss: {out}: {e}");
        return ExitCode::from(125);
    }
    if libc::WIFEXITED(status) {
        ExitCode::from(libc::WEXITSTATUS(status) as u8)
    } else {
        ExitCode::from((128 + libc::WTERMSIG(status)) as u8)
    }
}
