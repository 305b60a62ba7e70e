//! Prometheus metrics, kept in atomics so recording costs next to nothing on the hot
//! path: requests by route and status, a latency histogram, verification outcomes.
//! Pool use, cache size and the outbox backlog are read when `/metrics` is scraped.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::fxhash::FxBuild;
use crate::verification::Code;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

const CODES: [Code; 9] = [
    Code::Valid,
    Code::Malformed,
    Code::NotFound,
    Code::Disabled,
    Code::Expired,
    Code::IpNotAllowed,
    Code::InsufficientScope,
    Code::RateLimited,
    Code::UsageExceeded,
];

#[derive(Default)]
pub struct Metrics {
    /// route pattern -> status -> count; looked up by `&str`, so no allocation once a
    /// route has been seen.
    requests: RwLock<HashMap<String, HashMap<u16, AtomicU64, FxBuild>, FxBuild>>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    verifications: [AtomicU64; CODES.len()],
}

impl Metrics {
    /// `route` is the matched pattern (`/keys/{key_id}`), never the raw path, so the
    /// label set stays small and holds no key ids or keys.
    pub fn observe(&self, route: &str, status: u16, micros: u64) {
        let seen = self
            .requests
            .read()
            .ok()
            .and_then(|m| {
                m.get(route)
                    .and_then(|s| s.get(&status))
                    .map(|c| c.fetch_add(1, Ordering::Relaxed))
            })
            .is_some();
        if !seen {
            if let Ok(mut m) = self.requests.write() {
                m.entry(route.to_owned())
                    .or_default()
                    .entry(status)
                    .or_default()
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        let secs = micros as f64 / 1e6;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn verification(&self, code: Code) {
        if let Some(i) = CODES.iter().position(|c| *c == code) {
            self.verifications[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text format, with the gauges read at scrape time.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP latchkey_http_requests_total Requests by route pattern and status."
        );
        let _ = writeln!(out, "# TYPE latchkey_http_requests_total counter");
        if let Ok(m) = self.requests.read() {
            let mut rows: Vec<_> = m
                .iter()
                .flat_map(|(r, by)| {
                    by.iter()
                        .map(move |(s, c)| (r.clone(), *s, c.load(Ordering::Relaxed)))
                })
                .collect();
            rows.sort();
            for (route, status, n) in rows {
                let _ = writeln!(
                    out,
                    "latchkey_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    escape(&route)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP latchkey_http_request_duration_seconds Time to answer a request."
        );
        let _ = writeln!(
            out,
            "# TYPE latchkey_http_request_duration_seconds histogram"
        );
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "latchkey_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "latchkey_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "latchkey_http_request_duration_seconds_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "latchkey_http_request_duration_seconds_count {count}");
        let _ = writeln!(
            out,
            "# HELP latchkey_verifications_total Verification answers by code."
        );
        let _ = writeln!(out, "# TYPE latchkey_verifications_total counter");
        for (i, code) in CODES.iter().enumerate() {
            let _ = writeln!(
                out,
                "latchkey_verifications_total{{code=\"{}\"}} {}",
                code.as_str(),
                self.verifications[i].load(Ordering::Relaxed)
            );
        }
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let m = Metrics::default();
        m.observe("/api/v1/keys/verify", 200, 300);
        m.observe("/api/v1/keys/verify", 200, 2_000_000);
        m.verification(Code::Valid);
        let text = m.render(&[("latchkey_outbox_backlog", "Undelivered events.", 3.0)]);
        assert!(text.contains(
            "latchkey_http_requests_total{route=\"/api/v1/keys/verify\",status=\"200\"} 2"
        ));
        assert!(text.contains("latchkey_http_request_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("latchkey_http_request_duration_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("latchkey_verifications_total{code=\"VALID\"} 1"));
        assert!(text.contains("latchkey_outbox_backlog 3"));
    }
}
