//! The room's chat, sans-IO: a message is checked, kept in the document's `chat` array (so
//! its history is durable and reaches every node with the document), and announced.

use mesh_protocol::codec::{encode_mesh, encode_yjs};
use mesh_protocol::messages::ChatEntry;
use mesh_protocol::{doc as shape, ErrorCode, ServerMessage, CHAT_HISTORY_LEN, MAX_CHAT_BYTES};
use yrs::sync::{Message, SyncMessage};
use yrs::types::ToJson;
use yrs::{Any, Array, ArrayRef, ReadTxn, Transact};

use super::{ConnId, Effects, RoomCore, Target};

impl RoomCore {
    pub(super) fn chat(&mut self, id: ConnId, text: String, now_ms: u64, fx: &mut Effects) {
        let conn = &self.conns[&id];
        if text.trim().is_empty() || text.len() > MAX_CHAT_BYTES {
            let message = format!("a chat message must be 1 to {MAX_CHAT_BYTES} bytes, not {}", text.len());
            fx.error(conn, id, ErrorCode::BadRequest, message);
            return;
        }
        self.chat_seq += 1;
        let entry = ChatEntry {
            id: format!("{now_ms:x}-{}-{}", id, self.chat_seq),
            author: conn.participant.name.clone(),
            conn_id: id,
            text,
            ts: now_ms,
        };
        let update = {
            let doc = self.awareness.doc();
            let chat: ArrayRef = doc.get_or_insert_array(shape::CHAT);
            let mut txn = doc.transact_mut();
            let value = Any::from(std::collections::HashMap::from([
                ("id".to_string(), Any::from(entry.id.clone())),
                ("author".to_string(), Any::from(entry.author.clone())),
                ("conn_id".to_string(), Any::from(entry.conn_id as f64)),
                ("text".to_string(), Any::from(entry.text.clone())),
                ("ts".to_string(), Any::from(entry.ts as f64)),
            ]));
            chat.push_back(&mut txn, value);
            let len = chat.len(&txn);
            if len > CHAT_HISTORY_LEN {
                chat.remove_range(&mut txn, 0, len - CHAT_HISTORY_LEN);
            }
            txn.encode_update_v1()
        };
        self.doc_bytes += update.len();
        fx.to(
            Target::Synced,
            encode_yjs(&Message::Sync(SyncMessage::Update(update.clone()))),
        );
        fx.persist.push(update);
        fx.to(Target::Room, encode_mesh(&ServerMessage::Chat { entry }));
    }

    /// The chat history as kept in the document, oldest first.
    pub fn chat_history(&self) -> Vec<serde_json::Value> {
        let txn = self.doc().transact();
        let Some(chat) = txn.get_array(shape::CHAT) else {
            return Vec::new();
        };
        let any = chat.to_json(&txn);
        serde_json::to_value(&any)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }
}
