//! The servers under test: how to start each one on a loopback port, how to open rooms on
//! it, and a guard that kills it when the run ends, fails or panics.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use mesh_protocol::rest::CreateSession;
use mesh_protocol::RoomId;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::{sleep, timeout};

use crate::procstat::{self, Memory};
use crate::wire::Framing;

/// Time a server gets from spawn to accepting connections: mesh opens its database and
/// node loads its modules, both well under this on an idle machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a killed server to exit.
const KILL_WAIT: Duration = Duration::from_secs(2);
/// Interval between two checks whether a killed server has exited.
const KILL_POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Interval between two checks whether a node server accepts connections.
const PORT_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Time allowed for one room-creation request.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Rooms the bench may create at once: its largest run has one client in each of 1,000
/// rooms.
const BENCH_ROOM_BURST: u32 = 1000;
/// Most connections one bench run opens (the idle-connection figure is taken at 5,000).
pub const MAX_BENCH_CONNECTIONS: usize = 10_000;
/// Connections mesh allows the bench beyond its clients: the seeding and checking clients
/// of a join storm.
const CONNECTION_SLACK: usize = 16;

/// What mesh-server prints on stdout once it accepts connections; the URL follows.
const MESH_READY_PREFIX: &str = "mesh-server listening on http://";
/// Lines of a server's log quoted when it fails to start.
const LOG_TAIL_LINES: usize = 20;
/// The Hocuspocus server: the package's default server with nothing configured but the
/// address, so no extension (storage, logging) adds work the others do not do.
const HOCUSPOCUS_SCRIPT: &str = "import { Server } from '@hocuspocus/server';\n\
    Server.configure({ address: '127.0.0.1', port: Number(process.env.PORT), quiet: true });\n\
    await Server.listen();\n";
/// The y-websocket server script, relative to the JS directory.
const Y_WEBSOCKET_SCRIPT: &str = "node_modules/@y/websocket-server/src/server.js";
/// The Hocuspocus package directory, relative to the JS directory (checked before start).
const HOCUSPOCUS_PACKAGE: &str = "node_modules/@hocuspocus/server";

/// A server implementation the bench can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServerKind {
    /// This project's `mesh-server`.
    Mesh,
    /// The reference Node server of y-websocket (`@y/websocket-server`).
    #[value(name = "y-websocket")]
    YWebsocket,
    /// `@hocuspocus/server` with its default configuration.
    Hocuspocus,
}

impl ServerKind {
    /// The name used in flags, tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Mesh => "mesh",
            ServerKind::YWebsocket => "y-websocket",
            ServerKind::Hocuspocus => "hocuspocus",
        }
    }
}

/// Where the servers' programs are.
#[derive(Debug, Clone)]
pub struct Programs {
    /// The `mesh-server` binary.
    pub mesh_server: PathBuf,
    /// `tests/js`, with `node_modules` installed.
    pub js_dir: PathBuf,
    /// The `node` executable.
    pub node: PathBuf,
}

/// Where a client connects to reach one room.
#[derive(Debug, Clone)]
pub struct Room {
    /// WebSocket URL.
    pub url: String,
    /// How the server frames the room's messages.
    pub framing: Framing,
}

impl Room {
    /// The same room reached through the server at `addr`: another node of a cluster, which
    /// accepts the same link (every node signs tokens with the secret in the shared store).
    pub fn at(&self, addr: SocketAddr) -> Room {
        let rest = self.url.strip_prefix("ws://").unwrap_or(&self.url);
        let path = rest.find('/').map_or("/", |i| &rest[i..]);
        Room {
            url: format!("ws://{addr}{path}"),
            framing: self.framing.clone(),
        }
    }
}

/// A running server. Dropping it kills the process (and removes its data directory).
pub struct ServerProcess {
    kind: ServerKind,
    child: Child,
    pid: u32,
    addr: SocketAddr,
    log: PathBuf,
    // Held for its Drop: removes the data directory and the log after the run.
    _dir: tempfile::TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // SIGKILL: the server's state is throwaway. `kill_on_drop` on the child does the
        // same; this makes the intent explicit and independent of that setting.
        let _ = self.child.start_kill();
        // Reap it, briefly and synchronously (Drop cannot await): a killed process exits
        // within milliseconds, and the next server should not start beside a dying one.
        let deadline = std::time::Instant::now() + KILL_WAIT;
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(KILL_POLL_INTERVAL);
        }
    }
}

