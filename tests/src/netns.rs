//! A private network for tests that drive a user-space TCP/IP stack (embassy-net) over a TAP
//! device: a Linux network namespace of our own, so no test traffic can leave the machine.
//!
//! - [`NetNs`]: a fresh namespace `kp-<pid>-<n>` with `lo` up and a TAP device [`TAP`]
//!   whose kernel side is [`BROKER_IP`]/24. Dropping it kills what still runs in it and
//!   deletes it (which removes the TAP). Needs root and `ip` (iproute2).
//! - [`NetNs::run`]: runs a closure on a thread inside the namespace (`setns` is per
//!   thread; threads started from there inherit it), e.g. to read a topic back with
//!   [`crate::read_back`] from where [`BROKER_IP`] is reachable.
//! - [`NetNs::open_tap`]: the `embassy-net-tuntap` device for [`TAP`], usable from any
//!   thread; [`run_embassy`] runs a future on an embassy std executor of its own.
//! - [`NetNs::start_tansu`]: a tansu broker listening on [`BROKER_IP`] inside the namespace.
//! - [`NetNs::start_kafka`]: Apache Kafka ([`crate::kafka::Kafka`]) likewise, its JVMs run
//!   through `ip netns exec`.
//! - [`NetNs::dns_responder`]: a tiny DNS server on [`BROKER_IP`]:53 answering `A` queries
//!   for configured names (NXDOMAIN otherwise).
//! - [`NetNs::forward`], [`NetNs::run_with_hosts`]: a TCP forwarder and a private
//!   `/etc/hosts`, for a consumer that must reach a broker by an advertised name.
//!
//! Namespaces, TAP devices and mounts are kernel objects a crashed test would leave behind;
//! every one made here is owned by a guard whose `Drop` removes it, panics included, and
//! [`NetNs::new`] deletes namespaces that earlier, killed runs left behind.

mod dns;
mod executor;

pub use dns::dns_answer;
pub use executor::run_embassy;

use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::{create_topic_with, tansu_binary};

/// The TAP device's name inside every [`NetNs`].
pub const TAP: &str = "tap0";
/// The kernel's address on [`TAP`]: where the broker and the DNS responder listen.
pub const BROKER_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 100);
/// The address a user-space stack on [`TAP`] should take (same /24 as [`BROKER_IP`]).
pub const STACK_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 2);
/// Prefix length of the TAP network.
pub const PREFIX_LEN: u8 = 24;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Panics with a clear message unless the process runs as root (namespaces and TAP devices
/// need CAP_SYS_ADMIN and CAP_NET_ADMIN). These tests fail rather than skip: CI runs as root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "this test needs root (it creates a network namespace and a TAP device); it runs as \
         uid {euid}: run it as root, as CI does"
    );
}

/// The `ip` binary (iproute2): on the `PATH`, else in /usr/sbin or /sbin. Panics with the
/// install command when it is missing.
pub fn ip_binary() -> PathBuf {
    static IP: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = IP.get_or_init(|| {
        let on_path = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default();
        on_path
            .into_iter()
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|dir| dir.join("ip"))
            .find(|p| p.is_file())
    });
    found.clone().unwrap_or_else(|| {
        panic!(
            "the `ip` command (iproute2) is missing: install it with \
             `apt-get install -y iproute2` (Debian) and rerun"
        )
    })
}

fn run_ip(args: &[&str]) -> Output {
    Command::new(ip_binary())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip {}: {e}", args.join(" ")))
}

