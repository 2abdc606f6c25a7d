//! `mesh-proxy` through real TLS: a `mesh-server` terminating TLS with a certificate from a
//! test CA, and real `mesh-proxy share`/`join`/`status` processes. With the CA passed as
//! `--ca-file` (or `MESH_CA_FILE`) a folder is shared and joined and edits travel; without
//! it, with another CA, for another name or with an expired certificate, the proxy stops at
//! once with a sentence that names the problem and what to do, instead of retrying.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use mesh_testkit::cli::{eventually, proxy_command as command, read, ProxyCli};
use mesh_testkit::tls::{ServerCert, TestCa, Validity};
use mesh_testkit::TestServer;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn cli(server: &str, state: &Path, args: &[&str]) -> ProxyCli {
    ProxyCli::start(server, state, args)
}

/// How long a refused proxy may take to give up. A retry loop never ends; an honest failure
/// takes one handshake.
const FAILS_WITHIN: Duration = Duration::from_secs(15);

/// Runs a command that must fail: returns its stderr, after checking it exited non-zero
/// within [`FAILS_WITHIN`].
async fn fails(server: &str, state: &Path, args: &[&str]) -> String {
    let child = command(server, state, args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(FAILS_WITHIN, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("mesh-proxy {args:?} kept trying instead of failing"))
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "mesh-proxy {args:?} succeeded: {stderr}");
    stderr
}

fn tls_server(cert: &ServerCert) -> TestServer {
    let (c, k) = (cert.cert.to_str().unwrap(), cert.key.to_str().unwrap());
    TestServer::start_with(&["--tls-cert", c, "--tls-key", k]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_is_shared_and_joined_through_tls_with_the_test_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("mesh test CA").unwrap();
    let ca_file = ca.write(tmp.path(), "ca.pem").unwrap();
    let cert = ca
        .issue(tmp.path(), "server", &["localhost", "127.0.0.1"], Validity::Current)
        .unwrap();
    let server = tls_server(&cert);
    assert!(server.url.starts_with("https://"), "{}", server.url);

    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::write(a.join("notes.md"), "# over TLS\n").unwrap();
    let ca_arg = ca_file.to_str().unwrap();

    // The flag on one side, the variable on the other: both reach the same setting.
    let mut share = cli(
        &server.url,
        &tmp.path().join("state-a"),
        &["share", a.to_str().unwrap(), "--ca-file", ca_arg],
    );
    let link = share.line_starting("Join link").await;
    let link = link.rsplit(' ').next().unwrap().to_string();
    assert!(
        link.starts_with("https://"),
        "a TLS server's links say https://: {link}"
    );

    let mut join_cmd = command(
        &server.url,
        &tmp.path().join("state-b"),
        &["join", &link, b.to_str().unwrap()],
    );
    join_cmd.env("MESH_CA_FILE", &ca_file);
    let mut join = ProxyCli::spawn(join_cmd);
    let joined = join.line_starting("Joined").await;
    assert!(joined.contains("(1 files)"), "{joined}");
    assert_eq!(read(b.join("notes.md")).as_deref(), Some("# over TLS\n"));

    // Edits travel both ways over wss://. (A round trip first: an edit on the joining side
    // in the first moments after "Joined" is a loss path of its own, not TLS's.)
    std::fs::write(a.join("new.txt"), "from a\n").unwrap();
    eventually("a's new file on b", || {
        read(b.join("new.txt")).as_deref() == Some("from a\n")
    })
    .await;
    std::fs::write(b.join("notes.md"), "# over TLS\nfrom b\n").unwrap();
    eventually("b's edit on a", || {
        read(a.join("notes.md")).as_deref() == Some("# over TLS\nfrom b\n")
    })
    .await;

    // REST over https:// with the same trust: status sees the room and both people.
    let out = command(
        &server.url,
        &tmp.path().join("state-b"),
        &["status", b.to_str().unwrap(), "--ca-file", ca_arg],
    )
    .stdout(Stdio::piped())
    .output()
    .await
    .unwrap();
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains("People:  2"), "{status}");

    share.stop().await;
    join.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_right_ca_the_proxy_stops_at_once_and_says_to_pass_ca_file() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("mesh test CA").unwrap();
    let ca_file = ca.write(tmp.path(), "ca.pem").unwrap();
    let other = TestCa::new("someone else's CA").unwrap();
    let other_file = other.write(tmp.path(), "other.pem").unwrap();
    let cert = ca
        .issue(tmp.path(), "server", &["127.0.0.1"], Validity::Current)
        .unwrap();
    let server = tls_server(&cert);
    let state = tmp.path().join("state");

    // A room to try to join, made by a proxy that trusts the CA.
    let a = tmp.path().join("a");
    std::fs::create_dir_all(&a).unwrap();
    let mut share = cli(
        &server.url,
        &tmp.path().join("state-a"),
        &["share", a.to_str().unwrap(), "--ca-file", ca_file.to_str().unwrap()],
    );
    let link = share.line_starting("Join link").await;
    let link = link.rsplit(' ').next().unwrap().to_string();
    let b = tmp.path().join("b");
    let b = b.to_str().unwrap();

    // The room socket (wss://), trusting only the system's roots.
    let said = fails(&server.url, &state, &["join", &link, b]).await;
    assert!(said.contains("unknown issuer") && said.contains("--ca-file"), "{said}");
    // With another CA: the message names the file that did not help.
    let said = fails(
        &server.url,
        &state,
        &["join", &link, b, "--ca-file", other_file.to_str().unwrap()],
    )
    .await;
    assert!(said.contains("unknown issuer") && said.contains("other.pem"), "{said}");
    // REST (https://): sharing fails the same way.
    let said = fails(&server.url, &state, &["share", b]).await;
    assert!(said.contains("unknown issuer") && said.contains("--ca-file"), "{said}");
    // A CA file that is not one is refused before anything is sent.
    let junk = tmp.path().join("junk.pem");
    std::fs::write(&junk, "hello").unwrap();
    let said = fails(
        &server.url,
        &state,
        &["join", &link, b, "--ca-file", junk.to_str().unwrap()],
    )
    .await;
    assert!(
        said.contains("junk.pem") && said.contains("BEGIN CERTIFICATE"),
        "{said}"
    );

    share.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_or_an_expired_one_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("mesh test CA").unwrap();
    let ca_file = ca.write(tmp.path(), "ca.pem").unwrap();
    let ca_arg = ca_file.to_str().unwrap();
    let dir = tmp.path().join("b");
    let dir = dir.to_str().unwrap();

    let elsewhere = ca
        .issue(tmp.path(), "elsewhere", &["mesh.example.org"], Validity::Current)
        .unwrap();
    let server = tls_server(&elsewhere);
    let said = fails(
        &server.url,
        &tmp.path().join("s1"),
        &["share", dir, "--ca-file", ca_arg],
    )
    .await;
    assert!(said.contains("name mismatch; it names mesh.example.org)"), "{said}");
    drop(server);

    let expired = ca
        .issue(tmp.path(), "expired", &["127.0.0.1"], Validity::Expired)
        .unwrap();
    let server = tls_server(&expired);
    let said = fails(
        &server.url,
        &tmp.path().join("s2"),
        &["share", dir, "--ca-file", ca_arg],
    )
    .await;
    assert!(said.contains("expired") && said.contains("renew"), "{said}");
}

