//! Settings from flags and environment variables, with defaults that make
//! `cargo run --release` work on a fresh machine. Every environment variable also
//! exists as a `--flag`; secrets are wrapped so `Debug` never prints them.

use std::fmt;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnetwork::IpNetwork;

use crate::domain::role::Role;

#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about = "Self-hosted API key manager")]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the dashboard and the API (the default).
    Serve,
    /// Manage dashboard users.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password comes from LATCHKEY_PASSWORD or standard input.
    Create {
        name: String,
        #[arg(long, value_enum)]
        role: Role,
    },
    /// Forget an account's failed logins (from every address), so it can log in at
    /// once. Audited.
    Unlock { name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Database: a SQLite path (`latchkey.db`, `sqlite://PATH`) or `postgres://...`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "latchkey.db",
        global = true
    )]
    pub database_url: Secret,
    /// Address to listen on.
    #[arg(
        long,
        env = "LATCHKEY_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: String,
    /// Password of the first `admin` account; a random one is printed once otherwise.
    #[arg(long, env = "LATCHKEY_ADMIN_PASSWORD", global = true)]
    pub admin_password: Option<Secret>,
    /// Secret that signs and encrypts session cookies (at least 32 characters).
    /// Without it a random one is made at start and a restart logs everyone out.
    #[arg(long, env = "LATCHKEY_SESSION_SECRET", global = true)]
    pub session_secret: Option<Secret>,
    /// Mark cookies `Secure` and send HSTS (the site is served over HTTPS). Defaults to
    /// on whenever the bind address is not loopback.
    #[arg(long, env = "LATCHKEY_SECURE_COOKIES", action = clap::ArgAction::Set, global = true)]
    pub secure_cookies: Option<bool>,
    /// Bearer token `/metrics` asks for. Without it `/metrics` answers only loopback.
    #[arg(long, env = "LATCHKEY_METRICS_TOKEN", global = true)]
    pub metrics_token: Option<Secret>,
    /// Prefix of new keys: 2 to 8 lowercase letters.
    #[arg(long, env = "LATCHKEY_KEY_PREFIX", default_value = "lk", value_parser = parse_prefix, global = true)]
    pub key_prefix: String,
    /// Default key limit of a channel that has no limit of its own.
    #[arg(long, env = "LATCHKEY_MAX_KEYS_PER_CHANNEL", default_value_t = 10, value_parser = clap::value_parser!(i64).range(1..=1_000_000), global = true)]
    pub max_keys_per_channel: i64,
    /// Proxies whose X-Forwarded-For is believed (comma-separated CIDRs).
    #[arg(
        long,
        env = "LATCHKEY_TRUSTED_PROXIES",
        value_delimiter = ',',
        global = true
    )]
    pub trusted_proxies: Vec<IpNetwork>,
    /// Scopes keys may hold (comma-separated).
    #[arg(
        long,
        env = "LATCHKEY_SCOPES",
        value_delimiter = ',',
        default_value = "keys:read,keys:write,keys:admin,verify",
        global = true
    )]
    pub scopes: Vec<String>,
    /// Largest number of database connections in the pool.
    #[arg(
        long,
        env = "LATCHKEY_DB_POOL_SIZE",
        default_value_t = 8,
        global = true
    )]
    pub db_pool_size: u32,
    /// How long a dashboard login lasts, in hours (1 to 8760).
    #[arg(
        long,
        env = "LATCHKEY_SESSION_HOURS",
        default_value_t = 12,
        value_parser = clap::value_parser!(i64).range(1..=8760),
        global = true
    )]
    pub session_hours: i64,
    /// Log format.
    #[arg(long, env = "LATCHKEY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Server secret that encrypts each key's POSTback signing secret at rest.
    /// Defaults to one derived from LATCHKEY_SESSION_SECRET; changing it makes the
    /// stored signing secrets unreadable (roll them from each key's page).
    #[arg(long, env = "LATCHKEY_POSTBACK_SECRET", global = true)]
    pub postback_secret: Option<Secret>,
    /// Internal networks POSTbacks may reach on purpose (comma-separated CIDRs, e.g.
    /// `10.1.2.0/24`). Without it loopback, private, link-local and other internal
    /// addresses are refused when a URL is saved and when an event is delivered.
    #[arg(
        long,
        env = "LATCHKEY_POSTBACK_ALLOW",
        value_delimiter = ',',
        global = true
    )]
    pub postback_allow: Vec<IpNetwork>,
    /// Days delivered POSTback events are kept (shown on the key page) before pruning.
    #[arg(long, env = "LATCHKEY_POSTBACK_KEEP_DAYS", default_value_t = 30, value_parser = clap::value_parser!(i64).range(1..=3650), global = true)]
    pub postback_keep_days: i64,
    /// Deliveries in flight at once, per instance.
    #[arg(long, env = "LATCHKEY_POSTBACK_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024), global = true)]
    pub postback_concurrency: u32,
    /// Deliveries in flight at once to one receiver (host and port), per instance.
    #[arg(long, env = "LATCHKEY_POSTBACK_PER_HOST", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256), global = true)]
    pub postback_per_host: u32,
    /// Total time one delivery may take, in milliseconds (at most 10 s).
    #[arg(long, env = "LATCHKEY_POSTBACK_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=10_000), global = true)]
    pub postback_timeout_ms: u64,
    /// How often the POSTback worker looks for due events, in milliseconds.
    #[arg(
        long,
        env = "LATCHKEY_POSTBACK_POLL_MS",
        default_value_t = 1000,
        global = true
    )]
    pub postback_poll_ms: u64,
    /// First retry delay of a failed POSTback, in milliseconds (doubles each time).
    #[arg(
        long,
        env = "LATCHKEY_POSTBACK_RETRY_MS",
        default_value_t = 10_000,
        global = true
    )]
    pub postback_retry_ms: u64,
    /// How often buffered request-log lines are written, in milliseconds.
    #[arg(
        long,
        env = "LATCHKEY_USAGE_FLUSH_MS",
        default_value_t = 1000,
        global = true
    )]
    pub usage_flush_ms: u64,
    /// Days the raw request log keeps a row (a debugging aid; charts and usage figures
    /// come from rollups, kept 400 days).
    #[arg(
        long,
        env = "LATCHKEY_REQUEST_LOG_DAYS",
        default_value_t = 7,
        global = true
    )]
    pub request_log_days: i64,
    /// Most recent raw request-log rows kept per key.
    #[arg(
        long,
        env = "LATCHKEY_REQUEST_LOG_PER_KEY",
        default_value_t = 10_000,
        global = true
    )]
    pub request_log_per_key: i64,
    /// How often old usage is pruned, in milliseconds.
    #[arg(
        long,
        env = "LATCHKEY_RETENTION_EVERY_MS",
        default_value_t = 30_000,
        global = true
    )]
    pub retention_every_ms: u64,
    /// Days the audit log keeps a line (unset: for ever).
    #[arg(long, env = "LATCHKEY_AUDIT_KEEP_DAYS", global = true)]
    pub audit_keep_days: Option<i64>,
    /// Keys kept in the in-memory verification cache.
    #[arg(
        long,
        env = "LATCHKEY_KEY_CACHE_SIZE",
        default_value_t = 100_000,
        global = true
    )]
    pub key_cache_size: usize,
    /// How old, at most, the API's answer to `GET /api/v1/keys/{id}` may be, in
    /// milliseconds (0: read the database every time). Changes to a key's settings are
    /// seen at once regardless; this bounds last use, usage figures and credits, which
    /// change without a change record.
    #[arg(
        long,
        env = "LATCHKEY_KEY_READ_FRESH_MS",
        default_value_t = 1000,
        global = true
    )]
    pub key_read_fresh_ms: u64,
    /// Logins whose password check (argon2) may run at once (0 = one per core but
    /// one). Logins past it wait their turn, so a login flood cannot take every core.
    #[arg(
        long,
        env = "LATCHKEY_PASSWORD_CHECKS",
        default_value_t = 0,
        global = true
    )]
    pub password_checks: usize,
    /// Days before a key's expiry its `key.expiring` POSTback events are sent
    /// (comma-separated lead times, each 1 to 3650; each is sent once per key).
    #[arg(
        long,
        env = "LATCHKEY_EXPIRY_REMINDER_DAYS",
        value_delimiter = ',',
        default_value = "30,7,1",
        value_parser = clap::value_parser!(i64).range(1..=3650),
        global = true
    )]
    pub expiry_reminder_days: Vec<i64>,
    /// Redis for rate limits shared by several instances (`redis://127.0.0.1:6379`).
    /// Without it each instance enforces the limits alone.
    #[arg(long, env = "LATCHKEY_REDIS_URL", global = true)]
    pub redis_url: Option<Secret>,
    /// When Redis cannot answer: `open` lets requests through, `closed` refuses those
    /// of keys with rate limits.
    #[arg(long, env = "LATCHKEY_REDIS_FAIL", default_value = "open", value_parser = parse_fail_mode, global = true)]
    pub redis_fail: crate::ratelimit::FailMode,
    /// How long a rate-limit check waits for Redis, in milliseconds.
    #[arg(long, env = "LATCHKEY_REDIS_TIMEOUT_MS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000), global = true)]
    pub redis_timeout_ms: u64,
    /// Worker threads of the HTTP server (0 = one per core).
    #[arg(long, env = "LATCHKEY_WORKERS", default_value_t = 0, global = true)]
    pub workers: usize,
    /// Public keys trusted to sign leak reports (GitHub secret scanning): a JSON file's
    /// path, or the JSON itself, as `{"public_keys": [{"key_identifier", "key"}]}`.
    /// Without it `POST /api/v1/leak-reports` answers 404.
    #[arg(long, env = "LATCHKEY_LEAK_REPORT_KEYS", global = true)]
    pub leak_report_keys: Option<String>,
    /// What a leak report does to a reported key: deactivate it, or only flag it.
    #[arg(long, env = "LATCHKEY_LEAK_ACTION", value_enum, default_value_t = LeakAction::Deactivate, global = true)]
    pub leak_action: LeakAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LeakAction {
    Deactivate,
    Flag,
}

