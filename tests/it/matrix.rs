//! The authorization matrix: every route of the dashboard and the API against every
//! role, anonymous, a disabled user, and API keys with and without the needed scope;
//! then every API route against every kind of API key (narrow or wide scopes, fenced
//! or not, channel or system key, acting on itself, a sibling or a foreign key).
//! The routes are read from the URL map (`src/routes/mod.rs`), so a new route without
//! an entry in `RULES` fails this test.

use std::collections::HashMap;

use latchkey::domain::role::Role;
use reqwest::Method;
use serde_json::json;

use crate::fixtures::{
    ALL_SCOPES, channel, error_code, generate, key, key_id_of, lift_system_limit, system_channel,
};
use crate::helpers::{Browser, Json, TestApp, spawn_app};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// Anyone, logged in or not.
    Public,
    /// Dashboard roles allowed (everyone else gets 403; anonymous goes to /login).
    Roles(&'static [Role]),
    /// API: the scope the bearer key needs.
    Scope(&'static str),
    /// API: no bearer key; a signature over the body (leak reports). Unsigned is refused.
    Signed,
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
    ("get", "/login/code", Public),
    ("post", "/login/code", Public),
    ("get", "/account/two-factor", Roles(ALL)),
    ("post", "/account/two-factor", Roles(ALL)),
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
    ("post", "/channels/{id}/keys/search", Roles(ALL)),
    ("get", "/channels/{id}/keys/export", Roles(ALL)),
    ("get", "/channels/{id}/keys/import", Roles(MANAGERS)),
    ("post", "/channels/{id}/keys/import", Roles(MANAGERS)),
    ("get", "/audit", Roles(INSPECTORS)),
    ("get", "/users", Roles(ADMIN)),
    ("post", "/users", Roles(ADMIN)),
    ("post", "/users/two-factor", Roles(ADMIN)),
    ("post", "/users/{id}/role", Roles(ADMIN)),
    ("post", "/users/{id}/two-factor/reset", Roles(ADMIN)),
    ("post", "/users/{id}/password", Roles(ADMIN)),
    ("post", "/users/{id}/{action}", Roles(ADMIN)),
    ("get", "/keys", Roles(INSPECTORS)),
    ("post", "/keys/search", Roles(INSPECTORS)),
    ("get", "/keys/export", Roles(INSPECTORS)),
    // Each bulk action needs what its single-key action needs (tests/it/bulk.rs); an
    // empty form is refused with 400 for everyone.
    ("post", "/keys/bulk", Roles(ALL)),
    ("get", "/keys/bulk/confirm", Roles(ALL)),
    ("get", "/risks", Roles(INSPECTORS)),
    ("get", "/keys/{key_id}", Roles(ALL)),
    ("get", "/keys/{key_id}/edit", Roles(MANAGERS)),
    ("post", "/keys/{key_id}", Roles(MANAGERS)),
    ("get", "/keys/{key_id}/rename", Roles(MANAGERS)),
    ("post", "/keys/{key_id}/rename", Roles(MANAGERS)),
    ("get", "/keys/{key_id}/roll", Roles(MANAGERS)),
    ("post", "/keys/{key_id}/roll", Roles(MANAGERS)),
    ("get", "/keys/{key_id}/confirm/{action}", Roles(ALL)),
    ("post", "/keys/{key_id}/postback/secret", Roles(MANAGERS)),
    ("post", "/keys/{key_id}/postback/test", Roles(MANAGERS)),
    (
        "post",
        "/keys/{key_id}/deliveries/{id}/resend",
        Roles(MANAGERS),
    ),
    ("post", "/keys/{key_id}/{action}", Roles(ALL)),
    ("get", "/api/v1/ping", Public),
    ("get", "/api/v1/openapi.json", Public),
    ("post", "/api/v1/keys/verify", Scope("verify")),
    ("get", "/api/v1/keys/export", Scope("keys:read")),
    ("post", "/api/v1/keys/import", Scope("keys:write")),
    ("post", "/api/v1/leak-reports", Signed),
    ("get", "/api/v1/keys", Scope("keys:read")),
    ("post", "/api/v1/keys", Scope("keys:write")),
    ("post", "/api/v1/keys/bulk", Scope("keys:write")),
    ("get", "/api/v1/keys/{key_id}", Scope("keys:read")),
    ("patch", "/api/v1/keys/{key_id}", Scope("keys:write")),
    ("delete", "/api/v1/keys/{key_id}", Scope("keys:write")),
    ("post", "/api/v1/keys/{key_id}/roll", Scope("keys:write")),
    (
        "post",
        "/api/v1/keys/{key_id}/postback/secret",
        Scope("keys:write"),
    ),
    (
        "post",
        "/api/v1/keys/{key_id}/postback/test",
        Scope("keys:write"),
    ),
    // Activation: one route per action or one `{action}` route; either serves all four.
    (
        "post",
        "/api/v1/keys/{key_id}/activate",
        Scope("keys:write"),
    ),
    (
        "post",
        "/api/v1/keys/{key_id}/deactivate",
        Scope("keys:write"),
    ),
    ("post", "/api/v1/keys/{key_id}/enable", Scope("keys:write")),
    ("post", "/api/v1/keys/{key_id}/disable", Scope("keys:write")),
    (
        "post",
        "/api/v1/keys/{key_id}/{action}",
        Scope("keys:write"),
    ),
];

/// The URL map's source: `src/routes/mod.rs`, or wherever under `src/` the
/// `pub fn api(` / `pub fn dashboard(` route lists now live.
fn url_map_source() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let has_map = |text: &str| text.contains("pub fn api(") && text.contains("pub fn dashboard(");
    if let Ok(text) = std::fs::read_to_string(root.join("routes/mod.rs")) {
        if has_map(&text) {
            return text;
        }
    }
    let mut pending = vec![root];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                if has_map(&text) {
                    return text;
                }
            }
        }
    }
    panic!("no URL map (`pub fn api(` and `pub fn dashboard(`) under src/");
}

