//! `mesh-proxy run FILE` against a real server and real Docker: the program's output in the
//! terminal, stdin forwarded, and the program's exit code as the command's.

use std::process::Stdio;
use std::time::Duration;

use mesh_testkit::lsp::proxy_bin;
use mesh_testkit::TestServer;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_streams_output_and_exits_with_the_programs_code() {
    let server = TestServer::start_with(&["--run-images", "local"]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state) = (tmp.path().join("project"), tmp.path().join("state"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("hello.py"),
        "import sys\nprint('hello', input())\nsys.exit(3)\n",
    )
    .unwrap();
    let mut share = Command::new(proxy_bin())
        .args(["share", dir.to_str().unwrap()])
        .env("MESH_SERVER", &server.url)
        .env("XDG_STATE_HOME", &state)
        .env("XDG_CONFIG_HOME", &state)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(share.stdout.take().unwrap()).lines();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if l.starts_with("Join link") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(found);

    let mut run = Command::new(proxy_bin())
        .args(["run", "hello.py"])
        .current_dir(&dir)
        .env("XDG_STATE_HOME", &state)
        .env("XDG_CONFIG_HOME", &state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = run.stdin.take().unwrap();
    stdin.write_all(b"mesh\n").await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), run.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello mesh\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(3));

    // A file that is not in the room is a clear error.
    let out = Command::new(proxy_bin())
        .args(["run", "missing.py"])
        .current_dir(&dir)
        .env("XDG_STATE_HOME", &state)
        .env("XDG_CONFIG_HOME", &state)
        .output()
        .await
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = share.kill().await;
}

/// Shares a folder holding `files` with `mesh-proxy share`; returns the folder, the state
/// dir and the sharing process (keep it alive).
async fn share(
    server: &TestServer,
    files: &[(&str, &str)],
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    tokio::process::Child,
) {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state) = (tmp.path().join("project"), tmp.path().join("state"));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let mut share = Command::new(proxy_bin())
        .args(["share", dir.to_str().unwrap()])
        .env("MESH_SERVER", &server.url)
        .env("XDG_STATE_HOME", &state)
        .env("XDG_CONFIG_HOME", &state)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(share.stdout.take().unwrap()).lines();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if l.starts_with("Join link") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(found);
    // Keep reading what it prints, so it never writes into a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (tmp, dir, state, share)
}

fn run_cmd(dir: &std::path::Path, state: &std::path::Path, file: &str) -> tokio::process::Child {
    Command::new(proxy_bin())
        .args(["run", file])
        .current_dir(dir)
        .env("XDG_STATE_HOME", state)
        .env("XDG_CONFIG_HOME", state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_the_servers_cap_prints_its_place_then_runs() {
    let server = TestServer::start_with(&["--run-images", "local", "--max-runs", "1"]).unwrap();
    let (_tmp, dir, state, mut sharing) = share(
        &server,
        &[
            (
                "wait.py",
                "import sys\nprint('waiting', flush=True)\nsys.stdin.read()\n",
            ),
            ("hello.py", "print('hello after waiting')\n"),
        ],
    )
    .await;
    // The first run takes the only slot and holds it until its stdin closes.
    let mut first = run_cmd(&dir, &state, "wait.py");
    let first_in = first.stdin.take().unwrap();
    let mut first_out = BufReader::new(first.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), first_out.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(line.as_deref(), Some("waiting"));

    // The second waits and says where it is in line.
    let mut second = run_cmd(&dir, &state, "hello.py");
    drop(second.stdin.take());
    let mut second_err = BufReader::new(second.stderr.take().unwrap()).lines();
    let place = tokio::time::timeout(Duration::from_secs(60), second_err.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap_or_default();
    assert_eq!(
        place,
        "mesh-proxy: queued: 1st in line, waiting for a free run slot on this server (max_runs)"
    );

    // The first ends: the second starts, runs and exits with its program's code.
    drop(first_in);
    let started = tokio::time::timeout(Duration::from_secs(60), second_err.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(started.as_deref(), Some("mesh-proxy: the run started"));
    let out = tokio::time::timeout(Duration::from_secs(60), second.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello after waiting\n");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(first.wait().await.unwrap().code(), Some(0));
    let _ = sharing.kill().await;
}
