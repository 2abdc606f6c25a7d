//! Presence: the local cursor and view published in awareness, remote cursors and follow.

use mesh_protocol::codec::encode_yjs;
use tower_lsp_server::lsp_types::{Position, Range};
use yrs::sync::Message;

use super::*;
use crate::lsp_ext::*;
use crate::room::Outgoing;

impl Session {
    pub(super) fn publish_awareness(&mut self) {
        let enc = self.enc;
        let cursor = self.local_cursor.as_ref().and_then(|(uri, sels)| {
            let doc = self.docs.get(uri)?;
            let path = doc.path.clone()?;
            let room_text = self.room_text(&path)?;
            let sels: Vec<(usize, usize)> = sels
                .iter()
                .map(|s| {
                    (
                        doc.sync.editor_pos_to_room(&room_text, s.anchor, enc),
                        doc.sync.editor_pos_to_room(&room_text, s.head, enc),
                    )
                })
                .collect();
            let (anchor, head) = *sels.first()?;
            Some(serde_json::json!({ "path": path, "anchor": anchor, "head": head, "selections": sels }))
        });
        let view = self.local_view.as_ref().and_then(|(uri, range)| {
            let path = self.docs.get(uri).and_then(|d| d.path.clone()).or_else(|| self.room_path(uri))?;
            Some(serde_json::json!({ "path": path, "start_line": range.map(|r| r.start.line), "end_line": range.map(|r| r.end.line) }))
        });
        let color = self.identity.color.clone().or_else(|| {
            self.room.as_ref().and_then(|r| {
                r.conn_id
                    .and_then(|id| r.participants.get(&id))
                    .map(|p| p.color.clone())
            })
        });
        let state = serde_json::json!({
            "user": { "name": self.identity.name, "color": color },
            "cursor": cursor,
            "view": view,
        });
        let Some(room) = self.room.as_mut() else { return };
        if room.awareness.set_local_state(state).is_err() {
            return;
        }
        if room.state != ConnState::Connected {
            return;
        }
        if let Ok(update) = room.awareness.update_with_clients([room.awareness.client_id()]) {
            let _ = room
                .conn
                .tx
                .send(Outgoing::Frame(encode_yjs(&Message::Awareness(update))));
        }
    }

    pub(super) fn remote_states(&self) -> Vec<(u64, serde_json::Value)> {
        let Some(room) = &self.room else { return Vec::new() };
        let me = room.awareness.client_id();
        room.awareness
            .iter()
            .filter(|(id, _)| *id != me)
            .filter_map(|(id, state)| {
                Some((
                    id.get(),
                    serde_json::from_str::<serde_json::Value>(state.data.as_deref()?).ok()?,
                ))
            })
            .collect()
    }

    pub(super) fn who(&self, client: u64, state: &serde_json::Value) -> (u64, String, String) {
        let p = self
            .room
            .as_ref()
            .and_then(|r| r.participants.values().find(|p| p.doc_client_id == Some(client)));
        let name = state["user"]["name"]
            .as_str()
            .map(String::from)
            .or_else(|| p.map(|p| p.name.clone()))
            .unwrap_or_else(|| "anonymous".into());
        let color = state["user"]["color"]
            .as_str()
            .map(String::from)
            .or_else(|| p.map(|p| p.color.clone()))
            .unwrap_or_else(|| "#888888".into());
        (p.map(|p| p.conn_id).unwrap_or(client), name, color)
    }

    pub(super) fn update_cursors(&mut self) {
        let enc = self.enc;
        let states = self.remote_states();
        let uris: Vec<String> = self.docs.keys().cloned().collect();
        for uri in uris {
            let Some(path) = self.docs.get(&uri).and_then(|d| d.path.clone()) else {
                continue;
            };
            let Some(room_text) = self.room_text(&path) else {
                continue;
            };
            let mut cursors = Vec::new();
            for (client, state) in &states {
                let c = &state["cursor"];
                if c["path"].as_str() != Some(path.as_str()) {
                    continue;
                }
                let doc = &self.docs[&uri];
                let to_pos = |off: &serde_json::Value| {
                    off.as_u64()
                        .map(|o| doc.sync.room_offset_to_editor(&room_text, o as usize, enc))
                };
                let mut selections = Vec::new();
                if let Some(list) = c["selections"].as_array() {
                    for pair in list {
                        if let (Some(a), Some(h)) = (to_pos(&pair[0]), to_pos(&pair[1])) {
                            selections.push(Selection { anchor: a, head: h });
                        }
                    }
                }
                if selections.is_empty() {
                    if let (Some(a), Some(h)) = (to_pos(&c["anchor"]), to_pos(&c["head"])) {
                        selections.push(Selection { anchor: a, head: h });
                    }
                }
                if selections.is_empty() {
                    continue;
                }
                let (conn_id, name, color) = self.who(*client, state);
                cursors.push(RemoteCursor {
                    conn_id,
                    name,
                    color,
                    selections,
                });
            }
            cursors.sort_by_key(|c| c.conn_id);
            let doc = self.docs.get_mut(&uri).expect("listed above");
            if doc.last_cursors.as_ref() != Some(&cursors) {
                doc.last_cursors = Some(cursors.clone());
                self.notify::<CursorsNotification>(CursorsParams { uri, cursors });
            }
        }
    }

    pub(super) fn update_follow(&mut self) {
        let Some(target) = self.following else { return };
        let Some(root) = self.root.clone() else { return };
        let Some(p) = self.room.as_ref().and_then(|r| r.participants.get(&target)).cloned() else {
            return;
        };
        let Some(client) = p.doc_client_id else { return };
        let Some((_, state)) = self.remote_states().into_iter().find(|(c, _)| *c == client) else {
            return;
        };
        let view = &state["view"];
        let Some(path) = view["path"].as_str().or(state["cursor"]["path"].as_str()) else {
            return;
        };
        let visible_range = match (view["start_line"].as_u64(), view["end_line"].as_u64()) {
            (Some(a), Some(b)) => Some(Range {
                start: Position {
                    line: a as u32,
                    character: 0,
                },
                end: Position {
                    line: b as u32,
                    character: 0,
                },
            }),
            _ => None,
        };
        let selections = state["cursor"]["path"].as_str().filter(|p| *p == path).and_then(|_| {
            let room_text = self.room_text(path)?;
            let text = crate::text::Shadow::new(&room_text);
            let at = |v: &serde_json::Value| {
                v.as_u64()
                    .map(|o| text.char_to_pos(text.utf16_to_char(o as usize), self.enc))
            };
            Some(vec![Selection {
                anchor: at(&state["cursor"]["anchor"])?,
                head: at(&state["cursor"]["head"])?,
            }])
        });
        let update = FollowUpdate {
            conn_id: target,
            name: p.name.clone(),
            uri: file_uri(&root, path),
            visible_range,
            selections,
        };
        if self.last_follow.as_ref() != Some(&update) {
            self.last_follow = Some(update.clone());
            self.notify::<FollowNotification>(update);
        }
    }
}
