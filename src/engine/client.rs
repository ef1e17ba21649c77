//! Who is on the other end of a sign-in or a refresh: the client's IP address and
//! `User-Agent`, as the session keeps them (docs/cookies.md, "Client IP" and "Devices").
//!
//! Pure: the caller hands in the connection's peer address and the request's
//! headers; nothing here reads a socket. [`TrustedProxy::client_ip`] is the one
//! implementation of the trusted-proxy rule, used by `tollgate serve`, the
//! Worker, the npm package's adapters (through the wasm export `clientIp`) and
//! any Rust framework layer. None of this ever decides whether a request is allowed.
//!
//! An address is kept as an [`IpAddr`], whose text is canonical: IPv6 per RFC 5952
//! (lowercase, zero-compressed), an IPv4-mapped address as `::ffff:1.2.3.4`; a zone
//! (`%eth0`) never parses.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::Error;

/// The longest `User-Agent` a session keeps, in bytes; a longer one is cut on a character boundary.
pub const MAX_USER_AGENT_BYTES: usize = 256;

/// The client of a sign-in or refresh, as the session records it. Neither field
/// is trusted for anything but display and audit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// The client's address, per the trusted-proxy rule; `None` when it is not known.
    pub ip: Option<IpAddr>,
    /// The `User-Agent` header, at most [`MAX_USER_AGENT_BYTES`] bytes, control characters dropped.
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// A client from its parts; the user agent is bounded with [`bound_user_agent`].
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        ClientInfo { ip, user_agent: user_agent.and_then(bound_user_agent) }
    }

    /// The client of a request: its IP by `proxy`'s rule from the peer address and
    /// the headers (name, value pairs, names in any case), and its `User-Agent`.
    pub fn from_request<'h>(
        proxy: TrustedProxy,
        peer: Option<IpAddr>,
        headers: impl IntoIterator<Item = (&'h str, &'h str)> + Clone,
    ) -> Self {
        let ua = headers.clone().into_iter().find(|(n, _)| n.eq_ignore_ascii_case("user-agent")).map(|(_, v)| v);
        ClientInfo::new(proxy.client_ip(peer, headers), ua)
    }
}

/// A `User-Agent` as kept: control characters dropped, trimmed, cut to
/// [`MAX_USER_AGENT_BYTES`] on a character boundary; `None` when nothing is left.
pub fn bound_user_agent(ua: &str) -> Option<String> {
    let clean: String = ua.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    let mut end = clean.len().min(MAX_USER_AGENT_BYTES);
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    let kept = clean[..end].trim_end();
    (!kept.is_empty()).then(|| kept.to_owned())
}

/// Where the client IP comes from (setting `trusted_proxy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrustedProxy {
    /// No proxy: the connection's peer address; headers are ignored (any client can write them).
    #[default]
    None,
    /// `x-forwarded-for:N`: N proxies, each appending the address it received from;
    /// the client is the N-th entry from the right.
    XForwardedFor(u8),
    /// `cf-connecting-ip`: the `CF-Connecting-IP` header Cloudflare sets.
    CfConnectingIp,
}

/// The most proxies `x-forwarded-for:N` may name.
pub const MAX_PROXY_HOPS: u8 = 255;

impl FromStr for TrustedProxy {
    type Err = Error;
    /// `none`, `x-forwarded-for:N` (1 to 255) or `cf-connecting-ip`; anything else is `config_invalid`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let refuse = || Error::config("trusted_proxy is none, x-forwarded-for:N (N from 1 to 255 proxies) or cf-connecting-ip");
        match s {
            "none" => Ok(TrustedProxy::None),
            "cf-connecting-ip" => Ok(TrustedProxy::CfConnectingIp),
            _ => {
                let n = s.strip_prefix("x-forwarded-for:").ok_or_else(refuse)?;
                if n.is_empty() || n.len() > 3 || !n.bytes().all(|b| b.is_ascii_digit()) || n.starts_with('0') {
                    return Err(refuse());
                }
                n.parse::<u8>().map(TrustedProxy::XForwardedFor).map_err(|_| refuse())
            }
        }
    }
}

impl std::fmt::Display for TrustedProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrustedProxy::None => f.write_str("none"),
            TrustedProxy::XForwardedFor(n) => write!(f, "x-forwarded-for:{n}"),
            TrustedProxy::CfConnectingIp => f.write_str("cf-connecting-ip"),
        }
    }
}

