//! The client's address: the peer, or the X-Forwarded-For entry added by the nearest
//! proxy we trust (`LATCHKEY_TRUSTED_PROXIES`). Untrusted peers cannot spoof it.

use std::net::IpAddr;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{HttpMessage, HttpRequest};
use ipnetwork::IpNetwork;

use crate::error::AppError;
use crate::state::AppState;

/// The client's address as resolved once per request by [`check_forwarded`].
#[derive(Debug, Clone, Copy)]
struct ClientIp(IpAddr);

/// An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is the IPv4 address it carries:
/// every network check sees the one form.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The client's address: resolved by the middleware, or (outside it) from the peer and
/// X-Forwarded-For; `None` when a trusted proxy sent a value that cannot be read.
pub fn client_ip(req: &HttpRequest, trusted: &[IpNetwork]) -> Option<IpAddr> {
    if let Some(ClientIp(ip)) = req.extensions().get::<ClientIp>() {
        return Some(*ip);
    }
    let peer = req.peer_addr()?.ip();
    resolve_from(peer, req.headers(), trusted).ok()
}

/// [`resolve`] that reads the forwarded header only when the peer is a trusted proxy
/// (the common case, a direct client, costs no string work).
fn resolve_from(
    peer: IpAddr,
    headers: &actix_web::http::header::HeaderMap,
    trusted: &[IpNetwork],
) -> Result<IpAddr, String> {
    let canonical_peer = canonical(peer);
    if !trusted.iter().any(|n| n.contains(canonical_peer)) {
        return Ok(canonical_peer);
    }
    resolve(peer, &forwarded_for(headers), trusted)
}

fn forwarded_for(headers: &actix_web::http::header::HeaderMap) -> String {
    headers
        .get_all("x-forwarded-for")
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Walks X-Forwarded-For from the right: skips hops that are trusted proxies and
/// returns the first address that is not. Only a trusted peer's header is read; a hop
/// it sent that is not a bare IP address (`203.0.113.9:4444`, `[2001:db8::1]`,
/// `unknown`) is an error: falling back to the proxy's own address would let a forged
/// header pass a key's network limit.
pub fn resolve(peer: IpAddr, forwarded: &str, trusted: &[IpNetwork]) -> Result<IpAddr, String> {
    let peer = canonical(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(*ip));
    if !is_trusted(&peer) {
        return Ok(peer);
    }
    let mut current = peer;
    for hop in forwarded.rsplit(',').map(str::trim) {
        if hop.is_empty() && forwarded.trim().is_empty() {
            break;
        }
        let ip = hop.parse::<IpAddr>().map(canonical).map_err(|_| {
            "The X-Forwarded-For header holds a value that is not an IP address.".to_owned()
        })?;
        current = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Ok(current)
}

/// Middleware: resolves the client's address once, and refuses a request whose
/// forwarded address (from a trusted proxy) cannot be read.
pub async fn check_forwarded(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let trusted = req
        .app_data::<Data<AppState>>()
        .map_or(&[][..], |s| s.settings.trusted_proxies.as_slice());
    if let Err(message) = resolve_client(&req, trusted) {
        return Ok(req.error_response(AppError::BadRequest(message)));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Resolves the client's address once for the request (what [`client_ip`] reads), or
/// says why a trusted proxy's forwarded value cannot be read.
pub fn resolve_client(req: &ServiceRequest, trusted: &[IpNetwork]) -> Result<(), String> {
    if let Some(a) = req.peer_addr() {
        let ip = resolve_from(a.ip(), req.headers(), trusted)?;
        req.extensions_mut().insert(ClientIp(ip));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn unreadable_forwarded_values_from_a_trusted_proxy_are_refused() {
        let trusted: Vec<IpNetwork> = vec!["127.0.0.0/8".parse().unwrap()];
        for bad in [
            "203.0.113.9:4444",
            "[2001:db8::1]",
            "unknown",
            "203.0.113.9, garbage",
            "203.0.113.9,,",
        ] {
            assert!(resolve(ip("127.0.0.1"), bad, &trusted).is_err(), "{bad}");
        }
        // Left of the first untrusted hop is what the client wrote: never read.
        assert_eq!(
            resolve(ip("127.0.0.1"), "garbage, 203.0.113.9", &trusted),
            Ok(ip("203.0.113.9"))
        );
        // From an untrusted peer the header is not read at all.
        assert_eq!(
            resolve(ip("203.0.113.1"), "unknown", &trusted),
            Ok(ip("203.0.113.1"))
        );
    }

    #[test]
    fn ipv4_mapped_addresses_are_their_ipv4_address() {
        let trusted: Vec<IpNetwork> = vec!["127.0.0.0/8".parse().unwrap()];
        assert_eq!(
            resolve(ip("::ffff:127.0.0.1"), "::ffff:203.0.113.9", &trusted),
            Ok(ip("203.0.113.9"))
        );
        assert_eq!(canonical(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let trusted: Vec<IpNetwork> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            resolve(ip("203.0.113.9"), "1.2.3.4", &trusted),
            Ok(ip("203.0.113.9"))
        );
    }

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies() {
        let trusted: Vec<IpNetwork> =
            vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        assert_eq!(
            resolve(ip("10.1.1.1"), "198.51.100.7", &trusted),
            Ok(ip("198.51.100.7"))
        );
        assert_eq!(
            resolve(ip("10.1.1.1"), "6.6.6.6, 198.51.100.7, 10.2.2.2", &trusted),
            Ok(ip("198.51.100.7"))
        );
        assert_eq!(
            resolve(ip("::1"), "2001:db8::5", &trusted),
            Ok(ip("2001:db8::5"))
        );
        assert_eq!(resolve(ip("10.1.1.1"), "", &trusted), Ok(ip("10.1.1.1")));
    }
}
