//! The language registry: which image, file name, commands and limits each language uses.
//!
//! Parsed from TOML (`images/languages.toml` is the shipped one) into closed types: unknown
//! keys are errors, and every value is checked against bounds so a typo in an operator's
//! override cannot turn into an unlimited sandbox.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::files::check_path;
use crate::{Error, Result};

/// The registry format this crate reads. Bumped when a field changes meaning.
pub const REGISTRY_VERSION: u32 = 1;

/// The registry shipped with mesh, compiled in so a server needs no file to start.
pub const BUILTIN_REGISTRY: &str = include_str!("../../images/languages.toml");

/// Resource limits for one step (compile or run) of a run.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock seconds before the container is killed.
    pub wall_seconds: f64,
    /// Memory in MiB; swap is set to the same value, so there is no swap.
    pub memory_mib: u32,
    /// Processes and threads in the container.
    pub pids: u32,
    /// Bytes of stdout and stderr together, counted on the stream.
    pub output_bytes: u64,
    /// CPU quota in cores.
    pub cpus: f64,
}

impl Limits {
    /// The wall-clock limit as a duration.
    pub fn wall(&self) -> Duration {
        Duration::from_secs_f64(self.wall_seconds)
    }

    /// Memory in bytes, as Docker wants it.
    pub fn memory_bytes(&self) -> i64 {
        i64::from(self.memory_mib) * 1024 * 1024
    }

    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        // Bounds: generous enough for real toolchains, tight enough that a typo (an extra
        // zero) is caught rather than turned into a sandbox that can take the machine.
        if !(self.wall_seconds > 0.0 && self.wall_seconds <= 3600.0) {
            return Err(format!("wall_seconds must be in (0, 3600], got {}", self.wall_seconds));
        }
        if !(16..=65536).contains(&self.memory_mib) {
            return Err(format!("memory_mib must be in [16, 65536], got {}", self.memory_mib));
        }
        if !(4..=32768).contains(&self.pids) {
            return Err(format!("pids must be in [4, 32768], got {}", self.pids));
        }
        if !(1..=1 << 30).contains(&self.output_bytes) {
            return Err(format!("output_bytes must be in [1, 2^30], got {}", self.output_bytes));
        }
        if !(self.cpus > 0.0 && self.cpus <= 256.0) {
            return Err(format!("cpus must be in (0, 256], got {}", self.cpus));
        }
        Ok(())
    }
}

/// A partial [`Limits`]: the fields a language or a step overrides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsOverride {
    /// See [`Limits::wall_seconds`].
    pub wall_seconds: Option<f64>,
    /// See [`Limits::memory_mib`].
    pub memory_mib: Option<u32>,
    /// See [`Limits::pids`].
    pub pids: Option<u32>,
    /// See [`Limits::output_bytes`].
    pub output_bytes: Option<u64>,
    /// See [`Limits::cpus`].
    pub cpus: Option<f64>,
}

impl LimitsOverride {
    /// `base` with each field set here taken only where it is tighter: a job may narrow
    /// the registry's limits, never widen them.
    pub fn tighten(&self, base: Limits) -> Limits {
        Limits {
            wall_seconds: self
                .wall_seconds
                .map_or(base.wall_seconds, |v| v.min(base.wall_seconds)),
            memory_mib: self.memory_mib.map_or(base.memory_mib, |v| v.min(base.memory_mib)),
            pids: self.pids.map_or(base.pids, |v| v.min(base.pids)),
            output_bytes: self
                .output_bytes
                .map_or(base.output_bytes, |v| v.min(base.output_bytes)),
            cpus: self.cpus.map_or(base.cpus, |v| v.min(base.cpus)),
        }
    }

    /// `base` with the fields set here replaced.
    pub fn apply(&self, base: Limits) -> Limits {
        Limits {
            wall_seconds: self.wall_seconds.unwrap_or(base.wall_seconds),
            memory_mib: self.memory_mib.unwrap_or(base.memory_mib),
            pids: self.pids.unwrap_or(base.pids),
            output_bytes: self.output_bytes.unwrap_or(base.output_bytes),
            cpus: self.cpus.unwrap_or(base.cpus),
        }
    }
}

