//! `AppState`: what every handler and use case shares. It imports little, so anyone
//! may import it.

use std::sync::Arc;

use crate::config::Settings;
use crate::counts::FilterCounts;
use crate::db::Pool;
use crate::db::changes::Change;
use crate::domain::webhook::Sealer;
use crate::key_cache::KeyCache;
use crate::metrics::Metrics;
use crate::usage::UsageRecorder;

/// Recently read keys, answered by the API's `GET /keys/{id}` (`app::keys::find_recent`).
pub type KeyReads = crate::key_reads::KeyReads<crate::key_reads::KeyRead>;

pub struct AppState {
    /// This running server, among the instances sharing the database.
    pub instance: String,
    pub pool: Pool,
    pub settings: Arc<Settings>,
    pub cache: Arc<KeyCache>,
    /// Keys the API read recently; forgotten with the verification cache.
    pub reads: Arc<KeyReads>,
    /// Totals of filtered key lists, forgotten whenever keys change.
    pub counts: Arc<FilterCounts>,
    pub usage: Arc<UsageRecorder>,
    pub metrics: Arc<Metrics>,
    /// Seals and opens the keys' POSTback signing secrets.
    pub sealer: Sealer,
    /// Wakes this instance's POSTback worker when an event is queued.
    pub postback_wake: Arc<tokio::sync::Notify>,
    /// Caps password hashing and checking (argon2) at one per core, so a login flood
    /// queues here instead of taking every core and thread (`app::passwords`).
    pub password_checks: Arc<tokio::sync::Semaphore>,
    /// Where the password checks run: on spare CPU only, while there is some.
    pub spare_cpu: Arc<crate::spare_cpu::SpareCpu>,
    /// Whether imported keys exist (verification of other formats: `imported`).
    pub imports: Arc<crate::imported::ImportIndex>,
    /// What background work takes as "now" (a manual clock in tests).
    pub clock: crate::domain::clock::Clock,
    /// Keys' rate limits (in memory, or shared in Redis).
    pub limiter: Arc<crate::ratelimit::Limiter>,
    /// Credits this instance has reserved for keys with a credit limit.
    pub credits: Arc<crate::credits::CreditPool>,
}

impl AppState {
    /// After a write commits (`app::write`), or when another instance's change is seen
    /// (the change poller): forget what changed, so the very next verification and the
    /// next list see it.
    pub fn forget(&self, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        for change in changes {
            match change {
                Change::Key(hash) => {
                    self.cache.invalidate(hash);
                    self.reads.forget(hash);
                }
                Change::All => {
                    self.cache.clear();
                    self.reads.clear();
                }
            }
        }
        self.counts.forget_all();
    }
}

impl AppState {
    /// A state over `pool` with nothing running beside it (no server, no workers):
    /// tests drive background use cases with it, on their own clock.
    pub fn detached(
        settings: Settings,
        pool: Pool,
        clock: crate::domain::clock::Clock,
    ) -> AppState {
        AppState {
            instance: crate::domain::secret::random_token(16),
            pool,
            cache: Arc::new(KeyCache::new(settings.key_cache_size)),
            reads: Arc::new(KeyReads::new(read_capacity(&settings))),
            counts: Arc::default(),
            sealer: Sealer::from_server_secret(&crate::domain::secret::random_token(40)),
            settings: Arc::new(settings),
            usage: Arc::default(),
            metrics: Arc::default(),
            postback_wake: Arc::default(),
            password_checks: Arc::new(tokio::sync::Semaphore::new(1)),
            spare_cpu: Arc::new(crate::spare_cpu::SpareCpu::new(2)),
            imports: Arc::default(),
            clock,
            limiter: Arc::default(),
            credits: Arc::default(),
        }
    }
}

/// Keys held for the API's reads: a tenth of the verification cache's size, between
/// 1,000 and 10,000 (each holds a whole row, and reads are rarer than verifications).
pub fn read_capacity(settings: &Settings) -> usize {
    (settings.key_cache_size / 10).clamp(1_000, 10_000)
}
