use latchkey::domain::role::Role;

use crate::helpers::spawn_app;

fn channel_id(app: &crate::helpers::TestApp, name: &str) -> i64 {
    let mut conn = app.conn();
    latchkey::db::channels::list(&mut conn)
        .unwrap()
        .into_iter()
        .find(|c| c.name == name)
        .map(|c| c.id)
        .unwrap_or_else(|| panic!("channel {name} not found"))
}

#[tokio::test]
async fn an_admin_creates_a_channel_with_a_plain_form() {
    let app = spawn_app().await;
    let b = app.admin().await;
    b.get("/channels/new").await.assert_status(200);
    let res = b
        .post_form("/channels", &[("name", "Acme Corp"), ("key_limit", "")])
        .await;
    res.assert_status(303);
    assert_eq!(res.location(), Some("/channels"));
    let page = b.get("/channels").await;
    assert!(page.body.contains("Acme Corp"));
    assert!(
        page.body.contains("(default)"),
        "an empty limit shows the deployment default"
    );
    let id = channel_id(&app, "Acme Corp");
    assert!(
        page.body.contains(&format!("/channels/{id}/keys")),
        "each row links to its API keys"
    );
}

#[tokio::test]
async fn an_admin_creates_a_channel_with_htmx_and_gets_the_table_and_a_toast() {
    let app = spawn_app().await;
    let b = app.admin().await;
    let modal = b.hx_get("/channels/new", "modal").await;
    modal.assert_status(200);
    assert!(
        modal.body.contains("<dialog"),
        "htmx gets the form inside a dialog"
    );
    assert!(
        !modal.body.contains("<html"),
        "htmx gets a fragment, not a page"
    );
    let res = b
        .hx_post(
            "/channels",
            "channel-form",
            &[("name", "Beta"), ("key_limit", "25")],
        )
        .await;
    res.assert_status(200);
    assert_eq!(res.header("hx-retarget"), Some("#channels-table"));
    assert!(res.body.contains("id=\"channels-table\""));
    assert!(res.body.contains("Beta"));
    assert!(
        res.body.contains("Channel &quot;Beta&quot; created.")
            || res.body.contains("Channel &#34;Beta&#34; created."),
        "{}",
        res.body
    );
    assert!(res.body.contains("hx-swap-oob"));
}

#[tokio::test]
async fn invalid_channel_input_is_shown_beside_the_field_and_kept() {
    let app = spawn_app().await;
    let b = app.admin().await;
    let res = b
        .hx_post(
            "/channels",
            "channel-form",
            &[("name", "   "), ("key_limit", "0")],
        )
        .await;
    res.assert_status(422);
    assert!(res.body.contains("Enter a name."));
    assert!(res.body.contains("Enter a whole number from 1 to 1000000"));
    assert!(res.body.contains("value=\"0\""), "the typed limit is kept");
    // Without JavaScript: the same errors on a full page.
    b.get("/channels").await;
    let long = "x".repeat(101);
    let res = b
        .post_form(
            "/channels",
            &[("name", long.as_str()), ("key_limit", "abc")],
        )
        .await;
    res.assert_status(422);
    assert!(res.body.contains("<html"));
    assert!(res.body.contains("Use at most 100 characters."));
    assert!(res.body.contains("value=\"abc\""));
}

#[tokio::test]
async fn a_taken_channel_name_is_refused_clearly() {
    let app = spawn_app().await;
    let b = app.admin().await;
    b.post_form("/channels", &[("name", "Gamma"), ("key_limit", "")])
        .await
        .assert_status(303);
    b.get("/channels").await;
    let res = b
        .post_form("/channels", &[("name", "Gamma"), ("key_limit", "")])
        .await;
    res.assert_status(422);
    assert!(
        res.body
            .contains("A channel with this name already exists.")
    );
}

