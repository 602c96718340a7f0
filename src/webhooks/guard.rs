//! `--webhook-deny-private`: webhook URLs must not lead to loopback, private or link-local
//! addresses, for operators who hand tokens to parties they do not trust (server-side request
//! forgery). Checked when a URL is set (an IP literal, or a host name that resolves to such an
//! address, is a 400) and again on every delivery, by the resolver the HTTP client connects
//! through, so a name that later resolves elsewhere (DNS rebinding) is refused too.

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Loopback, private, link-local, unique-local, shared (CGNAT), unspecified or broadcast: an
/// address that leads inside the operator's network rather than to the internet.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private(IpAddr::V4(v4)),
            None => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_unique_local()
                    || v6.is_unicast_link_local()
            }
        },
    }
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
        ] {
            assert!(is_private(inside.parse().unwrap()), "{inside}");
        }
        for outside in ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "172.32.0.1"] {
            assert!(!is_private(outside.parse().unwrap()), "{outside}");
        }
    }
}
