//! Work that should take only the CPU nobody else wants: password hashing
//! (`app::passwords`), so that a flood of logins leaves `/healthz` and verification
//! as fast as when idle (issue 11).
//!
//! Jobs run on threads of their own at the lowest CPU priority (Linux `SCHED_IDLE`):
//! the kernel gives them a core only when no ordinary thread wants it, and an ordinary
//! thread that wakes up takes the core back at once. A lowered thread cannot be raised
//! again without privileges, so these threads are not the shared blocking pool's.
//!
//! A machine with no CPU to spare would starve them, and a burst of real logins on a
//! busy server would then wait past its limit and be told "busy". So a job that has
//! not finished within [`SPARE_WAIT`] is run again on the blocking pool, at normal
//! priority, and answers from there. If the first run is still not done by then, it
//! is starved: for a while (one second, doubling up to [`MAX_BUSY`] while the machine
//! stays busy, halving as it finds spare CPU again) jobs go straight to normal priority. The abandoned run finishes
//! whenever a core is free, and its answer is dropped.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::oneshot::error::TryRecvError;

/// A job; it calls its argument once its answer is ready, just before handing it over
/// (the thread then waits for work again before the caller can ask for more).
type Job = Box<dyn FnOnce(&dyn Fn()) + Send>;

/// How long a job waits for spare CPU before it runs at normal priority: about four
/// times an argon2 check at the default cost on a free core (~25 ms). What a busy
/// machine costs a login, once per stretch at normal priority.
pub const SPARE_WAIT: Duration = Duration::from_millis(100);
/// How long jobs run at normal priority after one found no spare CPU, at first.
const FIRST_BUSY: Duration = Duration::from_secs(1);
/// The longest such stretch, however long the machine stays busy.
pub const MAX_BUSY: Duration = Duration::from_secs(16);

