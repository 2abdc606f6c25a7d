//! The ghost's edit blocks, sans-IO: the model's answer, read as it streams, becomes edits
//! that can be typed into the room while the answer is still coming.
//!
//! The system prompt asks for blocks of this shape (any prose around them is ignored):
//!
//! ```text
//! <<<<<<< SEARCH path/in/room.py
//! the exact lines to replace
//! =======
//! the new lines
//! >>>>>>> REPLACE
//! ```
//!
//! [`Edit::Begin`] comes once the text to replace is complete; the new lines come as
//! [`Edit::Text`] as soon as they arrive (held back only while a line could still turn out to
//! be the closing marker); [`Edit::End`] closes the block.

/// The line that opens a block (followed by the file's path).
pub const OPEN: &str = "<<<<<<< SEARCH";
/// The line between the text to replace and the new text.
pub const MIDDLE: &str = "=======";
/// The line that closes a block.
pub const CLOSE: &str = ">>>>>>> REPLACE";

/// The longest text to replace the reader holds: a function or two. Longer is not an edit the
/// ghost should make by quoting.
pub const MAX_SEARCH_BYTES: usize = 64 * 1024;

/// What the model's answer asks for, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Replace `search` (exact text, empty: append) in `path`.
    Begin {
        /// The room path.
        path: String,
        /// The exact text to replace.
        search: String,
    },
    /// The next piece of the new text.
    Text(String),
    /// The block is complete.
    End,
}

/// Why the answer is not a set of edit blocks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// A block without a path.
    #[error("the model opened an edit block without a file path")]
    NoPath,
    /// The text to replace is over the limit.
    #[error("the model quoted more than {MAX_SEARCH_BYTES} bytes to replace; ask for a smaller change")]
    SearchTooLong,
    /// The answer ended inside a block.
    #[error("the model's answer ended inside an edit block")]
    Unfinished,
}

#[derive(Debug)]
enum State {
    Outside,
    Search { path: String, text: String },
    Replace,
}

/// The reader: feed it the answer's text as it streams.
#[derive(Debug)]
pub struct EditReader {
    state: State,
    line: String,
    /// In `Replace`, whether the current line was already let through (it cannot be the
    /// closing marker).
    passing: bool,
}

impl Default for EditReader {
    fn default() -> Self {
        EditReader {
            state: State::Outside,
            line: String::new(),
            passing: false,
        }
    }
}

impl EditReader {
    /// A reader at the start of an answer.
    pub fn new() -> EditReader {
        EditReader::default()
    }

    /// Takes the next piece of the answer; returns the edits it completed.
    pub fn feed(&mut self, text: &str) -> Result<Vec<Edit>, EditError> {
        let mut out = Vec::new();
        for c in text.chars() {
            if let State::Replace = self.state {
                if self.passing {
                    self.push_text(&mut out, c);
                    if c == '\n' {
                        self.passing = false;
                    }
                    continue;
                }
                self.line.push(c);
                let line = self.line.trim_end_matches(['\n', '\r']);
                if c == '\n' {
                    if line == CLOSE {
                        self.line.clear();
                        self.state = State::Outside;
                        out.push(Edit::End);
                    } else {
                        let held = std::mem::take(&mut self.line);
                        out.push(Edit::Text(held));
                    }
                } else if !CLOSE.starts_with(line) {
                    let held = std::mem::take(&mut self.line);
                    out.push(Edit::Text(held));
                    self.passing = true;
                }
                continue;
            }
            if c != '\n' {
                self.line.push(c);
                if self.line.len() > MAX_SEARCH_BYTES {
                    return Err(EditError::SearchTooLong);
                }
                continue;
            }
            let line = std::mem::take(&mut self.line);
            let bare = line.trim_end_matches('\r');
            match &mut self.state {
                State::Outside => {
                    if let Some(rest) = bare.strip_prefix(OPEN) {
                        let path = rest.trim();
                        if path.is_empty() {
                            return Err(EditError::NoPath);
                        }
                        self.state = State::Search {
                            path: path.to_string(),
                            text: String::new(),
                        };
                    }
                }
                State::Search { path, text } => {
                    if bare == MIDDLE {
                        out.push(Edit::Begin {
                            path: std::mem::take(path),
                            search: std::mem::take(text),
                        });
                        self.state = State::Replace;
                        self.passing = false;
                    } else {
                        if text.len() + line.len() > MAX_SEARCH_BYTES {
                            return Err(EditError::SearchTooLong);
                        }
                        text.push_str(&line);
                        text.push('\n');
                    }
                }
                State::Replace => unreachable!("handled above"),
            }
        }
        Ok(out)
    }

