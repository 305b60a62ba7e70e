//! Issue 11, "Requests and headers": hostile input that once crashed a request or
//! slipped past a check, each answered now with a clear 4xx and nothing weakened.

use serde_json::json;

use crate::fixtures::{channel, key};
use crate::helpers::{Options, spawn_app, spawn_app_with};

#[tokio::test]
async fn audit_dates_at_the_edges_are_answered_with_a_message_not_a_closed_connection() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    for (query, status) in [
        ("to=9999-12-31", 400),
        ("from=9999-12-31", 200),
        ("from=0000-01-01&to=9999-12-30", 200),
        ("to=2026-02-30", 400),
        ("from=yesterday", 400),
        ("channel=not-a-number", 400),
    ] {
        let res = admin.get(&format!("/audit?{query}")).await;
        assert_eq!(res.status.as_u16(), status, "{query}: {}", res.body);
        if status == 400 {
            assert!(
                res.body.contains("date") || res.body.contains("channel"),
                "{query}: the message says what is wrong"
            );
        }
    }
    // The server keeps serving.
    admin.get("/audit").await.assert_status(200);
}

#[tokio::test]
async fn an_unreadable_forwarded_address_from_a_trusted_proxy_is_refused_not_taken_as_the_proxy() {
    let app = spawn_app_with(Options {
        env: vec![("LATCHKEY_TRUSTED_PROXIES".into(), "127.0.0.1/32".into())],
    })
    .await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Proxied", "").await;
    // Usable only from loopback: a forged header must not make it usable from elsewhere.
    let local = key(
        &admin,
        cid,
        "local",
        &["verify"],
        &[("cidr", "127.0.0.0/8")],
    )
    .await;
    let target = key(&admin, cid, "target", &[], &[]).await;
    let api = app.api(&local);
    let call = |forwarded: &'static str| {
        let (api, local, target) = (&api, &local, &target);
        async move {
            api.client
                .post(format!("{}/keys/verify", api.base))
                .bearer_auth(local)
                .header("X-Forwarded-For", forwarded)
                .json(&json!({ "key": target }))
                .send()
                .await
                .unwrap()
        }
    };
    for bad in [
        "203.0.113.9:4444",
        "[2001:db8::1]",
        "unknown",
        "203.0.113.9, garbage",
    ] {
        let res = call(bad).await;
        assert_eq!(res.status().as_u16(), 400, "{bad}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "BAD_REQUEST", "{bad}");
    }
    assert_eq!(call("127.0.0.5").await.status().as_u16(), 200);
    assert_eq!(call("203.0.113.9").await.status().as_u16(), 403);
    // The dashboard refuses it too.
    let res = admin
        .client
        .get(admin.url("/channels"))
        .header("X-Forwarded-For", "unknown")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
}

#[tokio::test]
async fn an_ipv4_mapped_address_is_checked_as_its_ipv4_address() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Mapped", "").await;
    let verifier = key(&admin, cid, "verifier", &["verify"], &[]).await;
    let local = key(&admin, cid, "local", &[], &[("cidr", "127.0.0.0/8")]).await;
    let api = app.api(&verifier);
    assert_eq!(
        api.code(&local, Some("::ffff:127.0.0.1"), &[]).await,
        "VALID"
    );
    assert_eq!(
        api.code(&local, Some("::ffff:10.0.0.1"), &[]).await,
        "IP_NOT_ALLOWED"
    );
}

#[tokio::test]
async fn metrics_ask_for_the_token_when_one_is_set() {
    let open = spawn_app().await;
    let res = reqwest::get(format!("http://{}/metrics", open.base))
        .await
        .unwrap();
    assert_eq!(
        res.status().as_u16(),
        200,
        "loopback reads it without a token"
    );
    let token = "metrics-token-0123456789";
    let app = spawn_app_with(Options {
        env: vec![("LATCHKEY_METRICS_TOKEN".into(), token.into())],
    })
    .await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/metrics", app.base);
    let status = |auth: Option<&'static str>| {
        let (client, url) = (&client, &url);
        async move {
            let mut req = client.get(url);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(status(None).await, 401);
    assert_eq!(status(Some("Bearer wrong-token-0123456789")).await, 401);
    assert_eq!(status(Some("Bearer metrics-token-0123456789")).await, 200);
}

#[tokio::test]
async fn dashboard_pages_are_never_cached_and_hsts_follows_secure_cookies() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    for path in ["/channels", "/login", "/audit", "/no-such-page"] {
        let res = admin.get(path).await;
        assert_eq!(res.header("cache-control"), Some("no-store"), "{path}");
        assert_eq!(res.header("strict-transport-security"), None, "{path}");
    }
    let css = admin.get("/static/css/app.css").await;
    assert_eq!(css.header("cache-control"), Some("public, max-age=300"));
    let secure = spawn_app_with(Options {
        env: vec![("LATCHKEY_SECURE_COOKIES".into(), "true".into())],
    })
    .await;
    let res = secure.browser().get("/login").await;
    assert_eq!(
        res.header("strict-transport-security"),
        Some("max-age=31536000")
    );
    assert!(
        res.header("set-cookie")
            .is_some_and(|c| c.contains("Secure")),
        "{:?}",
        res.header("set-cookie")
    );
}

