//! The REST API against a real server: every endpoint's reply, snapshot-tested (ids, tokens
//! and times redacted), and the OpenAPI document.

use mesh_testkit::{TestServer, YClient};
use serde_json::Value;

async fn get(server: &TestServer, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = server.http().get(format!("{}{path}", server.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn rest_replies() {
    let server = TestServer::start().unwrap();
    let resp = server
        .http()
        .post(format!("{}/api/sessions", server.url))
        .json(&serde_json::json!({"name": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    insta::assert_json_snapshot!("create", created, {
        ".id" => "[id]", ".join_link" => "[link]", ".read_link" => "[link]", ".ws_url" => "[ws]",
        ".host_token" => "[token]", ".writer_token" => "[token]", ".reader_token" => "[token]",
    });
    let id = created["id"].as_str().unwrap().to_string();
    let writer = created["writer_token"].as_str().unwrap().to_string();
    assert!(created["join_link"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/join/{id}?token={writer}")));

    let c = YClient::connect_mesh(
        &format!("{}?token={writer}", created["ws_url"].as_str().unwrap()),
        "ada",
    )
    .await
    .unwrap();
    c.wait_mesh("welcome", |m| matches!(m, mesh_protocol::ServerMessage::Welcome { .. }))
        .await
        .unwrap();
    c.insert("src/main.py", 0, "print('hi 👋')\n");
    c.insert("README.md", 0, "# demo\n");
    let reader = created["reader_token"].as_str().unwrap();
    let mut info = Value::Null;
    // The edits travel asynchronously; wait until the server reports both files.
    for _ in 0..200 {
        let (status, body) = get(&server, &format!("/api/sessions/{id}"), Some(reader)).await;
        assert_eq!(status, 200);
        if body["files"]
            .as_array()
            .is_some_and(|f| f.len() == 2 && f[1]["len_utf16"] == 15)
        {
            info = body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    insta::assert_json_snapshot!("info", info, { ".id" => "[id]", ".created_at" => "[time]", ".participants[].conn_id" => "[conn]", ".participants[].doc_client_id" => "[client]", ".participants[].seat" => "[seat]", ".participants[].link" => "[link]" });

    let (status, list) = get(&server, "/api/sessions", None).await;
    assert_eq!(status, 200);
    insta::assert_json_snapshot!("list", list, { "[].id" => "[id]", "[].created_at" => "[time]" });

    insta::assert_json_snapshot!("languages", get(&server, "/api/languages", None).await);
    insta::assert_json_snapshot!("livez", get(&server, "/livez", None).await);
    insta::assert_json_snapshot!("readyz", get(&server, "/readyz", None).await);

    // Errors name the problem.
    insta::assert_json_snapshot!("bad_id", get(&server, "/api/sessions/nope", Some(reader)).await);
    insta::assert_json_snapshot!("no_token", get(&server, &format!("/api/sessions/{id}"), None).await);
    let missing = mesh_protocol::RoomId::random();
    let resp = server
        .http()
        .post(format!("{}/api/sessions", server.url))
        .body("{\"name\": 5}")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    insta::assert_json_snapshot!("wrong_shape", (status, resp.json::<Value>().await.unwrap()));
    let resp = server
        .http()
        .post(format!("{}/api/sessions", server.url))
        .json(&serde_json::json!({"name": "x".repeat(101)}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    insta::assert_json_snapshot!("long_name", (status, resp.json::<Value>().await.unwrap()));
    let (status, _) = get(&server, &format!("/api/sessions/{missing}"), Some(reader)).await;
    assert_eq!(status, 401, "a token of one room opens no other");

    let metrics = server.metrics().await.unwrap();
    assert!(metrics.contains("mesh_rooms_created_total"), "{metrics}");
    assert!(metrics.contains("mesh_updates_total"), "{metrics}");
}

#[tokio::test]
async fn listing_needs_the_admin_token_when_one_is_set() {
    let server = TestServer::start_with(&["--admin-token", "s3cret-admin"]).unwrap();
    server.create_session("a").await.unwrap();
    assert_eq!(get(&server, "/api/sessions", None).await.0, 401);
    assert_eq!(get(&server, "/api/sessions", Some("wrong")).await.0, 401);
    let (status, list) = get(&server, "/api/sessions", Some("s3cret-admin")).await;
    assert_eq!((status, list.as_array().map(Vec::len)), (200, Some(1)));
}

#[tokio::test]
async fn openapi_document() {
    let server = TestServer::start().unwrap();
    let (status, doc) = get(&server, "/api/openapi.json", None).await;
    assert_eq!(status, 200);
    insta::assert_json_snapshot!("openapi", doc, { ".info.version" => "[version]" });
}

#[tokio::test]
async fn a_config_file_sets_what_flags_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mesh.toml");
    std::fs::write(
        &config,
        "admin_token = \"from-the-file\"\npublic_url = \"https://mesh.example/\"\n",
    )
    .unwrap();
    let server = TestServer::start_with(&["--config", config.to_str().unwrap()]).unwrap();
    assert_eq!(get(&server, "/api/sessions", None).await.0, 401);
    assert_eq!(get(&server, "/api/sessions", Some("from-the-file")).await.0, 200);
    let created = server.create_session("cfg").await.unwrap();
    assert!(
        created.created.join_link.starts_with("https://mesh.example/join/"),
        "{}",
        created.created.join_link
    );
    // A flag beats the file.
    let server =
        TestServer::start_with(&["--config", config.to_str().unwrap(), "--admin-token", "from-the-flag"]).unwrap();
    assert_eq!(get(&server, "/api/sessions", Some("from-the-file")).await.0, 401);
    assert_eq!(get(&server, "/api/sessions", Some("from-the-flag")).await.0, 200);
    // A bad file is a clear startup error.
    std::fs::write(&config, "listen = 12\n").unwrap();
    let err = TestServer::start_with(&["--config", config.to_str().unwrap()])
        .err()
        .expect("refused");
    assert!(err.to_string().contains("listening line"), "{err}");
}
