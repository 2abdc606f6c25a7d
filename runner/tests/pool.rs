//! The warm pool against a real Docker: a warm container serves exactly one run, the pool
//! refills, a container that died while idle is never handed out, and shutdown leaves
//! nothing behind.

mod common;

use std::time::Duration;

use bollard::query_parameters::{KillContainerOptionsBuilder, ListContainersOptionsBuilder};
use common::text;
use mesh_runner::{ImageSource, Job, JobFile, LimitsOverride, Mode, Registry, Runner};

async fn pooled() -> Runner {
    Runner::connect(Registry::builtin().unwrap(), ImageSource::Local)
        .await
        .unwrap_or_else(|e| panic!("these tests need Docker: {e}"))
        .with_pool(1, Duration::from_secs(600))
}

async fn until_warm(runner: &Runner, lang: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while runner.warm_count(lang, Mode::Run) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pool never held {n} {lang} container(s)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Running containers of this language that belong to mesh (idle warm ones included).
async fn sandboxes(runner: &Runner, lang: &str) -> Vec<String> {
    let opts = ListContainersOptionsBuilder::new().build();
    let all = runner.docker().list_containers(Some(opts)).await.unwrap();
    all.into_iter()
        .filter(|c| {
            c.labels.as_ref().is_some_and(|l| {
                l.contains_key(mesh_runner::sandbox::LABEL)
                    && l.get("org.mesh.language").map(String::as_str) == Some(lang)
            })
        })
        .filter_map(|c| c.id)
        .collect()
}

fn hello(n: u32) -> Job {
    Job::new("python", vec![JobFile::new("main.py", format!("print('warm', {n})"))])
}

#[tokio::test]
async fn a_warm_container_serves_one_run_and_is_replaced() {
    let runner = pooled().await;
    runner.warm("python", Mode::Run).unwrap();
    until_warm(&runner, "python", 1).await;
    let before = runner.warm_ids("python", Mode::Run);

    let run = runner.run(hello(1)).await.unwrap();
    let first = run.container_id().to_owned();
    assert!(before.contains(&first), "the run did not use the warm container");
    let out = run.collect().await;
    assert_eq!(text(&out.stdout), "warm 1\n");
    assert!(out.exit.unwrap().is_success());
    common::assert_gone(&runner, &first).await;

    // The pool refilled with a different container, which the next run takes.
    until_warm(&runner, "python", 1).await;
    let run = runner.run(hello(2)).await.unwrap();
    let second = run.container_id().to_owned();
    assert_ne!(first, second, "a warm container was reused");
    assert_eq!(text(&run.collect().await.stdout), "warm 2\n");

    let idle = runner.warm_ids("python", Mode::Run);
    runner.shutdown().await;
    assert_eq!(runner.warm_count("python", Mode::Run), 0);
    let left = sandboxes(&runner, "python").await;
    assert!(
        idle.iter().all(|id| !left.contains(id)),
        "shutdown left a warm container"
    );
}

#[tokio::test]
async fn a_container_that_died_while_idle_is_not_used() {
    let runner = pooled().await;
    runner.warm("python", Mode::Run).unwrap();
    until_warm(&runner, "python", 1).await;
    let idle = runner.warm_ids("python", Mode::Run);
    for id in &idle {
        let opts = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
        let _ = runner.docker().kill_container(id, Some(opts)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let run = runner.run(hello(3)).await.unwrap();
    assert!(
        !idle.contains(&run.container_id().to_owned()),
        "a dead container was handed out"
    );
    let out = run.collect().await;
    assert_eq!(text(&out.stdout), "warm 3\n");
    assert!(out.exit.unwrap().is_success());
    runner.shutdown().await;
}

#[tokio::test]
async fn a_tightened_job_starts_cold_and_stdin_reaches_a_warm_run() {
    let runner = pooled().await;
    runner.warm("python", Mode::Run).unwrap();
    until_warm(&runner, "python", 1).await;
    let job = hello(4).limits(LimitsOverride {
        memory_mib: Some(64),
        ..Default::default()
    });
    let run = runner.run(job).await.unwrap();
    assert_eq!(
        runner.warm_count("python", Mode::Run),
        1,
        "the tightened job took the warm container"
    );
    assert_eq!(text(&run.collect().await.stdout), "warm 4\n");

    let job = Job::new(
        "python",
        vec![JobFile::new("main.py", "import sys\nprint(sys.stdin.read().upper())")],
    )
    .stdin(mesh_runner::Stdin::Bytes("typed".into()));
    let out = runner.run(job).await.unwrap().collect().await;
    assert_eq!(text(&out.stdout), "TYPED\n");
    runner.shutdown().await;
}
