use diesel::prelude::*;
use latchkey::db::keys;
use latchkey::db::schema::{api_keys, audit_events, channels};
use latchkey::domain::key::PlainKey;
use latchkey::domain::role::Role;

use crate::fixtures::{
    UNREACHABLE_HOOK, channel, generate, key_id_of, loopback_receivers, range_of, revealed, seed,
    stored,
};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

#[tokio::test]
async fn an_operator_generates_a_key_that_is_shown_exactly_once() {
    let app = spawn_app_with(loopback_receivers()).await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Acme", "").await;
    let op = app.user(Role::Operator).await;
    op.get(&format!("/channels/{cid}/keys"))
        .await
        .assert_status(200);
    let res = op
        .post_form(
            &format!("/channels/{cid}/keys"),
            &[
                ("name", "Billing"),
                ("description", "billing worker"),
                ("scopes", "verify"),
                ("scopes", "keys:read"),
                ("cidr", "203.0.113.0/24"),
                ("cidr", "2001:db8::/32"),
                ("postback_url", UNREACHABLE_HOOK),
                ("enabled", "on"),
            ],
        )
        .await;
    res.assert_status(200);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let plain = revealed(&res.body);
    assert_eq!(plain.len(), 64);
    assert!(plain.starts_with("lk_"));
    assert!(res.body.contains("I have saved this key"));
    assert!(res.body.contains("will not be shown again"));

    let key_id = key_id_of(&plain);
    let k = stored(&app, &key_id);
    assert_eq!(k.name, "Billing");
    assert_eq!(k.scopes, "keys:read verify");
    assert_eq!(k.allowed_cidrs, "203.0.113.0/24 2001:db8::/32");
    assert_eq!(k.created_by, op_name(&app));
    assert_eq!(k.key_hash, PlainKey::parse(&plain).unwrap().0.hash().0);
    assert_ne!(k.key_hash, plain);

    // Never again: not in the table, not in any fragment, not in the database or logs.
    let page = op.get(&format!("/channels/{cid}/keys")).await;
    assert!(
        page.body.contains(&format!("lk_{key_id}…{}", &plain[60..])),
        "obfuscated key shown"
    );
    let fragment = op
        .hx_get(&format!("/channels/{cid}/keys"), "keys-results")
        .await;
    let edit = op.get(&format!("/keys/{key_id}/edit")).await;
    for body in [&page.body, &fragment.body, &edit.body] {
        assert!(!body.contains(&plain));
        assert!(
            !body.contains(&plain[16..56]),
            "no part of the secret is shown"
        );
    }
    assert_not_stored_anywhere(&app, &plain);
    assert!(
        !app.logs().contains(&plain[16..56]),
        "the key appears in the logs"
    );
    // Its POSTback signing secret was in the same reveal, and is nowhere else either.
    let secret = crate::postback::revealed_secret(&res.body);
    let secret = &secret["whsec_".len()..];
    let detail = op.get(&format!("/keys/{key_id}")).await;
    for body in [&page.body, &fragment.body, &edit.body, &detail.body] {
        assert!(!body.contains(secret), "the signing secret is shown again");
    }
    assert!(!app.logs().contains(secret), "the signing secret is logged");
    if let Some(path) = app.db.url().strip_prefix("sqlite://") {
        for suffix in ["", "-wal"] {
            if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                let hay = String::from_utf8_lossy(&bytes);
                assert!(
                    !hay.contains(secret),
                    "signing secret in clear in {path}{suffix}"
                );
            }
        }
    }
}

fn op_name(app: &TestApp) -> String {
    use latchkey::db::schema::users;
    users::table
        .filter(users::role.eq("operator"))
        .select(users::username)
        .first(&mut *app.conn())
        .unwrap()
}

type TextColumns = (String, String, String, Option<String>, Option<String>);
type AuditColumns = (String, Option<String>, Option<String>, Option<String>);

/// The plaintext is in no column of any table (and, on SQLite, nowhere in the files).
fn assert_not_stored_anywhere(app: &TestApp, plain: &str) {
    let secret = &plain[16..56];
    let mut conn = app.conn();
    let rows: Vec<TextColumns> = api_keys::table
        .select((
            api_keys::key_hash,
            api_keys::name,
            api_keys::scopes,
            api_keys::description,
            api_keys::postback_url,
        ))
        .load(&mut *conn)
        .unwrap();
    for r in rows {
        let all = format!("{r:?}");
        assert!(!all.contains(secret));
    }
    let details: Vec<String> = audit_events::table
        .select(audit_events::details)
        .load(&mut *conn)
        .unwrap();
    assert!(!details.iter().any(|d| d.contains(secret)));
    if let Some(path) = app.db.url().strip_prefix("sqlite://") {
        for suffix in ["", "-wal"] {
            if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                let hay = String::from_utf8_lossy(&bytes);
                assert!(!hay.contains(secret), "plaintext found in {path}{suffix}");
            }
        }
    }
}

