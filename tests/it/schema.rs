//! Both backends migrate, and what they create agrees with `src/db/schema.rs`:
//! same tables, same columns, same nullability, compatible types.

use std::collections::BTreeMap;

use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Text};
use latchkey::db::{self, DbConnection};

use crate::helpers::TestDb;

#[derive(Debug, PartialEq, Eq, Clone)]
struct Column {
    kind: String,
    nullable: bool,
}

type Tables = BTreeMap<String, BTreeMap<String, Column>>;

/// Reads the `table!` blocks of schema.rs.
fn expected() -> Tables {
    let src = include_str!("../../src/db/schema.rs");
    let mut tables = Tables::new();
    let mut current: Option<String> = None;
    for line in src.lines().map(str::trim) {
        // `name (id) {`, or `name (a, b) {` for a composite primary key.
        if let Some((name, _)) = line.strip_suffix(") {").and_then(|l| l.split_once(" (")) {
            current = Some(name.to_owned());
            tables.insert(name.to_owned(), BTreeMap::new());
        } else if line == "}" {
            current = None;
        } else if let (Some(t), Some((col, ty))) = (&current, line.split_once(" -> ")) {
            let ty = ty.trim_end_matches(',');
            let (nullable, kind) = match ty.strip_prefix("Nullable<") {
                Some(inner) => (true, inner.trim_end_matches('>')),
                None => (false, ty),
            };
            tables.get_mut(t).unwrap().insert(
                col.to_owned(),
                Column {
                    kind: kind.to_owned(),
                    nullable,
                },
            );
        }
    }
    tables
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = BigInt)]
    nullable: i64,
    #[diesel(sql_type = BigInt)]
    pk: i64,
}

/// `key_search` (migration 000011) and SQLite's `key_grams` with its positions (000013)
/// are left out: the substring indexes of key names are a different thing on each
/// backend (FTS5 tables and their shadow tables; a table partitioned 64 ways with GIN
/// indexes), never declared to diesel and queried only by `db::key_search`, whose
/// behaviour `tests/it/search.rs` and `tests/it/search_short.rs` check on both.
fn actual(conn: &mut DbConnection) -> Tables {
    let rows: Vec<Row> = match conn {
        DbConnection::Sqlite(_) => diesel::sql_query(
            "SELECT m.name AS table_name, p.name AS column_name, p.type AS data_type, \
             CAST(CASE WHEN p.\"notnull\" = 0 AND p.pk = 0 THEN 1 ELSE 0 END AS BIGINT) AS nullable, \
             CAST(p.pk AS BIGINT) AS pk \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '__diesel%' \
             AND m.name NOT LIKE 'key_search%' AND m.name NOT LIKE 'key_gram%'",
        )
        .load(conn)
        .unwrap(),
        DbConnection::Postgresql(_) => diesel::sql_query(
            "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name, \
             c.data_type::text AS data_type, \
             CAST(CASE WHEN c.is_nullable = 'YES' THEN 1 ELSE 0 END AS BIGINT) AS nullable, \
             CAST(CASE WHEN c.column_default LIKE 'nextval%' THEN 1 ELSE 0 END AS BIGINT) AS pk \
             FROM information_schema.columns c \
             WHERE c.table_schema = 'public' AND c.table_name NOT LIKE '__diesel%' \
             AND c.table_name NOT LIKE 'key_search%'",
        )
        .load(conn)
        .unwrap(),
    };
    let mut tables = Tables::new();
    for r in rows {
        let kind = normalise(&r.data_type, r.pk == 1);
        tables.entry(r.table_name).or_default().insert(
            r.column_name,
            Column {
                kind,
                nullable: r.nullable == 1,
            },
        );
    }
    tables
}

/// Maps each backend's type names onto the diesel names schema.rs uses.
fn normalise(db_type: &str, is_pk: bool) -> String {
    let t = db_type.to_ascii_lowercase();
    let kind = match t.as_str() {
        _ if is_pk => "BigInt",
        "bigint" => "BigInt",
        "integer" => "Integer",
        "text" => "Text",
        "boolean" => "Bool",
        "timestamp" | "timestamp without time zone" => "Timestamp",
        other => return format!("unmapped:{other}"),
    };
    kind.to_owned()
}

fn check(db: &TestDb) {
    let pool = db::connect(db.url(), 1).expect("migrations run");
    let mut conn = pool.get().unwrap();
    let actual = actual(&mut conn);
    let expected = expected();
    assert!(
        expected.len() >= 9,
        "schema.rs parsed: {:?}",
        expected.keys()
    );
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "tables differ"
    );
    for (table, columns) in &expected {
        assert_eq!(
            &actual[table], columns,
            "table {table} differs from schema.rs"
        );
    }
    // Migrating again is a no-op.
    db::connect(db.url(), 1).expect("second migration run");
}

#[test]
fn both_backends_migrate_and_agree_with_schema_rs() {
    check(&TestDb::sqlite());
    match std::env::var("LATCHKEY_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => check(&TestDb::postgres(&url)),
        _ => eprintln!(
            "LATCHKEY_TEST_POSTGRES is not set: the PostgreSQL half of this test was skipped"
        ),
    }
}
