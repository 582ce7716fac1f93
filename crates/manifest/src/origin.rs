//! Outbound HTTP grants: which origins a guest may send `wasi:http` requests to.

use crate::{ManifestError, serde_via_str};
use std::fmt;
use std::str::FromStr;

/// One outbound HTTP grant, `SCHEME://HOST[:PORT]`: `http` or `https`, a host name or
/// address (`*.example.com` covers every subdomain of `example.com`, not the name
/// itself), and a port (the scheme's default when left out, `*` for any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOrigin {
    /// `http` or `https`.
    pub scheme: String,
    /// Lowercase host; `[v6]` addresses keep their brackets; `*.` prefix for subdomains.
    pub host: String,
    /// The port, or `None` for any port.
    pub port: Option<u16>,
}

impl HttpOrigin {
    /// Whether a request to `scheme://host:port` is covered by this grant.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        if !self.scheme.eq_ignore_ascii_case(scheme) || self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match self.host.strip_prefix("*.") {
            Some(parent) => host
                .strip_suffix(parent)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => host == self.host,
        }
    }
}

/// The port a scheme uses when a URL names none.
pub fn default_port(scheme: &str) -> u16 {
    if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    }
}

impl FromStr for HttpOrigin {
    type Err = ManifestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| ManifestError::invalid("HTTP origin", s, reason);
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| bad("expected SCHEME://HOST[:PORT], e.g. `https://api.example.com`"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad("scheme must be `http` or `https`"));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad(
                "an origin has no path, query or user (only SCHEME://HOST[:PORT])",
            ));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, Some(p)),
            _ => (rest, None),
        };
        let port = match port {
            None => Some(default_port(&scheme)),
            Some("*") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad("port must be 1-65535 or `*`"))?,
            ),
        };
        let host = host.to_ascii_lowercase();
        let name = host.strip_prefix("*.").unwrap_or(&host);
        let valid = if let Some(v6) = name.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            v6.parse::<std::net::Ipv6Addr>().is_ok() && name == host
        } else {
            !name.is_empty()
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        };
        if !valid {
            return Err(bad(
                "host must be a DNS name, `*.` and a DNS name, or an IP address",
            ));
        }
        Ok(HttpOrigin { scheme, host, port })
    }
}

impl fmt::Display for HttpOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        match self.port {
            None => f.write_str(":*"),
            Some(p) if p == default_port(&self.scheme) => Ok(()),
            Some(p) => write!(f, ":{p}"),
        }
    }
}

serde_via_str!(HttpOrigin, "an origin such as `https://api.example.com`");

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(s: &str) -> HttpOrigin {
        s.parse().unwrap()
    }

    #[test]
    fn exact_origins_match_scheme_host_and_port() {
        let o = origin("https://API.example.com");
        assert!(o.allows("https", "api.example.com", 443));
        assert!(o.allows("HTTPS", "api.example.com.", 443));
        assert!(!o.allows("http", "api.example.com", 443));
        assert!(!o.allows("https", "api.example.com", 8443));
        assert!(!o.allows("https", "evil.com", 443));
        let local = origin("http://127.0.0.1:8081");
        assert!(local.allows("http", "127.0.0.1", 8081));
        assert!(!local.allows("http", "127.0.0.1", 8082));
        assert!(origin("http://[::1]:*").allows("http", "[::1]", 1));
    }

    #[test]
    fn wildcards_cover_subdomains_only() {
        let o = origin("https://*.example.com");
        assert!(o.allows("https", "a.example.com", 443));
        assert!(o.allows("https", "a.b.example.com", 443));
        assert!(!o.allows("https", "example.com", 443));
        assert!(!o.allows("https", "badexample.com", 443));
    }

    #[test]
    fn bad_origins_are_refused() {
        for s in [
            "api.example.com",
            "ftp://x.com",
            "https://x.com/path",
            "https://user@x.com",
            "https://x.com:0",
            "https://x.com:99999",
            "https://",
            "https://a..b",
            "http://[zz]:80",
        ] {
            assert!(s.parse::<HttpOrigin>().is_err(), "{s} parsed");
        }
    }

    #[test]
    fn origins_print_as_canonical_text() {
        for (input, shown) in [
            ("https://x.com:443", "https://x.com"),
            ("http://127.0.0.1:8081/", "http://127.0.0.1:8081"),
            ("HTTP://*.Local:*", "http://*.local:*"),
            ("http://[::1]:80", "http://[::1]"),
        ] {
            assert_eq!(origin(input).to_string(), shown);
            assert_eq!(origin(shown), origin(input));
        }
    }
}
