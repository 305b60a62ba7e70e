//! Per-thread shards for state every request touches. Two worker threads on two cores
//! that update one shared map or counter move its cache lines back and forth on every
//! request; each thread writing its own shard (summed or merged by the reader) does not.

use std::sync::atomic::{AtomicUsize, Ordering};

/// More than the worker threads of a two-core machine plus the blocking pool's few
/// recording threads; threads beyond it share shards (still correct, only contended).
pub const SHARDS: usize = 8;

/// This thread's shard number in `0..SHARDS`, handed out round robin on first use.
pub fn this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

/// A value on cache lines of its own (128 bytes: adjacent-line prefetch pairs lines).
#[derive(Default)]
#[repr(align(128))]
pub struct Padded<T>(pub T);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_get_different_shards_until_they_wrap() {
        let mine = this_thread();
        assert_eq!(mine, this_thread(), "a thread keeps its shard");
        let others: Vec<usize> = (0..SHARDS - 1)
            .map(|_| std::thread::spawn(this_thread).join().unwrap_or(usize::MAX))
            .collect();
        assert!(others.iter().all(|i| *i < SHARDS));
        // Handed out in turn: SHARDS threads in a row hold every shard once, unless
        // other tests' threads took numbers in between (then at least they differ).
        assert!(others.iter().any(|i| *i != mine));
    }
}
