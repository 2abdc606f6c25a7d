//! Presence: the local cursor and view, as published in awareness; other people's cursors
//! for the editor; follow mode. Sans-IO: awareness states, participants and the room's text
//! come in, notifications for the editor come out as [`Effect`]s; the replica publishes the
//! local state the loop computes here.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use mesh_protocol::awareness::{PresenceCursor, PresenceState, PresenceUser, PresenceView};
use mesh_protocol::messages::Participant;
use tower_lsp_server::lsp_types::{Position, Range};

use super::docs::Docs;
use super::paths::file_uri;
use super::{notify, Effect, RoomRead};
use crate::lsp_ext::*;
use crate::text::Encoding;

/// Other clients' awareness states: (Yjs client id, state).
pub(super) type RemoteStates = Vec<(u64, PresenceState)>;

/// The room's participants by connection id.
pub(super) type Participants = BTreeMap<u64, Participant>;

/// What presence keeps between turns.
#[derive(Debug, Default)]
pub(super) struct Presence {
    /// The local cursor: document URI and selections.
    local_cursor: Option<(String, Vec<Selection>)>,
    /// The local view: document URI and visible lines.
    local_view: Option<(String, Option<Range>)>,
    /// Whom we follow (connection id).
    following: Option<u64>,
    /// The last follow update sent to the editor (sent again only when it changes).
    last_follow: Option<FollowUpdate>,
    /// The remote cursors last sent to the editor, per document URI.
    last_cursors: HashMap<String, Vec<RemoteCursor>>,
    /// Where a program without documents (`mesh-proxy mcp`) last edited; shown when no
    /// editor cursor is.
    pub(super) agent_cursor: Option<PresenceCursor>,
    /// Remote cursors may have moved (awareness, text or open documents changed).
    pub(super) dirty: bool,
}

impl Presence {
    /// The local cursor moved.
    pub(super) fn cursor(&mut self, uri: String, selections: Vec<Selection>) {
        self.local_cursor = Some((uri, selections));
    }

    /// The focused editor changed or scrolled.
    pub(super) fn view(&mut self, uri: Option<String>, visible: Option<Range>) {
        self.local_view = uri.map(|u| (u, visible));
    }

    /// Our awareness state: name and colour, the cursor in room offsets, the view.
    /// `room_path` finds the room path of a URI that no editor has open as a document.
    pub(super) fn local_state(
        &self,
        docs: &Docs,
        room: &impl RoomRead,
        room_path: impl Fn(&str) -> Option<String>,
        name: &str,
        color: Option<String>,
    ) -> PresenceState {
        let enc = docs.enc;
        let cursor = self.local_cursor.as_ref().and_then(|(uri, sels)| {
            let doc = docs.get(uri)?;
            let path = doc.path.clone()?;
            let room_text = room.text(&path)?;
            let to_room = |p| doc.sync.editor_pos_to_room(&room_text, p, enc) as u64;
            let selections: Vec<(u64, u64)> = sels.iter().map(|s| (to_room(s.anchor), to_room(s.head))).collect();
            let (anchor, head) = *selections.first()?;
            Some(PresenceCursor {
                path,
                anchor,
                head,
                selections,
            })
        });
        let cursor = cursor.or_else(|| self.agent_cursor.clone());
        let view = self.local_view.as_ref().and_then(|(uri, range)| {
            Some(PresenceView {
                path: docs.path(uri).or_else(|| room_path(uri))?,
                start_line: range.map(|r| r.start.line),
                end_line: range.map(|r| r.end.line),
            })
        });
        PresenceState {
            user: Some(PresenceUser {
                name: name.to_owned(),
                color,
            }),
            cursor,
            view,
            following: self.following,
        }
    }

    /// Other people's cursors in each open document, sent to the editor when they changed.
    pub(super) fn cursors(
        &mut self,
        docs: &Docs,
        room: &impl RoomRead,
        states: &RemoteStates,
        participants: &Participants,
    ) -> Vec<Effect> {
        let enc = docs.enc;
        let mut fx = Vec::new();
        let mut open: Vec<(&String, _)> = docs.iter().collect();
        open.sort_by_key(|(uri, _)| *uri);
        for (uri, doc) in open {
            let Some(path) = doc.path.as_deref() else { continue };
            let Some(room_text) = room.text(path) else { continue };
            let mut cursors = Vec::new();
            for (client, state) in states {
                let Some(c) = state.cursor.as_ref().filter(|c| c.path == path) else {
                    continue;
                };
                let to_pos = |off: u64| doc.sync.room_offset_to_editor(&room_text, off as usize, enc);
                let selections: Vec<Selection> = c
                    .all()
                    .into_iter()
                    .map(|(a, h)| Selection {
                        anchor: to_pos(a),
                        head: to_pos(h),
                    })
                    .collect();
                let (conn_id, name, color) = who(participants, *client, state);
                cursors.push(RemoteCursor {
                    conn_id,
                    name,
                    color,
                    selections,
                });
            }
            cursors.sort_by_key(|c| c.conn_id);
            if self.last_cursors.get(uri) != Some(&cursors) {
                self.last_cursors.insert(uri.clone(), cursors.clone());
                fx.push(notify::<CursorsNotification>(CursorsParams {
                    uri: uri.clone(),
                    cursors,
                }));
            }
        }
        fx
    }

