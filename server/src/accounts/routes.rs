//! The sign-in routes (`/auth/...`) and the one rule for who a request's user is.
//!
//! A request's user comes from the [`USER_TOKEN_HEADER`] (`mesh-proxy`), else from the
//! browser's session cookie. The cookie counts only for requests from this server's own
//! pages: one that carries an `Origin` of another site is treated as signed out, so a page
//! elsewhere cannot act as the person (the cookie is also `SameSite=Lax`).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mesh_protocol::rest::{DevicePoll, DeviceState, Me, UserInfo, SESSION_COOKIE, USER_TOKEN_HEADER};
use mesh_protocol::ErrorCode;
use serde::Deserialize;

use super::identity::{safe_return_path, Verified};
use super::{Accounts, SignInError, SESSION_TTL};
use crate::api::{api_error, ApiFailure};
use crate::app::AppState;
use crate::client_addr::ClientAddr;

/// The cookie that binds a browser sign-in's `state` to the browser that started it.
const LOGIN_COOKIE: &str = "mesh_login";

/// What a request to an account route on a server without accounts is told.
const NO_ACCOUNTS: &str = "this server has no accounts (sign-in is off): names are unverified; the operator turns \
                           sign-in on with --oidc-issuer, --oidc-client-id and --oidc-client-secret";

fn accounts(app: &AppState) -> Result<&std::sync::Arc<Accounts>, ApiFailure> {
    app.accounts
        .as_ref()
        .ok_or_else(|| ApiFailure(ErrorCode::NotFound, NO_ACCOUNTS.into()))
}

/// The value of cookie `name` in a request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Whether a request came from this server's own pages, or from no page at all (no
/// `Origin`): a browser sends `Origin` on cross-site requests and on every WebSocket.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.trim_end_matches('/').eq_ignore_ascii_case(host))
}

/// Who a request's user is: `None` without accounts or when it shows no session; an error
/// when it shows a user token that is no longer good (so `mesh-proxy` says to sign in again
/// rather than joining unverified without a word).
pub async fn user_of(app: &AppState, headers: &HeaderMap) -> Result<Option<Verified>, ApiFailure> {
    let Some(accounts) = &app.accounts else {
        return Ok(None);
    };
    let store_failed = |e: crate::store::StoreError| {
        tracing::error!(error = %e, "store failed");
        ApiFailure(ErrorCode::Internal, "storage failed; try again".into())
    };
    if let Some(token) = headers.get(USER_TOKEN_HEADER) {
        let token = token.to_str().unwrap_or_default().trim();
        return match accounts.user_of(token).await.map_err(store_failed)? {
            Some(user) => Ok(Some(user)),
            None => Err(ApiFailure(
                ErrorCode::Unauthorized,
                "your sign-in has expired or was ended: run mesh-proxy login again".into(),
            )),
        };
    }
    match cookie(headers, SESSION_COOKIE) {
        Some(token) if same_origin(headers) => accounts.user_of(token).await.map_err(store_failed),
        _ => Ok(None),
    }
}

fn cookie_header(name: &str, value: &str, path: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}"
    ))
    .expect("cookie values are hex and fixed names")
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A failed browser sign-in: a short plain page that says what happened and where to go.
fn sign_in_failed(status: StatusCode, why: &str) -> Response {
    tracing::info!(reason = %why, "browser sign-in failed");
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("Sign-in failed: {why}\n\nStart again from the home page: /\n"),
    )
        .into_response()
}

/// `GET /auth/login?return_to=PATH`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LoginQuery {
    /// A path of this server to return to after sign-in (default `/`).
    return_to: Option<String>,
}

/// Start signing in from a browser: redirects to the provider (authorization code flow with
/// PKCE, state and nonce).
#[utoipa::path(get, path = "/auth/login", params(LoginQuery),
    responses((status = 303, description = "to the provider's sign-in page"), (status = 404, body = mesh_protocol::rest::ApiError),
        (status = 429, body = mesh_protocol::rest::ApiError)))]
pub async fn login(State(app): State<AppState>, client: ClientAddr, Query(query): Query<LoginQuery>) -> Response {
    let accounts = match accounts(&app) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let (url, state) = match accounts.begin_login(client.ip, safe_return_path(query.return_to.as_deref())) {
        Ok(started) => started,
        Err(e) => return api_error(ErrorCode::RateLimited, e.to_string()),
    };
    let mut r = redirect(&url);
    r.headers_mut().insert(
        header::SET_COOKIE,
        cookie_header(
            LOGIN_COOKIE,
            &state,
            "/auth/callback",
            super::LOGIN_TTL_MS / 1000,
            accounts.secure_cookies(),
        ),
    );
    r
}

/// The provider's redirect back.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Where the provider sends the browser back: verifies the sign-in, sets the session cookie
/// and goes on to where the sign-in started.
#[utoipa::path(get, path = "/auth/callback", params(CallbackQuery),
    responses((status = 303, description = "signed in: to the page the sign-in started from"), (status = 400), (status = 401)))]
