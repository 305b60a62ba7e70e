//! Rate limits, credits and metadata per key (issue 14): what verification answers,
//! the API's 429 and RateLimit headers, exactness under concurrency on one and two
//! instances, credits across a crash, and the policy for keys changing their own.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fixtures::{ALL_SCOPES, key, lift_system_limit, system_channel};
use crate::helpers::{Api, Options, TestApp, spawn_app, spawn_app_with, spawn_on};

/// An API client holding every scope, from the system channel.
pub(crate) async fn ops(app: &TestApp) -> Api {
    lift_system_limit(app);
    let admin = app.admin().await;
    app.api(&key(&admin, system_channel(app), "ops", ALL_SCOPES, &[]).await)
}

/// Creates a key over the API and returns its plaintext and key id.
pub(crate) async fn create(api: &Api, body: Value) -> (String, String) {
    let res = api.post("/keys", body).await;
    assert_eq!(res.status, 201, "{}", res.body);
    (
        res.body["key"].as_str().unwrap().to_owned(),
        res.body["data"]["key_id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn verification_is_rate_limited_and_carries_metadata_and_credits() {
    let app = spawn_app().await;
    let api = ops(&app).await;
    let (plain, key_id) = create(
        &api,
        json!({
            "name": "limited",
            "scopes": ["verify"],
            "rate_limits": [{"limit": 3, "per": "minute"}],
            "credits": 10,
            "metadata": {"tenant": "t-42", "plan": "pro"},
        }),
    )
    .await;
    let mut codes = Vec::new();
    let mut last = Value::Null;
    for _ in 0..4 {
        last = api.verify(&plain).await.body;
        codes.push(last["code"].as_str().unwrap().to_owned());
    }
    assert_eq!(codes, ["VALID", "VALID", "VALID", "RATE_LIMITED"]);
    assert_eq!(last["valid"], false);
    let rl = &last["ratelimit"];
    assert_eq!(
        (rl["limit"].as_u64(), rl["per"].as_str()),
        (Some(3), Some("minute"))
    );
    assert_eq!(rl["remaining"], 0);
    assert!(rl["reset"].as_u64().unwrap() > 0 && rl["retry_after"].as_u64().unwrap() > 0);
    assert_eq!(last["metadata"], json!({"tenant": "t-42", "plan": "pro"}));
    // Three valid verifications spent three credits; the refused one none.
    assert_eq!(last["credits"], Value::Null);
    let shown = api.get(&format!("/keys/{key_id}")).await;
    let held = shown.body["credits"]["remaining"].as_i64().unwrap();
    assert!(held <= 7, "{}", shown.body);
    assert_eq!(
        shown.body["rate_limits"],
        json!([{"limit": 3, "per": "minute"}])
    );
}

#[tokio::test]
async fn the_api_answers_429_with_ratelimit_headers_for_the_calling_key() {
    let app = spawn_app().await;
    let api = ops(&app).await;
    let (reader, _) = create(
        &api,
        json!({"name": "reader", "scopes": ["keys:read"], "rate_limits": [{"limit": 2, "per": "minute"}]}),
    )
    .await;
    let reader = app.api(&reader);
    let first = reader.get("/keys").await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.headers["ratelimit-policy"],
        "\"2-per-minute\";q=2;w=60"
    );
    assert!(
        first.headers["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"2-per-minute\";r=1;t=")
    );
    assert_eq!(reader.get("/keys").await.status, 200);
    let refused = reader.get("/keys").await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "RATE_LIMITED");
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert!(
        refused.headers["ratelimit"]
            .to_str()
            .unwrap()
            .contains(";r=0;")
    );
    // A key with no limits gets no headers.
    assert!(api.get("/keys").await.headers.get("ratelimit").is_none());
}

