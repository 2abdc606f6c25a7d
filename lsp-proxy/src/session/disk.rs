//! Disk sync: the files of the shared folder that no editor has open, kept in step with the
//! room. Two halves: [`DiskSync`], sans-IO, decides from what the folder holds (passed in as
//! [`OnDisk`]) and what the room holds, and returns [`Effect`]s; the functions below it are
//! the session's only filesystem and watcher code, which the loop calls to read the folder
//! and to carry out those effects.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ignore::gitignore::Gitignore;
use tokio::sync::mpsc;

use super::replica::View;
use super::{conflict, tell, Effect, Event, RoomRead, Session};
use crate::merge;
use crate::sync::{ChangeKind, DocSync};
use crate::text::Encoding;
use crate::workspace::{self, UnsafePath};

/// How long a folder that just appeared is scanned again. The watcher starts watching a new
/// folder only after it has reported it, so files written into it in between report nothing;
/// the folder is read again after 250 ms, 500 ms, 1 s and 2 s (a busy machine can delay the
/// watch that long), and a file found then is shared like any other.
const NEW_FOLDER_RESCAN: Duration = Duration::from_secs(2);

/// The first wait before a new folder is read again; each later wait doubles.
const NEW_FOLDER_FIRST_RESCAN: Duration = Duration::from_millis(250);

/// A file of the shared folder, as the loop found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum OnDisk {
    /// Not there (or unreadable).
    Missing,
    /// Larger than a room file may be; never read.
    TooLarge,
    /// Its content.
    Bytes(Vec<u8>),
}

impl OnDisk {
    /// The content as text, when it is text.
    fn text(&self) -> Option<&str> {
        match self {
            OnDisk::Bytes(b) if workspace::is_text(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }
}

/// A file of the room as the folder meets it at start: the room's text, what the folder
/// holds, and the last text both agreed on (kept under `.mesh/`).
#[derive(Debug, Clone)]
pub(super) struct Found {
    pub(super) path: String,
    pub(super) room: String,
    pub(super) on_disk: OnDisk,
    pub(super) base: Option<String>,
}

/// What disk sync knows: per file, the text last read or written there.
#[derive(Debug, Default)]
pub(super) struct DiskSync {
    /// Files of the shared folder that no editor has open. The "editor" of each is the disk:
    /// its shadow is the content last read or written.
    files: HashMap<String, DocSync>,
    /// Paths whose local text and the room's could not be merged: the local file is left
    /// alone and never synced until the user resolves the conflict.
    conflicts: HashSet<String>,
    /// Per conflict, the room's version when it arose (kept beside the file too): the base of
    /// the merge that resolves it.
    snapshots: HashMap<String, String>,
    /// The folder's `.gitignore`: ignored files never enter the room from disk.
    ignore: Option<Gitignore>,
    /// Whether disk sync runs (after the first sync of a shared or joined folder).
    running: bool,
    /// Disk paths reported by the watcher, handled once per turn.
    pending: BTreeSet<PathBuf>,
    /// Room paths whose file changed here since it was last synced while the room changed it
    /// too: the local change goes to the room first (re-based), never overwritten.
    recheck: BTreeSet<String>,
    /// Folders that appeared lately: when each did, and when it is read again next.
    new_folders: HashMap<PathBuf, (Instant, Instant)>,
    /// New folders due to be read again this turn (not reports: they do not start over).
    folder_rescans: Vec<PathBuf>,
}

impl DiskSync {
    /// Whether disk sync runs.
    pub(super) fn running(&self) -> bool {
        self.running
    }

    /// Starts disk sync (after the first sync of a share, a join or a rejoin): every file of
    /// the room that no editor has open is merged with the folder by [`DiskSync::settle`],
    /// with the last agreed text kept under `.mesh/` as the base.
    pub(super) fn start(
        &mut self,
        ignore: Gitignore,
        files: Vec<Found>,
        is_open: impl Fn(&str) -> bool,
        writable: bool,
    ) -> Vec<Effect> {
        self.running = true;
        self.ignore = Some(ignore);
        let mut fx = Vec::new();
        for f in files {
            if is_open(&f.path) || self.conflicts.contains(&f.path) {
                continue;
            }
            fx.extend(self.settle(&f.path, Some(&f.room), &f.on_disk, f.base.as_deref(), writable));
        }
        fx
    }

    /// The one merge rule for a file no editor has open, when the folder and the room meet
    /// (start, a resolved conflict): `base` is the last text both agreed on.
    /// - Missing here: the room's text is written; but when the room still holds the base,
    ///   the file was deleted here while no proxy ran, and the deletion travels.
    /// - Text here: a three-way merge. Local text the room has not seen becomes room
    ///   operations, the room's changes are written here, and the file is synced from then on.
    /// - Both changed the same lines, no base and a different text, a binary or oversized
    ///   file, or a reader with local changes: a conflict. The local file stays as it is.
    /// - Gone from the room (`room` is `None`): the local text creates it again.
    pub(super) fn settle(
        &mut self,
        path: &str,
        room: Option<&str>,
        on_disk: &OnDisk,
        base: Option<&str>,
        writable: bool,
    ) -> Vec<Effect> {
        let Some(room) = room else {
            return match on_disk.text() {
                Some(text) if writable => {
                    self.files.insert(path.to_string(), DocSync::new(0, text));
                    vec![
                        Effect::Resolved { path: path.into() },
                        Effect::Create {
                            path: path.into(),
                            text: text.into(),
                        },
                    ]
                }
                _ => Vec::new(),
            };
        };
        let local = match on_disk {
            OnDisk::Missing if writable && base == Some(room) => {
                tracing::info!(%path, "deleted here while no proxy ran; removed from the room");
                return vec![Effect::Remove { path: path.into() }];
            }
            OnDisk::Missing => {
                self.files.insert(path.to_string(), DocSync::new(0, ""));
                return vec![Effect::WriteFile {
                    path: path.into(),
                    text: room.into(),
                }];
            }
            d => d.text(),
        };
        let merged = local
            .and_then(|local| merge::merge3(base, local, room))
            .filter(|m| m == room || writable);
        let (Some(local), Some(merged)) = (local, merged) else {
            return conflict(path, room.to_string());
        };
        let mut fx = vec![Effect::Resolved { path: path.into() }];
        self.files.insert(path.to_string(), DocSync::new(0, local));
        if merged != room {
            tracing::info!(%path, "merged local text the room had not seen into the room");
            fx.push(Effect::Edit {
                path: path.into(),
                ops: merge::ops_between(room, &merged),
            });
        }
        if merged != local {
            fx.push(Effect::WriteFile {
                path: path.into(),
                text: merged,
            });
        } else if base != Some(merged.as_str()) {
            fx.push(Effect::Agreed {
                path: path.into(),
                text: merged,
            });
        }
        fx
    }

    /// Stops disk sync and forgets everything (leaving the room).
    pub(super) fn stop(&mut self) {
        *self = Self::default();
    }

    /// `path` is in conflict; `room` is the room's version now. It stays out of sync.
    pub(super) fn conflicted(&mut self, path: &str, room: String) {
        self.files.remove(path);
        self.conflicts.insert(path.to_string());
        self.snapshots.insert(path.to_string(), room);
    }

    /// The conflict of `path` is being resolved: it leaves the conflicts, and the room's
    /// version at the time (the base of the merge that follows) is returned.
    pub(super) fn resolved(&mut self, path: &str) -> Option<String> {
        self.conflicts.remove(path);
        self.snapshots.remove(path)
    }

    /// The paths in conflict, sorted.
    pub(super) fn conflict_paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = self.conflicts.iter().cloned().collect();
        paths.sort();
        paths
    }

    /// The text last read or written at `path`, when disk sync follows it.
    pub(super) fn baseline(&self, path: &str) -> Option<String> {
        self.files.get(path).map(|f| f.shadow().text())
    }

    /// An editor opened `path`: the editor owns it now, and the disk follows its saves.
    pub(super) fn opened(&mut self, path: &str) {
        self.files.remove(path);
    }

    /// The editor closed `path`: back to disk sync, with what is on disk now as the
    /// baseline. Returns whether the room's text (which holds every edit made in the
    /// editor) should be written over it on the next turn.
    pub(super) fn closed(&mut self, path: &str, on_disk: Option<String>) -> bool {
        if !self.running {
            return false;
        }
        self.files
            .insert(path.to_string(), DocSync::new(0, &on_disk.unwrap_or_default()));
        true
    }

    /// Whether `path` is a conflict of the join, left alone.
    pub(super) fn is_conflict(&self, path: &str) -> bool {
        self.conflicts.contains(path)
    }

    /// The files disk sync has synced under folder `dir` (a room path), sorted.
    pub(super) fn synced_under(&self, dir: &str) -> Vec<String> {
        let prefix = format!("{dir}/");
        let mut paths: Vec<String> = self.files.keys().filter(|p| p.starts_with(&prefix)).cloned().collect();
        paths.sort();
        paths
    }

    /// The watcher saw these paths change; they are handled once per turn.
    pub(super) fn watched(&mut self, paths: Vec<PathBuf>) {
        self.pending.extend(paths);
    }

    /// A folder appeared at `abs` (a watcher report that is a folder) at `now`: it is read
    /// again a few times (see [`NEW_FOLDER_RESCAN`]).
    pub(super) fn folder_appeared(&mut self, abs: PathBuf, now: Instant) {
        self.new_folders
            .entry(abs)
            .or_insert((now, now + NEW_FOLDER_FIRST_RESCAN));
    }

    /// The new folders due to be read again at `now` are read this turn.
    pub(super) fn rescan_new_folders(&mut self, now: Instant) {
        let mut due = Vec::new();
        self.new_folders.retain(|dir, (seen, next)| {
            if now < *next {
                return true;
            }
            due.push(dir.clone());
            *next = now + (now - *seen).max(NEW_FOLDER_FIRST_RESCAN);
            now - *seen < NEW_FOLDER_RESCAN
        });
        self.folder_rescans.extend(due);
    }

    /// The new folders to read again this turn.
    pub(super) fn take_folder_rescans(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.folder_rescans)
    }