#[tokio::test]
async fn htmx_generate_answers_the_reveal_modal_and_refreshes_the_table() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Acme", "").await;
    let modal = admin
        .hx_get(&format!("/channels/{cid}/keys/new"), "modal-stack")
        .await;
    modal.assert_status(200);
    assert!(modal.body.contains("<dialog"));
    assert!(modal.body.contains("Generate API key"));
    let res = admin
        .hx_post(
            &format!("/channels/{cid}/keys"),
            "key-form",
            &[("name", "Htmx key"), ("enabled", "on")],
        )
        .await;
    res.assert_status(200);
    assert_eq!(res.header("hx-retarget"), Some("#modal-stack"));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert!(res.body.contains("data-require-ack=\"key-saved\""));
    assert!(
        res.body
            .contains("id=\"reveal-close\" data-close-modal disabled"),
        "Close starts disabled"
    );
    assert!(res.body.contains("data-enables=\"reveal-close\""));
    // The table behind the modal refreshes itself on the event.
    assert_eq!(res.header("hx-trigger"), Some("keys-changed"));
    let results = admin
        .hx_get(&format!("/channels/{cid}/keys"), "keys-results")
        .await;
    assert!(
        results
            .body
            .contains("hx-trigger=\"keys-changed from:body\"")
    );
    assert!(results.body.contains("Htmx key"));
    let plain = revealed(&res.body);
    assert_eq!(
        res.body.matches(&plain).count(),
        1,
        "the key appears once, in the read-only field"
    );
}

#[tokio::test]
async fn field_errors_are_shown_beside_fields_with_422_keeping_what_was_typed() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Acme", "").await;
    admin.get(&format!("/channels/{cid}/keys/new")).await;
    let res = admin
        .post_form(
            &format!("/channels/{cid}/keys"),
            &[
                ("name", ""),
                ("description", "kept description"),
                ("expires_at", "2001-01-01T00:00"),
                ("cidr", "10.0.0.1/8"),
                ("cidr", "not-a-network"),
                ("cidr", "2001:db8::/32"),
                ("postback_url", "ftp://example.com"),
                ("scopes", "root"),
                ("off_the_record", "on"),
            ],
        )
        .await;
    res.assert_status(422);
    for msg in [
        "Enter a name.",
        "Choose a time in the future",
        "did you mean 10.0.0.0/8?",
        "is not an IPv4 or IPv6 network",
        "Enter an http:// or https:// URL.",
        "Unknown scope",
    ] {
        assert!(res.body.contains(msg), "missing {msg}");
    }
    assert!(res.body.contains("kept description"));
    assert!(res.body.contains("value=\"not-a-network\""));
    assert!(res.body.contains("value=\"2001:db8::/32\""));
    assert!(res.body.contains("value=\"ftp://example.com\""));
    assert!(
        res.body
            .contains("name=\"off_the_record\" value=\"on\" checked")
    );
    assert_eq!(count_keys(&app, cid), 0);
    // htmx: the form fragment alone.
    let hx = admin
        .hx_post(
            &format!("/channels/{cid}/keys"),
            "key-form",
            &[("name", "")],
        )
        .await;
    hx.assert_status(422);
    assert!(hx.body.starts_with("<form id=\"key-form\""));
}

fn count_keys(app: &TestApp, cid: i64) -> i64 {
    api_keys::table
        .filter(api_keys::channel_id.eq(cid))
        .count()
        .get_result(&mut *app.conn())
        .unwrap()
}

#[tokio::test]
async fn networks_are_added_with_plus_and_removed_with_x() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Acme", "").await;
    let url = format!("/channels/{cid}/keys");
    admin.get(&format!("{url}/new")).await;
    let res = admin
        .post_form(
            &url,
            &[("name", "n"), ("cidr", "10.0.0.0/8"), ("add_cidr", "1")],
        )
        .await;
    res.assert_status(200);
    assert!(res.body.contains("id=\"cidr-0\""));
    assert!(res.body.contains("id=\"cidr-1\""), "a new empty row");
    let res = admin
        .post_form(
            &url,
            &[
                ("name", "n"),
                ("cidr", "10.0.0.0/8"),
                ("cidr", "::1"),
                ("remove_cidr", "0"),
            ],
        )
        .await;
    assert!(!res.body.contains("10.0.0.0/8"));
    assert!(res.body.contains("value=\"::1\""));
    assert_eq!(count_keys(&app, cid), 0, "pressing + or × saves nothing");
}