#[tokio::test]
async fn limits_credits_and_metadata_are_validated_with_field_messages() {
    let app = spawn_app().await;
    let api = ops(&app).await;
    let res = api
        .post(
            "/keys",
            json!({
                "name": "bad",
                "rate_limits": [{"limit": 0, "per": "second"}],
                "credits": -5,
                "refill": {"interval": "weekly", "amount": 5},
                "metadata": [1, 2],
            }),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.body);
    let fields = &res.body["error"]["fields"];
    for f in ["rate_limits", "credits", "refill", "metadata"] {
        assert!(fields[f].is_string(), "{f}: {}", res.body);
    }
    let big = json!({"name": "big", "metadata": {"blob": "x".repeat(5000)}});
    let res = api.post("/keys", big).await;
    assert_eq!(res.status, 422);
    assert!(
        res.body["error"]["fields"]["metadata"]
            .as_str()
            .unwrap()
            .contains("4096")
    );
    let res = api
        .post("/keys/verify", json!({"key": "lk_x", "cost": -1}))
        .await;
    assert_eq!(res.status, 400);
    assert!(res.body["error"]["fields"]["cost"].is_string());
}

#[tokio::test]
async fn credits_are_set_added_and_subtracted_audited_but_never_by_the_key_itself() {
    let app = spawn_app().await;
    let api = ops(&app).await;
    let (plain, key_id) = create(
        &api,
        json!({"name": "metered", "scopes": ["verify", "keys:write", "keys:read"], "credits": 2}),
    )
    .await;
    let path = format!("/keys/{key_id}/credits");
    let res = api.post(&path, json!({"op": "add", "amount": 5})).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["credits"]["remaining"], 7);
    let res = api
        .post(&path, json!({"op": "subtract", "amount": 100}))
        .await;
    assert_eq!(res.body["credits"]["remaining"], 0);
    assert_eq!(api.verify(&plain).await.body["code"], "USAGE_EXCEEDED");
    let res = api.post(&path, json!({"op": "set", "amount": 1})).await;
    assert_eq!(res.body["credits"]["remaining"], 1);
    assert_eq!(api.verify(&plain).await.body["code"], "VALID");
    assert_eq!(api.verify(&plain).await.body["code"], "USAGE_EXCEEDED");
    let res = api.post(&path, json!({"op": "double", "amount": 1})).await;
    assert_eq!(res.status, 422);
    // The key itself may neither add credits nor lift its limits.
    let own = app.api(&plain);
    let res = own.post(&path, json!({"op": "add", "amount": 1000})).await;
    assert_eq!(res.status, 403, "{}", res.body);
    assert_eq!(res.body["error"]["code"], "LIMIT_ESCALATION");
    let res = own
        .send(
            reqwest::Method::PATCH,
            &format!("/keys/{key_id}"),
            Some(json!({"credits": null})),
        )
        .await;
    assert_eq!(
        res.body["error"]["code"], "LIMIT_ESCALATION",
        "{}",
        res.body
    );
    // Removing the limit makes the key unlimited again.
    let res = api.post(&path, json!({"op": "set", "amount": null})).await;
    assert_eq!(res.body["credits"], Value::Null);
    assert_eq!(api.verify(&plain).await.body["code"], "VALID");
    let audit = app.admin().await.get("/audit").await.body;
    assert!(
        audit.contains("credits added 5: 2 → 7"),
        "audit line for the add"
    );
    assert!(audit.contains("credits subtracted 100: 7 → 0"));
}

