//! Host control over the server's REST API (decision 011): participants and the lobby, roles,
//! kicks, admissions, approval, links and the audit trail. `mesh-proxy host …` and the
//! editors' host requests (`mesh/setRole`, `mesh/kick`, …) both go through [`HostApi`], so
//! both say the same when the server refuses.
//!
//! The token shown is the folder's seat token when it holds one (the seat, not the link,
//! holds the role: a host who handed the role on is no longer let in), else the link's.

use std::time::Duration;

use mesh_protocol::messages::Role;
use mesh_protocol::rest::{AuditEntry, CreateLink, LinkInfo, RoomParticipants, SetApproval, SetRole};
use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::link::RoomTarget;
use crate::tls::Tls;

/// How long one host call may take: they are small and the server answers them at once, so
/// anything slower is a server or network in trouble, said as such rather than a hang.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a host call failed, saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The server could not be reached.
    #[error("cannot reach the server at {server}: {detail}")]
    Unreachable {
        /// The server's base URL.
        server: String,
        /// What went wrong (a TLS problem is explained).
        detail: String,
    },
    /// Our token does not hold the host role (any more).
    #[error("only the room's host can do this ({message}); ask the host, or have them hand you the host role")]
    NotHost {
        /// The server's words.
        message: String,
    },
    /// The seat, link or room is not there.
    #[error("not found: {message}")]
    NotFound {
        /// The server's words.
        message: String,
    },
    /// The server refused for another reason.
    #[error("the server refused ({status}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's words.
        message: String,
    },
    /// The answer was not what the API documents.
    #[error("unexpected answer from {server}: {detail}; is the server older than this mesh-proxy?")]
    Unexpected {
        /// The server's base URL.
        server: String,
        /// What was wrong with it.
        detail: String,
    },
}

/// The host API of one room, with the token to show.
#[derive(Clone)]
pub struct HostApi {
    tls: Tls,
    target: RoomTarget,
}

impl std::fmt::Debug for HostApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostApi")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// A role as a person types it: `reader`, `writer` or `host`.
pub fn parse_role(word: &str) -> Result<Role, String> {
    match word.trim().to_ascii_lowercase().as_str() {
        "reader" | "read" => Ok(Role::Reader),
        "writer" | "write" => Ok(Role::Writer),
        "host" => Ok(Role::Host),
        other => Err(format!("unknown role {other:?}: say reader, writer or host")),
    }
}

impl HostApi {
    /// The host API of `target`'s room, showing `target`'s token.
    pub fn new(tls: Tls, target: RoomTarget) -> Self {
        HostApi { tls, target }
    }

    /// The room's base path.
    fn url(&self, rest: &str) -> String {
        format!("{}/api/sessions/{}{rest}", self.target.server, self.target.room)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        rest: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, HostError> {
        let server = self.target.server.clone();
        let mut request = crate::account::with_user(self.tls.http().request(method, self.url(rest)), &server)
            .bearer_auth(&self.target.token)
            .timeout(CALL_TIMEOUT);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let resp = request.send().await.map_err(|e| HostError::Unreachable {
            detail: self.tls.explain(&e, &server).unwrap_or_else(|| e.to_string()),
            server: server.clone(),
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| HostError::Unreachable {
            server: server.clone(),
            detail: e.to_string(),
        })?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["message"].as_str().map(String::from))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(match status.as_u16() {
                401 | 403 => HostError::NotHost { message },
                404 => HostError::NotFound { message },
                code => HostError::Refused { status: code, message },
            });
        }
        // Calls that answer nothing are read as `null`.
        let bytes = if bytes.is_empty() { &b"null"[..] } else { &bytes[..] };
        serde_json::from_slice(bytes).map_err(|e| HostError::Unexpected {
            server,
            detail: e.to_string(),
        })
    }

    /// Who is in the room and who waits in the lobby.
    pub async fn participants(&self) -> Result<RoomParticipants, HostError> {
        self.call(Method::GET, "/participants", None).await
    }

    /// Gives `seat` the role `role` (`host` hands the host role over).
    pub async fn set_role(&self, seat: &str, role: Role) -> Result<(), HostError> {
        let body = serde_json::to_value(SetRole { role }).ok();
        self.call::<serde_json::Value>(Method::PUT, &format!("/seats/{}/role", segment(seat)), body)
            .await
            .map(drop)
    }

