//! The ghost's one loop: room events and finished requests in, chat out. Policy lives in
//! [`crate::desk`], what the model sees in [`crate::context`]; this file only carries out
//! their decisions.

use std::collections::{HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use mesh_protocol::messages::{Participant, Role};
use mesh_protocol::ServerMessage;
use tokio::sync::{mpsc, watch};

use crate::config::{Limits, ProviderConfig, Secret};
use crate::context::{self, Context, LastRun, MAX_CHAT_MESSAGES, MAX_RUN_OUTPUT_CHARS};
use crate::desk::{Action, Asker, Desk};
use crate::provider::{self, ProviderError};
use crate::room::{ChatSender, Room, RoomEvent};

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

/// Runs the ghost in a connected room until the connection ends; returns why it ended.
pub async fn run(room: Room, mut events: mpsc::Receiver<RoomEvent>, settings: Settings) -> String {
    let http = provider::http_client();
    let chat = room.sender();
    let mut desk = Desk::new(settings.limits.clone());
    let mut seen = Seen::default();
    let mut cancels: HashMap<u64, watch::Sender<bool>> = HashMap::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<u64>();
    loop {
        tokio::select! {
            event = events.recv() => {
                let msg = match event {
                    Some(RoomEvent::Mesh(msg)) => msg,
                    Some(RoomEvent::Closed(why)) => return why,
                    None => return "connection lost".into(),
                };
                for action in on_message(&mut seen, &mut desk, *msg) {
                    match action {
                        Action::Say(text) => chat.say(&text),
                        Action::Cancel(id) => {
                            if let Some(tx) = cancels.remove(&id) {
                                let _ = tx.send(true);
                            }
                        }
                        Action::Start { id, prompt, mode: _, asker } => {
                            let ctx = Context {
                                files: room.files(),
                                chat: seen.chat.iter().cloned().collect(),
                                last_run: seen.last_run.as_ref().map(|(_, r)| r.clone()),
                            };
                            let messages = context::build(&ctx, &asker, &prompt);
                            let (cancel_tx, cancel_rx) = watch::channel(false);
                            cancels.insert(id, cancel_tx);
                            tokio::spawn(answer(AnswerJob {
                                http: http.clone(),
                                settings: settings.clone(),
                                chat: chat.clone(),
                                done: done_tx.clone(),
                                id,
                                asker,
                                messages,
                                cancel: cancel_rx,
                            }));
                        }
                    }
                }
            }
            Some(id) = done_rx.recv() => {
                desk.finished(id);
                cancels.remove(&id);
            }
        }
    }
}

fn on_message(seen: &mut Seen, desk: &mut Desk, msg: ServerMessage) -> Vec<Action> {
    match msg {
        ServerMessage::Welcome {
            conn_id, participants, ..
        } => {
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
    chat: ChatSender,
    done: mpsc::UnboundedSender<u64>,
    id: u64,
    asker: String,
    messages: Vec<provider::ChatMessage>,
    cancel: watch::Receiver<bool>,
}

async fn answer(job: AnswerJob) {
    let mut text = String::new();
    let result = provider::stream_chat(
        &job.http,
        &job.settings.provider,
        &job.settings.limits,
        &job.messages,
        job.cancel,
        |piece| text.push_str(piece),
    )
    .await;
    let key = job.settings.provider.key.as_ref();
    match result {
        Ok(()) if text.trim().is_empty() => job.chat.say(&format!(
            "Request #{} from {}: the model gave an empty answer.",
            job.id, job.asker
        )),
        Ok(()) => job.chat.say(&scrub(
            &format!("Request #{} from {}:\n{}", job.id, job.asker, text.trim()),
            key,
        )),
        // Whoever cancelled was already told in chat by the loop.
        Err(ProviderError::Cancelled) => {}
        Err(e) => {
            let said = scrub(&format!("Request #{} from {} failed: {e}", job.id, job.asker), key);
            tracing::warn!("{said}");
            job.chat.say(&said);
        }
    }
    let _ = job.done.send(job.id);
}