fn ip_ok(args: &[&str]) {
    let out = run_ip(args);
    assert!(
        out.status.success(),
        "ip {} failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Names of the network namespaces `ip netns list` shows.
pub fn list_namespaces() -> Vec<String> {
    let out = run_ip(&["netns", "list"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Deletes `kp-<pid>-<n>` namespaces whose process no longer exists (a run that was killed
/// before its guards could clean up).
fn delete_stale_namespaces() {
    for name in list_namespaces() {
        let Some(pid) = name
            .strip_prefix("kp-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !PathBuf::from(format!("/proc/{pid}")).exists() {
            kill_namespace_processes(&name);
            let _ = run_ip(&["netns", "del", &name]);
        }
    }
}

/// Kills (SIGKILL) every process `ip netns pids` finds in namespace `name`, except this one,
/// and reaps those that are our children.
fn kill_namespace_processes(name: &str) {
    let own = std::process::id() as libc::pid_t;
    for _ in 0..50 {
        let out = run_ip(&["netns", "pids", name]);
        let pids: Vec<libc::pid_t> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|&p| p != own)
            .collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            // SAFETY: plain syscalls on a pid; a pid that is gone or not our child only
            // makes them return an error, which is ignored.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG);
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    eprintln!("netns {name}: processes still running after SIGKILL");
}

/// A network namespace of our own with `lo` up and a TAP device [`TAP`] (kernel side
/// [`BROKER_IP`]/[`PREFIX_LEN`], up; it has no carrier until a process opens it). Dropping it
/// kills what still runs in it and deletes it, which destroys the TAP device.
///
/// Everything started in it through the guards of this module (broker, DNS responder,
/// forwarder) borrows it, so they are stopped before it goes.
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates the namespace and its TAP device. Panics, with what to do, if not root, if
    /// `ip` is missing, or if a step fails (whatever was made is removed again).
    pub fn new() -> NetNs {
        require_root();
        ip_binary();
        delete_stale_namespaces();
        let name = format!(
            "kp-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip_ok(&["netns", "add", &name]);
        // From here on, Drop deletes it even if a later step panics.
        let ns = NetNs { name };
        let n = ns.name.as_str();
        ip_ok(&["-n", n, "link", "set", "lo", "up"]);
        let tuntap = run_ip(&["-n", n, "tuntap", "add", "dev", TAP, "mode", "tap"]);
        assert!(
            tuntap.status.success(),
            "ip -n {n} tuntap add dev {TAP} mode tap failed ({}): {} (is /dev/net/tun there? \
             `modprobe tun`)",
            tuntap.status,
            String::from_utf8_lossy(&tuntap.stderr).trim()
        );
        let cidr = format!("{BROKER_IP}/{PREFIX_LEN}");
        ip_ok(&["-n", n, "addr", "add", &cidr, "dev", TAP]);
        ip_ok(&["-n", n, "link", "set", TAP, "up"]);
        ns
    }

    /// Its name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn file(&self) -> File {
        namespace_file(&self.name)
    }

    /// Moves the calling thread into the namespace (`setns` is per thread: only this thread
    /// and the threads it starts afterwards are inside).
    fn enter(file: &File) {
        // SAFETY: `file` is an open nsfs file; setns only changes this thread's namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", io::Error::last_os_error());
    }

    /// Runs `f` on a new thread inside the namespace and returns its result (a panic in `f`
    /// is resumed here). Threads `f` starts are inside too; sockets it creates stay bound to
    /// the namespace wherever they are used.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        run_in_namespace(&self.name, f)
    }

    /// Starts Apache Kafka inside the namespace: `nodes` nodes listening on [`BROKER_IP`],
    /// the first node's `CLIENT` listener on `port` (the others on free ports), advertising
    /// `advertised` for the first node when given. The cluster must be dropped before the
    /// namespace (it borrows nothing, so keep the order of declaration: namespace first).
    ///
    /// Every connection to [`BROKER_IP`] made inside the namespace (Kafka's own controller
    /// and inter-broker connections, the fixture's admin client, a consumer run with
    /// [`NetNs::run`]) is local traffic, which Linux carries over `lo`: with `lo` down such a
    /// connection hangs (a connect to the TAP's own address times out), so not even a
    /// broker's registration with its own controller gets through. [`NetNs::new`] brings
    /// `lo` up.
    pub fn start_kafka(
        &self,
        nodes: usize,
        port: u16,
        advertised: Option<&str>,
    ) -> crate::kafka::Kafka {
        let mut ports = vec![port];
        ports.extend((1..nodes).map(|_| crate::free_port()));
        let mut builder = crate::kafka::Kafka::builder(nodes)
            .in_namespace(&self.name, BROKER_IP)
            .client_ports(ports.clone());
        if let Some(a) = advertised {
            let mut all = vec![a.to_string()];
            all.extend(ports[1..].iter().map(|p| format!("{BROKER_IP}:{p}")));
            builder = builder.advertised(all);
        }
        builder.start()
    }

    /// Starts a detached thread inside the namespace; the caller must make it end before
    /// the namespace is dropped (the guards below join theirs on drop).
    fn spawn<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let file = self.file();
        thread::Builder::new()
            .name(format!("{what}-{}", self.name))
            .spawn(move || {
                Self::enter(&file);
                drop(file);
                f()
            })
            .expect("spawn thread")
    }

    /// Like [`NetNs::run`], with `hosts` as `/etc/hosts` for `f` and the threads it starts
    /// (e.g. librdkafka's broker threads resolving an advertised name): the thread also gets
    /// a mount namespace of its own (`unshare(CLONE_NEWNS)`, `/` made a slave so nothing
    /// propagates back, as `ip netns exec` does) with a file bind-mounted over /etc/hosts.
    /// The mount goes away with the last thread using it.
    pub fn run_with_hosts<T: Send>(
        &self,
        hosts: &[(&str, Ipv4Addr)],
        f: impl FnOnce() -> T + Send,
    ) -> T {
        let path = std::env::temp_dir().join(format!("{}-hosts", self.name));
        let mut text = String::from("127.0.0.1\tlocalhost\n");
        for (name, ip) in hosts {
            text.push_str(&format!("{ip}\t{name}\n"));
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        struct Remove(PathBuf);
        impl Drop for Remove {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
        let _remove = Remove(path.clone());
        self.run(move || {
            private_hosts_file(&path);
            f()
        })
    }

    /// The `embassy-net-tuntap` device for [`TAP`], opened from inside the namespace. The
    /// file descriptor stays bound to this namespace's device; the device can be driven from
    /// any thread. Close it (drop the embassy-net runner) before the namespace is dropped,
    /// or the kernel keeps the namespace alive (unnamed) until the process exits.
    ///
    /// A test that opens the TAP again (a device's second life) may find the kernel still
    /// releasing the first file (seen once under load: EBUSY right after the first life's
    /// stack was dropped): it tries again for up to 5 s.
    ///
    /// embassy-net-tuntap opens `/dev/net/tun` without `O_CLOEXEC`, so a child that another
    /// test spawned while the device was open (a Kafka or tansu broker) inherited the file
    /// and kept the TAP attached for its whole life: the second life met EBUSY for longer
    /// than any retry (a fresh-clone CI run). The file is marked close-on-exec as soon as it
    /// is opened.
    pub fn open_tap(&self) -> embassy_net_tuntap::TunTapDevice {
        start_async_io_reactor();
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            match self.run(|| embassy_net_tuntap::TunTapDevice::new(TAP)) {
                Ok(device) => {
                    close_tun_on_exec();
                    return device;
                }
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < until => {
                    thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("open TAP {TAP} in {}: {e}", self.name),
            }
        }
    }

    /// Starts tansu (in-memory storage) inside the namespace, listening on
    /// `BROKER_IP:port` and advertising `advertised` (`host:port`, a name if need be), and
    /// waits until it accepts connections (at most 10 s; panics with its log otherwise).
    pub fn start_tansu(&self, port: u16, advertised: &str) -> NsTansu<'_> {
        let binary = tansu_binary();
        let log = std::env::temp_dir().join(format!("{}-tansu-{port}.log", self.name));
        let log_file = File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let child = Command::new(ip_binary())
            .args(["netns", "exec", &self.name])
            .arg(&binary)
            .arg("broker")
            .arg("--listener-url")
            .arg(format!("tcp://{BROKER_IP}:{port}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://{advertised}"))
            .arg("--storage-engine")
            .arg("memory://tansu/")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} in {}: {e}", binary.display(), self.name));
        let mut tansu = NsTansu {
            child,
            port,
            log,
            ns: self,
        };
        let addr = SocketAddr::from((BROKER_IP, port));
        let until = Instant::now() + Duration::from_secs(10);
        let up = self.run(|| {
            while Instant::now() < until {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                    return true;
                }
                thread::sleep(Duration::from_millis(10));
            }
            false
        });
        if !up {
            let exited = tansu.child.try_wait().ok().flatten();
            panic!(
                "tansu ({}) did not listen on {addr} in {} within 10 s (exit status {exited:?}); \
                 its log:\n{}",
                binary.display(),
                self.name,
                std::fs::read_to_string(&tansu.log).unwrap_or_default()
            );
        }
        tansu
    }

    /// Starts a DNS responder on `BROKER_IP:53` inside the namespace that answers `A`
    /// queries for `names` (case-insensitive) and NXDOMAIN for every other name.
    pub fn dns_responder(&self, names: &[(&str, Ipv4Addr)]) -> DnsResponder<'_> {
        let names: Vec<(String, Ipv4Addr)> =
            names.iter().map(|(n, ip)| (n.to_string(), *ip)).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let queries: Arc<Mutex<Vec<String>>> = Arc::default();
        let (bound_tx, bound_rx) = mpsc::channel();
        let (flag, asked) = (stop.clone(), queries.clone());
        let thread = self.spawn("dns", move || {
            let socket = match UdpSocket::bind((BROKER_IP, 53)) {
                Ok(s) => s,
                Err(e) => {
                    let _ = bound_tx.send(Err(e));
                    return;
                }
            };
            socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .expect("read timeout");
            let _ = bound_tx.send(Ok(()));
            let mut buf = [0u8; 512];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some((name, answer)) = dns_answer(&buf[..n], &names) {
                    asked.lock().unwrap().push(name);
                    let _ = socket.send_to(&answer, from);
                }
            }
        });
        let mut dns = DnsResponder {
            stop,
            queries,
            thread: Some(thread),
            _ns: PhantomData,
        };
        match bound_rx.recv() {
            Ok(Ok(())) => dns,
            Ok(Err(e)) => panic!("DNS responder: bind {BROKER_IP}:53 in {}: {e}", self.name),
            Err(_) => {
                let thread = dns.thread.take().expect("thread");
                std::panic::resume_unwind(thread.join().expect_err("DNS thread ended early"))
            }
        }
    }

    /// Relays TCP connections to `listen` (inside the namespace) to `to` (inside too), e.g.
    /// to make an advertised address that only a mapping makes sense of reachable for an
    /// independent consumer.
    pub fn forward(&self, listen: SocketAddrV4, to: SocketAddrV4) -> Forwarder<'_> {
        let stop = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let connections = Arc::new(AtomicU64::new(0));
        let (bound_tx, bound_rx) = mpsc::channel();
        let (flag, streams, count) = (stop.clone(), live.clone(), connections.clone());
        let thread = self.spawn("forward", move || {
            let listener = match TcpListener::bind(listen) {
                Ok(l) => l,
                Err(e) => {
                    let _ = bound_tx.send(Err(e));
                    return;
                }
            };
            listener.set_nonblocking(true).expect("nonblocking");
            let _ = bound_tx.send(Ok(()));
            while !flag.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let Ok(upstream) = TcpStream::connect_timeout(&to.into(), Duration::from_secs(2))
                else {
                    continue;
                };
                count.fetch_add(1, Ordering::Relaxed);
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                let mut live = streams.lock().unwrap();
                for (from, into) in [(&client, &upstream), (&upstream, &client)] {
                    let (Ok(mut from), Ok(mut into)) = (from.try_clone(), into.try_clone()) else {
                        continue;
                    };
                    thread::spawn(move || {
                        let _ = io::copy(&mut from, &mut into);
                        let _ = from.shutdown(Shutdown::Both);
                        let _ = into.shutdown(Shutdown::Both);
                    });
                }
                live.push(client);
                live.push(upstream);
            }
        });
        let mut forwarder = Forwarder {
            stop,
            live,
            connections,
            thread: Some(thread),
            _ns: PhantomData,
        };
        match bound_rx.recv() {
            Ok(Ok(())) => forwarder,
            Ok(Err(e)) => panic!("forwarder: bind {listen} in {}: {e}", self.name),
            Err(_) => {
                let thread = forwarder.thread.take().expect("thread");
                std::panic::resume_unwind(thread.join().expect_err("forwarder ended early"))
            }
        }
    }
}

