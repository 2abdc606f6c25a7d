//! Accounts: sign-in with the organisation's OpenID Connect provider (decision 012).
//!
//! Off by default (the one-command start has no accounts and names are unverified). With
//! `--oidc-issuer`, `--oidc-client-id` and `--oidc-client-secret` the server is a confidential
//! OpenID Connect client of that provider:
//! - browsers sign in by the authorization code flow with PKCE, `state` (bound to the browser
//!   by a short cookie) and `nonce` (`/auth/login`, `/auth/callback`), and keep an opaque
//!   session id in an HttpOnly, SameSite=Lax cookie;
//! - `mesh-proxy login` signs in by the device flow: the server starts it at the provider
//!   (it holds the client secret) and the proxy polls the server (`/auth/device`,
//!   `/auth/device/poll`); the proxy gets a mesh token it sends in [`USER_TOKEN_HEADER`].
//!
//! Every ID token is verified by `openidconnect` (signature against the provider's JWKS,
//! issuer, audience, expiry, and the nonce of a browser sign-in). A session is a row in the
//! store keyed by the SHA-256 of its token. The rules (names, invitations, bounded tables of
//! sign-ins under way) are sans-IO in [`identity`]; this file talks to the provider.
//!
//! [`USER_TOKEN_HEADER`]: mesh_protocol::rest::USER_TOKEN_HEADER

pub mod identity;
pub mod routes;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mesh_protocol::rest::{DeviceStart, UserInfo};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod,
    CoreDeviceAuthorizationResponse, CoreGrantType, CoreIdTokenClaims, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AdditionalProviderMetadata, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    DeviceAuthorizationUrl, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    ProviderMetadata, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};

use self::identity::{display_name, new_token, token_digest, Pending, Verified};
use crate::store::sqlite::now_ms;
use crate::store::{Store, UserRecord, UserSession};

/// How long a session lasts, browser or `mesh-proxy`: a month of working days, then the
/// person signs in again (the provider may have ended their account meanwhile).
pub const SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// How long a browser sign-in may take between `/auth/login` and the provider sending the
/// browser back: a person typing a password and a second factor.
const LOGIN_TTL_MS: u64 = 10 * 60 * 1000;

/// Browser sign-ins under way at once; past it the oldest is forgotten (its callback then
/// fails and the person starts again). Far more than people sign in at once.
const MAX_PENDING_LOGINS: usize = 10_000;

/// Device sign-ins under way at once (each polls the provider in a task).
const MAX_PENDING_DEVICES: usize = 256;

/// The longest a device sign-in waits for the person, whatever the provider says.
const MAX_DEVICE_WAIT: Duration = Duration::from_secs(15 * 60);

/// Time for one request to the provider (discovery, token, userinfo, device authorization).
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(15);

/// Device sign-ins one address may start per second, and at once above that: a person types
/// `mesh-proxy login` a few times; each start costs a call to the provider.
const DEVICE_START_RATE: f64 = 0.2;
const DEVICE_START_BURST: f64 = 10.0;

/// Browser sign-ins one address may start per second, and at once above that: an office
/// behind one address signs in in the morning; a loop of `/auth/login` cannot push everyone
/// else's sign-ins out of the bounded table.
const LOGIN_START_RATE: f64 = 1.0;
const LOGIN_START_BURST: f64 = 60.0;

/// What the server asks the provider for: the person's name and email besides their subject.
const SCOPES: [&str; 2] = ["profile", "email"];

/// The provider settings (`--oidc-issuer`, `--oidc-client-id`, `--oidc-client-secret`).
#[derive(Clone)]
pub struct OidcSettings {
    /// The issuer URL; discovery reads `ISSUER/.well-known/openid-configuration`.
    pub issuer: String,
    /// This server's client id at the provider.
    pub client_id: String,
    /// This server's client secret (a secret: never printed).
    pub client_secret: String,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client secret is a secret: never print it.
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<set>")
            .finish()
    }
}

/// The provider metadata mesh reads: the standard fields plus the device authorization
/// endpoint (RFC 8628), which not every provider offers.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct DeviceEndpoint {
    #[serde(default)]
    device_authorization_endpoint: Option<DeviceAuthorizationUrl>,
}
impl AdditionalProviderMetadata for DeviceEndpoint {}

type Metadata = ProviderMetadata<
    DeviceEndpoint,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// A browser sign-in waiting for its callback.
struct BrowserLogin {
    pkce: PkceCodeVerifier,
    nonce: Nonce,
    return_to: String,
}

