//! The deployment, for real: the `Dockerfile` image and `compose.yaml`'s stack (two mesh
//! nodes on Postgres and Redis behind caddy with TLS), every image built here from Debian
//! packages. A client through the proxy creates a room and edits; every health check goes
//! healthy; then the node serving the room gets SIGTERM and drains: its clients are told to
//! reconnect (1012), reconnect through the proxy to a ready node, and every acknowledged
//! edit is there.
//!
//! Needs Docker, docker-compose and the Debian bases (`deploy/build-base-images`), which
//! `scripts/test` installs and builds; fails naming what is missing otherwise.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mesh_testkit::soak::{markers_in, type_marker};
use mesh_testkit::tls::{TestCa, Validity};
use mesh_testkit::{ConnectOptions, YClient};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio_rustls::TlsConnector;

/// A cold stack (Postgres initialising its cluster, every node connecting) is healthy well
/// within this on a small machine; a passing run never waits it out.
const HEALTHY_WITHIN: Duration = Duration::from_secs(180);

/// How long a reconnecting client keeps trying through the proxy (the draining node leaves
/// the rotation within a second or two).
const RECONNECT_WITHIN: Duration = Duration::from_secs(60);

/// A passing drain closes the room within the 3 s grace plus the rooms' last writes.
const DRAIN_WITHIN: Duration = Duration::from_secs(30);

/// How often the typist types a marker.
const KEYSTROKE_GAP: Duration = Duration::from_millis(25);

/// The file the typist types into.
const FILE: &str = "notes.md";

