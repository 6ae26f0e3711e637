//! What the node says about where it listens. A node bound to a wildcard address (`0.0.0.0`,
//! `::`, the default) is reachable on every interface of the host, LAN and Wi-Fi included, not
//! just the tailnet: the start-up banner lists those addresses so that nobody has to guess.

use std::net::{IpAddr, SocketAddr};

/// One address of one of the host's network interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddr {
    pub interface: String,
    pub ip: IpAddr,
}

/// The host's interface addresses, or why the OS could not list them.
pub fn host_addresses() -> Result<Vec<InterfaceAddr>, std::io::Error> {
    Ok(if_addrs::get_if_addrs()?
        .into_iter()
        .map(|i| InterfaceAddr {
            ip: i.ip(),
            interface: i.name,
        })
        .collect())
}

/// Whether `ip` is a Tailscale address (100.64.0.0/10, or fd7a:115c:a1e0::/48).
pub fn is_tailnet(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            a == 100 && (64..128).contains(&b)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            s[0] == 0xfd7a && s[1] == 0x115c && s[2] == 0xa1e0
        }
    }
}

/// The addresses a listener bound to `local` answers on, as `ip:port` for a peer to dial, each
/// with its interface: `local` alone unless it is a wildcard; for `0.0.0.0` every IPv4 address
/// of the host; for `::` every address (Linux and macOS IPv6 sockets take IPv4 too unless the
/// system makes them IPv6-only).
pub fn reachable_at(local: SocketAddr, interfaces: &[InterfaceAddr]) -> Vec<(String, String)> {
    if !local.ip().is_unspecified() {
        return vec![(local.to_string(), String::new())];
    }
    let port = local.port();
    let mut out: Vec<(String, String)> = interfaces
        .iter()
        .filter(|i| local.is_ipv6() || i.ip.is_ipv4())
        .map(|i| {
            let shown = match i.ip {
                IpAddr::V4(v4) => format!("{v4}:{port}"),
                // Link-local addresses need their interface to be dialed.
                IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => {
                    format!("[{v6}%{}]:{port}", i.interface)
                }
                IpAddr::V6(v6) => format!("[{v6}]:{port}"),
            };
            (shown, i.interface.clone())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The banner lines for a node listening on `local`: where it can be reached, and, when it
/// listens everywhere without checking peers, what that means and how to narrow it.
pub fn banner(
    local: SocketAddr,
    interfaces: Result<&[InterfaceAddr], &std::io::Error>,
    peers_checked: bool,
) -> Vec<String> {
    if !local.ip().is_unspecified() {
        return Vec::new();
    }
    let mut lines = Vec::new();
    match interfaces {
        Ok(list) => {
            let reachable = reachable_at(local, list);
            if reachable.is_empty() {
                lines.push(format!(
                    "listening on every interface ({local}), but the host reports no addresses yet"
                ));
            } else {
                let shown: Vec<String> = reachable
                    .iter()
                    .map(|(addr, interface)| format!("{addr} ({interface})"))
                    .collect();
                lines.push(format!(
                    "listening on every interface: {}",
                    shown.join(", ")
                ));
            }
            if !peers_checked {
                let tailnet = list.iter().find(|i| is_tailnet(i.ip)).map(|i| i.ip);
                let narrow = match tailnet {
                    Some(ip) => format!("pass --bind {ip} to listen on the tailnet only"),
                    None => "pass --bind ADDRESS (e.g. this host's Tailscale IP) to listen on one interface only".to_owned(),
                };
                lines.push(format!(
                    "warning: peers are not checked, so anyone who can reach one of these addresses can connect and try the pairing code while one is shown; {narrow}"
                ));
            }
        }
        Err(e) => {
            lines.push(format!(
                "listening on every interface ({local}); could not list the host's addresses: {e}"
            ));
            if !peers_checked {
                lines.push("warning: peers are not checked, so anyone who can reach this host can connect; pass --bind ADDRESS (e.g. this host's Tailscale IP) to listen on one interface only".to_owned());
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(interface: &str, ip: &str) -> InterfaceAddr {
        InterfaceAddr {
            interface: interface.into(),
            ip: ip.parse().unwrap(),
        }
    }

    fn host() -> Vec<InterfaceAddr> {
        vec![
            iface("lo", "127.0.0.1"),
            iface("eth0", "192.168.1.20"),
            iface("tailscale0", "100.101.102.103"),
            iface("lo", "::1"),
            iface("eth0", "fe80::1"),
            iface("tailscale0", "fd7a:115c:a1e0::1"),
        ]
    }

    #[test]
    fn a_wildcard_lists_the_addresses_of_its_family() {
        let v4 = reachable_at("0.0.0.0:18790".parse().unwrap(), &host());
        let addrs: Vec<&str> = v4.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(
            addrs,
            [
                "100.101.102.103:18790",
                "127.0.0.1:18790",
                "192.168.1.20:18790"
            ]
        );
        let v6 = reachable_at("[::]:18790".parse().unwrap(), &host());
        let addrs: Vec<&str> = v6.iter().map(|(a, _)| a.as_str()).collect();
        assert!(addrs.contains(&"[fe80::1%eth0]:18790"), "{addrs:?}");
        assert!(addrs.contains(&"[fd7a:115c:a1e0::1]:18790"), "{addrs:?}");
        assert!(addrs.contains(&"192.168.1.20:18790"), "{addrs:?}");
        // A concrete address is only itself, and needs no banner.
        let one: SocketAddr = "100.101.102.103:18790".parse().unwrap();
        assert_eq!(reachable_at(one, &host()).len(), 1);
        assert!(banner(one, Ok(&host()), false).is_empty());
    }

    #[test]
    fn unchecked_peers_on_every_interface_are_a_warning_with_the_fix() {
        let any: SocketAddr = "0.0.0.0:18790".parse().unwrap();
        let lines = banner(any, Ok(&host()), false);
        assert!(lines[0].contains("192.168.1.20:18790 (eth0)"), "{lines:?}");
        assert!(
            lines[1].contains("peers are not checked")
                && lines[1].contains("--bind 100.101.102.103"),
            "{lines:?}"
        );
        // With tailscaled checking peers there is nothing to warn about.
        assert_eq!(banner(any, Ok(&host()), true).len(), 1);
        let failed = std::io::Error::other("no netlink");
        let lines = banner(any, Err(&failed), false);
        assert!(lines[0].contains("no netlink") && lines[1].contains("--bind"));
    }

    #[test]
    fn tailnet_addresses_are_recognised() {
        assert!(is_tailnet("100.64.0.1".parse().unwrap()));
        assert!(is_tailnet("100.127.255.254".parse().unwrap()));
        assert!(!is_tailnet("100.128.0.1".parse().unwrap()));
        assert!(!is_tailnet("192.168.1.1".parse().unwrap()));
        assert!(is_tailnet("fd7a:115c:a1e0:ab12::1".parse().unwrap()));
        assert!(!is_tailnet("fd00::1".parse().unwrap()));
    }
}