#[tokio::test]
async fn an_admin_renames_a_channel_and_sets_its_limit() {
    let app = spawn_app().await;
    let b = app.admin().await;
    b.post_form("/channels", &[("name", "Delta"), ("key_limit", "")])
        .await
        .assert_status(303);
    let id = channel_id(&app, "Delta");
    let edit = b.get(&format!("/channels/{id}/edit")).await;
    edit.assert_status(200);
    assert!(edit.body.contains("value=\"Delta\""));
    let res = b
        .post_form(
            &format!("/channels/{id}"),
            &[("name", "Delta Two"), ("key_limit", "3")],
        )
        .await;
    res.assert_status(303);
    let mut conn = app.conn();
    let c = latchkey::db::channels::find(&mut conn, id)
        .unwrap()
        .unwrap();
    assert_eq!(c.name, "Delta Two");
    assert_eq!(c.key_limit, Some(3));
    let page = b.get("/channels").await;
    assert!(page.body.contains("Delta Two"));
    let events = latchkey::db::audit::recent(&mut conn, 5).unwrap();
    let e = events
        .iter()
        .find(|e| e.action == "channel.update")
        .expect("audit event");
    assert_eq!(e.actor, "admin");
    assert!(
        e.details.contains("renamed \"Delta\" to \"Delta Two\""),
        "{}",
        e.details
    );
    assert_eq!(e.source_ip.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn the_system_channel_keeps_its_name() {
    let app = spawn_app().await;
    let b = app.admin().await;
    let id = channel_id(&app, "system");
    b.get(&format!("/channels/{id}/edit"))
        .await
        .assert_status(200);
    b.post_form(
        &format!("/channels/{id}"),
        &[("name", "renamed"), ("key_limit", "50")],
    )
    .await
    .assert_status(303);
    let mut conn = app.conn();
    let c = latchkey::db::channels::find(&mut conn, id)
        .unwrap()
        .unwrap();
    assert_eq!(c.name, "system");
    assert_eq!(c.key_limit, Some(50));
}

#[tokio::test]
async fn editing_a_missing_channel_is_a_404_page() {
    let app = spawn_app().await;
    let b = app.admin().await;
    let res = b.get("/channels/999999/edit").await;
    res.assert_status(404);
    assert!(res.body.contains("does not exist"));
    let res = b.get("/channels/not-a-number/edit").await;
    res.assert_status(404);
}

#[tokio::test]
async fn every_role_against_every_channel_page() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    admin
        .post_form("/channels", &[("name", "Matrix"), ("key_limit", "")])
        .await
        .assert_status(303);
    let id = channel_id(&app, "Matrix");
    let operator = app.user(Role::Operator).await;
    let support = app.user(Role::Support).await;
    let anonymous = app.browser();
    anonymous.get("/login").await;

    let edit = format!("/channels/{id}/edit");
    let update = format!("/channels/{id}");
    // (who, method, path, expected status)
    let cases: Vec<(&str, &crate::helpers::Browser, &str, &str, u16)> = vec![
        ("admin", &admin, "GET", "/channels", 200),
        ("admin", &admin, "GET", "/channels/new", 200),
        ("admin", &admin, "GET", edit.as_str(), 200),
        ("admin", &admin, "POST", "/channels", 303),
        ("admin", &admin, "POST", update.as_str(), 303),
        ("operator", &operator, "GET", "/channels", 200),
        ("operator", &operator, "GET", "/channels/new", 403),
        ("operator", &operator, "GET", edit.as_str(), 403),
        ("operator", &operator, "POST", "/channels", 403),
        ("operator", &operator, "POST", update.as_str(), 403),
        ("support", &support, "GET", "/channels", 200),
        ("support", &support, "GET", "/channels/new", 403),
        ("support", &support, "GET", edit.as_str(), 403),
        ("support", &support, "POST", "/channels", 403),
        ("support", &support, "POST", update.as_str(), 403),
        ("anonymous", &anonymous, "GET", "/channels", 303),
        ("anonymous", &anonymous, "GET", "/channels/new", 303),
        ("anonymous", &anonymous, "GET", edit.as_str(), 303),
        ("anonymous", &anonymous, "POST", "/channels", 303),
        ("anonymous", &anonymous, "POST", update.as_str(), 303),
    ];
    for (i, (who, b, method, path, expected)) in cases.into_iter().enumerate() {
        let res = if method == "GET" {
            b.get(path).await
        } else {
            let name = format!("Made by {who} {i}");
            b.post_form(path, &[("name", name.as_str()), ("key_limit", "")])
                .await
        };
        assert_eq!(
            res.status.as_u16(),
            expected,
            "{who} {method} {path}: {}",
            res.body
        );
    }
    // The refused writes changed nothing.
    let mut conn = app.conn();
    let names: Vec<String> = latchkey::db::channels::list(&mut conn)
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("operator") || n.contains("support") || n.contains("anonymous")),
        "{names:?}"
    );
}

#[tokio::test]
async fn operators_and_support_do_not_see_channel_management_buttons() {
    let app = spawn_app().await;
    let operator = app.user(Role::Operator).await;
    let page = operator.get("/channels").await;
    assert!(!page.body.contains("+ New channel"));
    assert!(page.body.contains("API Keys"));
    let admin = app.admin().await;
    assert!(admin.get("/channels").await.body.contains("+ New channel"));
}

#[tokio::test]
async fn navigation_shows_only_what_the_role_may_open() {
    let app = spawn_app().await;
    let admin = app.admin().await.get("/channels").await.body;
    assert!(admin.contains("href=\"/users\""));
    assert!(admin.contains("href=\"/audit\""));
    let op = app.user(Role::Operator).await.get("/channels").await.body;
    assert!(!op.contains("href=\"/users\""));
    assert!(!op.contains("href=\"/audit\""));
    let support = app.user(Role::Support).await.get("/channels").await.body;
    assert!(support.contains("href=\"/audit\""));
    assert!(!support.contains("href=\"/users\""));
}
