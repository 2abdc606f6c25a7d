//! Exact maps from the texts the folder and the room agreed on to the room's text now.
//!
//! An editor opens a file from disk. Disk sync wrote that text from the room a moment ago, and
//! the room may have moved on since (someone is typing): the buffer must be brought to the
//! room's text, and whatever the user types before that lands must go where they put it.
//! Without history, the only map from the buffer to the room is a diff, and a diff can only
//! guess which of two equal stretches is which: typing inside `«0004»` while the room gained
//! `«0001»` beside it can land inside `«0001»`. So for each text written or read here while
//! it was also the room's, the map from it to the room is kept and composed with every
//! change of the room's text, like an open document's, and a buffer opened from one of them
//! starts with that exact map.

use std::collections::{HashMap, VecDeque};

use crate::pending::{utf16_len, Pending};
use crate::sync::RoomTextChange;

use super::docs::sha256_hex;

/// Agreed texts per file whose maps are kept. An editor opens a file in well under a second,
/// during which a burst of remote edits rewrites it a few times; older versions fall back to
/// a diff. Each map costs what the room changed since, so only a few are kept.
const AGREED_MAPS: usize = 8;

/// Per room path, the latest agreed texts (by SHA-256) and their maps to the room's text now.
#[derive(Debug, Default)]
pub(super) struct AgreedMaps {
    by_path: HashMap<String, VecDeque<(String, Pending)>>,
}

impl AgreedMaps {
    /// The folder and the room agreed on `text` (whose SHA-256 is `hash`) for `path`; `room`
    /// is the room's text of `path` now, every earlier change of it already handed to
    /// [`AgreedMaps::room_changed`]. Only a text that is the room's now starts a map (the
    /// identity).
    pub(super) fn agreed(&mut self, path: &str, hash: &str, text: &str, room: Option<&str>) {
        if room != Some(text) {
            return;
        }
        let maps = self.by_path.entry(path.to_string()).or_default();
        maps.retain(|(h, _)| h != hash);
        maps.push_back((hash.to_string(), Pending::identity(utf16_len(text))));
        while maps.len() > AGREED_MAPS {
            maps.pop_front();
        }
    }

    /// `path` left the folder and the room.
    pub(super) fn forget(&mut self, path: &str) {
        self.by_path.remove(path);
    }

    /// The room's text of `path` changed: every map of it follows. A file replaced as a
    /// whole has no history to follow; its maps go.
    pub(super) fn room_changed(&mut self, path: &str, change: &RoomTextChange) {
        let Some(maps) = self.by_path.get_mut(path) else {
            return;
        };
        match change {
            RoomTextChange::Replaced => {
                self.by_path.remove(path);
            }
            RoomTextChange::Delta(delta) => {
                maps.retain_mut(|(_, map)| map.compose(delta).is_ok());
            }
        }
    }

    /// The exact map from `text` (a buffer just opened) to the room's text of `path`, when
    /// `text` is one of the agreed texts kept.
    pub(super) fn map_from(&self, path: &str, text: &str) -> Option<Pending> {
        let hash = sha256_hex(text);
        self.by_path
            .get(path)?
            .iter()
            .rev()
            .find(|(h, _)| *h == hash)
            .map(|(_, map)| map.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pending::Delta;
    use crate::text::Shadow;

    fn insert_at(at: u32, text: &str) -> RoomTextChange {
        RoomTextChange::Delta(vec![Delta::Retain(at), Delta::Insert(text.into())])
    }

    #[test]
    fn the_map_from_an_agreed_text_follows_the_room_exactly_where_a_diff_would_guess() {
        let mut maps = AgreedMaps::default();
        let written = "«0004b0004»";
        maps.agreed("f.txt", &sha256_hex(written), written, Some(written));
        // Someone types a marker before the one on disk: equal characters on both sides.
        maps.room_changed("f.txt", &insert_at(0, "«0001c0001»"));
        let room = "«0001c0001»«0004b0004»";
        let map = maps.map_from("f.txt", written).expect("kept");
        assert_eq!(map.apply_to(&Shadow::new(written)), room);
        // The user types inside «0004…» (after "«00"): it lands there, not inside «0001…».
        let ops = map.clone().apply_local(3, 3, "Z");
        assert_eq!(crate::sync::apply_ops(room, &ops), "«0001c0001»«00Z04b0004»");
        // A diff of the same two texts aligns "«000" of the buffer with «0001…»'s.
        let diffed = Pending::from_diff(&written.chars().collect::<Vec<_>>(), &room.chars().collect::<Vec<_>>());
        let guessed = crate::sync::apply_ops(room, &diffed.clone().apply_local(3, 3, "Z"));
        assert_ne!(
            guessed, "«0001c0001»«00Z04b0004»",
            "the diff's guess this test guards against"
        );
    }

    #[test]
    fn only_a_text_that_is_the_room_s_now_starts_a_map_and_a_replaced_file_drops_its_maps() {
        let mut maps = AgreedMaps::default();
        maps.agreed("a", &sha256_hex("disk"), "disk", Some("room"));
        assert!(
            maps.map_from("a", "disk").is_none(),
            "not the room's text: no exact map"
        );
        maps.agreed("a", &sha256_hex("same"), "same", Some("same"));
        assert!(maps.map_from("a", "same").is_some());
        maps.room_changed("a", &RoomTextChange::Replaced);
        assert!(maps.map_from("a", "same").is_none());
    }

    #[test]
    fn at_most_eight_agreed_texts_per_file_are_kept_the_oldest_go_first() {
        let mut maps = AgreedMaps::default();
        let mut room = String::new();
        for i in 0..10 {
            let text = format!("v{i}");
            maps.room_changed(
                "a",
                &RoomTextChange::Delta(vec![
                    Delta::Delete(utf16_len(&room) as u32),
                    Delta::Insert(text.clone()),
                ]),
            );
            room = text;
            maps.agreed("a", &sha256_hex(&room), &room, Some(&room));
        }
        assert!(maps.map_from("a", "v0").is_none());
        assert!(maps.map_from("a", "v1").is_none());
        let map = maps.map_from("a", "v2").expect("kept");
        assert_eq!(map.apply_to(&Shadow::new("v2")), "v9");
    }
}
