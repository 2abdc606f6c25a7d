//! The ghost typing into the room's document: edit blocks become CRDT operations on the
//! ghost's replica, in transactions of the ghost's own origin, so that
//!
//! - people typing at the same time keep their text: the ghost deletes only the characters it
//!   quoted (items that existed when it deleted them) and inserts at a *relative* position (a
//!   `StickyIndex` bound to the character after the replaced text), never at a remembered
//!   offset;
//! - one undo removes a whole request's change: a yrs `UndoManager` tracks only the ghost's
//!   origin, with a capture window that never splits a request, and the stack is cut at each
//!   request's start and end.
//!
//! No sockets: the replica sends its own updates (see [`crate::room`]).

use yrs::undo::{Options as UndoOptions, UndoManager};
use yrs::{Assoc, Doc, GetString, IndexedSequence, Map, MapRef, Origin, StickyIndex, Text, TextRef, Transact};

use crate::edits::Edit;

/// The origin of the ghost's own edits.
pub const GHOST_ORIGIN: &str = "ghost";

/// The undo manager's capture window: a day, so a request's pieces are never split into
/// several undo steps by time (the stack is cut explicitly at each request's edges).
const CAPTURE_WINDOW_MS: u64 = 24 * 3600 * 1000;

/// How many files one request may create: a change adds a module or a test, not a tree.
pub const MAX_CREATED_FILES: usize = 16;

/// The most text one request may type into the files it creates, in bytes: a few thousand
/// lines, far more than a model writes in one answer, and far below the room's limits.
pub const MAX_NEW_FILE_BYTES: usize = 256 * 1024;

/// A change the ghost cannot make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    /// The model named a new file with a path the room does not take.
    #[error("the model named a new file {0:?} the room cannot have: {1}")]
    BadPath(String, String),
    /// The request creates more files, or more text in them, than the ghost allows.
    #[error("the change creates more than {MAX_CREATED_FILES} files or {MAX_NEW_FILE_BYTES} bytes of new files; ask for a smaller change")]
    TooMuchNew,
    /// The model named a file the room does not have.
    #[error("the room has no file {0}")]
    NoFile(String),
    /// The quoted text is not in the file (anymore).
    #[error("the text to replace in {0} is not there (someone changed it, or the model misquoted it)")]
    NotFound(String),
}

struct Block {
    path: String,
    text: TextRef,
    at: StickyIndex,
    /// The block creates this file (its text counts against [`MAX_NEW_FILE_BYTES`]).
    new: bool,
}

/// Types one room's ghost changes and undoes them.
pub struct Typist {
    doc: Doc,
    files: MapRef,
    undo: UndoManager<()>,
    block: Option<Block>,
    /// Whether the current request changed anything.
    changed: bool,
    /// Files the current request created, and the bytes typed into them.
    created: usize,
    new_bytes: usize,
}

impl Typist {
    /// A typist for `doc` (the ghost's replica).
    pub fn new(doc: &Doc) -> Typist {
        let files = doc.get_or_insert_map(mesh_protocol::doc::FILES);
        let mut undo = UndoManager::with_options(UndoOptions {
            capture_timeout_millis: CAPTURE_WINDOW_MS,
            ..UndoOptions::default()
        });
        undo.expand_scope(doc, &files);
        undo.include_origin(Origin::from(GHOST_ORIGIN));
        Typist {
            doc: doc.clone(),
            files,
            undo,
            block: None,
            changed: false,
            created: 0,
            new_bytes: 0,
        }
    }

    /// A request starts: its change will be one undo step of its own.
    pub fn start(&mut self) {
        self.undo.reset();
        self.block = None;
        self.changed = false;
        self.created = 0;
        self.new_bytes = 0;
    }