thread_local! {
    static SPARE_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this is one of the lowest-priority threads (which live as long as the
/// server: a job may keep memory on them for the next job).
pub fn on_spare_thread() -> bool {
    SPARE_THREAD.get()
}

/// The job could not run (its thread panicked, or the blocking pool is gone).
#[derive(Debug)]
pub struct Gone;

pub struct SpareCpu {
    /// Lowest-priority threads waiting for work, each by the sender of its own queue.
    waiting: Arc<Mutex<Vec<mpsc::Sender<Job>>>>,
    /// Lowest-priority threads alive (waiting, working or finishing an abandoned job).
    threads: Arc<AtomicUsize>,
    max_threads: usize,
    busy: Mutex<Busy>,
    /// Jobs answered from spare CPU, and at normal priority (for `/metrics`).
    answered_spare: AtomicU64,
    answered_normal: AtomicU64,
}

#[derive(Debug)]
struct Busy {
    /// Until when jobs skip the lowest-priority threads.
    until: Option<Instant>,
    /// How long the next stretch at normal priority lasts.
    next: Duration,
}

impl SpareCpu {
    /// At most `max_threads` lowest-priority threads (the jobs that may run at once, and
    /// as many again finishing abandoned runs).
    pub fn new(max_threads: usize) -> Self {
        SpareCpu {
            waiting: Arc::default(),
            threads: Arc::default(),
            max_threads: max_threads.max(1),
            busy: Mutex::new(Busy {
                until: None,
                next: FIRST_BUSY,
            }),
            answered_spare: AtomicU64::new(0),
            answered_normal: AtomicU64::new(0),
        }
    }

    /// How many jobs were answered from spare CPU, and how many at normal priority.
    pub fn answered(&self) -> (u64, u64) {
        (
            self.answered_spare.load(Ordering::Relaxed),
            self.answered_normal.load(Ordering::Relaxed),
        )
    }

    /// Runs `f` on spare CPU, or at normal priority when there is none (see the
    /// module's notes); `f` may run twice, and one answer is returned.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl Fn() -> T + Send + Sync + 'static,
    ) -> Result<T, Gone> {
        let f = Arc::new(f);
        let mut late = None;
        if !self.machine_busy() {
            let job = f.clone();
            if let Some(mut answer) = self.on_idle_thread(move || job()) {
                match tokio::time::timeout(SPARE_WAIT, &mut answer).await {
                    Ok(Ok(value)) => {
                        self.found_spare();
                        self.answered_spare.fetch_add(1, Ordering::Relaxed);
                        return Ok(value);
                    }
                    // Its thread died: the blocking pool has the last word.
                    Ok(Err(_)) => {}
                    Err(_) => late = Some(answer),
                }
            }
        }
        let value = self.run_now(move || f()).await?;
        // A late run still not done after a whole run at normal priority was starved:
        // the machine has no CPU to spare. One that is done was only slow (a new
        // thread's first job, a moment's contention): keep trying spare CPU.
        if let Some(mut late) = late
            && matches!(late.try_recv(), Err(TryRecvError::Empty))
        {
            self.found_none();
        }
        Ok(value)
    }

    /// Runs `f` at normal priority at once (on the blocking pool).
    pub async fn run_now<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Gone> {
        let value = actix_web::web::block(f).await.map_err(|_| Gone)?;
        self.answered_normal.fetch_add(1, Ordering::Relaxed);
        Ok(value)
    }

    fn machine_busy(&self) -> bool {
        let busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        busy.until.is_some_and(|until| Instant::now() < until)
    }

    /// A job ran on spare CPU. The next stretch at normal priority, if any, is halved
    /// rather than reset: on a machine busy in bursts one lucky job must not bring back
    /// a wait of [`SPARE_WAIT`] every second.
    fn found_spare(&self) {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        busy.until = None;
        busy.next = (busy.next / 2).max(FIRST_BUSY);
    }

    fn found_none(&self) {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        busy.until = Some(Instant::now() + busy.next);
        busy.next = (busy.next * 2).min(MAX_BUSY);
        tracing::debug!(
            normal_for = ?busy.until.map(|u| u - Instant::now()),
            "no spare CPU: password hashing runs at normal priority for a while"
        );
    }

    /// Hands `job` to a waiting lowest-priority thread, or to a new one; `None` when
    /// all `max_threads` are busy.
    fn on_idle_thread<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Option<tokio::sync::oneshot::Receiver<T>> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let mut job: Job = Box::new(move |ready: &dyn Fn()| {
            let answer = job();
            ready();
            let _ = done.send(answer);
        });
        loop {
            let waiting = self
                .waiting
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let Some(thread) = waiting else { break };
            match thread.send(job) {
                Ok(()) => return Some(answer),
                // That thread is gone: try the next one.
                Err(mpsc::SendError(back)) => job = back,
            }
        }
        let started = self
            .threads
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_threads).then_some(n + 1)
            });
        if started.is_err() {
            return None;
        }
        let alive = Alive(self.threads.clone());
        let waiting = self.waiting.clone();
        let spawned = std::thread::Builder::new()
            .name("latchkey-spare".into())
            .spawn(move || {
                let _alive = alive;
                SPARE_THREAD.set(true);
                lower_priority();
                let (queue, jobs) = mpsc::channel::<Job>();
                let mut next = Some(job);
                let ready = || {
                    waiting
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(queue.clone());
                };
                while let Some(job) = next.take() {
                    job(&ready);
                    next = jobs.recv().ok();
                }
            });
        match spawned {
            Ok(_) => Some(answer),
            Err(e) => {
                tracing::error!(error = %e, "could not start a lowest-priority thread");
                None
            }
        }
    }
}

