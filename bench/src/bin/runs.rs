//! `runs`: how fast Run answers. For a Python and a C hello world, the time from asking for
//! a run to the first byte of output and to the exit, through `mesh-runner` with a warm
//! pool, with a cold container, and with a plain `docker run` of the same image (no
//! hardening, files piped in), side by side. Needs Docker and the local images
//! (`scripts/install-docker`, `scripts/build-images python c`).
//!
//! `cargo run --release -p mesh-bench --bin runs -- --markdown`

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use mesh_bench::percentile;
use mesh_runner::{ImageSource, Job, JobFile, Mode, Registry, RunEvent, Runner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser)]
#[command(about = "Run latency: warm pool vs cold container vs plain docker run")]
struct Args {
    /// Languages to measure.
    #[arg(long, value_delimiter = ',', default_value = "python,c")]
    languages: Vec<String>,
    /// Runs per language and way.
    #[arg(long, default_value_t = 20)]
    iterations: usize,
    /// Print the table as Markdown.
    #[arg(long)]
    markdown: bool,
}

/// One measured run: milliseconds to the first output byte and to the exit.
struct Sample {
    first_ms: f64,
    exit_ms: f64,
}

fn source(lang: &str) -> anyhow::Result<(&'static str, &'static str)> {
    Ok(match lang {
        "python" => ("main.py", "print('hello, mesh')\n"),
        "c" => (
            "main.c",
            "#include <stdio.h>\nint main(void){puts(\"hello, mesh\");return 0;}\n",
        ),
        other => bail!("no hello world for {other:?} (python, c)"),
    })
}

/// The same program through plain `docker run`: files piped in, no limits, no hardening.
fn docker_run_script(lang: &str) -> &'static str {
    match lang {
        "c" => "cat > /tmp/main.c && gcc -O2 -o /tmp/main /tmp/main.c && /tmp/main",
        _ => "cat > /tmp/main.py && python3 -u /tmp/main.py",
    }
}

async fn through_runner(runner: &Runner, lang: &str) -> anyhow::Result<Sample> {
    let (file, text) = source(lang)?;
    let t0 = Instant::now();
    let mut run = runner.run(Job::new(lang, vec![JobFile::new(file, text)])).await?;
    let mut first = None;
    loop {
        match run.next_event().await {
            Some(RunEvent::Stdout(_)) if first.is_none() => first = Some(t0.elapsed()),
            Some(RunEvent::Exited(exit)) if exit.is_success() => break,
            Some(RunEvent::Exited(exit)) => bail!("{lang} run failed: {exit:?}"),
            Some(RunEvent::Failed(e)) => bail!("{lang} run failed: {e}"),
            Some(_) => {}
            None => bail!("{lang} run ended without an exit"),
        }
    }
    let exit = t0.elapsed();
    Ok(Sample {
        first_ms: ms(first.context("no output")?),
        exit_ms: ms(exit),
    })
}

async fn through_docker_cli(image: &str, lang: &str) -> anyhow::Result<Sample> {
    let (_, text) = source(lang)?;
    let t0 = Instant::now();
    let mut child = tokio::process::Command::new("docker")
        .args([
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            image,
            "sh",
            "-c",
            docker_run_script(lang),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("docker CLI")?;
    let mut stdin = child.stdin.take().context("stdin")?;
    stdin.write_all(text.as_bytes()).await?;
    drop(stdin);
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut buf = [0u8; 256];
    let n = stdout.read(&mut buf).await?;
    let first = t0.elapsed();
    if n == 0 {
        bail!("docker run printed nothing");
    }
    let status = child.wait().await?;
    if !status.success() {
        bail!("docker run failed: {status}");
    }
    Ok(Sample {
        first_ms: ms(first),
        exit_ms: ms(t0.elapsed()),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn wait_warm(runner: &Runner, lang: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while runner.warm_count(lang, Mode::Run) == 0 {
        if Instant::now() > deadline {
            bail!("the pool never warmed {lang}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let registry = Registry::builtin()?;
    let cold = Runner::connect(registry.clone(), ImageSource::Local).await?;
    let warm = Runner::connect(registry.clone(), ImageSource::Local)
        .await?
        .with_pool(1, Duration::from_secs(600));
    let mut rows = Vec::new();
    for lang in &args.languages {
        let image = registry.get(lang)?.local_image.clone().context("no local image")?;
        warm.warm(lang, Mode::Run)?;
        // One untimed run of each way, so page caches are equally hot for all three.
        through_runner(&cold, lang).await?;
        through_docker_cli(&image, lang).await?;
        let (mut w, mut c, mut d) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..args.iterations {
            // The warm run starts once the pool is full again, as it is for runs seconds apart.
            wait_warm(&warm, lang).await?;
            w.push(through_runner(&warm, lang).await?);
            c.push(through_runner(&cold, lang).await?);
            d.push(through_docker_cli(&image, lang).await?);
        }
        for (way, samples) in [
            ("mesh, warm pool", w),
            ("mesh, cold container", c),
            ("plain docker run", d),
        ] {
            let first: Vec<f64> = samples.iter().map(|s| s.first_ms).collect();
            let exit: Vec<f64> = samples.iter().map(|s| s.exit_ms).collect();
            rows.push([
                lang.clone(),
                way.to_owned(),
                format!("{:.1}", percentile(&first, 0.5)),
                format!("{:.1}", percentile(&first, 0.99)),
                format!("{:.1}", percentile(&exit, 0.5)),
                format!("{:.1}", percentile(&exit, 0.99)),
            ]);
        }
    }
    warm.shutdown().await;
    print_table(
        &[
            "language",
            "way",
            "first byte p50 ms",
            "first byte p99 ms",
            "exit p50 ms",
            "exit p99 ms",
        ],
        &rows,
        args.markdown,
    );
    println!("\n{} runs per language and way.", args.iterations);
    Ok(())
}

fn print_table(head: &[&str], rows: &[[String; 6]], markdown: bool) {
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        if markdown {
            format!("| {} |", padded.join(" | "))
        } else {
            padded.join("  ")
        }
    };
    println!("{}", line(head.to_vec()));
    if markdown {
        println!(
            "|{}|",
            widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|")
        );
    }
    for r in rows {
        println!("{}", line(r.iter().map(String::as_str).collect()));
    }
}