/// Debian's caddy terminating TLS in front of a plain mesh-server, as the README's
/// deployment recipe has it. Killed when dropped.
struct Caddy {
    _child: Child,
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Caddy {
    /// Starts caddy on `port` with `cert`, proxying to `upstream`; returns once it says it
    /// serves its configuration.
    async fn start(dir: &Path, port: u16, cert: &ServerCert, upstream: u16) -> Caddy {
        let found = std::process::Command::new("caddy").arg("version").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "caddy is missing: this test runs the README's reverse-proxy recipe through Debian's caddy; \
             scripts/test installs it (or: apt-get install caddy)"
        );
        // The recipe's site block, with the test CA's certificate instead of an ACME one
        // (no network here) and nothing written outside the test's folder.
        let caddyfile = dir.join("Caddyfile");
        std::fs::write(
            &caddyfile,
            format!(
                "{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {storage}\n}}\n\n\
                 https://localhost:{port} {{\n\ttls {cert} {key}\n\treverse_proxy 127.0.0.1:{upstream}\n}}\n",
                storage = dir.join("caddy-data").display(),
                cert = cert.cert.display(),
                key = cert.key.display(),
            ),
        )
        .unwrap();
        let mut child = Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&caddyfile)
            .env("HOME", dir)
            .env("XDG_DATA_HOME", dir.join("xdg-data"))
            .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = log.next_line().await.unwrap() {
                if line.contains("serving initial configuration") {
                    return;
                }
                assert!(!line.contains("\"level\":\"error\""), "caddy: {line}");
            }
            panic!("caddy exited before serving");
        });
        ready.await.expect("caddy did not start within 20 s");
        // Keep draining its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });
        Caddy { _child: child }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_reverse_proxy_recipe_works_through_caddy() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("mesh test CA").unwrap();
    let ca_file = ca.write(tmp.path(), "ca.pem").unwrap();
    let ca_arg = ca_file.to_str().unwrap();
    let cert = ca
        .issue(tmp.path(), "proxy", &["localhost"], Validity::Current)
        .unwrap();
    // The recipe: a plain server on loopback that knows its public URL and its proxy.
    let port = free_port();
    let public = format!("https://localhost:{port}");
    let server = TestServer::start_with(&["--public-url", &public, "--trusted-proxy", "127.0.0.1"]).unwrap();
    let _caddy = Caddy::start(tmp.path(), port, &cert, server.port).await;

    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::write(a.join("main.py"), "print('behind caddy')\n").unwrap();
    let mut share = cli(
        &public,
        &tmp.path().join("state-a"),
        &["share", a.to_str().unwrap(), "--ca-file", ca_arg],
    );
    let link = share.line_starting("Join link").await;
    let link = link.rsplit(' ').next().unwrap().to_string();
    assert!(link.starts_with(&format!("{public}/join/")), "{link}");
    let mut join = cli(
        &public,
        &tmp.path().join("state-b"),
        &["join", &link, b.to_str().unwrap(), "--ca-file", ca_arg],
    );
    join.line_starting("Joined").await;
    assert_eq!(read(b.join("main.py")).as_deref(), Some("print('behind caddy')\n"));
    std::fs::write(a.join("second.py"), "x = 1\n").unwrap();
    eventually("a's new file on b through caddy", || {
        read(b.join("second.py")).as_deref() == Some("x = 1\n")
    })
    .await;
    std::fs::write(b.join("main.py"), "print('edited behind caddy')\n").unwrap();
    eventually("b's edit on a through caddy", || {
        read(a.join("main.py")).as_deref() == Some("print('edited behind caddy')\n")
    })
    .await;

    // Without the CA, the same link fails at once, naming the problem.
    let said = fails(
        &public,
        &tmp.path().join("state-c"),
        &["join", &link, tmp.path().join("c").to_str().unwrap()],
    )
    .await;
    assert!(said.contains("unknown issuer") && said.contains("--ca-file"), "{said}");
    share.stop().await;
    join.stop().await;
}
