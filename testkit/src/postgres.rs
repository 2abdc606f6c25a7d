//! A real Postgres (Debian's `postgresql` package) in a temporary directory on loopback:
//! `initdb`, then `postgres -D DIR -k DIR -h 127.0.0.1 -p PORT`, stopped by its pid. Tests of
//! the Postgres store, and later of several servers sharing one database, start their own.
//!
//! Postgres refuses to run as root; when the tests run as root (CI does), every Postgres
//! program runs as the package's `postgres` user through `setpriv`, which `exec`s it, so the
//! pid kept is the postmaster's own. Without Postgres installed, [`TestPostgres::start`]
//! fails and says how to install it: a test never skips for want of it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

use crate::process::{StopSignal, StoppedByPid};

/// How long Postgres may take to accept connections after it is started (a cold start on
/// a busy CI machine takes about a second).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a start asks whether Postgres accepts connections (each ask runs
/// `pg_isready`, a process of its own).
const READY_POLL: Duration = Duration::from_millis(50);

/// How long a fast shutdown may take before the postmaster is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The superuser `initdb` creates, and the role tests connect as.
pub const USER: &str = "mesh";

/// A running Postgres. Dropping it stops the server and removes its directory.
pub struct TestPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The port it listens on, on 127.0.0.1 (kept across restarts).
    pub port: u16,
    password: String,
    run_as: Option<(u32, u32)>,
    child: Option<StoppedByPid>,
}

/// The directory of Postgres's server programs: `$MESH_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian puts `initdb` and `postgres` there, off the PATH).
fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("MESH_PG_BIN") {
        return Ok(dir.into());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("postgres").exists())
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "Postgres is not installed (no /usr/lib/postgresql/*/bin/postgres): install it with \
             `apt-get install postgresql` (scripts/test does), or set MESH_PG_BIN to its bin directory"
        ),
    }
}

/// The `postgres` user's uid and gid, when this process runs as root (Postgres refuses it).
fn unprivileged_user() -> anyhow::Result<Option<(u32, u32)>> {
    // `/proc/self` belongs to the process's effective user.
    if std::fs::metadata("/proc/self")?.uid() != 0 {
        return Ok(None);
    }
    let id = |flag: &str| -> anyhow::Result<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output()?;
        if !out.status.success() {
            bail!(
                "running as root, and there is no `postgres` user to run Postgres as: install the postgresql package"
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    Ok(Some((id("-u")?, id("-g")?)))
}

/// A port free on 127.0.0.1 right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl TestPostgres {
    /// Creates a cluster in a new temporary directory and starts it on a free port.
    pub fn start() -> anyhow::Result<TestPostgres> {
        let bin = bin_dir()?;
        let run_as = unprivileged_user()?;
        let dir = tempfile::Builder::new().prefix("mesh-pg-").tempdir()?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let password = format!("pw-{:016x}", rand::random::<u64>());
        let mut pg = TestPostgres {
            dir,
            bin,
            port: free_port()?,
            password,
            run_as,
            child: None,
        };
        let pwfile = pg.dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{}\n", pg.password))?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))?;
        }
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(pg.data())
            .args(["-U", USER, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "-N"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .context("cannot run initdb")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::fs::remove_file(&pwfile)?;
        pg.spawn()?;
        Ok(pg)
    }

    /// A command for one of Postgres's programs, run as the `postgres` user when we are root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.run_as {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log (its stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .arg("-k")
            .arg(self.dir.path())
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            // Small: tests start several servers at once on small CI machines.
            .args(["-c", "shared_buffers=16MB", "-c", "max_connections=100"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start postgres")?;
        // Fast shutdown (SIGINT): open transactions are rolled back, committed ones are on
        // disk. Signalled as its own user: a root test process may signal it directly.
        let mut child = StoppedByPid::new(child, "postgres", StopSignal::Int, STOP_TIMEOUT);
        let ready = || std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() && self.ready();
        child
            .wait_ready(READY_TIMEOUT, READY_POLL, "accept connections", ready)
            .map_err(|e| anyhow!("{e}: {}", self.log_tail()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Whether the server accepts connections (`pg_isready`).
    fn ready(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
            .status()
            .is_ok_and(|s| s.success())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The URL of database `db` (with the password).
    pub fn url_of(&self, db: &str) -> String {
        format!("postgres://{USER}:{}@127.0.0.1:{}/{db}", self.password, self.port)
    }

    /// The URL of the `postgres` database every cluster has.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// The password of [`USER`] (to check that it never shows in logs).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Creates database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> anyhow::Result<String> {
        self.sql(&format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.url_of(name))
    }

    /// Runs SQL in the `postgres` database with `psql`; returns its output (unaligned, no
    /// headers: one row a line, columns split by `|`).
    pub fn sql(&self, sql: &str) -> anyhow::Result<String> {
        self.sql_in("postgres", sql)
    }

    /// Runs SQL in database `db` with `psql`, as [`TestPostgres::sql`].
    pub fn sql_in(&self, db: &str, sql: &str) -> anyhow::Result<String> {
        let out = Command::new(self.bin.join("psql"))
            .arg(self.url_of(db))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .context("cannot run psql")?;
        if !out.status.success() {
            bail!("psql failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The postmaster's pid (0 when stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, StoppedByPid::id)
    }

    /// Stops the server with a fast shutdown (SIGINT: open transactions are rolled back,
    /// committed ones are on disk) and waits for it to exit.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        match self.child.take() {
            Some(child) => child.stop().map(drop),
            None => Ok(()),
        }
    }

    /// Starts the stopped server again, on the same port and data.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("postgres is running; stop it first");
        }
        self.spawn()
    }

    /// The cluster's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("{e}");
        }
    }
}