/// The body of `pub fn NAME(`, up to its matching closing brace.
fn function_body<'a>(src: &'a str, name: &str) -> &'a str {
    let start = src
        .find(&format!("pub fn {name}("))
        .unwrap_or_else(|| panic!("no `pub fn {name}(` in the URL map"));
    let open = src[start..].find('{').unwrap() + start;
    let mut depth = 0;
    for (i, c) in src[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &src[open..=open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced braces in `pub fn {name}(`");
}

/// Every `.route("PATH", web::METHOD()` of a route list.
fn routes_in(body: &str, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, _) in body.match_indices(".route(") {
        let rest = body[i + 7..].trim_start();
        let Some(rest) = rest.strip_prefix('"') else {
            continue;
        };
        let path = &rest[..rest.find('"').unwrap()];
        let m = rest.find("web::").unwrap();
        let method = &rest[m + 5..m + 5 + rest[m + 5..].find('(').unwrap()];
        out.push((method.to_owned(), format!("{prefix}{path}")));
    }
    out
}

/// Every route of the URL map, API routes prefixed with `/api/v1`.
fn routes_in_source() -> Vec<(String, String)> {
    let src = url_map_source();
    let mut out = routes_in(function_body(&src, "api"), "/api/v1");
    out.extend(routes_in(function_body(&src, "dashboard"), ""));
    out
}

/// The same route, where `.../{action}` stands for every literal last segment.
fn same_route(a: &str, b: &str) -> bool {
    let wild = |w: &str, literal: &str| {
        w.strip_suffix("/{action}").is_some_and(|prefix| {
            literal
                .rsplit_once('/')
                .is_some_and(|(p, last)| p == prefix && !last.contains('{'))
        })
    };
    a == b || wild(a, b) || wild(b, a)
}

