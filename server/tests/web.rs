//! The browser client's routes against a real server: every page answers with the strict
//! Content-Security-Policy and no caching; a page built into the server carries the nonce
//! its policy names and loads its assets from this origin, cached for good; a server built
//! without the page says how to build it (the unit tests in `web.rs` cover that case with an
//! empty asset source, whichever way this binary was built).

use mesh_testkit::TestServer;

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_string()
}

fn check_policy(csp: &str) {
    for part in [
        "default-src 'none'",
        "script-src 'self';",
        "connect-src 'self';",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "{part} missing from {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
}

#[tokio::test]
async fn pages_answer_with_the_policy_and_assets_come_from_this_origin() {
    let server = TestServer::start().unwrap();
    let session = server.create_session("web").await.unwrap();
    let http = server.http();
    let join = format!(
        "{}/join/{}?token={}",
        server.url,
        session.id(),
        session.created.writer_token
    );
    for url in [format!("{}/", server.url), join] {
        let resp = http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        let csp = header(&resp, "content-security-policy");
        check_policy(&csp);
        assert_eq!(header(&resp, "cache-control"), "no-store");
        assert_eq!(header(&resp, "referrer-policy"), "no-referrer");
        // Isolated, so a program run in the browser can read typed stdin.
        assert_eq!(header(&resp, "cross-origin-opener-policy"), "same-origin");
        assert_eq!(header(&resp, "cross-origin-embedder-policy"), "require-corp");
        assert!(header(&resp, "content-type").starts_with("text/html"));
        let nonce = mesh_server::web::policy_nonce(&csp).unwrap().to_string();
        let html = resp.text().await.unwrap();
        if html.contains("mesh-style-nonce") {
            // The page is built in: its nonce is the policy's, and its script is ours.
            assert!(html.contains(&format!("content=\"{nonce}\"")), "{html}");
            assert!(!html.contains("<script>"), "no inline script: {html}");
            let script = html
                .split("src=\"")
                .find_map(|s| {
                    s.split('"')
                        .next()
                        .filter(|p| p.starts_with("/assets/") && p.ends_with(".js"))
                })
                .expect("a module script under /assets/");
            let asset = http.get(format!("{}{script}", server.url)).send().await.unwrap();
            assert_eq!(asset.status(), 200);
            assert!(header(&asset, "content-type").starts_with("text/javascript"));
            assert!(header(&asset, "cache-control").contains("immutable"));
            let plain = asset.bytes().await.unwrap().len();
            let gzipped = http
                .get(format!("{}{script}", server.url))
                .header("accept-encoding", "gzip")
                .send()
                .await
                .unwrap();
            assert_eq!(header(&gzipped, "content-encoding"), "gzip");
            let sent = gzipped.bytes().await.unwrap().len();
            assert!(
                sent * 2 < plain,
                "the script is sent compressed: {sent} of {plain} bytes"
            );
        } else {
            assert!(
                html.contains("npm run build"),
                "a page that is neither the app nor the explanation: {html}"
            );
        }
    }

    let bad = http.get(format!("{}/join/nope", server.url)).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    check_policy(&header(&bad, "content-security-policy"));
    assert!(bad.text().await.unwrap().contains("malformed"));

    let missing = http
        .get(format!("{}/assets/no-such-file.js", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let traversal = http
        .get(format!("{}/assets/..%2F..%2FCargo.toml", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(traversal.status(), 404);
}

/// The built `web/dist/assets` folder this server reads (debug builds read it from the disk),
/// or `None` when the page was not built.
fn built_assets() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/dist/assets");
    dir.is_dir().then_some(dir)
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn pyodide_and_the_run_workers_are_served_as_browsers_need_them() {
    let Some(assets) = built_assets() else {
        eprintln!("web/dist is not built: only the unit tests in web.rs cover asset serving");
        return;
    };
    let server = TestServer::start().unwrap();
    let http = server.http();
    let names = names_in(&assets);
    let pyodide = names
        .iter()
        .find(|n| n.starts_with("pyodide-"))
        .expect("the build has Pyodide's folder");
    let get = |path: String, gzip: bool| {
        let mut req = http.get(format!("{}/assets/{path}", server.url));
        if gzip {
            req = req.header("accept-encoding", "gzip, deflate, br");
        }
        req.send()
    };

    // The interpreter goes gzip-compressed as stored to browsers, and unpacked to others.
    let packed = get(format!("{pyodide}/pyodide.asm.wasm"), true).await.unwrap();
    assert_eq!(packed.status(), 200);
    assert_eq!(header(&packed, "content-type"), "application/wasm");
    assert_eq!(header(&packed, "content-encoding"), "gzip");
    assert!(header(&packed, "cache-control").contains("immutable"));
    assert_eq!(header(&packed, "cross-origin-resource-policy"), "same-origin");
    let body = packed.bytes().await.unwrap();
    assert_eq!(&body[..2], &[0x1f, 0x8b], "gzip's magic");
    let plain = get(format!("{pyodide}/pyodide.asm.wasm"), false).await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    assert_eq!(&plain[..4], b"\0asm", "WebAssembly's magic");
    assert!(plain.len() > 2 * body.len(), "{} vs {}", plain.len(), body.len());

    // The standard library is a zip: not compressed again.
    let zip = get(format!("{pyodide}/python_stdlib.zip"), true).await.unwrap();
    assert_eq!(zip.status(), 200);
    assert_eq!(header(&zip, "content-type"), "application/zip");
    assert!(zip.headers().get("content-encoding").is_none());

    // Each run worker carries its own policy; the page's module scripts carry none.
    for (prefix, policy) in [
        ("local-js-worker-", mesh_server::web::JS_WORKER_POLICY),
        ("local-py-worker-", mesh_server::web::PY_WORKER_POLICY),
    ] {
        let name = names
            .iter()
            .find(|n| n.starts_with(prefix) && n.ends_with(".js"))
            .unwrap_or_else(|| panic!("no {prefix}*.js in the build"));
        let resp = get(name.clone(), true).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "content-security-policy"), policy);
        assert_eq!(header(&resp, "cross-origin-embedder-policy"), "require-corp");
    }
}