/// Sends verifications of `plain` (as `verifier`, a key with the `verify` scope and no
/// limits) from `clients` tasks spread over `apps` until
/// `stop` says so; returns the count of each code and the elapsed time.
pub(crate) async fn hammer(
    apps: &[&TestApp],
    verifier: &Api,
    plain: &str,
    clients: usize,
    stop: impl Fn(usize, Instant) -> bool + Send + Sync + 'static,
) -> (usize, usize, Duration) {
    let valid = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(stop);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let base = apps[c % apps.len()].base.clone();
        let (plain, valid, sent, stop) =
            (plain.to_owned(), valid.clone(), sent.clone(), stop.clone());
        let bearer = verifier.key.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop(sent.fetch_add(1, Ordering::SeqCst), start) {
                let res: Value = client
                    .post(format!("http://{base}/api/v1/keys/verify"))
                    .bearer_auth(&bearer)
                    .json(&json!({ "key": plain }))
                    .send()
                    .await
                    .expect("verify")
                    .json()
                    .await
                    .expect("json");
                match res["code"].as_str() {
                    Some("VALID") => {
                        valid.fetch_add(1, Ordering::SeqCst);
                    }
                    Some("RATE_LIMITED" | "USAGE_EXCEEDED") => {}
                    other => panic!("unexpected answer {other:?}: {res}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    (
        valid.load(Ordering::SeqCst),
        sent.load(Ordering::SeqCst),
        elapsed,
    )
}

/// GCRA with a bucket of `limit` refilled at `limit` per second: over `d`, at most
/// `limit + limit × d` pass (the bound stated in BENCHMARKS.md / README).
pub(crate) fn bound(limit: u64, d: Duration) -> usize {
    (limit as f64 * (1.0 + d.as_secs_f64())).floor() as usize
}

async fn limited_key(api: &Api, per_second: u64) -> String {
    create(
        api,
        json!({"name": "hundred", "scopes": ["verify"], "rate_limits": [{"limit": per_second, "per": "second"}]}),
    )
    .await
    .0
}

#[tokio::test]
async fn fifty_clients_against_100_per_second_stay_within_the_bound() {
    let app = spawn_app().await;
    let api = ops(&app).await;
    let plain = limited_key(&api, 100).await;
    let (valid, sent, elapsed) = hammer(&[&app], &api, &plain, 50, |_, start| {
        start.elapsed() >= Duration::from_secs(5)
    })
    .await;
    let most = bound(100, elapsed);
    eprintln!("one instance: {valid} valid of {sent} in {elapsed:?} (bound {most})");
    assert!(valid <= most, "{valid} passed, bound {most}");
    // Clients kept the key busy: the limit, not the clients, decided.
    assert!(sent > most, "only {sent} requests were sent");
    assert!(valid >= 400, "the limit let too few through: {valid}");
}

#[tokio::test]
async fn credits_are_spent_exactly_by_fifty_clients_on_two_instances() {
    let one = spawn_app().await;
    let two = spawn_on(one.db.clone(), Options::default()).await;
    let api = ops(&one).await;
    let (plain, key_id) = create(
        &api,
        json!({"name": "thousand", "scopes": ["verify"], "credits": 1000}),
    )
    .await;
    let (valid, sent, _) = hammer(&[&one, &two], &api, &plain, 50, |n, _| n >= 2_400).await;
    eprintln!("two instances: {valid} valid of {sent}");
    assert_eq!(valid, 1000, "exactly the credits, no more, no fewer");
    // Nothing is left anywhere: every block was spent.
    let left = api.get(&format!("/keys/{key_id}")).await.body["credits"]["remaining"].clone();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn a_crash_can_under_serve_credits_but_never_over_serve() {
    let one = spawn_app().await;
    let two = spawn_on(one.db.clone(), Options::default()).await;
    let api = ops(&one).await;
    let (plain, key_id) = create(
        &api,
        json!({"name": "crash", "scopes": ["verify"], "credits": 1000}),
    )
    .await;
    let (before, _, _) = hammer(&[&one, &two], &api, &plain, 20, |n, _| n >= 300).await;
    // Instance two dies, perhaps holding a block it reserved; one goes on alone.
    two.kill_hard();
    let (after, _, _) = hammer(&[&one], &api, &plain, 20, |n, _| n >= 1_500).await;
    let total = before + after;
    eprintln!("crash: {before} + {after} valid");
    assert!(total <= 1000, "over-served: {total}");
    let left = api.get(&format!("/keys/{key_id}")).await.body["credits"]["remaining"]
        .as_i64()
        .unwrap();
    assert!(left >= 0 && total as i64 + left <= 1000);
}

#[tokio::test]
async fn a_rolled_key_hands_its_credits_to_its_successor() {
    let app = spawn_app().await;
    let api = ops(&app).await;
    let (plain, key_id) = create(
        &api,
        json!({"name": "rolled", "scopes": ["verify"], "credits": 3}),
    )
    .await;
    assert_eq!(api.verify(&plain).await.body["code"], "VALID");
    let rolled = api
        .post(&format!("/keys/{key_id}/roll"), json!({"grace": "1h"}))
        .await;
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    let successor = rolled.body["key"].as_str().unwrap().to_owned();
    assert_eq!(api.verify(&plain).await.body["code"], "USAGE_EXCEEDED");
    let codes: Vec<String> = futures_util::future::join_all((0..4).map(|_| api.verify(&successor)))
        .await
        .into_iter()
        .map(|r| r.body["code"].as_str().unwrap().to_owned())
        .collect();
    // What the old key had not spent moves over: 3, less the one block of 1 it took.
    assert_eq!(
        codes.iter().filter(|c| *c == "VALID").count(),
        2,
        "{codes:?}"
    );
}

#[tokio::test]
async fn the_dashboard_form_saves_limits_credits_and_metadata_with_field_errors() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = crate::fixtures::channel(&app, &admin, "Metered", "10").await;
    admin
        .get(&format!("/channels/{cid}/keys/new"))
        .await
        .assert_status(200);
    let bad = admin
        .post_form(
            &format!("/channels/{cid}/keys"),
            &[
                ("name", "metered"),
                ("enabled", "on"),
                ("rate_limits", "100/fortnight"),
                ("credits", "lots"),
                ("refill", "daily"),
                ("refill_amount", ""),
                ("metadata", "{\"plan\": "),
            ],
        )
        .await;
    bad.assert_status(422);
    for message in [
        "Use second, minute, hour or day",
        "Enter a whole number",
        "Refill to how many credits?",
        "Not valid JSON",
    ] {
        assert!(bad.body.contains(message), "missing “{message}”");
    }
    assert!(bad.body.contains("100/fortnight"), "what was typed is kept");
    let plain = crate::fixtures::generate(
        &admin,
        cid,
        &[
            ("name", "metered"),
            ("enabled", "on"),
            ("scopes", "verify"),
            ("rate_limits", "100/second, 10000 per day"),
            ("credits", "500"),
            ("refill", "monthly"),
            ("refill_amount", "500"),
            ("metadata", "{\"plan\": \"pro\"}"),
        ],
    )
    .await;
    let ops = ops(&app).await;
    let answer = ops.verify(&plain).await.body;
    assert_eq!(answer["code"], "VALID");
    assert_eq!(answer["metadata"], json!({"plan": "pro"}));
    assert_eq!(answer["ratelimit"]["per"], "second");
    let page = admin.get(&format!("/channels/{cid}/keys")).await.body;
    assert!(page.contains("100/second"), "the table shows the limit");
    assert!(page.contains("credits"), "the table shows the credits");
    let detail = admin
        .get(&format!("/keys/{}", crate::fixtures::key_id_of(&plain)))
        .await
        .body;
    assert!(
        detail.contains("1 of 10000 used now"),
        "the key page shows the window use"
    );
    assert!(detail.contains("499 remaining") || detail.contains("500 remaining"));
    assert!(
        detail.contains("refilled monthly to 500, next "),
        "and the next refill"
    );
    let risks = admin.get("/risks").await.body;
    assert!(
        risks.contains("No rate limit"),
        "the Risks page lists keys with no limit"
    );
}

#[tokio::test]
async fn without_redis_a_start_on_postgres_warns_that_limits_are_per_instance() {
    // Several instances share a PostgreSQL database, never a SQLite file: only
    // PostgreSQL warns (the PostgreSQL pass of this suite checks that side).
    let app = spawn_app_with(Options::default()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let warned = app.logs().contains("need Redis for shared limits");
    assert_eq!(
        warned,
        app.db.url().starts_with("postgres"),
        "{}",
        app.logs()
    );
}

/// Another instance over the app's database on a clock the test moves.
fn instance(app: &TestApp, clock: &latchkey::domain::clock::Clock) -> latchkey::state::AppState {
    let url = app.db.url().to_owned();
    let pool = latchkey::db::connect(&url, 2).unwrap();
    latchkey::state::AppState::detached(
        latchkey::config::Settings::for_database(&url),
        pool,
        clock.clone(),
    )
}

/// Spends one credit of `plain` on `state`: true when it was VALID.
async fn spend(state: &latchkey::state::AppState, plain: &str) -> bool {
    use latchkey::app::credits::{CreditCheck, spend};
    let digest = latchkey::domain::key::PlainKey::digest_of(plain).unwrap();
    let key = state.cache.get(&state.pool, digest).await.unwrap().unwrap();
    match spend(state, &key, 1).await.unwrap() {
        CreditCheck::Spent { .. } => true,
        CreditCheck::Exceeded => false,
        CreditCheck::NotCounted => panic!("the key has a credit limit"),
    }
}

async fn spend_all(state: &latchkey::state::AppState, plain: &str, tries: usize) -> usize {
    let mut n = 0;
    for _ in 0..tries {
        if spend(state, plain).await {
            n += 1;
        }
    }
    n
}

#[tokio::test]
async fn credits_refill_at_day_and_month_boundaries() {
    use time::macros::time;
    let app = spawn_app().await;
    let api = ops(&app).await;
    let (daily, _) = create(
        &api,
        json!({"name": "daily", "scopes": ["verify"], "credits": 2, "refill": {"interval": "daily", "amount": 5}}),
    )
    .await;
    let (monthly, monthly_id) = create(
        &api,
        json!({"name": "monthly", "scopes": ["verify"], "credits": 1, "refill": {"interval": "monthly", "amount": 3}}),
    )
    .await;
    let shown = api.get(&format!("/keys/{monthly_id}")).await.body;
    let today = latchkey::db::now().date();
    let first_of_next = shown["credits"]["next_refill_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(first_of_next.ends_with("-01T00:00:00Z"), "{first_of_next}");

    let clock = latchkey::domain::clock::Clock::manual(latchkey::db::now());
    let state = instance(&app, &clock);
    assert_eq!(
        spend_all(&state, &daily, 4).await,
        2,
        "the starting balance"
    );
    assert_eq!(spend_all(&state, &monthly, 3).await, 1);
    // One second before midnight: still spent.
    let midnight = time::PrimitiveDateTime::new(today.next_day().unwrap(), time!(0:00));
    clock.set(midnight - time::Duration::seconds(1));
    assert_eq!(spend_all(&state, &daily, 2).await, 0);
    // Midnight UTC: refilled to 5, once, whatever the instance.
    clock.set(midnight);
    assert_eq!(spend_all(&state, &daily, 3).await, 3);
    let other = instance(&app, &clock);
    assert_eq!(
        spend_all(&other, &daily, 5).await,
        2,
        "the same day's refill, shared"
    );
    if midnight.day() != 1 {
        assert_eq!(
            spend_all(&state, &monthly, 2).await,
            0,
            "a monthly key waits for the 1st"
        );
    }
    // The first of the next month: the monthly key is refilled to 3.
    let next_month = {
        let d = today.replace_day(1).unwrap();
        let (y, m) = if d.month() == time::Month::December {
            (d.year() + 1, time::Month::January)
        } else {
            (d.year(), d.month().next())
        };
        time::Date::from_calendar_date(y, m, 1).unwrap()
    };
    assert_eq!(first_of_next, format!("{next_month}T00:00:00Z"));
    let first = time::PrimitiveDateTime::new(next_month, time!(0:00));
    if midnight < first {
        clock.set(first - time::Duration::seconds(1));
        assert_eq!(spend_all(&other, &monthly, 2).await, 0);
    }
    clock.set(first);
    assert_eq!(spend_all(&other, &monthly, 5).await, 3);
    // A month later: refilled again, to 3 (not 3 more).
    let (y, m) = (next_month.year(), next_month.month());
    let after = if m == time::Month::December {
        time::Date::from_calendar_date(y + 1, time::Month::January, 1)
    } else {
        time::Date::from_calendar_date(y, m.next(), 1)
    }
    .unwrap();
    clock.set(time::PrimitiveDateTime::new(after, time!(0:00)));
    assert_eq!(spend_all(&state, &monthly, 5).await, 3);
}
