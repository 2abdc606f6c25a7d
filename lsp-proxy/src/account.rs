//! Signing in to a server that has accounts (decision 012): `mesh-proxy login` by the device
//! flow, `logout`, `whoami`, and the user token every connection to that server then shows.
//!
//! The server is the OpenID Connect client (it holds the client secret): `login` asks it to
//! start a device sign-in at the provider, prints the URL and code the person opens in any
//! browser, and polls the server until it answers with the user's mesh token. Tokens are kept
//! per server in `$XDG_STATE_HOME/mesh/accounts.json`, readable by the owner only, and sent in
//! the [`USER_TOKEN_HEADER`] of the room socket and every REST call to that server, beside
//! the room's own token in `Authorization`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use mesh_protocol::rest::{ApiError, DeviceStart, DeviceState, Me, UserInfo, USER_TOKEN_HEADER};
use serde::{Deserialize, Serialize};

use crate::tls::Tls;

/// How long one call to the server may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// How often `login` asks the server whether the person is done. The server polls the
/// provider at the provider's interval itself; asking the server is a lookup in its memory, so
/// once a second costs nothing and saves the person up to an interval of waiting.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A signed-in account on one server.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Account {
    /// The user's mesh token (a secret).
    pub token: String,
    /// Who signed in.
    pub user: UserInfo,
    /// When the token stops working, milliseconds since the Unix epoch.
    pub expires_at: u64,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never print it.
        f.debug_struct("Account")
            .field("user", &self.user)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

fn accounts_path() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|d| d.join("mesh").join("accounts.json"))
}

/// The server a URL belongs to, as accounts are keyed: scheme, host and port, no slash.
pub fn server_key(server: &str) -> String {
    match url::Url::parse(server) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => server.trim_end_matches('/').to_string(),
    }
}

fn load_all() -> BTreeMap<String, Account> {
    accounts_path()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_all(all: &BTreeMap<String, Account>) -> anyhow::Result<()> {
    let Some(path) = accounts_path() else {
        bail!("no state directory to keep the sign-in in (set XDG_STATE_HOME)")
    };
    crate::config::write_private(&path, &serde_json::to_vec_pretty(all)?)
}

/// The account kept for `server`, if any.
pub fn account_for(server: &str) -> Option<Account> {
    load_all().remove(&server_key(server))
}

/// The user token to show `server`, if we signed in to it.
pub fn user_token(server: &str) -> Option<String> {
    account_for(server).map(|a| a.token)
}

/// `request` with our user token for `server`, when we signed in to it.
pub fn with_user(request: reqwest::RequestBuilder, server: &str) -> reqwest::RequestBuilder {
    match user_token(server) {
        Some(token) => request.header(USER_TOKEN_HEADER, token),
        None => request,
    }
}

/// Sends a call to `server`; a failure to reach it says why in words (TLS trouble
/// explained, or that the server cannot be reached).
async fn send(tls: &Tls, server: &str, call: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
    call.timeout(CALL_TIMEOUT).send().await.map_err(|e| {
        anyhow::anyhow!(tls
            .explain(&e, server)
            .unwrap_or_else(|| format!("cannot reach {server}: {e}")))
    })
}

async fn error_of(resp: reqwest::Response) -> String {
    let status = resp.status();
    match resp.json::<ApiError>().await {
        Ok(e) => e.message,
        Err(_) => format!("the server answered {status}"),
    }
}

/// `mesh-proxy login [SERVER]`: signs in by the device flow and keeps the token. `show`
/// prints what the person must do (the URL and code), before the wait.
pub async fn login(tls: &Tls, server: &str, show: impl Fn(&DeviceStart)) -> anyhow::Result<Account> {
    let http = tls.http();
    let resp = send(tls, server, http.post(format!("{server}/auth/device"))).await?;
    if !resp.status().is_success() {
        bail!("{server} cannot start a sign-in: {}", error_of(resp).await);
    }
    let start: DeviceStart = resp.json().await.context("the server's answer to /auth/device")?;
    show(&start);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(start.expires_in.max(1));
    loop {
        if tokio::time::Instant::now() > deadline {
            bail!("the code expired before the sign-in was finished: run mesh-proxy login again");
        }
        let resp = http
            .post(format!("{server}/auth/device/poll"))
            .json(&serde_json::json!({ "handle": start.handle }))
            .timeout(CALL_TIMEOUT)
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => match r.json::<DeviceState>().await? {
                DeviceState::Pending => {}
                DeviceState::Done {
                    token,
                    user,
                    expires_at,
                } => {
                    let account = Account {
                        token,
                        user,
                        expires_at,
                    };
                    let mut all = load_all();
                    all.insert(server_key(server), account.clone());
                    save_all(&all)?;
                    return Ok(account);
                }
            },
            Ok(r) => bail!("sign-in failed: {}", error_of(r).await),
            // The server may restart meanwhile: keep polling until the deadline.
            Err(e) => tracing::debug!(error = %e, "poll failed; retrying"),
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// `mesh-proxy logout [SERVER]`: ends the session at the server and forgets the token.
/// Returns who was signed in, if anyone.
pub async fn logout(tls: &Tls, server: &str) -> anyhow::Result<Option<UserInfo>> {
    let mut all = load_all();
    let Some(account) = all.remove(&server_key(server)) else {
        return Ok(None);
    };
    // Forget it here even when the server cannot be told: the token is then unused, and it
    // expires at the server.
    save_all(&all)?;
    let told = tls
        .http()
        .post(format!("{server}/auth/logout"))
        .header(USER_TOKEN_HEADER, &account.token)
        .timeout(CALL_TIMEOUT)
        .send()
        .await;
    if let Err(e) = told {
        tracing::warn!(error = %e, "could not end the session at the server; it ends when it expires");
    }
    Ok(Some(account.user))
}

/// Who the server says we are (`GET /auth/me` with our token).
pub async fn whoami(tls: &Tls, server: &str) -> anyhow::Result<Me> {
    let resp = send(
        tls,
        server,
        with_user(tls.http().get(format!("{server}/auth/me")), server),
    )
    .await?;
    if !resp.status().is_success() {
        bail!("{}", error_of(resp).await);
    }
    Ok(resp.json().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_kept_per_server_origin() {
        assert_eq!(server_key("https://mesh.example.test/"), "https://mesh.example.test");
        assert_eq!(
            server_key("http://127.0.0.1:7420/join/x?token=y"),
            "http://127.0.0.1:7420"
        );
    }

    #[test]
    fn an_account_never_prints_its_token() {
        let a = Account {
            token: "secret-token".into(),
            user: UserInfo {
                id: "u1".into(),
                name: "Ada".into(),
                email: None,
                subject: "ada".into(),
            },
            expires_at: 1,
        };
        assert!(!format!("{a:?}").contains("secret-token"));
    }
}