    /// The paths the watcher reported since the last turn.
    pub(super) fn take_watched(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.pending).into_iter().collect()
    }

    /// Room paths whose local change must be read and sent before the room's is written.
    pub(super) fn take_rechecks(&mut self) -> Vec<String> {
        std::mem::take(&mut self.recheck).into_iter().collect()
    }

    /// The room changed `path` (its text is `room_text`, `None` when it was deleted there);
    /// the folder holds `on_disk`. A changed file is written, a deleted one removed unless it
    /// changed here since.
    pub(super) fn room_changed(&mut self, path: &str, room_text: Option<&str>, on_disk: &OnDisk) -> Vec<Effect> {
        if self.conflicts.contains(path) {
            // Out of sync until the user resolves it; the local file is theirs meanwhile. The
            // copy of the room's version follows the room (a file often arrives empty first,
            // then filled), so what the user takes from it, and resolves against, is current.
            return match room_text {
                Some(text) => vec![Effect::Conflict {
                    path: path.to_string(),
                    room: text.to_string(),
                }],
                None => Vec::new(),
            };
        }
        match room_text {
            Some(text) => {
                let Some(entry) = self.files.get(path) else {
                    // New in the room. A local file of that name is never overwritten: the same
                    // text becomes the baseline, another text is a conflict left alone.
                    return match on_disk {
                        OnDisk::Missing => {
                            self.files.insert(path.to_string(), DocSync::new(0, ""));
                            vec![Effect::WriteFile {
                                path: path.to_string(),
                                text: text.to_string(),
                            }]
                        }
                        d if d.text() == Some(text) => {
                            self.files.insert(path.to_string(), DocSync::new(0, text));
                            Vec::new()
                        }
                        // No base: a conflict, kept beside it and reported.
                        _ => conflict(path, text.to_string()),
                    };
                };
                if *on_disk != OnDisk::Missing && on_disk.text().is_none_or(|t| !entry.shadow().eq_str(t)) {
                    // Changed here since it was last synced: send that first (the re-based
                    // local change), then the room's merged text comes back to be written.
                    self.recheck.insert(path.to_string());
                    return Vec::new();
                }
                if entry.shadow().eq_str(text) && *on_disk != OnDisk::Missing {
                    return Vec::new();
                }
                vec![Effect::WriteFile {
                    path: path.to_string(),
                    text: text.to_string(),
                }]
            }
            None => {
                // Deleted in the room: delete here too, unless it changed locally since.
                let Some(entry) = self.files.remove(path) else {
                    return Vec::new();
                };
                match on_disk {
                    OnDisk::Missing => Vec::new(),
                    d if d.text().is_some_and(|t| entry.shadow().eq_str(t)) => {
                        vec![Effect::DeleteFile { path: path.to_string() }]
                    }
                    d => {
                        // Changed here since it was last synced, so whoever deleted it never
                        // saw that text: the local edit wins over the delete (it is put back),
                        // and the user hears why the file is back, or why it is kept.
                        tracing::warn!(%path, "deleted in the room but changed here; kept");
                        match d.text() {
                            Some(text) => {
                                self.files.insert(path.to_string(), DocSync::new(0, text));
                                vec![
                                    Effect::Create {
                                        path: path.to_string(),
                                        text: text.to_string(),
                                    },
                                    tell(
                                        "warning",
                                        format!(
                                            "{path} was deleted in the room while you changed it here: your version is kept and shared again (delete it here too if it should go)"
                                        ),
                                    ),
                                ]
                            }
                            None => vec![tell(
                                "warning",
                                format!("{path} was deleted in the room while it changed here: your copy is kept, outside the room"),
                            )],
                        }
                    }
                }
            }
        }
    }

    /// `text` was written at `path`: it is the new baseline.
    pub(super) fn wrote(&mut self, path: &str, text: &str) {
        if let Some(entry) = self.files.get_mut(path) {
            entry.reset(entry.version + 1, text);
        }
    }

    /// The file at room path `path` (`abs` on disk) changed on disk and now holds `on_disk`.
    /// Its change goes into the room as operations; a new text file is added, a deleted one
    /// removed. Files open in an editor, conflicts, ignored files, our own temp files and a
    /// reader's changes stay out.
    pub(super) fn local_changed(
        &mut self,
        path: &str,
        abs: &Path,
        on_disk: OnDisk,
        room_text: Option<&str>,
        writable: bool,
        open: bool,
    ) -> Vec<Effect> {
        if path.ends_with(".mesh-tmp") || open || self.conflicts.contains(path) || !writable {
            return Vec::new();
        }
        if self
            .ignore
            .as_ref()
            .is_some_and(|g| g.matched_path_or_any_parents(abs, false).is_ignore())
        {
            return Vec::new();
        }
        let text = match on_disk {
            OnDisk::TooLarge => {
                return self.no_longer_text(path, "larger than a room file may be", room_text.is_some())
            }
            OnDisk::Missing => {
                // Deleted (or renamed away) on disk.
                if self.files.remove(path).is_none() {
                    return Vec::new();
                }
                tracing::info!(%path, "deleted on disk; removed from the room");
                return vec![Effect::Remove { path: path.to_string() }];
            }
            OnDisk::Bytes(bytes) if workspace::is_text(&bytes) => String::from_utf8(bytes).expect("checked by is_text"),
            // Text cut inside a character: read while being written; the next event has it all.
            OnDisk::Bytes(bytes) if workspace::is_cut_text(&bytes) => return Vec::new(),
            OnDisk::Bytes(_) => return self.no_longer_text(path, "its content is binary now", room_text.is_some()),
        };
        match (self.files.get_mut(path), room_text) {
            (Some(entry), Some(room_text)) => {
                if entry.shadow().eq_str(&text) {
                    return Vec::new(); // Our own write, or no change.
                }
                let base: Vec<char> = entry.shadow().text().chars().collect();
                let new: Vec<char> = text.chars().collect();
                let changes = crate::sync::diff_changes(entry.shadow(), &base, &new);
                let version = entry.version + 1;
                match entry.editor_changed(version, changes, Encoding::Utf16, room_text) {
                    ChangeKind::Local(ops) => vec![Effect::Edit {
                        path: path.to_string(),
                        ops,
                    }],
                    _ => Vec::new(),
                }
            }
            (None, None) => {
                self.files.insert(path.to_string(), DocSync::new(0, &text));
                tracing::info!(%path, "created on disk; added to the room");
                vec![Effect::Create {
                    path: path.to_string(),
                    text,
                }]
            }
            (None, Some(room_text)) => {
                if room_text == text {
                    self.files.insert(path.to_string(), DocSync::new(0, &text));
                }
                Vec::new()
            }
            // Deleted in the room meanwhile: the room's deletion wins on the next turn.
            (Some(_), None) => Vec::new(),
        }
    }
}

