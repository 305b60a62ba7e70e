use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use latchkey::db::{self, DbConnection};
use latchkey::domain::password;
use latchkey::domain::role::Role;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const SESSION_SECRET: &str = "a-test-session-secret-that-is-long-enough-0123456789";

/// A database of its own for one test.
pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl TestDb {
    pub fn new() -> Self {
        match std::env::var("LATCHKEY_TEST_POSTGRES") {
            Ok(admin_url) if !admin_url.is_empty() => Self::postgres(&admin_url),
            _ => Self::sqlite(),
        }
    }

    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("latchkey.db").display());
        TestDb::Sqlite { _dir: dir, url }
    }

    pub fn postgres(admin_url: &str) -> Self {
        let name = format!(
            "latchkey_test_{}",
            latchkey::domain::secret::random_base62(12).to_lowercase()
        );
        let mut conn = admin_connection(admin_url);
        conn.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
        TestDb::Postgres {
            admin_url: admin_url.to_owned(),
            url: format!("{base}/{name}"),
            name,
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url, .. } => url,
        }
    }

    pub fn connect(&self) -> db::PooledConnection {
        db::connect(self.url(), 2)
            .expect("connect to test database")
            .get()
            .expect("connection")
    }
}

fn admin_connection(url: &str) -> diesel::PgConnection {
    use diesel::Connection;
    diesel::PgConnection::establish(url).expect("connect to PostgreSQL admin database")
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres {
            admin_url, name, ..
        } = self
        {
            let mut conn = admin_connection(admin_url);
            let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// A running server process with captured output.
pub struct TestApp {
    pub base: String,
    pub db: Arc<TestDb>,
    child: Child,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
}

#[derive(Clone, Default)]
pub struct Options {
    pub env: Vec<(String, String)>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options { env: vec![] }).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    spawn_on(Arc::new(TestDb::new()), options).await
}

pub async fn spawn_on(db: Arc<TestDb>, options: Options) -> TestApp {
    // LATCHKEY_TEST_BIN runs the tests against another build (a release binary, for
    // the load figures); by default the binary cargo built with the tests.
    let bin = std::env::var("LATCHKEY_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_latchkey").to_owned());
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db.url())
        .env("LATCHKEY_BIND", "127.0.0.1:0")
        .env("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("LATCHKEY_SESSION_SECRET", SESSION_SECRET)
        .env("LATCHKEY_WORKERS", "2")
        // Not a setting: names the test in /proc/<pid>/environ, so a server a test
        // left running can be traced to it.
        .env(
            "LATCHKEY_TEST_CASE",
            std::thread::current().name().unwrap_or("unnamed"),
        )
        .env("LATCHKEY_DB_POOL_SIZE", "4")
        .env(
            "LATCHKEY_LOG",
            "debug,actix_server=warn,actix_http=info,h2=info,hyper=info",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in &options.env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start latchkey");
    let stdout = Arc::new(Mutex::new(String::new()));
    let stderr = Arc::new(Mutex::new(String::new()));
    pump(child.stdout.take().expect("stdout"), stdout.clone());
    pump(child.stderr.take().expect("stderr"), stderr.clone());
    let started = Instant::now();
    let base = loop {
        if let Some(addr) = stdout.lock().unwrap().lines().find_map(|l| {
            l.strip_prefix("Latchkey listening on http://")
                .map(str::to_owned)
        }) {
            break addr;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("latchkey exited with {status}: {}", stderr.lock().unwrap());
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "latchkey did not start: {}",
            stderr.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    TestApp {
        base,
        db,
        child,
        stdout,
        stderr,
    }
}

fn pump(stream: impl std::io::Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let reader = BufReader::new(stream);
        for line in reader.lines().map_while(Result::ok) {
            let mut buf = into.lock().unwrap();
            buf.push_str(&line);
            buf.push('\n');
        }
    });
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestApp {
    /// The server's process id (to read its `/proc` entries).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (a graceful shutdown) and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "latchkey did not stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`: no shutdown, no flush, as a crash.
    pub fn kill_hard(&self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
    }

    /// A JSON API client sending `Authorization: Bearer <key>`.
    /// The `/metrics` text (loopback reads it without a token).
    pub async fn metrics_text(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn api(&self, key: &str) -> Api {
        Api {
            client: reqwest::Client::new(),
            base: format!("http://{}/api/v1", self.base),
            key: key.to_owned(),
        }
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    pub async fn admin(&self) -> Browser {
        let b = self.browser();
        b.login("admin", ADMIN_PASSWORD).await;
        b
    }

    /// A logged-in browser for a new user with `role`.
    pub async fn user(&self, role: Role) -> Browser {
        let name = format!(
            "{}-{}",
            role.as_str(),
            latchkey::domain::secret::random_base62(6).to_lowercase()
        );
        let pw = self.create_user(&name, role);
        let b = self.browser();
        b.login(&name, &pw).await;
        b
    }

    pub fn create_user(&self, name: &str, role: Role) -> String {
        let pw = format!("pw-{name}-long-enough");
        let hash = password::hash(&pw).unwrap();
        db::users::insert(&mut self.conn(), name, &hash, role).expect("insert user");
        pw
    }

    pub fn conn(&self) -> db::PooledConnection {
        self.db.connect()
    }

    pub fn logs(&self) -> String {
        let out = self.stdout.lock().unwrap().clone();
        out + &self.stderr.lock().unwrap()
    }

    pub fn exec(&self, sql: &str) -> usize {
        let mut c = self.conn();
        diesel::sql_query(sql)
            .execute(&mut *c as &mut DbConnection)
            .expect("sql")
    }
}

pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }

    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "unexpected status; body:\n{}",
            self.body
        );
        self
    }
}

