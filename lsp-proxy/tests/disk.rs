//! Disk sync through real proxies on real folders: folders renamed and deleted, files that
//! become binary, the folder limits of `share` and `join`, and files larger than a frame.

use std::path::Path;

use mesh_testkit::cli::{eventually, proxy_command, read, ProxyCli};
use mesh_testkit::{TestServer, YClient};
use tokio::process::Command;

fn command(server: &TestServer, state: &Path, args: &[&str]) -> Command {
    proxy_command(&server.url, state, args)
}

async fn cli(server: &TestServer, state: &Path, args: &[&str]) -> ProxyCli {
    ProxyCli::start(&server.url, state, args)
}

async fn spawn(cmd: Command) -> ProxyCli {
    ProxyCli::spawn(cmd)
}

/// Shares `a` and joins it into `b`; returns both processes.
async fn share_and_join(server: &TestServer, tmp: &Path, a: &Path, b: &Path) -> (ProxyCli, ProxyCli) {
    let mut share = cli(server, &tmp.join("state-a"), &["share", a.to_str().unwrap()]).await;
    let link = share.line_starting("Join link").await;
    let link = link.rsplit(' ').next().unwrap().to_string();
    let mut join = cli(server, &tmp.join("state-b"), &["join", &link, b.to_str().unwrap()]).await;
    join.line_starting("Joined").await;
    (share, join)
}

/// `name` appears in `a` empty (as a download or a compiler's output does), reaches `b`
/// empty, then its binary content lands in `a`.
async fn appears_empty_then_binary(a: &Path, b: &Path, name: &str, binary: &[u8]) {
    std::fs::write(a.join(name), "").unwrap();
    eventually("the empty file on the other side", || {
        read(b.join(name)).as_deref() == Some("")
    })
    .await;
    std::fs::write(a.join(name), binary).unwrap();
}

/// How many rooms the server created, from its metrics.
async fn rooms_created(server: &TestServer) -> u64 {
    let text = server.metrics().await.unwrap();
    mesh_testkit::soak::metric(&text, "mesh_rooms_created_total") as u64
}

