//! A real `mesh-server` child process on an ephemeral port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mesh_protocol::rest::CreatedSession;

use crate::process::{StopSignal, StoppedByPid};

/// How long the server may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the server may take to exit after SIGTERM (a drain included) before it is
/// killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The `mesh-server` binary: `$MESH_SERVER_BIN`, else the one cargo built beside the test.
pub fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MESH_SERVER_BIN") {
        return p.into();
    }
    // Test executables live in target/<profile>/deps; binaries in target/<profile>.
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    profile_dir.join("mesh-server")
}

/// A running server. Dropping it kills the process.
pub struct TestServer {
    child: Option<StoppedByPid>,
    data_dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The port it listens on (kept across restarts).
    pub port: u16,
    extra_args: Vec<String>,
    http: reqwest::Client,
}

/// A room created through the REST API.
#[derive(Debug, Clone)]
pub struct Session {
    /// What the server answered.
    pub created: CreatedSession,
}

impl Session {
    /// The room id as a string.
    pub fn id(&self) -> String {
        self.created.id.to_string()
    }
}

impl TestServer {
    /// Starts a server with a fresh data directory.
    pub fn start() -> anyhow::Result<TestServer> {
        Self::start_with(&[])
    }

    /// Starts a server with extra flags.
    pub fn start_with(args: &[&str]) -> anyhow::Result<TestServer> {
        let data_dir = tempfile::tempdir()?;
        let mut server = TestServer {
            child: None,
            data_dir,
            url: String::new(),
            port: 0,
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            http: reqwest::Client::new(),
        };
        server.spawn(0)?;
        Ok(server)
    }

    fn spawn(&mut self, port: u16) -> anyhow::Result<()> {
        let bin = server_bin();
        let mut child = Command::new(&bin)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .args(&self.extra_args)
            .env("MESH_LOG", std::env::var("MESH_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        // From here on a failed start stops the process rather than leaving it behind.
        let child = StoppedByPid::new(child, "mesh-server", StopSignal::Term, STOP_TIMEOUT);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let line = rx
            .recv_timeout(deadline - Instant::now())
            .context("server did not print its listening line")?;
        let Some(url) = line.strip_prefix("mesh-server listening on ") else {
            bail!("unexpected first line: {line}")
        };
        self.url = url.to_string();
        self.port = url.rsplit(':').next().and_then(|p| p.parse().ok()).context("port")?;
        self.child = Some(child);
        Ok(())
    }

    /// The data directory (kept across restarts).
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, StoppedByPid::id)
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(c) = self.child.take() {
            c.kill();
        }
    }

    /// SIGTERM, then wait for the exit; returns the exit status code.
    pub fn terminate(&mut self) -> anyhow::Result<Option<i32>> {
        let c = self.child.take().context("not running")?;
        Ok(c.stop()?.code())
    }

    /// Starts the server again on the same port and data directory.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9();
        let port = self.port;
        // The old socket may linger for a moment; retry the bind briefly.
        let mut last = None;
        for _ in 0..50 {
            match self.spawn(port) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("restart failed")))
    }

    /// A REST client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The server's Prometheus metrics, as text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(format!("{}/metrics", self.url))
            .send()
            .await?
            .text()
            .await?)
    }

    /// Creates a room.
    pub async fn create_session(&self, name: &str) -> anyhow::Result<Session> {
        let resp = self
            .http
            .post(format!("{}/api/sessions", self.url))
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("create session: {} {}", resp.status(), resp.text().await?);
        }
        Ok(Session {
            created: resp.json().await?,
        })
    }

    /// A REST call with an optional bearer token and JSON body: the status and the JSON
    /// answer (`null` when there is none).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)))
    }

    /// The room socket URL without a token (for a header or an `auth` message).
    pub fn ws_bare(&self, session: &Session) -> String {
        session.created.ws_url.clone()
    }

    /// The room socket URL with a token.
    pub fn ws_url(&self, session: &Session, token: &str) -> String {
        format!("{}?token={}", session.created.ws_url, token)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}
