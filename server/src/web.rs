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
//! Pages are also cross-origin isolated (`Cross-Origin-Opener-Policy: same-origin`,
//! `Cross-Origin-Embedder-Policy: require-corp`): a program run in the browser reads typed
//! stdin through a SharedArrayBuffer, which browsers give only to isolated pages. The page
//! loads nothing from other origins, so isolation costs it nothing.
//!
//! The workers that run programs in the browser (`web/src/run/local-*-worker.ts`) get their
//! own, narrower policy with their script: a worker's policy is the one its script came with,
//! not the page's ([`worker_policy`]). Pyodide's files (`assets/pyodide-VERSION/`) are stored
//! gzip-compressed in the build and sent as they are to browsers that take gzip.
//!
//! A server built without the page (no `web/dist` when it was compiled) still runs: its
//! pages say how to build the browser client and how to join from an editor meanwhile.
//!
//! The logic is in plain functions over an [`Assets`] source, so tests can give an empty one
//! (a build without the page) or their own files.

use std::borrow::Cow;

use std::io::Read;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
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
/// `ws:`/`wss:` on the page's own host and port. `worker-src 'self'` says what
/// `script-src` implied already: the run workers come from this origin, never from `blob:`.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; \
         connect-src 'self'; img-src 'self' data:; font-src 'self'; manifest-src 'self'; \
         worker-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; \
         object-src 'none'"
    )
}

/// The worker that runs JavaScript in the browser (`local-js-worker-HASH.js`): it evaluates
/// the program (`'unsafe-eval'`, in this worker only, never the page) and may load nothing
/// and connect nowhere, so a program someone in the room wrote cannot reach the network.
pub const JS_WORKER_POLICY: &str = "default-src 'none'; script-src 'unsafe-eval'";

/// The worker that runs Python in the browser (`local-py-worker-HASH.js`): it imports
/// Pyodide's loader and interpreter from this origin (`script-src 'self'`), compiles its
/// WebAssembly (`'wasm-unsafe-eval'`, which allows WebAssembly and not JavaScript `eval`)
/// and fetches the WebAssembly, the standard library and the lock file from this origin
/// (`connect-src 'self'`). Nothing from another origin; the worker deletes `fetch` and the
/// other network globals before the program starts (`web/src/run/local-sandbox.ts`).
pub const PY_WORKER_POLICY: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'";

/// The policy a run worker's script carries, by its file name as Vite writes it
/// (`web/vite.config.ts`), or `None` for every other asset.
pub fn worker_policy(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    if !name.ends_with(".js") {
        None
    } else if name.starts_with("local-js-worker-") {
        Some(JS_WORKER_POLICY)
    } else if name.starts_with("local-py-worker-") {
        Some(PY_WORKER_POLICY)
    } else {
        None
    }
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
    isolation_headers(h);
}

