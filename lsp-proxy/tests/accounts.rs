//! `mesh-proxy login` against a real OpenID Connect provider (`oidc-provider` on loopback)
//! and a real server with accounts (decision 012): the device flow end to end, with the
//! person's side done as plain HTTP form posts; the token kept privately; `status` saying who
//! you are; the editor's proxy sending it, so others see the verified name; `logout`.

use std::os::unix::fs::PermissionsExt;

use mesh_testkit::cli::{proxy_command, ProxyCli};
use mesh_testkit::oidc::{browser, log_in, OidcProvider};
use mesh_testkit::{LspClient, TestServer};
use serde_json::{json, Value};

#[tokio::test]
async fn mesh_proxy_login_by_device_code_then_the_editor_is_verified_for_others() {
    let provider = OidcProvider::start().await.unwrap();
    let args = provider.server_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = TestServer::start_with(&args).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // The state directory an editor of folder `a` uses (LspClient's convention).
    let state = tmp.path().join(".state-ada");

    // Before: a share is refused with what to do.
    let a_dir = tmp.path().join("a");
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::write(a_dir.join("main.py"), "print('hi')\n").unwrap();
    let out = proxy_command(&server.url, &state, &["share", a_dir.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("mesh-proxy login"), "{err}");
    let out = proxy_command(&server.url, &state, &["status"]).output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("not signed in"), "{text}");

    let mut login = ProxyCli::start(&server.url, &state, &["login"]);
    let line = login.line_starting("(or open ").await;
    let url = line
        .trim_start_matches("(or open ")
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches(',')
        .to_string();
    let b = browser();
    let page = b.get(&url).send().await.unwrap();
    let done = log_in(&b, page, "ada").await.unwrap();
    assert!(done.text().await.unwrap().contains("Sign-in Success"));
    let signed = login.line_starting("Signed in to").await;
    assert!(signed.contains("as Ada Lovelace <ada@example.test>"), "{signed}");

    // The token is kept for the owner only.
    let kept = state.join("mesh").join("accounts.json");
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "accounts.json is private");
    let accounts: Value = serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
    let token = accounts[&server.url]["token"].as_str().unwrap().to_string();
    let (status, me) = {
        let r = server
            .http()
            .get(format!("{}/auth/me", server.url))
            .header("mesh-user-token", &token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!((status, me["user"]["name"].as_str()), (200, Some("Ada Lovelace")));
    let out = proxy_command(&server.url, &state, &["status"]).output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("You:     Ada Lovelace <ada@example.test>, signed in (verified)"),
        "{text}"
    );

    // Ada's editor shares the folder (a signed-in user may create rooms); Bob's editor,
    // without an account, joins and sees her name verified, and his own not.
    // LspClient keeps an editor's state beside its folder, by name: `.state-ada` is where
    // `login` kept the token. The name it says (MESH_NAME) is not what others see.
    let a = LspClient::start(&a_dir, "ada", &server.url).await.unwrap();
    let link = a.request("mesh/share", json!({})).await.unwrap()["link"]
        .as_str()
        .unwrap()
        .to_string();
    let b_dir = tmp.path().join("b");
    std::fs::create_dir_all(&b_dir).unwrap();
    let bob = LspClient::start(&b_dir, "bob", &server.url).await.unwrap();
    bob.request("mesh/join", json!({ "link": link })).await.unwrap();
    bob.wait_for("Ada, verified", |c| {
        c.notifications("mesh/participants").last().is_some_and(|n| {
            let people = n["participants"].as_array().cloned().unwrap_or_default();
            people
                .iter()
                .any(|p| p["name"] == "Ada Lovelace" && p["verified"] == true)
                && people.iter().any(|p| p["name"] == "bob" && p["verified"] == false)
        })
    })
    .await
    .unwrap();

    // Logging out ends the session at the server and here.
    let out = proxy_command(&server.url, &state, &["logout"]).output().await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Signed out"));
    assert!(!String::from_utf8_lossy(&std::fs::read(&kept).unwrap()).contains(&token));
    let r = server
        .http()
        .get(format!("{}/auth/me", server.url))
        .header("mesh-user-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the token no longer opens anything");
}