/// A device sign-in: its outcome once the task polling the provider has one.
enum DeviceLogin {
    Waiting,
    Done(Result<(String, UserInfo, u64), String>),
}

/// Why a sign-in failed; the text is safe to show and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    /// The sign-in is unknown or took too long.
    #[error("this sign-in is unknown or took too long (over {} minutes): start again", LOGIN_TTL_MS / 60_000)]
    Unknown,
    /// The browser that came back is not the one that started (login CSRF).
    #[error("this sign-in was started in another browser: start again from this one")]
    OtherBrowser,
    /// The provider said no.
    #[error("the provider refused the sign-in ({0}): try again, or ask your administrator")]
    Refused(String),
    /// The provider's answer failed verification (signature, issuer, audience, expiry, nonce).
    #[error("the provider's ID token did not verify ({0}): sign-in refused")]
    BadIdToken(String),
    /// The provider could not be reached or answered something unusable.
    #[error("cannot complete sign-in with the provider ({0}): try again later")]
    Provider(String),
    /// The provider has no device flow.
    #[error("the provider does not offer the device flow (no device_authorization_endpoint): sign in from the browser instead")]
    NoDeviceFlow,
    /// Too many device sign-ins from one address.
    #[error("too many sign-ins started from your address; retry in a minute")]
    RateLimited,
    /// The store failed.
    #[error("the server could not keep the session; try again")]
    Store,
}

/// The sign-in service: the provider's client, the sign-ins under way, the sessions.
pub struct Accounts {
    metadata: Metadata,
    settings: OidcSettings,
    redirect: RedirectUrl,
    http: reqwest::Client,
    store: Arc<dyn Store>,
    logins: Mutex<Pending<BrowserLogin>>,
    devices: Arc<Mutex<Pending<DeviceLogin>>>,
    device_starts: crate::limits::AddressBudgets,
    login_starts: crate::limits::AddressBudgets,
    secure_cookies: bool,
}

