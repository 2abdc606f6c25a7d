//! The `mesh-proxy` command line.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{CommandFactory, Parser, Subcommand};
use mesh_proxy::config::{self, Config};
use mesh_proxy::link::RoomTarget;
use mesh_proxy::lsp_ext::ShareParams;
use mesh_proxy::session::{self, Event, Identity, Request};
use mesh_proxy::tls::Tls;
use mesh_proxy::workspace::{FolderLimits, MAX_FILES, MAX_TOTAL_BYTES};
use tokio::sync::oneshot;

#[derive(Parser)]
#[command(
    name = "mesh-proxy",
    version,
    about = "Collaborate on code from your editor: the local side of mesh."
)]
struct Cli {
    /// Server base URL (default: config file, $MESH_SERVER, or http://127.0.0.1:7420).
    #[arg(long, global = true)]
    server: Option<String>,
    /// Your display name (default: config file, $MESH_NAME, or $USER).
    #[arg(long, global = true)]
    name: Option<String>,
    /// The token a server that restricts room creation asks for when sharing (default:
    /// config file `create_token`, or $MESH_CREATE_TOKEN).
    #[arg(long, global = true)]
    create_token: Option<String>,
    /// A PEM file of certificate authorities to trust besides the system's, for an https://
    /// server with a private CA (default: config file `ca_file`, or $MESH_CA_FILE).
    #[arg(long, global = true, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// The most files `share` uploads or `join` writes; more is refused before anything is
    /// sent or written (default: config file `max_folder_files`, $MESH_MAX_FOLDER_FILES, or 10000).
    #[arg(long, global = true, value_name = "N")]
    max_folder_files: Option<usize>,
    /// The most bytes of text `share` uploads or `join` writes, all files together (default:
    /// config file `max_folder_bytes`, $MESH_MAX_FOLDER_BYTES, or 67108864, 64 MiB).
    #[arg(long, global = true, value_name = "BYTES")]
    max_folder_bytes: Option<u64>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run as a Language Server on stdin/stdout (editors start this).
    Lsp {
        /// Accepted for editors that pass it; stdio is the only transport.
        #[arg(long)]
        stdio: bool,
    },
    /// Run as a Debug Adapter on stdin/stdout (editors start this): the editor's debugger
    /// joins the room's shared debug session.
    Dap {
        /// A folder in the room (default: the current one).
        #[arg(long)]
        folder: Option<PathBuf>,
    },
    /// Share a folder: create a room, upload the folder's text files, print the join link,
    /// and keep the folder in sync until interrupted.
    Share {
        /// The folder (default: the current one).
        dir: Option<PathBuf>,
    },
    /// Join a room into a folder and keep it in sync until interrupted.
    Join {
        /// The join link.
        link: String,
        /// The folder (default: the current one).
        dir: Option<PathBuf>,
    },
    /// Sign in to a server that has accounts (its OpenID Connect provider), by a code you
    /// enter in any browser; your editors and commands then show your verified name there.
    Login {
        /// The server (default: --server, the config file, $MESH_SERVER, or the local one).
        server: Option<String>,
    },
    /// Sign out of a server: ends the session there and forgets it here.
    Logout {
        /// The server (default as for `login`).
        server: Option<String>,
    },
    /// Show the room of a folder, who is in it, who you are, and its open conflicts.
    Status {
        /// The folder (default: the current one).
        dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Resolve a conflict: after taking what you need from the room's version kept in
    /// `.mesh/conflicts/FILE`, share your text of FILE (merged with what the room changed
    /// since). A running proxy does it at once; otherwise the next one does.
    Resolve {
        /// The file in conflict, relative to the current folder.
        file: String,
    },
    /// Send a chat message to the room of the current folder, or print the chat history.
    Chat {
        /// The message (none: print the history).
        text: Option<String>,
    },
    /// Run a file of the current folder's room in a sandbox and stream its output here.
    /// Exits with the program's exit code (125 when the run could not happen).
    Run {
        /// The file, relative to the shared folder.
        file: String,
        /// Override the language (see GET /api/languages).
        #[arg(long)]
        language: Option<String>,
    },
    /// Ask the room's ghost (an AI participant) from the current folder: prints its progress
    /// to stderr and its answer to stdout. Exits 0 when it answered, 1 when the request failed
    /// or was refused, 3 when a writer cancelled it.
    Ask {
        /// Have the ghost type the change into the files as it writes it (writers only).
        #[arg(long, conflicts_with = "explain")]
        write: bool,
        /// An answer in chat only; the only mode readers have.
        #[arg(long)]
        explain: bool,
        /// The file the request is about, relative to the current folder: sent with the
        /// request as the selection.
        #[arg(long)]
        file: Option<String>,
        /// The lines of --file the request is about, `A-B` (1-based; default: all of it).
        #[arg(long, requires = "file")]
        lines: Option<String>,
        /// What to ask.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Serve the Model Context Protocol on stdin/stdout (an MCP client starts this): a coding
    /// agent joins the room as a participant of its own, named by --name (default "agent"),
    /// with tools to list, read, search, edit and create files, run them, and chat.
    Mcp {
        /// The join link of the room (a reader link gives a reader agent).
        link: String,
        /// The agent's own folder, which the room's files are joined into and kept in sync
        /// with. Not a folder that another mesh-proxy (an editor's, `share`, `join`) syncs
        /// at the same time: two proxies syncing one folder echo each other's changes.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Host control for the room of the current folder: participants and roles, kick,
    /// admit or refuse joiners, approval, links, the audit trail. Needs the host role (the
    /// folder that shared the room, or a seat the host handed the role to).
    #[command(subcommand)]
    Host(mesh_proxy::host_cli::HostCmd),
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// The exit code of `share` or `join` when the room ended the session (kicked, refused, the
/// link revoked): distinct from 1 (could not start) so scripts can tell.
const EXIT_ENDED: i32 = 3;

/// The name an MCP agent joins under when `--name` does not give one.
const MCP_DEFAULT_NAME: &str = "agent";

fn identity(cli: &Cli, client: &str) -> anyhow::Result<Identity> {
    let cfg = Config::load()?;
    Ok(Identity {
        name: cli.name.clone().unwrap_or_else(|| cfg.name()),
        color: cfg.color.clone(),
        client: client.into(),
        server: cli
            .server
            .clone()
            .map(|s| s.trim_end_matches('/').to_string())
            .unwrap_or_else(|| cfg.server()),
        create_token: cli.create_token.clone().or(cfg.create_token).filter(|t| !t.is_empty()),
        tls: Tls::new(cli.ca_file.as_deref().or(cfg.ca_file.as_deref()))?,
        limits: FolderLimits {
            max_files: cli.max_folder_files.or(cfg.max_folder_files).unwrap_or(MAX_FILES),
            max_bytes: cli.max_folder_bytes.or(cfg.max_folder_bytes).unwrap_or(MAX_TOTAL_BYTES),
        },
    })
}

fn init_logs(lsp: bool) {
    // stdout carries the protocol in `lsp` and `dap` modes: logs always go to stderr (or a file).
    let filter = tracing_subscriber::EnvFilter::try_from_env("MESH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(if lsp { "info" } else { "warn" }));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false);
    match std::env::var_os("MESH_PROXY_LOG")
        .and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok())
    {
        Some(file) => builder.with_writer(std::sync::Mutex::new(file)).init(),
        None => builder.with_writer(std::io::stderr).init(),
    }
}

fn folder(dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = match dir {
        Some(d) => d,
        None => std::env::current_dir()?,
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    dir.canonicalize()
        .with_context(|| format!("cannot open {}", dir.display()))
}

/// Runs a session without an editor for a folder until Ctrl-C.
async fn headless(
    identity: Identity,
    dir: PathBuf,
    req: impl FnOnce(&tokio::sync::mpsc::UnboundedSender<Event>),
) -> anyhow::Result<tokio::sync::mpsc::UnboundedSender<Event>> {
    let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel();
    // No editor: show what the session wants to tell the user, drop the rest.
    tokio::spawn(async move {
        while let Some(out) = out_rx.recv().await {
            match out {
                session::EditorOut::Notify("mesh/notify" | "window/showMessage", v) => {
                    eprintln!("mesh: {}", v["message"].as_str().unwrap_or(""));
                }
                session::EditorOut::Notify("mesh/lobby", v) => {
                    eprintln!("mesh: {}", v["message"].as_str().unwrap_or(""));
                }
                session::EditorOut::Notify("mesh/presence" | "mesh/joinRequest", v) => {
                    let text = match v["message"].as_str() {
                        Some(m) => m.to_string(),
                        None => format!(
                            "{} asks to join: mesh-proxy host admit {} (or refuse)",
                            v["name"].as_str().unwrap_or(""),
                            v["seat"].as_str().unwrap_or("")
                        ),
                    };
                    eprintln!("mesh: {text}");
                }
                // Kicked, refused, the link revoked: the session is over (the message was
                // printed as a mesh/notify).
                session::EditorOut::Notify("mesh/ended", _) => std::process::exit(EXIT_ENDED),
                _ => {}
            }
        }
    });
    let (events, _task) = session::spawn(identity, out_tx);
    events.send(Event::Initialize {
        root: Some(dir),
        encoding: mesh_proxy::text::Encoding::Utf16,
        client: None,
    })?;
    req(&events);
    Ok(events)
}

async fn wait_for_interrupt() {
    let _ = tokio::signal::ctrl_c().await;
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    if let Err(e) = runtime.block_on(run()) {
        // Errors are for humans: the message chain, no backtrace.
        eprintln!("mesh-proxy: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logs(matches!(cli.command, Cmd::Lsp { .. } | Cmd::Dap { .. }));
    match &cli.command {
        Cmd::Lsp { .. } => {
            let client = std::env::var("MESH_CLIENT").unwrap_or_else(|_| "mesh-proxy".into());
            mesh_proxy::lsp::serve(identity(&cli, &client)?).await;
            // The stdin reader sits in a blocking read that the runtime would wait for; after
            // `exit` the process must end now, not when the editor closes the pipe.
            std::process::exit(0);
        }
        Cmd::Dap { folder } => {
            let dir = match folder {
                Some(d) => d.clone(),
                None => std::env::current_dir()?,
            };
            // A folder that cannot be resolved is reported to the editor when it launches.
            let dir = dir.canonicalize().unwrap_or(dir);
            let id = identity(&cli, "mesh-proxy dap")?;
            mesh_proxy::dap::serve(&dir, id.name, id.tls).await?;
            // As for `lsp`: the stdin reader may sit in a blocking read; end now.
            std::process::exit(0);
        }
        Cmd::Share { dir } => {
            let dir = folder(dir.clone())?;
            let id = identity(&cli, "mesh-proxy")?;
            let (tx, rx) = oneshot::channel();
            let events = headless(id, dir.clone(), |e| {
                let _ = e.send(Event::Request(Request::Share(ShareParams::default(), tx)));
            })
            .await?;
            let shared = rx.await?.map_err(anyhow::Error::msg)?;
            println!("Sharing {}", dir.display());
            println!("Join link (writer): {}", shared.link);
            println!("Read-only link:     {}", shared.read_link);
            println!("Press Ctrl-C to stop.");
            wait_for_interrupt().await;
            let _ = events.send(Event::Shutdown);
        }
        Cmd::Join { link, dir } => {
            RoomTarget::parse(link)?;
            let dir = folder(dir.clone())?;
            let id = identity(&cli, "mesh-proxy")?;
            let (tx, rx) = oneshot::channel();
            let link = link.clone();
            let events = headless(id, dir.clone(), |e| {
                let _ = e.send(Event::Request(Request::Join(link, tx)));
            })
            .await?;
            let joined = rx.await?.map_err(anyhow::Error::msg)?;
            println!(
                "Joined room {} into {} ({} files)",
                joined.room,
                dir.display(),
                joined.files
            );
            for c in &joined.conflicts {
                println!(
                    "  kept your local version of {c} (it differs from the room's, which is in {}); \
                     when you have taken what you need from it: mesh-proxy resolve {c}",
                    mesh_proxy::mesh_dir::conflict_display(c)
                );
            }
            println!("Press Ctrl-C to stop.");
            wait_for_interrupt().await;
            let _ = events.send(Event::Shutdown);
        }
        Cmd::Login { server } => {
            let id = identity(&cli, "mesh-proxy")?;
            let server = server
                .clone()
                .map_or(id.server.clone(), |s| s.trim_end_matches('/').to_string());
            let account = mesh_proxy::account::login(&id.tls, &server, |start| {
                println!("To sign in to {server}, open this page in a browser:");
                println!("  {}", start.verification_uri);
                println!("and enter the code {}", start.user_code);
                if let Some(complete) = &start.verification_uri_complete {
                    println!("(or open {complete}, which has the code in it)");
                }
                println!("Waiting for you to finish signing in…");
            })
            .await?;
            let email = account
                .user
                .email
                .as_deref()
                .map(|e| format!(" <{e}>"))
                .unwrap_or_default();
            println!("Signed in to {server} as {}{email}.", account.user.name);
        }
        Cmd::Logout { server } => {
            let id = identity(&cli, "mesh-proxy")?;
            let server = server
                .clone()
                .map_or(id.server.clone(), |s| s.trim_end_matches('/').to_string());
            match mesh_proxy::account::logout(&id.tls, &server).await? {
                Some(user) => println!("Signed out of {server} ({}).", user.name),
                None => println!("You were not signed in to {server}."),
            }
        }
        Cmd::Status { dir, json } => {
            let dir = folder(dir.clone())?;
            let id = identity(&cli, "mesh-proxy")?;
            status(&dir, *json, &id.tls, &id.server).await?;
        }
        Cmd::Resolve { file } => {
            let dir = folder(None)?;
            let rec = config::session_for(&dir)
                .context("this folder is not in a room: run `mesh-proxy share` or `mesh-proxy join` first")?;
            let target = RoomTarget::parse(&rec.link)?;
            let path =
                mesh_proxy::workspace::rel_path(&rec.dir, &dir.join(file)).unwrap_or_else(|| file.replace('\\', "/"));
            mesh_proxy::mesh_dir::resolve(&rec.dir, &target.room.to_string(), &path)?;
            println!(
                "Resolved {path}: a running mesh-proxy shares your text now (merged with what the room \
                 changed since); otherwise the next one does."
            );
        }
        Cmd::Chat { text } => {
            let dir = folder(None)?;
            let rec = config::session_for(&dir)
                .context("this folder is not in a room: run `mesh-proxy share` or `mesh-proxy join` first")?;
            let id = identity(&cli, "mesh-proxy")?;
            let (tx, rx) = oneshot::channel();
            let events = headless(id, dir.clone(), |_| {}).await?;
            // Wait until the session is connected (it rejoins the folder's room).
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let (stx, srx) = oneshot::channel();
                events.send(Event::Request(Request::Status(stx)))?;
                if srx.await?.state == "connected" {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    bail!(
                        "cannot reach the room of {} ({})",
                        dir.display(),
                        RoomTarget::parse(&rec.link).map(|t| t.server).unwrap_or_default()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            match text {
                Some(t) => {
                    events.send(Event::Request(Request::Chat(t.clone(), tx)))?;
                    rx.await?.map_err(anyhow::Error::msg)?;
                    // Give the frame a moment to leave before the process exits.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                None => {
                    let (htx, hrx) = oneshot::channel();
                    events.send(Event::Request(Request::ChatHistory(htx)))?;
                    for m in hrx.await?.messages {
                        println!("{}: {}", m.author, m.text);
                    }
                }
            }
        }
        Cmd::Run { file, language } => {
            let dir = folder(None)?;
            let rec = config::session_for(&dir)
                .context("this folder is not in a room: run `mesh-proxy share` or `mesh-proxy join` first")?;
            let target = rec.target()?;
            // The file, as a room path relative to the shared folder.
            let abs = dir.join(file);
            let path = mesh_proxy::workspace::rel_path(&rec.dir, &abs).unwrap_or_else(|| file.replace('\\', "/"));
            let id = identity(&cli, "mesh-proxy")?;
            let code = mesh_proxy::run_cli::run(target, id.tls, path, language.clone(), id.name).await?;
            std::process::exit(code);
        }
        Cmd::Ask {
            write,
            explain,
            file,
            lines,
            text,
        } => {
            let dir = folder(None)?;
            let rec = config::session_for(&dir)
                .context("this folder is not in a room: run `mesh-proxy share` or `mesh-proxy join` first")?;
            let target = rec.target()?;
            let lines = lines
                .as_deref()
                .map(mesh_proxy::ask_cli::parse_lines)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let selection = match file {
                Some(file) => {
                    let abs = dir.join(file);
                    let path =
                        mesh_proxy::workspace::rel_path(&rec.dir, &abs).unwrap_or_else(|| file.replace('\\', "/"));
                    let content = std::fs::read_to_string(&abs).with_context(|| {
                        format!("cannot read {}: name a text file of the shared folder", abs.display())
                    })?;
                    Some(mesh_proxy::ask_cli::selection(&path, &content, lines))
                }
                None => None,
            };
            let mode = if *write {
                Some(mesh_protocol::ghost::GhostMode::Write)
            } else if *explain {
                Some(mesh_protocol::ghost::GhostMode::Explain)
            } else {
                None
            };
            let id = identity(&cli, "mesh-proxy")?;
            let code = mesh_proxy::ask_cli::ask(target, id.tls, id.name, text.join(" "), mode, selection).await?;
            std::process::exit(code);
        }
        Cmd::Mcp { link, dir } => {
            RoomTarget::parse(link)?;
            let dir = folder(Some(dir.clone()))?;
            let mut id = identity(&cli, "mesh-proxy mcp")?;
            // An agent is not the user: it joins under its own name unless given one.
            id.name = cli.name.clone().unwrap_or_else(|| MCP_DEFAULT_NAME.into());
            mesh_proxy::mcp::serve(id, dir, link.clone()).await?;
            // Let the last frames leave, then end now: the stdin reader may sit in a blocking
            // read the runtime would wait for.
            tokio::time::sleep(Duration::from_millis(200)).await;
            std::process::exit(0);
        }
        Cmd::Host(_) => {
            let dir = folder(None)?;
            let rec = config::session_for(&dir)
                .context("this folder is not in a room: run `mesh-proxy share` or `mesh-proxy join` first")?;
            let api = mesh_proxy::host_api::HostApi::new(identity(&cli, "mesh-proxy")?.tls, rec.target()?);
            // `cmd` is moved out of `cli` after `identity` borrowed it.
            let Cmd::Host(cmd) = cli.command else {
                unreachable!("matched above")
            };
            mesh_proxy::host_cli::run(&api, cmd).await?;
        }
        Cmd::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "mesh-proxy", &mut std::io::stdout());
        }
    }
    Ok(())
}

/// Who we are on `server`, as a sentence and as JSON: signed in (verified), or not.
async fn who_we_are(tls: &Tls, server: &str) -> (String, serde_json::Value) {
    match mesh_proxy::account::whoami(tls, server).await {
        Ok(me) => match me.user {
            Some(u) => {
                let email = u.email.as_deref().map(|e| format!(" <{e}>")).unwrap_or_default();
                (format!("{}{email}, signed in (verified)", u.name), serde_json::json!(u))
            }
            None if me.accounts => (
                "not signed in: your name is unverified here (mesh-proxy login)".into(),
                serde_json::Value::Null,
            ),
            None => (
                "this server has no accounts: names are unverified".into(),
                serde_json::Value::Null,
            ),
        },
        Err(e) => (format!("unknown ({e})"), serde_json::Value::Null),
    }
}

async fn status(dir: &std::path::Path, json: bool, tls: &Tls, default_server: &str) -> anyhow::Result<()> {
    let Some(rec) = config::session_for(dir) else {
        let (you, user) = who_we_are(tls, default_server).await;
        if json {
            println!(
                "{}",
                serde_json::json!({ "state": "idle", "dir": dir, "server": default_server, "user": user })
            );
        } else {
            println!("{} is not in a room.", dir.display());
            println!("You:     {you} on {default_server}");
        }
        return Ok(());
    };
    let target = rec.target()?;
    let (you, user) = who_we_are(tls, &target.server).await;
    let conflicts = mesh_proxy::mesh_dir::conflicts(&rec.dir);
    let url = format!("{}/api/sessions/{}", target.server, target.room);
    let resp = mesh_proxy::account::with_user(tls.http().get(&url), &target.server)
        .bearer_auth(&target.token)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    // A certificate problem is not "unreachable right now": say what it is.
    let tls_problem = resp.as_ref().err().and_then(|e| tls.explain(e, &target.server));
    let info: Option<mesh_protocol::rest::SessionInfo> = match resp {
        Ok(r) if r.status().is_success() => r.json().await.ok(),
        _ => None,
    };
    // The link to hand out: a sharer's own link carries the host's token, which stays here.
    let link = rec.share_link.clone().unwrap_or_else(|| rec.link.clone());
    if json {
        let v = serde_json::json!({
            "state": if info.is_some() { "reachable" } else { "unreachable" },
            "dir": rec.dir,
            "server": target.server,
            "room": target.room.to_string(),
            "link": link,
            "info": info,
            "tls_problem": tls_problem,
            "conflicts": conflicts,
            "user": user,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("Folder:  {}", rec.dir.display());
    println!("Room:    {} on {}", target.room, target.server);
    println!("Link:    {link}");
    println!("You:     {you}");
    match info {
        Some(info) => {
            println!("Files:   {}", info.files.len());
            println!("People:  {}", info.participants.len());
            for p in info.participants {
                let mark = if p.verified { ", verified" } else { ", unverified" };
                println!("  - {} ({:?}{mark}, {})", p.name, p.role, p.client);
            }
        }
        None => match tls_problem {
            Some(problem) => println!("Server:  {problem}"),
            None => println!("Server:  unreachable right now"),
        },
    }
    if !conflicts.is_empty() {
        println!(
            "Conflicts: {} (your text kept; the room's version beside it)",
            conflicts.len()
        );
        for c in &conflicts {
            println!(
                "  - {c}: the room's version is in {}; then: mesh-proxy resolve {c}",
                mesh_proxy::mesh_dir::conflict_display(c)
            );
        }
    }
    Ok(())
}
