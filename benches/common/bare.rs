//! The references Latchkey is measured against, served by one actix-web server in the
//! bench process (its own thread and actix System, two workers like the server's
//! default on two cores):
//! - `GET /bare`: a plain JSON handler answering `{"ok":true}`;
//! - `POST /bare`: the same, after reading a request body whole;
//! - `POST /floor`: the least a verification must do — read and parse the JSON body,
//!   blake3-hash the bearer and the presented key, find both in a map, count the use,
//!   send Latchkey's own answer for that key. No middleware, metrics, usage buffer or
//!   checks: the ceiling of any verification on the machine it runs on.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use super::Res;

type Digest = [u8; 32];

/// The floor's keys (by digest) and the answer it sends for each presented key.
#[derive(Default)]
pub struct Floor {
    keys: RwLock<HashMap<Digest, Vec<u8>>>,
    uses: AtomicU64,
}

impl Floor {
    /// Lets `caller` verify `key`, answered with `answer`.
    pub fn admit(&self, caller: &str, key: &str, answer: Vec<u8>) {
        if let Ok(mut keys) = self.keys.write() {
            keys.entry(digest(caller)).or_default();
            keys.insert(digest(key), answer);
        }
    }

    /// Verifications the floor answered.
    pub fn uses(&self) -> u64 {
        self.uses.load(Ordering::Relaxed)
    }
}

fn digest(plain: &str) -> Digest {
    *blake3::hash(plain.trim().as_bytes()).as_bytes()
}

pub struct Reference {
    /// `127.0.0.1:<port>`.
    pub addr: std::net::SocketAddr,
    pub floor: web::Data<Floor>,
}

impl Reference {
    pub fn bare_url(&self) -> String {
        format!("http://{}/bare", self.addr)
    }

    pub fn floor_url(&self) -> String {
        format!("http://{}/floor", self.addr)
    }
}

async fn bare() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "ok": true }))
}

/// The bare handler for a request with a body: reads it whole, answers the same.
async fn bare_post(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "ok": !body.is_empty() }))
}

#[derive(serde::Deserialize)]
struct Asked {
    key: String,
}

async fn verify_floor(req: HttpRequest, body: web::Bytes, f: web::Data<Floor>) -> HttpResponse {
    let Ok(asked) = serde_json::from_slice::<Asked>(&body) else {
        return HttpResponse::BadRequest().finish();
    };
    let caller = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(digest);
    let key = digest(&asked.key);
    let answer = f.keys.read().ok().and_then(|keys| {
        caller
            .filter(|c| keys.contains_key(c))
            .and_then(|_| keys.get(&key).cloned())
    });
    match answer {
        Some(answer) => {
            f.uses.fetch_add(1, Ordering::Relaxed);
            HttpResponse::Ok()
                .content_type("application/json")
                .body(answer)
        }
        None => HttpResponse::Unauthorized().finish(),
    }
}

/// Starts the reference server for the rest of the process.
pub fn start() -> Res<Reference> {
    let (tx, rx) = std::sync::mpsc::channel();
    let floor = web::Data::new(Floor::default());
    let shared = floor.clone();
    std::thread::spawn(move || {
        let system = actix_web::rt::System::new();
        let served = system.block_on(async {
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(shared.clone())
                    .route("/bare", web::get().to(bare))
                    .route("/bare", web::post().to(bare_post))
                    .route("/floor", web::post().to(verify_floor))
            })
            .workers(2)
            .disable_signals()
            .bind("127.0.0.1:0")?;
            let _ = tx.send(server.addrs().first().copied());
            server.run().await
        });
        if let Err(e) = served {
            eprintln!("the reference server stopped: {e}");
        }
    });
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(30))?
        .ok_or("the reference server did not bind")?;
    Ok(Reference { addr, floor })
}

/// Latchkey's answer (the body) to `caller` verifying `key` on the server at `addr`
/// (`host:port`), which must be VALID.
pub fn valid_answer(addr: &str, caller: &str, key: &str) -> Res<Vec<u8>> {
    use std::io::{Read, Write};
    let body = format!("{{\"key\": \"{key}\"}}");
    let mut stream = std::net::TcpStream::connect(addr)?;
    write!(
        stream,
        "POST /api/v1/keys/verify HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {caller}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    let at = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no answer from the server")?;
    let answer = reply.split_off(at + 4);
    if !answer.starts_with(br#"{"valid":true"#) {
        return Err(format!("not VALID: {}", String::from_utf8_lossy(&answer)).into());
    }
    Ok(answer)
}