#[test]
fn every_route_has_an_entry_in_the_matrix() {
    let routes = routes_in_source();
    assert!(routes.len() >= 30, "parsed {routes:?}");
    for (m, p) in &routes {
        assert!(
            RULES.iter().any(|(rm, rp, _)| rm == m && same_route(rp, p)),
            "route {m} {p} has no entry in the authorization matrix (tests/it/matrix.rs)"
        );
    }
    for (m, p, _) in RULES {
        assert!(
            routes.iter().any(|(rm, rp)| rm == m && same_route(rp, p)),
            "stale matrix entry {m} {p}"
        );
    }
    // Every API route is also exercised by the API-key actors below.
    for (m, p, who) in RULES {
        if matches!(who, Scope(_)) {
            assert!(
                OPS.iter()
                    .any(|op| op.route().0 == *m && same_route(&op.route().1, p)),
                "API route {m} {p} is not exercised by the API-key matrix"
            );
        }
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
    let none = generate(&admin, cid, &[("name", "no-scope"), ("enabled", "on")]).await;

    for (method, raw, who) in RULES {
        let path = fill(raw, cid, &victim_key, victim_user);
        match who {
            Signed => {
                // Unsigned: refused (401), or 404 where no trusted keys are set up.
                let res = reqwest::Client::new()
                    .post(format!("http://{}{path}", app.base))
                    .json(&json!([]))
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                assert!(
                    status == 401 || status == 404,
                    "unsigned {method} {path}: {status}"
                );
            }
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
                // Only refusals here; what each kind of key may do is the next test.
                let url = format!("http://{}{path}", app.base);
                let client = reqwest::Client::new();
                let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                // A body of the right shape for the endpoint, so only authorization decides.
                let body = if path.ends_with("/verify") {
                    json!({ "key": "x" })
                } else if path.ends_with("/roll") {
                    json!({ "grace": "now" })
                } else if *method == "post" && path.starts_with("/api/v1/keys/") {
                    json!({})
                } else {
                    json!({ "name": format!("made-{}", path.len()) })
                };
                let call = |key: Option<&str>| {
                    let mut req = client.request(m.clone(), &url);
                    if *method == "post" || *method == "patch" {
                        req = req.json(&body);
                    }
                    if let Some(k) = key {
                        req = req.bearer_auth(k);
                    }
                    async move {
                        let res = req.send().await.unwrap();
                        let status = res.status().as_u16();
                        let body: serde_json::Value = res.json().await.unwrap_or_default();
                        (status, body["error"]["code"].as_str().map(str::to_owned))
                    }
                };
                assert_eq!(call(None).await.0, 401, "no key {method} {path}");
                assert_eq!(
                    call(Some("not-a-key")).await.0,
                    401,
                    "bad key {method} {path}"
                );
                assert_eq!(
                    call(Some(&none)).await,
                    (403, Some("INSUFFICIENT_SCOPE".to_owned())),
                    "key without {scope}: {method} {path}"
                );
            }
        }
    }
}

/// How wide an API key's scopes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Breadth {
    /// Only the scope of the route it calls.
    Narrow,
    /// Every scope, `keys:admin` included.
    Wide,
}

/// The networks an API key may be used from (tests connect from 127.0.0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Fence {
    Open,
    /// `127.0.0.0/8`.
    Inside,
    /// `10.0.0.0/8` only.
    Outside,
}

/// The channel an API key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Home {
    /// An ordinary channel: it reaches its own keys only.
    Channel,
    /// The `system` channel: it reaches every channel.
    System,
}