pub async fn callback(State(app): State<AppState>, Query(q): Query<CallbackQuery>, headers: HeaderMap) -> Response {
    let accounts = match accounts(&app) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    if let Some(error) = q.error {
        let detail = q.error_description.map(|d| format!(": {d}")).unwrap_or_default();
        return sign_in_failed(
            StatusCode::UNAUTHORIZED,
            &format!("the provider answered {error}{detail}"),
        );
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return sign_in_failed(StatusCode::BAD_REQUEST, "the provider sent no code or state");
    };
    match accounts
        .finish_login(&state, code, cookie(&headers, LOGIN_COOKIE))
        .await
    {
        Ok((token, _user, return_to)) => {
            let mut r = redirect(&return_to);
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                cookie_header(
                    SESSION_COOKIE,
                    &token,
                    "/",
                    SESSION_TTL.as_secs(),
                    accounts.secure_cookies(),
                ),
            );
            h.append(
                header::SET_COOKIE,
                cookie_header(LOGIN_COOKIE, "", "/auth/callback", 0, accounts.secure_cookies()),
            );
            r
        }
        Err(e @ (SignInError::Provider(_) | SignInError::Store)) => {
            sign_in_failed(StatusCode::BAD_GATEWAY, &e.to_string())
        }
        Err(e) => sign_in_failed(StatusCode::UNAUTHORIZED, &e.to_string()),
    }
}

/// End this session (the browser's cookie, or `mesh-proxy`'s user token).
#[utoipa::path(post, path = "/auth/logout", responses((status = 204), (status = 404, body = mesh_protocol::rest::ApiError)))]
pub async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let accounts = match accounts(&app) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let token = headers
        .get(USER_TOKEN_HEADER)
        .and_then(|t| t.to_str().ok())
        .map(str::trim)
        .or_else(|| cookie(&headers, SESSION_COOKIE).filter(|_| same_origin(&headers)));
    if let Some(token) = token {
        accounts.logout(token).await;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        cookie_header(SESSION_COOKIE, "", "/", 0, accounts.secure_cookies()),
    );
    r
}

/// Whether this server has accounts, and who is signed in.
#[utoipa::path(get, path = "/auth/me", responses((status = 200, body = Me), (status = 401, body = mesh_protocol::rest::ApiError)))]
pub async fn me(State(app): State<AppState>, headers: HeaderMap) -> Response {
    match user_of(&app, &headers).await {
        Ok(user) => Json(Me {
            accounts: app.accounts.is_some(),
            user: user.as_ref().map(UserInfo::from),
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Start a device sign-in (`mesh-proxy login`): the server asks the provider for a code;
/// show the person the URL and code, then poll `/auth/device/poll`.
#[utoipa::path(post, path = "/auth/device",
    responses((status = 200, body = mesh_protocol::rest::DeviceStart), (status = 404, body = mesh_protocol::rest::ApiError),
        (status = 429, body = mesh_protocol::rest::ApiError), (status = 502, body = mesh_protocol::rest::ApiError)))]
pub async fn device_start(State(app): State<AppState>, client: ClientAddr) -> Response {
    let accounts = match accounts(&app) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    match accounts.begin_device(client.ip).await {
        Ok(start) => Json(start).into_response(),
        Err(e @ SignInError::RateLimited) => api_error(ErrorCode::RateLimited, e.to_string()),
        Err(e @ SignInError::NoDeviceFlow) => api_error(ErrorCode::BadRequest, e.to_string()),
        Err(e) => {
            tracing::warn!(error = %e, "device sign-in could not start");
            api_error(ErrorCode::Unavailable, e.to_string())
        }
    }
}

/// Where a device sign-in stands: `pending`, or `done` with the user's mesh token (given
/// once), or an error that says what went wrong.
#[utoipa::path(post, path = "/auth/device/poll", request_body = DevicePoll,
    responses((status = 200, body = DeviceState), (status = 400, body = mesh_protocol::rest::ApiError), (status = 401, body = mesh_protocol::rest::ApiError)))]
pub async fn device_poll(State(app): State<AppState>, body: Result<Json<DevicePoll>, JsonRejection>) -> Response {
    let accounts = match accounts(&app) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let Ok(Json(poll)) = body else {
        return api_error(
            ErrorCode::BadRequest,
            "send {\"handle\": \"...\"} from /auth/device".into(),
        );
    };
    match accounts.poll_device(&poll.handle) {
        Ok(None) => Json(DeviceState::Pending).into_response(),
        Ok(Some((token, user, expires_at))) => Json(DeviceState::Done {
            token,
            user,
            expires_at,
        })
        .into_response(),
        Err(message) => api_error(ErrorCode::Unauthorized, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_session_cookie_is_read_among_others() {
        let h = headers(&[("cookie", "a=1; mesh_session=abc ; b=2")]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "mesh_login"), None);
    }

    #[test]
    fn a_cookie_counts_only_from_this_server_s_own_pages() {
        assert!(
            same_origin(&headers(&[("host", "mesh.test:7420")])),
            "no Origin: not a page"
        );
        assert!(same_origin(&headers(&[
            ("host", "mesh.test:7420"),
            ("origin", "https://mesh.test:7420")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "mesh.test:7420"),
            ("origin", "https://evil.test")
        ])));
        assert!(!same_origin(&headers(&[("origin", "https://mesh.test")])));
    }

    #[test]
    fn cookies_are_http_only_and_lax_and_secure_under_tls() {
        let c = cookie_header(SESSION_COOKIE, "t", "/", 60, false);
        let c = c.to_str().unwrap();
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Lax") && !c.contains("Secure"),
            "{c}"
        );
        let c = cookie_header(SESSION_COOKIE, "t", "/", 60, true);
        assert!(c.to_str().unwrap().ends_with("; Secure"));
    }
}