/// One language, resolved: defaults applied and everything validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Language {
    /// The registry key, e.g. `python`.
    pub id: String,
    /// Display name, e.g. `Python 3`.
    pub name: String,
    /// File extensions without the dot.
    pub extensions: Vec<String>,
    /// Public image for ordinary users.
    pub image: String,
    /// Image built from Debian packages by `scripts/build-images`, if any.
    pub local_image: Option<String>,
    /// Debian packages of `local_image`.
    pub packages: Vec<String>,
    /// File name of the entry file in the work dir.
    pub main_file: String,
    /// Compile argv; a non-zero exit is a compile error.
    pub compile: Option<Vec<String>>,
    /// Run argv.
    pub run: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// Limits of the run step.
    pub limits: Limits,
    /// Limits of the compile step.
    pub compile_limits: Limits,
    /// How to debug it, if it can be debugged.
    pub debug: Option<DebugSpec>,
}

/// How a language is debugged: a debug adapter speaking DAP on the container's stdio, or on
/// a TCP port of the container's own loopback that the runner bridges to its stdio.
#[derive(Debug, Clone, PartialEq)]
pub struct DebugSpec {
    /// Builds a debuggable program (replaces the language's `compile` in a debug session).
    pub compile: Option<Vec<String>>,
    /// The debug adapter's argv, started once the job's files are in (empty when `prestart`
    /// starts the adapter).
    pub adapter: Vec<String>,
    /// Started as the container starts, before any job is in it (stdio closed): what can be
    /// got ready without the program, e.g. an adapter with its debuggee waiting for the file.
    /// A warm debug container has it running already.
    pub prestart: Option<Vec<String>>,
    /// The loopback TCP port the adapter listens on; `None`: it speaks DAP on stdio.
    pub port: Option<u16>,
    /// The adapter (on stdio) is started with the container, before any job, and sent
    /// `initialize` at once by mesh's holder, which then serves it on `port`: a warm debug
    /// container has it initialized already.
    pub initialize_ahead: bool,
    /// The DAP request that starts the program: `launch`, or `attach` (to a prestarted one).
    pub request: DebugRequest,
    /// The arguments of that request, which the server sends the adapter.
    pub launch: serde_json::Map<String, serde_json::Value>,
    /// Limits of the debug session (the adapter and the program together).
    pub limits: Limits,
}

/// How the server starts the debugged program through the adapter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DebugRequest {
    /// DAP `launch`: the adapter starts the program.
    #[default]
    Launch,
    /// DAP `attach`: the program runs already (`prestart`) and waits for the debugger.
    Attach,
}

impl DebugRequest {
    /// The DAP command.
    pub fn command(self) -> &'static str {
        match self {
            DebugRequest::Launch => "launch",
            DebugRequest::Attach => "attach",
        }
    }
}

