//! Runs of the room as this proxy sees them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mesh_protocol::codec::encode_mesh;
use mesh_protocol::messages::Role;
use mesh_protocol::ClientMessage;
use tokio::sync::oneshot;

use super::*;
use crate::lsp_ext::*;
use crate::room::Outgoing;

/// How long the server may take to answer a run request; it answers before the container
/// starts, so only a lost connection or a stuck room takes this long.
pub(super) const RUN_START_TIMEOUT: Duration = Duration::from_secs(15);

/// The most stdin text one `mesh/runInput` may carry: what a person types or pastes, not a
/// file upload.
pub const MAX_RUN_INPUT_BYTES: usize = 64 * 1024;

/// Input goes to the server in pieces of at most this many bytes: even when every byte needs
/// JSON's six-byte escape, a piece's message stays under the 64 KiB mesh message limit.
pub(super) const INPUT_CHUNK_BYTES: usize = 8 * 1024;

/// Language ids are short words; a longer one is a mistake, refused before it travels.
pub(super) const MAX_LANGUAGE_BYTES: usize = 64;

/// Where a run request's answer goes.
pub(super) type RunReply = oneshot::Sender<Result<RunResult, String>>;

/// A run the room announced and has not seen end.
pub(super) struct ActiveRun {
    /// Who started it (connection id).
    pub(super) by: u64,
    /// When its start arrived here.
    pub(super) started: Instant,
}

/// A run request sent to the server, waiting for its `RunStarted` or its refusal.
pub(super) struct PendingRun {
    /// The room path asked for.
    pub(super) path: String,
    /// Where the answer goes.
    pub(super) reply: RunReply,
    /// When it was sent.
    pub(super) sent: Instant,
}

/// The room's runs: those going (seen starting since we joined) and our own request in flight.
/// One request at a time: the server answers a refusal with a bare `Error`, which can only be
/// tied to the request while no other one waits.
#[derive(Default)]
pub(super) struct Runs {
    pub(super) active: HashMap<String, ActiveRun>,
    pub(super) pending: Option<PendingRun>,
}

/// Runs: the editor's `mesh/run*` requests go to the room; the room's run messages come back
/// to the editor as notifications, for every run in the room.
impl Session {
    /// The room, when it is connected and synced; else what to tell the user.
    pub(super) fn connected_room(&self) -> Result<&Room, String> {
        match &self.room {
            None => Err("not in a room: share the folder or join a room first".into()),
            Some(r) if r.state == ConnState::Connected && r.synced => Ok(r),
            Some(_) => Err("not connected to the room right now; try again when the connection is back".into()),
        }
    }