    /// Applies one edit; returns where the ghost's cursor is now (path, UTF-16 offset).
    pub fn apply(&mut self, edit: Edit) -> Result<Option<(String, u32)>, TypeError> {
        match edit {
            Edit::Begin { path, search } => {
                let mut txn = self.doc.transact_mut_with(GHOST_ORIGIN);
                let (text, new) = match self.files.get(&txn, &path) {
                    Some(yrs::Out::YText(text)) => (text, false),
                    Some(_) => return Err(TypeError::NoFile(path)),
                    // A block that quotes nothing from a file the room lacks creates it, in
                    // the request's own transaction, so its undo removes the file too.
                    None if search.is_empty() => {
                        if let Some(why) = mesh_protocol::doc::path_problem(&path) {
                            return Err(TypeError::BadPath(path, why));
                        }
                        if self.created == MAX_CREATED_FILES {
                            return Err(TypeError::TooMuchNew);
                        }
                        self.created += 1;
                        self.changed = true;
                        (
                            self.files.insert(&mut txn, path.as_str(), yrs::TextPrelim::new("")),
                            true,
                        )
                    }
                    None => return Err(TypeError::NoFile(path)),
                };
                let current = text.get_string(&txn);
                let byte = if search.is_empty() {
                    current.len()
                } else {
                    current.find(&search).ok_or_else(|| TypeError::NotFound(path.clone()))?
                };
                let start = current[..byte].encode_utf16().count() as u32;
                let len = search.encode_utf16().count() as u32;
                if len > 0 {
                    text.remove_range(&mut txn, start, len);
                    self.changed = true;
                }
                // Bound to the character after the replaced text: the ghost's text goes just
                // before it, wherever others' edits have moved it. At the end of the file there
                // is no such character: the end of the text itself is the anchor.
                let at = text
                    .sticky_index(&txn, start, Assoc::After)
                    .unwrap_or_else(|| StickyIndex::from_type(&txn, &text, Assoc::After));
                self.block = Some(Block {
                    path: path.clone(),
                    text,
                    at,
                    new,
                });
                Ok(Some((path, start)))
            }
            Edit::Text(piece) => {
                let Some(block) = &self.block else {
                    return Ok(None);
                };
                if block.new {
                    self.new_bytes += piece.len();
                    if self.new_bytes > MAX_NEW_FILE_BYTES {
                        return Err(TypeError::TooMuchNew);
                    }
                }
                let mut txn = self.doc.transact_mut_with(GHOST_ORIGIN);
                let offset = block
                    .at
                    .get_offset(&txn)
                    .map_or_else(|| block.text.len(&txn), |o| o.index);
                block.text.insert(&mut txn, offset, &piece);
                self.changed = true;
                let end = offset + piece.encode_utf16().count() as u32;
                Ok(Some((block.path.clone(), end)))
            }
            Edit::End => {
                let at = self.block.take().map(|b| {
                    let txn = self.doc.transact();
                    let offset = b.at.get_offset(&txn).map_or(0, |o| o.index);
                    (b.path, offset)
                });
                Ok(at)
            }
        }
    }

    /// The request ended; returns whether it changed anything (then it is one undo step).
    pub fn finish(&mut self) -> bool {
        self.undo.reset();
        self.block = None;
        std::mem::take(&mut self.changed)
    }

    /// Removes the current request's partial change (a failed or cancelled request leaves
    /// nothing behind).
    pub fn discard(&mut self) {
        self.block = None;
        if std::mem::take(&mut self.changed) {
            self.undo.undo_blocking();
        }
        self.undo.reset();
    }

