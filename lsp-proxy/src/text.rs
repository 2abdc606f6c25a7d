//! The editor's text as the proxy believes it is (the "shadow"), and conversions between LSP
//! positions in each position encoding, character indices and the room's UTF-16 offsets.
//!
//! Lines are split on `\n`, `\r\n` and `\r` only, as LSP says (ropey's Unicode line breaks
//! are turned off in `Cargo.toml`).

use ropey::Rope;
use tower_lsp_server::lsp_types::{Position, Range};

/// How the editor counts `Position::character`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Bytes of UTF-8.
    Utf8,
    /// UTF-16 code units (LSP's default).
    Utf16,
    /// Unicode scalar values.
    Utf32,
}

impl Encoding {
    /// The name used in `positionEncoding`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf16 => "utf-16",
            Encoding::Utf32 => "utf-32",
        }
    }
}

/// A change in character indices of the text it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharEdit {
    /// First character replaced.
    pub start: usize,
    /// One past the last character replaced.
    pub end: usize,
    /// The replacement.
    pub text: String,
}

/// A text with fast position conversions.
#[derive(Debug, Clone, Default)]
pub struct Shadow {
    rope: Rope,
}

impl Shadow {
    /// A shadow holding `text`.
    pub fn new(text: &str) -> Self {
        Shadow {
            rope: Rope::from_str(text),
        }
    }

    /// The whole text.
    pub fn text(&self) -> String {
        self.rope.to_string()
    }

    /// Length in characters.
    pub fn len_chars(&self) -> usize {
        self.rope.len_chars()
    }

    /// Length in UTF-16 code units.
    pub fn len_utf16(&self) -> usize {
        self.rope.len_utf16_cu()
    }

    /// Whether the text equals `other`.
    pub fn eq_str(&self, other: &str) -> bool {
        self.rope.len_bytes() == other.len() && self.rope == other
    }

    /// The character index of an LSP position. Like LSP says, a `character` past the end of
    /// its line means the end of the line; a `line` past the end means the end of the text.
    /// A position inside a multi-unit character snaps to that character's start.
    pub fn pos_to_char(&self, pos: Position, enc: Encoding) -> usize {
        let line = pos.line as usize;
        if line >= self.rope.len_lines() {
            return self.rope.len_chars();
        }
        let start = self.rope.line_to_char(line);
        let slice = self.rope.line(line);
        // The line's content without its line break.
        let mut content_chars = slice.len_chars();
        while content_chars > 0 && matches!(slice.char(content_chars - 1), '\n' | '\r') {
            content_chars -= 1;
        }
        let want = pos.character as usize;
        let mut units = 0usize;
        for (i, ch) in slice.chars().take(content_chars).enumerate() {
            let w = match enc {
                Encoding::Utf8 => ch.len_utf8(),
                Encoding::Utf16 => ch.len_utf16(),
                Encoding::Utf32 => 1,
            };
            if units + w > want {
                return start + i;
            }
            units += w;
        }
        start + content_chars
    }

    /// The LSP position of a character index (clamped to the end of the text).
    pub fn char_to_pos(&self, idx: usize, enc: Encoding) -> Position {
        let idx = idx.min(self.rope.len_chars());
        let line = self.rope.char_to_line(idx);
        let start = self.rope.line_to_char(line);
        let character: usize = match enc {
            Encoding::Utf32 => idx - start,
            Encoding::Utf16 => self.rope.char_to_utf16_cu(idx) - self.rope.char_to_utf16_cu(start),
            Encoding::Utf8 => self.rope.char_to_byte(idx) - self.rope.char_to_byte(start),
        };
        Position {
            line: line as u32,
            character: character as u32,
        }
    }

    /// The LSP range of a character range.
    pub fn range(&self, start: usize, end: usize, enc: Encoding) -> Range {
        Range {
            start: self.char_to_pos(start, enc),
            end: self.char_to_pos(end, enc),
        }
    }

    /// UTF-16 offset of a character index.
    pub fn char_to_utf16(&self, idx: usize) -> usize {
        self.rope.char_to_utf16_cu(idx.min(self.rope.len_chars()))
    }

    /// Character index of a UTF-16 offset (clamped; inside a surrogate pair snaps back).
    pub fn utf16_to_char(&self, off: usize) -> usize {
        self.rope.utf16_cu_to_char(off.min(self.rope.len_utf16_cu()))
    }

    /// Applies an edit given in character indices.
    pub fn apply(&mut self, edit: &CharEdit) {
        let len = self.rope.len_chars();
        let start = edit.start.min(len);
        let end = edit.end.clamp(start, len);
        self.rope.remove(start..end);
        self.rope.insert(start, &edit.text);
    }

    /// Converts an LSP content change (a range, or none for the whole text) to character
    /// indices of this text.
    pub fn change_to_edit(&self, range: Option<Range>, text: String, enc: Encoding) -> CharEdit {
        match range {
            None => CharEdit {
                start: 0,
                end: self.rope.len_chars(),
                text,
            },
            Some(r) => {
                let a = self.pos_to_char(r.start, enc);
                let b = self.pos_to_char(r.end, enc);
                CharEdit {
                    start: a.min(b),
                    end: a.max(b),
                    text,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: u32, character: u32) -> Position {
        Position { line, character }
    }

    #[test]
    fn positions_in_every_encoding() {
        let s = Shadow::new("a🎉b\r\n漢é\nx");
        // 🎉 is 4 bytes, 2 UTF-16 units, 1 scalar.
        assert_eq!(s.pos_to_char(p(0, 3), Encoding::Utf16), 2);
        assert_eq!(s.pos_to_char(p(0, 5), Encoding::Utf8), 2);
        assert_eq!(s.pos_to_char(p(0, 2), Encoding::Utf32), 2);
        // Inside the emoji snaps to its start.
        assert_eq!(s.pos_to_char(p(0, 2), Encoding::Utf16), 1);
        // Past the end of a line is the end of that line (before \r\n).
        assert_eq!(s.pos_to_char(p(0, 99), Encoding::Utf16), 3);
        assert_eq!(s.pos_to_char(p(1, 1), Encoding::Utf8), 5);
        assert_eq!(s.pos_to_char(p(1, 3), Encoding::Utf8), 6);
        assert_eq!(s.pos_to_char(p(1, 2), Encoding::Utf16), 7);
        assert_eq!(s.pos_to_char(p(9, 0), Encoding::Utf16), s.len_chars());
        for enc in [Encoding::Utf8, Encoding::Utf16, Encoding::Utf32] {
            for i in 0..=s.len_chars() {
                // Every character index survives a round trip, except inside "\r\n".
                if i == 4 {
                    continue;
                }
                assert_eq!(s.pos_to_char(s.char_to_pos(i, enc), enc), i, "{enc:?} {i}");
            }
        }
    }

    #[test]
    fn edits_apply_in_place() {
        let mut s = Shadow::new("hello\nworld");
        let e = s.change_to_edit(
            Some(Range {
                start: p(0, 5),
                end: p(1, 0),
            }),
            " ".into(),
            Encoding::Utf16,
        );
        s.apply(&e);
        assert_eq!(s.text(), "hello world");
        let e = s.change_to_edit(None, "new".into(), Encoding::Utf16);
        s.apply(&e);
        assert!(s.eq_str("new"));
        assert_eq!(s.char_to_utf16(3), 3);
        let s = Shadow::new("🎉x");
        assert_eq!((s.char_to_utf16(1), s.utf16_to_char(2), s.utf16_to_char(1)), (2, 1, 0));
    }
}