/// The parsed, validated registry.
#[derive(Debug, Clone, PartialEq)]
pub struct Registry {
    languages: BTreeMap<String, Language>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    version: u32,
    defaults: RawDefaults,
    #[serde(default)]
    languages: BTreeMap<String, RawLanguage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    limits: Limits,
    #[serde(default)]
    debug_limits: LimitsOverride,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDebug {
    compile: Option<Vec<String>>,
    #[serde(default)]
    adapter: Vec<String>,
    prestart: Option<Vec<String>>,
    port: Option<u16>,
    #[serde(default)]
    initialize_ahead: bool,
    #[serde(default)]
    request: DebugRequest,
    #[serde(default)]
    launch: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    limits: LimitsOverride,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLanguage {
    name: String,
    extensions: Vec<String>,
    image: String,
    local_image: Option<String>,
    #[serde(default)]
    packages: Vec<String>,
    main_file: String,
    compile: Option<Vec<String>>,
    run: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    limits: LimitsOverride,
    #[serde(default)]
    compile_limits: LimitsOverride,
    debug: Option<RawDebug>,
}

impl Registry {
    /// The registry shipped with mesh ([`BUILTIN_REGISTRY`]).
    pub fn builtin() -> Result<Self> {
        Self::from_toml(BUILTIN_REGISTRY)
    }

    /// Reads and validates a registry file.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Registry(format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml(&text).map_err(|e| match e {
            Error::Registry(msg) => Error::Registry(format!("{}: {msg}", path.display())),
            other => other,
        })
    }

    /// Parses and validates registry text.
    pub fn from_toml(text: &str) -> Result<Self> {
        let raw: RawRegistry = toml::from_str(text).map_err(|e| Error::Registry(e.to_string()))?;
        if raw.version != REGISTRY_VERSION {
            return Err(Error::Registry(format!(
                "version {} is not supported (this build reads version {REGISTRY_VERSION})",
                raw.version
            )));
        }
        raw.defaults
            .limits
            .check()
            .map_err(|p| Error::Registry(format!("defaults.limits: {p}")))?;
        if raw.languages.is_empty() {
            return Err(Error::Registry("no [languages.*] tables".into()));
        }
        let mut languages = BTreeMap::new();
        let mut owner_of_ext: BTreeMap<String, String> = BTreeMap::new();
        for (id, lang) in raw.languages {
            let bad = |problem: String| Error::Registry(format!("language {id:?}: {problem}"));
            let lang = resolve(&id, lang, &raw.defaults).map_err(bad)?;
            for ext in &lang.extensions {
                if let Some(other) = owner_of_ext.insert(ext.clone(), id.clone()) {
                    return Err(Error::Registry(format!(
                        "extension {ext:?} is claimed by both {other:?} and {id:?}"
                    )));
                }
            }
            languages.insert(id, lang);
        }
        Ok(Self { languages })
    }

    /// The language with this id.
    pub fn get(&self, id: &str) -> Result<&Language> {
        self.languages
            .get(id)
            .ok_or_else(|| Error::UnknownLanguage(id.to_owned()))
    }

    /// The language whose extensions include this path's extension.
    pub fn for_path(&self, path: &str) -> Option<&Language> {
        let ext = path.rsplit_once('.')?.1;
        self.languages
            .values()
            .find(|l| l.extensions.iter().any(|e| e.eq_ignore_ascii_case(ext)))
    }

    /// Every language, ordered by id.
    pub fn languages(&self) -> impl Iterator<Item = &Language> {
        self.languages.values()
    }
}

fn resolve(id: &str, raw: RawLanguage, defaults: &RawDefaults) -> std::result::Result<Language, String> {
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err("the id must be lowercase ASCII letters, digits, '-' or '_'".into());
    }
    if raw.name.trim().is_empty() {
        return Err("name is empty".into());
    }
    if raw.extensions.is_empty() {
        return Err("extensions is empty".into());
    }
    for ext in &raw.extensions {
        if ext.is_empty() || !ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!(
                "extension {ext:?} must be ASCII letters and digits, without the dot"
            ));
        }
    }
    check_image(&raw.image).map_err(|p| format!("image: {p}"))?;
    if let Some(local) = &raw.local_image {
        check_image(local).map_err(|p| format!("local_image: {p}"))?;
    }
    check_path(&raw.main_file).map_err(|p| format!("main_file: {p}"))?;
    check_argv(&raw.run).map_err(|p| format!("run: {p}"))?;
    if let Some(compile) = &raw.compile {
        check_argv(compile).map_err(|p| format!("compile: {p}"))?;
    }
    for (key, value) in &raw.env {
        let valid_key = key
            .bytes()
            .enumerate()
            .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
        if key.is_empty() || !valid_key {
            return Err(format!("env key {key:?} is not a valid variable name"));
        }
        if value.contains('\0') {
            return Err(format!("env {key}: contains a NUL byte"));
        }
    }
    let limits = raw.limits.apply(defaults.limits);
    limits.check().map_err(|p| format!("limits: {p}"))?;
    let compile_limits = raw.compile_limits.apply(limits);
    compile_limits.check().map_err(|p| format!("compile_limits: {p}"))?;
    let debug = raw
        .debug
        .map(|d| resolve_debug(d, defaults.debug_limits.apply(limits)))
        .transpose()
        .map_err(|p| format!("debug: {p}"))?;
    Ok(Language {
        id: id.to_owned(),
        name: raw.name,
        extensions: raw.extensions,
        image: raw.image,
        local_image: raw.local_image,
        packages: raw.packages,
        main_file: raw.main_file,
        compile: raw.compile,
        run: raw.run,
        env: raw.env,
        limits,
        compile_limits,
        debug,
    })
}