impl Default for NetNs {
    fn default() -> Self {
        NetNs::new()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        kill_namespace_processes(&self.name);
        let out = run_ip(&["netns", "del", &self.name]);
        if !out.status.success() {
            eprintln!(
                "ip netns del {} failed ({}): {}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
}

/// The nsfs file of namespace `name` (made by `ip netns add`).
fn namespace_file(name: &str) -> File {
    let path = format!("/var/run/netns/{name}");
    File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"))
}

/// Runs `f` on a new thread inside network namespace `name` and returns its result (a
/// panic in `f` is resumed here). Threads `f` starts are inside too; sockets it creates stay
/// bound to the namespace wherever they are used.
pub fn run_in_namespace<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> T {
    let file = namespace_file(name);
    thread::scope(|s| {
        let handle = thread::Builder::new()
            .name(format!("in-{name}"))
            .spawn_scoped(s, move || {
                NetNs::enter(&file);
                drop(file);
                f()
            })
            .expect("spawn thread");
        handle
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Gives the calling thread a mount namespace of its own in which `hosts` is /etc/hosts.
fn private_hosts_file(hosts: &std::path::Path) {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let source = CString::new(hosts.as_os_str().as_bytes()).expect("path");
    // SAFETY: plain syscalls with valid NUL-terminated strings. unshare(CLONE_NEWNS) affects
    // only this thread (and threads it starts); `/` becomes a recursive slave first so the
    // bind mount cannot propagate to the namespace the rest of the machine uses.
    unsafe {
        assert_eq!(
            libc::unshare(libc::CLONE_NEWNS),
            0,
            "unshare(CLONE_NEWNS): {}",
            io::Error::last_os_error()
        );
        assert_eq!(
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_SLAVE,
                std::ptr::null(),
            ),
            0,
            "make / a slave mount: {}",
            io::Error::last_os_error()
        );
        assert_eq!(
            libc::mount(
                source.as_ptr(),
                c"/etc/hosts".as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ),
            0,
            "bind {} over /etc/hosts: {}",
            hosts.display(),
            io::Error::last_os_error()
        );
    }
}

/// async-io (embassy-net-tuntap's reactor) starts its driver thread the first time it is
/// used; started from a thread inside a namespace, that thread (which lives as long as the
/// process) would keep the namespace alive after it is deleted. Start it from here, in the
/// root namespace, before any TAP is opened.
/// Marks every open `/dev/net/tun` file of this process close-on-exec (embassy-net-tuntap
/// opens it without), so no child process inherits a TAP device and keeps it attached.
fn close_tun_on_exec() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in entries.flatten() {
        let is_tun = std::fs::read_link(entry.path())
            .is_ok_and(|target| target == Path::new("/dev/net/tun"));
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if is_tun {
            // SAFETY: F_GETFD/F_SETFD on a descriptor number only read and set its flags; a
            // number closed meanwhile makes them fail with EBADF, which is ignored.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                }
            }
        }
    }
}

fn start_async_io_reactor() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        drop(async_io::Async::new(a).expect("register with the async-io reactor"));
    });
}

