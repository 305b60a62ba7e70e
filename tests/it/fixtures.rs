//! Shared set-up for the integration tests: channels and keys made the way a person
//! makes them (through the dashboard), plus small readers of pages, answers and rows.

use std::future::Future;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use latchkey::db::schema::{api_keys, channels};
use latchkey::db::{self, keys};
use latchkey::domain::key::PlainKey;
use latchkey::domain::key_settings::KeyInput;

use crate::helpers::{Browser, Json, TestApp};

/// Every scope of the deployment (the contract's default list, `keys:admin` included).
pub(crate) const ALL_SCOPES: &[&str] = &["keys:read", "keys:write", "keys:admin", "verify"];

/// A POSTback receiver that is never reached: nothing listens on the discard port.
/// Loopback is internal: the server must run with [`loopback_receivers`] to store it.
pub(crate) const UNREACHABLE_HOOK: &str = "http://127.0.0.1:9/hook";

/// Server options that allow POSTback receivers on loopback (and nowhere else internal).
pub(crate) fn loopback_receivers() -> crate::helpers::Options {
    crate::helpers::Options {
        env: vec![(
            "LATCHKEY_POSTBACK_ALLOW".into(),
            crate::postback::LOOPBACK.into(),
        )],
    }
}

/// Creates a channel through the dashboard and returns its id.
pub(crate) async fn channel(app: &TestApp, admin: &Browser, name: &str, limit: &str) -> i64 {
    admin.get("/channels").await;
    admin
        .post_form("/channels", &[("name", name), ("key_limit", limit)])
        .await
        .assert_status(303);
    let mut conn = app.conn();
    channels::table
        .filter(channels::name.eq(name))
        .select(channels::id)
        .first(&mut *conn)
        .unwrap()
}

/// Saves a channel's name and key limit through the dashboard form.
pub(crate) async fn save_channel(admin: &Browser, channel_id: i64, name: &str, limit: &str) {
    admin
        .get(&format!("/channels/{channel_id}/edit"))
        .await
        .assert_status(200);
    admin
        .post_form(
            &format!("/channels/{channel_id}"),
            &[("name", name), ("key_limit", limit)],
        )
        .await
        .assert_status(303);
}

/// The id of the `system` channel, whose keys reach every channel.
pub(crate) fn system_channel(app: &TestApp) -> i64 {
    channels::table
        .filter(channels::is_system.eq(true))
        .select(channels::id)
        .first(&mut *app.conn())
        .unwrap()
}

/// Lets the system channel hold many keys (tests that make many system keys).
pub(crate) fn lift_system_limit(app: &TestApp) {
    diesel::update(channels::table.filter(channels::is_system.eq(true)))
        .set(channels::key_limit.eq(Some(100_000i64)))
        .execute(&mut *app.conn())
        .unwrap();
}

/// Creates `n` keys straight in the database (fast seeding for paging tests).
pub(crate) fn seed(app: &TestApp, channel_id: i64, names: impl IntoIterator<Item = String>) {
    let mut conn = app.conn();
    diesel::update(channels::table.find(channel_id))
        .set(channels::key_limit.eq(Some(100_000i64)))
        .execute(&mut *conn)
        .unwrap();
    for name in names {
        let settings = KeyInput {
            name,
            enabled: true,
            ..KeyInput::default()
        }
        .parse(
            &["verify".into()],
            db::now(),
            None,
            &latchkey::domain::receiver::Policy::default(),
        )
        .unwrap();
        let (plain, parts) = PlainKey::generate("lk");
        assert!(keys::reserve_slot(&mut conn, channel_id, 10).unwrap());
        keys::insert(
            &mut conn,
            &keys::NewKey {
                channel_id,
                settings: &settings,
                parts: &parts,
                hash: &plain.hash(),
                created_by: "seed",
                deactivated_by_person: false,
            },
        )
        .unwrap();
    }
}

/// Generates a key through the plain form and returns the revealed plaintext.
pub(crate) async fn generate(b: &Browser, channel_id: i64, fields: &[(&str, &str)]) -> String {
    b.get(&format!("/channels/{channel_id}/keys/new"))
        .await
        .assert_status(200);
    let res = b
        .post_form(&format!("/channels/{channel_id}/keys"), fields)
        .await;
    res.assert_status(200);
    revealed(&res.body)
}

