//! `mesh-fuzz`: fuzz mesh's decoders; see `docs/fuzzing.md`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mesh_fuzz::driver::{self, Options};
use mesh_fuzz::targets::{self, Target};

#[derive(Parser)]
#[command(
    name = "mesh-fuzz",
    about = "Mutation-based, crash-isolated fuzzing of mesh's decoders"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Args)]
struct Common {
    /// The fuzz folder (corpus/, found/, regressions/). Default: this crate's folder.
    #[arg(long, env = "MESH_FUZZ_DIR")]
    dir: Option<PathBuf>,
    /// An input that takes longer than this (milliseconds) is a hang.
    #[arg(long, default_value_t = 5_000)]
    timeout_ms: u64,
    /// A child whose peak resident memory passes this many MiB is a finding.
    #[arg(long, default_value_t = 512)]
    rss_limit_mib: u64,
    /// The child's address-space cap in MiB: an allocation past it is a finding ("oom").
    #[arg(long, default_value_t = 4096)]
    mem_limit_mib: u64,
}

#[derive(Subcommand)]
enum Cmd {
    /// Fuzz targets (`all` for every one). Exits non-zero when anything was found.
    Run {
        /// Target names, or `all`.
        #[arg(required = true)]
        targets: Vec<String>,
        /// Inputs per target (seeds included).
        #[arg(long)]
        inputs: Option<u64>,
        /// Seconds per target.
        #[arg(long)]
        seconds: Option<f64>,
        /// The seed of the mutations.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Save found cases as found (skip minimising them).
        #[arg(long)]
        no_minimise: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Runs inputs (files or folders of them) through a target, each in a child process.
    /// Exits non-zero when any fails.
    Replay {
        /// The target.
        target: String,
        /// Files or folders; default: the target's regressions/ and corpus/.
        paths: Vec<PathBuf>,
        /// Print the backtrace of a panic.
        #[arg(long)]
        backtrace: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Lists the targets.
    List,
    /// Writes the seed corpus (corpus/TARGET/) from real code.
    Corpus {
        /// The fuzz folder. Default: this crate's folder.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The child process of crash isolation (internal).
    #[command(hide = true)]
    Child {
        target: String,
        #[arg(long, default_value_t = 4096)]
        mem_limit_mib: u64,
        #[arg(long, default_value_t = 512)]
        rss_limit_mib: u64,
        #[arg(long)]
        backtrace: bool,
        /// Run this one file and exit (for a debugger) instead of serving the driver.
        #[arg(long)]
        input: Option<PathBuf>,
    },
}

fn default_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target(name: &str) -> anyhow::Result<&'static Target> {
    targets::by_name(name).with_context(|| {
        let names: Vec<&str> = targets::all().iter().map(|t| t.name).collect();
        format!("no target {name:?}; the targets are: {}", names.join(", "))
    })
}

fn options(common: &Common) -> Options {
    let mut o = Options::new(common.dir.clone().unwrap_or_else(default_dir));
    o.timeout = Duration::from_millis(common.timeout_ms);
    o.rss_limit_mib = common.rss_limit_mib;
    o.mem_limit_mib = common.mem_limit_mib;
    o
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run {
            targets: names,
            inputs,
            seconds,
            seed,
            no_minimise,
            common,
        } => {
            if inputs.is_none() && seconds.is_none() {
                anyhow::bail!("say how long to fuzz: --inputs N, --seconds S, or both");
            }
            let chosen: Vec<&'static Target> = if names.iter().any(|n| n == "all") {
                targets::all().to_vec()
            } else {
                names.iter().map(|n| target(n)).collect::<anyhow::Result<_>>()?
            };
            let mut opts = options(&common);
            opts.inputs = inputs;
            opts.time = seconds.map(Duration::from_secs_f64);
            opts.seed = seed;
            opts.minimise = !no_minimise;
            let mut found = 0;
            for t in chosen {
                let summary = driver::fuzz(t, &opts)?;
                print!("{summary}");
                found += summary.found();
            }
            Ok(if found == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::Replay {
            target: name,
            paths,
            backtrace,
            common,
        } => {
            let t = target(&name)?;
            let mut opts = options(&common);
            opts.backtrace = backtrace;
            let paths = if paths.is_empty() {
                [
                    opts.dir.join("regressions").join(t.name),
                    opts.dir.join("corpus").join(t.name),
                ]
                .into_iter()
                .filter(|p| p.is_dir())
                .collect()
            } else {
                paths
            };
            let mut inputs = Vec::new();
            for p in &paths {
                if p.is_dir() {
                    inputs.extend(driver::load_dir(p)?);
                } else {
                    let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
                    inputs.push((p.clone(), bytes));
                }
            }
            let results = driver::replay(t, &opts, &inputs)?;
            let mut failed = 0;
            for ((path, _), finding) in inputs.iter().zip(&results) {
                match finding {
                    None => println!("ok      {}", path.display()),
                    Some(f) => {
                        failed += 1;
                        println!("FAILED  {} ({})\n{}", path.display(), f.kind, f.detail.trim_end());
                    }
                }
            }
            println!("{}: {} inputs replayed, {failed} failed", t.name, inputs.len());
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::List => {
            for t in targets::all() {
                println!("{:<16} {}", t.name, t.about);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Corpus { dir } => {
            let dir = dir.unwrap_or_else(default_dir);
            for (t, n) in mesh_fuzz::seeds::generate(&dir)? {
                println!("{t}: {n} seeds");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Child {
            target: name,
            mem_limit_mib,
            rss_limit_mib,
            backtrace,
            input,
        } => {
            let input = input
                .map(|p| std::fs::read(&p).with_context(|| format!("reading {}", p.display())))
                .transpose()?;
            mesh_fuzz::child::main(target(&name)?, mem_limit_mib, rss_limit_mib, backtrace, input)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