    /// Removes `seat` from the room.
    pub async fn kick(&self, seat: &str) -> Result<(), HostError> {
        self.call::<serde_json::Value>(Method::POST, &format!("/seats/{}/kick", segment(seat)), None)
            .await
            .map(drop)
    }

    /// Lets the waiting `seat` in.
    pub async fn admit(&self, seat: &str) -> Result<(), HostError> {
        self.call::<serde_json::Value>(Method::POST, &format!("/seats/{}/admit", segment(seat)), None)
            .await
            .map(drop)
    }

    /// Turns the waiting `seat` away.
    pub async fn refuse(&self, seat: &str) -> Result<(), HostError> {
        self.call::<serde_json::Value>(Method::POST, &format!("/seats/{}/refuse", segment(seat)), None)
            .await
            .map(drop)
    }

    /// Turns approval of joiners on or off.
    pub async fn set_approval(&self, on: bool) -> Result<(), HostError> {
        let body = serde_json::to_value(SetApproval { on }).ok();
        self.call::<serde_json::Value>(Method::PUT, "/approval", body)
            .await
            .map(drop)
    }

    /// The room's links, newest first.
    pub async fn links(&self) -> Result<Vec<LinkInfo>, HostError> {
        self.call::<Links>(Method::GET, "/links", None)
            .await
            .map(Links::into_vec)
    }

    /// Creates a link; answers it.
    pub async fn create_link(&self, create: CreateLink) -> Result<LinkInfo, HostError> {
        let body = serde_json::to_value(create).ok();
        self.call(Method::POST, "/links", body).await
    }

    /// Revokes a link: its seats' live connections are closed.
    pub async fn revoke_link(&self, id: &str) -> Result<(), HostError> {
        self.call::<serde_json::Value>(Method::DELETE, &format!("/links/{}", segment(id)), None)
            .await
            .map(drop)
    }

    /// The audit trail, newest first; at most `limit` entries.
    pub async fn audit(&self, limit: Option<u32>) -> Result<Vec<AuditEntry>, HostError> {
        let query = limit.map(|l| format!("?limit={l}")).unwrap_or_default();
        self.call::<Audit>(Method::GET, &format!("/audit{query}"), None)
            .await
            .map(Audit::into_vec)
    }
}

/// The links answer: a list, or an object holding one.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Links {
    List(Vec<LinkInfo>),
    Object { links: Vec<LinkInfo> },
}

impl Links {
    fn into_vec(self) -> Vec<LinkInfo> {
        match self {
            Links::List(l) | Links::Object { links: l } => l,
        }
    }
}

/// The audit answer: a list, or an object holding one.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Audit {
    List(Vec<AuditEntry>),
    Object { entries: Vec<AuditEntry> },
}

impl Audit {
    fn into_vec(self) -> Vec<AuditEntry> {
        match self {
            Audit::List(l) | Audit::Object { entries: l } => l,
        }
    }
}

/// An id as one URL path segment (ids are the server's, but nothing from outside goes into a
/// URL unescaped).
fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_read_as_people_type_them_and_others_named() {
        assert_eq!(parse_role("Writer"), Ok(Role::Writer));
        assert_eq!(parse_role(" read "), Ok(Role::Reader));
        assert_eq!(parse_role("host"), Ok(Role::Host));
        assert!(parse_role("admin").unwrap_err().contains("reader, writer or host"));
    }

    #[test]
    fn ids_cannot_escape_their_path_segment() {
        assert_eq!(segment("s-1"), "s-1");
        assert_eq!(segment("../x"), "..%2Fx");
    }

    #[test]
    fn link_and_audit_answers_are_read_bare_or_wrapped() {
        let link = serde_json::json!({"id": "l1", "role": "reader", "url": "http://x/join/r?token=t",
            "created_at": 1, "expires_at": 2, "max_uses": null, "uses": 0, "revoked": false});
        let bare: Links = serde_json::from_value(serde_json::json!([link.clone()])).unwrap();
        let wrapped: Links = serde_json::from_value(serde_json::json!({"links": [link]})).unwrap();
        assert_eq!(bare.into_vec(), wrapped.into_vec());
        let entry = serde_json::json!({"ts": 1, "kind": "join", "actor": "a", "subject": "s", "detail": ""});
        let audit: Audit = serde_json::from_value(serde_json::json!({"entries": [entry]})).unwrap();
        assert_eq!(audit.into_vec().len(), 1);
    }
}
