//! The ghost's one loop: room events and finished requests in, chat out. Policy lives in
//! [`crate::desk`], what the model sees in [`crate::context`]; this file only carries out
//! their decisions.

use std::collections::{HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use mesh_protocol::ghost::GhostRequestStatus;
use mesh_protocol::messages::{Participant, Role};
use mesh_protocol::{ClientMessage, ServerMessage};
use tokio::sync::{mpsc, watch};

use crate::board::{Board, Pending};
use crate::config::{Limits, ProviderConfig, Secret};
use crate::context::{self, Context, LastRun, MAX_CHAT_MESSAGES, MAX_RUN_OUTPUT_CHARS};
use crate::desk::{Action, Asker, Desk, Mode};
use crate::edits::{Edit, EditReader};
use crate::provider::{self, ProviderError};
use crate::room::{Room, RoomEvent};
use crate::typist::Typist;

/// The colour the ghost shows itself in: a violet no default participant colour uses.
pub const COLOR: &str = "#9b59b6";

/// What the ghost runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The provider.
    pub provider: ProviderConfig,
    /// The limits.
    pub limits: Limits,
}

/// The ghost's display name: `ghost (MODEL)`, so everyone sees which model answers.
pub fn display_name(model: &str) -> String {
    let model: String = model.chars().take(40).collect();
    format!("ghost ({model})")
}

struct Member {
    seat: String,
    name: String,
    role: Role,
}

/// The room as the ghost knows it: who is in it, the conversation, the last run.
#[derive(Default)]
struct Seen {
    me: Option<u64>,
    my_seat: String,
    members: HashMap<u64, Member>,
    chat: VecDeque<(String, String)>,
    last_run: Option<(String, LastRun)>,
}

