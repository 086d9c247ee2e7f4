// SPDX-License-Identifier: MIT OR Apache-2.0
//! Which addresses a webhook may reach: none inside (loopback, private, link-local, carrier-grade
//! NAT, multicast, reserved, and IPv6 spellings of those — IPv4-mapped and -compatible, NAT64,
//! 6to4), unless `webhooks.allow_private` says so.
//!
//! The check is on addresses, not on how the URL spells its host: a name is resolved and every
//! address it resolves to must pass (so `localhost.`, `127.1`, `2130706433` and a public name
//! pointing at 10.0.0.1 are all refused), and a delivery connects only to the addresses that were
//! checked in the same lookup ([`GuardedResolver`]: no second lookup, so no DNS rebinding between
//! check and connect). Ranges: IANA's IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890
//! and its updates), RFC 6598 (100.64.0.0/10), RFC 6052 (64:ff9b::/96, 64:ff9b:1::/48), RFC 3056
//! (2002::/16), RFC 4380 (Teredo, 2001::/32), RFC 9637 (3fff::/20); in IPv6 only global unicast
//! (2000::/3) is public at all.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// Why `ip` must not be a webhook target, or `None` for an ordinary public address.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "\"this network\" (0.0.0.0/8)",
        (10, _, _) => "private (10.0.0.0/8)",
        (100, 64..=127, _) => "carrier-grade NAT (100.64.0.0/10)",
        (127, _, _) => "loopback (127.0.0.0/8)",
        (169, 254, _) => "link-local (169.254.0.0/16)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay anycast (192.88.99.0/24)",
        (192, 168, _) => "private (192.168.0.0/16)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, _, _) => "multicast (224.0.0.0/4)",
        (240..=255, _, _) => "reserved or broadcast (240.0.0.0/4)",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // IPv6 spellings of an IPv4 address: judged by the IPv4 address they carry.
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[..5] == [0; 5] && s[5] == 0xffff {
        return forbidden_v4(embedded(s[6], s[7])).map(|_| "IPv4-mapped inside address");
    }
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("loopback (::1)");
    }
    if s[..6] == [0; 6] {
        // ::a.b.c.d, the deprecated IPv4-compatible form (RFC 4291 2.5.5.1): refused whatever
        // it carries.
        return Some("IPv4-compatible (::/96)");
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return forbidden_v4(embedded(s[6], s[7]))
            .map(|_| "NAT64 of an inside address (64:ff9b::/96)");
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return Some("local-use NAT64 (64:ff9b:1::/48)");
    }
    if s[0] == 0x2002 {
        return forbidden_v4(embedded(s[1], s[2])).map(|_| "6to4 of an inside address (2002::/16)");
    }
    // Only global unicast (2000::/3) is public, less the special blocks inside it.
    Some(match s[0] {
        x if x & 0xe000 != 0x2000 => {
            "outside global unicast (2000::/3): unique-local, link-local, site-local, multicast, SIIT, reserved"
        }
        0x2001 if s[1] < 0x200 => "IETF protocol assignments (2001::/23, Teredo included)",
        0x2001 if s[1] == 0xdb8 => "documentation (2001:db8::/32)",
        x if x & 0xfff0 == 0x3ff0 => "documentation (3fff::/20)",
        _ => return None,
    })
}

/// Why a target host was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// It is, or resolves to, an inside address.
    Inside(String),
    /// The name does not resolve (now): deliveries resolve and check it again.
    Unresolved(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Inside(s) | Refused::Unresolved(s) => f.write_str(s),
        }
    }
}

/// Every address `host` resolves to on `port`, each checked; the first inside one refuses the
/// whole target. A literal address is checked as it is; names are looked up once (with the
/// spellings the system resolver accepts: `127.1`, `2130706433`, `0x7f.1`).
pub fn resolve_checked(host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            let name = bare.trim_end_matches('.');
            if name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost")
            {
                return Err(Refused::Inside(format!(
                    "{host} is loopback (localhost) (set webhooks.allow_private to allow)"
                )));
            }
            (name, port)
                .to_socket_addrs()
                .map_err(|_| Refused::Unresolved(format!("{host} does not resolve")))?
                .collect()
        }
    };
    if addrs.is_empty() {
        return Err(Refused::Unresolved(format!(
            "{host} resolves to no address"
        )));
    }
    for addr in &addrs {
        if let Some(why) = forbidden(addr.ip()) {
            // The reason names no resolved address: a tenant must not map inside names by
            // registering webhooks (the service log has the detail).
            tracing::info!(%host, address = %addr.ip(), why, "webhook target refused");
            return Err(Refused::Inside(format!(
                "{host} is not a public address (set webhooks.allow_private to allow)"
            )));
        }
    }
    Ok(addrs)
}

/// ureq's resolver for deliveries: resolves as ureq would, then refuses the target when any
/// address is inside; ureq connects only to the addresses returned here, the ones checked.
/// (`ureq::unversioned`: ureq's own, not yet semver-stable, resolver interface.)
#[derive(Debug, Default)]
pub struct GuardedResolver {
    inner: DefaultResolver,
}

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addrs = self.inner.resolve(uri, config, timeout)?;
        for addr in addrs.iter() {
            if let Some(why) = forbidden(addr.ip()) {
                return Err(ureq::Error::Other(
                    format!(
                        "{} resolves to {}, a {why} address",
                        uri.host().unwrap_or_default(),
                        addr.ip()
                    )
                    .into(),
                ));
            }
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inside addresses in the spellings an attacker would try, each refused; public ones pass.
    #[test]
    fn inside_addresses_are_refused_in_every_spelling() {
        let inside = [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "198.18.0.1",
            "192.0.0.8",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:a00:1::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001::1",
            "2001:db8::1",
            "2001:2::1",
            "2001:10::1",
            "3fff::1",
            "5f00::1",
            "100::1",
            "::ffff:0:7f00:1",
            "1::1",
        ];
        for spelling in inside {
            let ip: IpAddr = spelling.parse().unwrap();
            assert!(forbidden(ip).is_some(), "{spelling} passed");
        }
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ];
        for spelling in public {
            let ip: IpAddr = spelling.parse().unwrap();
            assert_eq!(forbidden(ip), None, "{spelling} refused");
        }
    }

    #[test]
    fn names_and_numeric_spellings_are_resolved_before_the_check() {
        for host in [
            "localhost",
            "LOCALHOST.",
            "api.localhost",
            "127.1",
            "2130706433",
            "0x7f.1",
            "[::1]",
            "[::ffff:127.0.0.1]",
            "017700000001",
        ] {
            let refused = resolve_checked(host, 443);
            assert!(
                matches!(refused, Err(Refused::Inside(_))),
                "{host}: {refused:?}"
            );
        }
        // The control: a public literal passes, with its port.
        assert_eq!(
            resolve_checked("8.8.8.8", 8443).unwrap(),
            vec!["8.8.8.8:8443".parse().unwrap()]
        );
    }
}
