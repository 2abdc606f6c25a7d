//! The browser client's pages and assets: `/` (create or join a session), `/join/{id}` (the
//! room) and `/assets/...`, built from `web/` by Vite and embedded in the binary
//! (`docs/decisions/009-browser-client.md`).
//!
//! Every page goes out with a strict Content-Security-Policy: scripts and styles only from
//! this origin, sockets and requests only to this origin, no frames, no plugins, no inline
//! script. CodeMirror writes its base styles into `<style>` elements at run time, so each
//! page response carries a fresh random nonce that only those elements may use; the page
//! reads it from a `<meta>` tag that the server fills in.
//!
//! A server built without the page (no `web/dist` when it was compiled) still runs: its
//! pages say how to build the browser client and how to join from an editor meanwhile.
//!
//! The logic is in plain functions over an [`Assets`] source, so tests can give an empty one
//! (a build without the page) or their own files.

use std::borrow::Cow;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use mesh_protocol::RoomId;
use rust_embed::Embed;

/// The placeholder in the built `index.html` that each response replaces with its nonce.
pub const NONCE_PLACEHOLDER: &str = "__MESH_STYLE_NONCE__";

/// Random bytes in a page's style nonce: 128 bits, so a nonce cannot be guessed.
const NONCE_BYTES: usize = 16;

/// How long a browser may keep a built asset. Vite names every asset after a hash of its
/// content, so a name never stands for other bytes: a year, and `immutable`.
const ASSET_MAX_AGE_SECS: u64 = 365 * 24 * 3600;

/// Where the page is built, relative to the repository: what the explanation page tells
/// operators to build.
const BUILD_HINT: &str = "cd web && npm ci && npm run build";

/// Files the browser client is made of: the built `web/dist`, or nothing.
pub trait Assets: Send + Sync {
    /// The bytes of the file at `path` (relative, `/`-separated, e.g. `index.html`).
    fn get(&self, path: &str) -> Option<Cow<'static, [u8]>>;
}

/// `web/dist` as it was when the server was compiled (in debug builds, read from the disk
/// at run time, which keeps `npm run build` and a running debug server in step). A missing
/// folder is an empty one: the server then explains how to build the page.
#[derive(Embed)]
#[folder = "../web/dist/"]
#[allow_missing = true]
struct Embedded;

/// The assets built into this binary.
pub struct BuiltIn;

impl Assets for BuiltIn {
    fn get(&self, path: &str) -> Option<Cow<'static, [u8]>> {
        Embedded::get(path).map(|f| f.data)
    }
}

/// The Content-Security-Policy of every page, allowing `<style>` elements that carry
/// `nonce`. `connect-src 'self'` covers the room socket: CSP level 3 lets `'self'` match
/// `ws:`/`wss:` on the page's own host and port.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; \
         connect-src 'self'; img-src 'self' data:; font-src 'self'; manifest-src 'self'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
    )
}

/// The style nonce a policy from [`content_security_policy`] allows, if any.
pub fn policy_nonce(policy: &str) -> Option<&str> {
    policy.split("'nonce-").nth(1)?.split('\'').next()
}

