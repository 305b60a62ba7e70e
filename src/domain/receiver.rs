//! Where POSTbacks may go (no SSRF). A POSTback URL is chosen by whoever holds a key
//! with `keys:admin`; without these checks Latchkey would send requests into its own
//! network and report what answered.
//!
//! - At save time ([`check_url`]): http(s) only, no credentials, and no literal internal
//!   address (IPv4 in any notation the HTTP client accepts, e.g. `2130706433`,
//!   `0x7f.1`; IPv6 including IPv4-mapped forms) nor a name reserved for internal use
//!   (`localhost`, `*.internal`, `*.local`, `*.home.arpa`, single-label names).
//! - At delivery time (`postback::client`): the name is resolved once, every address is
//!   checked with [`Policy::permits`], and the connection goes to a checked address.
//!
//! `LATCHKEY_POSTBACK_ALLOW` (CIDRs) lets an operator allow internal receivers on
//! purpose; with a non-empty allow list, internal names are accepted at save time and
//! decided at delivery by their addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;

/// The operator's allow list.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub allow: Vec<IpNetwork>,
}

impl Policy {
    pub fn new(allow: Vec<IpNetwork>) -> Self {
        Policy { allow }
    }

    /// Whether a POSTback may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.allow.iter().any(|n| n.contains(ip)) || !is_internal(ip)
    }
}

/// IPv4-mapped (`::ffff:a.b.c.d`) addresses as the IPv4 address they reach.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Loopback, private, link-local, CGNAT, multicast, unspecified, documentation,
/// benchmarking and reserved addresses, and IPv6 forms that embed one of them.
pub fn is_internal(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || a == 0 // "this network"
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || ip.is_multicast()
        || ip.is_broadcast()
        || a >= 240 // reserved
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| {
        internal_v4(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        ))
    };
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation 2001:db8::/32
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard 100::/64
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocols, Teredo 2001::/23
        // IPv4-compatible ::a.b.c.d (deprecated) and NAT64 64:ff9b::/96 reach IPv4.
        || (s[0..6] == [0, 0, 0, 0, 0, 0] && embedded_v4(s[6], s[7]))
        || (s[0] == 0x0064 && s[1] == 0xff9b && embedded_v4(s[6], s[7]))
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 1) // local NAT64 64:ff9b:1::/48
        // 6to4 2002:a.b.c.d::/48 reaches the embedded IPv4 address.
        || (s[0] == 0x2002 && embedded_v4(s[1], s[2]))
}

/// Names that only ever mean something inside a network.
fn internal_name(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    !host.contains('.')
        || host == "localhost"
        || [".localhost", ".internal", ".local", ".home.arpa", ".lan"]
            .iter()
            .any(|s| host.ends_with(s))
}

const INTERNAL: &str = "POSTbacks go to public receivers only: this address is internal \
     (loopback, private, link-local, shared or reserved). An operator can allow internal \
     receivers with LATCHKEY_POSTBACK_ALLOW.";

/// The save-time check: the field message when `url` must not be stored.
pub fn check_url(url: &str, policy: &Policy) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|_| {
        "Enter a complete URL with a host, like https://example.com/hooks/latchkey.".to_owned()
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("Enter an http:// or https:// URL.".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "Remove the user name and password from the URL: receivers check events by their signature."
                .into(),
        );
    }
    match parsed.host() {
        None => {
            Err("Enter a complete URL with a host, like https://example.com/hooks/latchkey.".into())
        }
        Some(url::Host::Ipv4(ip)) => allowed(IpAddr::V4(ip), policy),
        Some(url::Host::Ipv6(ip)) => allowed(IpAddr::V6(ip), policy),
        Some(url::Host::Domain(name)) => {
            let name = name.to_ascii_lowercase();
            let localhost = name.trim_end_matches('.') == "localhost"
                || name.trim_end_matches('.').ends_with(".localhost");
            if localhost {
                // Always loopback (RFC 6761): decided like the literal addresses.
                allowed(IpAddr::V4(Ipv4Addr::LOCALHOST), policy)
            } else if internal_name(&name) && policy.allow.is_empty() {
                Err(INTERNAL.into())
            } else {
                Ok(())
            }
        }
    }
}

fn allowed(ip: IpAddr, policy: &Policy) -> Result<(), String> {
    if policy.permits(ip) {
        Ok(())
    } else {
        Err(INTERNAL.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every form the issue names, refused without an allow list.
    pub const INTERNAL_URLS: &[&str] = &[
        "http://127.0.0.1:8080/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1:8500/v1/kv",
        "http://[::1]:6379/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0177.0.0.1/",
        "http://localhost:5432/",
        "http://LOCALHOST./",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://100.64.0.1/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://0.0.0.0/",
        "http://[::]/",
        "http://224.0.0.1/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://192.0.2.1/",
        "http://[2001:db8::1]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[2002:7f00:1::]/",
        "http://redis:6379/",
        "http://printer.local/",
    ];

    #[test]
    fn internal_addresses_and_names_are_refused_at_save() {
        let p = Policy::default();
        for url in INTERNAL_URLS {
            assert!(check_url(url, &p).is_err(), "{url}");
        }
        assert!(
            check_url("https://user:pass@hooks.example.com/", &p)
                .unwrap_err()
                .contains("user name")
        );
        assert!(check_url("https://hooks.example.com/x", &p).is_ok());
        assert!(check_url("https://93.184.215.14/x", &p).is_ok());
        assert!(check_url("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/", &p).is_ok());
    }

    #[test]
    fn the_allow_list_admits_internal_receivers_on_purpose() {
        let p = Policy::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ]);
        assert!(check_url("http://127.0.0.1:8080/x", &p).is_ok());
        assert!(check_url("http://[::1]:8080/x", &p).is_ok());
        assert!(check_url("http://localhost:8080/x", &p).is_ok());
        assert!(check_url("http://[::ffff:127.0.0.1]/", &p).is_ok());
        assert!(check_url("http://10.0.0.1/", &p).is_err());
        assert!(check_url("http://user:pw@127.0.0.1/", &p).is_err());
        assert!(p.permits("127.0.0.1".parse().unwrap()));
        assert!(!p.permits("169.254.169.254".parse().unwrap()));
    }
}