#[tokio::test]
async fn names_are_unique_per_channel_ignoring_case_on_create_and_rename() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let a = channel(&app, &admin, "A", "").await;
    let b = channel(&app, &admin, "B", "").await;
    generate(&admin, a, &[("name", "Billing"), ("enabled", "on")]).await;
    let second = generate(&admin, a, &[("name", "Other"), ("enabled", "on")]).await;
    generate(&admin, b, &[("name", "Billing"), ("enabled", "on")]).await; // other channel: fine
    let res = admin
        .post_form(
            &format!("/channels/{a}/keys"),
            &[("name", "billing"), ("enabled", "on")],
        )
        .await;
    res.assert_status(422);
    assert!(
        res.body
            .contains("A key with this name already exists in this channel.")
    );
    let kid = key_id_of(&second);
    admin
        .get(&format!("/keys/{kid}/rename"))
        .await
        .assert_status(200);
    let res = admin
        .hx_post(
            &format!("/keys/{kid}/rename"),
            "rename-form",
            &[("name", "BILLING")],
        )
        .await;
    res.assert_status(422);
    assert!(
        res.body
            .contains("A key with this name already exists in this channel.")
    );
    assert!(res.body.contains("value=\"BILLING\""));
    let res = admin
        .hx_post(
            &format!("/keys/{kid}/rename"),
            "rename-form",
            &[("name", "Renamed")],
        )
        .await;
    res.assert_status(200);
    assert_eq!(
        res.header("hx-retarget"),
        Some(format!("#key-{kid}").as_str())
    );
    assert!(res.body.starts_with(&format!("<tr id=\"key-{kid}\"")));
    assert!(res.body.contains("Renamed"));
    assert!(res.body.contains("toast-success"));
    assert_eq!(stored(&app, &kid).name, "Renamed");
}

#[tokio::test]
async fn a_hostile_name_and_description_are_shown_escaped() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Acme", "").await;
    generate(
        &admin,
        cid,
        &[
            ("name", "<script>alert(1)</script>"),
            ("description", "\"><img src=x onerror=alert(2)>"),
            ("enabled", "on"),
        ],
    )
    .await;
    let page = admin.get(&format!("/channels/{cid}/keys")).await;
    assert!(!page.body.contains("<script>alert(1)</script>"));
    assert!(!page.body.contains("<img src=x"));
    assert!(
        page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
            || page.body.contains("&#60;script&#62;")
    );
}

#[tokio::test]
async fn twenty_simultaneous_creates_at_a_limit_of_five_make_exactly_five_keys() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Limited", "5").await;
    admin.get(&format!("/channels/{cid}/keys")).await;
    let url = format!("/channels/{cid}/keys");
    let names: Vec<String> = (0..20).map(|i| format!("race-{i}")).collect();
    let results = futures_join(names.iter().map(|n| {
        let (admin, url) = (&admin, &url);
        async move {
            admin
                .post_form(url, &[("name", n.as_str()), ("enabled", "on")])
                .await
        }
    }))
    .await;
    let ok = results.iter().filter(|r| r.status.as_u16() == 200).count();
    let refused = results.iter().filter(|r| r.status.as_u16() == 422).count();
    assert_eq!(
        ok,
        5,
        "statuses: {:?}",
        results
            .iter()
            .map(|r| r.status.as_u16())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        refused,
        15,
        "logs: {}\nstatuses: {:?}",
        app.logs()
            .lines()
            .filter(|l| l.contains("ERROR"))
            .take(3)
            .collect::<Vec<_>>()
            .join("\n"),
        results
            .iter()
            .map(|r| r.status.as_u16())
            .collect::<Vec<_>>()
    );
    assert!(
        results
            .iter()
            .any(|r| r.body.contains("reached its limit of 5 keys"))
    );
    assert_eq!(count_keys(&app, cid), 5);
    let kc: i64 = channels::table
        .find(cid)
        .select(channels::key_count)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(kc, 5);
    // At the limit the button is disabled and says why; the form is refused.
    let page = admin.get(&url).await;
    assert!(
        page.body
            .contains("aria-disabled=\"true\" aria-describedby=\"limit-reason-")
    );
    assert!(
        page.body
            .contains("This channel has reached its limit of 5 keys.")
    );
    admin.get(&format!("{url}/new")).await.assert_status(409);
}

