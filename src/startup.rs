//! Builds the application: database pool and migrations, first admin, background
//! work, and the server with `routes::configure`. `main` and the tests start the very
//! same `Application`.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::cookie::Key;
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};

use crate::config::Settings;
use crate::db::{self, Pool};
use crate::domain::password;
use crate::domain::webhook::Sealer;
use crate::key_cache::KeyCache;
use crate::routes::{self, CookieSettings};
use crate::spare_cpu::SpareCpu;
use crate::state::AppState;
use crate::usage::{self, UsageRecorder};
use crate::{background, postback};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("{0}")]
    Config(String),
}

pub struct Application {
    addr: std::net::SocketAddr,
    server: Server,
    pool: Pool,
    usage: Arc<UsageRecorder>,
    credits: Arc<crate::credits::CreditPool>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        settings.validate().map_err(StartupError::Config)?;
        if !settings.binds_loopback() && settings.secure_cookies == Some(false) {
            tracing::warn!(
                bind = %settings.bind,
                "LATCHKEY_SECURE_COOKIES is off on a non-loopback address: session cookies may travel over plain HTTP"
            );
        }
        let pool = open_database(&settings).await?;
        let session_key = session_key(&settings)?;
        let listener = TcpListener::bind(&settings.bind)
            .map_err(|e| StartupError::Bind(settings.bind.clone(), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartupError::Bind(settings.bind.clone(), e))?;
        let workers = settings.workers;
        let cookies = CookieSettings {
            key: session_key,
            secure: settings.cookies_secure(),
        };
        let usage = Arc::new(UsageRecorder::new(settings.request_log_per_key));
        usage::spawn_flusher(
            usage.clone(),
            pool.clone(),
            Duration::from_millis(settings.usage_flush_ms.max(10)),
        );
        let poll = Duration::from_millis(settings.postback_poll_ms.max(10));
        let worker = postback::WorkerConfig {
            poll,
            retry_base: Duration::from_millis(settings.postback_retry_ms.max(1)),
            give_up_after: time::Duration::days(1),
            concurrency: settings.postback_concurrency as usize,
            per_host: settings.postback_per_host as usize,
            timeout: Duration::from_millis(settings.postback_timeout_ms.min(10_000)),
        };
        let sealer = postback_sealer(&settings);
        // One core is left to everything else: on two cores a flood of argon2 on both
        // doubled the median of /healthz; on one it stayed as when idle.
        let password_checks = match settings.password_checks {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| usize::from(n).saturating_sub(1).max(1)),
            n => n,
        };
        let limiter = match &settings.redis_url {
            Some(url) => {
                let redis = crate::ratelimit::redis::RedisLimiter::new(
                    url.expose(),
                    Duration::from_millis(settings.redis_timeout_ms),
                )
                .map_err(StartupError::Config)?;
                crate::ratelimit::Limiter::with_redis(redis, settings.redis_fail)
            }
            None => {
                if settings.database_url.expose().starts_with("postgres") {
                    tracing::warn!(
                        "no LATCHKEY_REDIS_URL: each instance enforces rate limits alone; several instances sharing this database need Redis for shared limits"
                    );
                }
                crate::ratelimit::Limiter::default()
            }
        };
        let credits: Arc<crate::credits::CreditPool> = Arc::default();
        let state = web::Data::new(AppState {
            instance: crate::domain::secret::random_token(16),
            pool: pool.clone(),
            cache: Arc::new(KeyCache::new(settings.key_cache_size)),
            reads: Arc::new(crate::state::KeyReads::new(crate::state::read_capacity(
                &settings,
            ))),
            counts: Arc::default(),
            settings: Arc::new(settings),
            usage: usage.clone(),
            metrics: Arc::default(),
            sealer,
            postback_wake: Arc::default(),
            password_checks: Arc::new(tokio::sync::Semaphore::new(password_checks)),
            // As many again as run at once, for runs abandoned to normal priority.
            spare_cpu: Arc::new(SpareCpu::new(2 * password_checks)),
            imports: Arc::default(),
            clock: Default::default(),
            limiter: Arc::new(limiter),
            credits: credits.clone(),
        });
        background::spawn_credit_keeper(state.clone());
        postback::spawn_worker(state.clone(), worker);
        // Expiring keys are looked for every 60 POSTback polls (a minute by default).
        background::spawn_change_poller(state.clone(), Duration::from_millis(500), poll * 60);
        background::spawn_retention(state.clone());

        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .configure(|cfg| routes::configure(cfg, &cookies))
        })
        .listen(listener)
        .map_err(|e| StartupError::Bind("listener".into(), e))?
        .shutdown_timeout(10);
        if workers > 0 {
            server = server.workers(workers);
        }
        Ok(Application {
            addr,
            server: server.run(),
            pool,
            usage,
            credits,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Serves until a shutdown signal (SIGTERM, SIGINT) has drained in-flight
    /// requests, then writes what is still buffered of the request log.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        let unspent = self.credits.take_idle(Duration::ZERO);
        match crate::app::credits::give_back(&self.pool, unspent).await {
            Ok(n) => tracing::info!(credits = n, "unspent credits given back at shutdown"),
            Err(e) => tracing::error!(error = %e, "unspent credits could not be given back"),
        }
        match self.usage.flush(&self.pool).await {
            Ok(n) => tracing::info!(rows = n, "request log flushed at shutdown"),
            Err(e) => tracing::error!(error = %e, "request log could not be flushed at shutdown"),
        }
        served
    }
}