/// Counts a lowest-priority thread while it lives.
struct Alive(Arc<AtomicUsize>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `SCHED_IDLE` on Linux, the lowest priority the platform has elsewhere. Failing to
/// lower it (a sandbox that forbids it) leaves the thread at normal priority: slower
/// answers under a flood, nothing worse.
fn lower_priority() {
    use thread_priority::ThreadPriority;
    #[cfg(target_os = "linux")]
    let lowered = {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
        thread_priority::set_thread_priority_and_policy(
            thread_priority::thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        )
    };
    #[cfg(not(target_os = "linux"))]
    let lowered = ThreadPriority::Min.set_for_current();
    if let Err(e) = lowered {
        tracing::warn!(error = ?e, "password hashing runs at normal CPU priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        actix_web::rt::System::new().block_on(f)
    }

    /// `job` on a lowest-priority thread, however long it waits for a core (a busy
    /// machine, such as one running the test suite, would send `run` elsewhere).
    fn on_idle<T: Send + 'static>(spare: &SpareCpu, job: impl FnOnce() -> T + Send + 'static) -> T {
        block_on(spare.on_idle_thread(job).unwrap()).unwrap()
    }

    #[test]
    fn jobs_run_on_a_lowest_priority_thread_of_their_own() {
        let spare = SpareCpu::new(1);
        let name = || std::thread::current().name().map(str::to_owned);
        assert_eq!(on_idle(&spare, name).as_deref(), Some("latchkey-spare"));
        assert!(on_idle(&spare, on_spare_thread));
        assert!(!on_spare_thread());
        #[cfg(target_os = "linux")]
        {
            use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
            let policy = on_idle(&spare, thread_priority::thread_schedule_policy);
            assert_eq!(
                policy.unwrap(),
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle)
            );
        }
        assert_eq!(
            spare.threads.load(Ordering::Acquire),
            1,
            "the thread is reused"
        );
        // Whichever thread answers, `run` answers.
        assert_eq!(block_on(spare.run(|| 6 * 7)).unwrap(), 42);
    }

    #[test]
    fn a_job_that_finds_no_spare_cpu_answers_from_normal_priority() {
        let spare = SpareCpu::new(1);
        let name = || std::thread::current().name().map(str::to_owned);
        // Stands for a starved run: on the lowest-priority thread it does not finish
        // until released (the blocking pool's threads have no name of ours).
        let (release, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let starved = move || {
            if name().as_deref() == Some("latchkey-spare") {
                let _ = gate.lock().unwrap().recv();
            }
            name()
        };
        let starved = Arc::new(starved);
        let job = starved.clone();
        let answered_by = block_on(spare.run(move || job())).unwrap();
        assert_ne!(answered_by.as_deref(), Some("latchkey-spare"));
        assert_eq!(spare.answered(), (0, 1));
        // For a while, jobs go straight to normal priority.
        assert!(spare.machine_busy());
        let job = starved.clone();
        let next = block_on(spare.run(move || job())).unwrap();
        assert_ne!(next.as_deref(), Some("latchkey-spare"));
        // The abandoned run ends, and its thread takes the next job.
        release.send(()).unwrap();
        let back = || spare.waiting.lock().unwrap().len() == 1;
        for _ in 0..6000 {
            if back() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(back(), "the abandoned run ended within a minute");
        assert_eq!(on_idle(&spare, name).as_deref(), Some("latchkey-spare"));
        assert_eq!(spare.threads.load(Ordering::Acquire), 1);
        // Spare CPU found again: the lowest priority is tried first again.
        spare.found_spare();
        assert!(!spare.machine_busy());
    }

    #[test]
    fn normal_priority_stretches_double_up_to_a_limit_and_halve_back() {
        let spare = SpareCpu::new(1);
        for _ in 0..10 {
            spare.found_none();
        }
        assert_eq!(spare.busy.lock().unwrap().next, MAX_BUSY);
        assert!(spare.machine_busy());
        spare.found_spare();
        assert!(!spare.machine_busy());
        assert_eq!(spare.busy.lock().unwrap().next, MAX_BUSY / 2);
        for _ in 0..10 {
            spare.found_spare();
        }
        assert_eq!(spare.busy.lock().unwrap().next, FIRST_BUSY);
    }
}
