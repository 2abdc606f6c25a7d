//! Configuration and the registry of shared folders, in the XDG locations:
//! `$XDG_CONFIG_HOME/mesh/config.toml` (server, name, colour) and
//! `$XDG_STATE_HOME/mesh/sessions.json` (which folder is in which room, with its token; the
//! file is readable by its owner only). `MESH_SERVER`, `MESH_NAME`, `MESH_COLOR`,
//! `MESH_CREATE_TOKEN`, `MESH_CA_FILE`, `MESH_MAX_FOLDER_FILES` and `MESH_MAX_FOLDER_BYTES`
//! override the file; command-line flags override both.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The server used when nothing says otherwise: a local `mesh-server`.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7420";

/// User settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Server base URL.
    pub server: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Colour `#rrggbb`.
    pub color: Option<String>,
    /// The token a server that restricts room creation (`mesh-server --create-token`) asks
    /// `share` for.
    pub create_token: Option<String>,
    /// A PEM file of certificate authorities to trust besides the system's (a private CA of
    /// an `https://` server). Relative paths in the file are relative to the file's folder.
    pub ca_file: Option<PathBuf>,
    /// The most files a share uploads or a join writes (see [`crate::workspace::FolderLimits`]).
    pub max_folder_files: Option<usize>,
    /// The most bytes of text a share uploads or a join writes.
    pub max_folder_bytes: Option<u64>,
}

impl Config {
    /// Reads the config file (if any) and applies the environment.
    pub fn load() -> anyhow::Result<Config> {
        let mut cfg = match config_path() {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(&p)?;
                let mut cfg = toml_lite(&text).map_err(|e| anyhow::anyhow!("invalid {}: {e}", p.display()))?;
                // The file is read from wherever the editor starts us: anchor its paths.
                if let (Some(ca), Some(dir)) = (cfg.ca_file.as_mut(), p.parent()) {
                    if ca.is_relative() {
                        *ca = dir.join(&*ca);
                    }
                }
                cfg
            }
            _ => Config::default(),
        };
        if let Ok(v) = std::env::var("MESH_SERVER") {
            cfg.server = Some(v);
        }
        if let Ok(v) = std::env::var("MESH_NAME") {
            cfg.name = Some(v);
        }
        if let Ok(v) = std::env::var("MESH_COLOR") {
            cfg.color = Some(v);
        }
        if let Ok(v) = std::env::var("MESH_CREATE_TOKEN") {
            cfg.create_token = Some(v);
        }
        if let Some(v) = std::env::var_os("MESH_CA_FILE").filter(|v| !v.is_empty()) {
            cfg.ca_file = Some(v.into());
        }
        if let Ok(v) = std::env::var("MESH_MAX_FOLDER_FILES") {
            cfg.max_folder_files = Some(number("MESH_MAX_FOLDER_FILES", &v).map_err(anyhow::Error::msg)?);
        }
        if let Ok(v) = std::env::var("MESH_MAX_FOLDER_BYTES") {
            cfg.max_folder_bytes = Some(number("MESH_MAX_FOLDER_BYTES", &v).map_err(anyhow::Error::msg)?);
        }
        Ok(cfg)
    }

    /// The server base URL.
    pub fn server(&self) -> String {
        self.server
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_SERVER.into())
            .trim_end_matches('/')
            .to_string()
    }

    /// The display name: configured, else the login name.
    pub fn name(&self) -> String {
        self.name
            .clone()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "anonymous".into())
    }
}

/// A tiny reader for the `key = "value"` lines the config file holds.
fn toml_lite(text: &str) -> Result<Config, String> {
    let mut cfg = Config::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected key = \"value\"", n + 1))?;
        let v = v.trim().trim_matches('"').to_string();
        match k.trim() {
            "server" => cfg.server = Some(v),
            "name" => cfg.name = Some(v),
            "color" => cfg.color = Some(v),
            "create_token" => cfg.create_token = Some(v),
            "ca_file" => cfg.ca_file = Some(v.into()),
            "max_folder_files" => cfg.max_folder_files = Some(number(k.trim(), &v)?),
            "max_folder_bytes" => cfg.max_folder_bytes = Some(number(k.trim(), &v)?),
            other => return Err(format!("line {}: unknown key {other}", n + 1)),
        }
    }
    Ok(cfg)
}

