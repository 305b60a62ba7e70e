//! The authorization matrix: every route of the dashboard and the API against every
//! role, anonymous, a disabled user, and API keys with and without the needed scope.
//! The routes are read from `src/routes/mod.rs` (the URL map), so a new route without
//! an entry in `RULES` fails this test.

use latchkey::domain::role::Role;

use crate::helpers::{Browser, spawn_app};
use crate::keys::{channel, generate, key_id_of};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// Anyone, logged in or not.
    Public,
    /// Dashboard roles allowed (everyone else gets 403; anonymous goes to /login).
    Roles(&'static [Role]),
    /// API: the scope the bearer key needs.
    Scope(&'static str),
}

use Who::*;

const ALL: &[Role] = &[Role::Admin, Role::Operator, Role::Support];
const ADMIN: &[Role] = &[Role::Admin];
const MANAGERS: &[Role] = &[Role::Admin, Role::Operator];
const INSPECTORS: &[Role] = &[Role::Admin, Role::Support];

/// (method, path as written in routes/mod.rs, who may).
const RULES: &[(&str, &str, Who)] = &[
    ("get", "/", Public),
    ("get", "/login", Public),
    ("post", "/login", Public),
    ("post", "/logout", Public),
    ("get", "/healthz", Public),
    ("get", "/metrics", Public),
    ("get", "/static/{path:.*}", Public),
    ("get", "/channels", Roles(ALL)),
    ("post", "/channels", Roles(ADMIN)),
    ("get", "/channels/new", Roles(ADMIN)),
    ("get", "/channels/{id}/edit", Roles(ADMIN)),
    ("post", "/channels/{id}", Roles(ADMIN)),
    ("get", "/channels/{id}/keys", Roles(ALL)),
    ("post", "/channels/{id}/keys", Roles(MANAGERS)),
    ("get", "/channels/{id}/keys/new", Roles(MANAGERS)),
    ("get", "/audit", Roles(INSPECTORS)),
    ("get", "/users", Roles(ADMIN)),
    ("post", "/users", Roles(ADMIN)),
    ("post", "/users/{id}/role", Roles(ADMIN)),
    ("post", "/users/{id}/password", Roles(ADMIN)),
    ("post", "/users/{id}/{action}", Roles(ADMIN)),
    ("get", "/keys", Roles(INSPECTORS)),
    ("get", "/risks", Roles(INSPECTORS)),
    ("get", "/keys/{key_id}", Roles(ALL)),
    ("get", "/keys/{key_id}/edit", Roles(MANAGERS)),
    ("post", "/keys/{key_id}", Roles(MANAGERS)),
    ("get", "/keys/{key_id}/rename", Roles(MANAGERS)),
    ("post", "/keys/{key_id}/rename", Roles(MANAGERS)),
    ("get", "/keys/{key_id}/roll", Roles(MANAGERS)),
    ("post", "/keys/{key_id}/roll", Roles(MANAGERS)),
    ("get", "/keys/{key_id}/confirm/{action}", Roles(ALL)),
    ("post", "/keys/{key_id}/{action}", Roles(ALL)),
    ("get", "/api/v1/ping", Public),
    ("get", "/api/v1/openapi.json", Public),
    ("post", "/api/v1/keys/verify", Scope("verify")),
    ("get", "/api/v1/keys", Scope("keys:read")),
    ("post", "/api/v1/keys", Scope("keys:write")),
    ("get", "/api/v1/keys/{key_id}", Scope("keys:read")),
    ("patch", "/api/v1/keys/{key_id}", Scope("keys:write")),
    ("delete", "/api/v1/keys/{key_id}", Scope("keys:write")),
    ("post", "/api/v1/keys/{key_id}/roll", Scope("keys:write")),
    (
        "post",
        "/api/v1/keys/{key_id}/{action}",
        Scope("keys:write"),
    ),
];

/// Every `.route("PATH", web::METHOD()` of the URL map, API routes prefixed.
fn routes_in_source() -> Vec<(String, String)> {
    let src = include_str!("../../src/routes/mod.rs");
    let api_start = src.find("pub fn api(").expect("api routes");
    let dash_start = src.find("pub fn dashboard(").expect("dashboard routes");
    let mut out = Vec::new();
    for (i, _) in src.match_indices(".route(") {
        let rest = src[i + 7..].trim_start();
        let Some(rest) = rest.strip_prefix('"') else {
            continue;
        };
        let path = &rest[..rest.find('"').unwrap()];
        let m = rest.find("web::").unwrap();
        let method = &rest[m + 5..m + 5 + rest[m + 5..].find('(').unwrap()];
        let in_api = i > api_start && (dash_start < api_start || i < dash_start);
        let full = if in_api {
            format!("/api/v1{path}")
        } else {
            path.to_owned()
        };
        out.push((method.to_owned(), full));
    }
    out
}

#[test]
fn every_route_has_an_entry_in_the_matrix() {
    let routes = routes_in_source();
    assert!(routes.len() >= 30, "parsed {routes:?}");
    for (m, p) in &routes {
        assert!(
            RULES.iter().any(|(rm, rp, _)| rm == m && rp == p),
            "route {m} {p} has no entry in the authorization matrix (tests/it/matrix.rs)"
        );
    }
    for (m, p, _) in RULES {
        assert!(
            routes.iter().any(|(rm, rp)| rm == m && rp == p),
            "stale matrix entry {m} {p}"
        );
    }
}

fn fill(path: &str, channel_id: i64, key_id: &str, user_id: i64) -> String {
    let action = if path.starts_with("/users/") {
        "enable"
    } else {
        "deactivate"
    };
    path.replace("{path:.*}", "css/app.css")
        .replace(
            "{id}",
            &if path.starts_with("/users/") {
                user_id.to_string()
            } else {
                channel_id.to_string()
            },
        )
        .replace("{key_id}", key_id)
        .replace("{action}", action)
}

async fn send(b: &Browser, method: &str, path: &str) -> (u16, Option<String>) {
    let res = match method {
        "get" => b.get(path).await,
        _ => b.post_form(path, &[]).await,
    };
    (res.status.as_u16(), res.location().map(str::to_owned))
}

#[tokio::test]
async fn every_route_answers_every_role_as_the_matrix_says() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Matrix", "100").await;
    let victim_key =
        key_id_of(&generate(&admin, cid, &[("name", "victim"), ("enabled", "on")]).await);
    app.create_user("victim", Role::Support);
    let victim_user: i64 = {
        use diesel::prelude::*;
        latchkey::db::schema::users::table
            .filter(latchkey::db::schema::users::username.eq("victim"))
            .select(latchkey::db::schema::users::id)
            .first(&mut *app.conn())
            .unwrap()
    };
    let operator = app.user(Role::Operator).await;
    let support = app.user(Role::Support).await;
    let disabled = app.user(Role::Admin).await;
    app.exec("UPDATE users SET disabled = TRUE WHERE username LIKE 'admin-%'");
    let anonymous = app.browser();
    anonymous.get("/login").await;
    let key_with = |scope: &'static str| {
        let admin = &admin;
        async move {
            generate(
                admin,
                cid,
                &[
                    ("name", &format!("has-{scope}")),
                    ("scopes", scope),
                    ("enabled", "on"),
                ],
            )
            .await
        }
    };
    let (verify, read, write) = (
        key_with("verify").await,
        key_with("keys:read").await,
        key_with("keys:write").await,
    );
    let none = generate(&admin, cid, &[("name", "no-scope"), ("enabled", "on")]).await;

    for (method, raw, who) in RULES {
        let path = fill(raw, cid, &victim_key, victim_user);
        match who {
            Public => {
                if raw.starts_with("/api/") {
                    let res = reqwest::get(format!("http://{}{path}", app.base))
                        .await
                        .unwrap();
                    assert_eq!(res.status().as_u16(), 200, "{method} {path}");
                } else {
                    anonymous.get("/login").await;
                    let (status, _) = send(&anonymous, method, &path).await;
                    assert!(
                        status != 403 && status < 500,
                        "anonymous {method} {path}: {status}"
                    );
                }
            }
            Roles(allowed) => {
                let cases: [(&str, &Browser, Option<Role>); 5] = [
                    ("admin", &admin, Some(Role::Admin)),
                    ("operator", &operator, Some(Role::Operator)),
                    ("support", &support, Some(Role::Support)),
                    ("disabled admin", &disabled, None),
                    ("anonymous", &anonymous, None),
                ];
                for (name, b, role) in cases {
                    if name == "anonymous" {
                        // A fresh anonymous session (POST /logout purges the cookie).
                        b.get("/login").await;
                    }
                    let (status, location) = send(b, method, &path).await;
                    match role {
                        None => assert!(
                            status == 303 && location.as_deref() == Some("/login"),
                            "{name} {method} {path}: {status} {location:?}"
                        ),
                        Some(r) if allowed.contains(&r) => assert!(
                            status != 401
                                && status != 403
                                && status < 500
                                && location.as_deref() != Some("/login"),
                            "{name} {method} {path} should be allowed: {status}"
                        ),
                        Some(_) => {
                            assert_eq!(status, 403, "{name} {method} {path} should be refused")
                        }
                    }
                }
            }
            Scope(scope) => {
                let holder = match *scope {
                    "verify" => &verify,
                    "keys:read" => &read,
                    _ => &write,
                };
                let url = format!("http://{}{path}", app.base);
                let client = reqwest::Client::new();
                let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                // A body of the right shape for the endpoint, so only authorization decides.
                let body = if path.ends_with("/verify") {
                    serde_json::json!({ "key": "x" })
                } else {
                    serde_json::json!({ "name": format!("made-{}", path.len()) })
                };
                let call = |key: Option<&str>| {
                    let mut req = client.request(m.clone(), &url);
                    if *method == "post" || *method == "patch" {
                        req = req.json(&body);
                    }
                    if let Some(k) = key {
                        req = req.bearer_auth(k);
                    }
                    async move { req.send().await.unwrap().status().as_u16() }
                };
                assert_eq!(call(None).await, 401, "no key {method} {path}");
                assert_eq!(
                    call(Some("not-a-key")).await,
                    401,
                    "bad key {method} {path}"
                );
                assert_eq!(
                    call(Some(&none)).await,
                    403,
                    "key without {scope}: {method} {path}"
                );
                let ok = call(Some(holder)).await;
                assert!(
                    ok != 401 && ok != 403 && ok < 500,
                    "key with {scope}: {method} {path}: {ok}"
                );
            }
        }
    }
}
