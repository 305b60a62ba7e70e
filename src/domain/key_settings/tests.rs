use super::*;
use time::macros::datetime;

fn scopes() -> Vec<String> {
    vec!["keys:read".into(), "keys:write".into(), "verify".into()]
}

fn input() -> KeyInput {
    KeyInput {
        name: "Billing".into(),
        enabled: true,
        ..KeyInput::default()
    }
}

const NOW: PrimitiveDateTime = datetime!(2026-11-22 10:00);

#[test]
fn a_minimal_key_is_valid() {
    let s = input()
        .parse(&scopes(), NOW, None, &Policy::default())
        .unwrap();
    assert_eq!(s.name, "Billing");
    assert_eq!(s.description, None);
    assert!(s.cidrs.is_empty());
    assert!(s.enabled);
}

#[test]
fn every_field_reports_its_own_error() {
    let bad = KeyInput {
        name: " ".into(),
        description: "x".repeat(501),
        expires_at: "2020-01-01T00:00".into(),
        scopes: vec!["admin:all".into()],
        cidrs: vec!["10.0.0.0/8".into(), "10.0.0.1/8".into(), "nope".into()],
        postback_url: "ftp://example.com".into(),
        ..KeyInput::default()
    };
    let e = bad
        .parse(&scopes(), NOW, None, &Policy::default())
        .unwrap_err();
    assert!(e.name.is_some());
    assert!(e.description.is_some());
    assert!(e.expires_at.unwrap().contains("future"));
    assert!(e.scopes.unwrap().contains("Unknown scope"));
    assert_eq!(e.cidrs[0], None);
    assert!(
        e.cidrs[1]
            .as_ref()
            .unwrap()
            .contains("did you mean 10.0.0.0/8")
    );
    assert!(e.cidrs[2].is_some());
    assert!(e.postback_url.is_some());
}

#[test]
fn cidrs_accept_v4_v6_and_single_addresses() {
    assert_eq!(
        parse_cidr("203.0.113.0/24").unwrap().to_string(),
        "203.0.113.0/24"
    );
    assert_eq!(
        parse_cidr("2001:db8::/32").unwrap().to_string(),
        "2001:db8::/32"
    );
    assert_eq!(
        parse_cidr("198.51.100.7").unwrap().to_string(),
        "198.51.100.7/32"
    );
    assert_eq!(parse_cidr("::1").unwrap().to_string(), "::1/128");
    for bad in [
        "",
        "10.0.0.0/33",
        "2001:db8::/129",
        "300.1.1.1",
        "10.0.0.0/-1",
        "abc",
        "1.2.3.4/8/8",
    ] {
        assert!(parse_cidr(bad).is_err(), "{bad}");
    }
}

#[test]
fn postback_urls_must_be_http_or_https_with_a_host() {
    let none = Policy::default();
    let loopback = Policy::new(vec![
        "127.0.0.0/8".parse().unwrap(),
        "::1/128".parse().unwrap(),
    ]);
    assert!(
        parse_postback_url("https://example.com/hook", &none)
            .unwrap()
            .is_some()
    );
    assert!(
        parse_postback_url("http://127.0.0.1:9000/x?y=1", &loopback)
            .unwrap()
            .is_some()
    );
    assert!(parse_postback_url("http://127.0.0.1:9000/x?y=1", &none).is_err());
    assert!(
        parse_postback_url("https://[::1]:8443/", &loopback)
            .unwrap()
            .is_some()
    );
    assert_eq!(parse_postback_url("", &none).unwrap(), None);
    for bad in [
        "javascript:alert(1)",
        "https://",
        "http:///path",
        "example.com",
        "https://exa mple.com",
        "https://<x>/",
    ] {
        assert!(parse_postback_url(bad, &loopback).is_err(), "{bad}");
    }
}

#[test]
fn scopes_are_sorted_and_deduplicated() {
    let i = KeyInput {
        scopes: vec!["verify".into(), "keys:read".into(), "verify".into()],
        ..input()
    };
    assert_eq!(
        i.parse(&scopes(), NOW, None, &Policy::default())
            .unwrap()
            .scopes,
        vec!["keys:read", "verify"]
    );
}

#[test]
fn expiry_parses_datetime_local_and_keeps_an_unchanged_past_value() {
    assert_eq!(
        parse_expiry("2027-01-31T18:00").unwrap(),
        Some(datetime!(2027-01-31 18:00))
    );
    assert_eq!(
        parse_expiry("2027-01-31T18:00:05Z").unwrap(),
        Some(datetime!(2027-01-31 18:00:05))
    );
    assert!(parse_expiry("tomorrow").is_err());
    let past = datetime!(2026-01-01 00:00);
    let i = KeyInput {
        expires_at: "2026-01-01T00:00".into(),
        ..input()
    };
    assert!(
        i.parse(&scopes(), NOW, Some(past), &Policy::default())
            .is_ok(),
        "editing other fields of an expired key works"
    );
}