    pub(super) fn on_run_request(&mut self, params: RunParams, reply: RunReply) {
        let path = match self.check_run(&params) {
            Ok(path) => path,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let Some(room) = self.room.as_mut() else { return };
        let run = ClientMessage::Run {
            path: path.clone(),
            language: params.language,
        };
        let _ = room.conn.tx.send(Outgoing::Frame(encode_mesh(&run)));
        room.runs.pending = Some(PendingRun {
            path,
            reply,
            sent: Instant::now(),
        });
    }

    /// Checks a run request before it travels; returns the room path to run.
    pub(super) fn check_run(&self, params: &RunParams) -> Result<String, String> {
        let room = self.connected_room()?;
        if !self.can_write() {
            return Err("you joined as a reader: readers may watch runs but not start them".into());
        }
        if room.runs.pending.is_some() {
            return Err("a run request is already waiting for the server's answer; wait for it".into());
        }
        if params.language.as_ref().is_some_and(|l| l.len() > MAX_LANGUAGE_BYTES) {
            return Err(format!("a language id is at most {MAX_LANGUAGE_BYTES} bytes"));
        }
        let path = match (&params.uri, &params.path) {
            (Some(uri), _) => self.room_path(uri).ok_or_else(|| match &self.root {
                Some(root) => format!(
                    "{uri} is not in the shared folder {}; only the room's files can run",
                    root.display()
                ),
                None => "open the shared folder first: runs take files of the room".to_string(),
            })?,
            (None, Some(path)) => path.clone(),
            (None, None) => return Err("say which file to run: mesh/run takes a `uri` or a `path`".into()),
        };
        if self.text_ref(&path).is_none() {
            return Err(format!(
                "no file {path:?} in this room; only files of the shared folder can run"
            ));
        }
        Ok(path)
    }

    /// Checks a `mesh/runInput` and sends it in pieces the server accepts.
    pub(super) fn run_input(&self, params: RunInputParams) -> Result<(), String> {
        if params.data.len() > MAX_RUN_INPUT_BYTES {
            return Err(format!(
                "{} bytes of input is too much at once: send at most {} KiB per mesh/runInput",
                params.data.len(),
                MAX_RUN_INPUT_BYTES / 1024
            ));
        }
        let room = self.connected_room()?;
        if !self.can_write() {
            return Err("you joined as a reader: readers may not type into a run".into());
        }
        if !room.runs.active.contains_key(&params.run_id) {
            return Err(format!("no run {} is going (it may have ended)", params.run_id));
        }
        for (data, eof) in input_chunks(&params.data, params.eof) {
            let msg = ClientMessage::Input {
                run_id: params.run_id.clone(),
                data,
                eof,
            };
            let _ = room.conn.tx.send(Outgoing::Frame(encode_mesh(&msg)));
        }
        Ok(())
    }

    /// Checks a `mesh/runStop` against what the server allows, then sends it.
    pub(super) fn run_stop(&self, run_id: &str) -> Result<(), String> {
        let room = self.connected_room()?;
        let Some(run) = room.runs.active.get(run_id) else {
            return Err(format!("no run {run_id} is going (it may have ended)"));
        };
        if room.conn_id != Some(run.by) && room.role != Some(Role::Host) {
            return Err("only who started a run (or the host) may stop it".into());
        }
        let msg = ClientMessage::Stop {
            run_id: run_id.to_string(),
        };
        let _ = room.conn.tx.send(Outgoing::Frame(encode_mesh(&msg)));
        Ok(())
    }

    pub(super) fn on_run_started(&mut self, run_id: String, path: String, language: String, by: u64) {
        let uri = self.local_uri(&path);
        let Some(room) = self.room.as_mut() else { return };
        room.runs.active.insert(
            run_id.clone(),
            ActiveRun {
                by,
                started: Instant::now(),
            },
        );
        let you = room.conn_id == Some(by);
        if you {
            if let Some(pending) = room.runs.pending.take_if(|p| p.path == path) {
                let _ = pending.reply.send(Ok(RunResult {
                    run_id: run_id.clone(),
                    queued: None,
                }));
            }
        }
        let by_name = participant_name(room, by);
        self.notify::<RunStartedNotification>(RunStartedParams {
            run_id,
            path,
            uri,
            language,
            by,
            by_name,
            you,
        });
    }

    /// A run of the room waits for a free sandbox: it is tracked like a going run (so it can
    /// be stopped, and its start or end is recognised), our own request is answered with
    /// its place, and the editor is told each time it moves.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_run_queued(
        &mut self,
        run_id: String,
        path: String,
        language: String,
        by: u64,
        position: u32,
        limit: String,
        debug: bool,
    ) {
        let uri = self.local_uri(&path);
        let Some(room) = self.room.as_mut() else { return };
        room.runs.active.entry(run_id.clone()).or_insert(ActiveRun {
            by,
            started: Instant::now(),
        });
        let you = room.conn_id == Some(by);
        if you && !debug {
            if let Some(pending) = room.runs.pending.take_if(|p| p.path == path) {
                let _ = pending.reply.send(Ok(RunResult {
                    run_id: run_id.clone(),
                    queued: Some(position),
                }));
            }
        }
        let by_name = participant_name(room, by);
        let message = mesh_protocol::messages::queued_text(position, &limit);
        self.notify::<RunQueuedNotification>(RunQueuedParams {
            run_id,
            path,
            uri,
            language,
            by,
            by_name,
            you,
            position,
            limit,
            debug,
            message,
        });
    }