/// Cross-origin isolation, on pages and assets alike: the opener and embedder policies make
/// the page isolated (SharedArrayBuffer for a local run's stdin), and the resource policy
/// keeps other origins from embedding mesh's files. A worker's script needs the embedder
/// policy too, or an isolated page may not start it.
fn isolation_headers(h: &mut HeaderMap) {
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-embedder-policy"),
        HeaderValue::from_static("require-corp"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
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

/// `GET /assets/{*path}`: a built asset, cached for good (its name is its content's hash,
/// or its folder's name its version).
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    asset_response(&BuiltIn, &path, accepts_gzip(&headers))
}

/// `GET /favicon.svg`.
pub async fn favicon() -> Response {
    asset_response(&BuiltIn, "favicon.svg", false)
}

/// Whether a request's `Accept-Encoding` takes gzip (and does not refuse it with `q=0`).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// An asset as it goes out.
struct Found {
    bytes: Cow<'static, [u8]>,
    /// The bytes are gzip-compressed (send `Content-Encoding: gzip`).
    gzipped: bool,
    /// They came from the `.gz` twin, so they depend on `Accept-Encoding`.
    from_twin: bool,
}

/// The asset's bytes: the file itself, or its `.gz` twin (the build stores Pyodide's large
/// files only so) as it is for a client that takes gzip and unpacked for one that does not.
fn asset_bytes(assets: &dyn Assets, full: &str, gzip_ok: bool) -> Option<Found> {
    let gz = format!("{full}.gz");
    if gzip_ok {
        if let Some(bytes) = assets.get(&gz) {
            return Some(Found {
                bytes,
                gzipped: true,
                from_twin: true,
            });
        }
    }
    if let Some(bytes) = assets.get(full) {
        return Some(Found {
            bytes,
            gzipped: false,
            from_twin: false,
        });
    }
    let packed = assets.get(&gz)?;
    let mut plain = Vec::new();
    match flate2::read::GzDecoder::new(&packed[..]).read_to_end(&mut plain) {
        Ok(_) => Some(Found {
            bytes: Cow::Owned(plain),
            gzipped: false,
            from_twin: true,
        }),
        Err(e) => {
            tracing::error!("the built asset {gz} is not valid gzip ({e}); rebuild the browser client");
            None
        }
    }
}

/// The asset at `path` under `assets/`, or 404. `gzip_ok`: the client takes gzip.
pub fn asset_response(assets: &dyn Assets, path: &str, gzip_ok: bool) -> Response {
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
    let found = (!full.is_empty() && !full.ends_with(".gz"))
        .then(|| asset_bytes(assets, &full, gzip_ok))
        .flatten();
    let Some(Found {
        bytes,
        gzipped,
        from_twin,
    }) = found
    else {
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
    if gzipped {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if from_twin {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if let Some(policy) = worker_policy(path) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    }
    isolation_headers(h);
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
        // WebAssembly must be typed so, or browsers refuse to compile it as it streams in.
        Some("wasm") => "application/wasm",
        Some("zip") => "application/zip",
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

    /// Files with bytes of their own (a `.gz` twin is not text).
    struct Bytes(HashMap<String, Vec<u8>>);

    impl Assets for Bytes {
        fn get(&self, path: &str) -> Option<Cow<'static, [u8]>> {
            self.0.get(path).map(|b| Cow::Owned(b.clone()))
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    async fn raw_body(resp: Response) -> Vec<u8> {
        axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap().to_vec()
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
        let resp = asset_response(&empty, "app-1.js", false);
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
        let resp = asset_response(&built(), "app-1.js", false);
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
            assert_eq!(
                asset_response(&built(), path, true).status(),
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
    }

    #[test]
    fn pages_and_assets_are_cross_origin_isolated() {
        for resp in [app_page(&built()), asset_response(&built(), "app-1.js", false)] {
            let h = resp.headers();
            assert_eq!(h["cross-origin-opener-policy"], "same-origin");
            assert_eq!(h["cross-origin-embedder-policy"], "require-corp");
            assert_eq!(h["cross-origin-resource-policy"], "same-origin");
        }
        assert!(content_security_policy("n").contains("worker-src 'self';"));
    }

    #[test]
    fn run_workers_carry_their_own_narrow_policy_and_nothing_else_does() {
        assert_eq!(worker_policy("local-js-worker-Ab1.js"), Some(JS_WORKER_POLICY));
        assert_eq!(worker_policy("local-py-worker-Ab1.js"), Some(PY_WORKER_POLICY));
        for other in ["index-Ab1.js", "local-js-worker-Ab1.js.map", "x/local-js-worker.css"] {
            assert_eq!(worker_policy(other), None, "{other}");
        }
        // The JavaScript sandbox evaluates the program but loads and reaches nothing.
        assert!(JS_WORKER_POLICY.contains("default-src 'none'"));
        assert!(!JS_WORKER_POLICY.contains("'self'"), "{JS_WORKER_POLICY}");
        assert!(!JS_WORKER_POLICY.contains("connect-src"), "{JS_WORKER_POLICY}");
        // Python compiles WebAssembly but never evaluates JavaScript text.
        assert!(PY_WORKER_POLICY.contains("'wasm-unsafe-eval'"));
        assert!(!PY_WORKER_POLICY.contains("'unsafe-eval'"), "{PY_WORKER_POLICY}");
        assert!(!PY_WORKER_POLICY.contains("http"), "{PY_WORKER_POLICY}");
        // The page's own policy stays without either.
        assert!(!content_security_policy("n").contains("eval"));

        let files = Files(HashMap::from([("assets/local-js-worker-Ab1.js", "onmessage=null")]));
        let resp = asset_response(&files, "local-js-worker-Ab1.js", false);
        assert_eq!(resp.headers()[header::CONTENT_SECURITY_POLICY], JS_WORKER_POLICY);
        assert!(!asset_response(&built(), "app-1.js", false)
            .headers()
            .contains_key(header::CONTENT_SECURITY_POLICY));
    }

    #[tokio::test]
    async fn a_gzip_only_asset_goes_as_it_is_to_gzip_clients_and_unpacked_to_others() {
        let wasm = b"\0asm\x01\0\0\0 pretend this is a large interpreter".repeat(50);
        let files = Bytes(HashMap::from([(
            "assets/pyodide-1.0/pyodide.asm.wasm.gz".to_string(),
            gzip(&wasm),
        )]));
        let path = "pyodide-1.0/pyodide.asm.wasm";

        let packed = asset_response(&files, path, true);
        assert_eq!(packed.status(), StatusCode::OK);
        assert_eq!(packed.headers()[header::CONTENT_TYPE], "application/wasm");
        assert_eq!(packed.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(packed.headers()[header::VARY], "accept-encoding");
        assert!(packed.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable"));
        assert_eq!(raw_body(packed).await, gzip(&wasm));

        let plain = asset_response(&files, path, false);
        assert_eq!(plain.status(), StatusCode::OK);
        assert!(!plain.headers().contains_key(header::CONTENT_ENCODING));
        assert_eq!(plain.headers()[header::VARY], "accept-encoding");
        assert_eq!(raw_body(plain).await, wasm);

        // The twin itself is not an asset of its own.
        let twin = asset_response(&files, "pyodide-1.0/pyodide.asm.wasm.gz", true);
        assert_eq!(twin.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn gzip_is_taken_when_the_client_says_so_and_not_refused() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(v));
            accepts_gzip(&h)
        };
        assert!(with("gzip, deflate, br, zstd"));
        assert!(with("br;q=1.0, GZIP;q=0.5"));
        assert!(with("*"));
        assert!(!with("br, deflate"));
        assert!(!with("gzip;q=0, br"));
        assert!(!with("identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn a_malformed_room_id_is_refused_with_a_page_that_says_so() {
        let resp = join_page(&built(), "not-a-room");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(csp(&resp).contains("default-src 'none'"));
        assert!(body(resp).await.contains("malformed"));
    }
}