impl DiskSync {
    /// A synced file that is no longer text here (a binary copied over it, a download or a
    /// build output that was empty when first seen, a file grown past the size limit). A room
    /// file is text, so it leaves the room: the other sides delete their unchanged copies,
    /// and nothing of the room is ever written over it here. The user is told, since their
    /// collaborators lose the file. A file never synced stays out, as binaries always do.
    fn no_longer_text(&mut self, path: &str, why: &str, in_room: bool) -> Vec<Effect> {
        if self.files.remove(path).is_none() || !in_room {
            return Vec::new();
        }
        tracing::warn!(%path, why, "no longer text; removed from the room");
        vec![
            Effect::Remove { path: path.to_string() },
            tell(
                "warning",
                format!(
                    "{path} is no longer a text file ({why}), so it left the room: the others' \
                     unchanged copies are deleted, yours is kept as it is. mesh shares text files only."
                ),
            ),
        ]
    }
}

// ----- the folder: the session's only filesystem and watcher code ---------------------------

/// What the folder holds at room path `path`; an unsafe room path is refused.
pub(super) fn read(root: &Path, path: &str) -> Result<OnDisk, UnsafePath> {
    Ok(read_abs(&workspace::safe_join(root, path)?))
}

/// What the folder holds at `abs`.
pub(super) fn read_abs(abs: &Path) -> OnDisk {
    match std::fs::metadata(abs) {
        Ok(m) if m.len() > workspace::MAX_FILE_BYTES => OnDisk::TooLarge,
        Ok(_) => std::fs::read(abs).map(OnDisk::Bytes).unwrap_or(OnDisk::Missing),
        Err(_) => OnDisk::Missing,
    }
}

/// The text at room path `path`, when it is there and readable as text.
pub(super) fn read_text(root: &Path, path: &str) -> Option<String> {
    workspace::safe_join(root, path)
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
}