fn resolve_debug(raw: RawDebug, base: Limits) -> std::result::Result<DebugSpec, String> {
    match &raw.prestart {
        // A prestarted adapter is what the session talks to; another one is optional.
        Some(prestart) => {
            check_argv(prestart).map_err(|p| format!("prestart: {p}"))?;
            if raw.port.is_none() {
                return Err("prestart needs port: the adapter it starts must listen on one".into());
            }
            if !raw.adapter.is_empty() {
                check_argv(&raw.adapter).map_err(|p| format!("adapter: {p}"))?;
            }
        }
        None => check_argv(&raw.adapter).map_err(|p| format!("adapter: {p}"))?,
    }
    if raw.port == Some(0) {
        return Err("port must be 1..=65535".into());
    }
    if raw.initialize_ahead && (raw.prestart.is_some() || raw.port.is_none()) {
        return Err(
            "initialize_ahead needs port (where mesh serves the adapter it started) and no prestart (it is the prestart)"
                .into(),
        );
    }
    if let Some(compile) = &raw.compile {
        check_argv(compile).map_err(|p| format!("compile: {p}"))?;
    }
    let limits = raw.limits.apply(base);
    limits.check().map_err(|p| format!("limits: {p}"))?;
    Ok(DebugSpec {
        compile: raw.compile,
        adapter: raw.adapter,
        prestart: raw.prestart,
        port: raw.port,
        initialize_ahead: raw.initialize_ahead,
        request: raw.request,
        launch: raw.launch,
        limits,
    })
}

fn check_image(image: &str) -> std::result::Result<(), String> {
    if image.is_empty() || image.len() > 255 {
        return Err("must be 1..=255 characters".into());
    }
    if !image
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/:._-@".contains(&b))
    {
        return Err(format!("{image:?} is not an image reference"));
    }
    Ok(())
}

