//! The attack suite: hostile programs against the real sandbox. Each asserts the verdict
//! and that the container is gone afterwards.

mod common;

use std::time::Duration;

use common::*;
use mesh_runner::{Limit, LimitsOverride, Stage};

fn limits(wall_seconds: f64) -> LimitsOverride {
    LimitsOverride {
        wall_seconds: Some(wall_seconds),
        ..Default::default()
    }
}

#[tokio::test]
async fn fork_bomb_hits_the_pids_limit_and_is_killed() {
    let runner = runner().await;
    let lim = LimitsOverride {
        wall_seconds: Some(3.0),
        pids: Some(32),
        ..Default::default()
    };
    let (out, id) = run(&runner, "bash", "bomb() { bomb | bomb & }\nbomb\nsleep 3600\n", "", lim).await;
    let exit = out.exit.unwrap();
    assert_eq!(
        exit.limit_hit,
        Some(Limit::Pids),
        "{exit:?} stderr: {}",
        text(&out.stderr)
    );
    assert!(exit.duration < Duration::from_secs(6), "{exit:?}");
    assert_gone(&runner, &id).await;
}

#[tokio::test]
async fn memory_bomb_is_oom_killed() {
    let runner = runner().await;
    let lim = LimitsOverride {
        memory_mib: Some(64),
        ..limits(20.0)
    };
    let src = "b = []\nwhile True:\n    b.append(bytearray(1 << 20))\n";
    let (out, id) = run(&runner, "python", src, "", lim).await;
    let exit = out.exit.unwrap();
    assert_eq!(exit.limit_hit, Some(Limit::Memory), "{exit:?}");
    assert_eq!(exit.code, Some(137), "{exit:?}");
    assert_gone(&runner, &id).await;
}

#[tokio::test]
async fn output_flood_is_cut_at_the_cap() {
    let runner = runner().await;
    let lim = LimitsOverride {
        output_bytes: Some(100_000),
        ..limits(20.0)
    };
    let src = "import sys\nwhile True:\n    sys.stdout.write('x' * 4096)\n    sys.stderr.write('y' * 100)\n";
    let (out, id) = run(&runner, "python", src, "", lim).await;
    let exit = out.exit.unwrap();
    assert_eq!(exit.limit_hit, Some(Limit::Output), "{exit:?}");
    assert_eq!(out.stdout.len() + out.stderr.len(), 100_000);
    assert!(exit.duration < Duration::from_secs(10), "{exit:?}");
    assert_gone(&runner, &id).await;
}

#[tokio::test]
async fn endless_sleep_times_out() {
    let runner = runner().await;
    let (out, id) = run(
        &runner,
        "python",
        "import time\nprint('zz', flush=True)\ntime.sleep(3600)\n",
        "",
        limits(1.5),
    )
    .await;
    let exit = out.exit.unwrap();
    assert_eq!(
        (exit.stage, exit.limit_hit),
        (Stage::Run, Some(Limit::Time)),
        "{exit:?}"
    );
    assert!(
        exit.duration >= Duration::from_millis(1400) && exit.duration < Duration::from_secs(4),
        "{exit:?}"
    );
    assert_eq!(text(&out.stdout), "zz\n");
    assert_gone(&runner, &id).await;
}

#[tokio::test]
async fn a_process_ignoring_sigterm_is_still_killed_at_the_wall_limit() {
    let runner = runner().await;
    let src = "trap '' TERM INT HUP\necho armed\nwhile :; do sleep 1; done\n";
    let (out, id) = run(&runner, "bash", src, "", limits(1.5)).await;
    let exit = out.exit.unwrap();
    assert_eq!(exit.limit_hit, Some(Limit::Time), "{exit:?}");
    assert_eq!(exit.code, Some(137), "{exit:?}");
    assert!(exit.duration < Duration::from_secs(4), "{exit:?}");
    assert_gone(&runner, &id).await;
}

#[tokio::test]
async fn a_compiler_that_never_ends_is_killed_too() {
    let runner = runner().await;
    // Exponential template instantiation: g++ would run for a very long time.
    let src = "#define A(x) x x x x x x x x\n#define B(x) A(A(A(A(x))))\nint main(){ B(B(B(;))) }\n";
    let (out, id) = run(&runner, "c", src, "", limits(2.0)).await;
    let exit = out.exit.unwrap();
    assert_eq!(exit.stage, Stage::Compile, "{exit:?}");
    assert!(matches!(exit.limit_hit, Some(Limit::Time | Limit::Memory)), "{exit:?}");
    assert_gone(&runner, &id).await;
}

