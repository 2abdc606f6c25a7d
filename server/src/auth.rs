//! Signed room tokens (JWT, HS256). A token names one room and either a link (`lid`) or a
//! seat (`seat`); the signature proves the server issued it, and the room then checks the
//! record it names (revoked, expired, used up, kicked: decision 011). So a token can be taken
//! back, and the role lives in the seat, where the host can change it.

use std::time::Duration;

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use mesh_protocol::messages::Role;
use mesh_protocol::RoomId;
use serde::{Deserialize, Serialize};

use crate::store::LinkRecord;

/// Clock skew tolerated between nodes when checking expiry.
const LEEWAY_SECS: u64 = 30;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The room id.
    room: String,
    /// The role a link grants, for clients that show it before joining (the record decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
    /// The link this token opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lid: Option<String>,
    /// The seat this token reconnects to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seat: Option<String>,
    /// The signed-in user it was issued to (mesh's user id): refused on any connection that
    /// is not that user's (decision 012).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uid: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    exp: u64,
    /// Issued at, seconds since the Unix epoch.
    iat: u64,
}

/// What a valid token lets its bearer ask for: the room checks the record it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// A join link: a new seat (or the host's seat, for the host's link).
    Link(String),
    /// An existing seat.
    Seat(String),
}

/// What a request shows a room: what its token grants, and the signed-in user behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    /// The link or seat the token names.
    pub grant: Grant,
    /// The signed-in user of the request (its session cookie or user token), if any.
    pub user: Option<crate::accounts::identity::Verified>,
}

impl From<Grant> for Pass {
    fn from(grant: Grant) -> Pass {
        Pass { grant, user: None }
    }
}

/// Why a token was refused; the text is safe to show (it never contains the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token was presented.
    #[error("a token is required: pass ?token=..., an Authorization: Bearer header, or an auth message first")]
    Missing,
    /// Bad signature, malformed or expired.
    #[error("the token is invalid or expired: ask the host for a new link")]
    Invalid,
    /// A valid token for another room.
    #[error("the token belongs to another room")]
    WrongRoom,
    /// Signed by this server before links were records (it names neither a link nor a seat).
    #[error("this link was made before links became server records and no longer opens the room: ask the host for a new link")]
    Legacy,
    /// Issued to a signed-in user, shown without signing in.
    #[error(
        "this token was issued to a signed-in user: sign in as them first (Sign in on the page, or mesh-proxy login)"
    )]
    NeedsSignIn,
    /// Issued to a signed-in user, shown by another.
    #[error("this token was issued to another signed-in user: sign in as the person it was issued to, or ask the host for a link of your own")]
    OtherUser,
}

/// Issues and checks tokens with the server's secret.
#[derive(Clone)]
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
}

impl Auth {
    /// Tokens signed with `secret`; links and seats last `ttl` unless told otherwise.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        Auth {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl,
        }
    }

    /// How long links and seat tokens last by default (`token_ttl`).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn sign(&self, claims: &Claims) -> String {
        // HS256 signing of a small struct with a valid key cannot fail.
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding).expect("HS256 signing does not fail")
    }

    /// The token of a link. It is a function of the record, so listing the room's links
    /// shows the same URL each time without the server keeping the token.
    pub fn link_token(&self, room: RoomId, link: &LinkRecord) -> String {
        self.sign(&Claims {
            room: room.to_string(),
            role: Some(link.role),
            lid: Some(link.id.clone()),
            seat: None,
            uid: link
                .for_user
                .as_deref()
                .and_then(crate::accounts::identity::Invitee::from_stored)
                .and_then(|i| match i {
                    crate::accounts::identity::Invitee::User(id) => Some(id),
                    _ => None,
                }),
            exp: link.expires_at / 1000,
            iat: link.created_at / 1000,
        })
    }

    /// A token that reconnects to `seat`, valid for the token lifetime from `now_ms`; bound
    /// to `user` when a signed-in user holds the seat.
    pub fn seat_token(&self, room: RoomId, seat: &str, user: Option<&str>, now_ms: u64) -> String {
        let iat = now_ms / 1000;
        self.sign(&Claims {
            room: room.to_string(),
            role: None,
            lid: None,
            seat: Some(seat.to_owned()),
            uid: user.map(str::to_owned),
            exp: iat + self.ttl.as_secs(),
            iat,
        })
    }

    /// What a token of `room` names, shown by `user` (mesh's id of the signed-in user of the
    /// request, if any). The room still has to check that record.
    pub fn check(&self, token: Option<&str>, room: RoomId, user: Option<&str>) -> Result<Grant, TokenError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(TokenError::Missing)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.required_spec_claims = ["exp"].into_iter().map(String::from).collect();
        let data = decode::<Claims>(token, &self.decoding, &validation).map_err(|_| TokenError::Invalid)?;
        if data.claims.room != room.to_string() {
            return Err(TokenError::WrongRoom);
        }
        match (data.claims.uid.as_deref(), user) {
            (Some(_), None) => return Err(TokenError::NeedsSignIn),
            (Some(bound), Some(user)) if bound != user => return Err(TokenError::OtherUser),
            _ => {}
        }
        match (data.claims.seat, data.claims.lid) {
            (Some(seat), _) => Ok(Grant::Seat(seat)),
            (None, Some(lid)) => Ok(Grant::Link(lid)),
            (None, None) => Err(TokenError::Legacy),
        }
    }
}

