//! `--webhook-deny-private`: webhook URLs must not lead to loopback, private or link-local
//! addresses, for operators who hand tokens to parties they do not trust (server-side request
//! forgery). Checked when a URL is set (an IP literal, or a host name that resolves to such an
//! address, is a 400) and again on every delivery, by the resolver the HTTP client connects
//! through, so a name that later resolves elsewhere (DNS rebinding) is refused too.

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Anything but a global unicast address: loopback, private, link-local, unique-local, shared
/// (CGNAT), unspecified, broadcast, multicast, documentation, benchmarking (198.18/15), IETF
/// (192.0.0/24) and reserved (240/4) ranges, and IPv6 forms that embed an IPv4 address
/// (mapped, compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`), judged by that address: an
/// address that may lead inside the operator's network rather than to the internet.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || (a == 192 && b == 0 && c == 0)
                || a >= 240
                || a == 0
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let embedded = |high: u16, low: u16| {
                let [h1, h0] = high.to_be_bytes();
                let [l1, l0] = low.to_be_bytes();
                IpAddr::V4(std::net::Ipv4Addr::new(h1, h0, l1, l0))
            };
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::a.b.c.d).
            if segments[..6] == [0; 6] || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_private(embedded(segments[6], segments[7]));
            }
            // 6to4: 2002:AABB:CCDD::/48 carries a.b.c.d.
            if segments[0] == 0x2002 {
                return is_private(embedded(segments[1], segments[2]));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                // Documentation (2001:db8::/32) and the NAT64 local-use prefix 64:ff9b:1::/48.
                || (segments[0] == 0x2001 && segments[1] == 0x0db8)
                || (segments[0] == 0x64 && segments[1] == 0xff9b && segments[2] == 1)
        }
    }
}

/// Whether `url`'s host is an IP literal that [`is_private`] refuses (a host name is the
/// resolver's to check; an unreadable URL cannot be delivered to anyway).
pub fn is_private_literal(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return false;
    };
    // The URL parser has normalized IP literals (`0x7f.1` is 127.0.0.1 here).
    let host = url.host_str().unwrap_or_default();
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(is_private)
}

/// Resolves `host` (or reads it as an IP literal) and refuses it if any address is private.
pub async fn check_host(host: &str, port: u16) -> Result<(), String> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return refuse_private(ip);
    }
    let addresses = tokio::net::lookup_host((host, port))
        .await
        .map_err(|err| format!("cannot resolve {host}: {err}"))?;
    for address in addresses {
        refuse_private(address.ip())?;
    }
    Ok(())
}

fn refuse_private(ip: IpAddr) -> Result<(), String> {
    if is_private(ip) {
        Err(format!(
            "{ip} is a loopback, private or link-local address, refused by --webhook-deny-private"
        ))
    } else {
        Ok(())
    }
}

/// The resolver webhook deliveries connect through when private addresses are refused.
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for address in &addresses {
                refuse_private(address.ip())?;
            }
            let addresses: Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_private;

    #[test]
    fn inside_addresses_are_private_and_the_internet_is_not() {
        for inside in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "224.0.0.1",
            "ff02::1",
            "240.0.0.1",
            "198.18.0.1",
            "192.0.0.8",
        ] {
            assert!(is_private(inside.parse().unwrap()), "{inside}");
        }
        for outside in [
            "8.8.8.8",
            "93.184.216.34",
            "2606:4700::1111",
            "172.32.0.1",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert!(!is_private(outside.parse().unwrap()), "{outside}");
        }
    }
}
