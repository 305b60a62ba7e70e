//! Builds the application: database pool and migrations, first admin, middleware
//! stack, routes. `main` and the tests start the very same `Application`.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};

use crate::config::Settings;
use crate::db::{self, Pool};
use crate::domain::password;
use crate::error::{AppError, render_errors};
use crate::usage::{self, UsageRecorder};
use crate::verification::{self, KeyCache};
use crate::{postback, routes, session, telemetry};

/// Shared by every handler.
pub struct AppState {
    pub pool: Pool,
    pub settings: Arc<Settings>,
    pub cache: Arc<KeyCache>,
    /// Totals of filtered key lists, forgotten whenever keys change.
    pub counts: Arc<crate::counts::FilterCounts>,
    pub usage: Arc<UsageRecorder>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("{0}")]
    Config(String),
}

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

pub struct Application {
    addr: std::net::SocketAddr,
    server: Server,
    pool: Pool,
    usage: Arc<UsageRecorder>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let pool = open_database(&settings).await?;
        let session_key = session_key(&settings)?;
        let listener = TcpListener::bind(&settings.bind)
            .map_err(|e| StartupError::Bind(settings.bind.clone(), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartupError::Bind(settings.bind.clone(), e))?;
        let workers = settings.workers;
        let secure = settings.secure_cookies;
        let cache = Arc::new(KeyCache::new(settings.key_cache_size));
        let counts = Arc::new(crate::counts::FilterCounts::default());
        let usage = Arc::new(UsageRecorder::default());
        usage::spawn_flusher(
            usage.clone(),
            pool.clone(),
            Duration::from_millis(settings.usage_flush_ms.max(10)),
        );
        verification::spawn_change_poller(
            pool.clone(),
            cache.clone(),
            counts.clone(),
            Duration::from_millis(500),
        );
        postback::spawn_worker(
            pool.clone(),
            postback_signer(&settings),
            postback::WorkerConfig {
                poll: Duration::from_millis(settings.postback_poll_ms.max(10)),
                retry_base: Duration::from_millis(settings.postback_retry_ms.max(1)),
                give_up_after: time::Duration::days(1),
            },
        );
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            settings: Arc::new(settings),
            cache,
            counts,
            usage: usage.clone(),
            metrics: Arc::default(),
        });

        let mut server = HttpServer::new(move || {
            let sessions =
                SessionMiddleware::builder(CookieSessionStore::default(), session_key.clone())
                    .cookie_name("latchkey_session".into())
                    .cookie_secure(secure)
                    .cookie_http_only(true)
                    .cookie_same_site(SameSite::Strict)
                    .cookie_content_security(CookieContentSecurity::Private)
                    .session_lifecycle(BrowserSession::default())
                    .build();
            let api = web::scope("/api/v1")
                .app_data(
                    web::JsonConfig::default()
                        .limit(64 * 1024)
                        .error_handler(|e, _| routes::api_json_error(e).into()),
                )
                .wrap(from_fn(usage::record_usage))
                .wrap(from_fn(render_errors))
                .wrap(DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff")))
                .configure(routes::api)
                .default_service(web::to(routes::api_not_found));
            let dashboard = web::scope("")
                .wrap(from_fn(session::verify_csrf))
                .wrap(from_fn(render_errors))
                .wrap(sessions)
                .wrap(
                    DefaultHeaders::new()
                        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("X-Frame-Options", "DENY"))
                        .add(("Referrer-Policy", "same-origin"))
                        .add(("Cross-Origin-Opener-Policy", "same-origin"))
                        .add((
                            "Permissions-Policy",
                            "camera=(), microphone=(), geolocation=(), clipboard-write=(self)",
                        ))
                        .add(("Vary", "HX-Request")),
                )
                .configure(routes::dashboard)
                .default_service(web::to(routes::not_found));
            App::new()
                .app_data(state.clone())
                .app_data(
                    web::FormConfig::default()
                        .limit(64 * 1024)
                        .error_handler(|e, _| {
                            AppError::BadRequest(format!("The form could not be read: {e}")).into()
                        }),
                )
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    AppError::BadRequest(format!("The address has an invalid parameter: {e}"))
                        .into()
                }))
                .app_data(
                    web::PathConfig::default().error_handler(|_, _| AppError::NotFound.into()),
                )
                .wrap(from_fn(telemetry::log_requests))
                .service(api)
                .service(dashboard)
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
        let hash = password::hash(&to_hash).map_err(db::DbError::Config)?;
        db::users::create_first_admin(c, &hash)
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
        Some(secret) if secret.expose().len() < 32 => Err(StartupError::Config(
            "LATCHKEY_SESSION_SECRET must be at least 32 characters".into(),
        )),
        Some(secret) => {
            let mut bytes = [0u8; 64];
            blake3::Hasher::new_derive_key("latchkey 2026 session cookie key")
                .update(secret.expose().as_bytes())
                .finalize_xof()
                .fill(&mut bytes);
            Ok(Key::from(&bytes))
        }
        None => {
            tracing::warn!(
                "LATCHKEY_SESSION_SECRET is not set: sessions end when the server restarts"
            );
            Ok(Key::generate())
        }
    }
}

/// The POSTback signing secret: its own setting, else derived from the session
/// secret (so several instances agree), else random for this process.
fn postback_signer(settings: &Settings) -> postback::Signer {
    match (&settings.postback_secret, &settings.session_secret) {
        (Some(s), _) => postback::Signer::from_secret(s.expose()),
        (None, Some(s)) => postback::Signer::from_secret(&format!("postback:{}", s.expose())),
        (None, None) => {
            tracing::warn!(
                "LATCHKEY_POSTBACK_SECRET is not set: POSTback signatures change at every restart"
            );
            postback::Signer::from_secret(&crate::domain::secret::random_token(40))
        }
    }
}

/// What a key write returns, and the stored hashes of the keys it touched.
pub trait ChangedKeys {
    fn hashes(&self) -> Vec<&str>;
}

impl ChangedKeys for crate::db::keys::ApiKey {
    fn hashes(&self) -> Vec<&str> {
        vec![&self.key_hash]
    }
}

impl ChangedKeys for (crate::db::keys::ApiKey, crate::db::keys::ApiKey) {
    fn hashes(&self) -> Vec<&str> {
        vec![&self.0.key_hash, &self.1.key_hash]
    }
}

impl AppState {
    /// Every change to keys goes through here: the write runs on the blocking pool,
    /// then this instance's verification cache forgets the keys it touched before the
    /// caller answers, so the very next verification sees the change. (Other
    /// instances learn it from `key_changes`, which the write recorded.)
    pub async fn change_keys<T, F>(
        &self,
        write: F,
    ) -> db::DbResult<Result<T, crate::db::keys::WriteError>>
    where
        F: FnOnce(&mut db::DbConnection) -> Result<T, crate::db::keys::WriteError> + Send + 'static,
        T: ChangedKeys + Send + 'static,
    {
        let result = db::run(&self.pool, move |c| Ok(write(c))).await?;
        if let Ok(changed) = &result {
            for hash in changed.hashes() {
                self.cache.invalidate(hash);
            }
            self.counts.forget_all();
        }
        Ok(result)
    }
}