#[tokio::test]
async fn twenty_simultaneous_creates_of_one_name_make_one_key() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Names", "50").await;
    admin.get(&format!("/channels/{cid}/keys")).await;
    let url = format!("/channels/{cid}/keys");
    let results = futures_join(
        (0..20).map(|_| admin.post_form(&url, &[("name", "same"), ("enabled", "on")])),
    )
    .await;
    assert_eq!(
        results.iter().filter(|r| r.status.as_u16() == 200).count(),
        1
    );
    assert_eq!(count_keys(&app, cid), 1);
    let kc: i64 = channels::table
        .find(cid)
        .select(channels::key_count)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(kc, 1, "a refused create gives its slot back");
}

async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    futures_util::future::join_all(futs).await
}

fn link(body: &str, rel: &str) -> Option<String> {
    let marker = format!("rel=\"{rel}\" href=\"");
    let at = body.find(&marker)? + marker.len();
    let end = body[at..].find('"')? + at;
    Some(body[at..end].replace("&amp;", "&").replace("&#38;", "&"))
}

fn disabled(body: &str, label: &str) -> bool {
    body.contains(&format!("disabled>{label}</button>"))
}

/// Whether a keys page lists the key named `name` (not merely a row id that starts
/// with the same characters: row ids are `key-<random key id>`).
fn shows(body: &str, name: &str) -> bool {
    body.contains(&format!("Edit {name}\""))
}

#[tokio::test]
async fn previous_and_next_walk_the_pages_and_are_disabled_at_the_ends() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Paged", "").await;
    seed(&app, cid, (0..45).map(|i| format!("key-{i:02}")));
    let first = admin.get(&format!("/channels/{cid}/keys?sort=name")).await;
    assert_eq!(range_of(&first.body), "1–20 of 45");
    assert!(disabled(&first.body, "← Previous"));
    assert!(
        shows(&first.body, "key-00")
            && shows(&first.body, "key-19")
            && !shows(&first.body, "key-20")
    );
    let next = link(&first.body, "next").expect("a next link");
    let second = admin.get(&next).await;
    assert_eq!(range_of(&second.body), "21–40 of 45");
    assert!(
        shows(&second.body, "key-20")
            && shows(&second.body, "key-39")
            && !shows(&second.body, "key-19")
    );
    assert!(link(&second.body, "prev").is_some() && link(&second.body, "next").is_some());
    let third = admin.get(&link(&second.body, "next").unwrap()).await;
    assert_eq!(range_of(&third.body), "41–45 of 45");
    assert!(disabled(&third.body, "Next →"));
    assert!(shows(&third.body, "key-44"));
    let back = admin.get(&link(&third.body, "prev").unwrap()).await;
    assert_eq!(range_of(&back.body), "21–40 of 45");
    assert!(shows(&back.body, "key-20") && shows(&back.body, "key-39"));
    let start = admin.get(&link(&back.body, "prev").unwrap()).await;
    assert_eq!(range_of(&start.body), "1–20 of 45");
    assert!(disabled(&start.body, "← Previous"));
    // Other page sizes and a descending sort.
    let fifty = admin.get(&format!("/channels/{cid}/keys?size=50")).await;
    assert_eq!(range_of(&fifty.body), "1–45 of 45");
    assert!(disabled(&fifty.body, "Next →"));
    let ten = admin
        .get(&format!("/channels/{cid}/keys?size=10&sort=name&dir=desc"))
        .await;
    assert_eq!(range_of(&ten.body), "1–10 of 45");
    let first_row = ten.body.find("Edit key-44\"").unwrap();
    assert!(first_row < ten.body.find("Edit key-43\"").unwrap());
    assert!(!shows(&ten.body, "key-34"));
}

#[tokio::test]
async fn filtering_and_paging_work_together_and_the_url_keeps_the_filter() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Filtered", "").await;
    seed(
        &app,
        cid,
        (0..25)
            .map(|i| format!("Alpha-{i:02}"))
            .chain((0..20).map(|i| format!("beta-{i:02}"))),
    );
    let url = format!("/channels/{cid}/keys?q=ALPHA&sort=name");
    let page = admin.hx_get(&url, "keys-results").await;
    page.assert_status(200);
    assert!(
        page.body.starts_with("<div id=\"keys-results\""),
        "only the results are swapped"
    );
    assert_eq!(
        page.header("hx-push-url"),
        Some(format!("/channels/{cid}/keys?q=ALPHA&sort=name").as_str())
    );
    assert_eq!(range_of(&page.body), "1–20 of 25");
    assert!(!page.body.contains("beta-"));
    let next = link(&page.body, "next").unwrap();
    assert!(next.contains("q=ALPHA"), "paging keeps the filter: {next}");
    let second = admin.get(&next).await;
    assert_eq!(range_of(&second.body), "21–25 of 25");
    assert!(
        second.body.contains("value=\"ALPHA\""),
        "the full page shows the filter in the box"
    );
    // Wildcards typed by a person are literal.
    let none = admin.get(&format!("/channels/{cid}/keys?q=%25")).await;
    assert_eq!(range_of(&none.body), "0 keys");
    assert!(none.body.contains("No keys match"));
}

