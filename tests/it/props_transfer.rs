//! Property tests for the parsers of export, import and leak reports (beside
//! `props.rs`): any input is parsed or refused with a message, never a panic, and what
//! is reported points inside the input.

use latchkey::domain::csv;
use latchkey::domain::import_rows;
use latchkey::domain::imported::{Algorithm, ImportDigest, hex_digest};
use latchkey::domain::leak_report::{parse_keys, parse_report, verify};
use latchkey::domain::list::{ListParams, PAGE_SIZES};
use latchkey::routes::keys::ExportParams;
use proptest::prelude::*;

use crate::fixtures::channel;
use crate::helpers::spawn_app;

fn scopes() -> Vec<String> {
    vec!["verify".into(), "keys:read".into()]
}

/// CSV-ish text: the characters that matter to the format, often.
fn csv_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                Just(",".to_owned()),
                Just("\"".to_owned()),
                Just("\n".to_owned()),
                Just("\r\n".to_owned()),
                Just("name".to_owned()),
                Just("sha256".to_owned()),
                "[a-z0-9 ]{0,8}",
            ],
            0..40
        )
        .prop_map(|parts| parts.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn import_files_are_read_or_refused_with_lines_inside_the_file(text in csv_text()) {
        let lines = text.split('\n').count();
        let result = import_rows::read(&text)
            .and_then(|rows| import_rows::check(rows, &scopes(), latchkey::db::now()));
        match result {
            Ok(rows) => {
                for r in rows {
                    prop_assert!(r.line >= 2 && r.line <= lines);
                }
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for e in errors {
                    prop_assert!(e.line >= 1 && e.line <= lines.max(1), "{:?} in {} lines", e, lines);
                    prop_assert!(!e.message.is_empty() && !e.field.is_empty());
                }
            }
        }
    }

    #[test]
    fn csv_records_round_trip_any_cells(
        cells in proptest::collection::vec(proptest::collection::vec(any::<String>(), 1..4), 1..5)
    ) {
        let quote = |c: &String| format!("\"{}\"", c.replace('"', "\"\""));
        let text: String = cells
            .iter()
            .map(|row| row.iter().map(quote).collect::<Vec<_>>().join(",") + "\n")
            .collect();
        let records = csv::records(&text).unwrap();
        let back: Vec<Vec<String>> = records.into_iter().map(|(_, f)| f).collect();
        // Rows whose only cell is blank are skipped as blank lines.
        let want: Vec<Vec<String>> = cells
            .into_iter()
            .filter(|row| !(row.len() == 1 && row[0].trim().is_empty()))
            .collect();
        prop_assert_eq!(back, want);
    }

    #[test]
    fn generated_files_import_every_row_with_its_line(
        names in proptest::collection::hash_set("[A-Za-z][A-Za-z0-9 _-]{0,30}", 1..20),
        json in any::<bool>(),
    ) {
        let mut seen = std::collections::HashSet::new();
        let names: Vec<String> = names
            .into_iter()
            .map(|n| n.trim().to_owned())
            .filter(|n| seen.insert(n.to_lowercase()))
            .collect();
        let text = if json {
            let items: Vec<String> = names
                .iter()
                .map(|n| serde_json::json!({ "name": n, "sha512": hex_digest(Algorithm::Sha512, n) }).to_string())
                .collect();
            format!("[\n{}\n]", items.join(",\n"))
        } else {
            let rows: String = names
                .iter()
                .map(|n| format!("{n},{}\n", hex_digest(Algorithm::Sha256, n)))
                .collect();
            format!("name,sha256\n{rows}")
        };
        let rows = import_rows::check(import_rows::read(&text).unwrap(), &scopes(), latchkey::db::now()).unwrap();
        prop_assert_eq!(rows.len(), names.len());
        for (i, r) in rows.iter().enumerate() {
            prop_assert_eq!(r.line, i + 2);
            prop_assert_eq!(r.item, i + 1);
        }
    }

    #[test]
    fn digests_parse_only_as_hex_of_the_right_length(s in any::<String>()) {
        for a in [Algorithm::Sha256, Algorithm::Sha512] {
            if ImportDigest::parse_hex(a, &s).is_ok() {
                prop_assert_eq!(s.trim().len(), a.digest_len() * 2);
                prop_assert!(s.trim().bytes().all(|b| b.is_ascii_hexdigit()));
            }
        }
    }

    #[test]
    fn export_addresses_parse_or_refuse_with_a_message(
        format in proptest::option::of(any::<String>()),
        q in proptest::option::of(any::<String>()),
        size in proptest::option::of(any::<String>()),
        sort in proptest::option::of(any::<String>()),
    ) {
        let known = matches!(format.as_deref().map(str::trim), None | Some("" | "csv" | "json"));
        let params = ExportParams {
            format,
            list: ListParams { q, size, sort, ..ListParams::default() },
        };
        match params.parse() {
            Ok((_, query)) => {
                prop_assert!(known);
                prop_assert!(PAGE_SIZES.contains(&query.size));
                prop_assert!(query.text.chars().count() <= 200);
            }
            Err(message) => {
                prop_assert!(!known);
                prop_assert!(message.contains("csv or json"));
            }
        }
    }

    #[test]
    fn leak_report_parsers_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..200),
        id in proptest::option::of(any::<String>()),
        sig in proptest::option::of(any::<String>()),
        doc in any::<String>(),
    ) {
        let _ = parse_report(&body);
        let _ = parse_keys(&doc);
        // No trusted key: every signature is refused.
        prop_assert!(verify(&[], id.as_deref(), sig.as_deref(), &body).is_err());
    }
}

#[tokio::test]
async fn junk_sent_to_export_and_import_gets_a_clear_4xx() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cid = channel(&app, &admin, "Junk", "5").await;
    let writer = crate::fixtures::key(&admin, cid, "w", &["keys:write", "keys:read"], &[]).await;
    let res = admin
        .get(&format!("/channels/{cid}/keys/export?format=%FF%FE"))
        .await;
    assert_eq!(res.status.as_u16(), 400, "{}", res.body);
    let res = admin
        .get(&format!(
            "/channels/{cid}/keys/export?size=-5&after=x&sort=drop"
        ))
        .await;
    assert_eq!(res.status.as_u16(), 200, "lenient list parameters");
    let client = reqwest::Client::new();
    let url = format!("http://{}/api/v1/keys/import", app.base);
    let res = client
        .post(&url)
        .bearer_auth(&writer)
        .header("content-type", "text/csv")
        .body(vec![0xffu8, 0xfe, b'\n'])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = client
        .post(&url)
        .bearer_auth(&writer)
        .header("content-type", "image/png")
        .body("name\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    let res = client
        .post(&url)
        .bearer_auth(&writer)
        .header("content-type", "application/json")
        .body("[{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["rows"][0]["field"], "file");
    // The server still serves.
    admin.get("/channels").await.assert_status(200);
}
