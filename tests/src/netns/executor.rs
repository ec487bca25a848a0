//! An embassy std executor on a thread of its own, for the TAP tests.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Runs the future `make` builds on an embassy std executor (`embassy-executor`,
/// `platform-std`) on a thread of its own, and returns its output. The executor stops once
/// the future is done, dropping it (and, e.g., the embassy-net runner and TAP device it
/// owns): drive the stack's runner inside the future (`select` it with the work) rather than
/// as a task of its own. Panics if it takes longer than `timeout`, and resumes a panic of
/// the future.
pub fn run_embassy<T, F, Fut>(timeout: Duration, make: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name("embassy".into())
        .stack_size(16 << 20)
        .spawn(move || {
            let executor = Box::leak(Box::new(embassy_executor::Executor::new()));
            let done = Arc::new(AtomicBool::new(false));
            let finished = done.clone();
            executor.run_until(
                move |spawner| {
                    let future = make();
                    let task = async move {
                        let out = future.await;
                        finished.store(true, Ordering::Relaxed);
                        let _ = tx.send(out);
                    };
                    let storage = Box::leak(Box::new(embassy_executor::raw::TaskStorage::new()));
                    spawner.spawn(storage.spawn(move || task).expect("a fresh task storage"));
                },
                move || done.load(Ordering::Relaxed),
            );
        })
        .expect("spawn embassy thread");
    let until = Instant::now() + timeout;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(out) => {
                let _ = thread.join();
                return out;
            }
            Err(mpsc::RecvTimeoutError::Timeout) if thread.is_finished() => {
                std::panic::resume_unwind(thread.join().expect_err("embassy thread ended"))
            }
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() >= until => {
                panic!("the embassy run did not finish within {timeout:?}")
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::panic::resume_unwind(thread.join().expect_err("embassy thread ended"))
            }
        }
    }
}
