//! Support and admin tools: users, login defences, all-keys search, audit log.

use diesel::prelude::*;
use latchkey::db::schema::users;
use latchkey::domain::role::Role;

use crate::fixtures::{channel, generate, key_id_of};
use crate::helpers::{ADMIN_PASSWORD, spawn_app};

fn user_id(app: &crate::helpers::TestApp, name: &str) -> i64 {
    users::table
        .filter(users::username.eq(name))
        .select(users::id)
        .first(&mut *app.conn())
        .unwrap()
}

#[tokio::test]
async fn admins_create_users_change_roles_and_reset_passwords() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    admin.get("/users").await.assert_status(200);
    let bad = admin
        .post_form(
            "/users",
            &[
                ("username", "bad name"),
                ("role", "root"),
                ("password", "short"),
            ],
        )
        .await;
    bad.assert_status(422);
    assert!(bad.body.contains("Use letters, digits"));
    assert!(bad.body.contains("Choose a role."));
    assert!(bad.body.contains("Use at least 12 characters."));
    assert!(bad.body.contains("value=\"bad name\""));
    let res = admin
        .post_form(
            "/users",
            &[
                ("username", "Olivia"),
                ("role", "operator"),
                ("password", "olivias-password-1"),
            ],
        )
        .await;
    res.assert_status(303);
    let page = admin.get("/users").await;
    assert!(page.body.contains("User olivia created."));
    let taken = admin
        .post_form(
            "/users",
            &[
                ("username", "olivia"),
                ("role", "support"),
                ("password", "another-password-1"),
            ],
        )
        .await;
    assert!(taken.body.contains("This username is taken."));

    let olivia = app.browser();
    olivia
        .login("olivia", "olivias-password-1")
        .await
        .assert_status(303);
    assert!(
        !olivia
            .get("/channels")
            .await
            .body
            .contains("href=\"/audit\"")
    );
    let id = user_id(&app, "olivia");
    admin
        .post_form(&format!("/users/{id}/role"), &[("role", "support")])
        .await
        .assert_status(303);
    assert!(
        olivia
            .get("/channels")
            .await
            .body
            .contains("href=\"/audit\""),
        "the new role applies at once"
    );

    admin
        .post_form(
            &format!("/users/{id}/password"),
            &[("password", "a-brand-new-password")],
        )
        .await
        .assert_status(303);
    assert_eq!(
        olivia.get("/channels").await.status.as_u16(),
        303,
        "a reset ends the user's sessions"
    );
    let again = app.browser();
    again
        .login("olivia", "olivias-password-1")
        .await
        .assert_status(401);
    again
        .login("olivia", "a-brand-new-password")
        .await
        .assert_status(303);
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_at_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let op = app.user(Role::Operator).await;
    op.get("/channels").await.assert_status(200);
    let name: String = users::table
        .filter(users::role.eq("operator"))
        .select(users::username)
        .first(&mut *app.conn())
        .unwrap();
    let id = user_id(&app, &name);
    admin
        .post_form(&format!("/users/{id}/disable"), &[])
        .await
        .assert_status(303);
    let res = op.get("/channels").await;
    assert_eq!(res.status.as_u16(), 303);
    assert_eq!(res.location(), Some("/login"));
    admin
        .post_form(&format!("/users/{id}/enable"), &[])
        .await
        .assert_status(303);
    let mut conn = app.conn();
    let actions: Vec<String> = latchkey::db::audit::recent(&mut conn, 5)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(
        actions.contains(&"user.disable".to_owned()) && actions.contains(&"user.enable".to_owned())
    );
}