    /// The editor closed `uri`: its cursors are sent afresh if it opens again.
    pub(super) fn closed(&mut self, uri: &str) {
        self.last_cursors.remove(uri);
    }

    /// We left the room: every open document loses its remote cursors, and follow stops.
    pub(super) fn left(&mut self, uris: impl IntoIterator<Item = String>) -> Vec<Effect> {
        self.following = None;
        self.last_cursors.clear();
        let mut uris: Vec<String> = uris.into_iter().collect();
        uris.sort();
        uris.into_iter()
            .map(|uri| {
                notify::<CursorsNotification>(CursorsParams {
                    uri,
                    cursors: Vec::new(),
                })
            })
            .collect()
    }

    /// Follow someone (or stop, with `None`).
    pub(super) fn follow(&mut self, who: Option<u64>, participants: &Participants) -> Result<(), String> {
        self.following = who;
        self.last_follow = None;
        match who {
            Some(id) if !participants.contains_key(&id) => {
                self.following = None;
                Err(format!("no participant with id {id} in the room"))
            }
            _ => Ok(()),
        }
    }

    /// Follow stops, for `reason`, if it was on.
    pub(super) fn stop_following(&mut self, reason: &str) -> Vec<Effect> {
        if self.following.take().is_none() {
            return Vec::new();
        }
        self.last_follow = None;
        vec![notify::<FollowStoppedNotification>(FollowStopped {
            reason: reason.into(),
        })]
    }

    /// Someone left the room: following them stops.
    pub(super) fn participant_left(&mut self, conn_id: u64) -> Vec<Effect> {
        if self.following != Some(conn_id) {
            return Vec::new();
        }
        self.following = None;
        vec![notify::<FollowStoppedNotification>(FollowStopped {
            reason: "they left the room".into(),
        })]
    }

    /// Where the person we follow is (file, visible lines, cursor), sent to the editor when
    /// it changed.
    pub(super) fn follow_update(
        &mut self,
        root: &Path,
        room: &impl RoomRead,
        states: &RemoteStates,
        participants: &Participants,
        enc: Encoding,
    ) -> Vec<Effect> {
        let Some(target) = self.following else {
            return Vec::new();
        };
        let Some(p) = participants.get(&target) else {
            return Vec::new();
        };
        let Some(client) = p.doc_client_id else {
            return Vec::new();
        };
        let Some((_, state)) = states.iter().find(|(c, _)| *c == client) else {
            return Vec::new();
        };
        let view = state.view.as_ref();
        let Some(path) = view
            .map(|v| v.path.as_str())
            .or(state.cursor.as_ref().map(|c| c.path.as_str()))
        else {
            return Vec::new();
        };
        let visible_range = match view.map(|v| (v.start_line, v.end_line)) {
            Some((Some(a), Some(b))) => Some(Range {
                start: Position { line: a, character: 0 },
                end: Position { line: b, character: 0 },
            }),
            _ => None,
        };
        let selections = state.cursor.as_ref().filter(|c| c.path == path).and_then(|c| {
            let room_text = room.text(path)?;
            let text = crate::text::Shadow::new(&room_text);
            let at = |o: u64| text.char_to_pos(text.utf16_to_char(o as usize), enc);
            Some(vec![Selection {
                anchor: at(c.anchor),
                head: at(c.head),
            }])
        });
        let update = FollowUpdate {
            conn_id: target,
            name: p.name.clone(),
            uri: file_uri(root, path),
            visible_range,
            selections,
        };
        if self.last_follow.as_ref() == Some(&update) {
            return Vec::new();
        }
        self.last_follow = Some(update.clone());
        vec![notify::<FollowNotification>(update)]
    }
}