#[tokio::test]
async fn network_egress_fails() {
    let runner = runner().await;
    let src = r#"
import socket, os
for host, port in [("1.1.1.1", 53), ("8.8.8.8", 443), ("deb.debian.org", 80)]:
    try:
        socket.create_connection((host, port), timeout=2)
        print("CONNECTED", host)
    except OSError as e:
        print("blocked", host)
print(sorted(os.listdir("/sys/class/net")))
"#;
    let (out, id) = run(&runner, "python", src, "", limits(10.0)).await;
    assert!(
        out.exit.as_ref().unwrap().is_success(),
        "{:?} {}",
        out.exit,
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("CONNECTED"), "{stdout}");
    assert_eq!(stdout.matches("blocked").count(), 3, "{stdout}");
    assert!(stdout.contains("['lo']"), "only loopback: {stdout}");
    assert_gone(&runner, &id).await;
}

#[tokio::test]
async fn host_files_and_the_docker_socket_are_not_there() {
    let runner = runner().await;
    let src = r#"
import os
for p in ["/var/run/docker.sock", "/run/docker.sock", "/host", "/root/.cargo", "/work/../var/lib/docker"]:
    print(p, os.path.exists(p))
for p in ["/etc/shadow", "/proc/1/root/etc/shadow", "/proc/kcore"]:
    try:
        open(p, "rb").read(1)
        print(p, "READABLE")
    except OSError:
        print(p, "denied")
print("uid", os.getuid(), os.getgid())
caps = [l for l in open("/proc/self/status") if l.startswith(("CapEff", "CapBnd", "NoNewPrivs"))]
print("".join(caps), end="")
"#;
    let (out, id) = run(&runner, "python", src, "", limits(10.0)).await;
    assert!(
        out.exit.as_ref().unwrap().is_success(),
        "{:?} {}",
        out.exit,
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("True"), "{stdout}");
    assert!(!stdout.contains("READABLE"), "{stdout}");
    assert!(stdout.contains("uid 10001 10001"), "{stdout}");
    assert!(stdout.contains("CapEff:\t0000000000000000"), "{stdout}");
    assert!(stdout.contains("CapBnd:\t0000000000000000"), "{stdout}");
    assert!(stdout.contains("NoNewPrivs:\t1"), "{stdout}");
    assert_gone(&runner, &id).await;
}

#[tokio::test]
async fn writing_outside_the_work_dir_fails() {
    let runner = runner().await;
    let src = r#"
for p in ["/etc/evil", "/usr/bin/evil", "/evil", "/home/evil", "/var/tmp/evil", "/work/ok", "/tmp/ok"]:
    try:
        with open(p, "w") as f:
            f.write("x")
        print(p, "WROTE")
    except OSError as e:
        print(p, "refused", e.strerror)
"#;
    let (out, id) = run(&runner, "python", src, "", limits(10.0)).await;
    assert!(
        out.exit.as_ref().unwrap().is_success(),
        "{:?} {}",
        out.exit,
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    for p in ["/etc/evil", "/usr/bin/evil", "/evil", "/home/evil", "/var/tmp/evil"] {
        assert!(stdout.contains(&format!("{p} refused")), "{p}: {stdout}");
    }
    assert!(stdout.contains("/etc/evil refused Read-only file system"), "{stdout}");
    assert!(
        stdout.contains("/work/ok WROTE") && stdout.contains("/tmp/ok WROTE"),
        "{stdout}"
    );
    assert_gone(&runner, &id).await;
}

#[tokio::test]
async fn disk_fill_stops_at_the_work_dir_size() {
    let runner = runner().await;
    let src = "dd if=/dev/zero of=/work/fill bs=1M count=1000\nstat -c 'size %s' /work/fill\n";
    let (out, id) = run(&runner, "bash", src, "", limits(20.0)).await;
    let exit = out.exit.unwrap();
    // Either the tmpfs is full (ENOSPC) or the memory limit struck first; never the host disk.
    assert!(matches!(exit.limit_hit, None | Some(Limit::Memory)), "{exit:?}");
    if exit.limit_hit.is_none() {
        assert!(text(&out.stderr).contains("No space left"), "{}", text(&out.stderr));
        let size: u64 = text(&out.stdout).trim().strip_prefix("size ").unwrap().parse().unwrap();
        assert!((60 << 20..=64 << 20).contains(&size), "{size}");
    }
    assert_gone(&runner, &id).await;
}

#[tokio::test]
async fn dropping_a_run_removes_its_container() {
    let runner = runner().await;
    let job = mesh_runner::Job::new(
        "python",
        vec![mesh_runner::JobFile::new("main.py", "import time\ntime.sleep(60)\n")],
    );
    let run = runner.run(job).await.unwrap();
    let id = run.container_id().to_owned();
    drop(run);
    // Removal is asynchronous after a drop; it must happen promptly.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while runner.docker().inspect_container(&id, None).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "container {id} survived its run being dropped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