/// The typist's name in its markers.
const WHO: &str = "m";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A compose project of this test run, taken down (volumes and the run's server image
/// included) when dropped.
struct Stack {
    project: String,
    env: Vec<(String, String)>,
    image: String,
}

impl Stack {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker-compose");
        c.current_dir(repo_root())
            .args(["--project-name", &self.project, "--file", "compose.yaml"])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null());
        c
    }

    /// Runs docker-compose; its output, or a panic that shows it.
    async fn run(&self, args: &[&str]) -> String {
        let out = self.command(args).output().await.expect("docker-compose runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "docker-compose {args:?} failed:\n{text}");
        text
    }

    /// Every container of the stack with its health (`healthy`, `starting`, ...).
    async fn health(&self) -> Vec<(String, String)> {
        let ids = self.run(&["ps", "-q"]).await;
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if ids.is_empty() {
            return Vec::new();
        }
        let out = Command::new("docker")
            .arg("inspect")
            .arg("--format")
            .arg("{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}")
            .args(&ids)
            .output()
            .await
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(n, h)| (n.to_string(), h.to_string())))
            .collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::env::var_os("MESH_KEEP_STACK").is_some() {
            eprintln!("MESH_KEEP_STACK: leaving compose project {} running", self.project);
            return;
        }
        let _ = std::process::Command::new("docker-compose")
            .current_dir(repo_root())
            .args(["--project-name", &self.project, "--file", "compose.yaml"])
            .args(["down", "--volumes", "--remove-orphans", "--timeout", "10"])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::process::Command::new("docker")
            .args(["image", "rm", &self.image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The client side of the proxy's TLS: trusts the test CA only.
struct Front {
    port: u16,
    tls: TlsConnector,
    http: reqwest::Client,
}

impl Front {
    fn new(ca: &TestCa, port: u16) -> Front {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
            .resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Front {
            port,
            tls: TlsConnector::from(Arc::new(config)),
            http,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// A room socket through the proxy, over TLS, as a mesh client.
    async fn join(&self, ws_url: &str, name: &str) -> anyhow::Result<YClient> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await?;
        let tls = self
            .tls
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await?;
        let options = ConnectOptions {
            name: Some(name.into()),
            ..ConnectOptions::default()
        };
        let c = YClient::connect_over(tls, ws_url, options).await?;
        c.wait_synced().await?;
        Ok(c)
    }
}

fn random_hex() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server binary the tests run, stripped into the image's build context.
fn stage_server_binary() {
    let bin = mesh_testkit::server::server_bin();
    let stage = repo_root().join("deploy/stage");
    std::fs::create_dir_all(&stage).unwrap();
    let staged = stage.join("mesh-server.new");
    let out = std::process::Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&staged)
        .arg(&bin)
        .output()
        .expect("strip (binutils) is installed");
    assert!(
        out.status.success(),
        "strip {}: {}",
        bin.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&staged, stage.join("mesh-server")).unwrap();
}

/// Whether a node's log says it loaded `room` (a room is loaded where its people are).
fn loaded(logs: &str, room: &str) -> bool {
    logs.lines().any(|l| l.contains("room loaded") && l.contains(room))
}

fn require(tool: &str, args: &[&str], hint: &str) {
    let ok = std::process::Command::new(tool)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{tool} is missing or not working: {hint}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_stack_serves_rooms_through_tls_and_a_drained_node_loses_nothing() {
    require("docker", &["version"], "scripts/install-docker starts it");
    require(
        "docker-compose",
        &["version"],
        "scripts/test installs Debian's docker-compose",
    );
    for base in ["debian", "postgres", "redis", "caddy"] {
        require(
            "docker",
            &["image", "inspect", &format!("mesh-base/{base}:bookworm")],
            "deploy/build-base-images builds the Debian bases (scripts/test runs it)",
        );
    }

    // The proxy's certificate, from a throwaway CA the clients trust.
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let ca = TestCa::new("mesh deploy test CA").unwrap();
    let cert = ca
        .issue(&certs, "cert", &["localhost", "127.0.0.1"], Validity::Current)
        .unwrap();
    std::fs::rename(&cert.key, certs.join("key.pem")).unwrap();
    // The proxy runs as its own user in its container: the test key must be readable there.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(certs.join("key.pem"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&certs, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let port = free_port();
    let run = format!("{}{}", std::process::id(), &random_hex()[..6]);
    // A subnet of its own, so two runs (or a stack someone left) do not collide.
    let subnet = format!("172.30.{}.0/24", 100 + rand::random::<u8>() % 150);
    let stack = Stack {
        project: format!("meshdeploy{run}"),
        image: format!("mesh/server:test-{run}"),
        env: vec![
            ("MESH_PG_PASSWORD".into(), random_hex()),
            ("MESH_REDIS_PASSWORD".into(), random_hex()),
            ("MESH_HTTPS_ADDR".into(), "127.0.0.1".into()),
            ("MESH_HTTPS_PORT".into(), port.to_string()),
            ("MESH_PUBLIC_URL".into(), format!("https://localhost:{port}")),
            ("MESH_TLS_DIR".into(), certs.display().to_string()),
            ("MESH_SUBNET".into(), subnet),
            ("MESH_IMAGE_TAG".into(), format!("test-{run}")),
        ],
    };

    // Build every image (cached layers make a second run quick), then start the stack.
    stage_server_binary();
    let t0 = Instant::now();
    stack.run(&["build"]).await;
    let built = t0.elapsed();
    let t1 = Instant::now();
    stack.run(&["up", "--detach"]).await;
    loop {
        let health = stack.health().await;
        if health.len() == 5 && health.iter().all(|(_, h)| h == "healthy") {
            break;
        }
        if t1.elapsed() > HEALTHY_WITHIN {
            let logs = stack.run(&["logs", "--no-color", "--tail", "40"]).await;
            panic!("the stack is not healthy after {HEALTHY_WITHIN:?}: {health:?}\n{logs}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let healthy = t1.elapsed();
    println!("images built in {built:?}; five containers healthy {healthy:?} after up");

    // Through the proxy, over TLS: ready, a room, two people editing.
    let front = Front::new(&ca, port);
    let ready = front.http.get(front.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert!(ready.text().await.unwrap().contains("ok"));
    let created: serde_json::Value = front
        .http
        .post(front.url("/api/sessions"))
        .json(&serde_json::json!({ "name": "deployed" }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let ws_url = format!(
        "{}?token={}",
        created["ws_url"].as_str().unwrap(),
        created["writer_token"].as_str().unwrap()
    );
    assert!(ws_url.starts_with(&format!("wss://localhost:{port}/ws/")), "{ws_url}");
    let typist = front.join(&ws_url, "typist").await.unwrap();
    let observer = front.join(&ws_url, "observer").await.unwrap();
    let mut typed = 0usize;
    for _ in 0..20 {
        type_marker(&typist, FILE, WHO, &mut typed);
        tokio::time::sleep(KEYSTROKE_GAP).await;
    }
    observer
        .wait_for("the first edits through the proxy", |c| {
            markers_in(&c.text(FILE).unwrap_or_default(), WHO, typed).len() == 20
        })
        .await
        .unwrap();

    // SIGTERM the node that serves the room, typing all along. The proxy puts everyone on
    // the first node it finds ready: mesh1, unless its first health check came too early.
    let room = ws_url
        .split("/ws/")
        .nth(1)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let mut serving = Vec::new();
    for node in ["mesh1", "mesh2"] {
        if loaded(&stack.run(&["logs", "--no-color", node]).await, &room) {
            serving.push(node);
        }
    }
    assert_eq!(serving.len(), 1, "one node serves the room's people: {serving:?}");
    let (node, other) = match serving[0] {
        "mesh1" => ("mesh1", "mesh2"),
        _ => ("mesh2", "mesh1"),
    };
    let drain_at = Instant::now();
    stack.run(&["kill", "-s", "SIGTERM", node]).await;
    while typist.closed().is_none() {
        assert!(
            drain_at.elapsed() < DRAIN_WITHIN,
            "the drained node never closed the room"
        );
        type_marker(&typist, FILE, WHO, &mut typed);
        tokio::time::sleep(KEYSTROKE_GAP).await;
    }
    let closed_after = drain_at.elapsed();
    let (code, reason) = typist.closed().unwrap();
    assert_eq!(code, 1012, "the drained node tells clients to reconnect: {reason}");
    assert_eq!(observer.wait_closed().await.unwrap().0, 1012);
    let acked = markers_in(&observer.text(FILE).unwrap_or_default(), WHO, typed);
    assert!(acked.len() >= 20, "{acked:?}");

    // Reconnect through the proxy, as clients do (a refusal from the draining node or a
    // moment with no ready node is retried), and find every acknowledged edit, once.
    let t2 = Instant::now();
    let moved = loop {
        match front.join(&ws_url, "typist again").await {
            Ok(c) => break c,
            Err(e) => {
                assert!(
                    t2.elapsed() < RECONNECT_WITHIN,
                    "cannot reconnect through the proxy: {e:#}"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    let reconnected = t2.elapsed();
    // `markers_in` fails on a marker that is there twice.
    let there = markers_in(&moved.text(FILE).unwrap(), WHO, typed);
    for m in &acked {
        assert!(there.contains(m), "acknowledged marker {m} is missing after the drain");
    }
    // The room goes on: an edit after the move is served.
    type_marker(&moved, FILE, WHO, &mut typed);
    let last = typed - 1;
    let check = front.join(&ws_url, "checker").await.unwrap();
    check
        .wait_for("the edit after the move", |c| {
            markers_in(&c.text(FILE).unwrap_or_default(), WHO, typed).contains(&last)
        })
        .await
        .unwrap();

    // The node drained and stopped cleanly (its log says so), and the other one took the
    // room over.
    let logs = stack.run(&["logs", "--no-color", node]).await;
    assert!(logs.contains("draining"), "{logs}");
    assert!(logs.contains("stopped"), "{logs}");
    let logs = stack.run(&["logs", "--no-color", other]).await;
    assert!(loaded(&logs, &room), "{other} never loaded the room:\n{logs}");
    println!(
        "drain of {node}: {typed} markers typed, {} acknowledged before the close; room closed {closed_after:?} after SIGTERM; \
         reconnected through the proxy (to {other}) in {reconnected:?}",
        acked.len()
    );
}
