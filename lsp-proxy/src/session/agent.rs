//! Edits by a program rather than an editor (`mesh-proxy mcp`): a text anchor in the room's
//! current text becomes one CRDT operation on that file, and the agent's cursor lands where
//! it typed. Sans-IO: the room's text comes in, an operation and a cursor come out.

use mesh_protocol::awareness::PresenceCursor;

use crate::sync::RoomOp;

/// An edit an agent asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEdit {
    /// Replace the one place where `old_text` occurs in `path` by `new_text`.
    Replace {
        /// The room path.
        path: String,
        /// The anchor: text that occurs exactly once in the file.
        old_text: String,
        /// What it becomes.
        new_text: String,
    },
    /// Add a file that the room does not have yet.
    Create {
        /// The room path.
        path: String,
        /// Its text.
        text: String,
    },
}

/// What an agent edit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentEdited {
    /// The room path.
    pub path: String,
    /// The 1-based line where the change starts.
    pub line: u32,
    /// Where the agent's cursor is now (a UTF-16 offset in the room's text).
    pub cursor: u64,
}

/// The operation that replaces the single occurrence of `old_text` in `text` by `new_text`,
/// and the UTF-16 offset just after what it inserts (where the agent's cursor goes).
///
/// Only the part of the anchor that really changes is deleted and inserted (the common
/// prefix and suffix of `old_text` and `new_text` stay), so that someone typing inside the
/// unchanged part of the anchor at the same time keeps their text.
pub fn replace_op(text: &str, old_text: &str, new_text: &str) -> Result<(RoomOp, u64, u32), String> {
    if old_text.is_empty() {
        return Err(
            "old_text is empty: give text that occurs exactly once in the file (to add a file, use create_file)".into(),
        );
    }
    let Some(at) = text.find(old_text) else {
        return Err("old_text was not found: read the file again (someone may have changed it) and copy the text exactly, whitespace included".into());
    };
    // Overlapping occurrences count too: "aa" in "aaa" names two places. The search goes on
    // from the next character, not the next byte (a byte may fall inside a character).
    let next = at + text[at..].chars().next().map_or(1, char::len_utf8);
    let again = text[next..]
        .char_indices()
        .filter(|(i, _)| text[next + i..].starts_with(old_text))
        .count();
    if again > 0 {
        return Err(format!(
            "old_text occurs {} times: include more of the surrounding lines so that it names one place",
            again + 1
        ));
    }
    let prefix: usize = old_text
        .chars()
        .zip(new_text.chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    let suffix: usize = old_text[prefix..]
        .chars()
        .rev()
        .zip(new_text[prefix..].chars().rev())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    let start = at + prefix;
    let deleted = &old_text[prefix..old_text.len() - suffix];
    let inserted = &new_text[prefix..new_text.len() - suffix];
    let start_utf16 = utf16_len(&text[..start]);
    let op = RoomOp {
        start_utf16,
        delete_utf16: utf16_len(deleted),
        insert: inserted.to_string(),
    };
    let cursor = u64::from(start_utf16) + u64::from(utf16_len(inserted));
    let line = u32::try_from(text[..start].matches('\n').count() + 1).unwrap_or(u32::MAX);
    Ok((op, cursor, line))
}

/// The agent's cursor at `offset` of `path`.
pub fn cursor_at(path: &str, offset: u64) -> PresenceCursor {
    PresenceCursor {
        path: path.to_string(),
        anchor: offset,
        head: offset,
        selections: Vec::new(),
    }
}

fn utf16_len(s: &str) -> u32 {
    // Room texts are bounded far below 4 GiB by the folder limits.
    u32::try_from(s.encode_utf16().count()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::apply_ops;

    fn apply(text: &str, old: &str, new: &str) -> Result<String, String> {
        replace_op(text, old, new).map(|(op, _, _)| apply_ops(text, &[op]))
    }

    #[test]
    fn replace_changes_only_the_anchor() {
        let text = "fn a() {\n    1\n}\nfn b() {\n    2\n}\n";
        assert_eq!(
            apply(text, "fn b() {\n    2", "fn b() {\n    3").unwrap(),
            "fn a() {\n    1\n}\nfn b() {\n    3\n}\n"
        );
    }

    #[test]
    fn replace_keeps_the_common_prefix_and_suffix_out_of_the_operation() {
        let (op, cursor, line) = replace_op("x\nlet total = 1;\n", "let total = 1;", "let total = 42;").unwrap();
        assert_eq!(op.start_utf16, 14);
        assert_eq!(op.delete_utf16, 1);
        assert_eq!(op.insert, "42");
        assert_eq!(cursor, 16);
        assert_eq!(line, 2);
    }

    #[test]
    fn replace_counts_offsets_in_utf16() {
        let text = "// 😀 é\nold\n";
        let (op, cursor, _) = replace_op(text, "old", "new").unwrap();
        // "// " 3, the emoji 2, " é\n" 3: the change starts at 8.
        assert_eq!(op.start_utf16, 8);
        assert_eq!(cursor, 11);
        assert_eq!(apply_ops(text, &[op]), "// 😀 é\nnew\n");
    }

    #[test]
    fn missing_anchor_is_refused() {
        let e = replace_op("abc", "xyz", "q").unwrap_err();
        assert!(e.contains("not found"), "{e}");
    }

    #[test]
    fn ambiguous_anchor_is_refused_with_the_count() {
        let e = replace_op("x = 1\nx = 1\nx = 1\n", "x = 1", "x = 2").unwrap_err();
        assert!(e.contains("3 times"), "{e}");
    }

    #[test]
    fn overlapping_occurrences_are_ambiguous() {
        let e = replace_op("aaa", "aa", "b").unwrap_err();
        assert!(e.contains("2 times"), "{e}");
    }

    #[test]
    fn an_anchor_that_starts_with_a_wide_character_is_found_once() {
        // Found by the mcp_edit fuzz target: the search for a second occurrence started one
        // byte, not one character, after the first.
        assert_eq!(apply("é\u{80}x", "é", "e").unwrap(), "e\u{80}x");
        assert!(replace_op("😀😀", "😀", "x").unwrap_err().contains("2 times"));
    }

    #[test]
    fn empty_anchor_is_refused() {
        assert!(replace_op("abc", "", "x").is_err());
    }

    #[test]
    fn deleting_text_puts_the_cursor_where_it_was() {
        let (op, cursor, _) = replace_op("keep remove keep", " remove", "").unwrap();
        assert_eq!((op.start_utf16, op.delete_utf16, op.insert.as_str()), (4, 7, ""));
        assert_eq!(cursor, 4);
    }
}
