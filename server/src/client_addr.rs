//! Who is on the other end: the one rule for a request's client address.
//!
//! A request's client is its TCP peer, unless that peer is a configured reverse proxy
//! (`--trusted-proxy`). Only then is the forwarded header read, and only the part of it that
//! trusted proxies wrote: the chain is walked from the right (the hop nearest to us) past
//! every trusted address, and the first untrusted address is the client. Anything to the
//! left of it was written by the client itself and could be anything.
//!
//! Sans-IO: no sockets, no clock. The server resolves the address once per request with
//! [`TrustedProxies::client_ip`] (through the [`ClientAddr`] extractor) and uses that one
//! address for join and creation limits, connection caps, the loopback rule of room listing
//! and logs.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;

/// Which forwarded header trusted proxies write. Exactly one is read: a client behind a proxy
/// that appends to `X-Forwarded-For` could otherwise put any address in a `Forwarded` header
/// that the proxy passes through untouched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, Caddy, HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client;proto=https, for=proxy1`.
    Forwarded,
}

impl ForwardedHeader {
    fn name(self) -> HeaderName {
        match self {
            ForwardedHeader::XForwardedFor => HeaderName::from_static("x-forwarded-for"),
            ForwardedHeader::Forwarded => axum::http::header::FORWARDED,
        }
    }
}

/// A `--trusted-proxy` value that is neither an IP address nor a CIDR block.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an IP address or a CIDR block (e.g. 10.0.0.5, 10.0.0.0/8, fd00::/8)")]
pub struct BadProxy(String);

/// The reverse proxies whose forwarded headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// Proxies in `nets` that write `header`.
    pub fn new(nets: Vec<IpNet>, header: ForwardedHeader) -> Self {
        Self { nets, header }
    }

    /// Parses an IP address (`10.0.0.5`, `::1`) or a CIDR block (`10.0.0.0/8`).
    pub fn parse_net(text: &str) -> Result<IpNet, BadProxy> {
        let text = text.trim();
        IpNet::from_str(text)
            .map(|n| n.trunc())
            .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
            .map_err(|_| BadProxy(text.to_string()))
    }

    /// Whether no proxy is configured (every peer is its own client).
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is a configured proxy.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client address of a request that arrived from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        // Several header lines are one list, in order (RFC 9110 §5.3).
        let hops: Vec<Hop> = headers
            .get_all(self.header.name())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|line| line.split(','))
            .map(|element| match self.header {
                ForwardedHeader::XForwardedFor => parse_node(element),
                ForwardedHeader::Forwarded => forwarded_for(element),
            })
            .collect();
        // Walk from our side: `nearest` is the last hop known to be a trusted proxy.
        let mut nearest = peer;
        for hop in hops.iter().rev() {
            match hop {
                Hop::Ip(ip) if self.is_trusted(*ip) => nearest = *ip,
                Hop::Ip(ip) => return *ip,
                // A trusted proxy handed over something that is not an address (`unknown`,
                // an obfuscated name, garbage): the proxy is the best we know.
                Hop::Unknown => return nearest,
            }
        }
        // Every hop is trusted (an internal client) or there is no header: the leftmost
        // trusted hop is the origin.
        nearest
    }
}