impl Settings {
    /// Whether the bind address is on this machine only.
    pub fn binds_loopback(&self) -> bool {
        let host = self
            .bind
            .rsplit_once(':')
            .map_or(self.bind.as_str(), |(h, _)| h)
            .trim_matches(['[', ']']);
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Cookies are `Secure` (and HSTS is sent) unless switched off, or by default when
    /// the server listens beyond loopback (a proxy terminates HTTPS in front of it).
    pub fn cookies_secure(&self) -> bool {
        self.secure_cookies.unwrap_or(!self.binds_loopback())
    }

    /// Every check a setting needs beyond its type, at start: a bad value stops the
    /// server with a message (exit code 2) instead of failing later, at a login.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(p) = &self.admin_password {
            crate::domain::password::validate(p.expose())
                .map_err(|e| format!("LATCHKEY_ADMIN_PASSWORD: {e}"))?;
        }
        if let Some(s) = &self.session_secret {
            if s.expose().len() < 32 {
                return Err("LATCHKEY_SESSION_SECRET must be at least 32 characters".into());
            }
        }
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|t| t.expose().len() < 16)
        {
            return Err("LATCHKEY_METRICS_TOKEN must be at least 16 characters".into());
        }
        if let Some(url) = &self.redis_url {
            let u = url.expose();
            if !(u.starts_with("redis://")
                || u.starts_with("rediss://")
                || u.starts_with("unix://"))
            {
                return Err(
                    "LATCHKEY_REDIS_URL must start with redis://, rediss:// or unix://".into(),
                );
            }
        }
        if self.db_pool_size == 0 || self.db_pool_size > 1000 {
            return Err("LATCHKEY_DB_POOL_SIZE must be between 1 and 1000".into());
        }
        if self.key_cache_size > 100_000_000 {
            return Err("LATCHKEY_KEY_CACHE_SIZE must be at most 100000000".into());
        }
        if !(1..=36_500).contains(&self.request_log_days) {
            return Err("LATCHKEY_REQUEST_LOG_DAYS must be between 1 and 36500".into());
        }
        if !(1..=10_000_000).contains(&self.request_log_per_key) {
            return Err("LATCHKEY_REQUEST_LOG_PER_KEY must be between 1 and 10000000".into());
        }
        if self
            .audit_keep_days
            .is_some_and(|d| !(1..=36_500).contains(&d))
        {
            return Err("LATCHKEY_AUDIT_KEEP_DAYS must be between 1 and 36500".into());
        }
        if let Some(keys) = &self.leak_report_keys {
            crate::domain::leak_report::load_keys(keys)
                .map_err(|e| format!("LATCHKEY_LEAK_REPORT_KEYS: {e}"))?;
        }
        if self
            .scopes
            .iter()
            .any(|s| s.trim().is_empty() || s.contains(char::is_whitespace))
        {
            return Err("LATCHKEY_SCOPES: each scope is one word, separated by commas".into());
        }
        if self.expiry_reminder_days.is_empty() || self.expiry_reminder_days.len() > 10 {
            return Err(
                "LATCHKEY_EXPIRY_REMINDER_DAYS: give 1 to 10 lead times in days, like 30,7,1"
                    .into(),
            );
        }
        Ok(())
    }

    /// The expiry reminders' lead times, longest first, each once.
    pub fn reminder_leads(&self) -> Vec<i64> {
        let mut leads = self.expiry_reminder_days.clone();
        leads.sort_unstable_by(|a, b| b.cmp(a));
        leads.dedup();
        leads
    }

    /// Where POSTbacks may go.
    pub fn receiver_policy(&self) -> crate::domain::receiver::Policy {
        crate::domain::receiver::Policy::new(self.postback_allow.clone())
    }

    /// Settings for a test or an embedding program: defaults, a given database.
    pub fn for_database(database_url: &str) -> Self {
        let cli = Cli::parse_from(["latchkey", "--database-url", database_url]);
        cli.settings
    }
}

