//! The client's address: the peer, or the X-Forwarded-For entry added by the nearest
//! proxy we trust (`LATCHKEY_TRUSTED_PROXIES`). Untrusted peers cannot spoof it.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnetwork::IpNetwork;

pub fn client_ip(req: &HttpRequest, trusted: &[IpNetwork]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    Some(resolve(peer, &forwarded, trusted))
}

/// Walks X-Forwarded-For from the right: skips hops that are trusted proxies and
/// returns the first address that is not. Garbage stops the walk at the last trusted hop.
pub fn resolve(peer: IpAddr, forwarded: &str, trusted: &[IpNetwork]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(*ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut current = peer;
    for hop in forwarded
        .rsplit(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
    {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                current = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let trusted: Vec<IpNetwork> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            resolve(ip("203.0.113.9"), "1.2.3.4", &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies() {
        let trusted: Vec<IpNetwork> =
            vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        assert_eq!(
            resolve(ip("10.1.1.1"), "198.51.100.7", &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            resolve(ip("10.1.1.1"), "6.6.6.6, 198.51.100.7, 10.2.2.2", &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            resolve(ip("::1"), "2001:db8::5", &trusted),
            ip("2001:db8::5")
        );
        assert_eq!(resolve(ip("10.1.1.1"), "garbage", &trusted), ip("10.1.1.1"));
        assert_eq!(resolve(ip("10.1.1.1"), "", &trusted), ip("10.1.1.1"));
    }
}