/// Opens the pool, migrates, and makes sure the `system` channel and a first admin exist.
async fn open_database(settings: &Settings) -> Result<Pool, StartupError> {
    let url = settings.database_url.expose().to_owned();
    let size = settings.db_pool_size;
    let pool = actix_web::web::block(move || db::connect(&url, size))
        .await
        .map_err(|_| db::DbError::Canceled)??;
    let (given, plain) = match &settings.admin_password {
        Some(p) => (true, p.expose().to_owned()),
        None => (false, password::generate()),
    };
    let to_hash = plain.clone();
    let created = db::run(&pool, move |c| {
        db::channels::ensure_system(c)?;
        db::users::create_first_admin(c, || password::hash(&to_hash).map_err(db::DbError::Config))
    })
    .await?;
    if created {
        tracing::info!("created the first admin account `admin`");
        if given {
            println!(
                "Created the first admin account `admin` with the password from LATCHKEY_ADMIN_PASSWORD."
            );
        } else {
            // Printed once, to the terminal only: the one moment this password exists
            // outside its hash. It is never written to the log.
            println!("Created the first admin account.");
            println!("  username: admin");
            println!("  password: {plain}");
            println!("Change it after logging in; it is not shown again.");
        }
    }
    Ok(pool)
}

/// The cookie key: derived from LATCHKEY_SESSION_SECRET so sessions survive restarts
/// and work on every instance; random (and logged out at restart) otherwise.
fn session_key(settings: &Settings) -> Result<Key, StartupError> {
    match &settings.session_secret {
        Some(secret) => Ok(cookie_key(secret.expose())),
        None => {
            tracing::warn!(
                "LATCHKEY_SESSION_SECRET is not set: sessions end when the server restarts"
            );
            Ok(Key::generate())
        }
    }
}

/// The session cookie key of a given LATCHKEY_SESSION_SECRET (public for tests that
/// read or age a session cookie as another instance with the same secret would).
pub fn cookie_key(secret: &str) -> Key {
    let mut bytes = [0u8; 64];
    blake3::Hasher::new_derive_key("latchkey 2026 session cookie key")
        .update(secret.as_bytes())
        .finalize_xof()
        .fill(&mut bytes);
    Key::from(&bytes)
}

/// What seals the keys' POSTback signing secrets at rest: its own setting, else
/// derived from the session secret (so several instances agree), else random for this
/// process (then stored signing secrets are unreadable after a restart).
fn postback_sealer(settings: &Settings) -> Sealer {
    match (&settings.postback_secret, &settings.session_secret) {
        (Some(s), _) => Sealer::from_server_secret(s.expose()),
        (None, Some(s)) => Sealer::from_server_secret(&format!("postback:{}", s.expose())),
        (None, None) => {
            tracing::warn!(
                "neither LATCHKEY_POSTBACK_SECRET nor LATCHKEY_SESSION_SECRET is set: POSTback signing secrets cannot be read after a restart"
            );
            Sealer::from_server_secret(&crate::domain::secret::random_token(40))
        }
    }
}