/// Who an awareness state belongs to: (connection id, name, colour), from the state itself
/// or else from the participant list.
fn who(participants: &Participants, client: u64, state: &PresenceState) -> (u64, String, String) {
    let p = participants.values().find(|p| p.doc_client_id == Some(client));
    let user = state.user.as_ref();
    let name = user
        .map(|u| u.name.clone())
        .or_else(|| p.map(|p| p.name.clone()))
        .unwrap_or_else(|| "anonymous".into());
    let color = user
        .and_then(|u| u.color.clone())
        .or_else(|| p.map(|p| p.color.clone()))
        .unwrap_or_else(|| "#888888".into());
    (p.map(|p| p.conn_id).unwrap_or(client), name, color)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use mesh_protocol::messages::Role;

    use super::super::testing::{methods, notification, FakeRoom};
    use super::*;

    const URI: &str = "file:///w/a.txt";

    fn ana(conn_id: u64, client: u64) -> Participant {
        Participant {
            conn_id,
            seat: format!("seat-{conn_id}"),
            verified: false,
            link: None,
            name: "ana".into(),
            color: "#aa0000".into(),
            role: Role::Writer,
            client: "neovim".into(),
            doc_client_id: Some(client),
            companion: false,
        }
    }

    fn docs_with(text: &str) -> Docs {
        let mut docs = Docs::default();
        docs.open(URI.into(), 1, text.into(), Some("a.txt".into()), Instant::now());
        docs
    }

    fn pos(line: u32, character: u32) -> Position {
        Position { line, character }
    }

    #[test]
    fn the_local_cursor_is_published_in_room_offsets() {
        let docs = docs_with("ab\ncd\n");
        let room = FakeRoom::synced_writer().with("a.txt", "ab\ncd\n");
        let mut presence = Presence::default();
        presence.cursor(
            URI.into(),
            vec![Selection {
                anchor: pos(1, 0),
                head: pos(1, 2),
            }],
        );
        presence.view(Some(URI.into()), None);
        let state = presence
            .local_state(&docs, &room, |_| None, "me", Some("#00ff00".into()))
            .to_json();
        assert_eq!(state["user"], serde_json::json!({ "name": "me", "color": "#00ff00" }));
        assert_eq!(
            state["cursor"],
            serde_json::json!({ "path": "a.txt", "anchor": 3, "head": 5, "selections": [[3, 5]] })
        );
        assert_eq!(state["view"]["path"], "a.txt");
    }

    #[test]
    fn remote_cursors_reach_the_editor_in_its_positions_and_only_when_they_move() {
        let docs = docs_with("ab\ncd\n");
        let room = FakeRoom::synced_writer().with("a.txt", "ab\ncd\n");
        let participants = Participants::from([(7, ana(7, 70))]);
        let mut states: RemoteStates = vec![(
            70,
            PresenceState::from_json(&serde_json::json!({ "cursor": { "path": "a.txt", "anchor": 4, "head": 4 } })),
        )];
        let mut presence = Presence::default();
        let fx = presence.cursors(&docs, &room, &states, &participants);
        let sent = notification(&fx, "mesh/cursors");
        assert_eq!(sent["cursors"][0]["connId"], 7);
        assert_eq!(sent["cursors"][0]["name"], "ana");
        assert_eq!(
            sent["cursors"][0]["selections"][0]["head"],
            serde_json::json!({ "line": 1, "character": 1 })
        );
        assert!(presence.cursors(&docs, &room, &states, &participants).is_empty());
        // A cursor in another file is not shown here: the list empties.
        states[0].1.cursor.as_mut().unwrap().path = "b.txt".into();
        let fx = presence.cursors(&docs, &room, &states, &participants);
        assert_eq!(notification(&fx, "mesh/cursors")["cursors"], serde_json::json!([]));
    }

    #[test]
    fn following_someone_who_is_not_there_is_refused_and_leaving_stops_it() {
        let participants = Participants::from([(7, ana(7, 70))]);
        let mut presence = Presence::default();
        assert!(presence
            .follow(Some(9), &participants)
            .unwrap_err()
            .contains("no participant with id 9"));
        presence.follow(Some(7), &participants).unwrap();
        assert!(presence.participant_left(8).is_empty());
        assert_eq!(methods(&presence.participant_left(7)), ["mesh/followStopped"]);
        assert!(presence.stop_following("you took over").is_empty());
    }

    #[test]
    fn follow_sends_where_they_are_once_per_change() {
        let room = FakeRoom::synced_writer().with("a.txt", "ab\ncd\n");
        let participants = Participants::from([(7, ana(7, 70))]);
        let mut states: RemoteStates = vec![(
            70,
            PresenceState::from_json(&serde_json::json!({
                "cursor": { "path": "a.txt", "anchor": 3, "head": 3 },
                "view": { "path": "a.txt", "start_line": 0, "end_line": 40 },
            })),
        )];
        let mut presence = Presence::default();
        presence.follow(Some(7), &participants).unwrap();
        let root = Path::new("/w");
        let fx = presence.follow_update(root, &room, &states, &participants, Encoding::Utf16);
        let update = notification(&fx, "mesh/follow");
        assert_eq!(update["uri"], "file:///w/a.txt");
        assert_eq!(
            update["selections"][0]["anchor"],
            serde_json::json!({ "line": 1, "character": 0 })
        );
        assert!(presence
            .follow_update(root, &room, &states, &participants, Encoding::Utf16)
            .is_empty());
        states[0].1.view.as_mut().unwrap().start_line = Some(10);
        let fx = presence.follow_update(root, &room, &states, &participants, Encoding::Utf16);
        assert_eq!(methods(&fx), ["mesh/follow"]);
        assert_eq!(
            methods(&presence.stop_following("you took over")),
            ["mesh/followStopped"]
        );
    }

    #[test]
    fn leaving_clears_every_document_s_cursors() {
        let mut presence = Presence::default();
        let fx = presence.left(["file:///w/b".to_string(), "file:///w/a".to_string()]);
        assert_eq!(methods(&fx), ["mesh/cursors", "mesh/cursors"]);
        assert_eq!(notification(&fx, "mesh/cursors")["uri"], "file:///w/a");
    }
}