fn check_argv(argv: &[String]) -> std::result::Result<(), String> {
    match argv.first() {
        None => Err("the command is empty".into()),
        Some(prog) if prog.is_empty() => Err("the program name is empty".into()),
        _ if argv.iter().any(|a| a.contains('\0')) => Err("an argument contains a NUL byte".into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        version = 1
        [defaults.limits]
        wall_seconds = 5
        memory_mib = 128
        pids = 32
        output_bytes = 1000
        cpus = 1.0
        [languages.python]
        name = "Python"
        extensions = ["py"]
        image = "python:3.11-slim"
        main_file = "main.py"
        run = ["python3", "main.py"]
        [languages.python.limits]
        memory_mib = 200
    "#;

    fn err(text: &str) -> String {
        Registry::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn builtin_registry_is_valid_and_complete() {
        let reg = Registry::builtin().unwrap();
        for id in ["python", "javascript", "c", "cpp", "go", "rust", "java", "bash"] {
            let lang = reg.get(id).unwrap();
            assert!(lang.local_image.is_some(), "{id} has no local image");
            assert!(!lang.packages.is_empty(), "{id} has no packages");
        }
        assert!(reg.get("c").unwrap().compile.is_some());
        for id in ["c", "cpp", "go", "rust"] {
            let debug = reg.get(id).unwrap().debug.as_ref().unwrap();
            assert_eq!(debug.request, DebugRequest::Launch, "{id}");
            assert!(debug.launch["program"].as_str().unwrap().starts_with("/work/"), "{id}");
            assert_eq!(debug.limits.wall_seconds, 1800.0);
        }
        // lldb-vscode is started and initialized ahead in a warm container, for every language
        // it debugs; Go's adapter listens on a port; Python's is prestarted and attached to.
        for id in ["c", "cpp", "rust"] {
            let debug = reg.get(id).unwrap().debug.as_ref().unwrap();
            assert!(debug.initialize_ahead && debug.port.is_some(), "{id}");
        }
        assert_eq!(reg.get("go").unwrap().debug.as_ref().unwrap().port, Some(4711));
        let py = reg.get("python").unwrap().debug.as_ref().unwrap();
        assert_eq!((py.request, py.port), (DebugRequest::Attach, Some(5678)));
        assert!(py.prestart.is_some() && py.adapter.is_empty());
        assert_eq!(py.launch["connect"]["port"], 5678);
        assert_eq!(reg.for_path("src/app.PY").unwrap().id, "python");
        assert_eq!(reg.for_path("x.cc").unwrap().id, "cpp");
        assert!(reg.for_path("Makefile").is_none());
    }

    #[test]
    fn overrides_apply_in_layers() {
        let reg = Registry::from_toml(MINIMAL).unwrap();
        let py = reg.get("python").unwrap();
        assert_eq!(py.limits.memory_mib, 200);
        assert_eq!(py.limits.pids, 32);
        // Compile limits start from the language's limits, not from the defaults.
        assert_eq!(py.compile_limits, py.limits);
        assert!(matches!(reg.get("cobol"), Err(Error::UnknownLanguage(_))));
    }

    #[test]
    fn a_prestart_needs_a_port_and_an_adapter_needs_a_command() {
        let debug = |table: &str| format!("{MINIMAL}\n[languages.python.debug]\n{table}\n");
        assert!(err(&debug("prestart = [\"x\"]")).contains("prestart needs port"));
        assert!(err(&debug("launch = {}")).contains("adapter: the command is empty"));
        assert!(err(&debug("adapter = [\"a\"]\nport = 0")).contains("port must be"));
        assert!(err(&debug("adapter = [\"a\"]\nrequest = \"run\"")).contains("unknown variant"));
        assert!(err(&debug("adapter = [\"a\"]\ninitialize_ahead = true")).contains("initialize_ahead needs port"));
        let both = "adapter = [\"a\"]\nprestart = [\"x\"]\nport = 9\ninitialize_ahead = true";
        assert!(err(&debug(both)).contains("no prestart"));
        let reg = Registry::from_toml(&debug("prestart = [\"x\"]\nport = 9\nrequest = \"attach\"")).unwrap();
        assert_eq!(
            reg.get("python").unwrap().debug.as_ref().unwrap().request.command(),
            "attach"
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let text = MINIMAL.replace("main_file =", "mian_file = \"x\"\nmain_file =");
        assert!(err(&text).contains("unknown field `mian_file`"), "{}", err(&text));
    }

    #[test]
    fn bad_values_name_the_language_and_the_problem() {
        let cases = [
            (
                MINIMAL.replace("memory_mib = 200", "memory_mib = 2000000"),
                "language \"python\": limits: memory_mib",
            ),
            (MINIMAL.replace("\"main.py\"\n", "\"../main.py\"\n"), "main_file"),
            (
                MINIMAL.replace("run = [\"python3\", \"main.py\"]", "run = []"),
                "run: the command is empty",
            ),
            (
                MINIMAL.replace("version = 1", "version = 2"),
                "version 2 is not supported",
            ),
            (MINIMAL.replace("[\"py\"]", "[\".py\"]"), "extension \".py\""),
            (MINIMAL.replace("python:3.11-slim", "python 3"), "image"),
            (
                MINIMAL.replace("wall_seconds = 5", "wall_seconds = 0"),
                "defaults.limits: wall_seconds",
            ),
        ];
        for (text, want) in cases {
            let got = err(&text);
            assert!(got.contains(want), "want {want:?} in {got:?}");
        }
    }

    #[test]
    fn an_extension_belongs_to_one_language() {
        let text = format!(
            "{MINIMAL}\n[languages.py2]\nname = \"P\"\nextensions = [\"py\"]\nimage = \"p\"\nmain_file = \"m.py\"\nrun = [\"p\"]\n"
        );
        assert!(err(&text).contains("claimed by both"));
    }
}