#[tokio::test]
async fn a_pasted_full_key_or_key_id_finds_that_key_without_echoing_the_key() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Search", "").await;
    seed(&app, cid, (0..5).map(|i| format!("other-{i}")));
    let plain = generate(&admin, cid, &[("name", "needle"), ("enabled", "on")]).await;
    let key_id = key_id_of(&plain);
    let by_key = admin
        .hx_get(&format!("/channels/{cid}/keys?q={plain}"), "keys-results")
        .await;
    assert_eq!(range_of(&by_key.body), "1–1 of 1");
    assert!(by_key.body.contains("needle"));
    assert!(!by_key.body.contains(&plain[16..56]));
    assert_eq!(
        by_key.header("hx-push-url"),
        Some(format!("/channels/{cid}/keys?q={key_id}").as_str())
    );
    let by_id = admin.get(&format!("/channels/{cid}/keys?q={key_id}")).await;
    assert_eq!(range_of(&by_id.body), "1–1 of 1");
    // A mistyped key finds nothing and is not echoed either.
    let mut typo = plain.clone().into_bytes();
    typo[30] = if typo[30] == b'A' { b'B' } else { b'A' };
    let typo = String::from_utf8(typo).unwrap();
    let res = admin.get(&format!("/channels/{cid}/keys?q={typo}")).await;
    assert_eq!(
        range_of(&res.body),
        "1–1 of 1",
        "a mistyped key still finds its key by id"
    );
    assert!(
        !res.body.contains(&typo[16..56]),
        "the secret-looking rest is not echoed"
    );
    assert!(!app.logs().contains(&plain[16..56]));
}

#[tokio::test]
async fn deactivate_and_activate_swap_only_the_row_and_are_audited() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Toggle", "").await;
    let plain = generate(&admin, cid, &[("name", "t"), ("enabled", "on")]).await;
    let kid = key_id_of(&plain);
    let confirm = admin
        .hx_get(&format!("/keys/{kid}/confirm/deactivate"), "modal-stack")
        .await;
    confirm.assert_status(200);
    assert!(confirm.body.contains("Deactivate this key?"));
    let res = admin
        .hx_post(
            &format!("/keys/{kid}/deactivate"),
            &format!("key-{kid}"),
            &[],
        )
        .await;
    res.assert_status(200);
    assert!(res.body.starts_with(&format!("<tr id=\"key-{kid}\"")));
    assert!(
        res.body.contains("btn btn-success btn-xs"),
        "a green Activate button"
    );
    assert!(res.body.contains("Inactive"));
    assert!(res.body.contains("id=\"modal-stack\" hx-swap-oob=\"true\""));
    assert!(!stored(&app, &kid).enabled);
    let res = admin
        .hx_post(&format!("/keys/{kid}/activate"), &format!("key-{kid}"), &[])
        .await;
    assert!(
        res.body.contains("btn btn-danger btn-xs"),
        "a red Deactivate button"
    );
    assert!(stored(&app, &kid).enabled);
    let actions: Vec<AuditColumns> = audit_events::table
        .filter(audit_events::key_id.eq(&kid))
        .order(audit_events::id.asc())
        .select((
            audit_events::action,
            audit_events::channel_name,
            audit_events::source_ip,
            audit_events::key_name,
        ))
        .load(&mut *app.conn())
        .unwrap();
    let names: Vec<&str> = actions.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(names, ["key.create", "key.deactivate", "key.activate"]);
    assert!(actions.iter().all(|a| a.1.as_deref() == Some("Toggle")
        && a.2.as_deref() == Some("127.0.0.1")
        && a.3.as_deref() == Some("t")));
}

#[tokio::test]
async fn delete_warns_then_removes_the_row_with_a_toast() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Delete", "").await;
    let plain = generate(&admin, cid, &[("name", "doomed"), ("enabled", "on")]).await;
    let kid = key_id_of(&plain);
    let confirm = admin
        .hx_get(&format!("/keys/{kid}/confirm/delete"), "modal-stack")
        .await;
    assert!(confirm.body.contains("This cannot be undone."));
    let res = admin
        .hx_post(&format!("/keys/{kid}/delete"), &format!("key-{kid}"), &[])
        .await;
    res.assert_status(200);
    assert!(!res.body.contains("<tr"), "the row is swapped with nothing");
    assert!(res.body.contains("“doomed” deleted."));
    // The header and the results refresh themselves on the event, each from its own URL.
    assert_eq!(res.header("hx-trigger"), Some("keys-changed"));
    let page = admin.get(&format!("/channels/{cid}/keys")).await;
    assert!(page.body.contains("hx-trigger=\"keys-changed from:body\""));
    let header = admin
        .hx_get(&format!("/channels/{cid}/keys"), "keys-stats")
        .await;
    assert!(
        header.body.starts_with("<div id=\"keys-stats\"")
            && header.body.contains("<strong>0</strong> of 10 keys"),
        "the count updates: {}",
        header.body
    );
    assert!(
        keys::find_by_key_id(&mut app.conn(), &kid)
            .unwrap()
            .is_none()
    );
    // Deleting again: a toast, not a page.
    let again = admin
        .hx_post(&format!("/keys/{kid}/delete"), &format!("key-{kid}"), &[])
        .await;
    again.assert_status(404);
    assert!(again.body.contains("toast-error"));
}