/// A tansu broker inside a [`NetNs`], killed and reaped on drop (before the namespace goes).
pub struct NsTansu<'ns> {
    child: Child,
    port: u16,
    log: PathBuf,
    ns: &'ns NetNs,
}

impl NsTansu<'_> {
    /// The port it listens on at [`BROKER_IP`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `BROKER_IP:PORT`: its listener (reachable from inside the namespace and over the TAP).
    pub fn bootstrap(&self) -> String {
        format!("{BROKER_IP}:{}", self.port)
    }

    /// Creates `name` with `partitions` partitions (`tansu topic create` run inside the
    /// namespace). Panics if it fails.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        let mut command = Command::new(ip_binary());
        command
            .args(["netns", "exec", self.ns.name()])
            .arg(tansu_binary());
        create_topic_with(
            command,
            &format!("tcp://{BROKER_IP}:{}", self.port),
            name,
            partitions,
        );
    }
}

impl Drop for NsTansu<'_> {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A DNS responder inside a [`NetNs`] (see [`NetNs::dns_responder`]); stopped on drop.
pub struct DnsResponder<'ns> {
    stop: Arc<AtomicBool>,
    queries: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
    _ns: PhantomData<&'ns NetNs>,
}

impl DnsResponder<'_> {
    /// The names asked for so far, in order, one per query answered (NXDOMAIN included;
    /// empty for a malformed query).
    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }
}

impl Drop for DnsResponder<'_> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TCP forwarder inside a [`NetNs`] (see [`NetNs::forward`]); stops accepting and closes
/// every relayed connection on drop.
pub struct Forwarder<'ns> {
    stop: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
    connections: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
    _ns: PhantomData<&'ns NetNs>,
}

impl Forwarder<'_> {
    /// Connections relayed so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for Forwarder<'_> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for s in self.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}