#[tokio::test]
async fn the_last_admin_cannot_be_removed() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let id = user_id(&app, "admin");
    let res = admin.post_form(&format!("/users/{id}/disable"), &[]).await;
    res.assert_status(409);
    assert!(res.body.contains("at least one active admin"));
    let res = admin
        .post_form(&format!("/users/{id}/role"), &[("role", "operator")])
        .await;
    res.assert_status(409);
    let still: String = users::table
        .find(id)
        .select(users::role)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(still, "admin");
    // With a second admin, the first may step down.
    app.create_user("second", Role::Admin);
    admin.get("/users").await;
    admin
        .post_form(&format!("/users/{id}/role"), &[("role", "operator")])
        .await
        .assert_status(303);
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_with_a_clear_message_for_any_name() {
    let app = spawn_app().await;
    let b = app.browser();
    for _ in 0..5 {
        b.login("admin", "wrong-password-123")
            .await
            .assert_status(401);
    }
    let blocked = b.login("admin", "wrong-password-123").await;
    blocked.assert_status(429);
    assert!(blocked.body.contains("Too many failed attempts. Wait"));
    // Even the right password waits: the throttle runs before the password check.
    let right = b.login("admin", ADMIN_PASSWORD).await;
    right.assert_status(429);
    // An unknown name is throttled exactly the same way: no user enumeration.
    for _ in 0..5 {
        b.login("ghost", "wrong-password-123")
            .await
            .assert_status(401);
    }
    let ghost = b.login("ghost", "wrong-password-123").await;
    ghost.assert_status(429);
    assert_eq!(
        ghost
            .body
            .replace("ghost", "admin")
            .split("Wait")
            .next()
            .map(str::len),
        blocked.body.split("Wait").next().map(str::len),
        "the same page for a known and an unknown account"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    b.login("admin", ADMIN_PASSWORD).await.assert_status(303);
}

#[tokio::test]
async fn all_keys_searches_across_channels_and_revokes_from_the_result() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let a = channel(&app, &admin, "Alpha", "").await;
    let b = channel(&app, &admin, "Bravo", "").await;
    let ka = generate(&admin, a, &[("name", "shared-name-a"), ("enabled", "on")]).await;
    generate(&admin, b, &[("name", "shared-name-b"), ("enabled", "on")]).await;
    let system: i64 = {
        use latchkey::db::schema::channels;
        channels::table
            .filter(channels::is_system.eq(true))
            .select(channels::id)
            .first(&mut *app.conn())
            .unwrap()
    };
    generate(
        &admin,
        system,
        &[("name", "shared-name-root"), ("enabled", "on")],
    )
    .await;
    let support = app.user(Role::Support).await;
    let res = support.get("/keys?q=shared-name").await;
    res.assert_status(200);
    assert!(res.body.contains("shared-name-a") && res.body.contains("shared-name-b"));
    assert!(
        !res.body.contains("shared-name-root"),
        "support does not see system keys"
    );
    assert!(
        res.body.contains(">Alpha</a>") && res.body.contains(">Bravo</a>"),
        "the channel column"
    );
    assert!(
        admin
            .get("/keys?q=shared-name")
            .await
            .body
            .contains("shared-name-root")
    );
    // A pasted full key finds its key; support revokes it from the result.
    let found = support
        .hx_get(&format!("/keys?q={ka}"), "keys-results")
        .await;
    assert!(found.body.contains("shared-name-a") && !found.body.contains("shared-name-b"));
    assert!(!found.body.contains(&ka[16..56]));
    let kid = key_id_of(&ka);
    let res = support
        .client
        .post(support.url(&format!("/keys/{kid}/deactivate")))
        .header("HX-Request", "true")
        .header("HX-Current-URL", format!("{}/keys?q=x", support.url("")))
        .header("X-CSRF-Token", support.csrf())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body = res.text().await.unwrap();
    assert!(
        body.contains(">Alpha</a>"),
        "the swapped row keeps its channel cell"
    );
    assert!(!app.logs().contains(&ka[16..56]));
}

