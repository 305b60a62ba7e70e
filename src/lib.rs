//! Latchkey: a self-hosted API key manager. `main.rs` is a thin shell around
//! [`startup::Application`]; the integration tests start the same application.

pub mod app;
pub mod background;
pub mod cli;
pub mod config;
pub mod counts;
pub mod credits;
pub mod db;
pub mod domain;
pub mod error;
pub mod fxhash;
pub mod htmx;
pub mod imported;
pub mod key_cache;
pub mod key_reads;
pub mod metrics;
pub mod net;
pub mod postback;
pub mod ratelimit;
pub mod retention;
pub mod routes;
pub mod session;
pub mod shards;
pub mod spare_cpu;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod usage;
pub mod verification;
pub mod views;
