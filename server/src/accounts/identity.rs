//! Who a signed-in person is, and the rules about it, sans-IO: the name everyone sees, which
//! invitation a user may use, session tokens and their stored digests, and the bounded table
//! of sign-ins under way. No sockets, no store; the clock is passed in.

use std::collections::HashMap;

use mesh_protocol::rest::UserInfo;
use sha2::{Digest, Sha256};

/// The longest name taken from the provider, in characters (as for a `hello`'s name).
pub const MAX_VERIFIED_NAME_CHARS: usize = 64;

/// The longest `for_user` of an invitation: an email address is at most 254 characters.
pub const MAX_INVITEE_CHARS: usize = 254;

/// Random bytes in a session token: 256 bits, so a token cannot be guessed.
const TOKEN_BYTES: usize = 32;

/// A signed-in user, as a connection or a REST call carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// mesh's id of the user.
    pub id: String,
    /// The name from the provider (see [`display_name`]).
    pub name: String,
    /// The provider's email, if any.
    pub email: Option<String>,
    /// The provider's subject.
    pub subject: String,
}

impl From<&Verified> for UserInfo {
    fn from(v: &Verified) -> UserInfo {
        UserInfo {
            id: v.id.clone(),
            name: v.name.clone(),
            email: v.email.clone(),
            subject: v.subject.clone(),
        }
    }
}

/// The name a signed-in person is shown by: the provider's `name`, else its
/// `preferred_username`, else the email, else the subject; control characters dropped and
/// at most [`MAX_VERIFIED_NAME_CHARS`] characters.
pub fn display_name(
    name: Option<&str>,
    preferred_username: Option<&str>,
    email: Option<&str>,
    subject: &str,
) -> String {
    [name, preferred_username, email, Some(subject)]
        .into_iter()
        .flatten()
        .map(|n| {
            let clean: String = n.chars().filter(|c| !c.is_control()).collect();
            clean.trim().chars().take(MAX_VERIFIED_NAME_CHARS).collect::<String>()
        })
        .find(|n| !n.is_empty())
        .unwrap_or_else(|| "signed-in user".into())
}

/// Whom a link is for: what the link record keeps in `for_user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invitee {
    /// A user of this server by mesh's id (the room owner's own host link).
    User(String),
    /// Whoever signs in with this email (compared without regard to case).
    Email(String),
    /// Whoever signs in with this subject at the provider.
    Subject(String),
}

impl Invitee {
    /// What a host typed: an email address (it has an `@`) or a subject.
    pub fn parse_request(text: &str) -> Result<Invitee, String> {
        let text = text.trim();
        if text.is_empty() || text.chars().count() > MAX_INVITEE_CHARS || text.chars().any(char::is_control) {
            return Err(format!(
                "for_user must be an email address or the provider's subject of a user, 1 to {MAX_INVITEE_CHARS} printable characters"
            ));
        }
        Ok(if text.contains('@') {
            Invitee::Email(text.to_lowercase())
        } else {
            Invitee::Subject(text.to_owned())
        })
    }

    /// The stored form: `user:ID`, `email:ADDRESS` or `sub:SUBJECT`.
    pub fn stored(&self) -> String {
        match self {
            Invitee::User(id) => format!("user:{id}"),
            Invitee::Email(e) => format!("email:{e}"),
            Invitee::Subject(s) => format!("sub:{s}"),
        }
    }

    /// The stored form read back; `None` for anything else.
    pub fn from_stored(text: &str) -> Option<Invitee> {
        let (kind, value) = text.split_once(':')?;
        Some(match kind {
            "user" => Invitee::User(value.to_owned()),
            "email" => Invitee::Email(value.to_owned()),
            "sub" => Invitee::Subject(value.to_owned()),
            _ => return None,
        })
    }

    /// Whether `user` is the one this is for.
    pub fn matches(&self, user: &Verified) -> bool {
        match self {
            Invitee::User(id) => *id == user.id,
            Invitee::Email(e) => user.email.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(e)),
            Invitee::Subject(s) => *s == user.subject,
        }
    }
}

/// A new session token (what a browser's cookie or `mesh-proxy` holds): 256 random bits,
/// hex-encoded.
pub fn new_token() -> String {
    let bytes: [u8; TOKEN_BYTES] = rand::random();
    hex::encode(bytes)
}

/// What the store keeps of a token: its SHA-256, so a copy of the database opens nothing.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The table of sign-ins under way (browser logins waiting for their callback, device
/// logins waiting for the user), bounded in number and in age: each entry is dropped after
/// `ttl_ms`, and past `max` the oldest goes, so nobody can make the server hold more by
/// starting sign-ins they never finish.
#[derive(Debug)]
pub struct Pending<T> {
    entries: HashMap<String, (u64, T)>,
    max: usize,
    ttl_ms: u64,
}

