//! Nothing local is lost when the proxy writes into a buffer or the folder: through real
//! proxies and a real server, each path that used to overwrite local work (typing right
//! after opening a file, an unsaved buffer at join, edits made while no proxy ran, a file
//! written right after "Joined", a new room file over a local one) ends with every line
//! typed locally in the buffer, the disk and the room, or with a conflict the user is told
//! of that keeps it.

use std::path::{Path, PathBuf};

use mesh_testkit::cli::{eventually, read, ProxyCli};
use mesh_testkit::lsp::proxy_bin;
use mesh_testkit::{LspClient, TestServer, YClient};
use serde_json::json;
use tokio::process::Command;

/// A `mesh-proxy` command-line process for folder state `state`.
async fn cli(server: &TestServer, state: &Path, args: &[&str]) -> ProxyCli {
    ProxyCli::start(&server.url, state, args)
}

/// A one-shot `mesh-proxy` command in `cwd`; its stdout, or a panic with its stderr.
async fn run(state: &Path, cwd: &Path, args: &[&str]) -> String {
    let out = Command::new(proxy_bin())
        .args(args)
        .current_dir(cwd)
        .env("XDG_STATE_HOME", state)
        .env("XDG_CONFIG_HOME", state)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "mesh-proxy {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A shared folder `a` (shared by the scripted editor "ada", whose proxy keeps the files she
/// has not open in sync on disk: her disk shows the room), a folder `b` for "bob" whose
/// proxy state lives where bob's scripted editor looks for it, the join link, and a stock
/// Yjs client in the room.
struct Room {
    tmp: tempfile::TempDir,
    /// Ada's editor: held so her proxy keeps sharing.
    _ada: LspClient,
    link: String,
    y: YClient,
}

impl Room {
    async fn shared(server: &TestServer, files: &[(&str, &str)]) -> Room {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(tmp.path().join("b")).unwrap();
        for (p, t) in files {
            std::fs::write(a.join(p), t).unwrap();
        }
        let ada = LspClient::start(&a, "ada", &server.url).await.unwrap();
        let shared = ada.request("mesh/share", json!({})).await.unwrap();
        let link = shared["link"].as_str().unwrap().to_string();
        let target = mesh_proxy::link::RoomTarget::parse(&link).unwrap();
        let y = YClient::connect(&target.ws_url()).await.unwrap();
        y.wait_synced().await.unwrap();
        Room {
            tmp,
            _ada: ada,
            link,
            y,
        }
    }

    fn a(&self) -> PathBuf {
        self.tmp.path().join("a")
    }

    fn b(&self) -> PathBuf {
        self.tmp.path().join("b")
    }

    /// Where bob's proxy keeps its state (`sessions.json`): the scripted editor's choice.
    fn bob_state(&self) -> PathBuf {
        self.tmp.path().join(".state-bob")
    }

    /// Bob joins with `mesh-proxy join` and it keeps running.
    async fn bob_joins(&self, server: &TestServer) -> (ProxyCli, String) {
        let mut join = cli(
            server,
            &self.bob_state(),
            &["join", &self.link, self.b().to_str().unwrap()],
        )
        .await;
        let joined = join.line_starting("Joined").await;
        (join, joined)
    }

    /// Waits until the room's copy of `path` is `text`.
    async fn room_has(&self, path: &str, text: &str) {
        self.y
            .wait_for(&format!("the room's {path}"), |c| c.text(path).as_deref() == Some(text))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_right_after_opening_a_shared_file_is_kept() {
    let server = TestServer::start().unwrap();
    let room = Room::shared(&server, &[("notes.txt", "line one\n")]).await;
    let (join, _) = room.bob_joins(&server).await;
    join.stop().await;
    // Bob's editor reopens the folder: its proxy rejoins the room from sessions.json, and
    // he types a line at once, before the room is reached.
    let bob = LspClient::start(&room.b(), "bob", &server.url).await.unwrap();
    let uri = bob.open("notes.txt").await.unwrap();
    bob.edit(&uri, 9, 9, "typed at once\n").await.unwrap();
    let want = "line one\ntyped at once\n";
    room.room_has("notes.txt", want).await;
    eventually("ada's disk", || {
        read(room.a().join("notes.txt")).as_deref() == Some(want)
    })
    .await;
    // The room's text did not win over the buffer on attach.
    bob.wait_for("bob's buffer, settled", |c| c.text(&uri).as_deref() == Some(want))
        .await
        .unwrap();
    let status = bob.request("mesh/status", json!({})).await.unwrap();
    assert_eq!(status["state"], "connected", "{status}");
    assert_eq!(bob.text(&uri).as_deref(), Some(want));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buffer_read_before_the_last_proxy_wrote_the_file_keeps_what_the_room_has_since() {
    let server = TestServer::start().unwrap();
    let old = "line one\n";
    let room = Room::shared(&server, &[("notes.txt", old), ("todo.txt", old)]).await;
    let (join, _) = room.bob_joins(&server).await;
    join.stop().await;
    // Ada adds a line to each file; bob's proxy comes back and writes them to his disk: the
    // files and their bases under .mesh/ hold the room's texts again.
    let new = "line one\nline two (ada)\n";
    for f in ["notes.txt", "todo.txt"] {
        std::fs::write(room.a().join(f), new).unwrap();
        room.room_has(f, new).await;
    }
    let (join, _) = room.bob_joins(&server).await;
    eventually("bob's disk", || {
        read(room.b().join("notes.txt")).as_deref() == Some(new)
            && read(room.b().join("todo.txt")).as_deref() == Some(new)
    })
    .await;
    join.stop().await;
    // But bob's editor read the files before that write (an editor opened while the proxy
    // of the one he closed was still writing, or while its own proxy's disk sync wrote), and
    // he types into those old versions at once: into notes.txt after its didOpen, into
    // todo.txt before it (Neovim attaches the language server after the first keys, so the
    // didOpen carries the typing). Its new proxy merges each with the agreed version the
    // buffer came from: ada's line is not taken for his deletion.
    let bob = LspClient::start(&room.b(), "bob", &server.url).await.unwrap();
    let notes = bob.open_with("notes.txt", old).await.unwrap();
    bob.edit(&notes, 0, 0, "typed at once\n").await.unwrap();
    let todo = bob
        .open_with("todo.txt", "typed before the open\nline one\n")
        .await
        .unwrap();
    for (uri, f, typed) in [
        (&notes, "notes.txt", "typed at once\n"),
        (&todo, "todo.txt", "typed before the open\n"),
    ] {
        let want = format!("{typed}{new}");
        room.room_has(f, &want).await;
        bob.wait_for(&format!("bob's {f}"), |c| c.text(uri).as_deref() == Some(want.as_str()))
            .await
            .unwrap();
        eventually("ada's disk", || {
            read(room.a().join(f)).as_deref() == Some(want.as_str())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsaved_buffer_at_join_is_merged_or_kept_as_a_conflict_never_replaced() {
    let server = TestServer::start().unwrap();
    let room = Room::shared(&server, &[("same.txt", "one\ntwo\n"), ("differs.txt", "x\ny\n")]).await;
    // Ada changes differs.txt after bob copied the folder.
    std::fs::write(room.a().join("differs.txt"), "x\ny (ada)\n").unwrap();
    room.room_has("differs.txt", "x\ny (ada)\n").await;
    std::fs::write(room.b().join("same.txt"), "one\ntwo\n").unwrap();
    std::fs::write(room.b().join("differs.txt"), "x\ny\n").unwrap();
    // Bob has unsaved work in both files, then joins from his editor.
    let bob = LspClient::start(&room.b(), "bob", &server.url).await.unwrap();
    let same = bob.open("same.txt").await.unwrap();
    bob.edit(&same, 0, 0, "unsaved\n").await.unwrap();
    let differs = bob.open("differs.txt").await.unwrap();
    bob.edit(&differs, 2, 3, "y (bob, unsaved)").await.unwrap();
    let joined = bob.request("mesh/join", json!({ "link": room.link })).await.unwrap();
    assert_eq!(joined["conflicts"], json!(["differs.txt"]), "{joined}");

    // The same text on disk and in the room: the unsaved line is merged into the room.
    room.room_has("same.txt", "unsaved\none\ntwo\n").await;
    eventually("ada's disk", || {
        read(room.a().join("same.txt")).as_deref() == Some("unsaved\none\ntwo\n")
    })
    .await;
    assert_eq!(bob.text(&same).as_deref(), Some("unsaved\none\ntwo\n"));

    // Different on disk and in the room with nothing to tell who changed what: the buffer
    // keeps bob's text, the room keeps ada's, her version is beside his, and he is told.
    bob.wait_for("the conflict message", |c| {
        c.notifications("window/showMessage").iter().any(|m| {
            let m = m["message"].as_str().unwrap_or("");
            m.contains("differs.txt") && m.contains("mesh-proxy resolve differs.txt")
        })
    })
    .await
    .unwrap();
    assert_eq!(bob.text(&differs).as_deref(), Some("x\ny (bob, unsaved)\n"));
    assert_eq!(
        read(room.b().join(".mesh/conflicts/differs.txt")).as_deref(),
        Some("x\ny (ada)\n")
    );
    assert_eq!(room.y.text("differs.txt").as_deref(), Some("x\ny (ada)\n"));
    // Held out of the room until resolved: more typing stays local.
    bob.edit(&differs, 0, 0, "still mine\n").await.unwrap();
    std::fs::write(room.a().join("same.txt"), "unsaved\none\ntwo\nlater\n").unwrap();
    bob.wait_for("a later room change to the other file", |c| {
        c.text(&same).as_deref() == Some("unsaved\none\ntwo\nlater\n")
    })
    .await
    .unwrap();
    assert_eq!(room.y.text("differs.txt").as_deref(), Some("x\ny (ada)\n"));

    // Resolving: bob takes ada's line into his buffer, then resolves; his text is shared.
    let text = bob.text(&differs).unwrap();
    let at = text.len();
    bob.edit(&differs, at, at, "y (ada)\n").await.unwrap();
    let out = run(&room.bob_state(), &room.b(), &["resolve", "differs.txt"]).await;
    assert!(out.contains("Resolved differs.txt"), "{out}");
    let want = "still mine\nx\ny (bob, unsaved)\ny (ada)\n";
    room.room_has("differs.txt", want).await;
    eventually("ada's disk", || {
        read(room.a().join("differs.txt")).as_deref() == Some(want)
    })
    .await;
    assert!(!room.b().join(".mesh/conflicts/differs.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_made_while_no_proxy_ran_are_merged_when_the_editor_reopens_the_folder() {
    let server = TestServer::start().unwrap();
    let room = Room::shared(
        &server,
        &[("notes.txt", "one\ntwo\nthree\n"), ("clash.txt", "first\nsecond\n")],
    )
    .await;
    let (join, _) = room.bob_joins(&server).await;
    join.stop().await;
    // Bob works offline; ada works in the room meanwhile.
    std::fs::write(room.b().join("notes.txt"), "one (bob)\ntwo\nthree\n").unwrap();
    std::fs::write(room.b().join("clash.txt"), "first\nsecond (bob)\n").unwrap();
    std::fs::write(room.a().join("notes.txt"), "one\ntwo\nthree (ada)\n").unwrap();
    std::fs::write(room.a().join("clash.txt"), "first\nsecond (ada)\n").unwrap();
    room.room_has("clash.txt", "first\nsecond (ada)\n").await;
    room.room_has("notes.txt", "one\ntwo\nthree (ada)\n").await;

    // Bob's editor reopens the folder; its proxy rejoins from sessions.json.
    let bob = LspClient::start(&room.b(), "bob", &server.url).await.unwrap();
    let merged = "one (bob)\ntwo\nthree (ada)\n";
    room.room_has("notes.txt", merged).await;
    eventually("both disks merged", || {
        read(room.a().join("notes.txt")).as_deref() == Some(merged)
            && read(room.b().join("notes.txt")).as_deref() == Some(merged)
    })
    .await;
    // The same line changed on both sides: bob's file keeps his line, ada's is beside it.
    bob.wait_for("the conflict message", |c| {
        c.notifications("window/showMessage")
            .iter()
            .any(|m| m["message"].as_str().unwrap_or("").contains("clash.txt"))
    })
    .await
    .unwrap();
    assert_eq!(
        read(room.b().join("clash.txt")).as_deref(),
        Some("first\nsecond (bob)\n")
    );
    assert_eq!(
        read(room.b().join(".mesh/conflicts/clash.txt")).as_deref(),
        Some("first\nsecond (ada)\n")
    );
    assert_eq!(room.y.text("clash.txt").as_deref(), Some("first\nsecond (ada)\n"));
    // `status` lists it, with what to do.
    let status = run(&room.bob_state(), &room.b(), &["status"]).await;
    assert!(
        status.contains("Conflicts: 1") && status.contains("mesh-proxy resolve clash.txt"),
        "{status}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&run(&room.bob_state(), &room.b(), &["status", "--json"]).await).unwrap();
    assert_eq!(json["conflicts"], json!(["clash.txt"]));

    // Deleting the copy resolves it too: bob's text goes to the room.
    std::fs::remove_file(room.b().join(".mesh/conflicts/clash.txt")).unwrap();
    room.room_has("clash.txt", "first\nsecond (bob)\n").await;
    eventually("ada's disk", || {
        read(room.a().join("clash.txt")).as_deref() == Some("first\nsecond (bob)\n")
    })
    .await;
    let json: serde_json::Value =
        serde_json::from_str(&run(&room.bob_state(), &room.b(), &["status", "--json"]).await).unwrap();
    assert_eq!(json["conflicts"], json!([]));
    bob.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_again_merges_offline_edits_and_reports_what_it_kept() {
    let server = TestServer::start().unwrap();
    let room = Room::shared(&server, &[("a.txt", "1\n2\n3\n"), ("b.txt", "x\n")]).await;
    let (join, _) = room.bob_joins(&server).await;
    join.stop().await;
    std::fs::write(room.b().join("a.txt"), "1\n2\n3\n4 (offline)\n").unwrap();
    std::fs::write(room.b().join("b.txt"), "x (bob)\n").unwrap();
    std::fs::write(room.a().join("b.txt"), "x (ada)\n").unwrap();
    room.room_has("b.txt", "x (ada)\n").await;
    // `mesh-proxy join` again (the proxy restarted): the same merge as a first join.
    let mut join = cli(
        &server,
        &room.bob_state(),
        &["join", &room.link, room.b().to_str().unwrap()],
    )
    .await;
    join.line_starting("Joined").await;
    let kept = join.line_starting("  kept your local version").await;
    assert!(
        kept.contains("b.txt") && kept.contains(".mesh/conflicts/b.txt") && kept.contains("mesh-proxy resolve b.txt"),
        "{kept}"
    );
    room.room_has("a.txt", "1\n2\n3\n4 (offline)\n").await;
    assert_eq!(read(room.b().join("b.txt")).as_deref(), Some("x (bob)\n"));
    join.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_written_right_after_joined_are_shared() {
    let server = TestServer::start().unwrap();
    let room = Room::shared(&server, &[("a.txt", "a\n")]).await;
    let (join, _) = room.bob_joins(&server).await;
    // At once, as a script would.
    std::fs::write(room.b().join("a.txt"), "a\nb\n").unwrap();
    std::fs::write(room.b().join("new.txt"), "new\n").unwrap();
    room.room_has("a.txt", "a\nb\n").await;
    room.room_has("new.txt", "new\n").await;
    eventually("ada's disk", || {
        read(room.a().join("a.txt")).as_deref() == Some("a\nb\n")
            && read(room.a().join("new.txt")).as_deref() == Some("new\n")
    })
    .await;
    join.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_room_file_over_a_local_file_is_a_reported_conflict_never_an_overwrite() {
    let server = TestServer::start().unwrap();
    let room = Room::shared(&server, &[("a.txt", "a\n")]).await;
    std::fs::write(room.b().join(".gitignore"), ".env\n").unwrap();
    std::fs::write(room.b().join(".env"), "SECRET=bob\n").unwrap();
    let (join, _) = room.bob_joins(&server).await;
    // Ada adds a file of that name to the room, the way a copy or a download does: empty
    // at first, then filled. Bob's copy of the room's version follows.
    std::fs::write(room.a().join(".env"), "").unwrap();
    room.room_has(".env", "").await;
    eventually("the room's empty version kept beside bob's", || {
        read(room.b().join(".mesh/conflicts/.env")).as_deref() == Some("")
    })
    .await;
    std::fs::write(room.a().join(".env"), "SECRET=ada\n").unwrap();
    room.room_has(".env", "SECRET=ada\n").await;
    eventually("the room's version kept beside bob's", || {
        read(room.b().join(".mesh/conflicts/.env")).as_deref() == Some("SECRET=ada\n")
    })
    .await;
    assert_eq!(read(room.b().join(".env")).as_deref(), Some("SECRET=bob\n"));
    let json: serde_json::Value =
        serde_json::from_str(&run(&room.bob_state(), &room.b(), &["status", "--json"]).await).unwrap();
    assert_eq!(json["conflicts"], json!([".env"]));
    join.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_editor_lists_conflicts_and_resolves_one_with_mesh_resolve() {
    let server = TestServer::start().unwrap();
    let room = Room::shared(&server, &[("clash.txt", "first\nsecond\n")]).await;
    let (join, _) = room.bob_joins(&server).await;
    join.stop().await;
    std::fs::write(room.b().join("clash.txt"), "first\nsecond (bob)\n").unwrap();
    std::fs::write(room.a().join("clash.txt"), "first\nsecond (ada)\n").unwrap();
    room.room_has("clash.txt", "first\nsecond (ada)\n").await;
    let bob = LspClient::start(&room.b(), "bob", &server.url).await.unwrap();
    bob.wait_for("the conflict in mesh/status", |c| {
        c.notifications("mesh/status")
            .last()
            .is_some_and(|s| s["conflicts"] == json!(["clash.txt"]))
    })
    .await
    .unwrap();
    let status = bob.request("mesh/status", json!({})).await.unwrap();
    assert_eq!(status["conflicts"], json!(["clash.txt"]), "{status}");
    // Bob takes ada's line into his file, then resolves from the editor.
    std::fs::write(room.b().join("clash.txt"), "first\nsecond (bob)\nsecond (ada)\n").unwrap();
    let uri = format!("file://{}", room.b().join("clash.txt").display());
    bob.request("mesh/resolve", json!({ "uri": uri })).await.unwrap();
    room.room_has("clash.txt", "first\nsecond (bob)\nsecond (ada)\n").await;
    assert!(!room.b().join(".mesh/conflicts/clash.txt").exists());
    let status = bob.request("mesh/status", json!({})).await.unwrap();
    assert!(status.get("conflicts").is_none(), "{status}");
    let again = bob
        .request("mesh/resolve", json!({ "path": "clash.txt" }))
        .await
        .unwrap_err()
        .to_string();
    assert!(again.contains("not in conflict"), "{again}");
    bob.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_again_continues_the_same_room_as_its_host_and_merges_offline_edits() {
    let server = TestServer::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state) = (tmp.path().join("proj"), tmp.path().join(".state"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), "one\n").unwrap();
    let mut share = cli(&server, &state, &["share", dir.to_str().unwrap()]).await;
    let first = share.line_starting("Join link (writer):").await;
    share.stop().await;
    // Offline work, then the same command again: the same room, the same links, the work
    // merged into it, and the sharer still its host.
    std::fs::write(dir.join("a.txt"), "one\ntwo (offline)\n").unwrap();
    let mut share = cli(&server, &state, &["share", dir.to_str().unwrap()]).await;
    let again = share.line_starting("Join link (writer):").await;
    assert_eq!(again, first, "the same room and writer link");
    let link = first.trim_start_matches("Join link (writer):").trim();
    let target = mesh_proxy::link::RoomTarget::parse(link).unwrap();
    let y = YClient::connect(&target.ws_url()).await.unwrap();
    y.wait_for("the offline edit in the room", |c| {
        c.text("a.txt").as_deref() == Some("one\ntwo (offline)\n")
    })
    .await
    .unwrap();
    let status: serde_json::Value = serde_json::from_str(&run(&state, &dir, &["status", "--json"]).await).unwrap();
    assert_eq!(status["room"], json!(target.room.to_string()), "{status}");
    assert_eq!(
        status["link"],
        json!(link),
        "status shows the writer link, never the host's"
    );
    assert_eq!(status["info"]["your_role"], "host", "{status}");
    let sharer = status["info"]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "cli")
        .cloned();
    assert_eq!(sharer.map(|p| p["role"].clone()), Some(json!("host")), "{status}");
    share.stop().await;
}