#[tokio::test]
async fn edit_changes_every_setting_but_the_key() {
    let app = spawn_app_with(loopback_receivers()).await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Edit", "").await;
    let plain = generate(&admin, cid, &[("name", "before"), ("enabled", "on")]).await;
    let kid = key_id_of(&plain);
    let before = stored(&app, &kid);
    let form = admin
        .hx_get(&format!("/keys/{kid}/edit"), "modal-stack")
        .await;
    assert!(form.body.contains("value=\"before\""));
    let res = admin
        .hx_post(
            &format!("/keys/{kid}"),
            "key-form",
            &[
                ("name", "after"),
                ("description", "new description"),
                ("expires_at", "2099-12-31T23:59"),
                ("scopes", "keys:write"),
                ("cidr", "198.51.100.0/24"),
                ("postback_url", "http://127.0.0.1:9/x"),
                ("off_the_record", "on"),
            ],
        )
        .await;
    res.assert_status(200);
    assert!(res.body.contains("after"));
    let k = stored(&app, &kid);
    assert_eq!(k.name, "after");
    assert_eq!(k.description.as_deref(), Some("new description"));
    assert_eq!(
        k.expires_at
            .map(latchkey::domain::clock::input_time)
            .as_deref(),
        Some("2099-12-31T23:59")
    );
    assert_eq!(k.scopes, "keys:write");
    assert_eq!(k.allowed_cidrs, "198.51.100.0/24");
    assert_eq!(k.postback_url.as_deref(), Some("http://127.0.0.1:9/x"));
    assert!(k.off_the_record);
    assert!(!k.enabled);
    assert_eq!(k.key_hash, before.key_hash, "the key itself never changes");
    let details: String = audit_events::table
        .filter(audit_events::action.eq("key.update"))
        .select(audit_events::details)
        .first(&mut *app.conn())
        .unwrap();
    assert!(details.contains("name \"before\" → \"after\""), "{details}");
}

#[tokio::test]
async fn expired_and_never_are_shown_in_the_expires_column() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Expiry", "").await;
    let plain = generate(
        &admin,
        cid,
        &[
            ("name", "short-lived"),
            ("expires_at", "2099-01-01T00:00"),
            ("enabled", "on"),
        ],
    )
    .await;
    generate(&admin, cid, &[("name", "forever"), ("enabled", "on")]).await;
    app.exec(&format!(
        "UPDATE api_keys SET expires_at = '2001-01-01 00:00:00' WHERE key_id = '{}'",
        key_id_of(&plain)
    ));
    let page = admin.get(&format!("/channels/{cid}/keys")).await;
    assert!(
        page.body
            .contains("<span class=\"text-danger\">Expired</span>")
    );
    assert!(page.body.contains("<span class=\"muted\">Never</span>"));
}

#[tokio::test]
async fn an_empty_channel_shows_a_short_line_and_the_create_button() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Empty", "").await;
    let page = admin.get(&format!("/channels/{cid}/keys")).await;
    assert!(page.body.contains("No API keys yet"));
    assert!(
        page.body
            .contains(&format!("href=\"/channels/{cid}/keys/new\""))
    );
    assert_eq!(range_of(&page.body), "0 keys");
    // As a dialog over the Channels page (htmx), the same view in a <dialog>.
    let dialog = admin
        .hx_get(&format!("/channels/{cid}/keys"), "modal")
        .await;
    assert!(
        dialog
            .body
            .starts_with("<dialog class=\"modal modal-wide\"")
    );
    assert!(dialog.body.contains("No API keys yet"));
}