impl Seen {
    fn add(&mut self, p: &Participant) {
        self.members.insert(
            p.conn_id,
            Member {
                seat: p.seat.clone(),
                name: p.name.clone(),
                role: p.role,
            },
        );
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Replaces the key wherever a provider echoed it, so it cannot reach the room's chat.
fn scrub(text: &str, key: Option<&Secret>) -> String {
    match key {
        Some(k) if !k.expose().is_empty() => text.replace(k.expose(), "[redacted]"),
        _ => text.to_string(),
    }
}

/// What an answer's task tells the loop, in order.
enum TaskEvent {
    /// An edit read from a write-mode answer.
    Edit(u64, Edit),
    /// How many characters of the answer have arrived (sent at most every
    /// [`PROGRESS_EVERY`]).
    Progress(u64, u64),
    /// The answer ended: its text, or why it failed.
    Done(u64, Result<String, String>),
}

/// How often a request's progress is republished while its answer streams: often enough to
/// look alive, rarely enough that a fast model does not flood the room.
pub const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// How many suggestions wait at most: older ones are dropped, so a room cannot make the ghost
/// hold unbounded text.
pub const MAX_SUGGESTIONS: usize = mesh_protocol::ghost::MAX_GHOST_SUGGESTIONS;

/// A request being answered.
struct Job {
    mode: Mode,
    asker: String,
    cancel: watch::Sender<bool>,
}

/// Runs the ghost in a connected room until the connection ends; returns why it ended.
pub async fn run(mut room: Room, mut events: mpsc::Receiver<RoomEvent>, settings: Settings) -> String {
    let http = provider::http_client();
    let chat = room.sender();
    let mut desk = Desk::new(settings.limits.clone());
    let mut seen = Seen::default();
    let mut typist = Typist::new(&room.doc);
    let mut jobs: HashMap<u64, Job> = HashMap::new();
    // The requests whose changes are in the undo stack, newest last.
    let mut changes: Vec<(u64, String)> = Vec::new();
    // Suggestions waiting for a writer, oldest first.
    let mut suggestions: VecDeque<Pending> = VecDeque::new();
    // The requests as panels show them.
    let mut board = Board::default();
    let publish = |room: &Room, board: &Board, suggestions: &VecDeque<Pending>| {
        let pending: Vec<Pending> = suggestions.iter().cloned().collect();
        room.send(&ClientMessage::GhostState {
            state: board.state(&pending),
        });
    };
    let (task_tx, mut task_rx) = mpsc::unbounded_channel::<TaskEvent>();
    let key = settings.provider.key.clone();
    loop {
        tokio::select! {
            event = events.recv() => {
                let msg = match event {
                    Some(RoomEvent::Mesh(msg)) => msg,
                    Some(RoomEvent::Closed(why)) => return why,
                    // Requests keep going while the socket is down: their text and edits
                    // land in the replica, and the resync and the kept chat deliver them.
                    Some(RoomEvent::Disconnected(why)) => {
                        tracing::warn!("lost the room ({why}); requests going carry on");
                        continue;
                    }
                    Some(RoomEvent::Reconnected) => {
                        tracing::info!("back in the room");
                        room.reannounce();
                        // The server dropped the state with the old connection.
                        publish(&room, &board, &suggestions);
                        continue;
                    }
                    None => return "connection lost".into(),
                };
                let actions = on_message(&mut seen, &mut desk, *msg);
                let changed = !actions.is_empty();
                for action in actions {
                    match action {
                        Action::Say(text) => chat.say(&text),
                        Action::Cancel(id) => {
                            board.finished(id, GhostRequestStatus::Cancelled, Some("cancelled"));
                            if let Some(job) = jobs.remove(&id) {
                                let _ = job.cancel.send(true);
                                if job.mode == Mode::Write {
                                    typist.discard();
                                    room.set_cursor(None);
                                }
                            }
                        }
                        Action::Reject { id, by } => match suggestions.iter().position(|s| s.id == id) {
                            Some(i) => {
                                suggestions.remove(i);
                                chat.say(&format!("Rejected suggestion #{id} ({by}); nothing was changed."));
                            }
                            None => chat.say(&format!("{by}: there is no suggestion #{id} waiting.")),
                        },
                        Action::Accept { id, by } => {
                            let Some(i) = suggestions.iter().position(|s| s.id == id) else {
                                chat.say(&format!("{by}: there is no suggestion #{id} waiting."));
                                continue;
                            };
                            let suggestion = suggestions.remove(i).expect("found above");
                            typist.start();
                            let mut failed = None;
                            for edit in suggestion.edits {
                                match typist.apply(edit) {
                                    Ok(Some((path, offset))) => room.set_cursor(Some((&path, offset))),
                                    Ok(None) => {}
                                    Err(e) => {
                                        failed = Some(e);
                                        break;
                                    }
                                }
                            }
                            room.set_cursor(None);
                            match failed {
                                Some(e) => {
                                    typist.discard();
                                    chat.say(&format!("Suggestion #{id} cannot be applied: {e}; nothing was changed. Ask again for a fresh one."));
                                }
                                None => {
                                    if typist.finish() {
                                        changes.push((id, suggestion.asker));
                                    }
                                    chat.say(&format!("Applied suggestion #{id}, accepted by {by}; \"@ghost undo\" removes it."));
                                }
                            }
                        }
                        Action::Undo { by } => match changes.pop() {
                            Some((id, asker)) if typist.undo() => {
                                chat.say(&format!("Undid the change of request #{id} (asked by {asker}), at {by}'s request."));
                            }
                            _ => chat.say(&format!("{by}: the ghost has no change left to undo.")),
                        },
                        Action::Start { id, prompt, mode, asker, selection } => {
                            board.started(id, &asker, mode, &prompt);
                            let prompt = context::with_selection(&prompt, selection.as_ref());
                            let ctx = Context {
                                files: room.files(),
                                chat: seen.chat.iter().cloned().collect(),
                                last_run: seen.last_run.as_ref().map(|(_, r)| r.clone()),
                            };
                            let messages = context::build(&ctx, &asker, &prompt, mode);
                            let (cancel_tx, cancel_rx) = watch::channel(false);
                            if mode == Mode::Write {
                                typist.start();
                            }
                            jobs.insert(id, Job { mode, asker, cancel: cancel_tx });
                            tokio::spawn(answer(AnswerJob {
                                http: http.clone(),
                                settings: settings.clone(),
                                events: task_tx.clone(),
                                id,
                                mode,
                                messages,
                                cancel: cancel_rx,
                            }));
                        }
                    }
                }
                if changed {
                    publish(&room, &board, &suggestions);
                }
            }
            Some(event) = task_rx.recv() => match event {
                TaskEvent::Progress(id, chars) => {
                    board.progress(id, chars);
                    publish(&room, &board, &suggestions);
                }
                TaskEvent::Edit(id, edit) => {
                    if !jobs.contains_key(&id) {
                        continue;
                    }
                    match typist.apply(edit) {
                        Ok(Some((path, offset))) => room.set_cursor(Some((&path, offset))),
                        Ok(None) => {}
                        Err(e) => {
                            let job = jobs.remove(&id).expect("checked above");
                            let _ = job.cancel.send(true);
                            typist.discard();
                            room.set_cursor(None);
                            desk.finished(id);
                            board.finished(id, GhostRequestStatus::Failed, Some(&e.to_string()));
                            publish(&room, &board, &suggestions);
                            chat.say(&format!("Request #{id} from {} failed: {e}; nothing was changed.", job.asker));
                        }
                    }
                }
                TaskEvent::Done(id, result) => {
                    desk.finished(id);
                    let Some(job) = jobs.remove(&id) else { continue };
                    let said = match (job.mode, result) {
                        (Mode::Suggest, Ok(text)) => {
                            let mut reader = EditReader::new();
                            match reader.feed(&text).and_then(|edits| reader.finish().map(|()| edits)) {
                                Err(e) => format!("Request #{id} from {} failed: {e}", job.asker),
                                Ok(edits) if edits.is_empty() => format!("Request #{id} from {}:\n{}", job.asker, text.trim()),
                                Ok(edits) => {
                                    suggestions.push_back(Pending { id, asker: job.asker.clone(), edits });
                                    if suggestions.len() > MAX_SUGGESTIONS {
                                        suggestions.pop_front();
                                    }
                                    format!(
                                        "Suggestion #{id} for {} (nothing changes until a writer says \"@ghost accept {id}\"; \"@ghost reject {id}\" drops it):\n{}",
                                        job.asker,
                                        text.trim()
                                    )
                                }
                            }
                        }
                        (Mode::Explain, Ok(text)) if text.trim().is_empty() => {
                            format!("Request #{id} from {}: the model gave an empty answer.", job.asker)
                        }
                        (Mode::Explain, Ok(text)) => format!("Request #{id} from {}:\n{}", job.asker, text.trim()),
                        (Mode::Write, Ok(_)) => {
                            room.set_cursor(None);
                            if typist.finish() {
                                changes.push((id, job.asker.clone()));
                                format!("Request #{id} from {}: done; \"@ghost undo\" removes the whole change.", job.asker)
                            } else {
                                format!("Request #{id} from {}: the model proposed no change.", job.asker)
                            }
                        }
                        (mode, Err(e)) => {
                            if mode == Mode::Write {
                                typist.discard();
                                room.set_cursor(None);
                                format!("Request #{id} from {} failed: {e}; nothing was changed.", job.asker)
                            } else {
                                format!("Request #{id} from {} failed: {e}", job.asker)
                            }
                        }
                    };
                    let said = scrub(&said, key.as_ref());
                    if said.contains(" failed: ") {
                        tracing::warn!("{said}");
                        let why = said.split_once(" failed: ").map_or("", |(_, why)| why);
                        board.finished(id, GhostRequestStatus::Failed, Some(why));
                    } else {
                        board.finished(id, GhostRequestStatus::Done, None);
                    }
                    publish(&room, &board, &suggestions);
                    chat.say(&said);
                }
            },
        }
    }
}

fn on_message(seen: &mut Seen, desk: &mut Desk, msg: ServerMessage) -> Vec<Action> {
    match msg {
        ServerMessage::Welcome {
            conn_id,
            participants,
            role,
            seat,
            ..
        } => {
            desk.set_own_role(role);
            seen.my_seat = seat.id;
            seen.me = Some(conn_id);
            seen.members.clear();
            participants.iter().for_each(|p| seen.add(p));
        }
        ServerMessage::Participants { participants } => {
            seen.members.clear();
            participants.iter().for_each(|p| seen.add(p));
        }
        ServerMessage::ParticipantJoined { participant } => seen.add(&participant),
        ServerMessage::ParticipantLeft { conn_id } => {
            seen.members.remove(&conn_id);
        }
        ServerMessage::RoleChanged { seat, role, .. } => {
            if seat == seen.my_seat {
                desk.set_own_role(role);
            }
            for m in seen.members.values_mut().filter(|m| m.seat == seat) {
                m.role = role;
            }
        }
        ServerMessage::Chat { entry } => {
            if Some(entry.conn_id) == seen.me {
                return Vec::new();
            }
            let asker = Asker {
                name: seen
                    .members
                    .get(&entry.conn_id)
                    .map_or(entry.author.clone(), |m| m.name.clone()),
                conn_id: entry.conn_id,
                role: seen.members.get(&entry.conn_id).map(|m| m.role),
            };
            let actions = desk.on_chat(&asker, &entry.text, now_ms());
            seen.chat.push_back((entry.author, entry.text));
            while seen.chat.len() > MAX_CHAT_MESSAGES {
                seen.chat.pop_front();
            }
            return actions;
        }
        ServerMessage::Ghost {
            from,
            name,
            role,
            command,
            ..
        } => {
            if Some(from) == seen.me {
                return Vec::new();
            }
            let asker = Asker {
                name,
                conn_id: from,
                role: Some(role),
            };
            return desk.on_typed(&asker, command, now_ms());
        }
        ServerMessage::RunStarted { run_id, path, .. } => {
            seen.last_run = Some((
                run_id,
                LastRun {
                    path,
                    ..LastRun::default()
                },
            ));
        }
        ServerMessage::RunOutput { run_id, data, .. } => {
            if let Some((id, run)) = &mut seen.last_run {
                if *id == run_id {
                    run.output.push_str(&data);
                    // Keep twice what is sent, so the kept tail is always complete.
                    if run.output.len() > 2 * MAX_RUN_OUTPUT_CHARS * 4 {
                        let mut cut = run.output.len() - MAX_RUN_OUTPUT_CHARS * 4;
                        while !run.output.is_char_boundary(cut) {
                            cut += 1;
                        }
                        run.output.drain(..cut);
                    }
                }
            }
        }
        ServerMessage::RunExited {
            run_id,
            code,
            limit,
            error,
            ..
        } => {
            if let Some((id, run)) = &mut seen.last_run {
                if *id == run_id {
                    run.code = code;
                    run.limit = limit;
                    if let Some(e) = error {
                        run.output.push_str(&format!("\n[the run service failed: {e}]"));
                    }
                }
            }
        }
        _ => {}
    }
    Vec::new()
}

struct AnswerJob {
    http: reqwest::Client,
    settings: Settings,
    events: mpsc::UnboundedSender<TaskEvent>,
    id: u64,
    mode: Mode,
    messages: Vec<provider::ChatMessage>,
    cancel: watch::Receiver<bool>,
}

async fn answer(job: AnswerJob) {
    let mut text = String::new();
    let mut reader = EditReader::new();
    let mut bad_edit: Option<String> = None;
    let (id, events) = (job.id, job.events.clone());
    let mut received: u64 = 0;
    let mut last_progress = std::time::Instant::now();
    let result = provider::stream_chat(
        &job.http,
        &job.settings.provider,
        &job.settings.limits,
        &job.messages,
        job.cancel,
        |piece| {
            text.push_str(piece);
            received += piece.chars().count() as u64;
            if last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = std::time::Instant::now();
                let _ = events.send(TaskEvent::Progress(id, received));
            }
            if job.mode == Mode::Write && bad_edit.is_none() {
                match reader.feed(piece) {
                    Ok(edits) => edits.into_iter().for_each(|e| {
                        let _ = events.send(TaskEvent::Edit(id, e));
                    }),
                    Err(e) => bad_edit = Some(e.to_string()),
                }
            }
        },
    )
    .await;
    let outcome = match result {
        Ok(()) => match (bad_edit, reader.finish()) {
            (Some(e), _) => Err(e),
            (None, Err(e)) if job.mode == Mode::Write => Err(e.to_string()),
            _ => Ok(text),
        },
        // Whoever cancelled was already told in chat by the loop.
        Err(ProviderError::Cancelled) => return,
        Err(e) => Err(e.to_string()),
    };
    let _ = job.events.send(TaskEvent::Done(job.id, outcome));
}
