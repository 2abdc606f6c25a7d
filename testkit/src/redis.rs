//! A real Redis (Debian's `redis-server` package) in a temporary directory on loopback,
//! with a password and no persistence, stopped by its pid. Tests of several servers on one
//! bus start their own. Without `redis-server` installed, [`TestRedis::start`] fails and
//! says how to install it: a test never skips for want of it.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

use crate::process::{StopSignal, StoppedByPid};

/// How long Redis may take to accept connections after it is started (it takes a few
/// milliseconds; a busy CI machine more).
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How often a start asks whether Redis answers (a PING on a fresh socket, cheap).
const READY_POLL: Duration = Duration::from_millis(20);

/// How long Redis may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running Redis. Dropping it stops the server and removes its directory.
pub struct TestRedis {
    dir: tempfile::TempDir,
    /// The port it listens on, on 127.0.0.1 (kept across restarts).
    pub port: u16,
    password: String,
    child: Option<StoppedByPid>,
}

/// `$MESH_REDIS_SERVER`, else `redis-server` on the PATH or in `/usr/bin`.
fn program() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("MESH_REDIS_SERVER") {
        return Ok(p.into());
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("redis-server"))
        .find(|p| p.exists());
    match found {
        Some(p) => Ok(p),
        None => bail!(
            "redis-server is not installed: install it with `apt-get install redis-server` (scripts/test does), \
             or set MESH_REDIS_SERVER to the program"
        ),
    }
}

impl TestRedis {
    /// Starts Redis on a free port in a new temporary directory.
    pub fn start() -> anyhow::Result<TestRedis> {
        let dir = tempfile::Builder::new().prefix("mesh-redis-").tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut redis = TestRedis {
            dir,
            port,
            password: format!("rd-{:016x}", rand::random::<u64>()),
            child: None,
        };
        redis.spawn()?;
        Ok(redis)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        // The configuration goes in a file, so the password is not in the process list.
        let conf = self.dir.path().join("redis.conf");
        std::fs::write(
            &conf,
            format!(
                "bind 127.0.0.1\nport {}\ndir {}\nsave \"\"\nappendonly no\ndaemonize no\nrequirepass {}\nlogfile {}\n",
                self.port,
                self.dir.path().display(),
                self.password,
                self.log_path().display()
            ),
        )?;
        let child = Command::new(program()?)
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start redis-server")?;
        // SIGTERM: it keeps nothing (no persistence), so it exits at once.
        let mut child = StoppedByPid::new(child, "redis-server", StopSignal::Term, STOP_TIMEOUT);
        child
            .wait_ready(READY_TIMEOUT, READY_POLL, "answer", || self.ping())
            .map_err(|e| anyhow!("{e}: {}", self.log_tail()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Whether Redis answers PING (authenticated), over a plain socket.
    fn ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let auth = format!("AUTH {}\r\nPING\r\n", self.password);
        if s.write_all(auth.as_bytes()).is_err() {
            return false;
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while !got.windows(5).any(|w| w == b"+PONG") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return false,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        true
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The bus URL (with the password).
    pub fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}", self.password, self.port)
    }

    /// The password (to check that it never shows in logs).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The server's pid (0 when stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, StoppedByPid::id)
    }

    /// Stops Redis (SIGTERM; it keeps nothing: no persistence) and waits for it to exit.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        match self.child.take() {
            Some(child) => child.stop().map(drop),
            None => Ok(()),
        }
    }

    /// Starts the stopped server again on the same port, empty (as a Redis without
    /// persistence comes back).
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("redis-server is running; stop it first");
        }
        self.spawn()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("{e}");
        }
    }
}
