//! Load and faults (run by `.ci/run`, skipped by a plain `cargo test`):
//! 50 concurrent dashboard clients creating, renaming, toggling and deleting keys;
//! then the same with `kill -9` in the middle and a restart.
//!
//! `cargo test --test it -- --ignored load::` (LATCHKEY_LOAD_SECONDS, default 60).

mod flood;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use latchkey::db::schema::{api_keys, channels};

use crate::fixtures::{channel, generate, key_id_of, revealed};
use crate::helpers::{Browser, Options, TestApp, spawn_app_with, spawn_on};

const CLIENTS: usize = 50;
const LIMIT: i64 = 40;

#[derive(Default)]
struct Ledger {
    /// key id -> plaintext, for every create the client saw acknowledged and did not
    /// see deleted.
    live: HashMap<String, String>,
    deleted: HashSet<String>,
    /// Deletes sent whose answer never came (the server may or may not have done them).
    uncertain: HashSet<String>,
    server_errors: Vec<String>,
    ops: usize,
    /// The slowest login of the clients (all log in at once, at the start).
    slowest_login: Duration,
    /// Logins answered "busy, try again" (then tried again).
    busy_logins: usize,
}

fn seconds() -> u64 {
    std::env::var("LATCHKEY_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

async fn client(
    base: String,
    user: String,
    password: String,
    channel_id: i64,
    n: usize,
    until: Instant,
    ledger: Arc<Mutex<Ledger>>,
) {
    let b = Browser::new(&base);
    let started = Instant::now();
    // A login told "busy" (503: its turn did not come within 10 s, `app::passwords`)
    // tries again a moment later, as the page asks a person to. Any other answer
    // than the redirect of a login that worked is a failure.
    let login = loop {
        let status = b.login(&user, &password).await.status.as_u16();
        if status != 503 || Instant::now() >= until {
            break status;
        }
        ledger.lock().unwrap().busy_logins += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    {
        let mut l = ledger.lock().unwrap();
        l.slowest_login = l.slowest_login.max(started.elapsed());
    }
    if login != 303 {
        ledger
            .lock()
            .unwrap()
            .server_errors
            .push(format!("client {n} could not log in: {login}"));
        return;
    }
    b.get(&format!("/channels/{channel_id}/keys")).await;
    let mut mine: Vec<String> = Vec::new();
    let mut i = 0usize;
    while Instant::now() < until {
        i += 1;
        let choice = (n * 7 + i * 13) % 10;
        let result = match (choice, mine.last().cloned()) {
            (0..=3, _) | (_, None) => {
                let name = format!("c{n}-k{i}");
                let res = b
                    .post_form(
                        &format!("/channels/{channel_id}/keys"),
                        &[("name", name.as_str()), ("enabled", "on")],
                    )
                    .await;
                if res.status.as_u16() == 200 {
                    let plain = revealed(&res.body);
                    let kid = key_id_of(&plain);
                    ledger.lock().unwrap().live.insert(kid.clone(), plain);
                    mine.push(kid);
                }
                res.status.as_u16()
            }
            (4..=5, Some(kid)) => {
                let name = format!("c{n}-r{i}");
                b.post_form(&format!("/keys/{kid}/rename"), &[("name", name.as_str())])
                    .await
                    .status
                    .as_u16()
            }
            (6..=7, Some(kid)) => {
                let action = if i % 2 == 0 { "deactivate" } else { "activate" };
                b.post_form(&format!("/keys/{kid}/{action}"), &[])
                    .await
                    .status
                    .as_u16()
            }
            (_, Some(kid)) => {
                ledger.lock().unwrap().uncertain.insert(kid.clone());
                let status = b
                    .post_form(&format!("/keys/{kid}/delete"), &[])
                    .await
                    .status
                    .as_u16();
                ledger.lock().unwrap().uncertain.remove(&kid);
                if status == 303 {
                    mine.pop();
                    let mut l = ledger.lock().unwrap();
                    l.live.remove(&kid);
                    l.deleted.insert(kid);
                }
                status
            }
        };
        let mut l = ledger.lock().unwrap();
        l.ops += 1;
        if result >= 500 {
            l.server_errors.push(format!("client {n} op {i}: {result}"));
        }
    }
}

async fn run_load(
    app: &TestApp,
    secs: u64,
    monitor_limit: bool,
    ledger: Arc<Mutex<Ledger>>,
) -> (Arc<Mutex<Ledger>>, i64) {
    let admin = app.admin().await;
    let cid = channel(app, &admin, "Load", &LIMIT.to_string()).await;
    let mut users = Vec::new();
    for n in 0..CLIENTS {
        let name = format!("load{n}");
        let pw = app.create_user(&name, latchkey::domain::role::Role::Operator);
        users.push((name, pw));
    }
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for (n, (user, pw)) in users.into_iter().enumerate() {
        tasks.push(tokio::spawn(client(
            app.base.clone(),
            user,
            pw,
            cid,
            n,
            until,
            ledger.clone(),
        )));
    }
    if monitor_limit {
        // The limit is never exceeded, watched from outside while the load runs.
        while Instant::now() < until {
            let n: i64 = api_keys::table
                .filter(api_keys::channel_id.eq(cid))
                .count()
                .get_result(&mut *app.conn())
                .unwrap();
            assert!(n <= LIMIT, "{n} keys in a channel limited to {LIMIT}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    (ledger, cid)
}

fn stored_keys(app: &TestApp, cid: i64) -> Vec<(String, String)> {
    api_keys::table
        .filter(api_keys::channel_id.eq(cid))
        .select((api_keys::key_id, api_keys::name_lower))
        .load(&mut *app.conn())
        .unwrap()
}

#[tokio::test]
#[ignore = "a minute of load: run by .ci/run"]
async fn fifty_clients_for_a_minute_keep_every_rule() {
    let app = spawn_app_with(Options {
        env: vec![
            ("LATCHKEY_DB_POOL_SIZE".into(), "8".into()),
            ("LATCHKEY_LOG".into(), "warn".into()),
        ],
    })
    .await;
    let (ledger, cid) = run_load(&app, seconds(), true, Arc::default()).await;
    let l = ledger.lock().unwrap();
    // Logins wait their turn for at most 10 s (`app::passwords`): how close it came.
    eprintln!(
        "load: slowest login {:.1} s, {} answers \"busy, try again\"",
        l.slowest_login.as_secs_f64(),
        l.busy_logins
    );
    assert!(
        l.server_errors.is_empty(),
        "5xx or failures: {:?}",
        &l.server_errors[..l.server_errors.len().min(10)]
    );
    assert!(l.ops > 500, "only {} operations ran", l.ops);
    let stored = stored_keys(&app, cid);
    let ids: HashSet<&String> = stored.iter().map(|(k, _)| k).collect();
    assert_eq!(ids.len(), stored.len(), "no duplicated key");
    let expected: HashSet<&String> = l.live.keys().collect();
    assert_eq!(
        ids, expected,
        "every acknowledged create is there, every acknowledged delete is gone"
    );
    let names: HashSet<&String> = stored.iter().map(|(_, n)| n).collect();
    assert_eq!(names.len(), stored.len(), "names stay unique");
    let count: i64 = channels::table
        .find(cid)
        .select(channels::key_count)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(
        count,
        stored.len() as i64,
        "the channel's key count matches its keys"
    );
    assert!(count <= LIMIT);
    eprintln!(
        "load: {} operations by {CLIENTS} clients, {} keys at the end",
        l.ops,
        stored.len()
    );
}

#[tokio::test]
#[ignore = "kills the server: run by .ci/run"]
async fn a_crash_mid_load_loses_no_acknowledged_create() {
    let app = spawn_app_with(Options {
        env: vec![("LATCHKEY_LOG".into(), "warn".into())],
    })
    .await;
    let admin = app.admin().await;
    let system: i64 = channels::table
        .filter(channels::is_system.eq(true))
        .select(channels::id)
        .first(&mut *app.conn())
        .unwrap();
    let verifier = generate(
        &admin,
        system,
        &[
            ("name", "verifier"),
            ("scopes", "verify"),
            ("enabled", "on"),
        ],
    )
    .await;
    let ledger: Arc<Mutex<Ledger>> = Arc::default();
    let load = run_load(&app, 30, false, ledger.clone());
    // Kill -9 once the load is in full swing (creates acknowledged), mid-request.
    let killer = async {
        while ledger.lock().unwrap().live.len() < 25 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (ledger, cid) = {
        let fut = load;
        tokio::pin!(fut);
        tokio::select! {
            r = &mut fut => r,
            _ = killer => {
                app.kill_hard();
                fut.await
            }
        }
    };
    let db = app.db.clone();
    drop(app);
    let restarted = spawn_on(db, Options { env: vec![] }).await;
    let (live, deleted, uncertain) = {
        let l = ledger.lock().unwrap();
        (l.live.clone(), l.deleted.clone(), l.uncertain.clone())
    };
    assert!(
        !live.is_empty(),
        "some creates were acknowledged before the crash"
    );
    let stored: HashSet<String> = stored_keys(&restarted, cid)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for kid in live.keys().filter(|k| !uncertain.contains(*k)) {
        assert!(
            stored.contains(kid),
            "acknowledged key {kid} lost in the crash"
        );
    }
    for kid in &deleted {
        assert!(
            !stored.contains(kid),
            "acknowledged delete of {kid} undone by the crash"
        );
    }
    let api = restarted.api(&verifier);
    for plain in live
        .iter()
        .filter(|(k, _)| !uncertain.contains(*k))
        .map(|(_, p)| p)
        .take(50)
    {
        let code = api.code(plain, None, &[]).await;
        assert!(code == "VALID" || code == "DISABLED", "{code}");
    }
    eprintln!(
        "crash: {} acknowledged keys all present after kill -9 and restart",
        live.len()
    );
}
