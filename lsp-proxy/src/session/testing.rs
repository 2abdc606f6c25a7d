//! Helpers for the tests of the session's sans-IO parts: a fake room, effect readers.
use std::collections::BTreeMap;

use super::{EditorOut, Effect, RoomRead};

/// A room for tests: files in a map.
#[derive(Debug, Clone)]
pub(in crate::session) struct FakeRoom {
    pub(in crate::session) synced: bool,
    pub(in crate::session) writable: bool,
    files: BTreeMap<String, String>,
}

impl FakeRoom {
    /// A synced room we may write, with no files.
    pub(in crate::session) fn synced_writer() -> Self {
        Self {
            synced: true,
            writable: true,
            files: BTreeMap::new(),
        }
    }

    /// The same room with `path` holding `text`.
    pub(in crate::session) fn with(mut self, path: &str, text: &str) -> Self {
        self.files.insert(path.into(), text.into());
        self
    }
}

impl RoomRead for FakeRoom {
    fn synced(&self) -> bool {
        self.synced
    }
    fn writable(&self) -> bool {
        self.writable
    }
    fn text(&self, path: &str) -> Option<String> {
        self.files.get(path).cloned()
    }
}

/// The editor methods of effects, in order (`workspace/applyEdit` for edit batches).
pub(in crate::session) fn methods(fx: &[Effect]) -> Vec<&'static str> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Editor(EditorOut::Notify(m, _)) => Some(*m),
            Effect::Editor(EditorOut::ApplyEdit { .. }) => Some("workspace/applyEdit"),
            Effect::Editor(EditorOut::DocumentHash { .. }) => Some("mesh/documentHash"),
            _ => None,
        })
        .collect()
}

/// The params of the first notification `method` among the effects.
pub(in crate::session) fn notification(fx: &[Effect], method: &str) -> serde_json::Value {
    fx.iter()
        .find_map(|e| match e {
            Effect::Editor(EditorOut::Notify(m, v)) if *m == method => Some(v.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {method} among {fx:?}"))
}
