//! Join links: `http(s)://HOST[:PORT]/join/ROOM?token=TOKEN`, as the server issues them.

use mesh_protocol::RoomId;
use url::Url;

/// Where a room is and the token that opens it.
#[derive(Clone, PartialEq, Eq)]
pub struct RoomTarget {
    /// The server's base URL, e.g. `http://127.0.0.1:7420` (no trailing slash).
    pub server: String,
    /// The room.
    pub room: RoomId,
    /// The token (a secret: never logged).
    pub token: String,
}

impl std::fmt::Debug for RoomTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomTarget")
            .field("server", &self.server)
            .field("room", &self.room)
            .finish_non_exhaustive()
    }
}

/// Why a string is not a join link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a mesh link ({0}); a link looks like http://HOST:PORT/join/ROOM?token=TOKEN")]
pub struct BadLink(pub String);

impl RoomTarget {
    /// Parses a join link.
    pub fn parse(link: &str) -> Result<RoomTarget, BadLink> {
        let url = Url::parse(link.trim()).map_err(|e| BadLink(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BadLink(format!("unsupported scheme {}", url.scheme())));
        }
        let segments: Vec<&str> = url
            .path_segments()
            .map(|s| s.filter(|p| !p.is_empty()).collect())
            .unwrap_or_default();
        let (prefix, room) = match segments.as_slice() {
            [prefix @ .., "join", room] => (prefix.join("/"), *room),
            _ => return Err(BadLink("the path should end in /join/ROOM".into())),
        };
        let room: RoomId = room.parse().map_err(|e| BadLink(format!("{e}")))?;
        let token = url
            .query_pairs()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| BadLink("the token is missing".into()))?;
        let host = url.host_str().ok_or_else(|| BadLink("no host".into()))?;
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("/{prefix}")
        };
        Ok(RoomTarget {
            server: format!("{}://{host}{port}{prefix}", url.scheme()),
            room,
            token,
        })
    }

    /// The room socket URL, token included.
    pub fn ws_url(&self) -> String {
        let base = self.server.replacen("http", "ws", 1);
        format!("{base}/ws/{}?token={}", self.room, self.token)
    }

    /// The room socket URL without the token, which travels in the `Authorization` header
    /// instead (so it does not land in access logs).
    pub fn ws_url_without_token(&self) -> String {
        let base = self.server.replacen("http", "ws", 1);
        format!("{base}/ws/{}", self.room)
    }

    /// The join link for this target.
    pub fn link(&self) -> String {
        format!("{}/join/{}?token={}", self.server, self.room, self.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_parse_and_bad_ones_say_why() {
        let room = RoomId::random();
        let t = RoomTarget::parse(&format!("http://127.0.0.1:7420/join/{room}?token=abc")).unwrap();
        assert_eq!(
            (t.server.as_str(), t.room, t.token.as_str()),
            ("http://127.0.0.1:7420", room, "abc")
        );
        assert_eq!(t.ws_url(), format!("ws://127.0.0.1:7420/ws/{room}?token=abc"));
        let t = RoomTarget::parse(&format!("https://mesh.example/base/join/{room}?token=x")).unwrap();
        assert_eq!(t.server, "https://mesh.example/base");
        assert_eq!(t.ws_url(), format!("wss://mesh.example/base/ws/{room}?token=x"));
        assert_eq!(t.ws_url_without_token(), format!("wss://mesh.example/base/ws/{room}"));
        for bad in [
            "",
            "hello",
            "ftp://x/join/abc?token=1",
            &format!("http://x/join/{room}"),
            "http://x/join/zz?token=1",
        ] {
            assert!(RoomTarget::parse(bad).is_err(), "{bad}");
        }
        assert!(format!("{t:?}").contains("server") && !format!("{t:?}").contains("token: "));
    }
}
