//! The `Host` check, against DNS rebinding: a page on `evil.example` whose name is
//! re-pointed to 127.0.0.1 reaches this server with `Host: evil.example:PORT`, so every
//! request must name this server: a loopback name or address on the bound port, the
//! bound address itself, the public URL's host, or an `--allowed-hosts` entry. An IP
//! literal cannot be rebound, so with an unspecified bind (0.0.0.0) any address on the
//! bound port is accepted too.

use std::net::IpAddr;

/// One `--allowed-hosts` entry (or the public URL's host).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// `name` or `name:port`.
    Exact { host: String, port: Option<u16> },
    /// `*.example.com`: any subdomain (not the bare domain).
    Subdomains { suffix: String, port: Option<u16> },
}

#[derive(Debug, Clone)]
pub struct AllowedHosts {
    port: u16,
    bound: IpAddr,
    rules: Vec<Rule>,
}

/// `host[:port]` of an authority, lower-case, brackets of IPv6 literals removed; None
/// when it does not parse.
pub fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.trim().to_ascii_lowercase();
    if authority.is_empty() || authority.contains(['/', '@', ' ']) {
        return None;
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        return match after {
            "" => Some((host.to_owned(), None)),
            p => Some((host.to_owned(), Some(p.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host.to_owned(), Some(port.parse().ok()?))),
        Some(_) => None, // an IPv6 literal must be bracketed
        None => Some((authority, None)),
    }
}

fn rule(entry: &str) -> Option<Rule> {
    let (host, port) = split_authority(entry.trim_start_matches("*."))?;
    if host.is_empty() {
        return None;
    }
    Some(match entry.trim().starts_with("*.") {
        true => Rule::Subdomains { suffix: format!(".{host}"), port },
        false => Rule::Exact { host, port },
    })
}

fn is_loopback_name(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl AllowedHosts {
    /// Hosts for a server bound to `bound:port`, reached also as `public_host` and as
    /// the `allowed` entries; an entry that does not parse is an error naming it.
    pub fn new(bound: IpAddr, port: u16, public_host: Option<&str>, allowed: &[String]) -> Result<AllowedHosts, String> {
        let mut rules = Vec::new();
        if let Some(host) = public_host {
            if let Some((host, _)) = split_authority(host) {
                rules.push(Rule::Exact { host, port: None });
            }
        }
        for entry in allowed.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            rules.push(rule(entry).ok_or_else(|| format!("{entry:?} is not a host name, `name:port` or `*.domain`"))?);
        }
        Ok(AllowedHosts { port, bound, rules })
    }

    /// Whether a request's `Host` (or an Origin's authority) names this server.
    pub fn allows(&self, authority: &str) -> bool {
        let Some((host, port)) = split_authority(authority) else { return false };
        // a Host without a port means the scheme's default: only right on port 80
        let on_our_port = port.unwrap_or(80) == self.port;
        if on_our_port && is_loopback_name(&host) {
            return true;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            if on_our_port && (ip == self.bound || self.bound.is_unspecified()) {
                return true;
            }
        }
        self.rules.iter().any(|r| match r {
            Rule::Exact { host: h, port: p } => *h == host && p.is_none_or(|p| Some(p) == port),
            Rule::Subdomains { suffix, port: p } => host.ends_with(suffix.as_str()) && p.is_none_or(|p| Some(p) == port),
        })
    }

    /// The names this server answers to, for the start-up log.
    pub fn describe(&self) -> String {
        let mut names = vec![format!("localhost:{0}, 127.0.0.1:{0}, [::1]:{0}", self.port)];
        if self.bound.is_unspecified() {
            names.push(format!("any IP address on port {}", self.port));
        } else if !self.bound.is_loopback() {
            names.push(format!("{}:{}", self.bound, self.port));
        }
        for r in &self.rules {
            names.push(match r {
                Rule::Exact { host, port: Some(p) } => format!("{host}:{p}"),
                Rule::Exact { host, port: None } => host.clone(),
                Rule::Subdomains { suffix, port: Some(p) } => format!("*{suffix}:{p}"),
                Rule::Subdomains { suffix, port: None } => format!("*{suffix}"),
            });
        }
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback(port: u16) -> AllowedHosts {
        AllowedHosts::new("127.0.0.1".parse().unwrap(), port, None, &[]).unwrap()
    }

    #[test]
    fn loopback_names_on_the_bound_port_only() {
        let h = loopback(3000);
        for ok in ["127.0.0.1:3000", "localhost:3000", "LOCALHOST:3000", "[::1]:3000", "127.0.0.2:3000", "app.localhost:3000"] {
            assert!(h.allows(ok), "{ok}");
        }
        for no in ["evil.example:3000", "127.0.0.1:3001", "127.0.0.1", "localhost", "", "::1:3000", "a b:3000", "user@127.0.0.1:3000", "192.168.1.5:3000"] {
            assert!(!h.allows(no), "{no}");
        }
        assert!(loopback(80).allows("localhost"), "no port is port 80");
    }

    #[test]
    fn public_url_allowed_hosts_and_an_unspecified_bind() {
        let h = AllowedHosts::new(
            "0.0.0.0".parse().unwrap(),
            3000,
            Some("sb.example.com"),
            &["ops.example.org:8443".into(), "*.corp.example".into()],
        )
        .unwrap();
        assert!(h.allows("sb.example.com") && h.allows("sb.example.com:443"));
        assert!(h.allows("ops.example.org:8443") && !h.allows("ops.example.org:80"));
        assert!(h.allows("a.corp.example:1") && !h.allows("corp.example:1") && !h.allows("acorp.example"));
        assert!(h.allows("192.168.1.5:3000") && h.allows("[fe80::1]:3000") && !h.allows("192.168.1.5:3001"));
        assert!(!h.allows("evil.example:3000"), "a name is never allowed for being on the port");
        assert!(AllowedHosts::new("0.0.0.0".parse().unwrap(), 1, None, &["bad/host".into()]).unwrap_err().contains("bad/host"));
    }
}
