//! Prometheus metrics, kept in atomics so recording costs next to nothing on the hot
//! path: requests by route and status, a latency histogram, verification outcomes.
//! Pool use, cache size and the outbox backlog are read when `/metrics` is scraped.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::fxhash::FxBuild;
use crate::shards::{self, SHARDS};
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

/// Requests by route pattern and status; looked up by `&str`, so no allocation once a
/// route has been seen.
type Routes = HashMap<String, HashMap<u16, AtomicU64, FxBuild>, FxBuild>;

/// One thread's counters. Each worker thread records into its own shard (its own
/// cache lines: the alignment keeps two shards off one line), and `/metrics` sums
/// them: with one shared set, every request's dozen atomic adds and the route map's
/// read lock moved the same cache lines between the two cores (perf showed
/// `Metrics::observe` as the verify path's dearest function of ours).
#[derive(Default)]
#[repr(align(128))]
struct Shard {
    requests: RwLock<Routes>,
    /// Requests whose duration fell in each bucket (not cumulative: summed at render).
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    verifications: [AtomicU64; CODES.len()],
}

pub struct Metrics {
    shards: Box<[Shard]>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

impl Metrics {
    fn mine(&self) -> &Shard {
        &self.shards[shards::this_thread()]
    }

    /// `route` is the matched pattern (`/keys/{key_id}`), never the raw path, so the
    /// label set stays small and holds no key ids or keys.
    pub fn observe(&self, route: &str, status: u16, micros: u64) {
        let shard = self.mine();
        let seen = shard
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
            if let Ok(mut m) = shard.requests.write() {
                m.entry(route.to_owned())
                    .or_default()
                    .entry(status)
                    .or_default()
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        let secs = micros as f64 / 1e6;
        if let Some(i) = BUCKETS.iter().position(|bound| secs <= *bound) {
            shard.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        shard.count.fetch_add(1, Ordering::Relaxed);
        shard.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn verification(&self, code: Code) {
        if let Some(i) = CODES.iter().position(|c| *c == code) {
            self.mine().verifications[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn total(&self, f: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|s| f(s).load(Ordering::Relaxed))
            .sum()
    }

    /// The Prometheus text format, with the gauges read at scrape time.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP latchkey_http_requests_total Requests by route pattern and status."
        );
        let _ = writeln!(out, "# TYPE latchkey_http_requests_total counter");
        let mut totals: std::collections::BTreeMap<(String, u16), u64> = Default::default();
        for shard in self.shards.iter() {
            if let Ok(m) = shard.requests.read() {
                for (route, by) in m.iter() {
                    for (status, c) in by {
                        *totals.entry((route.clone(), *status)).or_default() +=
                            c.load(Ordering::Relaxed);
                    }
                }
            }
        }
        for ((route, status), n) in totals {
            let _ = writeln!(
                out,
                "latchkey_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                escape(&route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP latchkey_http_request_duration_seconds Time to answer a request."
        );
        let _ = writeln!(
            out,
            "# TYPE latchkey_http_request_duration_seconds histogram"
        );
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.total(|s| &s.buckets[i]);
            let _ = writeln!(
                out,
                "latchkey_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.total(|s| &s.count);
        let _ = writeln!(
            out,
            "latchkey_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "latchkey_http_request_duration_seconds_sum {}",
            self.total(|s| &s.sum_micros) as f64 / 1e6
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
                self.total(|s| &s.verifications[i])
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

    /// Threads record into their own shards; the text is the sum, buckets cumulative.
    #[test]
    fn shards_add_up_across_threads() {
        let m = std::sync::Arc::new(Metrics::default());
        let threads: Vec<_> = (0..12)
            .map(|t| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..100u64 {
                        // Half fast (0.3 ms), half 30 ms.
                        m.observe(
                            "/api/v1/ping",
                            200,
                            if (t + i) % 2 == 0 { 300 } else { 30_000 },
                        );
                        m.verification(Code::NotFound);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = m.render(&[]);
        for line in [
            "latchkey_http_requests_total{route=\"/api/v1/ping\",status=\"200\"} 1200",
            "latchkey_http_request_duration_seconds_bucket{le=\"0.0005\"} 600",
            "latchkey_http_request_duration_seconds_bucket{le=\"0.025\"} 600",
            "latchkey_http_request_duration_seconds_bucket{le=\"0.05\"} 1200",
            "latchkey_http_request_duration_seconds_bucket{le=\"5\"} 1200",
            "latchkey_http_request_duration_seconds_bucket{le=\"+Inf\"} 1200",
            "latchkey_http_request_duration_seconds_sum 18.18",
            "latchkey_http_request_duration_seconds_count 1200",
            "latchkey_verifications_total{code=\"NOT_FOUND\"} 1200",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}