fn new_nonce() -> String {
    let bytes: [u8; NONCE_BYTES] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Headers every page gets: the CSP, no caching (the URL carries a token and the page a
/// one-time nonce), no referrer (so the token in the URL never reaches another origin), no
/// framing, no content sniffing.
fn page_response(status: StatusCode, html: String, nonce: &str) -> Response {
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    security_headers(h, nonce);
    resp
}

fn security_headers(h: &mut axum::http::HeaderMap, nonce: &str) {
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(nonce)) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// The app's HTML with a fresh nonce, or the page that explains how to build it.
pub fn app_page(assets: &dyn Assets) -> Response {
    let nonce = new_nonce();
    match assets.get("index.html") {
        Some(bytes) => {
            let html = String::from_utf8_lossy(&bytes).replace(NONCE_PLACEHOLDER, &nonce);
            page_response(StatusCode::OK, html, &nonce)
        }
        None => page_response(StatusCode::OK, not_built_page(), &nonce),
    }
}

/// What a server built without `web/dist` shows instead of the browser client.
fn not_built_page() -> String {
    format!(
        "<!doctype html><meta charset=utf-8><title>mesh</title>\
         <h1>mesh</h1>\
         <p>This mesh-server was built without its browser client. To get it, build the page \
         with <code>{BUILD_HINT}</code> and then the server again (<code>cargo build -p mesh-server</code>), \
         or start everything with <code>scripts/serve</code>, which does both.</p>\
         <p>Meanwhile, join a session from a terminal with <code>mesh-proxy join '&lt;join link&gt;' DIR</code>, \
         from VS Code with <em>Mesh: Join Session</em>, or from Neovim with <code>:Mesh join &lt;join link&gt;</code>.</p>"
    )
}

/// `GET /`: create a session or paste a join link.
pub async fn home() -> Response {
    app_page(&BuiltIn)
}

/// `GET /join/{id}?token=...`: the room, in the browser.
pub async fn join(Path(id): Path<String>) -> Response {
    join_page(&BuiltIn, &id)
}

/// The room page for room `id`; a malformed id is refused with a page that says so.
pub fn join_page(assets: &dyn Assets, id: &str) -> Response {
    if id.parse::<RoomId>().is_err() {
        let nonce = new_nonce();
        return page_response(
            StatusCode::BAD_REQUEST,
            "<!doctype html><meta charset=utf-8><title>mesh</title>\
             <p>This is not a mesh join link: the room id is malformed. Ask for the link again.</p>"
                .to_string(),
            &nonce,
        );
    }
    app_page(assets)
}

/// `GET /assets/{*path}`: a built asset, cached for good (its name is its content's hash).
pub async fn asset(Path(path): Path<String>) -> Response {
    asset_response(&BuiltIn, &path)
}

/// `GET /favicon.svg`.
pub async fn favicon() -> Response {
    asset_response(&BuiltIn, "favicon.svg")
}

/// The asset at `path` under `assets/`, or 404.
pub fn asset_response(assets: &dyn Assets, path: &str) -> Response {
    // Only plain names under assets/: in debug builds the files come from the disk.
    let plain = !path.is_empty()
        && path.split('/').all(|seg| !seg.is_empty() && seg != ".." && seg != ".")
        && !path.contains('\\');
    let full = if !plain {
        String::new()
    } else if path == "favicon.svg" {
        path.to_string()
    } else {
        format!("assets/{path}")
    };
    let Some(bytes) = (!full.is_empty()).then(|| assets.get(&full)).flatten() else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            format!("no asset {path} in this build of the browser client; rebuild it with `{BUILD_HINT}`"),
        )
            .into_response();
    };
    let mut resp = bytes.into_owned().into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    let cache = format!("public, max-age={ASSET_MAX_AGE_SECS}, immutable");
    if let Ok(v) = HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

/// The media type of an asset, from its extension: the closed set Vite emits for this app.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json" | "map") => "application/json",
        Some("woff2") => "font/woff2",
        Some("html") => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Files(HashMap<&'static str, &'static str>);

    impl Assets for Files {
        fn get(&self, path: &str) -> Option<Cow<'static, [u8]>> {
            self.0.get(path).map(|s| Cow::Borrowed(s.as_bytes()))
        }
    }

    fn built() -> Files {
        Files(HashMap::from([
            (
                "index.html",
                "<meta name=mesh-style-nonce content=__MESH_STYLE_NONCE__><script type=module src=/assets/app-1.js></script>",
            ),
            ("assets/app-1.js", "console.log(1)"),
        ]))
    }

    async fn body(resp: Response) -> String {
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn csp(resp: &Response) -> String {
        resp.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn a_build_without_the_page_explains_how_to_build_it() {
        let empty = Files(HashMap::new());
        let resp = app_page(&empty);
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(csp(&resp).contains("script-src 'self'"));
        let text = body(resp).await;
        assert!(text.contains(BUILD_HINT), "{text}");
        assert!(text.contains("mesh-proxy join"), "{text}");
        let resp = asset_response(&empty, "app-1.js");
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert!(body(resp).await.contains(BUILD_HINT));
    }

    #[tokio::test]
    async fn each_page_gets_its_own_nonce_in_the_policy_and_the_page() {
        let a = app_page(&built());
        let b = app_page(&built());
        let (csp_a, csp_b) = (csp(&a), csp(&b));
        assert_ne!(csp_a, csp_b);
        let nonce = policy_nonce(&csp_a).unwrap().to_string();
        assert_eq!(nonce.len(), NONCE_BYTES * 2);
        assert_eq!(a.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(a.headers()[header::REFERRER_POLICY], "no-referrer");
        let html = body(a).await;
        assert!(html.contains(&format!("content={nonce}")), "{html}");
        assert!(!html.contains(NONCE_PLACEHOLDER));
    }

    #[test]
    fn the_policy_allows_no_inline_script_and_no_other_origin() {
        let policy = content_security_policy("n");
        assert!(!policy.contains("unsafe"), "{policy}");
        assert!(policy.contains("default-src 'none'"));
        assert!(policy.contains("connect-src 'self';"));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(!policy.contains("http"), "{policy}");
    }

    #[tokio::test]
    async fn assets_are_cached_for_good_and_typed() {
        let resp = asset_response(&built(), "app-1.js");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert!(resp.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable"));
        assert_eq!(body(resp).await, "console.log(1)");
    }

    #[test]
    fn asset_paths_never_leave_the_assets_folder() {
        for path in ["../index.html", "a/../../x", "/etc/passwd", "", "a//b", "..\\x"] {
            assert_eq!(asset_response(&built(), path).status(), StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[tokio::test]
    async fn a_malformed_room_id_is_refused_with_a_page_that_says_so() {
        let resp = join_page(&built(), "not-a-room");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(csp(&resp).contains("default-src 'none'"));
        assert!(body(resp).await.contains("malformed"));
    }
}