/// Writes `text` at room path `path` (atomically). The last check before every write from
/// the room: a file that is not text here (binary, or larger than a room file may be) is
/// never replaced, whatever decided to write it.
pub(super) fn write(root: &Path, path: &str, text: &str) -> std::io::Result<()> {
    let abs = workspace::safe_join(root, path).map_err(std::io::Error::other)?;
    match read_abs(&abs) {
        OnDisk::Missing => {}
        found if found.text().is_some() => {}
        _ => {
            return Err(std::io::Error::other(
                "the file here is not text (binary, or larger than a room file may be); not overwritten",
            ))
        }
    }
    workspace::write_file(&abs, text)
}

/// Deletes the file at room path `path`, and the folders its deletion leaves empty: a folder
/// deleted or renamed on another side leaves no empty shell here.
pub(super) fn remove(root: &Path, path: &str) -> std::io::Result<()> {
    let abs = workspace::safe_join(root, path).map_err(std::io::Error::other)?;
    std::fs::remove_file(&abs)?;
    let mut dir = abs.parent();
    while let Some(d) = dir.filter(|d| *d != root && d.starts_with(root)) {
        // Fails, and stops the climb, at the first folder that still holds something.
        if std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

/// The files a watcher path stands for: itself; every file under it when it is a folder;
/// and, when it is gone, every file `synced_under` names under it. A folder deleted or
/// renamed away is reported as its own path only, and its files cannot be listed any more.
pub(super) fn expand(
    root: &Path,
    abs: PathBuf,
    limits: &workspace::FolderLimits,
    synced_under: impl Fn(&str) -> Vec<String>,
) -> Vec<PathBuf> {
    if abs.is_dir() {
        return match workspace::scan(&abs, limits) {
            Ok((files, _)) => files.into_iter().map(|f| abs.join(f.path)).collect(),
            Err(e) => {
                tracing::warn!(dir = %abs.display(), error = %e, "a folder appeared whose files are not shared");
                Vec::new()
            }
        };
    }
    let gone = std::fs::symlink_metadata(&abs).is_err();
    let under = match workspace::rel_path(root, &abs) {
        Some(dir) if gone => synced_under(&dir),
        _ => Vec::new(),
    };
    std::iter::once(abs)
        .chain(under.into_iter().map(|p| root.join(p)))
        .collect()
}

/// The folder's `.gitignore`.
pub(super) fn load_ignore(root: &Path) -> Gitignore {
    Gitignore::new(root.join(".gitignore")).0
}

/// Scans the folder for sharing (see [`workspace::scan`]).
pub(super) fn scan(
    root: &Path,
    limits: &workspace::FolderLimits,
) -> Result<(Vec<workspace::LocalFile>, workspace::Skipped), workspace::ScanError> {
    workspace::scan(root, limits)
}

/// Watches the folder; changes come back as [`Event::Disk`]. `None` when the system
/// refuses (then changes on disk are not shared, and the log says so).
pub(super) fn watch(root: &Path, events: mpsc::UnboundedSender<Event>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            if matches!(ev.kind, notify::EventKind::Access(_)) {
                return;
            }
            let _ = events.send(Event::Disk(ev.paths));
        }
    });
    match watcher {
        Ok(mut w) => {
            if let Err(e) = w.watch(root, notify::RecursiveMode::Recursive) {
                tracing::warn!(error = %e, "cannot watch the folder; changes on disk will not be shared");
            }
            Some(w)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the folder; changes on disk will not be shared");
            None
        }
    }
}

/// The loop's disk turn: reads the folder, asks [`DiskSync`], carries out what it says.
impl Session {
    /// Starts disk sync after the first sync of a shared, joined or rejoined folder: merges
    /// every file of the room with the folder, then watches the folder.
    pub(super) fn start_disk_sync(&mut self) {
        let (Some(root), Some(room)) = (self.root.clone(), self.room.as_ref()) else {
            return;
        };
        if self.disk.running() {
            return;
        }
        let id = room.target.room.to_string();
        let files = super::room_files(&room.doc)
            .into_iter()
            .filter_map(|(path, text)| match read(&root, &path) {
                Ok(on_disk) => Some(Found {
                    base: crate::mesh_dir::read_base(&root, &id, &path),
                    path,
                    room: text,
                    on_disk,
                }),
                Err(_) => {
                    tracing::warn!(%path, "skipped a file with an unsafe path");
                    None
                }
            })
            .collect();
        let writable = self.view().writable();
        let docs = &self.docs;
        let fx = self
            .disk
            .start(load_ignore(&root), files, |p| docs.is_open(p), writable);
        self.apply(fx);
        self.watcher = watch(&root, self.events_tx.clone());
    }