#[tokio::test]
async fn the_audit_log_filters_and_support_sees_key_events_only() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Audited", "").await;
    let k = generate(&admin, cid, &[("name", "watched"), ("enabled", "on")]).await;
    let kid = key_id_of(&k);
    admin
        .post_form(&format!("/keys/{kid}/deactivate"), &[])
        .await
        .assert_status(303);
    app.browser().login("admin", "wrong-password-123").await;
    let all = admin.get("/audit").await;
    all.assert_status(200);
    for a in [
        "login.failed",
        "channel.create",
        "key.create",
        "key.deactivate",
        "login",
    ] {
        assert!(all.body.contains(&format!("<code>{a}</code>")), "{a}");
    }
    let only = admin.get("/audit?action=key.deactivate").await;
    assert!(
        only.body.contains("<code>key.deactivate</code>")
            && !only.body.contains("<code>key.create</code>")
    );
    let by_key = admin.get(&format!("/audit?key={kid}")).await;
    assert_eq!(
        by_key.body.matches("<tr>").count() - 1,
        2,
        "create and deactivate"
    );
    let by_channel = admin
        .get(&format!("/audit?channel={cid}&actor=admin"))
        .await;
    assert!(by_channel.body.contains("<code>channel.create</code>"));
    let future = admin.get("/audit?from=2099-01-01").await;
    assert!(future.body.contains("No events match."));
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let window = admin
        .get(&format!("/audit?from={today}&to={today}&action=key.create"))
        .await;
    assert!(window.body.contains("<code>key.create</code>"));
    let support = app.user(Role::Support).await;
    let s = support.get("/audit").await;
    s.assert_status(200);
    assert!(s.body.contains("<code>key.create</code>"));
    assert!(
        !s.body.contains("<code>login.failed</code>")
            && !s.body.contains("<code>channel.create</code>")
    );
    assert!(
        !support
            .get("/audit?action=login.failed")
            .await
            .body
            .contains("<code>login.failed</code>")
    );
}

#[tokio::test]
async fn the_risk_overview_counts_risky_keys_and_links_to_them() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Risky", "").await;
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::days(2))
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]"
        ))
        .unwrap();
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(60))
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]"
        ))
        .unwrap();
    generate(&admin, cid, &[("name", "forever-open"), ("enabled", "on")]).await;
    generate(
        &admin,
        cid,
        &[
            ("name", "fenced-soon"),
            ("expires_at", soon.as_str()),
            ("cidr", "10.0.0.0/8"),
            ("enabled", "on"),
        ],
    )
    .await;
    let used = generate(
        &admin,
        cid,
        &[
            ("name", "fenced-later"),
            ("expires_at", later.as_str()),
            ("cidr", "10.0.0.0/8"),
            ("enabled", "on"),
        ],
    )
    .await;
    // "fenced-later" was used yesterday (its rollups say so; its raw log and last use
    // are empty: the idle check reads rollups); the others never.
    let yesterday = (latchkey::db::now() - time::Duration::days(1))
        .format(&time::macros::format_description!("[year]-[month]-[day]"))
        .unwrap();
    app.exec(&format!(
        "INSERT INTO usage_rollups (api_key_id, period, bucket_start, outcome, count) \
         SELECT id, 'day', '{yesterday} 00:00:00', 'VALID', 3 FROM api_keys WHERE key_id = '{}'",
        key_id_of(&used)
    ));
    let page = admin.get("/risks").await;
    page.assert_status(200);
    let count_of = |label: &str| -> String {
        let at = page.body.find(label).unwrap();
        let before = &page.body[..at];
        let c = before.rfind("risk-count\">").unwrap() + "risk-count\">".len();
        before[c..c + before[c..].find('<').unwrap()].to_owned()
    };
    assert_eq!(count_of("Keys that never expire"), "1");
    assert_eq!(count_of("Keys idle for 90 days or never used"), "2");
    assert_eq!(count_of("Keys usable from any address"), "1");
    assert_eq!(count_of("Keys expiring within 7 days"), "1");
    let list = admin.get("/keys?risk=expiring").await;
    assert!(
        list.body.contains("fenced-soon")
            && !list.body.contains("forever-open")
            && !list.body.contains("fenced-later")
    );
    assert!(list.body.contains("Keys expiring within 7 days"));
    let idle = admin.get("/keys?risk=idle").await;
    assert!(idle.body.contains("forever-open") && !idle.body.contains("fenced-later"));
    assert!(
        app.user(Role::Operator)
            .await
            .get("/risks")
            .await
            .status
            .as_u16()
            == 403
    );
}