/// A browser-like client: its own cookie jar, the CSRF token of the last page seen.
pub struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<reqwest::cookie::Jar>,
    base: String,
    csrf: Mutex<Option<String>>,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self::with_jar(base, Arc::new(reqwest::cookie::Jar::default()), None)
    }

    /// A browser sharing `jar` (and the CSRF token of `from`): the same person on
    /// another server address.
    pub fn with_jar(base: &str, jar: Arc<reqwest::cookie::Jar>, from: Option<&Browser>) -> Self {
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let csrf = from.and_then(|b| b.csrf.lock().unwrap().clone());
        Browser {
            client,
            jar,
            base: format!("http://{base}"),
            csrf: Mutex::new(csrf),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn csrf(&self) -> String {
        self.csrf.lock().unwrap().clone().unwrap_or_default()
    }

    async fn finish(&self, res: reqwest::Response) -> Response {
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.text().await.unwrap_or_default();
        if let Some(token) = extract_csrf(&body) {
            *self.csrf.lock().unwrap() = Some(token);
        }
        Response {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        let res = self.client.get(self.url(path)).send().await.expect("GET");
        self.finish(res).await
    }

    /// An htmx GET: `HX-Request: true` and the element it targets.
    pub async fn hx_get(&self, path: &str, target: &str) -> Response {
        let res = self
            .client
            .get(self.url(path))
            .header("HX-Request", "true")
            .header("HX-Target", target)
            .send()
            .await
            .expect("GET");
        self.finish(res).await
    }

    /// A plain form post carrying the page's CSRF token, as a browser without JS sends it.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut all: Vec<(&str, String)> =
            fields.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        all.push(("csrf_token", self.csrf()));
        let res = self
            .client
            .post(self.url(path))
            .form(&all)
            .send()
            .await
            .expect("POST");
        self.finish(res).await
    }

    /// An htmx post: fields as a form, the CSRF token in the header htmx sends.
    pub async fn hx_post(&self, path: &str, target: &str, fields: &[(&str, &str)]) -> Response {
        let res = self
            .client
            .post(self.url(path))
            .header("HX-Request", "true")
            .header("HX-Target", target)
            .header("X-CSRF-Token", self.csrf())
            .form(fields)
            .send()
            .await
            .expect("POST");
        self.finish(res).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.get("/login").await.assert_status(200);
        let res = self
            .post_form("/login", &[("username", username), ("password", password)])
            .await;
        if res.status == StatusCode::SEE_OTHER {
            // Pick up the rotated CSRF token of the logged-in session.
            self.get("/channels").await;
        }
        res
    }
}

pub fn extract_csrf(body: &str) -> Option<String> {
    let marker = "\"X-CSRF-Token\": \"";
    let start = body.find(marker)? + marker.len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_owned())
}

pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
    pub key: String,
}

pub struct Json {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

impl Api {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Json {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("API request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
        };
        Json {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Json {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> Json {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn verify(&self, key: &str) -> Json {
        self.post("/keys/verify", serde_json::json!({ "key": key }))
            .await
    }

    /// The verification code for `key` seen from `ip` asking for `scopes`.
    pub async fn code(&self, key: &str, ip: Option<&str>, scopes: &[&str]) -> String {
        let res = self
            .post(
                "/keys/verify",
                serde_json::json!({ "key": key, "ip": ip, "scopes": scopes }),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        res.body["code"].as_str().unwrap().to_owned()
    }
}