#[tokio::test]
async fn every_body_has_one_limit_and_one_answer() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Limits", "").await;
    let writer = key(&admin, cid, "writer", &["keys:write"], &[]).await;
    let big = "x".repeat(70 * 1024);
    // The API's roll read its body with a 256 KiB limit; every API body has 64 KiB.
    let api = app.api(&writer);
    let res = api
        .client
        .post(format!(
            "{}/keys/{}/roll",
            api.base,
            crate::fixtures::key_id_of(&writer)
        ))
        .bearer_auth(&writer)
        .header("content-type", "application/json")
        .body(format!("{{\"grace\":\"{big}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
    // A dashboard form over the limit: 413 with a message, not a 400.
    let res = admin
        .post_form(
            &format!("/channels/{cid}/keys"),
            &[("name", "big"), ("description", &big)],
        )
        .await;
    assert_eq!(res.status.as_u16(), 413, "{}", res.body);
    assert!(res.body.contains("64 KiB"), "{}", res.body);
}

#[test]
fn settings_out_of_range_stop_the_server_with_a_message_and_exit_code_2() {
    for (name, value, says) in [
        ("LATCHKEY_SESSION_HOURS", "99999999999", "session-hours"),
        (
            "LATCHKEY_ADMIN_PASSWORD",
            "short",
            "LATCHKEY_ADMIN_PASSWORD",
        ),
        (
            "LATCHKEY_SESSION_SECRET",
            "too-short",
            "LATCHKEY_SESSION_SECRET",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .env_clear()
            .env("DATABASE_URL", dir.path().join("x.db"))
            .env("LATCHKEY_BIND", "127.0.0.1:0")
            .env(name, value)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A server that starts anyway would serve forever: give it ten seconds.
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > std::time::Duration::from_secs(10) {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.and_then(|s| s.code()), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(says), "{name}: {stderr}");
    }
}

/// A gauge or counter from `/metrics`.
async fn metric(app: &crate::helpers::TestApp, name: &str) -> Option<f64> {
    let text = app.metrics_text().await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn a_flood_of_forged_keys_leaves_real_keys_cached() {
    let app = spawn_app_with(Options {
        env: vec![("LATCHKEY_KEY_CACHE_SIZE".into(), "1000".into())],
    })
    .await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Flooded", "100").await;
    let verifier = key(&admin, cid, "verifier", &["verify"], &[]).await;
    let mut real = Vec::new();
    for i in 0..20 {
        real.push(key(&admin, cid, &format!("real-{i}"), &[], &[]).await);
    }
    let api = app.api(&verifier);
    for _ in 0..2 {
        for k in &real {
            assert_eq!(api.code(k, None, &[]).await, "VALID");
        }
    }
    // Checksum-valid keys nobody issued (anyone can make them), more than the cache
    // holds: the old cache emptied itself when full, real keys included.
    for _ in 0..1_500 {
        let (forged, _) = latchkey::domain::key::PlainKey::generate("lk");
        assert_eq!(api.code(forged.reveal(), None, &[]).await, "NOT_FOUND");
    }
    let cached = metric(&app, "latchkey_key_cache_entries").await.unwrap();
    assert!(cached >= 21.0, "real keys were evicted: {cached} cached");
    let before = metric(&app, "latchkey_key_cache_lookups_total")
        .await
        .expect("the cache counts its database lookups");
    for k in &real {
        assert_eq!(api.code(k, None, &[]).await, "VALID");
    }
    let after = metric(&app, "latchkey_key_cache_lookups_total")
        .await
        .unwrap();
    assert_eq!(before, after, "verifying real keys touched the database");
}

#[tokio::test]
async fn names_with_text_direction_or_invisible_characters_are_refused_beside_the_field() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Names", "").await;
    let writer = key(&admin, cid, "writer", &["keys:write"], &[]).await;
    for name in ["invoice\u{202E}txt.exe", "zero\u{200B}width", "bom\u{FEFF}"] {
        let res = admin
            .post_form(
                &format!("/channels/{cid}/keys"),
                &[("name", name), ("enabled", "on")],
            )
            .await;
        assert_eq!(res.status.as_u16(), 422, "{name:?}");
        assert!(res.body.contains("text-direction"), "{name:?}");
        let res = admin
            .post_form("/channels", &[("name", name), ("key_limit", "")])
            .await;
        assert_eq!(res.status.as_u16(), 422, "channel {name:?}");
        let res = app
            .api(&writer)
            .post("/keys", json!({ "name": name }))
            .await;
        assert_eq!(res.status, 422, "api {name:?}");
        assert!(res.body["error"]["fields"]["name"].is_string());
    }
}

#[tokio::test]
async fn a_pasted_full_key_never_appears_in_a_url_without_javascript() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Pasted", "").await;
    let leaked = key(&admin, cid, "leaked", &[], &[]).await;
    let kid = crate::fixtures::key_id_of(&leaked);
    for (page, search) in [
        (
            format!("/channels/{cid}/keys"),
            format!("/channels/{cid}/keys/search"),
        ),
        ("/keys".to_owned(), "/keys/search".to_owned()),
    ] {
        let form = admin.get(&page).await;
        assert!(
            form.body
                .contains(&format!("method=\"post\" action=\"{search}\"")),
            "the filter form posts: {page}"
        );
        let res = admin.post_form(&search, &[("q", leaked.as_str())]).await;
        res.assert_status(303);
        let location = res.location().unwrap().to_owned();
        assert_eq!(location, format!("{page}?q={kid}"));
        let found = admin.get(&location).await;
        assert!(found.body.contains(&format!("id=\"key-{kid}\"")));
        assert!(!found.body.contains(&leaked[16..]));
    }
    assert!(!app.logs().contains(&leaked[16..]), "the key reached a log");
}

#[tokio::test]
async fn a_login_under_a_name_shaped_like_an_api_key_actor_is_not_audited_under_that_name() {
    let app = spawn_app().await;
    let b = app.browser();
    b.login("api:wydd7arSTBGl", "whatever-password-123").await;
    let admin = app.admin().await;
    let audit = admin.get("/audit?action=login.failed").await;
    assert!(!audit.body.contains("api:wydd7arSTBGl"), "{}", audit.body);
    assert!(audit.body.contains("(not a username)"));
}

/// Sends `head` and then each piece of the body after a pause, on one raw connection,
/// and returns the status and body of the answer.
fn send_in_pieces(addr: &str, head: &str, pieces: &[&[u8]]) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(head.as_bytes()).unwrap();
    for piece in pieces {
        s.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        // The server may answer (and close) before the rest of an oversized body.
        if s.write_all(piece).is_err() {
            break;
        }
    }
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&raw);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end].lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(|v| v.trim().parse::<usize>().unwrap())
            });
            if len.is_some_and(|len| raw.len() >= end + 4 + len) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// The API reads its JSON bodies itself (routes/api/json_body.rs, no copy of a body