impl ServerProcess {
    /// Starts `kind` on a loopback port and waits until it accepts connections.
    pub async fn start(kind: ServerKind, programs: &Programs) -> anyhow::Result<Self> {
        Self::start_with(kind, programs, &[]).await
    }

    /// Starts `kind` as [`ServerProcess::start`] does, with `env` added to its environment
    /// (mesh only: a node's `MESH_STORE` and `MESH_BUS`, which carry passwords and so go
    /// through the environment rather than the process list).
    pub async fn start_with(kind: ServerKind, programs: &Programs, env: &[(&str, String)]) -> anyhow::Result<Self> {
        ensure!(
            env.is_empty() || kind == ServerKind::Mesh,
            "only mesh takes extra settings, not {}",
            kind.name()
        );
        let dir = tempfile::Builder::new().prefix("mesh-bench-").tempdir()?;
        let log = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log)?;
        // Node servers get their port from us; mesh picks its own and prints it.
        let node_port = free_port()?;
        let mut command = match kind {
            ServerKind::Mesh => {
                let binary = &programs.mesh_server;
                ensure!(
                    binary.is_file(),
                    "{} not found: build it with `cargo build --release -p mesh-server` or pass --mesh-server",
                    binary.display()
                );
                let data = dir.path().join("data");
                std::fs::create_dir(&data)?;
                let mut command = Command::new(binary);
                command
                    .arg("--listen")
                    .arg("127.0.0.1:0")
                    .arg("--data-dir")
                    .arg(&data)
                    // The bench creates all its rooms at once from one address, far above
                    // what mesh lets one address create by default.
                    .arg("--create-burst")
                    .arg(BENCH_ROOM_BURST.to_string())
                    // Likewise its connections and joins: every bench client comes from
                    // 127.0.0.1, and a run opens up to MAX_BENCH_CONNECTIONS of them.
                    .arg("--max-connections")
                    .arg((MAX_BENCH_CONNECTIONS + CONNECTION_SLACK).to_string())
                    .arg("--max-connections-per-address")
                    .arg((MAX_BENCH_CONNECTIONS + CONNECTION_SLACK).to_string())
                    .arg("--join-burst")
                    .arg((MAX_BENCH_CONNECTIONS + CONNECTION_SLACK).to_string())
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .stdout(Stdio::piped());
                command
            }
            ServerKind::YWebsocket | ServerKind::Hocuspocus => {
                let (package, script) = match kind {
                    ServerKind::YWebsocket => (Y_WEBSOCKET_SCRIPT, None),
                    _ => (HOCUSPOCUS_PACKAGE, Some(HOCUSPOCUS_SCRIPT)),
                };
                ensure!(
                    programs.js_dir.join(package).exists(),
                    "{} is missing: run `npm ci` in {}",
                    package,
                    programs.js_dir.display()
                );
                let mut command = Command::new(&programs.node);
                match script {
                    // Evaluated with tests/js as the working directory, so the package
                    // resolves from its node_modules.
                    Some(script) => command.arg("--input-type=module").arg("-e").arg(script),
                    None => command.arg(Y_WEBSOCKET_SCRIPT),
                };
                // Persistence and webhooks off: the y-websocket server enables them from
                // these variables, and the bench measures the relay alone.
                command
                    .current_dir(&programs.js_dir)
                    .env("HOST", "127.0.0.1")
                    .env("PORT", node_port.to_string())
                    .env_remove("YPERSISTENCE")
                    .env_remove("CALLBACK_URL")
                    .stdout(log_file.try_clone()?);
                command
            }
        };
        command.stdin(Stdio::null()).stderr(log_file).kill_on_drop(true);
        let child = command.spawn().with_context(|| format!("starting {}", kind.name()))?;
        let pid = child.id().context("server exited at once")?;
        let mut server = ServerProcess {
            kind,
            child,
            pid,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            log,
            _dir: dir,
        };
        let ready = match kind {
            ServerKind::Mesh => timeout(START_TIMEOUT, server.read_mesh_address()).await,
            _ => timeout(START_TIMEOUT, server.wait_for_port(node_port)).await,
        };
        match ready {
            Ok(Ok(addr)) => server.addr = addr,
            Ok(Err(e)) => bail!("{} did not start: {e:#}\n{}", kind.name(), server.log_tail()),
            Err(_) => bail!(
                "{} did not start within {START_TIMEOUT:?}\n{}",
                kind.name(),
                server.log_tail()
            ),
        }
        Ok(server)
    }

    /// Reads mesh-server's stdout up to its ready line; returns the address it names.
    async fn read_mesh_address(&mut self) -> anyhow::Result<SocketAddr> {
        let stdout = self.child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.trim().strip_prefix(MESH_READY_PREFIX) {
                let addr: SocketAddr = rest
                    .trim_end_matches('/')
                    .parse()
                    .with_context(|| format!("bad address in {line:?}"))?;
                ensure!(
                    addr.ip().is_loopback(),
                    "mesh-server listens on {addr}, not on loopback"
                );
                // Keep reading so the server never blocks on a full pipe; this ends when
                // the server's stdout closes.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                return Ok(addr);
            }
        }
        bail!("mesh-server exited without printing {MESH_READY_PREFIX:?}")
    }

    /// Waits until a node server accepts TCP connections on `port`.
    async fn wait_for_port(&mut self, port: u16) -> anyhow::Result<SocketAddr> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("exited with {status}");
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(addr);
            }
            sleep(PORT_POLL_INTERVAL).await;
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The server's name.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// Resident memory of the server process.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        procstat::memory(self.pid)
    }

    /// CPU time the server process has used.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        procstat::cpu_time(Some(self.pid))
    }

    /// Opens `count` rooms and returns where their clients connect.
    pub async fn create_rooms(&self, count: usize) -> anyhow::Result<Vec<Room>> {
        let mut rooms = Vec::with_capacity(count);
        for i in 0..count {
            let room = match self.kind {
                ServerKind::Mesh => self.create_mesh_room().await?,
                ServerKind::YWebsocket => Room {
                    url: format!("ws://{}/bench-{i}", self.addr),
                    framing: Framing::Plain,
                },
                ServerKind::Hocuspocus => Room {
                    url: format!("ws://{}/", self.addr),
                    framing: Framing::doc_prefixed(&format!("bench-{i}")),
                },
            };
            rooms.push(room);
        }
        Ok(rooms)
    }

    async fn create_mesh_room(&self) -> anyhow::Result<Room> {
        let body = serde_json::to_vec(&CreateSession {
            name: Some("bench".into()),
            approval: None,
        })?;
        let (status, reply) = timeout(HTTP_TIMEOUT, crate::http::post_json(self.addr, "/api/sessions", &body))
            .await
            .context("POST /api/sessions timed out")??;
        ensure!(
            (200..300).contains(&status),
            "POST /api/sessions answered {status}: {}",
            String::from_utf8_lossy(&reply)
        );
        let created: NewRoom = serde_json::from_slice(&reply).context("reading the POST /api/sessions answer")?;
        Ok(Room {
            url: format!(
                "ws://{}/ws/{}?token={}",
                self.addr,
                created.id,
                percent_encode(&created.writer_token)
            ),
            framing: Framing::Plain,
        })
    }

    /// The last lines of the server's log, for error messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        format!("--- last lines of the server's output ---\n{tail}")
    }
}