    /// One turn of disk sync: remote changes to disk, then disk changes to the room.
    pub(super) fn sync_disk(&mut self, dirty: &HashSet<String>) {
        if !self.disk.running() {
            return;
        }
        let Some(root) = self.root.clone() else { return };
        let mut dirty: Vec<&String> = dirty.iter().collect();
        dirty.sort();
        for path in dirty {
            // A path in conflict goes on: its copy of the room's version follows the room.
            if self.docs.is_open(path) {
                continue;
            }
            let Ok(on_disk) = read(&root, path) else {
                tracing::warn!(%path, "the room has a file with an unsafe path; not written");
                continue;
            };
            let room_text = self.view().text(path);
            let fx = self.disk.room_changed(path, room_text.as_deref(), &on_disk);
            self.apply(fx);
        }
        let rechecks = self.disk.take_rechecks().into_iter().map(|p| root.join(p));
        let reported = self.disk.take_watched();
        let now = Instant::now();
        // The folder itself is watched from the start; only folders inside it can be new.
        for abs in reported.iter().filter(|p| **p != root && p.is_dir()) {
            self.disk.folder_appeared(abs.clone(), now);
        }
        let reported = reported.into_iter().chain(self.disk.take_folder_rescans());
        let disk = &self.disk;
        let watched: Vec<PathBuf> = reported
            .flat_map(|abs| expand(&root, abs, &self.identity.limits, |dir| disk.synced_under(dir)))
            .chain(rechecks)
            .collect();
        for abs in watched {
            let Some(path) = crate::workspace::rel_path(&root, &abs) else {
                continue;
            };
            let view = View(self.room.as_ref());
            if self.room.is_none() {
                continue;
            }
            let fx = self.disk.local_changed(
                &path,
                &abs,
                read_abs(&abs),
                view.text(&path).as_deref(),
                view.writable(),
                self.docs.is_open(&path),
            );
            self.apply(fx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &str) -> OnDisk {
        OnDisk::Bytes(s.as_bytes().to_vec())
    }

    fn found(path: &str, room: &str, on_disk: OnDisk, base: Option<&str>) -> Found {
        Found {
            path: path.into(),
            room: room.into(),
            on_disk,
            base: base.map(String::from),
        }
    }

    /// Disk sync started over room files `(path, room text, disk text)` with no bases; the
    /// effects of the start are returned with it.
    fn started(files: &[(&str, &str, Option<&str>)]) -> (DiskSync, Vec<Effect>) {
        let mut disk = DiskSync::default();
        let files = files
            .iter()
            .map(|(p, r, d)| found(p, r, d.map(bytes).unwrap_or(OnDisk::Missing), None))
            .collect();
        let fx = disk.start(Gitignore::empty(), files, |_| false, true);
        carry_out(&mut disk, &fx);
        (disk, fx)
    }

    /// What the loop does with effects that concern disk sync itself.
    fn carry_out(disk: &mut DiskSync, fx: &[Effect]) {
        for e in fx {
            match e {
                Effect::Conflict { path, room } => disk.conflicted(path, room.clone()),
                Effect::WriteFile { path, text } => disk.wrote(path, text),
                _ => {}
            }
        }
    }

    /// Starts over one file with a base and returns the effects.
    fn start_one(room: &str, on_disk: OnDisk, base: Option<&str>, writable: bool) -> (DiskSync, Vec<Effect>) {
        let mut disk = DiskSync::default();
        let fx = disk.start(
            Gitignore::empty(),
            vec![found("a.txt", room, on_disk, base)],
            |_| false,
            writable,
        );
        carry_out(&mut disk, &fx);
        (disk, fx)
    }

    fn written(fx: &[Effect]) -> Option<&str> {
        fx.iter().find_map(|e| match e {
            Effect::WriteFile { text, .. } => Some(text.as_str()),
            _ => None,
        })
    }

    /// The room's text after the effects' room edits.
    fn room_after(room: &str, fx: &[Effect]) -> String {
        fx.iter().fold(room.to_string(), |text, e| match e {
            Effect::Edit { ops, .. } => crate::sync::apply_ops(&text, ops),
            _ => text,
        })
    }

    /// Whether the effects keep the room's version of `path` beside it and tell the user
    /// which file it is and how to resolve it.
    fn is_conflict_reported(fx: &[Effect], path: &str) -> bool {
        let kept = fx
            .iter()
            .any(|e| matches!(e, Effect::Conflict { path: p, .. } if p == path));
        let told = fx.iter().any(|e| match e {
            Effect::Editor(super::super::EditorOut::Notify("window/showMessage", v)) => {
                let m = v["message"].as_str().unwrap_or("");
                m.contains(path) && m.contains("mesh-proxy resolve") && m.contains(".mesh/conflicts/")
            }
            _ => false,
        });
        kept && told
    }

    fn local(disk: &mut DiskSync, path: &str, on_disk: OnDisk, room: Option<&str>) -> Vec<Effect> {
        disk.local_changed(path, Path::new("/w").join(path).as_path(), on_disk, room, true, false)
    }

    #[test]
    fn start_writes_what_is_missing_here_and_keeps_what_agrees_as_the_base() {
        let (disk, fx) = started(&[("same.txt", "s", Some("s")), ("new.txt", "n", None)]);
        assert!(disk.running());
        assert!(
            matches!(&fx[..], [
            Effect::Resolved { .. },
            Effect::Agreed { path: a, text: s },
            Effect::WriteFile { path: w, text: n },
        ] if a == "same.txt" && s == "s" && w == "new.txt" && n == "n"),
            "{fx:?}"
        );
    }

    #[test]
    fn start_without_a_base_never_overwrites_a_different_local_file() {
        let (mut disk, fx) = start_one("room\n", bytes("my local work\n"), None, true);
        assert!(
            written(&fx).is_none() && room_after("room\n", &fx) == "room\n",
            "{fx:?}"
        );
        assert!(is_conflict_reported(&fx, "a.txt"), "{fx:?}");
        assert_eq!(disk.conflict_paths(), ["a.txt"]);
        // A conflict stays out of disk sync both ways until resolved: nothing is written
        // over the local file nor sent; only the room's copy beside it follows the room.
        assert!(local(&mut disk, "a.txt", bytes("more local work\n"), Some("room\n")).is_empty());
        let fx = disk.room_changed("a.txt", Some("room 2\n"), &bytes("my local work\n"));
        assert!(
            written(&fx).is_none() && matches!(&fx[..], [Effect::Conflict { .. }]),
            "{fx:?}"
        );
    }

    #[test]
    fn start_sends_edits_made_here_while_no_proxy_ran_to_the_room() {
        let base = "one\ntwo\n";
        let (_, fx) = start_one(base, bytes("one\ntwo\noffline\n"), Some(base), true);
        assert_eq!(room_after(base, &fx), "one\ntwo\noffline\n");
        assert!(written(&fx).is_none(), "the local file is already right: {fx:?}");
    }

    #[test]
    fn start_writes_the_room_s_changes_over_a_file_unchanged_since_the_base() {
        let base = "one\ntwo\n";
        let (_, fx) = start_one("one\ntwo\nroom\n", bytes(base), Some(base), true);
        assert_eq!(written(&fx), Some("one\ntwo\nroom\n"));
        assert_eq!(room_after("one\ntwo\nroom\n", &fx), "one\ntwo\nroom\n");
    }

    #[test]
    fn start_merges_changes_to_different_lines_into_both_sides() {
        let base = "one\ntwo\nthree\nfour\n";
        let room = "one\ntwo\nthree\nFOUR\n";
        let (mut disk, fx) = start_one(room, bytes("ONE\ntwo\nthree\nfour\n"), Some(base), true);
        let merged = "ONE\ntwo\nthree\nFOUR\n";
        assert_eq!(room_after(room, &fx), merged);
        assert_eq!(written(&fx), Some(merged));
        // Synced from then on: the write is the baseline, its echo is not sent back.
        assert!(local(&mut disk, "a.txt", bytes(merged), Some(merged)).is_empty());
    }

    #[test]
    fn start_with_the_same_lines_changed_on_both_sides_keeps_the_local_text_and_reports_it() {
        let base = "one\ntwo\n";
        let (disk, fx) = start_one("one\nroom\n", bytes("one\nmine\n"), Some(base), true);
        assert!(is_conflict_reported(&fx, "a.txt"), "{fx:?}");
        assert!(written(&fx).is_none() && room_after("one\nroom\n", &fx) == "one\nroom\n");
        assert!(disk.is_conflict("a.txt"));
    }

    #[test]
    fn a_new_folder_is_read_again_after_250_ms_500_ms_1_s_and_2_s_then_left_to_the_watcher() {
        let mut disk = DiskSync::default();
        let t0 = Instant::now();
        let dir = PathBuf::from("/f/data");
        disk.folder_appeared(dir.clone(), t0);
        let ms = |n| t0 + Duration::from_millis(n);
        let mut read_at = Vec::new();
        for n in (0..3000).step_by(50) {
            disk.rescan_new_folders(ms(n));
            if !disk.take_folder_rescans().is_empty() {
                read_at.push(n);
            }
            assert!(disk.take_watched().is_empty(), "a rescan is not a report");
        }
        assert_eq!(read_at, [250, 500, 1000, 2000]);
    }

    #[test]
    fn a_file_deleted_here_while_no_proxy_ran_is_removed_from_the_room_unless_the_room_changed_it() {
        let (_, fx) = start_one("gone\n", OnDisk::Missing, Some("gone\n"), true);
        assert!(
            matches!(&fx[..], [Effect::Remove { path }] if path == "a.txt"),
            "{fx:?}"
        );
        let (_, fx) = start_one("gone, but edited in the room\n", OnDisk::Missing, Some("gone\n"), true);
        assert_eq!(written(&fx), Some("gone, but edited in the room\n"));
        let (_, fx) = start_one("gone\n", OnDisk::Missing, Some("gone\n"), false);
        assert!(
            written(&fx).is_some(),
            "a reader cannot delete: the room's copy comes back"
        );
    }

    #[test]
    fn a_binary_or_oversized_local_file_in_the_way_is_a_conflict() {
        let (_, fx) = start_one("text\n", OnDisk::Bytes(vec![0x89, 0, 1]), None, true);
        assert!(is_conflict_reported(&fx, "a.txt"), "{fx:?}");
        let (_, fx) = start_one("text\n", OnDisk::TooLarge, Some("text\n"), true);
        assert!(is_conflict_reported(&fx, "a.txt"), "{fx:?}");
    }

    #[test]
    fn a_reader_s_local_changes_are_a_conflict_never_an_overwrite() {
        let base = "one\n";
        let (_, fx) = start_one(base, bytes("one\nmine\n"), Some(base), false);
        assert!(is_conflict_reported(&fx, "a.txt"), "{fx:?}");
        // Changes from the room alone still reach a reader's folder.
        let (_, fx) = start_one("one\nroom\n", bytes(base), Some(base), false);
        assert_eq!(written(&fx), Some("one\nroom\n"));
    }

    #[test]
    fn a_resolved_conflict_shares_the_local_text_over_the_room_s_version_and_keeps_later_room_changes() {
        let (mut disk, _) = start_one("a\nroom\nz\n", bytes("a\nmine\nz\n"), Some("a\nb\nz\n"), true);
        let snapshot = disk.resolved("a.txt").expect("the room's version at the conflict");
        assert_eq!(snapshot, "a\nroom\nz\n");
        assert!(!disk.is_conflict("a.txt"));
        // The user merged by hand; meanwhile the room changed another line.
        let room = "a\nroom\nz\nlater\n";
        let fx = disk.settle("a.txt", Some(room), &bytes("a\nmine, room\nz\n"), Some(&snapshot), true);
        assert!(matches!(&fx[0], Effect::Resolved { path } if path == "a.txt"));
        assert_eq!(room_after(room, &fx), "a\nmine, room\nz\nlater\n");
        assert_eq!(written(&fx), Some("a\nmine, room\nz\nlater\n"));
        // Gone from the room meanwhile: the local text creates it again.
        let fx = disk.settle("b.txt", None, &bytes("kept\n"), Some("x"), true);
        assert!(fx
            .iter()
            .any(|e| matches!(e, Effect::Create { text, .. } if text == "kept\n")));
    }

    #[test]
    fn a_room_change_is_written_once_and_our_own_write_is_not_sent_back() {
        let (mut disk, _) = started(&[("a", "one", Some("one"))]);
        let fx = disk.room_changed("a", Some("two"), &bytes("one"));
        assert!(matches!(&fx[..], [Effect::WriteFile { path, text }] if path == "a" && text == "two"));
        disk.wrote("a", "two");
        assert!(disk.room_changed("a", Some("two"), &bytes("two")).is_empty());
        // The watcher reports our write: no room operation comes of it.
        assert!(local(&mut disk, "a", bytes("two"), Some("two")).is_empty());
    }

    #[test]
    fn a_new_room_file_never_overwrites_a_local_file_with_other_content() {
        let (mut disk, _) = started(&[]);
        let fx = disk.room_changed(".env", Some("SECRET=room"), &bytes("SECRET=mine"));
        assert!(
            is_conflict_reported(&fx, ".env"),
            "kept as a conflict and reported: {fx:?}"
        );
        carry_out(&mut disk, &fx);
        assert!(disk.is_conflict(".env"), "out of sync both ways");
        // The room's copy follows the room, quietly (a file often arrives empty, then filled).
        let fx = disk.room_changed(".env", Some("SECRET=room, later"), &bytes("SECRET=mine"));
        assert!(
            matches!(&fx[..], [Effect::Conflict { path, room }] if path == ".env" && room == "SECRET=room, later"),
            "{fx:?}"
        );
        assert!(disk.room_changed(".env", None, &bytes("SECRET=mine")).is_empty());
        assert!(
            disk.room_changed("same.txt", Some("s"), &bytes("s")).is_empty(),
            "same text: nothing to write"
        );
        assert!(!disk.is_conflict("same.txt"));
        let fx = disk.room_changed("fresh.txt", Some("f"), &OnDisk::Missing);
        assert!(matches!(&fx[..], [Effect::WriteFile { path, .. }] if path == "fresh.txt"));
    }

    #[test]
    fn a_room_change_never_overwrites_a_local_change_not_yet_synced() {
        let (mut disk, _) = started(&[("a", "one\n", Some("one\n"))]);
        // The file changed here (the watcher has not reported it yet) and in the room.
        assert!(disk
            .room_changed("a", Some("one\nroom\n"), &bytes("mine\none\n"))
            .is_empty());
        assert_eq!(disk.take_rechecks(), ["a"], "the local change is read and sent first");
        let fx = local(&mut disk, "a", bytes("mine\none\n"), Some("one\nroom\n"));
        assert!(matches!(&fx[..], [Effect::Edit { .. }]), "{fx:?}");
    }

    #[test]
    fn a_file_deleted_on_disk_is_rewritten_from_the_room() {
        let (mut disk, _) = started(&[("a", "one", Some("one"))]);
        let fx = disk.room_changed("a", Some("one"), &OnDisk::Missing);
        assert!(matches!(&fx[..], [Effect::WriteFile { .. }]));
    }

    #[test]
    fn a_file_deleted_in_the_room_is_deleted_here_unless_it_changed_here_then_it_is_put_back() {
        let (mut disk, _) = started(&[("a", "x", Some("x")), ("b", "y", Some("y"))]);
        let fx = disk.room_changed("a", None, &bytes("x"));
        assert!(matches!(&fx[..], [Effect::DeleteFile { path }] if path == "a"));
        // Changed here since: the local edit wins over the delete, and the user is told.
        let fx = disk.room_changed("b", None, &bytes("y, edited here"));
        assert!(
            matches!(&fx[0], Effect::Create { path, text } if path == "b" && text == "y, edited here"),
            "{fx:?}"
        );
        assert!(matches!(&fx[1], Effect::Editor(_)), "{fx:?}");
        // Forgotten either way: a second deletion does nothing.
        assert!(disk.room_changed("a", None, &bytes("x")).is_empty());
    }

    #[test]
    fn an_edit_on_disk_becomes_room_operations() {
        let (mut disk, _) = started(&[("a", "ab\n", Some("ab\n"))]);
        let fx = local(&mut disk, "a", bytes("aXb\n"), Some("ab\n"));
        assert!(matches!(&fx[..], [Effect::Edit { path, ops }]
            if path == "a" && crate::sync::apply_ops("ab\n", ops) == "aXb\n"));
    }

    #[test]
    fn an_edit_on_disk_is_rebased_over_what_the_room_changed_since() {
        let (mut disk, _) = started(&[("a", "ab\n", Some("ab\n"))]);
        // The room gained a line the disk has not been written with yet.
        let fx = local(&mut disk, "a", bytes("aXb\n"), Some("ab\nroom\n"));
        let [Effect::Edit { ops, .. }] = &fx[..] else {
            panic!("{fx:?}")
        };
        assert_eq!(crate::sync::apply_ops("ab\nroom\n", ops), "aXb\nroom\n");
    }

    #[test]
    fn a_new_text_file_on_disk_is_added_and_a_deleted_one_removed() {
        let (mut disk, _) = started(&[]);
        let fx = local(&mut disk, "new.txt", bytes("hi"), None);
        assert!(matches!(&fx[..], [Effect::Create { path, text }] if path == "new.txt" && text == "hi"));
        let fx = local(&mut disk, "new.txt", OnDisk::Missing, Some("hi"));
        assert!(matches!(&fx[..], [Effect::Remove { path }] if path == "new.txt"));
        // A file never synced is not removed from the room when missing here.
        assert!(local(&mut disk, "other.txt", OnDisk::Missing, Some("x")).is_empty());
    }

    #[test]
    fn binaries_large_files_temp_files_and_readers_stay_out_of_the_room() {
        let (mut disk, _) = started(&[]);
        assert!(local(&mut disk, "img.png", OnDisk::Bytes(vec![0x89, 0, 1]), None).is_empty());
        assert!(local(&mut disk, "big.txt", OnDisk::TooLarge, None).is_empty());
        assert!(local(&mut disk, ".a.txt.mesh-tmp", bytes("x"), None).is_empty());
        let abs = Path::new("/w/r.txt");
        assert!(disk
            .local_changed("r.txt", abs, bytes("x"), None, false, false)
            .is_empty());
        assert!(disk
            .local_changed("r.txt", abs, bytes("x"), None, true, true)
            .is_empty());
    }

    #[test]
    fn gitignored_files_stay_out_of_the_room() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".gitignore"), "*.log\n").unwrap();
        let mut disk = DiskSync::default();
        disk.start(load_ignore(dir.path()), Vec::new(), |_| false, true);
        let abs = dir.path().join("debug.log");
        assert!(disk
            .local_changed("debug.log", &abs, bytes("x"), None, true, false)
            .is_empty());
        let abs = dir.path().join("kept.txt");
        assert_eq!(
            disk.local_changed("kept.txt", &abs, bytes("x"), None, true, false)
                .len(),
            1
        );
    }

    #[test]
    fn a_file_whose_room_copy_differs_is_left_until_the_room_writes_it() {
        let (mut disk, _) = started(&[]);
        // Not tracked, different from the room: neither side is touched.
        assert!(local(&mut disk, "a", bytes("local"), Some("room")).is_empty());
        // The same text: tracked from now on.
        assert!(local(&mut disk, "a", bytes("room"), Some("room")).is_empty());
        let fx = local(&mut disk, "a", bytes("room!"), Some("room"));
        assert!(matches!(&fx[..], [Effect::Edit { .. }]));
    }

    #[test]
    fn closing_a_document_hands_it_back_to_disk_sync_with_the_disk_as_baseline() {
        let mut disk = DiskSync::default();
        assert!(!disk.closed("a", Some("x".into())), "not running: nothing to do");
        let (mut disk, _) = started(&[]);
        assert!(disk.closed("a", Some("disk".into())));
        let fx = disk.room_changed("a", Some("room"), &bytes("disk"));
        assert!(matches!(&fx[..], [Effect::WriteFile { text, .. }] if text == "room"));
    }

    fn told(fx: &[Effect]) -> Option<String> {
        fx.iter().find_map(|e| match e {
            Effect::Editor(crate::session::EditorOut::Notify(_, v)) => v["message"].as_str().map(String::from),
            _ => None,
        })
    }

    #[test]
    fn a_synced_file_that_becomes_binary_leaves_the_room_and_the_user_is_told() {
        let (mut disk, _) = started(&[("notes.txt", "notes", Some("notes"))]);
        let fx = local(
            &mut disk,
            "notes.txt",
            OnDisk::Bytes(vec![0x7f, b'E', b'L', b'F', 0, 1]),
            Some("notes"),
        );
        assert!(
            matches!(&fx[0], Effect::Remove { path } if path == "notes.txt"),
            "{fx:?}"
        );
        let message = told(&fx).expect("the user is told");
        assert!(message.contains("notes.txt is no longer a text file"), "{message}");
        // Forgotten: the room's later text at that path is a new file, which is never written
        // over the binary (a conflict, kept beside it).
        let binary = OnDisk::Bytes(vec![0, 1, 2]);
        let fx = disk.room_changed("notes.txt", Some("typed elsewhere"), &binary);
        assert!(!fx.iter().any(|e| matches!(e, Effect::WriteFile { .. })), "{fx:?}");
    }

    #[test]
    fn a_file_empty_when_first_seen_that_turns_binary_leaves_the_room() {
        let (mut disk, _) = started(&[]);
        let fx = local(&mut disk, "out.bin", bytes(""), None);
        assert!(matches!(&fx[..], [Effect::Create { text, .. }] if text.is_empty()));
        let fx = local(&mut disk, "out.bin", OnDisk::Bytes(vec![0x89, b'P', 0]), Some(""));
        assert!(matches!(&fx[0], Effect::Remove { path } if path == "out.bin"), "{fx:?}");
    }

    #[test]
    fn text_read_while_being_written_waits_for_the_rest() {
        let (mut disk, _) = started(&[("a.txt", "漢字", Some("漢字"))]);
        // Cut inside the second character's three bytes.
        let cut = "漢字".as_bytes()[..4].to_vec();
        assert!(local(&mut disk, "a.txt", OnDisk::Bytes(cut), Some("漢字")).is_empty());
        let fx = local(&mut disk, "a.txt", bytes("漢字!"), Some("漢字"));
        assert!(matches!(&fx[..], [Effect::Edit { .. }]), "still synced: {fx:?}");
    }

    #[test]
    fn a_file_grown_past_the_size_limit_leaves_the_room() {
        let (mut disk, _) = started(&[("log.txt", "x", Some("x"))]);
        let fx = local(&mut disk, "log.txt", OnDisk::TooLarge, Some("x"));
        assert!(matches!(&fx[0], Effect::Remove { .. }));
        assert!(told(&fx).is_some_and(|m| m.contains("larger than a room file may be")));
    }

    #[test]
    fn a_room_change_over_a_binary_here_is_never_written_and_sends_it_out_of_the_room() {
        let (mut disk, _) = started(&[("a.txt", "one", Some("one"))]);
        // Binary here, not yet reported by the watcher; the room changes the file meanwhile.
        let binary = OnDisk::Bytes(vec![0, 159, 146, 150]);
        assert!(disk.room_changed("a.txt", Some("one, two"), &binary).is_empty());
        assert_eq!(disk.take_rechecks(), ["a.txt"]);
        let fx = local(&mut disk, "a.txt", binary, Some("one, two"));
        assert!(matches!(&fx[0], Effect::Remove { .. }), "{fx:?}");
    }

    #[test]
    fn a_write_from_the_room_never_replaces_a_binary_file() {
        let dir = tempfile::tempdir().unwrap();
        let blob = vec![0u8, 1, 2, 255];
        std::fs::write(dir.path().join("a.bin"), &blob).unwrap();
        assert!(write(dir.path(), "a.bin", "text").is_err());
        assert_eq!(std::fs::read(dir.path().join("a.bin")).unwrap(), blob);
        // Text, or nothing, is written as usual.
        std::fs::write(dir.path().join("t.txt"), "old").unwrap();
        write(dir.path(), "t.txt", "new").unwrap();
        write(dir.path(), "sub/n.txt", "n").unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("t.txt")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(dir.path().join("sub/n.txt")).unwrap(), "n");
    }

    #[test]
    fn a_folder_gone_from_disk_stands_for_every_file_synced_under_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (disk, _) = started(&[
            ("lib/a.rs", "a", Some("a")),
            ("lib/deep/b.rs", "b", Some("b")),
            ("library.rs", "l", Some("l")),
            ("main.rs", "m", Some("m")),
        ]);
        let limits = workspace::FolderLimits::default();
        let found = expand(root, root.join("lib"), &limits, |d| disk.synced_under(d));
        assert_eq!(
            found,
            [root.join("lib"), root.join("lib/a.rs"), root.join("lib/deep/b.rs")],
            "the folder itself, then its synced files; never a sibling sharing its prefix"
        );
        // A folder that exists stands for the files in it now.
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        std::fs::write(root.join("src/deep/c.rs"), "c").unwrap();
        let found = expand(root, root.join("src"), &limits, |d| disk.synced_under(d));
        assert_eq!(found, [root.join("src/deep/c.rs")]);
        // A file that exists stands for itself.
        std::fs::write(root.join("main.rs"), "m").unwrap();
        assert_eq!(
            expand(root, root.join("main.rs"), &limits, |d| disk.synced_under(d)),
            [root.join("main.rs")]
        );
        // Each synced file then leaves the room as a deleted file does.
        let (mut disk, _) = started(&[("lib/a.rs", "a", Some("a"))]);
        let fx = local(&mut disk, "lib/a.rs", OnDisk::Missing, Some("a"));
        assert!(matches!(&fx[..], [Effect::Remove { path }] if path == "lib/a.rs"));
    }

    #[test]
    fn deleting_a_folders_last_file_removes_the_emptied_folders_and_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::write(root.join("a/keep.txt"), "k").unwrap();
        std::fs::write(root.join("a/b/c/x.txt"), "x").unwrap();
        remove(root, "a/b/c/x.txt").unwrap();
        assert!(!root.join("a/b").exists(), "emptied folders go");
        assert!(root.join("a/keep.txt").exists(), "a folder still holding a file stays");
        std::fs::write(root.join("top.txt"), "t").unwrap();
        remove(root, "top.txt").unwrap();
        assert!(root.exists(), "the shared folder itself is never removed");
    }
}