impl<T> Pending<T> {
    /// An empty table of at most `max` entries, each kept `ttl_ms`.
    pub fn new(max: usize, ttl_ms: u64) -> Self {
        Pending {
            entries: HashMap::new(),
            max,
            ttl_ms,
        }
    }

    fn expire(&mut self, now_ms: u64) {
        let ttl = self.ttl_ms;
        self.entries.retain(|_, (at, _)| now_ms < at.saturating_add(ttl));
    }

    /// Keeps `value` under `key`, dropping expired entries and, when full, the oldest.
    pub fn insert(&mut self, key: String, value: T, now_ms: u64) {
        self.expire(now_ms);
        while self.entries.len() >= self.max {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.entries.remove(&oldest);
        }
        self.entries.insert(key, (now_ms, value));
    }

    /// Takes the entry of `key` out, if it is there and not expired.
    pub fn take(&mut self, key: &str, now_ms: u64) -> Option<T> {
        self.expire(now_ms);
        self.entries.remove(key).map(|(_, v)| v)
    }

    /// The entry of `key`, if it is there and not expired.
    pub fn get_mut(&mut self, key: &str, now_ms: u64) -> Option<&mut T> {
        self.expire(now_ms);
        self.entries.get_mut(key).map(|(_, v)| v)
    }

    /// How many entries are kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Where to go after a browser sign-in: a path on this server only (never another origin),
/// else `/`.
pub fn safe_return_path(wanted: Option<&str>) -> String {
    match wanted {
        Some(p)
            if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') && !p.chars().any(char::is_control) =>
        {
            p.to_owned()
        }
        _ => "/".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ada() -> Verified {
        Verified {
            id: "u1".into(),
            name: "Ada Lovelace".into(),
            email: Some("Ada@Example.test".into()),
            subject: "ada".into(),
        }
    }

    #[test]
    fn the_name_is_the_provider_s_name_else_username_else_email() {
        assert_eq!(display_name(Some("Ada"), Some("ada"), Some("a@x"), "s"), "Ada");
        assert_eq!(display_name(Some("  "), Some("ada"), Some("a@x"), "s"), "ada");
        assert_eq!(display_name(None, None, Some("a@x"), "s"), "a@x");
        assert_eq!(display_name(None, None, None, "s"), "s");
        assert_eq!(display_name(Some("A\u{7}da\n"), None, None, "s"), "Ada");
        let long = "x".repeat(200);
        assert_eq!(
            display_name(Some(&long), None, None, "s").chars().count(),
            MAX_VERIFIED_NAME_CHARS
        );
    }

    #[test]
    fn an_invitation_matches_only_its_user() {
        let by_email = Invitee::parse_request(" ada@example.TEST ").unwrap();
        assert!(by_email.matches(&ada()), "emails compare without case");
        let by_subject = Invitee::parse_request("ada").unwrap();
        assert!(by_subject.matches(&ada()));
        let bob = Verified {
            id: "u2".into(),
            name: "Bob".into(),
            email: None,
            subject: "bob".into(),
        };
        assert!(!by_email.matches(&bob) && !by_subject.matches(&bob));
        assert!(Invitee::User("u1".into()).matches(&ada()));
        assert!(!Invitee::User("u1".into()).matches(&bob));
        for i in [by_email, by_subject, Invitee::User("u1".into())] {
            assert_eq!(Invitee::from_stored(&i.stored()), Some(i));
        }
        assert!(Invitee::parse_request("").is_err());
        assert!(Invitee::parse_request(&"a".repeat(300)).is_err());
        assert!(Invitee::parse_request("a\nb").is_err());
    }

    #[test]
    fn tokens_are_random_and_only_their_digest_is_kept() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 2 * TOKEN_BYTES);
        assert_eq!(token_digest(&a), token_digest(&a));
        assert_ne!(token_digest(&a), a);
    }

    #[test]
    fn pending_sign_ins_are_bounded_in_number_and_age() {
        let mut p = Pending::new(2, 1_000);
        p.insert("a".into(), 1, 0);
        p.insert("b".into(), 2, 10);
        p.insert("c".into(), 3, 20);
        assert_eq!(p.len(), 2);
        assert_eq!(p.take("a", 30), None, "the oldest went when the table was full");
        assert_eq!(p.take("b", 30), Some(2));
        assert_eq!(p.take("b", 30), None, "taken once");
        assert_eq!(p.take("c", 1_020), None, "expired");
    }

    #[test]
    fn after_sign_in_the_browser_goes_only_to_a_path_of_this_server() {
        assert_eq!(safe_return_path(Some("/join/abc?token=t")), "/join/abc?token=t");
        for bad in [
            "https://evil.test/",
            "//evil.test/x",
            "/\\evil.test",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_return_path(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_return_path(None), "/");
    }
}
