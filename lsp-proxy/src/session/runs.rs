//! The room's runs as this proxy sees them: the editor's `mesh/run*` requests checked and
//! turned into room messages, and the room's run messages turned into notifications for
//! every run in the room. Sans-IO: every method takes what it needs (the time included) and
//! returns what to send; the session's loop sends it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mesh_protocol::{ClientMessage, ErrorCode, Request as RoomRequest};

use super::{notify, tell, Effect, Standing};
use crate::lsp_ext::*;

/// How long the server may take to answer a run request; it answers before the container
/// starts, so only a lost connection or a stuck room takes this long.
pub(super) const RUN_START_TIMEOUT: Duration = Duration::from_secs(15);

/// The most stdin text one `mesh/runInput` may carry: what a person types or pastes, not a
/// file upload.
pub const MAX_RUN_INPUT_BYTES: usize = 64 * 1024;

/// Input goes to the server in pieces of at most this many bytes: even when every byte needs
/// JSON's six-byte escape, a piece's message stays under the 64 KiB mesh message limit.
const INPUT_CHUNK_BYTES: usize = 8 * 1024;

/// Language ids are short words; a longer one is a mistake, refused before it travels.
const MAX_LANGUAGE_BYTES: usize = 64;

/// A run the room announced and has not seen end.
#[derive(Debug)]
struct ActiveRun {
    /// Who started it (connection id).
    by: u64,
    /// When its start arrived here.
    started: Instant,
}

/// A run request sent to the server, waiting for its `RunStarted` or its refusal.
#[derive(Debug)]
struct PendingRun {
    /// Our id of the request; the server's answer names it.
    id: u64,
    /// When it was sent.
    sent: Instant,
}

/// Who started a run or a debug session, as the room announced it.
#[derive(Debug, Clone)]
pub(super) struct Starter {
    /// Their connection id.
    pub(super) by: u64,
    /// Their name, as the editor shows it.
    pub(super) by_name: String,
    /// Whether it is this proxy's own connection.
    pub(super) you: bool,
}

/// The room's runs: those going (seen starting since we joined) and our own request in flight.
/// Every request carries an id and the server's answer names it (`responding_to`), so an
/// answer is never guessed from its kind or its path. One run request at a time: the editor
/// waits for the answer to the one it made.
#[derive(Debug, Default)]
pub(super) struct Runs {
    active: HashMap<String, ActiveRun>,
    /// Ids of the room's debug sessions announced and not ended: their program's run is
    /// marked `debug` for the editor (which shows it beside its debugger, not as a run).
    debug: std::collections::HashSet<String>,
    pending: Option<PendingRun>,
    /// The id of the last request sent.
    last_id: u64,
}

impl Runs {
    /// Checks a run request and returns the message that asks the room for it; the answer
    /// comes later as an [`Effect::RunAnswer`]. `path` is the room path the request names (or
    /// why it names none), `exists` whether the room has that file.
    pub(super) fn request(
        &mut self,
        standing: Result<Standing, String>,
        path: Result<String, String>,
        language: Option<String>,
        exists: impl Fn(&str) -> bool,
        now: Instant,
    ) -> Result<RoomRequest, String> {
        let standing = standing?;
        if !standing.writable {
            return Err(
                "you are a reader: readers may watch runs but not start them; ask the host for write access".into(),
            );
        }
        if self.pending.is_some() {
            return Err("a run request is already waiting for the server's answer; wait for it".into());
        }
        if language.as_ref().is_some_and(|l| l.len() > MAX_LANGUAGE_BYTES) {
            return Err(format!("a language id is at most {MAX_LANGUAGE_BYTES} bytes"));
        }
        let path = path?;
        if !exists(&path) {
            return Err(format!(
                "no file {path:?} in this room; only files of the shared folder can run"
            ));
        }
        let id = self.next_id();
        self.pending = Some(PendingRun { id, sent: now });
        Ok(RoomRequest::new(id, ClientMessage::Run { path, language }))
    }

    fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// Checks a `mesh/runInput` and cuts it into the messages the server accepts.
    pub(super) fn input(
        &mut self,
        standing: Result<Standing, String>,
        params: RunInputParams,
    ) -> Result<Vec<RoomRequest>, String> {
        if params.data.len() > MAX_RUN_INPUT_BYTES {
            return Err(format!(
                "{} bytes of input is too much at once: send at most {} KiB per mesh/runInput",
                params.data.len(),
                MAX_RUN_INPUT_BYTES / 1024
            ));
        }
        let standing = standing?;
        if !standing.writable {
            return Err("you are a reader: readers may not type into a run; ask the host for write access".into());
        }
        if !self.active.contains_key(&params.run_id) {
            return Err(format!("no run {} is going (it may have ended)", params.run_id));
        }
        Ok(input_chunks(&params.data, params.eof)
            .into_iter()
            .map(|(data, eof)| {
                let msg = ClientMessage::Input {
                    run_id: params.run_id.clone(),
                    data,
                    eof,
                };
                RoomRequest::new(self.next_id(), msg)
            })
            .collect())
    }

    /// Checks a `mesh/runStop` against what the server allows.
    pub(super) fn stop(&mut self, standing: Result<Standing, String>, run_id: &str) -> Result<RoomRequest, String> {
        let standing = standing?;
        let Some(run) = self.active.get(run_id) else {
            return Err(format!("no run {run_id} is going (it may have ended)"));
        };
        if standing.conn_id != Some(run.by) && !standing.host {
            return Err("only who started a run (or the host) may stop it".into());
        }
        let msg = ClientMessage::Stop {
            run_id: run_id.to_string(),
        };
        Ok(RoomRequest::new(self.next_id(), msg))
    }

    /// A run of the room started: tracked, our own request answered (`responding_to` names
    /// it), the editor told.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn started(
        &mut self,
        run_id: String,
        path: String,
        uri: Option<String>,
        language: String,
        who: Starter,
        responding_to: Option<u64>,
        now: Instant,
    ) -> Vec<Effect> {
        let mut fx = Vec::new();
        self.active.insert(
            run_id.clone(),
            ActiveRun {
                by: who.by,
                started: now,
            },
        );
        if self.answers(responding_to) {
            fx.push(Effect::RunAnswer(Ok(RunResult {
                run_id: run_id.clone(),
                queued: None,
            })));
        }
        let debug = self.debug.contains(&run_id);
        fx.push(notify::<RunStartedNotification>(RunStartedParams {
            run_id,
            path,
            uri,
            language,
            by: who.by,
            by_name: who.by_name,
            you: who.you,
            debug,
        }));
        fx
    }

    /// A run of the room waits for a free sandbox: it is tracked like a going run (so it can
    /// be stopped, and its start or end is recognised), our own request is answered with
    /// its place, and the editor is told each time it moves.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn queued(
        &mut self,
        run_id: String,
        path: String,
        uri: Option<String>,
        language: String,
        who: Starter,
        position: u32,
        limit: String,
        debug: bool,
        responding_to: Option<u64>,
        now: Instant,
    ) -> Vec<Effect> {
        let mut fx = Vec::new();
        if debug {
            self.debug.insert(run_id.clone());
        }
        self.active.entry(run_id.clone()).or_insert(ActiveRun {
            by: who.by,
            started: now,
        });
        if !debug && self.answers(responding_to) {
            fx.push(Effect::RunAnswer(Ok(RunResult {
                run_id: run_id.clone(),
                queued: Some(position),
            })));
        }
        let message = mesh_protocol::messages::queued_text(position, &limit);
        fx.push(notify::<RunQueuedNotification>(RunQueuedParams {
            run_id,
            path,
            uri,
            language,
            by: who.by,
            by_name: who.by_name,
            you: who.you,
            position,
            limit,
            debug,
            message,
        }));
        fx
    }

    /// Output of a run: passed on when the run is one we track.
    pub(super) fn output(&self, params: RunOutputParams) -> Vec<Effect> {
        if !self.active.contains_key(&params.run_id) {
            return Vec::new();
        }
        vec![notify::<RunOutputNotification>(params)]
    }

    /// A debug session of the room started (announced before its program's run) or ended.
    pub(super) fn debug_session(&mut self, debug_id: &str, going: bool) {
        if going {
            self.debug.insert(debug_id.to_owned());
        } else {
            self.debug.remove(debug_id);
        }
    }

    /// A run ended: passed on once, when the run is one we track.
    pub(super) fn exited(&mut self, params: RunExitedParams) -> Vec<Effect> {
        if self.active.remove(&params.run_id).is_none() {
            return Vec::new();
        }
        vec![notify::<RunExitedNotification>(params)]
    }

    /// Whether `responding_to` names the run request in flight (which it then answers).
    fn answers(&mut self, responding_to: Option<u64>) -> bool {
        responding_to.is_some() && self.pending.take_if(|p| Some(p.id) == responding_to).is_some()
    }

    /// The server refused something: the answer to our run request if it names it; anything
    /// else is shown to the user.
    pub(super) fn refused(&mut self, code: ErrorCode, message: &str, responding_to: Option<u64>) -> Vec<Effect> {
        if self.answers(responding_to) {
            return vec![Effect::RunAnswer(Err(format!("the server refused the run: {message}")))];
        }
        tracing::debug!(?code, ?responding_to, "a refusal that answers no run request");
        vec![tell("warning", format!("server: {message}"))]
    }

    /// Fails a run request the server has not answered in time.
    pub(super) fn expire(&mut self, now: Instant) -> Vec<Effect> {
        if self
            .pending
            .take_if(|p| now.duration_since(p.sent) > RUN_START_TIMEOUT)
            .is_none()
        {
            return Vec::new();
        }
        vec![Effect::RunAnswer(Err(format!(
            "the server did not start the run within {} s; check the connection and try again",
            RUN_START_TIMEOUT.as_secs()
        )))]
    }

    /// Ends what this proxy tracks of the room's runs when it stops hearing about them: the
    /// request in flight fails, and every run going ends for the editor with `why`, so no
    /// output view waits forever for an exit it cannot see.
    pub(super) fn abandon(&mut self, why: &str, now: Instant) -> Vec<Effect> {
        let runs = std::mem::take(self);
        let mut fx = Vec::new();
        if runs.pending.is_some() {
            fx.push(Effect::RunAnswer(Err(format!(
                "{why} before the run started; try again"
            ))));
        }
        let mut active: Vec<_> = runs.active.into_iter().collect();
        active.sort_by(|a, b| a.0.cmp(&b.0));
        for (run_id, run) in active {
            fx.push(notify::<RunExitedNotification>(RunExitedParams {
                run_id,
                stage: "run".into(),
                code: None,
                duration_ms: now.duration_since(run.started).as_millis() as u64,
                limit: None,
                error: Some(format!("{why}; the rest of this run is not shown here")),
            }));
        }
        fx
    }
}

