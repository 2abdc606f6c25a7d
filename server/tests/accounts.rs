//! Accounts against a real OpenID Connect provider (decision 012): `oidc-provider` from npm,
//! started on loopback (tests/oidc/provider.mjs), and a real server that is its client.
//! Sign-in by the browser flow and the device flow done with plain HTTP as a person would;
//! verified names seen by others; tokens bound to their user; invitations for one user;
//! forged, expired and otherwise spoiled ID tokens refused.

use std::time::Duration;

use mesh_protocol::messages::Participant;
use mesh_protocol::ServerMessage;
use mesh_testkit::oidc::{browser_sign_in, log_in, OidcProvider};
use mesh_testkit::{ConnectOptions, Session, TestServer, Welcome, YClient};
use reqwest::Method;
use serde_json::{json, Value};

/// A provider and a server with accounts on.
async fn with_accounts() -> (OidcProvider, TestServer) {
    let provider = OidcProvider::start().await.unwrap();
    let args = provider.server_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = TestServer::start_with(&args).unwrap();
    (provider, server)
}

/// Signs `login` in by the device flow, as `mesh-proxy login` does: the user's mesh token.
async fn device_sign_in(server: &TestServer, login: &str) -> String {
    let (status, start) = server.api(Method::POST, "/auth/device", None, None).await.unwrap();
    assert_eq!(status, 200, "{start}");
    let browser = mesh_testkit::oidc::browser();
    let page = browser
        .get(start["verification_uri_complete"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let done = log_in(&browser, page, login).await.unwrap();
    assert!(done.text().await.unwrap().contains("Sign-in Success"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, state) = server
            .api(
                Method::POST,
                "/auth/device/poll",
                None,
                Some(json!({ "handle": start["handle"] })),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{state}");
        if state["state"] == "done" {
            return state["token"].as_str().unwrap().to_string();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the device sign-in never finished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A REST call with a room token and a user token.
async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    room_token: Option<&str>,
    user: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = server.http().request(method, format!("{}{path}", server.url));
    if let Some(t) = room_token {
        req = req.bearer_auth(t);
    }
    if let Some(u) = user {
        req = req.header("mesh-user-token", u);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A room created by the signed-in `user`.
async fn own_room(server: &TestServer, user: &str) -> Session {
    let (status, created) = call(
        server,
        Method::POST,
        "/api/sessions",
        None,
        Some(user),
        Some(json!({ "name": "owned" })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    Session {
        created: serde_json::from_value(created).unwrap(),
    }
}

/// A mesh client through `token`, signed in as `user` (or not), saying hello as `name`.
async fn join_as(
    server: &TestServer,
    s: &Session,
    token: &str,
    user: Option<&str>,
    name: &str,
) -> anyhow::Result<(YClient, Welcome)> {
    let c = YClient::connect_with(
        &server.ws_bare(s),
        ConnectOptions {
            name: Some(name.into()),
            bearer: Some(token.into()),
            user_token: user.map(String::from),
            ..ConnectOptions::default()
        },
    )
    .await?;
    let w = c.welcome().await?;
    Ok((c, w))
}

/// The HTTP status and body of a refused upgrade (101 when it was not refused).
async fn upgrade(url: &str, token: &str, user: Option<&str>) -> (u16, String) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    if let Some(u) = user {
        request.headers_mut().insert("mesh-user-token", u.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => (101, String::new()),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp.body().as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
            (resp.status().as_u16(), body.unwrap_or_default())
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// The participants a client was last told of (welcome, then joins).
fn seen(c: &YClient) -> Vec<Participant> {
    let mut people: Vec<Participant> = Vec::new();
    for m in c.mesh_messages() {
        match m {
            ServerMessage::Welcome { participants, .. } => people = participants,
            ServerMessage::ParticipantJoined { participant } => {
                people.retain(|p| p.conn_id != participant.conn_id);
                people.push(participant);
            }
            ServerMessage::ParticipantLeft { conn_id } => people.retain(|p| p.conn_id != conn_id),
            _ => {}
        }
    }
    people
}

async fn eventually_seen(c: &YClient, what: &str, cond: impl Fn(&[Participant]) -> bool) {
    let deadline = tokio::time::Instant::now() + mesh_testkit::EVENT_TIMEOUT;
    while !cond(&seen(c)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never saw {what}: {:?}",
            seen(c)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn without_accounts_sign_in_is_off_and_says_how_to_turn_it_on() {
    let server = TestServer::start().unwrap();
    let (status, me) = server.api(Method::GET, "/auth/me", None, None).await.unwrap();
    assert_eq!((status, &me), (200, &json!({ "accounts": false })));
    let (status, body) = server.api(Method::GET, "/auth/login", None, None).await.unwrap();
    assert_eq!(status, 404);
    assert!(body["message"].as_str().unwrap().contains("--oidc-issuer"), "{body}");
    let s = server.create_session("plain").await.unwrap();
    let (status, body) = server
        .api(
            Method::POST,
            &format!("/api/sessions/{}/links", s.id()),
            Some(&s.created.host_token),
            Some(json!({ "role": "writer", "for_user": "ada@example.test" })),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("no accounts"), "{body}");
}

#[tokio::test]
async fn a_browser_signs_in_creates_a_room_it_owns_and_others_see_its_verified_name() {
    let (_provider, server) = with_accounts().await;
    // Creating a room needs sign-in.
    let (status, body) = server
        .api(Method::POST, "/api/sessions", None, Some(json!({})))
        .await
        .unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(body["message"].as_str().unwrap().contains("sign in"), "{body}");

    let (browser, page) = browser_sign_in(&server.url, "ada").await.unwrap();
    assert_eq!(page.url().path(), "/auth/me", "back where the sign-in started");
    let me: Value = page.json().await.unwrap();
    assert_eq!(me["user"]["name"], "Ada Lovelace");
    assert_eq!(me["user"]["email"], "ada@example.test");
    // The session cookie is HttpOnly and SameSite=Lax, so the page itself never reads it.
    let created = browser
        .post(format!("{}/api/sessions", server.url))
        .json(&json!({ "name": "ada's" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let s = Session {
        created: created.json().await.unwrap(),
    };
    // The host's link of an owned room opens for its owner only.
    let (status, body) = upgrade(&server.ws_bare(&s), &s.created.host_token, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("sign in"), "{body}");

    // Ada's editor (signed in by the device flow) opens the room as its host, with the
    // provider's name whatever its hello says.
    let ada = device_sign_in(&server, "ada").await;
    let (host, hw) = join_as(&server, &s, &s.created.host_token, Some(&ada), "Mallory")
        .await
        .unwrap();
    assert_eq!(hw.name, "Ada Lovelace", "a hello cannot change a verified name");
    assert_eq!(hw.role, mesh_protocol::messages::Role::Host);
    // Someone without an account joins with the writer link, naming themselves Ada too.
    let (guest, gw) = join_as(&server, &s, &s.created.writer_token, None, "Ada Lovelace")
        .await
        .unwrap();
    assert_eq!(gw.name, "Ada Lovelace (2)", "nobody takes a name someone has");
    eventually_seen(&guest, "Ada verified and the guest not", |people| {
        people.iter().any(|p| p.name == "Ada Lovelace" && p.verified)
            && people.iter().any(|p| p.name == "Ada Lovelace (2)" && !p.verified)
    })
    .await;
    eventually_seen(&host, "the guest, unverified", |people| {
        people.iter().any(|p| p.name == "Ada Lovelace (2)" && !p.verified)
    })
    .await;
    // REST sees the same.
    let (status, info) = call(
        &server,
        Method::GET,
        &format!("/api/sessions/{}", s.id()),
        Some(&hw.seat_token),
        Some(&ada),
        None,
    )
    .await;
    assert_eq!(status, 200, "{info}");
    assert!(info["participants"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "Ada Lovelace" && p["verified"] == true));

    // Signing out ends the session: the cookie and the token open nothing any more.
    let out = browser
        .post(format!("{}/auth/logout", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let me: Value = browser
        .get(format!("{}/auth/me", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me, json!({ "accounts": true }));
    let (status, _) = call(&server, Method::POST, "/auth/logout", None, Some(&ada), None).await;
    assert_eq!(status, 204);
    let (status, body) = call(&server, Method::GET, "/auth/me", None, Some(&ada), None).await;
    assert_eq!(status, 401);
    assert!(body["message"].as_str().unwrap().contains("mesh-proxy login"), "{body}");
}

#[tokio::test]
async fn a_token_bound_to_a_user_is_refused_for_anyone_else() {
    let (_provider, server) = with_accounts().await;
    let (ada, bob) = tokio::join!(device_sign_in(&server, "ada"), device_sign_in(&server, "bob"));
    let s = own_room(&server, &ada).await;
    let (_host, hw) = join_as(&server, &s, &s.created.host_token, Some(&ada), "ada")
        .await
        .unwrap();
    // Bob, signed in, joins with the writer link: his seat token is bound to him.
    let (_b, bw) = join_as(&server, &s, &s.created.writer_token, Some(&bob), "bob")
        .await
        .unwrap();
    assert_eq!(bw.name, "Bob Builder");
    for (token, whose) in [(&hw.seat_token, "ada's seat"), (&bw.seat_token, "bob's seat")] {
        let other = if whose.starts_with("ada") { &bob } else { &ada };
        let (status, body) = upgrade(&server.ws_bare(&s), token, Some(other)).await;
        assert_eq!(status, 401, "{whose}: {body}");
        assert!(body.contains("another signed-in user"), "{whose}: {body}");
        let (status, body) = upgrade(&server.ws_bare(&s), token, None).await;
        assert_eq!(status, 401, "{whose}: {body}");
        assert!(body.contains("sign in as them"), "{whose}: {body}");
    }
    // The host link of Ada's room, shown by Bob.
    let (status, body) = upgrade(&server.ws_bare(&s), &s.created.host_token, Some(&bob)).await;
    assert_eq!(status, 401, "{body}");
    // REST refuses the same way.
    let (status, body) = call(
        &server,
        Method::GET,
        &format!("/api/sessions/{}/links", s.id()),
        Some(&hw.seat_token),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    // And the owner still gets in with each.
    assert_eq!(upgrade(&server.ws_bare(&s), &hw.seat_token, Some(&ada)).await.0, 101);
    assert_eq!(upgrade(&server.ws_bare(&s), &bw.seat_token, Some(&bob)).await.0, 101);
}

#[tokio::test]
async fn an_invitation_for_one_user_opens_for_them_only_and_a_kicked_user_stays_out() {
    let (_provider, server) = with_accounts().await;
    // Each waits for the provider's poll interval: sign the three in at once.
    let (ada, bob, carol) = tokio::join!(
        device_sign_in(&server, "ada"),
        device_sign_in(&server, "bob"),
        device_sign_in(&server, "carol")
    );
    let s = own_room(&server, &ada).await;
    let (host, hw) = join_as(&server, &s, &s.created.host_token, Some(&ada), "ada")
        .await
        .unwrap();
    let (status, link) = call(
        &server,
        Method::POST,
        &format!("/api/sessions/{}/links", s.id()),
        Some(&hw.seat_token),
        Some(&ada),
        Some(json!({ "role": "writer", "for_user": "Bob@Example.test" })),
    )
    .await;
    assert_eq!(status, 201, "{link}");
    assert_eq!(link["for_user"], "email:bob@example.test");
    let token = link["url"]
        .as_str()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap()
        .to_string();
    let (status, body) = upgrade(&server.ws_bare(&s), &token, Some(&carol)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("invitation for someone else"), "{body}");
    let (status, body) = upgrade(&server.ws_bare(&s), &token, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("sign in first"), "{body}");
    let (b, bw) = join_as(&server, &s, &token, Some(&bob), "whoever").await.unwrap();
    assert_eq!(
        (bw.name.as_str(), bw.role),
        ("Bob Builder", mesh_protocol::messages::Role::Writer)
    );
    // An invitation by subject works the same; carol has no `name`, so her username shows.
    let (_, link) = call(
        &server,
        Method::POST,
        &format!("/api/sessions/{}/links", s.id()),
        Some(&hw.seat_token),
        Some(&ada),
        Some(json!({ "role": "reader", "for_user": "carol" })),
    )
    .await;
    let token_c = link["url"]
        .as_str()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap()
        .to_string();
    let (_c, cw) = join_as(&server, &s, &token_c, Some(&carol), "x").await.unwrap();
    assert_eq!(cw.name, "carol");
    // Kicked, Bob cannot come back through an open writer link either: his seat is his.
    let kicked = host
        .request(7, mesh_protocol::ClientMessage::Kick { seat: bw.seat.clone() })
        .await
        .unwrap();
    assert!(matches!(kicked, ServerMessage::SeatKicked { .. }), "{kicked:?}");
    let deadline = tokio::time::Instant::now() + mesh_testkit::EVENT_TIMEOUT;
    while b.closed().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the kicked connection stayed open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = upgrade(&server.ws_bare(&s), &s.created.writer_token, Some(&bob)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("removed"), "{body}");
}

#[tokio::test]
async fn forged_expired_and_otherwise_spoiled_id_tokens_are_refused() {
    let (provider, server) = with_accounts().await;
    for mode in [
        "forged",
        "expired",
        "wrong_audience",
        "wrong_issuer",
        "wrong_nonce",
        "alg_none",
    ] {
        provider.spoil(Some(mode)).await.unwrap();
        let (browser, page) = browser_sign_in(&server.url, "ada").await.unwrap();
        assert_eq!(page.status(), 401, "{mode}: {}", page.url());
        let text = page.text().await.unwrap();
        assert!(text.contains("did not verify"), "{mode}: {text}");
        let me: Value = browser
            .get(format!("{}/auth/me", server.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me, json!({ "accounts": true }), "{mode}: no session");
    }
    // The device flow verifies the same way.
    provider.spoil(Some("expired")).await.unwrap();
    let (_, start) = server.api(Method::POST, "/auth/device", None, None).await.unwrap();
    let browser = mesh_testkit::oidc::browser();
    let page = browser
        .get(start["verification_uri_complete"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    log_in(&browser, page, "ada").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let (status, state) = server
            .api(
                Method::POST,
                "/auth/device/poll",
                None,
                Some(json!({ "handle": start["handle"] })),
            )
            .await
            .unwrap();
        if status != 200 {
            break state;
        }
        assert_ne!(state["state"], "done", "a spoiled ID token signed someone in");
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        refused["message"].as_str().unwrap().contains("did not verify"),
        "{refused}"
    );
    // With good tokens again, the same sign-in works: the refusals above were the tokens'.
    provider.spoil(None).await.unwrap();
    let (_, page) = browser_sign_in(&server.url, "ada").await.unwrap();
    assert_eq!(page.status(), 200);
    let me: Value = page.json().await.unwrap();
    assert_eq!(me["user"]["name"], "Ada Lovelace");
}

#[tokio::test]
async fn a_sign_in_that_comes_back_to_another_browser_is_refused() {
    let (_provider, server) = with_accounts().await;
    // The attacker starts a sign-in and completes it at the provider as themselves, but
    // hands the callback to a victim's browser (which never started it): refused.
    let attacker = mesh_testkit::oidc::browser();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let first = no_redirects
        .get(format!("{}/auth/login", server.url))
        .send()
        .await
        .unwrap();
    let to_provider = first.headers()["location"].to_str().unwrap().to_string();
    let page = attacker.get(&to_provider).send().await.unwrap();
    // The attacker's browser lacks the login cookie too; the provider still sends it back
    // to mesh's callback, where the state is not this browser's.
    let back = log_in(&attacker, page, "mallory").await.unwrap();
    assert_eq!(back.url().path(), "/auth/callback");
    assert_eq!(back.status(), 401);
    assert!(back.text().await.unwrap().contains("another browser"));
}

#[tokio::test]
async fn a_host_asked_to_admit_a_signed_in_joiner_sees_the_verified_name_not_the_claimed_one() {
    let (_provider, server) = with_accounts().await;
    let (ada, bob) = tokio::join!(device_sign_in(&server, "ada"), device_sign_in(&server, "bob"));
    let s = own_room(&server, &ada).await;
    let (host, _) = join_as(&server, &s, &s.created.host_token, Some(&ada), "ada")
        .await
        .unwrap();
    let on = host
        .request(3, mesh_protocol::ClientMessage::SetApproval { on: true })
        .await
        .unwrap();
    assert!(matches!(on, ServerMessage::ApprovalChanged { on: true, .. }), "{on:?}");
    // Bob says he is "the boss"; the host is asked about Bob Builder, verified.
    let bob_conn = YClient::connect_with(
        &server.ws_bare(&s),
        ConnectOptions {
            name: Some("the boss".into()),
            bearer: Some(s.created.writer_token.clone()),
            user_token: Some(bob),
            ..ConnectOptions::default()
        },
    )
    .await
    .unwrap();
    let ServerMessage::JoinRequest { name, verified, .. } = host
        .wait_mesh("bob's join request", |m| matches!(m, ServerMessage::JoinRequest { .. }))
        .await
        .unwrap()
    else {
        unreachable!()
    };
    assert_eq!((name.as_str(), verified), ("Bob Builder", true));
    drop(bob_conn);
}