impl TrustedProxy {
    /// The client IP by this rule, or `None` (never a guess). `peer` is the
    /// connection's remote address; `headers` are the request's (name, value)
    /// pairs in order, names in any case, a header perhaps given several times.
    pub fn client_ip<'h>(self, peer: Option<IpAddr>, headers: impl IntoIterator<Item = (&'h str, &'h str)>) -> Option<IpAddr> {
        match self {
            TrustedProxy::None => peer,
            TrustedProxy::CfConnectingIp => {
                let value = headers.into_iter().find(|(n, _)| n.eq_ignore_ascii_case("cf-connecting-ip"))?.1;
                parse_entry(value)
            }
            TrustedProxy::XForwardedFor(n) => {
                // Every X-Forwarded-For header, joined with ',' in order, split on ','.
                let entries: Vec<&str> = headers
                    .into_iter()
                    .filter(|(name, _)| name.eq_ignore_ascii_case("x-forwarded-for"))
                    .flat_map(|(_, v)| v.split(','))
                    .collect();
                let at = entries.len().checked_sub(usize::from(n))?;
                parse_entry(entries[at])
            }
        }
    }
}

/// One address as a proxy writes it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:443`, surrounding spaces allowed.
pub fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim_matches([' ', '\t']);
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    let inner = entry.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<String> {
        parse_entry(s).map(|i| i.to_string())
    }

    const PEER: &str = "203.0.113.9";

    fn client(proxy: &str, headers: &[(&str, &str)]) -> Option<String> {
        let proxy: TrustedProxy = proxy.parse().unwrap();
        proxy.client_ip(Some(PEER.parse().unwrap()), headers.iter().copied()).map(|i| i.to_string())
    }

    #[test]
    fn entry_forms_and_canonical_text() {
        assert_eq!(ip("1.2.3.4"), Some("1.2.3.4".into()));
        assert_eq!(ip("1.2.3.4:5678"), Some("1.2.3.4".into()));
        assert_eq!(ip("2001:db8::1"), Some("2001:db8::1".into()));
        assert_eq!(ip("[2001:db8::1]:443"), Some("2001:db8::1".into()));
        assert_eq!(ip("[2001:db8::1]"), Some("2001:db8::1".into()));
        assert_eq!(ip("  1.2.3.4\t"), Some("1.2.3.4".into()));
        // RFC 5952: lowercase, longest zero run compressed, no leading zeros.
        assert_eq!(ip("2001:0DB8:0000:0000:0000:0000:0000:0001"), Some("2001:db8::1".into()));
        assert_eq!(ip("2001:db8:0:0:1:0:0:1"), Some("2001:db8::1:0:0:1".into()));
        assert_eq!(ip("::FFFF:1.2.3.4"), Some("::ffff:1.2.3.4".into()));
        assert_eq!(ip("::ffff:0102:0304"), Some("::ffff:1.2.3.4".into()));
        for bad in [
            "",
            "unknown",
            "1.2.3",
            "1.2.3.4.5",
            "999.1.1.1",
            "1.2.3.4:",
            "[1.2.3.4]",
            "2001:db8::1:443x",
            "fe80::1%eth0",
            "01.2.3.4",
            "[::1]:99999",
            "_hidden",
            "1.2.3.4 5.6.7.8",
        ] {
            assert_eq!(ip(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn none_is_the_peer_and_ignores_headers() {
        assert_eq!(client("none", &[]), Some(PEER.into()));
        assert_eq!(client("none", &[("X-Forwarded-For", "1.1.1.1"), ("CF-Connecting-IP", "2.2.2.2")]), Some(PEER.into()));
        assert_eq!(TrustedProxy::None.client_ip(None, [("x-forwarded-for", "1.1.1.1")]), None);
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(TrustedProxy::None.client_ip(Some(mapped), []).map(|i| i.to_string()), Some("::ffff:10.0.0.1".into()));
    }

    #[test]
    fn x_forwarded_for_counts_from_the_right() {
        let xff = [("X-Forwarded-For", "6.6.6.6, 1.1.1.1, 10.0.0.2")];
        assert_eq!(client("x-forwarded-for:1", &xff), Some("10.0.0.2".into()));
        assert_eq!(client("x-forwarded-for:2", &xff), Some("1.1.1.1".into()));
        assert_eq!(client("x-forwarded-for:3", &xff), Some("6.6.6.6".into()));
        // Fewer entries than proxies: none, never the leftmost (which the client wrote).
        assert_eq!(client("x-forwarded-for:4", &xff), None);
        assert_eq!(client("x-forwarded-for:1", &[]), None);
    }

    #[test]
    fn x_forwarded_for_joins_every_header_in_order() {
        let split = [("x-forwarded-for", "6.6.6.6"), ("Accept", "*/*"), ("X-FORWARDED-FOR", "1.1.1.1 ,10.0.0.2")];
        assert_eq!(client("x-forwarded-for:1", &split), Some("10.0.0.2".into()));
        assert_eq!(client("x-forwarded-for:2", &split), Some("1.1.1.1".into()));
        assert_eq!(client("x-forwarded-for:3", &split), Some("6.6.6.6".into()));
    }

    #[test]
    fn x_forwarded_for_entry_forms_and_garbage() {
        assert_eq!(client("x-forwarded-for:1", &[("x-forwarded-for", "[2001:DB8::1]:443")]), Some("2001:db8::1".into()));
        assert_eq!(client("x-forwarded-for:1", &[("x-forwarded-for", "1.2.3.4:5678")]), Some("1.2.3.4".into()));
        // The chosen entry is not an IP: none, even when another entry is one.
        assert_eq!(client("x-forwarded-for:1", &[("x-forwarded-for", "1.1.1.1, unknown")]), None);
        assert_eq!(client("x-forwarded-for:1", &[("x-forwarded-for", "1.1.1.1,")]), None);
        assert_eq!(client("x-forwarded-for:2", &[("x-forwarded-for", "garbage, 1.1.1.1")]), None);
        assert_eq!(client("x-forwarded-for:1", &[("x-forwarded-for", "")]), None);
    }

    #[test]
    fn cf_connecting_ip() {
        assert_eq!(client("cf-connecting-ip", &[("CF-Connecting-IP", "2001:db8:0::7")]), Some("2001:db8::7".into()));
        assert_eq!(client("cf-connecting-ip", &[("cf-connecting-ip", "1.2.3.4")]), Some("1.2.3.4".into()));
        assert_eq!(client("cf-connecting-ip", &[]), None, "absent: none, not the peer");
        assert_eq!(client("cf-connecting-ip", &[("cf-connecting-ip", "not an ip")]), None);
        assert_eq!(client("cf-connecting-ip", &[("x-forwarded-for", "1.2.3.4")]), None);
    }

    #[test]
    fn settings_text() {
        for ok in ["none", "cf-connecting-ip", "x-forwarded-for:1", "x-forwarded-for:2", "x-forwarded-for:255"] {
            assert_eq!(ok.parse::<TrustedProxy>().unwrap().to_string(), ok);
        }
        for bad in [
            "",
            "None",
            "x-forwarded-for",
            "x-forwarded-for:",
            "x-forwarded-for:0",
            "x-forwarded-for:01",
            "x-forwarded-for:256",
            "x-forwarded-for:-1",
            "x-forwarded-for:1 ",
            "x-real-ip",
            "forwarded",
        ] {
            let e = bad.parse::<TrustedProxy>().unwrap_err();
            assert_eq!(e.code().as_str(), "config_invalid", "{bad:?}");
        }
    }

    #[test]
    fn user_agent_is_bounded_on_a_char_boundary() {
        assert_eq!(bound_user_agent("Mozilla/5.0"), Some("Mozilla/5.0".into()));
        assert_eq!(bound_user_agent("  \t "), None);
        assert_eq!(bound_user_agent("a\u{0}b\r\nc"), Some("abc".into()));
        let long = "é".repeat(200); // 400 bytes
        let kept = bound_user_agent(&long).unwrap();
        assert_eq!(kept.len(), 256);
        assert!(kept.chars().all(|c| c == 'é'));
        let odd = format!("x{}", "é".repeat(200)); // a 2-byte char straddles byte 256
        assert_eq!(bound_user_agent(&odd).unwrap().len(), 255);
        let headers = [("User-Agent", "curl/8"), ("x-forwarded-for", "1.2.3.4")];
        let c = ClientInfo::from_request(TrustedProxy::XForwardedFor(1), None, headers.iter().copied());
        assert_eq!(c, ClientInfo { ip: Some("1.2.3.4".parse().unwrap()), user_agent: Some("curl/8".into()) });
    }
}