#[tokio::test]
async fn without_javascript_create_and_delete_work_with_plain_forms() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "NoJS", "").await;
    let plain = generate(&admin, cid, &[("name", "plain"), ("enabled", "on")]).await;
    let kid = key_id_of(&plain);
    let confirm = admin.get(&format!("/keys/{kid}/confirm/delete")).await;
    confirm.assert_status(200);
    assert!(confirm.body.contains("<html"));
    assert!(
        confirm
            .body
            .contains(&format!("action=\"/keys/{kid}/delete\""))
    );
    let res = admin.post_form(&format!("/keys/{kid}/delete"), &[]).await;
    res.assert_status(303);
    assert_eq!(
        res.location(),
        Some(format!("/channels/{cid}/keys").as_str())
    );
    let page = admin.get(&format!("/channels/{cid}/keys")).await;
    assert!(
        page.body.contains("“plain” deleted."),
        "the message arrives on the next page"
    );
    assert!(
        !admin
            .get(&format!("/channels/{cid}/keys"))
            .await
            .body
            .contains("“plain” deleted."),
        "once"
    );
}

#[tokio::test]
async fn each_role_against_each_key_action() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Roles", "100").await;
    let operator = app.user(Role::Operator).await;
    let support = app.user(Role::Support).await;
    let anonymous = app.browser();
    anonymous.get("/login").await;
    let mut conn = app.conn();
    let system: i64 = channels::table
        .filter(channels::is_system.eq(true))
        .select(channels::id)
        .first(&mut *conn)
        .unwrap();
    drop(conn);
    for (who, b) in [
        ("admin", &admin),
        ("operator", &operator),
        ("support", &support),
        ("anonymous", &anonymous),
    ] {
        // A fresh key per role so deletes do not interfere.
        let plain = generate(
            &admin,
            cid,
            &[("name", &format!("for-{who}")), ("enabled", "on")],
        )
        .await;
        let kid = key_id_of(&plain);
        b.get("/channels").await;
        let allowed = |role_ok: bool| match who {
            "anonymous" => 303,
            _ if role_ok => 200,
            _ => 403,
        };
        let is = |r: &[&str]| r.contains(&who);
        let manage = is(&["admin", "operator"]);
        let view = is(&["admin", "operator", "support"]);
        let cases: Vec<(&str, String, u16)> = vec![
            ("GET", format!("/channels/{cid}/keys"), allowed(view)),
            ("GET", format!("/channels/{cid}/keys/new"), allowed(manage)),
            ("GET", format!("/keys/{kid}/edit"), allowed(manage)),
            ("GET", format!("/keys/{kid}/rename"), allowed(manage)),
            (
                "GET",
                format!("/keys/{kid}/confirm/deactivate"),
                allowed(view),
            ),
            (
                "GET",
                format!("/keys/{kid}/confirm/activate"),
                allowed(manage),
            ),
            ("GET", format!("/keys/{kid}/confirm/delete"), allowed(view)),
            (
                "GET",
                format!("/channels/{system}/keys"),
                allowed(is(&["admin"])),
            ),
            ("POST", format!("/channels/{cid}/keys"), allowed(manage)),
            (
                "POST",
                format!("/keys/{kid}/rename"),
                if manage { 303 } else { allowed(false) },
            ),
            (
                "POST",
                format!("/keys/{kid}"),
                if manage { 303 } else { allowed(false) },
            ),
            (
                "POST",
                format!("/keys/{kid}/deactivate"),
                if view { 303 } else { allowed(false) },
            ),
            (
                "POST",
                format!("/keys/{kid}/activate"),
                if manage { 303 } else { allowed(false) },
            ),
            (
                "POST",
                format!("/keys/{kid}/delete"),
                if view { 303 } else { allowed(false) },
            ),
        ];
        for (method, path, expected) in cases {
            let res = if method == "GET" {
                b.get(&path).await
            } else {
                let name = format!("{who}-renamed-{}", path.len());
                b.post_form(&path, &[("name", name.as_str()), ("enabled", "on")])
                    .await
            };
            assert_eq!(
                res.status.as_u16(),
                expected,
                "{who} {method} {path}: {}",
                &res.body[..res.body.len().min(300)]
            );
        }
    }
    // What support and anonymous were refused left no trace.
    let names: Vec<String> = api_keys::table
        .select(api_keys::name)
        .load(&mut *app.conn())
        .unwrap();
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("support-") || n.starts_with("anonymous-")),
        "{names:?}"
    );
}

#[tokio::test]
async fn support_sees_no_create_or_edit_controls() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Support", "").await;
    generate(&admin, cid, &[("name", "k"), ("enabled", "on")]).await;
    let support = app.user(Role::Support).await;
    let page = support.get(&format!("/channels/{cid}/keys")).await;
    page.assert_status(200);
    assert!(!page.body.contains("Generate API Key"));
    assert!(!page.body.contains("/edit\""));
    assert!(!page.body.contains("/rename\""));
    assert!(page.body.contains("/confirm/deactivate"));
    assert!(page.body.contains("/confirm/delete"));
}

