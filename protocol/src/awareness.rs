//! The awareness state mesh clients publish: who they are, where their cursor is, what
//! they look at. Awareness is free-form JSON in the Yjs protocol and other clients (stock
//! Yjs editors, y-codemirror) publish other shapes, so reading is lenient: each part that
//! does not have mesh's shape is left out, never an error.

use serde::{Deserialize, Serialize};

/// One client's awareness state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceState {
    /// Who: name and colour.
    #[serde(default)]
    pub user: Option<PresenceUser>,
    /// The cursor and selections, in UTF-16 offsets of one room file's text.
    #[serde(default)]
    pub cursor: Option<PresenceCursor>,
    /// What the client shows (for follow mode).
    #[serde(default)]
    pub view: Option<PresenceView>,
    /// The connection id of the participant this client follows, so that everyone sees who
    /// follows whom (and the followed one knows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub following: Option<u64>,
}

/// A participant as awareness shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceUser {
    /// Display name.
    pub name: String,
    /// Colour as `#rrggbb`.
    #[serde(default)]
    pub color: Option<String>,
}

/// Where someone's cursor is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceCursor {
    /// The room path of the file.
    pub path: String,
    /// The primary selection's anchor, a UTF-16 offset.
    pub anchor: u64,
    /// The primary selection's head (where the caret is), a UTF-16 offset.
    pub head: u64,
    /// Every selection as `[anchor, head]`, the primary one first; empty means just
    /// `anchor`..`head`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selections: Vec<(u64, u64)>,
}

impl PresenceCursor {
    /// Every selection, the primary one first.
    pub fn all(&self) -> Vec<(u64, u64)> {
        if self.selections.is_empty() {
            vec![(self.anchor, self.head)]
        } else {
            self.selections.clone()
        }
    }
}

/// What someone's editor shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceView {
    /// The room path of the file in front.
    pub path: String,
    /// The first visible line (0-based), when known.
    #[serde(default)]
    pub start_line: Option<u32>,
    /// The last visible line (0-based), when known.
    #[serde(default)]
    pub end_line: Option<u32>,
}

impl PresenceState {
    /// Reads a state as any client published it: the parts with mesh's shape, the others
    /// left out.
    pub fn from_json(value: &serde_json::Value) -> Self {
        fn part<T: serde::de::DeserializeOwned>(v: Option<&serde_json::Value>) -> Option<T> {
            v.filter(|v| !v.is_null())
                .and_then(|v| serde_json::from_value(v.clone()).ok())
        }
        PresenceState {
            user: part(value.get("user")),
            cursor: part(value.get("cursor")),
            view: part(value.get("view")),
            following: part(value.get("following")),
        }
    }

    /// The state as JSON, to publish.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("plain data serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_mesh_state_round_trips() {
        let state = PresenceState {
            user: Some(PresenceUser {
                name: "ada".into(),
                color: Some("#ff8800".into()),
            }),
            cursor: Some(PresenceCursor {
                path: "a.txt".into(),
                anchor: 3,
                head: 5,
                selections: vec![(3, 5), (9, 9)],
            }),
            view: Some(PresenceView {
                path: "a.txt".into(),
                start_line: Some(0),
                end_line: Some(40),
            }),
            following: Some(7),
        };
        assert_eq!(PresenceState::from_json(&state.to_json()), state);
    }

    #[test]
    fn parts_of_another_shape_are_left_out_not_errors() {
        // y-codemirror publishes relative positions as its cursor, and a colour beside it.
        let other = json!({
            "user": { "name": "bo", "color": "#30bced", "colorLight": "#30bced33" },
            "cursor": { "anchor": { "type": null, "tname": "a.txt", "item": { "client": 1, "clock": 2 } }, "head": {} },
            "view": "nonsense",
            "following": "someone",
        });
        let state = PresenceState::from_json(&other);
        assert_eq!(state.user.map(|u| u.name), Some("bo".into()));
        assert_eq!(state.cursor, None);
        assert_eq!(state.view, None);
        assert_eq!(state.following, None);
        assert_eq!(PresenceState::from_json(&json!(null)), PresenceState::default());
        assert_eq!(
            PresenceState::from_json(&json!({ "cursor": null })),
            PresenceState::default()
        );
    }

    #[test]
    fn a_cursor_without_a_list_of_selections_is_its_one_selection() {
        let c: PresenceCursor = serde_json::from_value(json!({ "path": "a", "anchor": 4, "head": 2 })).unwrap();
        assert_eq!(c.all(), vec![(4, 2)]);
    }
}
