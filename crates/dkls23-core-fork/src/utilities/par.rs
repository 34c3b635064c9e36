//! Fork: independent per-counterparty work, optionally on several threads.
//!
//! The base-OT set-up of DKG and complete refresh (phases 3 and 4) does the
//! same work for every counterparty, and no counterparty's part reads
//! another's: [`map`] runs one closure per item and returns the results in
//! the items' order, so callers see exactly what the sequential loop gave
//! (including which error comes first).
//!
//! With the `parallel` feature (native builds only: wasm32-unknown-unknown
//! has no threads) the items are shared among scoped threads
//! (`std::thread::scope`, so no new dependency), at most
//! `available_parallelism()` or [`set_max_threads`]. Randomness: every
//! protocol draw goes through [`crate::utilities::rng::get_rng`], i.e.
//! `rand::rng()`, a thread-local ChaCha generator seeded from the OS, so a
//! worker thread draws from its own OS-seeded generator, with the same
//! distribution as the calling thread's. (Messages were never reproducible
//! across runs outside the crate's own `insecure-rng` unit tests; there,
//! each new thread would restart the seeded test generator, so those tests
//! keep the sequential path.)

#[cfg(all(feature = "parallel", not(all(test, feature = "insecure-rng"))))]
use core::sync::atomic::{AtomicUsize, Ordering};

/// 0 = `std::thread::available_parallelism()`.
#[cfg(all(feature = "parallel", not(all(test, feature = "insecure-rng"))))]
static MAX_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Caps the threads [`map`] uses (1 = sequential, 0 = one per available
/// CPU). A process-wide knob for benchmarks comparing the two paths; a no-op
/// without the `parallel` feature.
pub fn set_max_threads(n: usize) {
    #[cfg(all(feature = "parallel", not(all(test, feature = "insecure-rng"))))]
    MAX_THREADS.store(n, Ordering::Relaxed);
    #[cfg(not(all(feature = "parallel", not(all(test, feature = "insecure-rng")))))]
    let _ = n;
}

/// `items.iter().map(f).collect()`, possibly on several threads.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    #[cfg(all(feature = "parallel", not(all(test, feature = "insecure-rng"))))]
    {
        let cap = match MAX_THREADS.load(Ordering::Relaxed) {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let threads = cap.min(items.len());
        if threads > 1 {
            return map_threads(items, &f, threads);
        }
    }
    items.iter().map(f).collect()
}

/// `threads` workers (this thread and `threads - 1` scoped ones) take the
/// next unclaimed item until none is left; results go back in item order.
#[cfg(all(feature = "parallel", not(all(test, feature = "insecure-rng"))))]
fn map_threads<T: Sync, R: Send>(
    items: &[T],
    f: &(impl Fn(&T) -> R + Sync),
    threads: usize,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= items.len() {
                return done;
            }
            done.push((i, f(&items[i])));
        }
    };
    let mut slots: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads)
            .map(|_| {
                // The main thread's stack size: the proofs keep their
                // per-counterparty vectors on the heap, but nothing here
                // should depend on Rust's smaller 2 MiB default for new threads.
                std::thread::Builder::new()
                    .stack_size(8 << 20)
                    .spawn_scoped(scope, work)
                    .expect("spawn a worker thread")
            })
            .collect();
        for (i, r) in work() {
            slots[i] = Some(r);
        }
        for h in handles {
            // A panic in a worker is re-raised here, as it would have been
            // raised by the sequential loop.
            for (i, r) in h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)) {
                slots[i] = Some(r);
            }
        }
    });
    slots
        .into_iter()
        .map(|r| r.expect("every item was processed"))
        .collect()
}