/// that arrives at once): a body in pieces, chunked or not, reads as one; the limit
/// holds without a declared length; the media type is checked as before.
#[tokio::test]
async fn json_bodies_in_pieces_read_as_one_and_keep_their_limit_and_type() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Pieces", "").await;
    let verifier = key(&admin, cid, "verifier", &["verify"], &[]).await;
    let target = key(&admin, cid, "target", &[], &[]).await;
    let addr = app.base.clone();
    let body = format!("{{\"key\":\"{target}\"}}");
    let head = |ctype: &str, framing: &str| {
        format!(
            "POST /api/v1/keys/verify HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {verifier}\r\n\
             Content-Type: {ctype}\r\nConnection: close\r\n{framing}\r\n"
        )
    };
    let bytes = body.as_bytes();
    let (a, b, c) = (&bytes[..10], &bytes[10..30], &bytes[30..]);
    let plain = head(
        "application/json",
        &format!("Content-Length: {}\r\n", body.len()),
    );
    let chunk = |p: &[u8]| [format!("{:x}\r\n", p.len()).as_bytes(), p, b"\r\n"].concat();
    let cases: Vec<(String, Vec<Vec<u8>>, u16, &str)> = vec![
        (plain.clone(), vec![bytes.to_vec()], 200, "VALID"),
        (
            plain,
            vec![a.to_vec(), b.to_vec(), c.to_vec()],
            200,
            "VALID",
        ),
        (
            head(
                "application/vnd.latchkey+json; charset=utf-8",
                "Transfer-Encoding: chunked\r\n",
            ),
            vec![chunk(a), chunk(b), chunk(c), b"0\r\n\r\n".to_vec()],
            200,
            "VALID",
        ),
        (
            head("text/plain", &format!("Content-Length: {}\r\n", body.len())),
            vec![bytes.to_vec()],
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
    ];
    for (head, pieces, status, code) in cases {
        let (got, answer) = tokio::task::spawn_blocking(move || {
            let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
            send_in_pieces(&addr_of(&head), &head, &refs)
        })
        .await
        .unwrap();
        assert_eq!(got, status, "{answer}");
        let found = answer["code"].as_str().or(answer["error"]["code"].as_str());
        assert_eq!(found, Some(code), "{answer}");
    }
    // 70 KiB chunked, no declared length: refused once the limit is passed.
    let big = chunk(&vec![b' '; 10 * 1024]);
    let mut pieces: Vec<Vec<u8>> = vec![chunk(b"{\"key\":\"")];
    pieces.extend(std::iter::repeat_n(big, 7));
    let head = head("application/json", "Transfer-Encoding: chunked\r\n");
    let (got, answer) = tokio::task::spawn_blocking(move || {
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        send_in_pieces(&addr_of(&head), &head, &refs)
    })
    .await
    .unwrap();
    assert_eq!(got, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "PAYLOAD_TOO_LARGE");
}

/// The `Host:` of a request head written by the test above.
fn addr_of(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("Host: "))
        .unwrap()
        .to_owned()
}