/// Tells the editor of a debug session in the room, so that it can offer to join it.
pub(super) fn debug_started(
    debug_id: String,
    path: String,
    uri: Option<String>,
    language: String,
    who: Starter,
) -> Effect {
    notify::<DebugStartedNotification>(DebugStartedParams {
        debug_id,
        path,
        uri,
        language,
        by: who.by,
        by_name: who.by_name,
        you: who.you,
    })
}

/// Splits stdin text into pieces of at most [`INPUT_CHUNK_BYTES`], on character boundaries;
/// only the last piece carries `eof`. Empty text without `eof` sends nothing.
fn input_chunks(data: &str, eof: bool) -> Vec<(String, bool)> {
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
    use super::super::testing::{methods, notification};
    use super::*;

    fn writer(conn_id: u64) -> Result<Standing, String> {
        Ok(Standing {
            writable: true,
            conn_id: Some(conn_id),
            host: false,
        })
    }

    fn me(by: u64) -> Starter {
        Starter {
            by,
            by_name: "me".into(),
            you: true,
        }
    }

    fn someone(by: u64) -> Starter {
        Starter {
            by,
            by_name: "ana".into(),
            you: false,
        }
    }

    fn request(runs: &mut Runs, path: &str, now: Instant) -> Result<RoomRequest, String> {
        runs.request(writer(1), Ok(path.into()), None, |_| true, now)
    }

    #[test]
    fn input_is_cut_on_character_boundaries_with_eof_on_the_last_piece() {
        let text = "é".repeat(INPUT_CHUNK_BYTES); // two bytes each: twice the chunk size
        let pieces = input_chunks(&text, true);
        assert_eq!(pieces.len(), 2);
        assert!(pieces.iter().all(|(p, _)| p.len() <= INPUT_CHUNK_BYTES));
        assert_eq!(pieces.iter().map(|(p, _)| p.as_str()).collect::<String>(), text);
        assert_eq!(pieces.iter().map(|(_, eof)| *eof).collect::<Vec<_>>(), [false, true]);
    }

    #[test]
    fn empty_input_sends_only_an_eof() {
        assert_eq!(input_chunks("", true), [(String::new(), true)]);
        assert!(input_chunks("", false).is_empty());
        assert_eq!(input_chunks("x\n", false), [("x\n".to_string(), false)]);
    }

    #[test]
    fn the_largest_input_fits_the_mesh_message_limit_even_fully_escaped() {
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

    #[test]
    fn a_run_request_is_answered_only_by_the_start_that_names_it() {
        let now = Instant::now();
        let mut runs = Runs::default();
        let msg = request(&mut runs, "main.py", now).unwrap();
        let run = ClientMessage::Run {
            path: "main.py".into(),
            language: None,
        };
        assert_eq!(msg, RoomRequest::new(1, run));
        // Someone else's run of the same file is not our answer, nor is our own start that
        // names no request (another editor of ours, a REST call).
        let fx = runs.started(
            "r0".into(),
            "main.py".into(),
            None,
            "python".into(),
            someone(2),
            None,
            now,
        );
        assert_eq!(methods(&fx), ["mesh/runStarted"]);
        let fx = runs.started("r1".into(), "main.py".into(), None, "python".into(), me(1), None, now);
        assert_eq!(methods(&fx), ["mesh/runStarted"]);
        let fx = runs.started(
            "r2".into(),
            "main.py".into(),
            None,
            "python".into(),
            me(1),
            Some(1),
            now,
        );
        assert!(matches!(&fx[0], Effect::RunAnswer(Ok(r)) if r.run_id == "r2" && r.queued.is_none()));
        assert_eq!(notification(&fx, "mesh/runStarted")["you"], true);
    }

    #[test]
    fn a_debug_sessions_program_is_marked_so_editors_do_not_show_it_as_a_run() {
        let now = Instant::now();
        let mut runs = Runs::default();
        runs.debug_session("d1", true);
        let fx = runs.started("d1".into(), "a.py".into(), None, "python".into(), me(1), None, now);
        assert_eq!(notification(&fx, "mesh/runStarted")["debug"], true);
        let fx = runs.started("r1".into(), "a.py".into(), None, "python".into(), me(1), None, now);
        assert_eq!(notification(&fx, "mesh/runStarted")["debug"], false);
        // Once the session ended, an id is a run's again (ids are not reused, but the set
        // does not grow with every session).
        runs.debug_session("d1", false);
        assert!(runs.debug.is_empty());
    }

    #[test]
    fn a_queued_run_answers_with_its_place_but_a_queued_debug_session_does_not() {
        let now = Instant::now();
        let mut runs = Runs::default();
        request(&mut runs, "a.py", now).unwrap();
        let fx = runs.queued(
            "d".into(),
            "a.py".into(),
            None,
            "python".into(),
            me(1),
            1,
            "room".into(),
            true,
            Some(1),
            now,
        );
        assert_eq!(methods(&fx), ["mesh/runQueued"]);
        let fx = runs.queued(
            "r".into(),
            "a.py".into(),
            None,
            "python".into(),
            me(1),
            2,
            "room".into(),
            false,
            Some(1),
            now,
        );
        assert!(matches!(&fx[0], Effect::RunAnswer(Ok(r)) if r.queued == Some(2)));
        assert_eq!(notification(&fx, "mesh/runQueued")["position"], 2);
    }

    #[test]
    fn one_request_at_a_time_and_readers_may_not_run() {
        let now = Instant::now();
        let mut runs = Runs::default();
        request(&mut runs, "a.py", now).unwrap();
        assert!(request(&mut runs, "b.py", now).unwrap_err().contains("already waiting"));
        let reader = Ok(Standing {
            writable: false,
            conn_id: Some(1),
            host: false,
        });
        let err = Runs::default()
            .request(reader, Ok("a.py".into()), None, |_| true, now)
            .unwrap_err();
        assert!(err.contains("reader"), "{err}");
        let err = Runs::default()
            .request(writer(1), Ok("nope.py".into()), None, |_| false, now)
            .unwrap_err();
        assert!(err.contains("no file \"nope.py\""), "{err}");
    }

    #[test]
    fn a_refusal_answers_the_request_it_names_else_the_user_is_told() {
        let now = Instant::now();
        let mut runs = Runs::default();
        let fx = runs.refused(ErrorCode::Forbidden, "no", None);
        assert_eq!(notification(&fx, "mesh/notify")["level"], "warning");
        let id = request(&mut runs, "a.py", now).unwrap().id;
        // A refusal of something else (a chat, another request) while the run waits is not
        // the run's answer.
        let fx = runs.refused(ErrorCode::BadRequest, "chat too long", None);
        assert_eq!(methods(&fx), ["mesh/notify"]);
        let fx = runs.refused(ErrorCode::NotFound, "no run x", id.map(|i| i + 1));
        assert_eq!(methods(&fx), ["mesh/notify"]);
        let fx = runs.refused(ErrorCode::RateLimited, "too many runs", id);
        assert!(matches!(&fx[..], [Effect::RunAnswer(Err(e))] if e.contains("too many runs")));
    }

    #[test]
    fn an_unanswered_request_expires_after_the_start_timeout() {
        let now = Instant::now();
        let mut runs = Runs::default();
        request(&mut runs, "a.py", now).unwrap();
        assert!(runs.expire(now + RUN_START_TIMEOUT).is_empty());
        let fx = runs.expire(now + RUN_START_TIMEOUT + Duration::from_millis(1));
        assert!(matches!(&fx[..], [Effect::RunAnswer(Err(e))] if e.contains("15 s")));
        // Expired: the next request may go.
        request(&mut runs, "a.py", now).unwrap();
    }

    #[test]
    fn output_and_exit_reach_the_editor_only_for_tracked_runs_and_exit_once() {
        let now = Instant::now();
        let mut runs = Runs::default();
        let output = |run_id: &str| RunOutputParams {
            run_id: run_id.into(),
            stream: mesh_protocol::messages::RunStream::Stdout,
            data: "hi".into(),
        };
        let exited = |run_id: &str| RunExitedParams {
            run_id: run_id.into(),
            stage: "run".into(),
            code: Some(0),
            duration_ms: 1,
            limit: None,
            error: None,
        };
        assert!(runs.output(output("r")).is_empty());
        runs.started("r".into(), "a.py".into(), None, "python".into(), someone(2), None, now);
        assert_eq!(methods(&runs.output(output("r"))), ["mesh/runOutput"]);
        assert_eq!(methods(&runs.exited(exited("r"))), ["mesh/runExited"]);
        assert!(runs.exited(exited("r")).is_empty());
    }

    #[test]
    fn only_the_starter_or_the_host_may_stop_a_run() {
        let now = Instant::now();
        let mut runs = Runs::default();
        runs.started("r".into(), "a.py".into(), None, "python".into(), someone(2), None, now);
        assert!(runs.stop(writer(1), "r").unwrap_err().contains("only who started"));
        assert!(runs.stop(writer(2), "r").is_ok());
        let host = Ok(Standing {
            writable: true,
            conn_id: Some(1),
            host: true,
        });
        assert!(runs.stop(host, "r").is_ok());
        assert!(runs.stop(writer(2), "gone").unwrap_err().contains("no run gone"));
    }

    #[test]
    fn input_goes_only_to_a_going_run_and_never_over_the_limit() {
        let now = Instant::now();
        let mut runs = Runs::default();
        let params = |data: String| RunInputParams {
            run_id: "r".into(),
            data,
            eof: true,
        };
        assert!(runs
            .input(writer(1), params("x".into()))
            .unwrap_err()
            .contains("no run r"));
        runs.started("r".into(), "a.py".into(), None, "python".into(), someone(2), None, now);
        assert_eq!(runs.input(writer(1), params("x".into())).unwrap().len(), 1);
        let err = runs
            .input(writer(1), params("x".repeat(MAX_RUN_INPUT_BYTES + 1)))
            .unwrap_err();
        assert!(err.contains("64 KiB"), "{err}");
    }

    #[test]
    fn losing_the_room_fails_the_request_and_ends_every_run_for_the_editor() {
        let now = Instant::now();
        let mut runs = Runs::default();
        runs.started("r".into(), "a.py".into(), None, "python".into(), someone(2), None, now);
        request(&mut runs, "a.py", now).unwrap();
        let fx = runs.abandon("the connection to the room was lost", now + Duration::from_secs(2));
        assert!(matches!(&fx[0], Effect::RunAnswer(Err(e)) if e.contains("before the run started")));
        let exit = notification(&fx, "mesh/runExited");
        assert_eq!(exit["durationMs"], 2000);
        assert!(exit["error"]
            .as_str()
            .unwrap()
            .contains("connection to the room was lost"));
        assert!(runs.abandon("again", now).is_empty());
    }
}