/// The key a call acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The calling key.
    Itself,
    /// Another key of the caller's channel.
    Sibling,
    /// A key of another (ordinary) channel.
    Foreign,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Verify,
    List,
    Export,
    Import,
    Create,
    Get,
    Patch,
    Delete,
    Roll,
    Deactivate(&'static str),
    Activate(&'static str),
    /// `postback/secret` or `postback/test`.
    Postback(&'static str),
    /// `POST /keys/bulk` deactivating the target by id.
    Bulk,
}

const OPS: &[Op] = &[
    Op::Verify,
    Op::List,
    Op::Export,
    Op::Import,
    Op::Create,
    Op::Get,
    Op::Patch,
    Op::Delete,
    Op::Roll,
    Op::Deactivate("deactivate"),
    Op::Deactivate("disable"),
    Op::Activate("activate"),
    Op::Activate("enable"),
    Op::Postback("secret"),
    Op::Postback("test"),
    Op::Bulk,
];

const ACTORS: &[(Breadth, Fence, Home)] = &[
    (Breadth::Narrow, Fence::Open, Home::Channel),
    (Breadth::Wide, Fence::Open, Home::Channel),
    (Breadth::Narrow, Fence::Inside, Home::Channel),
    (Breadth::Wide, Fence::Inside, Home::Channel),
    (Breadth::Narrow, Fence::Outside, Home::Channel),
    (Breadth::Wide, Fence::Outside, Home::Channel),
    (Breadth::Narrow, Fence::Open, Home::System),
    (Breadth::Wide, Fence::Open, Home::System),
    (Breadth::Wide, Fence::Inside, Home::System),
    (Breadth::Narrow, Fence::Outside, Home::System),
];

impl Op {
    fn scope(self) -> &'static str {
        match self {
            Op::Verify => "verify",
            Op::List | Op::Get | Op::Export => "keys:read",
            _ => "keys:write",
        }
    }

    /// The route as `RULES` writes it.
    fn route(self) -> (&'static str, String) {
        let (method, path) = match self {
            Op::Verify => ("post", "/keys/verify".to_owned()),
            Op::List => ("get", "/keys".to_owned()),
            Op::Export => ("get", "/keys/export".to_owned()),
            Op::Import => ("post", "/keys/import".to_owned()),
            Op::Create => ("post", "/keys".to_owned()),
            Op::Get => ("get", "/keys/{key_id}".to_owned()),
            Op::Patch => ("patch", "/keys/{key_id}".to_owned()),
            Op::Delete => ("delete", "/keys/{key_id}".to_owned()),
            Op::Roll => ("post", "/keys/{key_id}/roll".to_owned()),
            Op::Deactivate(a) | Op::Activate(a) => ("post", format!("/keys/{{key_id}}/{a}")),
            Op::Postback(a) => ("post", format!("/keys/{{key_id}}/postback/{a}")),
            Op::Bulk => ("post", "/keys/bulk".to_owned()),
        };
        (method, format!("/api/v1{path}"))
    }

    fn targets(self) -> &'static [Target] {
        match self {
            // A list or a create names a channel, not a key: own or another.
            Op::List | Op::Create | Op::Export | Op::Import => &[Target::Sibling, Target::Foreign],
            // A deactivated key cannot call, so it never activates itself.
            Op::Activate(_) => &[Target::Sibling, Target::Foreign],
            _ => &[Target::Itself, Target::Sibling, Target::Foreign],
        }
    }

    /// The call leaves the caller unable to call again (or rolled).
    fn ends_the_caller(self) -> bool {
        matches!(self, Op::Delete | Op::Roll | Op::Deactivate(_) | Op::Bulk)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Expect {
    /// Done, with this status.
    Done(u16),
    /// Refused with this status and `error.code`.
    Refused(u16, &'static str),
    /// `/verify` answers 200 with this verification code.
    Verified(&'static str),
}

/// The contract's API-key policy, for a weak target (no scopes, inside
/// `127.0.0.0/24`, no expiry) that no caller is less powerful than.
fn expected(op: Op, (breadth, fence, home): (Breadth, Fence, Home), target: Target) -> Expect {
    if fence == Fence::Outside {
        return Expect::Refused(403, "IP_NOT_ALLOWED");
    }
    let reaches = target != Target::Foreign || home == Home::System;
    match op {
        Op::Verify if reaches => Expect::Verified("VALID"),
        Op::Verify => Expect::Verified("NOT_FOUND"),
        _ if !reaches => Expect::Refused(404, "NOT_FOUND"),
        Op::Roll if target != Target::Itself && breadth == Breadth::Narrow => {
            Expect::Refused(403, "ADMIN_SCOPE_REQUIRED")
        }
        Op::Activate(_) | Op::Postback(_) if breadth == Breadth::Narrow => {
            Expect::Refused(403, "ADMIN_SCOPE_REQUIRED")
        }
        // The weak targets have no POSTback URL: 409 NO_POSTBACK_URL.
        Op::Postback(_) => Expect::Refused(409, "other"),
        Op::Create | Op::Roll | Op::Import => Expect::Done(201),
        Op::Delete => Expect::Done(204),
        _ => Expect::Done(200),
    }
}

fn outcome(op: Op, res: &Json) -> Expect {
    // A bulk answer lists a refused key beside the others; one key, one answer.
    if let (Op::Bulk, 200) = (op, res.status) {
        return match res.body["refused"][0]["code"].as_str() {
            None if res.body["changed"].as_array().is_some_and(|c| c.len() == 1) => {
                Expect::Done(200)
            }
            None => Expect::Refused(200, "other"),
            Some("NOT_FOUND") => Expect::Refused(404, "NOT_FOUND"),
            Some("ADMIN_SCOPE_REQUIRED") => Expect::Refused(403, "ADMIN_SCOPE_REQUIRED"),
            Some("TARGET_MORE_POWERFUL") => Expect::Refused(403, "TARGET_MORE_POWERFUL"),
            Some(_) => Expect::Refused(403, "other"),
        };
    }
    match (op, res.status) {
        (Op::Verify, 200) => Expect::Verified(match res.body["code"].as_str() {
            Some("VALID") => "VALID",
            Some("NOT_FOUND") => "NOT_FOUND",
            _ => "other",
        }),
        (_, s) if s < 300 => Expect::Done(s),
        (_, s) => Expect::Refused(
            s,
            match error_code(res) {
                "IP_NOT_ALLOWED" => "IP_NOT_ALLOWED",
                "NOT_FOUND" => "NOT_FOUND",
                "ADMIN_SCOPE_REQUIRED" => "ADMIN_SCOPE_REQUIRED",
                "INSUFFICIENT_SCOPE" => "INSUFFICIENT_SCOPE",
                "TARGET_MORE_POWERFUL" => "TARGET_MORE_POWERFUL",
                _ => "other",
            },
        ),
    }
}

struct Bench {
    app: TestApp,
    admin: Browser,
    /// The caller's ordinary channel and another one.
    own: i64,
    other: i64,
    system: i64,
    /// Deactivates activation targets through the API beforehand.
    deactivator: String,
    made: usize,
}

impl Bench {
    fn unique(&mut self, what: &str) -> String {
        self.made += 1;
        format!("{what}-{}", self.made)
    }

    fn home(&self, home: Home) -> i64 {
        match home {
            Home::Channel => self.own,
            Home::System => self.system,
        }
    }

    async fn actor(
        &mut self,
        (breadth, fence, home): (Breadth, Fence, Home),
        scope: &str,
    ) -> String {
        let scopes: Vec<&str> = match breadth {
            Breadth::Narrow => vec![scope],
            Breadth::Wide => ALL_SCOPES.to_vec(),
        };
        let cidrs: &[(&str, &str)] = match fence {
            Fence::Open => &[],
            Fence::Inside => &[("cidr", "127.0.0.0/8")],
            Fence::Outside => &[("cidr", "10.0.0.0/8")],
        };
        let name = self.unique("actor");
        key(&self.admin, self.home(home), &name, &scopes, cidrs).await
    }

    /// A key no caller is less powerful than.
    async fn weak(&mut self, channel_id: i64) -> String {
        let name = self.unique("target");
        key(
            &self.admin,
            channel_id,
            &name,
            &[],
            &[("cidr", "127.0.0.0/24")],
        )
        .await
    }
}

#[tokio::test]
async fn every_api_route_answers_every_kind_of_api_key_as_the_policy_says() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let own = channel(&app, &admin, "Matrix", "1000").await;
    let other = channel(&app, &admin, "Elsewhere", "1000").await;
    lift_system_limit(&app);
    let system = system_channel(&app);
    let deactivator = key(&admin, system, "deactivator", ALL_SCOPES, &[]).await;
    let mut bench = Bench {
        app,
        admin,
        own,
        other,
        system,
        deactivator,
        made: 0,
    };
    let mut actors: HashMap<((Breadth, Fence, Home), &str), String> = HashMap::new();
    let mut wrong = Vec::new();
    let mut cases = 0;
    for &kind in ACTORS {
        for &op in OPS {
            for &target in op.targets() {
                cases += 1;
                let scope = match kind.0 {
                    Breadth::Narrow => op.scope(),
                    Breadth::Wide => "",
                };
                let caller = if target == Target::Itself && op.ends_the_caller() {
                    bench.actor(kind, op.scope()).await
                } else if let Some(k) = actors.get(&(kind, scope)) {
                    k.clone()
                } else {
                    let k = bench.actor(kind, op.scope()).await;
                    actors.insert((kind, scope), k.clone());
                    k
                };
                let foreign = target == Target::Foreign;
                let subject = match (op, target) {
                    (Op::List | Op::Create | Op::Export | Op::Import, _) => String::new(),
                    (_, Target::Itself) => caller.clone(),
                    (_, Target::Sibling) => bench.weak(bench.home(kind.2)).await,
                    (_, Target::Foreign) => bench.weak(bench.other).await,
                };
                let tid = if subject.is_empty() {
                    String::new()
                } else {
                    key_id_of(&subject)
                };
                if let Op::Activate(_) = op {
                    let res = bench
                        .app
                        .api(&bench.deactivator)
                        .post(&format!("/keys/{tid}/disable"), json!({}))
                        .await;
                    assert_eq!(res.status, 200, "deactivating {tid}: {}", res.body);
                }
                let name = bench.unique("made");
                let (method, path, body) = match op {
                    Op::Verify => (
                        Method::POST,
                        "/keys/verify".to_owned(),
                        Some(json!({ "key": subject, "ip": "127.0.0.1" })),
                    ),
                    Op::List if foreign => (
                        Method::GET,
                        format!("/keys?channel_id={}", bench.other),
                        None,
                    ),
                    Op::List => (Method::GET, "/keys".to_owned(), None),
                    Op::Export => {
                        let mut path = "/keys/export?format=json".to_owned();
                        if foreign {
                            path.push_str(&format!("&channel_id={}", bench.other));
                        }
                        (Method::GET, path, None)
                    }
                    Op::Import => {
                        let mut path = "/keys/import".to_owned();
                        if foreign {
                            path.push_str(&format!("?channel_id={}", bench.other));
                        }
                        let digest = latchkey::domain::imported::hex_digest(
                            latchkey::domain::imported::Algorithm::Sha256,
                            &name,
                        );
                        let body = json!([{
                            "name": name,
                            "cidrs": ["127.0.0.0/24"],
                            "sha256": digest,
                        }]);
                        (Method::POST, path, Some(body))
                    }
                    Op::Create => {
                        let mut body = json!({ "name": name, "allowed_cidrs": ["127.0.0.0/24"] });
                        if foreign {
                            body["channel_id"] = json!(bench.other);
                        }
                        (Method::POST, "/keys".to_owned(), Some(body))
                    }
                    Op::Get => (Method::GET, format!("/keys/{tid}"), None),
                    Op::Patch => (
                        Method::PATCH,
                        format!("/keys/{tid}"),
                        Some(json!({ "name": name })),
                    ),
                    Op::Delete => (Method::DELETE, format!("/keys/{tid}"), None),
                    Op::Roll => (
                        Method::POST,
                        format!("/keys/{tid}/roll"),
                        Some(json!({ "grace": "now" })),
                    ),
                    Op::Deactivate(a) | Op::Activate(a) => {
                        (Method::POST, format!("/keys/{tid}/{a}"), Some(json!({})))
                    }
                    Op::Postback(a) => (
                        Method::POST,
                        format!("/keys/{tid}/postback/{a}"),
                        Some(json!({})),
                    ),
                    Op::Bulk => (
                        Method::POST,
                        "/keys/bulk".to_owned(),
                        Some(json!({ "action": "deactivate", "ids": [tid] })),
                    ),
                };
                let what = format!("{kind:?} {op:?} on {target:?}: {method} {path}");
                let res = bench.app.api(&caller).send(method, &path, body).await;
                let want = expected(op, kind, target);
                let got = outcome(op, &res);
                if got != want {
                    wrong.push(format!(
                        "{what}: expected {want:?}, got {got:?} {}",
                        res.body
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {cases} cases differ from the policy:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