/// Waits until a file written on one side has reached the other: everything that side sent
/// to the room before it has been handled by the other side too (the room keeps order, and
/// a proxy handles the room's changes in order).
async fn barrier(from: &Path, to: &Path, name: &str) {
    std::fs::write(from.join(name), name).unwrap();
    eventually(name, || read(to.join(name)).as_deref() == Some(name)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_and_deleted_folders_travel() {
    let server = TestServer::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(a.join("lib/deep")).unwrap();
    std::fs::write(a.join("lib/one.rs"), "one\n").unwrap();
    std::fs::write(a.join("lib/deep/two.rs"), "two\n").unwrap();
    std::fs::write(a.join("main.rs"), "main\n").unwrap();
    let (share, join) = share_and_join(&server, tmp.path(), &a, &b).await;
    assert_eq!(read(b.join("lib/deep/two.rs")).as_deref(), Some("two\n"));

    // Renamed on the sharing side: the old files leave every side, the new ones arrive.
    std::fs::rename(a.join("lib"), a.join("src")).unwrap();
    eventually("the renamed folder on the other side", || {
        read(b.join("src/one.rs")).as_deref() == Some("one\n")
            && read(b.join("src/deep/two.rs")).as_deref() == Some("two\n")
            && !b.join("lib").exists()
    })
    .await;
    // The renamed folder is watched under its new name.
    std::fs::write(a.join("src/deep/two.rs"), "two, edited after the rename\n").unwrap();
    eventually("an edit inside the renamed folder", || {
        read(b.join("src/deep/two.rs")).as_deref() == Some("two, edited after the rename\n")
    })
    .await;

    // Deleted on the joined side: gone from the sharing side too, folder and all.
    std::fs::remove_dir_all(b.join("src")).unwrap();
    eventually("the deleted folder on the sharing side", || !a.join("src").exists()).await;
    assert_eq!(read(a.join("main.rs")).as_deref(), Some("main\n"), "the rest stays");

    // Renamed on the joined side, a level deeper.
    std::fs::create_dir_all(b.join("pkg/inner")).unwrap();
    std::fs::write(b.join("pkg/inner/x.txt"), "x\n").unwrap();
    eventually("a new folder on the sharing side", || {
        read(a.join("pkg/inner/x.txt")).as_deref() == Some("x\n")
    })
    .await;
    std::fs::rename(b.join("pkg/inner"), b.join("pkg/outer")).unwrap();
    eventually("the renamed inner folder on the sharing side", || {
        read(a.join("pkg/outer/x.txt")).as_deref() == Some("x\n") && !a.join("pkg/inner").exists()
    })
    .await;
    // A folder moved out of the shared folder is a deletion.
    std::fs::rename(a.join("pkg"), tmp.path().join("moved-away")).unwrap();
    eventually("a folder moved away", || !b.join("pkg").exists()).await;
    drop((share, join));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_becomes_binary_leaves_the_room_and_is_never_written_as_text() {
    let server = TestServer::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::write(a.join("notes.txt"), "some notes\n").unwrap();
    let binary: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let blob = tmp.path().join("blob.bin");
    std::fs::write(&blob, &binary).unwrap();
    let (share, join) = share_and_join(&server, tmp.path(), &a, &b).await;
    assert_eq!(read(b.join("notes.txt")).as_deref(), Some("some notes\n"));

    // A binary copied over a synced text file: it leaves the room, the other side's unchanged
    // copy goes away, and the sharer is told.
    let cp = Command::new("cp")
        .arg(&blob)
        .arg(a.join("notes.txt"))
        .status()
        .await
        .unwrap();
    assert!(cp.success());
    eventually("the other side's copy to go", || !b.join("notes.txt").exists()).await;
    eventually("the sharer to be told", || {
        share.stderr().contains("notes.txt is no longer a text file")
    })
    .await;
    assert_eq!(
        std::fs::read(a.join("notes.txt")).unwrap(),
        binary,
        "the binary is untouched"
    );

    // A file that is empty when first seen (a download, a compiler's output) enters the room
    // as an empty text file; its binary content lands; it leaves the room, and the other
    // side's empty copy goes.
    appears_empty_then_binary(&a, &b, "out.bin", &binary).await;
    eventually("the other side's empty copy to go", || !b.join("out.bin").exists()).await;
    // Someone writes that path on the other side: a new text file, which never replaces the
    // binary here.
    std::fs::write(b.join("out.bin"), "text typed there\n").unwrap();
    barrier(&b, &a, "after-b.txt").await;
    assert_eq!(
        std::fs::read(a.join("out.bin")).unwrap(),
        binary,
        "never overwritten with text"
    );
    assert_eq!(
        read(b.join("out.bin")).as_deref(),
        Some("text typed there\n"),
        "kept where it was typed"
    );

    // The same while the other side types into its copy at the moment the binary lands:
    // whichever reaches the room first, the binary here is never written over.
    appears_empty_then_binary(&a, &b, "race.bin", &binary).await;
    std::fs::write(b.join("race.bin"), "typed at once\n").unwrap();
    barrier(&b, &a, "after-race-b.txt").await;
    barrier(&a, &b, "after-race-a.txt").await;
    barrier(&b, &a, "after-race-b-again.txt").await;
    assert_eq!(
        std::fs::read(a.join("race.bin")).unwrap(),
        binary,
        "never overwritten with text"
    );
    drop((share, join));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_and_joins_over_the_folder_limits_are_refused_before_anything_is_written() {
    let server = TestServer::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    std::fs::create_dir_all(&a).unwrap();
    for i in 0..5 {
        std::fs::write(a.join(format!("f{i}.txt")), "0123456789\n").unwrap();
    }

    // A share over the file limit (a flag) creates no room and says what to do.
    let out = command(
        &server,
        &tmp.path().join("s1"),
        &["share", "--max-folder-files", "4", a.to_str().unwrap()],
    )
    .output()
    .await
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not shared") && err.contains("more than 4 text files") && err.contains(".gitignore"),
        "{err}"
    );
    // Over the byte limit (the environment variable).
    let out = command(&server, &tmp.path().join("s2"), &["share", a.to_str().unwrap()])
        .env("MESH_MAX_FOLDER_BYTES", "50")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("more than 50 bytes") && err.contains("max_folder_bytes"),
        "{err}"
    );
    assert_eq!(rooms_created(&server).await, 0, "a refused share creates no room");

    // Within the limits, it shares; a join into a folder with lower limits writes nothing.
    let mut share = cli(&server, &tmp.path().join("s3"), &["share", a.to_str().unwrap()]).await;
    let link = share.line_starting("Join link").await;
    let link = link.rsplit(' ').next().unwrap().to_string();
    for (flag, value, says) in [
        ("--max-folder-files", "4", "more than 4 files"),
        ("--max-folder-bytes", "54", "more than 54 bytes"),
    ] {
        let b = tmp.path().join(format!("b{flag}"));
        let out = command(
            &server,
            &tmp.path().join("sb"),
            &["join", flag, value, &link, b.to_str().unwrap()],
        )
        .output()
        .await
        .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("not joined") && err.contains(says) && err.contains("nothing was written"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_dir(&b).unwrap().count(),
            0,
            "nothing written into {}",
            b.display()
        );
    }
    // At the limits exactly, the join writes everything.
    let b = tmp.path().join("b");
    let mut join = cli(
        &server,
        &tmp.path().join("sb"),
        &[
            "join",
            "--max-folder-files",
            "5",
            "--max-folder-bytes",
            "55",
            &link,
            b.to_str().unwrap(),
        ],
    )
    .await;
    assert!(join.line_starting("Joined").await.contains("(5 files)"));
    assert_eq!(read(b.join("f4.txt")).as_deref(), Some("0123456789\n"));
    share.stop().await;
}

/// The server refuses a frame over 16 MiB; the proxy accepts the room's files from the
/// server up to 128 MiB. A file larger than the server's frame limit goes up in pieces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_larger_than_a_frame_is_uploaded_in_pieces() {
    let server = TestServer::start().unwrap();
    let session = server.create_session("large").await.unwrap();
    let url = server.ws_url(&session, &session.created.writer_token);
    let writer = YClient::connect_mesh(&url, "w").await.unwrap();
    writer.wait_synced().await.unwrap();
    // 20 MiB of mixed-width text, one file: more than one frame may carry.
    let line = "a 20 MiB file: ascii, é, 漢字 and 🎉 so pieces split between characters\n";
    let big: String = line.repeat(20 * 1024 * 1024 / line.len() + 1);
    assert!(big.len() > mesh_protocol::MAX_FRAME_BYTES);
    mesh_proxy::session::upload(&writer.doc, [("big.txt".to_string(), big.clone())]);
    // The room handles a connection's messages in order: the pong says the pieces are in.
    writer.send_mesh(&mesh_protocol::ClientMessage::Ping { nonce: 1 });
    writer
        .wait_mesh("the pong", |m| {
            matches!(m, mesh_protocol::ServerMessage::Pong { nonce: 1 })
        })
        .await
        .unwrap();
    assert!(writer.closed().is_none(), "no frame was refused");
    let refusals: Vec<_> = writer
        .mesh_messages()
        .into_iter()
        .filter(|m| matches!(m, mesh_protocol::ServerMessage::Error { .. }))
        .collect();
    assert!(refusals.is_empty(), "{refusals:?}");
    // A proxy joins the room (its first sync is one message over 16 MiB) and writes it whole.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("joined");
    let mut join = cli(
        &server,
        &tmp.path().join("state"),
        &["join", &session.created.join_link, dir.to_str().unwrap()],
    )
    .await;
    join.line_starting("Joined").await;
    assert!(
        read(dir.join("big.txt")).as_deref() == Some(big.as_str()),
        "arrived intact"
    );
}

/// Work done while the server is away reaches the room when it is back, however large: the
/// proxy resends its own updates as they were, never as one sync message over the server's
/// frame limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_work_larger_than_a_frame_reaches_the_room_after_a_reconnect() {
    let mut server = TestServer::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::write(a.join("readme.txt"), "hello\n").unwrap();
    let mut share = command(&server, &tmp.path().join("state-a"), &["share", a.to_str().unwrap()]);
    share.env("MESH_LOG", "info");
    let mut share = spawn(share).await;
    let link = share.line_starting("Join link").await;
    let link = link.rsplit(' ').next().unwrap().to_string();

    server.kill9();
    eventually("the proxy to notice", || {
        share.stderr().contains("room connection lost")
    })
    .await;
    // Six files of 3.5 MiB each, 21 MiB in all, taken into the proxy's replica offline.
    let names: Vec<String> = (0..6).map(|i| format!("data/part{i}.txt")).collect();
    let chunk = "offline work, line by line\n".repeat(7 * 1024 * 1024 / 2 / 27);
    assert!(chunk.len() as u64 <= mesh_proxy::workspace::MAX_FILE_BYTES);
    assert!(chunk.len() * names.len() > mesh_protocol::MAX_FRAME_BYTES);
    std::fs::create_dir_all(a.join("data")).unwrap();
    for name in &names {
        std::fs::write(a.join(name), &chunk).unwrap();
    }
    eventually("the proxy to take every file offline", || {
        let log = share.stderr();
        names.iter().all(|n| {
            log.lines()
                .any(|l| l.contains("created on disk") && l.contains(&format!("path={n}")))
        })
    })
    .await;

    server.restart().unwrap();
    let mut join = cli(
        &server,
        &tmp.path().join("state-b"),
        &["join", &link, b.to_str().unwrap()],
    )
    .await;
    join.line_starting("Joined").await;
    eventually("the offline work on the other side", || {
        names
            .iter()
            .all(|n| std::fs::metadata(b.join(n)).is_ok_and(|m| m.len() == chunk.len() as u64))
    })
    .await;
    for name in &names {
        assert!(
            read(b.join(name)).as_deref() == Some(chunk.as_str()),
            "{name} arrived intact"
        );
    }
    assert!(!share.stderr().contains("1009"), "no frame was refused");
}

/// A share of a file just under the per-file limit, in multibyte text, joined intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_near_the_size_limit_is_shared_and_joined() {
    let server = TestServer::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    let line = "漢字 and 🎉 in a file near the per-file limit\n";
    let limit = mesh_proxy::workspace::MAX_FILE_BYTES as usize;
    let big = line.repeat((limit - 1) / line.len());
    assert!(big.len() > limit - line.len() && big.len() <= limit);
    std::fs::write(a.join("big.txt"), &big).unwrap();
    let (share, join) = share_and_join(&server, tmp.path(), &a, &b).await;
    assert!(
        read(b.join("big.txt")).as_deref() == Some(big.as_str()),
        "arrived intact"
    );
    drop((share, join));
}
