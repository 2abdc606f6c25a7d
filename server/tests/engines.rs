//! Several Docker engines (`--docker-host`): each sandbox goes to the least loaded engine
//! that answers. Against real Docker and the local images: the local socket, a socket
//! nobody serves, and a remote engine over mutual TLS (a TLS front with client-certificate
//! checks before the real engine, as `dockerd --tlsverify` serves one).

use std::path::Path;

use mesh_protocol::messages::RunStream;
use mesh_protocol::{ClientMessage, ServerMessage};
use mesh_testkit::docker_tls::DockerTlsFront;
use mesh_testkit::{TestServer, YClient};

/// What a client has seen of a run's stdout.
fn stdout(c: &YClient, run: &str) -> String {
    c.run_output(run, RunStream::Stdout)
}

async fn run(c: &YClient, path: &str) -> String {
    let before = c.mesh_messages().len();
    c.send_mesh(&ClientMessage::Run {
        path: path.into(),
        language: None,
    });
    c.wait_for("the run's start", |c| {
        c.mesh_messages()[before..]
            .iter()
            .any(|m| matches!(m, ServerMessage::RunStarted { .. }))
    })
    .await
    .unwrap();
    c.mesh_messages()[before..]
        .iter()
        .find_map(|m| match m {
            ServerMessage::RunStarted { run_id, .. } => Some(run_id.clone()),
            _ => None,
        })
        .unwrap()
}

/// The engine's gauge of this server's sandboxes on it.
async fn on_engine(server: &TestServer, engine: &str) -> f64 {
    let text = server.metrics().await.unwrap();
    let line = format!("mesh_engine_sandboxes{{engine=\"{engine}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxes_go_to_the_least_loaded_engine_that_answers() {
    let socket = "/var/run/docker.sock";
    let front = DockerTlsFront::start(Path::new(socket)).await.unwrap();
    let engines = format!("unix:///nonexistent/docker.sock,unix://{socket},{}", front.url);
    let server = TestServer::start_with(&[
        "--run-images",
        "local",
        "--docker-host",
        &engines,
        "--docker-tls-dir",
        front.client_certs.to_str().unwrap(),
    ])
    .unwrap();
    let s = server.create_session("engines").await.unwrap();
    let url = server.ws_url(&s, &s.created.writer_token);
    let ada = YClient::connect_mesh(&url, "ada").await.unwrap();
    let bob = YClient::connect_mesh(&url, "bob").await.unwrap();
    ada.wait_synced().await.unwrap();
    ada.insert("spin.py", 0, "print('spinning', flush=True)\nwhile True:\n    pass\n");
    bob.wait_for("the file", |c| c.text("spin.py").is_some()).await.unwrap();

    // The first run: the socket nobody serves is passed over, the local engine takes it.
    let first = run(&ada, "spin.py").await;
    ada.wait_for("the first spins", |c| stdout(c, &first) == "spinning\n")
        .await
        .unwrap();
    let local = format!("1 unix://{socket}");
    let remote = format!("2 {}", front.url);
    assert_eq!(on_engine(&server, &local).await, 1.0);
    assert_eq!(on_engine(&server, &remote).await, 0.0);

    // The second goes to the least loaded engine that answers: the remote one, over TLS.
    let second = run(&bob, "spin.py").await;
    bob.wait_for("the second spins", |c| stdout(c, &second) == "spinning\n")
        .await
        .unwrap();
    assert_eq!(on_engine(&server, &local).await, 1.0);
    assert_eq!(on_engine(&server, &remote).await, 1.0);
    assert!(
        front.accepted() > 0,
        "the remote engine was reached through its TLS front"
    );

    // Stopped, both are counted off their engines.
    ada.send_mesh(&ClientMessage::Stop { run_id: first.clone() });
    bob.send_mesh(&ClientMessage::Stop { run_id: second.clone() });
    for (c, id) in [(&ada, &first), (&bob, &second)] {
        c.wait_mesh(
            "the stop",
            |m| matches!(m, ServerMessage::RunExited { run_id, .. } if run_id == id),
        )
        .await
        .unwrap();
    }
    let settled = std::time::Instant::now();
    while on_engine(&server, &local).await + on_engine(&server, &remote).await > 0.0 {
        assert!(
            settled.elapsed() < std::time::Duration::from_secs(20),
            "sandboxes still counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_engine_without_the_right_certificate_is_refused() {
    let front = DockerTlsFront::start(Path::new("/var/run/docker.sock")).await.unwrap();
    // Certificates of another CA: the front refuses the handshake, the run says why.
    let other = DockerTlsFront::start(Path::new("/var/run/docker.sock")).await.unwrap();
    let server = TestServer::start_with(&[
        "--run-images",
        "local",
        "--docker-host",
        &front.url,
        "--docker-tls-dir",
        other.client_certs.to_str().unwrap(),
    ])
    .unwrap();
    let s = server.create_session("wrong certificate").await.unwrap();
    let ada = YClient::connect_mesh(&server.ws_url(&s, &s.created.writer_token), "ada")
        .await
        .unwrap();
    ada.wait_synced().await.unwrap();
    ada.insert("hi.py", 0, "print('hi')\n");
    let id = run(&ada, "hi.py").await;
    let end = ada
        .wait_mesh(
            "the failure",
            |m| matches!(m, ServerMessage::RunExited { run_id, .. } if *run_id == id),
        )
        .await
        .unwrap();
    assert!(
        matches!(&end, ServerMessage::RunExited { error: Some(e), .. } if e.contains("could not start")),
        "{end:?}"
    );
    assert_eq!(front.accepted(), 0, "no handshake passed without the CA's certificate");
}