    /// Tells the editor of a debug session in the room, so that it can offer to join it.
    pub(super) fn on_debug_started(&self, debug_id: String, path: String, language: String, by: u64) {
        let uri = self.local_uri(&path);
        let Some(room) = self.room.as_ref() else { return };
        let you = room.conn_id == Some(by);
        let by_name = participant_name(room, by);
        self.notify::<DebugStartedNotification>(DebugStartedParams {
            debug_id,
            path,
            uri,
            language,
            by,
            by_name,
            you,
        });
    }

    /// Fails a run request the server has not answered in time.
    pub(super) fn expire_run_request(&mut self, now: Instant) {
        let Some(room) = self.room.as_mut() else { return };
        if let Some(pending) = room
            .runs
            .pending
            .take_if(|p| now.duration_since(p.sent) > RUN_START_TIMEOUT)
        {
            let _ = pending.reply.send(Err(format!(
                "the server did not start the run within {} s; check the connection and try again",
                RUN_START_TIMEOUT.as_secs()
            )));
        }
    }

    /// Ends what this proxy tracks of the room's runs when it stops hearing about them: the
    /// request in flight fails, and every run going ends for the editor with `why`, so no
    /// output view waits forever for an exit it cannot see.
    pub(super) fn abandon_runs(&mut self, why: &str) {
        let Some(room) = self.room.as_mut() else { return };
        let runs = std::mem::take(&mut room.runs);
        if let Some(pending) = runs.pending {
            let _ = pending
                .reply
                .send(Err(format!("{why} before the run started; try again")));
        }
        for (run_id, run) in runs.active {
            self.notify::<RunExitedNotification>(RunExitedParams {
                run_id,
                stage: "run".into(),
                code: None,
                duration_ms: run.started.elapsed().as_millis() as u64,
                limit: None,
                error: Some(format!("{why}; the rest of this run is not shown here")),
            });
        }
    }
}

/// Splits stdin text into pieces of at most [`INPUT_CHUNK_BYTES`], on character boundaries;
/// only the last piece carries `eof`. Empty text without `eof` sends nothing.
pub(super) fn input_chunks(data: &str, eof: bool) -> Vec<(String, bool)> {
    let mut pieces = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let mut end = rest.len().min(INPUT_CHUNK_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        pieces.push((rest[..end].to_string(), false));
        rest = &rest[end..];
    }
    match pieces.last_mut() {
        Some(last) => last.1 = eof,
        None if eof => pieces.push((String::new(), true)),
        None => {}
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn input_is_cut_on_character_boundaries_with_eof_on_the_last_piece() {
        let text = "é".repeat(INPUT_CHUNK_BYTES); // two bytes each: twice the chunk size
        let pieces = input_chunks(&text, true);
        assert_eq!(pieces.len(), 2);
        assert!(pieces.iter().all(|(p, _)| p.len() <= INPUT_CHUNK_BYTES));
        assert_eq!(pieces.iter().map(|(p, _)| p.as_str()).collect::<String>(), text);
        assert_eq!(pieces.iter().map(|(_, eof)| *eof).collect::<Vec<_>>(), [false, true]);
    }

    #[test]
    pub(super) fn empty_input_sends_only_an_eof() {
        assert_eq!(input_chunks("", true), [(String::new(), true)]);
        assert!(input_chunks("", false).is_empty());
        assert_eq!(input_chunks("x\n", false), [("x\n".to_string(), false)]);
    }

    #[test]
    pub(super) fn the_largest_input_fits_the_mesh_message_limit_even_fully_escaped() {
        let worst = "\u{1}".repeat(MAX_RUN_INPUT_BYTES);
        for (data, eof) in input_chunks(&worst, true) {
            let msg = ClientMessage::Input {
                run_id: "f".repeat(16),
                data,
                eof,
            };
            assert!(serde_json::to_vec(&msg).unwrap().len() <= mesh_protocol::MAX_MESH_MESSAGE_BYTES);
        }
    }
}
