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