/// The fields of mesh's `POST /api/sessions` answer (`mesh_protocol::rest::CreatedSession`)
/// that the bench needs; the others are ignored, so the bench keeps working as they change.
#[derive(serde::Deserialize)]
struct NewRoom {
    id: RoomId,
    writer_token: String,
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for a query value.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A loopback port that was free a moment ago (the OS picks it).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// The default path of the mesh-server binary: the workspace's release build.
pub fn default_mesh_server() -> PathBuf {
    workspace_root().join("target/release/mesh-server")
}

/// The default JS directory: the workspace's `tests/js`.
pub fn default_js_dir() -> PathBuf {
    workspace_root().join("tests/js")
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_at_another_node_keeps_its_path_and_token() {
        let room = Room {
            url: "ws://127.0.0.1:4000/ws/abc?token=x%2By".into(),
            framing: Framing::Plain,
        };
        let other = room.at(SocketAddr::from((Ipv4Addr::LOCALHOST, 4001)));
        assert_eq!(other.url, "ws://127.0.0.1:4001/ws/abc?token=x%2By");
    }

    #[test]
    fn tokens_are_escaped_in_urls() {
        assert_eq!(percent_encode("a.b-c_d~e"), "a.b-c_d~e");
        assert_eq!(percent_encode("a+b/c="), "a%2Bb%2Fc%3D");
    }
}