/// One element of a forwarded chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    Ip(IpAddr),
    Unknown,
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:4711`.
fn parse_node(text: &str) -> Hop {
    let text = text.trim().trim_matches('"');
    let ip = if let Some(rest) = text.strip_prefix('[') {
        rest.split_once(']').and_then(|(ip, _)| ip.parse().ok())
    } else {
        text.parse::<IpAddr>()
            .ok()
            .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
    };
    ip.map_or(Hop::Unknown, |ip| Hop::Ip(ip.to_canonical()))
}

/// The `for=` node of one RFC 7239 element (`for=192.0.2.1;proto=https`); an element without
/// one says nothing about the client.
fn forwarded_for(element: &str) -> Hop {
    element
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case("for"))
        .map_or(Hop::Unknown, |(_, value)| parse_node(value))
}

/// The client of a request, resolved by the server's one rule (see the module doc). Needs
/// the server's connection info, which every request served by [`crate::edge`] carries.
#[derive(Clone)]
pub struct ClientAddr {
    /// The client's address.
    pub ip: IpAddr,
    /// The TCP peer (the client itself, or the proxy it came through).
    pub peer: SocketAddr,
    /// Whether the TCP peer is a trusted proxy: then the connection is the proxy's, not the
    /// client's, and per-address connection caps apply to the client's WebSockets instead.
    pub proxied: bool,
    /// Where an upgrade through a proxy keeps the client's connection permit.
    pub(crate) slot: Option<crate::edge::ClientSlot>,
}

impl ClientAddr {
    /// The client as a socket address for logs and per-connection bookkeeping: the TCP peer
    /// itself when there is no proxy, otherwise the client's address with the peer's port.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.peer.port())
    }
}

impl FromRequestParts<crate::app::AppState> for ClientAddr {
    type Rejection = <ConnectInfo<SocketAddr> as FromRequestParts<crate::app::AppState>>::Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &crate::app::AppState) -> Result<Self, Self::Rejection> {
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state).await?;
        Ok(ClientAddr {
            ip: state.settings.edge.proxies.client_ip(peer.ip(), &parts.headers),
            peer,
            proxied: state.settings.edge.proxies.is_trusted(peer.ip()),
            slot: parts.extensions.get::<crate::edge::ClientSlot>().cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    fn proxies(nets: &[&str], header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies::new(
            nets.iter().map(|n| TrustedProxies::parse_net(n).unwrap()).collect(),
            header,
        )
    }

    #[test]
    fn without_trusted_proxies_forwarded_headers_are_ignored() {
        let p = TrustedProxies::default();
        let h = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(p.client_ip(ip("198.51.100.7"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn spoofed_headers_from_an_untrusted_peer_are_ignored() {
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["127.0.0.1, 10.0.0.3"]);
        assert_eq!(p.client_ip(ip("198.51.100.7"), &h), ip("198.51.100.7"));
        let h = headers("forwarded", &["for=127.0.0.1"]);
        assert_eq!(p.client_ip(ip("198.51.100.7"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn a_trusted_peer_gives_the_rightmost_untrusted_hop() {
        let p = proxies(&["10.0.0.0/8", "192.0.2.1"], ForwardedHeader::XForwardedFor);
        // The client prepended a fake entry; the proxies appended what they saw.
        let h = headers("x-forwarded-for", &["127.0.0.1, 203.0.113.9, 192.0.2.1"]);
        assert_eq!(p.client_ip(ip("10.1.2.3"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn several_header_lines_are_one_chain() {
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["1.1.1.1", "203.0.113.9, 10.0.0.2"]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn a_trusted_peer_without_a_header_is_the_client() {
        let p = proxies(&["127.0.0.1"], ForwardedHeader::XForwardedFor);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &HeaderMap::new()), ip("127.0.0.1"));
    }

    #[test]
    fn a_chain_of_trusted_hops_gives_the_leftmost() {
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["10.9.9.9, 10.0.0.2"]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("10.9.9.9"));
    }

    #[test]
    fn garbage_written_by_a_trusted_hop_stops_at_that_hop() {
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["203.0.113.9, nonsense, 10.0.0.2"]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn addresses_with_ports_and_brackets_parse() {
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        for (value, want) in [
            ("203.0.113.9:4711", "203.0.113.9"),
            ("2001:db8::7", "2001:db8::7"),
            ("[2001:db8::7]", "2001:db8::7"),
            ("[2001:db8::7]:4711", "2001:db8::7"),
            (" 203.0.113.9 ", "203.0.113.9"),
        ] {
            let h = headers("x-forwarded-for", &[value]);
            assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip(want), "{value}");
        }
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d.
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["::ffff:203.0.113.9"]);
        assert_eq!(p.client_ip(ip("::ffff:10.0.0.1"), &h), ip("203.0.113.9"));
        assert_eq!(
            TrustedProxies::default().client_ip(ip("::ffff:198.51.100.7"), &HeaderMap::new()),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn the_forwarded_header_is_read_by_its_for_parameter() {
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::Forwarded);
        let h = headers(
            "forwarded",
            &[r#"for=127.0.0.1, For="[2001:db8::7]:4711";proto=https, for=10.0.0.2;by=10.0.0.1"#],
        );
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("2001:db8::7"));
        let h = headers("forwarded", &["for=unknown, for=10.0.0.2"]);
        assert_eq!(
            p.client_ip(ip("10.0.0.1"), &h),
            ip("10.0.0.2"),
            "an unknown node stops the walk"
        );
    }

    #[test]
    fn only_the_configured_header_is_read() {
        // nginx appends to X-Forwarded-For and passes a client's Forwarded header untouched.
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let mut h = headers("x-forwarded-for", &["203.0.113.9"]);
        h.append("forwarded", "for=127.0.0.1".parse().unwrap());
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn proxy_settings_parse_addresses_and_blocks() {
        assert!(TrustedProxies::parse_net("10.0.0.5").is_ok());
        assert!(TrustedProxies::parse_net("10.0.0.0/8").is_ok());
        assert!(TrustedProxies::parse_net("fd00::/8").is_ok());
        assert!(TrustedProxies::parse_net(" ::1 ").is_ok());
        let e = TrustedProxies::parse_net("proxy.local").unwrap_err();
        assert!(e.to_string().contains("CIDR"), "{e}");
        // A block written with host bits set still means the block.
        let p = TrustedProxies::new(
            vec![TrustedProxies::parse_net("10.1.2.3/8").unwrap()],
            ForwardedHeader::default(),
        );
        assert!(p.is_trusted(ip("10.200.0.1")));
    }
}