    /// Undoes the newest change not undone yet; false when there is none.
    pub fn undo(&mut self) -> bool {
        self.undo.undo_blocking()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::decoder::Decode;
    use yrs::{ReadTxn, Update};

    fn room_with(path: &str, text: &str) -> Doc {
        let doc = mesh_protocol::doc::new_doc();
        let files = doc.get_or_insert_map(mesh_protocol::doc::FILES);
        let mut txn = doc.transact_mut();
        files.insert(&mut txn, path, yrs::TextPrelim::new(text));
        drop(txn);
        doc
    }

    fn text(doc: &Doc, path: &str) -> String {
        let files = doc.get_or_insert_map(mesh_protocol::doc::FILES);
        let txn = doc.transact();
        match files.get(&txn, path) {
            Some(yrs::Out::YText(t)) => t.get_string(&txn),
            _ => panic!("no {path}"),
        }
    }

    /// Brings `to` up to date with `from`, as the server relays updates.
    fn sync(from: &Doc, to: &Doc) {
        let sv = to.transact().state_vector();
        let update = from.transact().encode_state_as_update_v1(&sv);
        to.transact_mut()
            .apply_update(Update::decode_v1(&update).unwrap())
            .unwrap();
    }

    fn person_types(doc: &Doc, path: &str, at: u32, s: &str) {
        let files = doc.get_or_insert_map(mesh_protocol::doc::FILES);
        let mut txn = doc.transact_mut();
        let Some(yrs::Out::YText(t)) = files.get(&txn, path) else {
            panic!()
        };
        t.insert(&mut txn, at, s);
    }

    fn block(path: &str, search: &str, new: &[&str]) -> Vec<Edit> {
        let mut v = vec![Edit::Begin {
            path: path.into(),
            search: search.into(),
        }];
        v.extend(new.iter().map(|s| Edit::Text(s.to_string())));
        v.push(Edit::End);
        v
    }

    #[test]
    fn a_block_replaces_the_quoted_text_piece_by_piece_with_the_cursor_after_each() {
        let doc = room_with("a.py", "def f():\n    return 1\n\nf()\n");
        let mut t = Typist::new(&doc);
        t.start();
        let mut cursors = Vec::new();
        for e in block("a.py", "    return 1\n", &["    ret", "urn 2", "\n"]) {
            cursors.push(t.apply(e).unwrap());
        }
        assert!(t.finish());
        assert_eq!(text(&doc, "a.py"), "def f():\n    return 2\n\nf()\n");
        let offsets: Vec<u32> = cursors.iter().map(|c| c.as_ref().unwrap().1).collect();
        assert_eq!(offsets, vec![9, 16, 21, 22, 22]);
    }

    #[test]
    fn a_person_typing_where_the_ghost_types_keeps_every_character() {
        let doc = room_with("a.py", "def f():\n    return 1\n\nf()\n");
        let person = mesh_protocol::doc::new_doc();
        sync(&doc, &person);
        let mut t = Typist::new(&doc);
        t.start();
        t.apply(Edit::Begin {
            path: "a.py".into(),
            search: "    return 1\n".into(),
        })
        .unwrap();
        t.apply(Edit::Text("    return ".into())).unwrap();
        // At the same time the person types right at the ghost's cursor, before the function
        // and at the end; neither side has seen the other's latest edit.
        person_types(&person, "a.py", 13, "<M1>");
        person_types(&person, "a.py", 0, "<M2>");
        sync(&doc, &person);
        sync(&person, &doc);
        t.apply(Edit::Text("2\n".into())).unwrap();
        let len = text(&doc, "a.py").encode_utf16().count() as u32;
        person_types(&doc, "a.py", len, "<M3>");
        t.apply(Edit::End).unwrap();
        t.finish();
        sync(&doc, &person);
        sync(&person, &doc);
        let got = text(&doc, "a.py");
        assert_eq!(got, text(&person, "a.py"));
        for m in ["<M1>", "<M2>", "<M3>"] {
            assert_eq!(got.matches(m).count(), 1, "{m} in {got:?}");
        }
        let clean = got.replace("<M1>", "").replace("<M2>", "").replace("<M3>", "");
        assert_eq!(clean, "def f():\n    return 2\n\nf()\n");
    }

    #[test]
    fn one_undo_removes_the_whole_change_and_keeps_others_text() {
        let doc = room_with("a.py", "x = 1\nz = 3\ny = 2\n");
        let mut t = Typist::new(&doc);
        t.start();
        for e in block("a.py", "x = 1\n", &["x", " = ", "10", "\n"])
            .into_iter()
            .chain(block("a.py", "y = 2\n", &["y = 20\n"]))
        {
            t.apply(e).unwrap();
        }
        // Someone edits the line between the two blocks while the ghost works.
        person_types(&doc, "a.py", 11, "<M>");
        assert!(t.finish());
        assert_eq!(text(&doc, "a.py"), "x = 10\nz = <M>3\ny = 20\n");
        assert!(t.undo());
        assert_eq!(text(&doc, "a.py"), "x = 1\nz = <M>3\ny = 2\n");
        assert!(!t.undo(), "the person's text is not the ghost's to undo");
    }

    #[test]
    fn two_requests_are_two_undo_steps() {
        let doc = room_with("a.py", "a\n");
        let mut t = Typist::new(&doc);
        for (search, new) in [("a\n", "b\n"), ("b\n", "c\n")] {
            t.start();
            for e in block("a.py", search, &[new]) {
                t.apply(e).unwrap();
            }
            t.finish();
        }
        assert_eq!(text(&doc, "a.py"), "c\n");
        t.undo();
        assert_eq!(text(&doc, "a.py"), "b\n");
        t.undo();
        assert_eq!(text(&doc, "a.py"), "a\n");
    }

    #[test]
    fn a_discarded_request_leaves_nothing_behind() {
        let doc = room_with("a.py", "keep\nold\n");
        let before = doc.transact().state_vector();
        let mut t = Typist::new(&doc);
        t.start();
        t.apply(Edit::Begin {
            path: "a.py".into(),
            search: "old\n".into(),
        })
        .unwrap();
        t.apply(Edit::Text("ne".into())).unwrap();
        t.discard();
        assert_eq!(text(&doc, "a.py"), "keep\nold\n");
        assert_ne!(doc.transact().state_vector(), before);
    }

    #[test]
    fn a_missing_file_or_quote_is_an_error_that_changes_nothing() {
        let doc = room_with("a.py", "x\n");
        let mut t = Typist::new(&doc);
        t.start();
        let no_file = t.apply(Edit::Begin {
            path: "b.py".into(),
            search: "x".into(),
        });
        assert_eq!(no_file, Err(TypeError::NoFile("b.py".into())));
        let not_there = t.apply(Edit::Begin {
            path: "a.py".into(),
            search: "y".into(),
        });
        assert_eq!(not_there, Err(TypeError::NotFound("a.py".into())));
        assert!(!t.finish());
        assert_eq!(text(&doc, "a.py"), "x\n");
    }

    fn exists(doc: &Doc, path: &str) -> bool {
        let files = doc.get_or_insert_map(mesh_protocol::doc::FILES);
        let txn = doc.transact();
        files.get(&txn, path).is_some()
    }

    #[test]
    fn an_empty_quote_on_a_new_path_creates_the_file_and_one_undo_removes_it() {
        let doc = room_with("a.py", "x = 1\n");
        let mut t = Typist::new(&doc);
        t.start();
        for e in block("a.py", "x = 1\n", &["x = 2\n"]).into_iter().chain(block(
            "tests/test_a.py",
            "",
            &["import a\n", "assert a.x == 2\n"],
        )) {
            t.apply(e).unwrap();
        }
        assert!(t.finish());
        assert_eq!(text(&doc, "tests/test_a.py"), "import a\nassert a.x == 2\n");
        let other = mesh_protocol::doc::new_doc();
        sync(&doc, &other);
        assert_eq!(text(&other, "tests/test_a.py"), "import a\nassert a.x == 2\n");
        assert!(t.undo());
        assert!(!exists(&doc, "tests/test_a.py"), "the created file goes with the undo");
        assert_eq!(text(&doc, "a.py"), "x = 1\n");
        sync(&doc, &other);
        assert!(!exists(&other, "tests/test_a.py"));
    }

    #[test]
    fn new_files_are_checked_bounded_and_removed_when_the_request_fails() {
        let doc = room_with("a.py", "x\n");
        let mut t = Typist::new(&doc);
        t.start();
        for bad in ["../etc/passwd", "/abs.py", ".git/config", "a//b"] {
            let e = t.apply(Edit::Begin {
                path: bad.into(),
                search: String::new(),
            });
            assert!(matches!(e, Err(TypeError::BadPath(..))), "{bad}: {e:?}");
        }
        assert!(matches!(
            t.apply(Edit::Begin {
                path: "new.py".into(),
                search: "quoted".into()
            }),
            Err(TypeError::NoFile(_))
        ));
        for i in 0..MAX_CREATED_FILES {
            t.apply(Edit::Begin {
                path: format!("n{i}.py"),
                search: String::new(),
            })
            .unwrap();
        }
        assert_eq!(
            t.apply(Edit::Begin {
                path: "one-more.py".into(),
                search: String::new()
            }),
            Err(TypeError::TooMuchNew)
        );
        t.discard();
        assert!(
            !exists(&doc, "n0.py") && !exists(&doc, "n15.py"),
            "a failed request leaves no file"
        );

        t.start();
        t.apply(Edit::Begin {
            path: "big.py".into(),
            search: String::new(),
        })
        .unwrap();
        let piece = "y".repeat(64 * 1024);
        let mut result = Ok(None);
        for _ in 0..5 {
            result = t.apply(Edit::Text(piece.clone()));
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(TypeError::TooMuchNew));
        t.discard();
        assert!(!exists(&doc, "big.py"));
        assert_eq!(text(&doc, "a.py"), "x\n");
    }
}