/// A whole number for the setting `name`, or a sentence saying what is wrong.
fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{name} must be a whole number, not {value:?}"))
}

fn config_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("mesh").join("config.toml"))
}

fn registry_path() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|d| d.join("mesh").join("sessions.json"))
}

/// A folder that is in a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The folder (absolute).
    pub dir: PathBuf,
    /// The join link with our token (a secret): the host's, when we shared the folder.
    pub link: String,
    /// The reader link, when we created the room.
    #[serde(default)]
    pub read_link: Option<String>,
    /// The writer link we hand out, when we shared the folder (so `share` again, or a
    /// restart, shows the same link and never the host's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_link: Option<String>,
    /// Room name.
    #[serde(default)]
    pub name: String,
}

impl SessionRecord {
    /// Where the folder's room is and the token to show: the folder's seat token when it
    /// holds a seat in that room (kept under `.mesh/`), else the link's. A person's every
    /// connection (the editor's, its debug adapter, `run`, `host`) shows the seat token, so
    /// the seat, not the link, decides the role (decision 011).
    pub fn target(&self) -> Result<crate::link::RoomTarget, crate::link::BadLink> {
        let mut target = crate::link::RoomTarget::parse(&self.link)?;
        if let Some(seat) = crate::mesh_dir::read_seat(&self.dir, &target.room.to_string()) {
            target.token = seat.token;
        }
        Ok(target)
    }
}

/// Loads the registry (empty when missing or unreadable).
pub fn load_sessions() -> Vec<SessionRecord> {
    registry_path()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Records that `record.dir` is in a room (replacing an older record for the same folder).
pub fn save_session(record: SessionRecord) -> anyhow::Result<()> {
    let Some(path) = registry_path() else {
        anyhow::bail!("no state directory")
    };
    let mut all = load_sessions();
    all.retain(|r| r.dir != record.dir);
    all.push(record);
    write_private(&path, &serde_json::to_vec_pretty(&all)?)
}

/// Forgets the record of a folder.
pub fn forget_session(dir: &Path) -> anyhow::Result<()> {
    let Some(path) = registry_path() else { return Ok(()) };
    let mut all = load_sessions();
    all.retain(|r| r.dir != dir);
    write_private(&path, &serde_json::to_vec_pretty(&all)?)
}

/// The record for `dir` or its nearest parent that has one.
pub fn session_for(dir: &Path) -> Option<SessionRecord> {
    let all = load_sessions();
    dir.ancestors().find_map(|d| all.iter().find(|r| r.dir == d).cloned())
}

/// Writes `bytes` to `path` atomically, readable by the owner only (0600).
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lines_are_read_and_mistakes_named() {
        let c = toml_lite("# mine\nserver = \"http://x:1\"\nname = \"ada\"\n").unwrap();
        assert_eq!(
            (c.server.as_deref(), c.name.as_deref()),
            (Some("http://x:1"), Some("ada"))
        );
        let c = toml_lite("create_token = \"s3cret\"\n").unwrap();
        assert_eq!(c.create_token.as_deref(), Some("s3cret"));
        let c = toml_lite("ca_file = \"/etc/mesh/ca.pem\"\n").unwrap();
        assert_eq!(c.ca_file.as_deref(), Some(Path::new("/etc/mesh/ca.pem")));
        assert!(toml_lite("colour = \"red\"")
            .unwrap_err()
            .contains("unknown key colour"));
        assert!(toml_lite("nonsense").unwrap_err().contains("line 1"));
    }

    #[test]
    fn folder_limits_are_read_as_numbers_and_a_bad_one_is_named() {
        let c = toml_lite("max_folder_files = 20000\nmax_folder_bytes = \"1048576\"\n").unwrap();
        assert_eq!(
            (c.max_folder_files, c.max_folder_bytes),
            (Some(20_000), Some(1_048_576))
        );
        let err = toml_lite("max_folder_bytes = 64MiB").unwrap_err();
        assert!(err.contains("max_folder_bytes must be a whole number"), "{err}");
    }
}
