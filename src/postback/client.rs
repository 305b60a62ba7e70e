//! One delivery over HTTP, with the SSRF guard (`domain::receiver`):
//! - a literal address in the URL is checked before anything is sent;
//! - a name is resolved once by [`PolicyResolver`], which hands the HTTP client only
//!   the addresses the policy permits, so the connection goes to a checked address (no
//!   second resolution: the client has no other resolver, and proxies are off);
//! - no redirects, one total timeout (at most 10 s), and at most [`BODY_LIMIT`] bytes
//!   of the answer are read.
//!
//! The outcome is coarse on purpose: a status code, "timed out", "refused by policy"
//! or "failed". The client's error text never leaves this module.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::receiver::Policy;

/// The most of an answer that is read.
pub const BODY_LIMIT: usize = 4 * 1024;
/// The longest `Retry-After` that is honoured.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(6 * 3600);

#[derive(Debug, thiserror::Error)]
#[error("refused by policy")]
struct RefusedByPolicy;

/// Resolves a receiver's name and keeps only the addresses the policy permits.
struct PolicyResolver {
    policy: Policy,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let permitted: Vec<SocketAddr> = found.filter(|a| policy.permits(a.ip())).collect();
            if permitted.is_empty() {
                return Err(Box::new(RefusedByPolicy) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Any status; `retry_after` when the receiver asked for a pause.
    Answered {
        status: u16,
        retry_after: Option<Duration>,
    },
    TimedOut,
    Refused,
    Failed,
}

pub struct Client {
    http: reqwest::Client,
    policy: Policy,
}

impl Client {
    pub fn new(policy: Policy, timeout: Duration, per_host: usize) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(PolicyResolver {
                policy: policy.clone(),
            }))
            .pool_max_idle_per_host(per_host)
            .user_agent("Latchkey-Postback/1")
            .build()?;
        Ok(Client { http, policy })
    }

    /// Sends one signed event.
    pub async fn send(&self, url: &str, headers: &[(&str, String)], body: String) -> Sent {
        let Ok(parsed) = url::Url::parse(url) else {
            return Sent::Failed;
        };
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Sent::Failed,
        };
        if literal.is_some_and(|ip| !self.policy.permits(ip)) {
            return Sent::Refused;
        }
        let mut request = self
            .http
            .post(parsed)
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        match request.body(body).send().await {
            Ok(mut res) => {
                let status = res.status().as_u16();
                let retry_after = res
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                // Read a little of the answer (keeps the connection reusable), never more.
                let mut read = 0;
                while read < BODY_LIMIT {
                    match res.chunk().await {
                        Ok(Some(chunk)) => read += chunk.len(),
                        _ => break,
                    }
                }
                Sent::Answered {
                    status,
                    retry_after,
                }
            }
            Err(e) if e.is_timeout() => Sent::TimedOut,
            Err(e) if refused_by_policy(&e) => Sent::Refused,
            Err(_) => Sent::Failed,
        }
    }
}

fn refused_by_policy(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<RefusedByPolicy>().is_some() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// `Retry-After`: seconds, or an HTTP date; capped at six hours.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    let wait = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at =
            time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
        let left = at - time::OffsetDateTime::now_utc();
        Duration::try_from(left).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(RETRY_AFTER_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_capped() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("99999999"), Some(RETRY_AFTER_MAX));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
