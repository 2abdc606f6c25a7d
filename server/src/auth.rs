//! Signed, expiring room tokens (JWT, HS256). A token names one room and one role; the
//! server checks it at the WebSocket upgrade and on every REST call that touches a room, and
//! the role travels with the connection so every message is checked against it.

use std::time::Duration;

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use mesh_protocol::messages::Role;
use mesh_protocol::RoomId;
use serde::{Deserialize, Serialize};

use crate::store::sqlite::now_ms;

/// Clock skew tolerated between nodes when checking expiry.
const LEEWAY_SECS: u64 = 30;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The room id.
    room: String,
    role: Role,
    /// Expiry, seconds since the Unix epoch.
    exp: u64,
    /// Issued at, seconds since the Unix epoch.
    iat: u64,
}

/// Why a token was refused; the text is safe to show (it never contains the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token was presented.
    #[error("a token is required: pass ?token=... or an Authorization: Bearer header")]
    Missing,
    /// Bad signature, malformed or expired.
    #[error("the token is invalid or expired: ask the host for a new link")]
    Invalid,
    /// A valid token for another room.
    #[error("the token belongs to another room")]
    WrongRoom,
}

/// Issues and checks tokens with the server's secret.
#[derive(Clone)]
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
}

impl Auth {
    /// Tokens signed with `secret`, valid for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        Auth {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl,
        }
    }

    /// A token granting `role` in `room`.
    pub fn issue(&self, room: RoomId, role: Role) -> String {
        let iat = now_ms() / 1000;
        let claims = Claims {
            room: room.to_string(),
            role,
            exp: iat + self.ttl.as_secs(),
            iat,
        };
        // HS256 signing of a small struct with a valid key cannot fail.
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).expect("HS256 signing does not fail")
    }

    /// The role a token grants in `room`.
    pub fn check(&self, token: Option<&str>, room: RoomId) -> Result<Role, TokenError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(TokenError::Missing)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.required_spec_claims = ["exp"].into_iter().map(String::from).collect();
        let data = decode::<Claims>(token, &self.decoding, &validation).map_err(|_| TokenError::Invalid)?;
        if data.claims.room != room.to_string() {
            return Err(TokenError::WrongRoom);
        }
        Ok(data.claims.role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_room_and_role() {
        let auth = Auth::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let room = RoomId::random();
        let t = auth.issue(room, Role::Reader);
        assert_eq!(auth.check(Some(&t), room), Ok(Role::Reader));
        assert_eq!(auth.check(Some(&t), RoomId::random()), Err(TokenError::WrongRoom));
        assert_eq!(auth.check(None, room), Err(TokenError::Missing));
        let other = Auth::new(b"another secret, another server!!", Duration::from_secs(60));
        assert_eq!(other.check(Some(&t), room), Err(TokenError::Invalid));
        let mut tampered = t.clone();
        tampered.insert(tampered.len() / 2, 'x');
        assert_eq!(auth.check(Some(&tampered), room), Err(TokenError::Invalid));
        let expired = Auth::new(b"0123456789abcdef0123456789abcdef", Duration::ZERO);
        let old = Claims {
            room: room.to_string(),
            role: Role::Host,
            exp: now_ms() / 1000 - 3600,
            iat: 0,
        };
        let old = encode(&Header::new(Algorithm::HS256), &old, &expired.encoding).unwrap();
        assert_eq!(auth.check(Some(&old), room), Err(TokenError::Invalid));
    }
}
