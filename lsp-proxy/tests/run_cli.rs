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
