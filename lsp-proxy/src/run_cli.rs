//! `mesh-proxy run [FILE]`: runs the room's program and streams its output to this
//! terminal (stdout to stdout, stderr and compiler output to stderr), forwards this
//! terminal's stdin, and exits with the program's exit code. When the server's caps on runs
//! are reached the run waits: its place in the queue is printed to stderr as it moves.

use std::io::Write;
use std::time::Duration;

use mesh_protocol::codec::{encode_mesh, Frame};
use mesh_protocol::messages::RunStream;
use mesh_protocol::{ClientMessage, Request, ServerMessage, PROTOCOL_VERSION};
use tokio::io::AsyncReadExt;

use crate::link::RoomTarget;
use crate::room::{self, Outgoing, RoomEvent};

/// How long to wait for the room to answer before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Exit code when the run could not happen at all (not the program's own code).
pub const EXIT_NO_RUN: i32 = 125;

/// The first frame of a command's room connection: `Hello` with the user's name, what kind
/// of client this is (`mesh-proxy run`, `mesh-proxy dap`), and whether it is a companion of
/// the user's editor (not listed as another person).
pub fn hello(name: String, client: &str, companion: bool) -> Vec<u8> {
    encode_mesh(&ClientMessage::Hello {
        version: PROTOCOL_VERSION,
        name,
        color: None,
        client: Some(client.into()),
        doc_client_id: None,
        companion,
    })
}

/// Runs `path` of the room at `target`; returns the process exit code to use.
pub async fn run(
    target: RoomTarget,
    tls: crate::tls::Tls,
    path: String,
    language: Option<String>,
    name: String,
) -> anyhow::Result<i32> {
    // Connect and say hello.
    let (conn, mut events) = room::connect_once(target, tls, CONNECT_TIMEOUT).await?;
    conn.tx.send(Outgoing::Frame(hello(name, "mesh-proxy run", false)))?;
    // The run request's id: the server's answer (queued, started or refused) names it.
    const RUN_REQUEST: u64 = 1;
    let run = ClientMessage::Run {
        path: path.clone(),
        language,
    };
    conn.tx
        .send(Outgoing::Frame(encode_mesh(&Request::new(RUN_REQUEST, run))))?;

    let mut run_id: Option<String> = None;
    // The program reads stdin only once it started; a queued run is not fed yet.
    let mut started = false;
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 8192];
    let mut stdin_open = true;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(RoomEvent::Frames(frames)) => {
                    for f in frames {
                        let Frame::Mesh(msg) = f else { continue };
                        let ours = |id: &str, responding_to: Option<u64>, run_id: &Option<String>| match run_id {
                            Some(known) => known == id,
                            None => responding_to == Some(RUN_REQUEST),
                        };
                        match msg {
                            ServerMessage::RunQueued { run_id: id, position, limit, debug: false, responding_to, .. } if ours(&id, responding_to, &run_id) => {
                                eprintln!("mesh-proxy: {}", mesh_protocol::messages::queued_text(position, &limit));
                                run_id = Some(id);
                            }
                            ServerMessage::RunStarted { run_id: id, responding_to, .. } if ours(&id, responding_to, &run_id) => {
                                if run_id.is_some() {
                                    eprintln!("mesh-proxy: the run started");
                                }
                                run_id = Some(id);
                                started = true;
                            }
                            ServerMessage::RunOutput { run_id: id, stream, data } if Some(&id) == run_id.as_ref() => {
                                match stream {
                                    RunStream::Stdout => { print!("{data}"); let _ = std::io::stdout().flush(); }
                                    _ => { eprint!("{data}"); }
                                }
                            }
                            ServerMessage::RunExited { run_id: id, stage, code, limit, error, .. } if Some(&id) == run_id.as_ref() => {
                                if let Some(e) = error {
                                    eprintln!("mesh-proxy: the run failed: {e}");
                                    return Ok(EXIT_NO_RUN);
                                }
                                if let Some(l) = limit {
                                    eprintln!("mesh-proxy: the run hit its {l} limit");
                                }
                                if stage == "compile" {
                                    eprintln!("mesh-proxy: compile error");
                                }
                                return Ok(code.unwrap_or(1) as i32);
                            }
                            ServerMessage::Error { message, responding_to: Some(RUN_REQUEST), .. } => {
                                anyhow::bail!("the server refused the run: {message}");
                            }
                            ServerMessage::Error { message, .. } => eprintln!("mesh-proxy: the server says: {message}"),
                            _ => {}
                        }
                    }
                }
                Some(RoomEvent::Fatal(e)) => anyhow::bail!(e),
                Some(RoomEvent::Disconnected { reason }) => anyhow::bail!("lost the room during the run: {reason}"),
                Some(RoomEvent::Connected) => {}
                None => anyhow::bail!("the connection ended"),
            },
            n = stdin.read(&mut buf), if stdin_open && started => {
                let id = run_id.clone().expect("checked by the guard");
                let (data, eof) = match n {
                    Ok(0) | Err(_) => (String::new(), true),
                    Ok(n) => (String::from_utf8_lossy(&buf[..n]).into_owned(), false),
                };
                stdin_open = !eof;
                conn.tx.send(Outgoing::Frame(encode_mesh(&ClientMessage::Input { run_id: id, data, eof })))?;
            }
        }
    }
}