/// Makes each room's [`Tokens`](crate::room::access::Tokens): seat tokens, and link URLs on
/// the server's public address.
#[derive(Clone)]
pub struct TokenIssuer {
    auth: Auth,
    base_url: String,
}

impl TokenIssuer {
    /// Tokens signed by `auth`; join links under `base_url` (`https://host:port`).
    pub fn new(auth: Auth, base_url: String) -> Self {
        TokenIssuer { auth, base_url }
    }

    /// The join link of `link` in `room`.
    pub fn link_url(&self, room: RoomId, link: &LinkRecord) -> String {
        format!(
            "{}/join/{room}?token={}",
            self.base_url,
            self.auth.link_token(room, link)
        )
    }

    /// The token maker of one room.
    pub fn for_room(&self, room: RoomId) -> std::sync::Arc<dyn crate::room::access::Tokens> {
        std::sync::Arc::new(RoomTokens {
            issuer: self.clone(),
            room,
        })
    }
}

struct RoomTokens {
    issuer: TokenIssuer,
    room: RoomId,
}

impl crate::room::access::Tokens for RoomTokens {
    fn seat_token(&self, seat: &str, user: Option<&str>, now_ms: u64) -> String {
        self.issuer.auth.seat_token(self.room, seat, user, now_ms)
    }
    fn link_url(&self, link: &LinkRecord) -> String {
        self.issuer.link_url(self.room, link)
    }
    fn default_link_ms(&self) -> u64 {
        self.issuer.auth.ttl.as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::now_ms;

    fn link(id: &str, expires_at: u64) -> LinkRecord {
        LinkRecord {
            id: id.into(),
            role: Role::Reader,
            created_at: now_ms(),
            expires_at,
            max_uses: None,
            uses: 0,
            revoked_at: None,
            created_by: "server".into(),
            for_user: None,
        }
    }

    #[test]
    fn tokens_bind_the_room_and_name_a_link_or_a_seat() {
        let auth = Auth::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let room = RoomId::random();
        let l = link("l1", now_ms() + 60_000);
        let t = auth.link_token(room, &l);
        assert_eq!(auth.check(Some(&t), room, None), Ok(Grant::Link("l1".into())));
        assert_eq!(
            t,
            auth.link_token(room, &l),
            "a link's token is a function of its record"
        );
        let s = auth.seat_token(room, "s1", None, now_ms());
        assert_eq!(auth.check(Some(&s), room, None), Ok(Grant::Seat("s1".into())));
        assert_eq!(auth.check(Some(&t), RoomId::random(), None), Err(TokenError::WrongRoom));
        assert_eq!(auth.check(None, room, None), Err(TokenError::Missing));
        let other = Auth::new(b"another secret, another server!!", Duration::from_secs(60));
        assert_eq!(other.check(Some(&t), room, None), Err(TokenError::Invalid));
        let mut tampered = t.clone();
        tampered.insert(tampered.len() / 2, 'x');
        assert_eq!(auth.check(Some(&tampered), room, None), Err(TokenError::Invalid));
        let expired = auth.link_token(room, &link("l2", now_ms() - 3_600_000));
        assert_eq!(auth.check(Some(&expired), room, None), Err(TokenError::Invalid));
    }

    #[test]
    fn a_token_issued_to_a_user_is_refused_to_anyone_else() {
        let auth = Auth::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let room = RoomId::random();
        let t = auth.seat_token(room, "s1", Some("u1"), now_ms());
        assert_eq!(auth.check(Some(&t), room, Some("u1")), Ok(Grant::Seat("s1".into())));
        assert_eq!(auth.check(Some(&t), room, Some("u2")), Err(TokenError::OtherUser));
        assert_eq!(auth.check(Some(&t), room, None), Err(TokenError::NeedsSignIn));
        let mut owned = link("l1", now_ms() + 60_000);
        owned.for_user = Some("user:u1".into());
        let t = auth.link_token(room, &owned);
        assert_eq!(auth.check(Some(&t), room, Some("u2")), Err(TokenError::OtherUser));
        assert!(TokenError::OtherUser.to_string().contains("sign in as"));
        let unbound = auth.seat_token(room, "s2", None, now_ms());
        assert_eq!(
            auth.check(Some(&unbound), room, Some("u2")),
            Ok(Grant::Seat("s2".into())),
            "a token issued without sign-in stays usable by a signed-in person"
        );
    }

    #[test]
    fn a_token_from_before_link_records_is_refused_with_what_to_do() {
        let auth = Auth::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let room = RoomId::random();
        let old = auth.sign(&Claims {
            room: room.to_string(),
            role: Some(Role::Host),
            lid: None,
            seat: None,
            uid: None,
            exp: now_ms() / 1000 + 60,
            iat: 0,
        });
        let err = auth.check(Some(&old), room, None).unwrap_err();
        assert_eq!(err, TokenError::Legacy);
        assert!(err.to_string().contains("ask the host for a new link"));
    }
}
