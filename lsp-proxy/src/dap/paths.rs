//! Paths between the editor, the room and the debug container.
//!
//! The editor speaks of local absolute paths (`/home/ada/proj/src/app.py`), the room of
//! paths relative to the shared folder (`src/app.py`), and the debug adapter of paths in the
//! container (`/work/src/app.py`, or `/work/main.py` for the entry file, which the container
//! runs under the language's main file name). [`Folder`] maps local ↔ room, [`PathMap`] adds
//! room ↔ container, and [`PathMap::to_container`]/[`PathMap::to_local`] rewrite every
//! `Source` of a DAP message. A path outside the shared folder (or outside the container's
//! work dir) is left as it is.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::workspace::rel_path;

/// The shared folder on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    root: PathBuf,
}

impl Folder {
    /// The shared folder at `root` (an absolute path).
    pub fn new(root: PathBuf) -> Folder {
        Folder { root }
    }

    /// The folder's path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The room path of a local file, when it is inside the shared folder. A relative path
    /// is taken relative to the folder.
    pub fn room_path(&self, local: &str) -> Option<String> {
        let path = self.root.join(local);
        rel_path(&self.root, &normalise(&path)).or_else(|| {
            // The editor may name the folder through a symbolic link.
            let real = path.canonicalize().ok()?;
            rel_path(&self.root.canonicalize().ok()?, &real)
        })
    }

    /// The local path of a room path; `None` for paths that could leave the folder.
    pub fn local_path(&self, room: &str) -> Option<String> {
        let safe = !room.is_empty() && room.split('/').all(|s| !matches!(s, "" | "." | ".."));
        safe.then(|| self.root.join(room).to_string_lossy().into_owned())
    }
}

/// Resolves `.` and `..` without touching the disk.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The full mapping of one attached debug session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMap {
    folder: Folder,
    /// The program's work dir in the container, without a trailing `/`.
    work_dir: String,
    /// Container path → room path, for files the container holds under another name.
    aliases: BTreeMap<String, String>,
}

impl PathMap {
    /// The mapping for a session whose files are under `work_dir` in the container.
    pub fn new(folder: Folder, work_dir: &str, aliases: BTreeMap<String, String>) -> PathMap {
        PathMap {
            folder,
            work_dir: work_dir.trim_end_matches('/').to_string(),
            aliases,
        }
    }

    /// The shared folder.
    pub fn folder(&self) -> &Folder {
        &self.folder
    }

    /// The container path of a local path in the shared folder.
    pub fn container_path(&self, local: &str) -> Option<String> {
        let room = self.folder.room_path(local)?;
        let alias = self.aliases.iter().find(|(_, target)| **target == room);
        Some(match alias {
            Some((container, _)) => container.clone(),
            None => format!("{}/{room}", self.work_dir),
        })
    }

    /// The local path of a container path under the work dir.
    pub fn local_path(&self, container: &str) -> Option<String> {
        let room = match self.aliases.get(container) {
            Some(room) => room.as_str(),
            None => container.strip_prefix(&self.work_dir)?.strip_prefix('/')?,
        };
        self.folder.local_path(room)
    }

    /// Rewrites the `Source` paths of a message from the editor for the container.
    pub fn to_container(&self, msg: &mut Value) {
        map_sources(msg, &|p| self.container_path(p));
    }

    /// Rewrites the `Source` paths of a message from the container for the editor, and the
    /// other names it shows as paths: the debugged process's name (`process` event) and
    /// modules' paths (`module` event, `modules` response).
    pub fn to_local(&self, msg: &mut Value) {
        let map = |p: &str| self.local_path(p);
        map_sources(msg, &map);
        let kind = msg.get("type").and_then(Value::as_str);
        let name = match kind {
            Some("event") => msg.get("event"),
            Some("response") => msg.get("command"),
            _ => None,
        };
        match (kind, name.and_then(Value::as_str)) {
            (Some("event"), Some("process")) => {
                if let Some(body) = msg.get_mut("body") {
                    map_field(body, "name", &map);
                }
            }
            (Some("event"), Some("module")) => {
                if let Some(module) = msg.pointer_mut("/body/module") {
                    map_module(module, &map);
                }
            }
            (Some("response"), Some("modules")) => {
                if let Some(Value::Array(modules)) = msg.pointer_mut("/body/modules") {
                    modules.iter_mut().for_each(|m| map_module(m, &map));
                }
            }
            _ => {}
        }
    }
}