/// Filtered totals are remembered between requests (counting a substring filter reads
/// every key of the channel), so every kind of key write must make them count again.
#[tokio::test]
async fn a_filtered_total_follows_creates_renames_and_deletes() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Totals", "").await;
    let first = generate(&admin, cid, &[("name", "alpha-1"), ("enabled", "on")]).await;
    generate(&admin, cid, &[("name", "alpha-2"), ("enabled", "on")]).await;
    let beta = generate(&admin, cid, &[("name", "beta-1"), ("enabled", "on")]).await;
    let filtered = format!("/channels/{cid}/keys?q=alpha");
    let total = |body: &str| range_of(body);
    assert_eq!(total(&admin.get(&filtered).await.body), "1–2 of 2");
    assert_eq!(total(&admin.get(&filtered).await.body), "1–2 of 2");
    assert_eq!(total(&admin.get("/keys?q=alpha").await.body), "1–2 of 2");

    generate(&admin, cid, &[("name", "alpha-3"), ("enabled", "on")]).await;
    assert_eq!(total(&admin.get(&filtered).await.body), "1–3 of 3");
    assert_eq!(total(&admin.get("/keys?q=alpha").await.body), "1–3 of 3");

    let beta_id = key_id_of(&beta);
    admin
        .post_form(&format!("/keys/{beta_id}/rename"), &[("name", "alpha-b")])
        .await
        .assert_status(303);
    assert_eq!(total(&admin.get(&filtered).await.body), "1–4 of 4");

    let first_id = key_id_of(&first);
    admin
        .post_form(&format!("/keys/{first_id}/delete"), &[])
        .await
        .assert_status(303);
    assert_eq!(total(&admin.get(&filtered).await.body), "1–3 of 3");
    assert_eq!(total(&admin.get("/keys?q=alpha").await.body), "1–3 of 3");
}

#[tokio::test]
async fn the_generate_form_suggests_a_free_default_name() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Defaults", "").await;
    let form = admin.get(&format!("/channels/{cid}/keys/new")).await;
    assert!(form.body.contains("value=\"Key 1\""), "{}", form.body);
    // Taken names are skipped (compared ignoring case).
    generate(&admin, cid, &[("name", "key 2"), ("enabled", "on")]).await;
    let form = admin.get(&format!("/channels/{cid}/keys/new")).await;
    assert!(form.body.contains("value=\"Key 3\""), "{}", form.body);
    // The header's plural follows the limit.
    let one = channel(&app, &admin, "Just one", "1").await;
    let page = admin.get(&format!("/channels/{one}/keys")).await;
    assert!(
        page.body.contains("<strong>0</strong> of 1 key<"),
        "{}",
        page.body
    );
}

/// Edited from the key's own page, there is no table row to swap the answer into:
/// htmx is told to load the page again (with the message as its toast) instead of
/// being sent a row for `#key-…`, which it reported as an error and left the dialog
/// open. From a keys table the row is still swapped in place.
#[tokio::test]
async fn an_edit_from_the_key_page_reloads_it_and_from_a_table_swaps_the_row() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Edited", "").await;
    let plain = generate(&admin, cid, &[("name", "page-edit"), ("enabled", "on")]).await;
    let kid = key_id_of(&plain);
    let edit_from = |page: String, name: &'static str| {
        admin
            .client
            .post(admin.url(&format!("/keys/{kid}")))
            .header("HX-Request", "true")
            .header("HX-Target", "key-form")
            .header("HX-Current-URL", admin.url(&page))
            .header("X-CSRF-Token", admin.csrf())
            .form(&[
                ("name", name),
                ("enabled", "on"),
                ("rate_limits", "5/second"),
            ])
            .send()
    };
    let res = edit_from(format!("/keys/{kid}"), "page-edit-2")
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let redirect = res
        .headers()
        .get("hx-redirect")
        .and_then(|v| v.to_str().ok());
    assert_eq!(redirect, Some(format!("/keys/{kid}").as_str()));
    assert!(res.headers().get("hx-retarget").is_none());
    let page = admin.get(&format!("/keys/{kid}")).await;
    assert!(page.body.contains("page-edit-2") && page.body.contains("5/second"));
    assert!(page.body.contains("Saved “page-edit-2”."), "the toast");

    let res = edit_from(format!("/channels/{cid}/keys"), "page-edit-3")
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let retarget = res
        .headers()
        .get("hx-retarget")
        .and_then(|v| v.to_str().ok());
    assert_eq!(retarget, Some(format!("#key-{kid}").as_str()));
    assert!(res.headers().get("hx-redirect").is_none());
}
