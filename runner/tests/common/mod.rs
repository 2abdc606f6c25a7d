//! Shared helpers for the Docker suites. They need a running Docker and the local images
//! (`scripts/install-docker`, then `scripts/build-images`); without them they fail with a
//! message that says so, never skip.

#![allow(dead_code)]

use bollard::query_parameters::ListContainersOptionsBuilder;
use mesh_runner::{Collected, ImageSource, Job, JobFile, LimitsOverride, Registry, Runner};

/// A runner on the local images, or a panic that says how to get Docker going.
pub async fn runner() -> Runner {
    match Runner::connect(Registry::builtin().unwrap(), ImageSource::Local).await {
        Ok(r) => r,
        Err(e) => panic!("these tests need Docker: {e}"),
    }
}

/// True when the language's local image exists (optional languages only).
pub async fn has_image(runner: &Runner, lang: &str) -> bool {
    let l = runner.registry().get(lang).unwrap();
    runner
        .docker()
        .inspect_image(l.local_image.as_deref().unwrap())
        .await
        .is_ok()
}

/// Runs `source` as the language's main file with `stdin`, with limits tightened by `limits`.
pub async fn run(
    runner: &Runner,
    lang: &str,
    source: &str,
    stdin: &str,
    limits: LimitsOverride,
) -> (Collected, String) {
    let main = runner.registry().get(lang).unwrap().main_file.clone();
    let job = Job::new(lang, vec![JobFile::new(main, source.to_owned())])
        .stdin(mesh_runner::Stdin::Bytes(stdin.to_owned().into()))
        .limits(limits);
    let run = runner
        .run(job)
        .await
        .unwrap_or_else(|e| panic!("{lang}: run failed to start: {e}"));
    let id = run.container_id().to_owned();
    (run.collect().await, id)
}

/// Asserts that the container is gone (it is removed before the final event is sent).
pub async fn assert_gone(runner: &Runner, id: &str) {
    assert!(
        runner.docker().inspect_container(id, None).await.is_err(),
        "container {id} is still there"
    );
}

/// Sandbox containers of mesh still present (created by any test).
pub async fn leftover_sandboxes(runner: &Runner) -> usize {
    let opts = ListContainersOptionsBuilder::new().all(true).build();
    let all = runner.docker().list_containers(Some(opts)).await.unwrap();
    all.iter()
        .filter(|c| {
            c.labels
                .as_ref()
                .is_some_and(|l| l.contains_key(mesh_runner::sandbox::LABEL))
        })
        .count()
}

/// Lossy text of some bytes, for assertions and messages.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