/// A key made in the dashboard with the given scopes and extra fields (`cidr`,
/// `expires_at`, `postback_url`, `off_the_record`...), active.
pub(crate) async fn key(
    admin: &Browser,
    channel_id: i64,
    name: &str,
    scopes: &[&str],
    extra: &[(&str, &str)],
) -> String {
    let mut fields: Vec<(&str, &str)> = vec![("name", name), ("enabled", "on")];
    fields.extend(scopes.iter().map(|s| ("scopes", *s)));
    fields.extend_from_slice(extra);
    generate(admin, channel_id, &fields).await
}

/// The plaintext key in a reveal page or modal.
pub(crate) fn revealed(body: &str) -> String {
    let marker = "id=\"revealed-key\"";
    let at = body
        .find(marker)
        .unwrap_or_else(|| panic!("no reveal in {body}"));
    let v = body[at..].find("value=\"").unwrap() + at + 7;
    let end = body[v..].find('"').unwrap() + v;
    body[v..end].to_owned()
}

pub(crate) fn key_id_of(plain: &str) -> String {
    PlainKey::parse(plain).unwrap().1.key_id
}

/// The key's row as stored.
pub(crate) fn stored(app: &TestApp, key_id: &str) -> keys::ApiKey {
    keys::find_by_key_id(&mut app.conn(), key_id)
        .unwrap()
        .expect("key stored")
}

/// Whether a row for `key_id` exists.
pub(crate) fn exists(app: &TestApp, key_id: &str) -> bool {
    keys::find_by_key_id(&mut app.conn(), key_id)
        .unwrap()
        .is_some()
}

/// How many key rows the channel holds (live or not).
pub(crate) fn rows_in(app: &TestApp, channel_id: i64) -> i64 {
    api_keys::table
        .filter(api_keys::channel_id.eq(channel_id))
        .count()
        .get_result(&mut *app.conn())
        .unwrap()
}

/// Whether the channel holds a key of this name.
pub(crate) fn named(app: &TestApp, channel_id: i64, name: &str) -> bool {
    api_keys::table
        .filter(api_keys::channel_id.eq(channel_id))
        .filter(api_keys::name.eq(name))
        .count()
        .get_result::<i64>(&mut *app.conn())
        .unwrap()
        > 0
}

/// The "1–20 of 45" text of a keys page.
pub(crate) fn range_of(body: &str) -> String {
    let at = body.find("class=\"page-range\"").unwrap();
    let start = body[at..].find('>').unwrap() + at + 1;
    let end = body[start..].find('<').unwrap() + start;
    body[start..end].to_owned()
}

/// `YYYY-MM-DDTHH:MM` (UTC) this many days from now, as a form or the API takes it.
pub(crate) fn days_from_now(days: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::days(days))
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]"
        ))
        .unwrap()
}

/// The `error.code` of an API answer (empty when there is none).
pub(crate) fn error_code(res: &Json) -> &str {
    res.body["error"]["code"].as_str().unwrap_or_default()
}

/// Asserts an API refusal: its status and `error.code`.
#[track_caller]
pub(crate) fn assert_refused(res: &Json, status: u16, code: &str, what: &str) {
    assert_eq!(
        (res.status, error_code(res)),
        (status, code),
        "{what}: {}",
        res.body
    );
}

/// Polls `probe` every 50 ms until it holds; fails after one second.
pub(crate) async fn within_a_second<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if probe().await {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not within a second: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The sum of one key's rollup counts of `period` (`minute`, `hour`, `day`), of one
/// outcome or all, as written so far (rollups are written once a flush interval).
pub(crate) fn rollup_total(
    app: &TestApp,
    api_key_id: i64,
    period: &str,
    outcome: Option<&str>,
) -> i64 {
    use latchkey::db::schema::usage_rollups;
    let mut q = usage_rollups::table
        .filter(usage_rollups::api_key_id.eq(api_key_id))
        .filter(usage_rollups::period.eq(period.to_owned()))
        .into_boxed();
    if let Some(o) = outcome {
        q = q.filter(usage_rollups::outcome.eq(o.to_owned()));
    }
    let counts: Vec<i64> = q
        .select(usage_rollups::count)
        .load(&mut *app.conn())
        .unwrap();
    counts.iter().sum()
}