    fn push_text(&mut self, out: &mut Vec<Edit>, c: char) {
        if let Some(Edit::Text(t)) = out.last_mut() {
            t.push(c);
        } else {
            out.push(Edit::Text(c.to_string()));
        }
    }

    /// The answer is complete: an open block is an error.
    pub fn finish(&self) -> Result<(), EditError> {
        match self.state {
            State::Outside => Ok(()),
            _ => Err(EditError::Unfinished),
        }
    }
}

/// The instructions that make a model answer in edit blocks.
pub const WRITE_INSTRUCTIONS: &str = "Answer with the change only, as one or more edit blocks, \
each exactly like this (the path is the room file's path; the lines between SEARCH and ======= \
must be copied exactly from the file, and are replaced by the lines before REPLACE):\n\
<<<<<<< SEARCH path/to/file\nexact lines to replace\n=======\nnew lines\n>>>>>>> REPLACE\n\
Keep each block small: quote only the lines that change plus one line of context. To create \
a file, give its new path with nothing between SEARCH and =======.";

/// The instructions for a suggestion: prose where prose is the answer, edit blocks where the
/// request needs a change.
pub const SUGGEST_INSTRUCTIONS: &str = "If the request needs a change to the room's files, \
explain it in a sentence and give the change as edit blocks, each exactly like this (the path \
is the room file's path; the lines between SEARCH and ======= must be copied exactly from the \
file, and are replaced by the lines before REPLACE; to create a file, give its new path with \
nothing between SEARCH and =======):\n\
<<<<<<< SEARCH path/to/file\nexact lines to replace\n=======\nnew lines\n>>>>>>> REPLACE\n\
Otherwise answer in plain text.";

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(edits: &[Edit]) -> String {
        edits
            .iter()
            .filter_map(|e| match e {
                Edit::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    const ANSWER: &str = "Here is the fix:\n<<<<<<< SEARCH src/main.py\ndef f():\n    return 1\n=======\ndef f():\n    return 2  # >>> not the end\n>>>>>>> REPLACE\nDone.\n";

    #[test]
    fn a_block_becomes_begin_text_end_and_prose_is_ignored() {
        let mut r = EditReader::new();
        let edits = r.feed(ANSWER).unwrap();
        assert_eq!(
            edits.first(),
            Some(&Edit::Begin {
                path: "src/main.py".into(),
                search: "def f():\n    return 1\n".into()
            })
        );
        assert_eq!(edits.last(), Some(&Edit::End));
        assert_eq!(text_of(&edits), "def f():\n    return 2  # >>> not the end\n");
        r.finish().unwrap();
    }

    #[test]
    fn fed_one_character_at_a_time_the_new_text_streams_and_says_the_same() {
        let mut r = EditReader::new();
        let mut all = Vec::new();
        let mut texts_before_end = 0;
        for c in ANSWER.chars() {
            let got = r.feed(&c.to_string()).unwrap();
            texts_before_end += got.iter().filter(|e| matches!(e, Edit::Text(_))).count();
            all.extend(got);
        }
        assert_eq!(text_of(&all), "def f():\n    return 2  # >>> not the end\n");
        // The new text arrives in many pieces, not at the end of the block.
        assert!(texts_before_end > 20, "{texts_before_end}");
        assert_eq!(all.iter().filter(|e| **e == Edit::End).count(), 1);
    }

    #[test]
    fn a_line_that_starts_like_the_close_marker_is_held_until_it_is_not() {
        let mut r = EditReader::new();
        r.feed("<<<<<<< SEARCH a\nx\n=======\n").unwrap();
        assert_eq!(r.feed(">>>>").unwrap(), vec![]);
        assert_eq!(r.feed(">x").unwrap(), vec![Edit::Text(">>>>>x".into())]);
    }

    #[test]
    fn an_answer_that_ends_inside_a_block_is_an_error() {
        let mut r = EditReader::new();
        r.feed("<<<<<<< SEARCH a\nx\n=======\ny").unwrap();
        assert_eq!(r.finish(), Err(EditError::Unfinished));
    }

    #[test]
    fn a_block_without_a_path_is_an_error() {
        assert_eq!(EditReader::new().feed("<<<<<<< SEARCH\n"), Err(EditError::NoPath));
    }

    #[test]
    fn quoting_too_much_is_refused_without_holding_it() {
        let mut r = EditReader::new();
        r.feed("<<<<<<< SEARCH a\n").unwrap();
        let big = "y".repeat(MAX_SEARCH_BYTES + 10);
        assert_eq!(r.feed(&big), Err(EditError::SearchTooLong));
    }
}
