use crate::helpers::{extract_csrf, spawn_app};

#[tokio::test]
async fn a_forged_post_without_the_csrf_token_fails_and_changes_nothing() {
    let app = spawn_app().await;
    let b = app.admin().await;
    // No token at all, as a cross-site form would send it (the cookie rides along).
    let res = b
        .client
        .post(b.url("/channels"))
        .form(&[("name", "Forged"), ("key_limit", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("expired or was sent from another site"),
        "{body}"
    );
    // A wrong token.
    let res = b
        .client
        .post(b.url("/channels"))
        .form(&[
            ("name", "Forged"),
            ("key_limit", ""),
            ("csrf_token", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    // Another user's valid token does not work in this session.
    let other = app.admin().await;
    let res = b
        .client
        .post(b.url("/channels"))
        .form(&[
            ("name", "Forged"),
            ("key_limit", ""),
            ("csrf_token", other.csrf().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    // The right token but a cross-site fetch.
    let res = b
        .client
        .post(b.url("/channels"))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[
            ("name", "Forged"),
            ("key_limit", ""),
            ("csrf_token", b.csrf().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let mut conn = app.conn();
    let names: Vec<String> = latchkey::db::channels::list(&mut conn)
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert!(!names.contains(&"Forged".to_owned()));
    // The genuine request works.
    b.post_form("/channels", &[("name", "Genuine"), ("key_limit", "")])
        .await
        .assert_status(303);
}

#[tokio::test]
async fn a_forged_htmx_request_gets_a_toast_not_a_page() {
    let app = spawn_app().await;
    let b = app.admin().await;
    let res = b
        .client
        .post(b.url("/channels"))
        .header("HX-Request", "true")
        .header("X-CSRF-Token", "nope")
        .form(&[("name", "Forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(res.headers().get("hx-retarget").unwrap(), "#toasts");
    let body = res.text().await.unwrap();
    assert!(body.contains("class=\"toast toast-error\""));
    assert!(!body.contains("<html"));
}

#[tokio::test]
async fn login_itself_needs_the_token_of_the_login_page() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client
        .post(format!("http://{}/login", app.base))
        .form(&[
            ("username", "admin"),
            ("password", crate::helpers::ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
}

#[tokio::test]
async fn pages_carry_a_strict_csp_and_security_headers_and_no_inline_script() {
    let app = spawn_app().await;
    let b = app.admin().await;
    for path in ["/login", "/channels", "/channels/new", "/no-such-page"] {
        let res = b.get(path).await;
        let csp = res.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(res.header("x-frame-options"), Some("DENY"));
        assert!(
            !res.body.contains("<script>"),
            "{path} has an inline script"
        );
        assert!(
            !res.body.contains(" style=\""),
            "{path} has an inline style"
        );
        assert!(
            !res.body.contains(" onclick="),
            "{path} has an inline handler"
        );
    }
    let js = b.get("/static/vendor/htmx-2.0.11.min.js").await;
    js.assert_status(200);
    assert!(
        js.header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    b.get("/static/css/app.css").await.assert_status(200);
    b.get("/static/../Cargo.toml").await.assert_status(404);
}

#[tokio::test]
async fn unknown_pages_get_a_full_error_page_and_htmx_gets_a_toast() {
    let app = spawn_app().await;
    let b = app.admin().await;
    let page = b.get("/nowhere").await;
    page.assert_status(404);
    assert!(page.body.contains("<html"));
    assert!(page.body.contains("Back to the dashboard"));
    let hx = b.hx_get("/nowhere", "main").await;
    hx.assert_status(404);
    assert!(hx.body.contains("toast-error"));
    assert!(!hx.body.contains("<html"));
}

#[tokio::test]
async fn a_hostile_channel_name_is_shown_escaped() {
    let app = spawn_app().await;
    let b = app.admin().await;
    b.post_form(
        "/channels",
        &[("name", "<script>alert(1)</script>"), ("key_limit", "")],
    )
    .await
    .assert_status(303);
    let page = b.get("/channels").await;
    assert!(!page.body.contains("<script>alert(1)</script>"));
    assert!(
        page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
            || page.body.contains("&#60;script&#62;"),
        "escaped"
    );
}

#[tokio::test]
async fn healthz_answers_when_the_database_does() {
    let app = spawn_app().await;
    let res = app.browser().get("/healthz").await;
    res.assert_status(200);
    assert!(res.body.contains("ok"));
}

#[test]
fn csrf_extraction_reads_the_htmx_header_attribute() {
    let html = r#"<body hx-headers='{"X-CSRF-Token": "abc123"}'>"#;
    assert_eq!(extract_csrf(html).as_deref(), Some("abc123"));
}

#[tokio::test]
async fn a_full_session_never_puts_a_key_in_the_logs() {
    use crate::fixtures::{channel, generate, key_id_of};
    let app = crate::helpers::spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Secrets", "").await;
    // Create and reveal (htmx and plain), verify, search by the full key, fail on purpose.
    let res = admin
        .hx_post(
            &format!("/channels/{cid}/keys"),
            "key-form",
            &[("name", "htmx"), ("scopes", "verify"), ("enabled", "on")],
        )
        .await;
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let verifier = crate::fixtures::revealed(&res.body);
    let plain = generate(&admin, cid, &[("name", "plain"), ("enabled", "on")]).await;
    let api = app.api(&verifier);
    assert_eq!(api.code(&plain, Some("198.51.100.1"), &[]).await, "VALID");
    assert_eq!(
        api.code(&plain, None, &["keys:write"]).await,
        "INSUFFICIENT_SCOPE"
    );
    let mut typo = plain.clone().into_bytes();
    typo[40] = if typo[40] == b'z' { b'y' } else { b'z' };
    let typo = String::from_utf8(typo).unwrap();
    assert_eq!(api.code(&typo, None, &[]).await, "MALFORMED");
    admin.get(&format!("/channels/{cid}/keys?q={plain}")).await;
    admin.get(&format!("/keys?q={plain}")).await;
    app.api(&typo).verify(&plain).await; // a caller with a broken key
    let bad_json = reqwest::Client::new()
        .post(format!("http://{}/api/v1/keys/verify", app.base))
        .bearer_auth(&verifier)
        .header("content-type", "application/json")
        .body(format!("{{\"key\": \"{plain}\", \"oops\""))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status().as_u16(), 400);
    let body = bad_json.text().await.unwrap();
    assert!(
        !body.contains(&plain[16..56]),
        "an error message echoed the key"
    );
    let wrong_field = api
        .post(
            "/keys/verify",
            serde_json::json!({ "key": "x", "scopes": plain }),
        )
        .await;
    assert_eq!(wrong_field.status, 400);
    assert!(
        !wrong_field.body.to_string().contains(&plain[16..56]),
        "a key sent in the wrong field is not echoed"
    );
    admin
        .post_form(&format!("/keys/{}/delete", key_id_of(&plain)), &[])
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let logs = app.logs();
    assert!(logs.contains("request"), "logs were captured");
    for secret in [&plain, &verifier, &typo] {
        assert!(
            !logs.contains(&secret[16..56]),
            "a key's secret part appears in the logs"
        );
        assert!(
            !logs.contains(&secret[3..15]) || logs.contains(&format!("/keys/{}", &secret[3..15])),
            "only as a key id in a path"
        );
    }
}
