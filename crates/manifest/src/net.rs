//! Network grant rules: which addresses a guest may connect to or listen on.

use crate::{ManifestError, serde_via_str};
use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// One network grant, `HOST:PORT`, where HOST is `*`, an IP address (`[v6]` in brackets),
/// a CIDR (`10.0.0.0/8`) or a DNS name, and PORT is a number, a range `8000-8080`, or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRule {
    /// Which hosts the rule covers.
    pub host: HostPattern,
    /// Which ports the rule covers.
    pub ports: PortRange,
}

/// The host part of a [`NetRule`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: any address.
    Any,
    /// An address or a CIDR block (a single address is a /32 or /128 block).
    Net(IpNet),
    /// A DNS name, resolved by the host when the policy is built.
    Name(String),
}

/// An inclusive port range; a single port has `first == last`, `*` is `0..=65535`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port covered.
    pub first: u16,
    /// Last port covered.
    pub last: u16,
}

impl NetRule {
    /// Whether this rule covers `addr`. Rules naming a DNS name cover nothing until
    /// resolved into address rules (see [`NetRule::with_host`]).
    pub fn matches(&self, addr: &SocketAddr) -> bool {
        let port = addr.port();
        if port < self.ports.first || port > self.ports.last {
            return false;
        }
        let ip = canonical(addr.ip());
        match &self.host {
            HostPattern::Any => true,
            HostPattern::Net(net) => net.contains(&ip),
            HostPattern::Name(_) => false,
        }
    }

    /// The same rule for another host pattern (used to replace a name by its addresses).
    pub fn with_host(&self, host: HostPattern) -> NetRule {
        NetRule {
            host,
            ports: self.ports,
        }
    }
}

/// IPv4-mapped IPv6 addresses are matched as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl FromStr for NetRule {
    type Err = ManifestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| ManifestError::invalid("network address", s, reason);
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| bad("expected HOST:PORT, e.g. `127.0.0.1:8080` or `*:443`"))?;
        let ports =
            parse_ports(port).ok_or_else(|| bad("port must be a number, a range `A-B` or `*`"))?;
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            HostPattern::Net(parse_net(inner).ok_or_else(|| bad("invalid IPv6 address"))?)
        } else if let Some(net) = parse_net(host) {
            HostPattern::Net(net)
        } else if is_dns_name(host) {
            HostPattern::Name(host.to_ascii_lowercase())
        } else {
            return Err(bad(
                "host must be `*`, an IP address, a CIDR block or a DNS name",
            ));
        };
        Ok(NetRule { host, ports })
    }
}

fn parse_ports(s: &str) -> Option<PortRange> {
    if s == "*" {
        return Some(PortRange {
            first: 0,
            last: u16::MAX,
        });
    }
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (first, last) = (a.parse().ok()?, b.parse().ok()?);
    (first <= last).then_some(PortRange { first, last })
}

fn parse_net(s: &str) -> Option<IpNet> {
    if s.contains('/') {
        return s.parse::<IpNet>().ok().map(|n| n.trunc());
    }
    s.parse::<IpAddr>()
        .ok()
        .map(|ip| IpNet::from(canonical(ip)))
}

fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl fmt::Display for NetRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Any => f.write_str("*")?,
            HostPattern::Net(net) if net.prefix_len() == net.max_prefix_len() => match net.addr() {
                IpAddr::V4(ip) => write!(f, "{ip}")?,
                IpAddr::V6(ip) => write!(f, "[{ip}]")?,
            },
            HostPattern::Net(net) => write!(f, "{net}")?,
            HostPattern::Name(name) => f.write_str(name)?,
        }
        match self.ports {
            PortRange {
                first: 0,
                last: u16::MAX,
            } => f.write_str(":*"),
            PortRange { first, last } if first == last => write!(f, ":{first}"),
            PortRange { first, last } => write!(f, ":{first}-{last}"),
        }
    }
}

serde_via_str!(NetRule, "an address such as `127.0.0.1:8080`");

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> NetRule {
        s.parse().unwrap()
    }
    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn exact_address_matches_only_itself() {
        let r = rule("127.0.0.1:8080");
        assert!(r.matches(&addr("127.0.0.1:8080")));
        assert!(!r.matches(&addr("127.0.0.1:8081")));
        assert!(!r.matches(&addr("127.0.0.2:8080")));
        assert!(r.matches(&addr("[::ffff:127.0.0.1]:8080")));
    }

    #[test]
    fn cidr_wildcards_and_ranges() {
        assert!(rule("10.0.0.0/8:443").matches(&addr("10.20.30.40:443")));
        assert!(!rule("10.0.0.0/8:443").matches(&addr("11.0.0.1:443")));
        assert!(rule("*:53").matches(&addr("[2001:db8::1]:53")));
        assert!(rule("[::1]:*").matches(&addr("[::1]:1")));
        assert!(rule("127.0.0.1:8000-8010").matches(&addr("127.0.0.1:8005")));
        assert!(!rule("127.0.0.1:8000-8010").matches(&addr("127.0.0.1:8011")));
    }

    #[test]
    fn names_parse_but_match_only_after_resolution() {
        let r = rule("Example.COM:443");
        assert_eq!(r.host, HostPattern::Name("example.com".into()));
        assert!(!r.matches(&addr("93.184.216.34:443")));
    }

    #[test]
    fn rules_print_as_written() {
        for s in [
            "127.0.0.1:8080",
            "*:443",
            "10.0.0.0/8:*",
            "[::1]:80",
            "example.com:1-2",
        ] {
            assert_eq!(rule(s).to_string(), s);
        }
    }

    #[test]
    fn bad_rules_are_refused() {
        for s in [
            "127.0.0.1",
            "127.0.0.1:http",
            "a b:80",
            "1.2.3.4:9-1",
            ":80",
            "[::1:80",
        ] {
            assert!(s.parse::<NetRule>().is_err(), "{s} should be refused");
        }
    }
}