/// Maps a DAP `Module`'s paths (its `name` too when it is the path itself).
fn map_module(module: &mut Value, map: &dyn Fn(&str) -> Option<String>) {
    if module.get("name").is_some() && module.get("name") == module.get("path") {
        map_field(module, "name", map);
    }
    map_field(module, "path", map);
    map_field(module, "symbolFilePath", map);
}

/// Maps the string under `key` of an object, when `map` takes it.
fn map_field(obj: &mut Value, key: &str, map: &dyn Fn(&str) -> Option<String>) {
    let Some(mapped) = obj.get(key).and_then(Value::as_str).and_then(map) else {
        return;
    };
    obj[key] = Value::String(mapped);
}

/// Applies `map` to the `path` of every object under a `source` key and of every object in
/// a `sources` array, at any depth; a path `map` declines is kept.
fn map_sources(v: &mut Value, map: &dyn Fn(&str) -> Option<String>) {
    match v {
        Value::Object(obj) => {
            for (key, child) in obj.iter_mut() {
                match (key.as_str(), &mut *child) {
                    ("source", Value::Object(_)) => map_path(child, map),
                    ("sources", Value::Array(items)) => items.iter_mut().for_each(|s| map_path(s, map)),
                    _ => {}
                }
                map_sources(child, map);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| map_sources(i, map)),
        _ => {}
    }
}

/// Maps a `Source`'s `path`; its `name`, when it is the old path's file name, follows (the
/// entry file runs as `main.py` but is `app.py` here).
fn map_path(source: &mut Value, map: &dyn Fn(&str) -> Option<String>) {
    let Some(old) = source.get("path").and_then(Value::as_str).map(str::to_owned) else {
        return;
    };
    let Some(mapped) = map(&old) else { return };
    let file_name = |p: &str| p.rsplit('/').next().unwrap_or(p).to_owned();
    if source.get("name").and_then(Value::as_str) == Some(file_name(&old).as_str()) {
        source["name"] = Value::String(file_name(&mapped));
    }
    source["path"] = Value::String(mapped);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map() -> PathMap {
        let aliases = BTreeMap::from([("/work/main.py".to_string(), "src/app.py".to_string())]);
        PathMap::new(Folder::new("/home/ada/proj".into()), "/work/", aliases)
    }

    #[test]
    fn local_and_room_paths() {
        let f = Folder::new("/home/ada/proj".into());
        assert_eq!(f.room_path("/home/ada/proj/src/app.py").as_deref(), Some("src/app.py"));
        assert_eq!(f.room_path("src/app.py").as_deref(), Some("src/app.py"));
        assert_eq!(
            f.room_path("/home/ada/proj/lib/../src/./app.py").as_deref(),
            Some("src/app.py")
        );
        assert_eq!(f.room_path("/home/ada/other/app.py"), None);
        assert_eq!(f.room_path("/home/ada/proj/../other/app.py"), None);
        assert_eq!(f.room_path("/home/ada/proj/.mesh/state"), None);
        assert_eq!(f.local_path("src/app.py").as_deref(), Some("/home/ada/proj/src/app.py"));
        assert_eq!(f.local_path("../etc/passwd"), None);
        assert_eq!(f.local_path(""), None);
    }

    #[test]
    fn container_paths_honour_aliases_both_ways() {
        let m = map();
        assert_eq!(
            m.container_path("/home/ada/proj/src/app.py").as_deref(),
            Some("/work/main.py")
        );
        assert_eq!(
            m.container_path("/home/ada/proj/lib/util.py").as_deref(),
            Some("/work/lib/util.py")
        );
        assert_eq!(m.container_path("/usr/lib/python3/os.py"), None);
        assert_eq!(
            m.local_path("/work/main.py").as_deref(),
            Some("/home/ada/proj/src/app.py")
        );
        assert_eq!(
            m.local_path("/work/lib/util.py").as_deref(),
            Some("/home/ada/proj/lib/util.py")
        );
        assert_eq!(m.local_path("/workshop/x.py"), None);
        assert_eq!(m.local_path("/work/../etc/passwd"), None);
        assert_eq!(m.local_path("/usr/lib/python3/os.py"), None);
    }

    #[test]
    fn every_source_of_a_message_is_mapped_and_others_are_kept() {
        let m = map();
        let mut msg = json!({
            "type": "response",
            "command": "stackTrace",
            "body": {"stackFrames": [
                {"id": 1, "name": "f", "line": 3, "source": {"name": "main.py", "path": "/work/main.py"}},
                {"id": 2, "name": "g", "line": 9, "source": {"path": "/work/lib/util.py",
                    "sources": [{"path": "/work/lib/gen.py"}]}},
                {"id": 3, "name": "h", "line": 1, "source": {"path": "/usr/lib/python3/os.py"}},
                {"id": 4, "name": "i", "line": 1, "source": {"sourceReference": 7}},
            ]},
            "path": "/work/not-a-source.py",
        });
        m.to_local(&mut msg);
        let frames = &msg["body"]["stackFrames"];
        assert_eq!(
            frames[0]["source"],
            json!({"name": "app.py", "path": "/home/ada/proj/src/app.py"})
        );
        assert_eq!(frames[1]["source"]["path"], "/home/ada/proj/lib/util.py");
        assert_eq!(frames[1]["source"]["sources"][0]["path"], "/home/ada/proj/lib/gen.py");
        assert_eq!(frames[2]["source"]["path"], "/usr/lib/python3/os.py");
        assert_eq!(frames[3]["source"], json!({"sourceReference": 7}));
        assert_eq!(msg["path"], "/work/not-a-source.py");
    }

    #[test]
    fn process_and_module_names_are_mapped_like_sources() {
        let m = map();
        let mut process =
            json!({"type": "event", "event": "process", "body": {"name": "/work/main.py", "systemProcessId": 7}});
        m.to_local(&mut process);
        assert_eq!(process["body"]["name"], "/home/ada/proj/src/app.py");
        let mut module = json!({"type": "event", "event": "module", "body": {"reason": "new",
            "module": {"id": 1, "name": "/work/lib/util.py", "path": "/work/lib/util.py", "symbolFilePath": "/work/lib/util.py"}}});
        m.to_local(&mut module);
        assert_eq!(
            module["body"]["module"],
            json!({"id": 1, "name": "/home/ada/proj/lib/util.py", "path": "/home/ada/proj/lib/util.py",
                "symbolFilePath": "/home/ada/proj/lib/util.py"})
        );
        let mut modules = json!({"type": "response", "command": "modules", "body": {"modules": [
            {"id": 0, "name": "__main__", "path": "/work/main.py"},
            {"id": 1, "name": "libc.so.6", "path": "/usr/lib/x86_64-linux-gnu/libc.so.6"},
        ]}});
        m.to_local(&mut modules);
        assert_eq!(
            modules["body"]["modules"],
            json!([
                {"id": 0, "name": "__main__", "path": "/home/ada/proj/src/app.py"},
                {"id": 1, "name": "libc.so.6", "path": "/usr/lib/x86_64-linux-gnu/libc.so.6"},
            ])
        );
        // A request's `name` is never taken for a path.
        let mut req = json!({"type": "request", "command": "process", "arguments": {"name": "/work/main.py"}});
        m.to_local(&mut req);
        assert_eq!(req["arguments"]["name"], "/work/main.py");
    }

    #[test]
    fn requests_are_mapped_for_the_container() {
        let m = map();
        let mut msg = json!({"command": "setBreakpoints", "arguments": {
            "source": {"path": "/home/ada/proj/src/app.py"}, "breakpoints": [{"line": 2}]}});
        m.to_container(&mut msg);
        assert_eq!(msg["arguments"]["source"]["path"], "/work/main.py");
        let mut loaded = json!({"body": {"sources": [{"path": "/work/lib/util.py"}, {"name": "x"}]}});
        m.to_local(&mut loaded);
        assert_eq!(
            loaded["body"]["sources"],
            json!([{"path": "/home/ada/proj/lib/util.py"}, {"name": "x"}])
        );
    }
}