fn parse_fail_mode(s: &str) -> Result<crate::ratelimit::FailMode, String> {
    crate::ratelimit::FailMode::parse(s)
        .ok_or_else(|| "LATCHKEY_REDIS_FAIL must be open or closed".to_owned())
}

fn parse_prefix(s: &str) -> Result<String, String> {
    if (2..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(s.to_owned())
    } else {
        Err("the key prefix must be 2 to 8 lowercase letters".to_owned())
    }
}

/// A configuration value that must not appear in logs: `Debug` shows `[redacted]`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = Settings::for_database("postgres://user:hunter2@localhost/db");
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("[redacted]"));
    }

    #[test]
    fn settings_are_checked_at_start() {
        let parse = |args: &[&str]| {
            let mut all = vec!["latchkey"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all).map(|c| c.settings)
        };
        assert!(parse(&["--session-hours", "0"]).is_err());
        assert!(parse(&["--session-hours", "9999999999999"]).is_err());
        let short = parse(&["--admin-password", "short"]).unwrap();
        assert!(
            short
                .validate()
                .unwrap_err()
                .contains("LATCHKEY_ADMIN_PASSWORD")
        );
        assert!(parse(&[]).unwrap().validate().is_ok());
        assert_eq!(parse(&[]).unwrap().reminder_leads(), vec![30, 7, 1]);
        let leads = parse(&["--expiry-reminder-days", "1,14,1,3"]).unwrap();
        assert_eq!(leads.reminder_leads(), vec![14, 3, 1]);
        assert!(parse(&["--expiry-reminder-days", "0"]).is_err());
        assert!(parse(&["--expiry-reminder-days", "7,x"]).is_err());
        assert!(parse(&["--expiry-reminder-days", "5000"]).is_err());
        let many = parse(&["--expiry-reminder-days", "1,2,3,4,5,6,7,8,9,10,11"]).unwrap();
        assert!(many.validate().is_err());
    }

    #[test]
    fn cookies_are_secure_by_default_beyond_loopback() {
        let at = |bind: &str| Settings {
            bind: bind.into(),
            ..Settings::for_database("x.db")
        };
        assert!(!at("127.0.0.1:8080").cookies_secure());
        assert!(!at("[::1]:8080").cookies_secure());
        assert!(!at("localhost:8080").cookies_secure());
        assert!(at("0.0.0.0:8080").cookies_secure());
        assert!(at("192.0.2.10:443").cookies_secure());
        let off = Settings {
            secure_cookies: Some(false),
            ..at("0.0.0.0:8080")
        };
        assert!(!off.cookies_secure());
    }

    #[test]
    fn key_prefix_is_two_to_eight_lowercase_letters() {
        assert!(parse_prefix("lk").is_ok());
        assert!(parse_prefix("abcdefgh").is_ok());
        assert!(parse_prefix("a").is_err());
        assert!(parse_prefix("abcdefghi").is_err());
        assert!(parse_prefix("Lk").is_err());
        assert!(parse_prefix("l_").is_err());
    }
}
