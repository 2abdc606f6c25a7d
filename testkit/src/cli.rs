//! `mesh-proxy` as a person runs it in a terminal (`share`, `join`, `status`...), for the
//! proxy's folder tests: a process with its own state directory, its output read line by
//! line, and waits that end as soon as what they wait for is there.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use crate::lsp::proxy_bin;

/// How long a folder test waits for something to reach the other side: generous, since a
/// busy machine running debug builds moves tens of MiB slowly; every wait ends as soon as
/// what it waits for arrives, so only a failing test waits this long.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// A `mesh-proxy` command for the server at `server_url`, with its state (`sessions.json`,
/// config) under `state` and none of the caller's `MESH_*` settings that change behaviour.
/// Stdin is closed; the process dies with the test.
pub fn proxy_command(server_url: &str, state: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(proxy_bin());
    cmd.args(args)
        .env("MESH_SERVER", server_url)
        .env("MESH_NAME", "cli")
        .env("XDG_STATE_HOME", state)
        .env("XDG_CONFIG_HOME", state)
        .env_remove("MESH_CA_FILE")
        .env_remove("MESH_MAX_FOLDER_FILES")
        .env_remove("MESH_MAX_FOLDER_BYTES")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// A running `mesh-proxy` command: its stdout as lines, its stderr kept (and echoed to the
/// test's output, prefixed, so a failure shows what the proxy said).
pub struct ProxyCli {
    child: Child,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
}

impl ProxyCli {
    /// Starts `mesh-proxy ARGS` for the server at `server_url` with state under `state`.
    pub fn start(server_url: &str, state: &Path, args: &[&str]) -> Self {
        Self::spawn(proxy_command(server_url, state, args))
    }

    /// Starts a prepared command (e.g. [`proxy_command`] with more environment).
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mesh-proxy starts");
        let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                eprintln!("[proxy] {line}");
                let mut s = sink.lock().expect("not poisoned");
                s.push_str(&line);
                s.push('\n');
            }
        });
        ProxyCli { child, lines, stderr }
    }

    /// The next line of stdout that starts with `prefix` (earlier lines are skipped).
    /// Panics if the process ends first or nothing comes within [`PATIENCE`].
    pub async fn line_starting(&mut self, prefix: &str) -> String {
        let fut = async {
            while let Some(line) = self.lines.next_line().await.expect("stdout reads") {
                if line.starts_with(prefix) {
                    return line;
                }
            }
            panic!("mesh-proxy ended before printing {prefix:?}");
        };
        tokio::time::timeout(PATIENCE, fut)
            .await
            .unwrap_or_else(|_| panic!("mesh-proxy printed no line starting with {prefix:?}"))
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("not poisoned").clone()
    }

    /// Waits for the process to end on its own; its exit code. Panics after [`PATIENCE`].
    pub async fn exited(mut self) -> Option<i32> {
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("mesh-proxy ends in time")
            .expect("mesh-proxy can be waited for");
        status.code()
    }

    /// Stops the process (as Ctrl-C or a closed terminal would) and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Waits until `cond` holds, checking every 20 ms; panics naming `what` after [`PATIENCE`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A file's text, or `None` when it is missing or not UTF-8.
pub fn read(p: PathBuf) -> Option<String> {
    std::fs::read_to_string(p).ok()
}