impl Accounts {
    /// Reads the provider's discovery document and JWKS. `redirect` is this server's
    /// `/auth/callback` on its public URL; `secure_cookies` whether browsers reach it over
    /// https (cookies are then `Secure`).
    pub async fn discover(
        settings: OidcSettings,
        redirect: String,
        store: Arc<dyn Store>,
        secure_cookies: bool,
    ) -> anyhow::Result<Accounts> {
        let http = reqwest::Client::builder()
            // Following redirects from the provider would let a bad issuer URL send the server
            // anywhere (openidconnect's advice): the endpoints are taken as they are.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()?;
        let issuer = IssuerUrl::new(settings.issuer.clone()).map_err(|e| {
            anyhow::anyhow!(
                "--oidc-issuer {} is not a URL ({e}): give the provider's issuer URL",
                settings.issuer
            )
        })?;
        let metadata = Metadata::discover_async(issuer, &http).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot read the OpenID Connect provider's configuration at {}/.well-known/openid-configuration: {}; \
                 check --oidc-issuer and that this machine reaches the provider",
                settings.issuer.trim_end_matches('/'),
                error_chain(&e)
            )
        })?;
        let redirect = RedirectUrl::new(redirect.clone())
            .map_err(|e| anyhow::anyhow!("the redirect URI {redirect} is not a URL ({e}): check --public-url"))?;
        Ok(Accounts {
            metadata,
            settings,
            redirect,
            http,
            store,
            logins: Mutex::new(Pending::new(MAX_PENDING_LOGINS, LOGIN_TTL_MS)),
            devices: Arc::new(Mutex::new(Pending::new(
                MAX_PENDING_DEVICES,
                MAX_DEVICE_WAIT.as_millis() as u64 * 2,
            ))),
            device_starts: crate::limits::AddressBudgets::new(DEVICE_START_RATE, DEVICE_START_BURST),
            login_starts: crate::limits::AddressBudgets::new(LOGIN_START_RATE, LOGIN_START_BURST),
            secure_cookies,
        })
    }

    /// The issuer this server trusts.
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// Whether cookies carry `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies
    }

    fn client(
        &self,
    ) -> CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            self.metadata.clone(),
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(self.settings.client_secret.clone())),
        )
        .set_redirect_uri(self.redirect.clone())
    }

    /// Starts a browser sign-in for a client at `ip`: the provider's authorization URL and
    /// the `state` to bind to the browser (a cookie), after which the browser goes to
    /// `return_to`.
    pub fn begin_login(&self, ip: std::net::IpAddr, return_to: String) -> Result<(String, String), SignInError> {
        if self.login_starts.admit(ip).is_err() {
            return Err(SignInError::RateLimited);
        }
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = self.client();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in SCOPES {
            request = request.add_scope(Scope::new(scope.into()));
        }
        let (url, state, nonce) = request.url();
        let state = state.secret().clone();
        self.lock_logins().insert(
            state.clone(),
            BrowserLogin {
                pkce: verifier,
                nonce,
                return_to,
            },
            now_ms(),
        );
        Ok((url.to_string(), state))
    }

    fn lock_logins(&self) -> std::sync::MutexGuard<'_, Pending<BrowserLogin>> {
        // The table holds only pending sign-ins; a panic elsewhere cannot leave it inconsistent.
        self.logins.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Completes a browser sign-in: the code for tokens, the ID token verified (with this
    /// sign-in's nonce), the user kept, a session made. Returns the session token, the user
    /// and where the browser goes next.
    pub async fn finish_login(
        &self,
        state: &str,
        code: String,
        browser_state: Option<&str>,
    ) -> Result<(String, Verified, String), SignInError> {
        let login = self.lock_logins().take(state, now_ms()).ok_or(SignInError::Unknown)?;
        if !browser_state.is_some_and(|b| constant_time_eq(b.as_bytes(), state.as_bytes())) {
            return Err(SignInError::OtherBrowser);
        }
        let client = self.client();
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| SignInError::Provider(e.to_string()))?
            .set_pkce_verifier(login.pkce)
            .request_async(&self.http)
            .await
            .map_err(|e| token_error(&e))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| SignInError::BadIdToken("the provider sent no ID token".into()))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &login.nonce)
            .map_err(|e| SignInError::BadIdToken(e.to_string()))?
            .clone();
        let user = self.keep_user(&claims, response.access_token().clone()).await?;
        let token = self.new_session(&user, "browser").await?;
        Ok((token.0, user, login.return_to))
    }

    /// The user of an ID token's claims, with the userinfo endpoint's name and email when
    /// the ID token carries none (many providers put only the subject in it), kept in the
    /// store.
    async fn keep_user(&self, claims: &CoreIdTokenClaims, access: AccessToken) -> Result<Verified, SignInError> {
        let subject = claims.subject().to_string();
        let mut name = claims.name().and_then(|n| n.get(None)).map(|n| n.to_string());
        let mut username = claims.preferred_username().map(|n| n.to_string());
        let mut email = claims.email().map(|e| e.to_string());
        if name.is_none() || email.is_none() {
            if let Ok(request) = self.client().user_info(access, Some(claims.subject().clone())) {
                let info: Result<CoreUserInfoClaims, _> = request.request_async(&self.http).await;
                match info {
                    Ok(info) => {
                        name = name.or_else(|| info.name().and_then(|n| n.get(None)).map(|n| n.to_string()));
                        username = username.or_else(|| info.preferred_username().map(|n| n.to_string()));
                        email = email.or_else(|| info.email().map(|e| e.to_string()));
                    }
                    Err(e) => {
                        tracing::warn!(error = %error_chain(&e), "the provider's userinfo failed; using the ID token's claims")
                    }
                }
            }
        }
        let shown = display_name(name.as_deref(), username.as_deref(), email.as_deref(), &subject);
        let record = self
            .store
            .put_user(UserRecord {
                id: format!("u{}", crate::room::access::new_id()),
                issuer: self.settings.issuer.clone(),
                subject: subject.clone(),
                name: shown,
                email,
                created_at: now_ms(),
            })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot keep a user");
                SignInError::Store
            })?;
        tracing::info!(user = %record.id, "signed in");
        Ok(Verified {
            id: record.id,
            name: record.name,
            email: record.email,
            subject: record.subject,
        })
    }

    async fn new_session(&self, user: &Verified, kind: &str) -> Result<(String, u64), SignInError> {
        let token = new_token();
        let now = now_ms();
        let expires_at = now + SESSION_TTL.as_millis() as u64;
        self.store
            .put_session(UserSession {
                digest: token_digest(&token),
                user: user.id.clone(),
                kind: kind.into(),
                created_at: now,
                expires_at,
            })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot keep a session");
                SignInError::Store
            })?;
        Ok((token, expires_at))
    }

    /// The user of a session token, if it is a live session.
    pub async fn user_of(&self, token: &str) -> Result<Option<Verified>, crate::store::StoreError> {
        Ok(self
            .store
            .get_session(token_digest(token), now_ms())
            .await?
            .map(|(_, u)| Verified {
                id: u.id,
                name: u.name,
                email: u.email,
                subject: u.subject,
            }))
    }

    /// Ends a session; returns whether there was one.
    pub async fn logout(&self, token: &str) -> bool {
        self.store.delete_session(token_digest(token)).await.unwrap_or(false)
    }

    /// Starts a device sign-in at the provider for a client at `ip`; a task polls the
    /// provider until the person is done, and [`Accounts::poll_device`] reports it.
    pub async fn begin_device(self: &Arc<Self>, ip: std::net::IpAddr) -> Result<DeviceStart, SignInError> {
        if self.device_starts.admit(ip).is_err() {
            return Err(SignInError::RateLimited);
        }
        let device_url = self
            .metadata
            .additional_metadata()
            .device_authorization_endpoint
            .clone()
            .ok_or(SignInError::NoDeviceFlow)?;
        let client = self.client().set_device_authorization_url(device_url);
        let mut request = client.exchange_device_code();
        for scope in SCOPES {
            request = request.add_scope(Scope::new(scope.into()));
        }
        let details: CoreDeviceAuthorizationResponse = request
            .request_async(&self.http)
            .await
            .map_err(|e| SignInError::Provider(error_chain(&e)))?;
        let handle = new_token();
        self.lock_devices()
            .insert(handle.clone(), DeviceLogin::Waiting, now_ms());
        let start = DeviceStart {
            handle: handle.clone(),
            verification_uri: details.verification_uri().to_string(),
            verification_uri_complete: details.verification_uri_complete().map(|u| u.secret().clone()),
            user_code: details.user_code().secret().clone(),
            expires_in: details.expires_in().as_secs(),
            interval: details.interval().as_secs().max(1),
        };
        let me = self.clone();
        tokio::spawn(async move {
            let outcome = me.wait_for_device(details).await.map_err(|e| e.to_string());
            if let Err(e) = &outcome {
                tracing::info!(error = %e, "device sign-in failed");
            }
            if let Some(slot) = me.lock_devices().get_mut(&handle, now_ms()) {
                *slot = DeviceLogin::Done(outcome);
            }
        });
        Ok(start)
    }

    fn lock_devices(&self) -> std::sync::MutexGuard<'_, Pending<DeviceLogin>> {
        self.devices.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn wait_for_device(
        &self,
        details: CoreDeviceAuthorizationResponse,
    ) -> Result<(String, UserInfo, u64), SignInError> {
        let device_url = self
            .metadata
            .additional_metadata()
            .device_authorization_endpoint
            .clone()
            .ok_or(SignInError::NoDeviceFlow)?;
        let client = self.client().set_device_authorization_url(device_url);
        let wait = details.expires_in().min(MAX_DEVICE_WAIT);
        let response = client
            .exchange_device_access_token(&details)
            .map_err(|e| SignInError::Provider(e.to_string()))?
            .request_async(&self.http, tokio::time::sleep, Some(wait))
            .await
            .map_err(|e| token_error(&e))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| SignInError::BadIdToken("the provider sent no ID token".into()))?;
        // The device flow has no nonce (RFC 8628 sends none); signature, issuer, audience and
        // expiry are checked as for a browser.
        let claims = id_token
            .claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
            .map_err(|e| SignInError::BadIdToken(e.to_string()))?
            .clone();
        let user = self.keep_user(&claims, response.access_token().clone()).await?;
        let (token, expires_at) = self.new_session(&user, "device").await?;
        Ok((token, UserInfo::from(&user), expires_at))
    }

    /// Where a device sign-in stands: `Ok(None)` while the person has not finished, then its
    /// outcome, once (the entry is gone after).
    pub fn poll_device(&self, handle: &str) -> Result<Option<(String, UserInfo, u64)>, String> {
        let mut devices = self.lock_devices();
        let now = now_ms();
        match devices.get_mut(handle, now) {
            None => Err("this sign-in is unknown or over: run mesh-proxy login again".into()),
            Some(DeviceLogin::Waiting) => Ok(None),
            Some(DeviceLogin::Done(_)) => match devices.take(handle, now) {
                Some(DeviceLogin::Done(outcome)) => outcome.map(Some),
                _ => Err("this sign-in is unknown or over: run mesh-proxy login again".into()),
            },
        }
    }
}

/// A token endpoint's error as a [`SignInError`]: the provider's own refusal when it sent
/// one (`access_denied`, `expired_token`, ...), else what failed.
fn token_error<E: std::error::Error + 'static>(e: &E) -> SignInError {
    let text = error_chain(e);
    // openidconnect words a provider's error response so; anything else is a failure to talk.
    match text.strip_prefix("Server returned error response: ") {
        Some(refusal) => SignInError::Refused(refusal.to_owned()),
        None => SignInError::Provider(text),
    }
}

/// An error and its causes on one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
