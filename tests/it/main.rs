#![allow(clippy::unwrap_used, clippy::expect_used)]

//! One integration-test binary: every test starts the real `latchkey` binary on port
//! 0 with a fresh database (a SQLite file, or a fresh PostgreSQL database when
//! `LATCHKEY_TEST_POSTGRES` is set) and talks to it over HTTP with real cookies.

mod fixtures;
mod helpers;
mod hostile;

mod admin;
mod api;
mod auth;
mod browser;
mod bulk;
mod channels;
mod export_import;
mod instances;
mod key_reads;
mod keys;
mod layering;
mod leaks;
mod limits;
mod load;
mod matrix;
mod memory;
mod policy;
mod postback;
mod props;
mod props_transfer;
mod redis;
mod reminders;
mod roll;
mod schema;
mod search;
mod search_short;
mod security;
mod ssrf;
mod status;
mod usage;
