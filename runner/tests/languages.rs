//! Hello world and stdin echo per language, compile errors, and the runner's own errors,
//! against real Docker with the local images.

mod common;

use common::*;
use mesh_runner::{Error, Job, JobFile, LimitsOverride, Stage};

/// Hello + echo of stdin, per language. Python and C are required (CI builds them); the
/// others run when their image has been built.
const PROGRAMS: &[(&str, bool, &str)] = &[
    ("python", true, "import sys\nprint('hello')\nprint(sys.stdin.read().upper(), end='')\n"),
    (
        "c",
        true,
        "#include <stdio.h>\n#include <ctype.h>\nint main(void){puts(\"hello\");int c;while((c=getchar())!=EOF)putchar(toupper(c));return 0;}\n",
    ),
    (
        "cpp",
        false,
        "#include <iostream>\n#include <cctype>\nint main(){std::cout<<\"hello\\n\";char c;while(std::cin.get(c))std::cout<<(char)std::toupper(c);}\n",
    ),
    (
        "javascript",
        false,
        "console.log('hello');\nprocess.stdout.write(require('fs').readFileSync(0,'utf8').toUpperCase());\n",
    ),
    ("bash", false, "echo hello\ntr a-z A-Z\n"),
    (
        "go",
        false,
        "package main\nimport (\"fmt\";\"io\";\"os\";\"strings\")\nfunc main(){fmt.Println(\"hello\");b,_:=io.ReadAll(os.Stdin);fmt.Print(strings.ToUpper(string(b)))}\n",
    ),
    (
        "rust",
        false,
        "use std::io::Read;\nfn main(){println!(\"hello\");let mut s=String::new();std::io::stdin().read_to_string(&mut s).unwrap();print!(\"{}\",s.to_uppercase());}\n",
    ),
    (
        "java",
        false,
        "public class Main{public static void main(String[] a)throws Exception{System.out.println(\"hello\");System.out.print(new String(System.in.readAllBytes()).toUpperCase());}}\n",
    ),
];

#[tokio::test]
async fn hello_and_stdin_echo() {
    let runner = runner().await;
    let mut ran = Vec::new();
    // In CI (scripts/test builds every image) every language must run.
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    for &(lang, required, source) in PROGRAMS {
        if !(required || ci || has_image(&runner, lang).await) {
            eprintln!("{lang}: image not built, not run (scripts/build-images {lang})");
            continue;
        }
        let started = std::time::Instant::now();
        let (out, id) = run(
            &runner,
            lang,
            source,
            "some input\nline two\n",
            LimitsOverride::default(),
        )
        .await;
        let exit = out.exit.clone().unwrap_or_else(|e| panic!("{lang}: {e}"));
        assert!(
            exit.is_success(),
            "{lang}: {exit:?}\ncompile: {}\nstderr: {}",
            text(&out.compile),
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), "hello\nSOME INPUT\nLINE TWO\n", "{lang}");
        assert_gone(&runner, &id).await;
        eprintln!("{lang}: ok in {:?}", started.elapsed());
        ran.push(lang);
    }
    assert!(ran.contains(&"python") && ran.contains(&"c"));
}

#[tokio::test]
async fn live_stdin_from_a_channel() {
    let runner = runner().await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let job = Job::new(
        "python",
        vec![JobFile::new("main.py", "name = input()\nprint('hi ' + name)\n")],
    )
    .stdin(mesh_runner::Stdin::Channel(rx));
    let mut run = runner.run(job).await.unwrap();
    // The program waits for a line; it gets it only now.
    tx.send("Ada\n".into()).await.unwrap();
    let mut stdout = Vec::new();
    while let Some(ev) = run.next_event().await {
        match ev {
            mesh_runner::RunEvent::Stdout(b) => stdout.extend_from_slice(&b),
            mesh_runner::RunEvent::Exited(exit) => assert!(exit.is_success(), "{exit:?}"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(text(&stdout), "hi Ada\n");
}

/// A broken program in each compiled language: the compiler's message, stage `Compile`.
const BROKEN: &[(&str, bool, &str, &str)] = &[
    ("c", true, "int main(void) { return nope; }\n", "nope"),
    ("cpp", false, "int main() { return nope; }\n", "nope"),
    ("go", false, "package main\nfunc main() { nope() }\n", "nope"),
    ("rust", false, "fn main() { nope(); }\n", "nope"),
    (
        "java",
        false,
        "public class Main { public static void main(String[] a) { nope(); } }\n",
        "nope",
    ),
];

#[tokio::test]
async fn compile_errors_are_reported_as_such() {
    let runner = runner().await;
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    for &(lang, required, source, needle) in BROKEN {
        if !(required || ci || has_image(&runner, lang).await) {
            eprintln!("{lang}: image not built, not run (scripts/build-images {lang})");
            continue;
        }
        let (out, id) = run(&runner, lang, source, "", LimitsOverride::default()).await;
        let exit = out.exit.unwrap();
        assert!(exit.is_compile_error(), "{lang}: {exit:?}");
        assert_eq!(exit.stage, Stage::Compile);
        assert_ne!(exit.code, Some(0));
        assert!(
            text(&out.compile).contains(needle),
            "{lang} compiler output: {}",
            text(&out.compile)
        );
        assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{lang}");
        assert_gone(&runner, &id).await;
    }
}

#[tokio::test]
async fn a_failing_program_reports_its_exit_code_and_stderr() {
    let runner = runner().await;
    let src = "import sys\nprint('oops', file=sys.stderr)\nsys.exit(3)\n";
    let (out, _) = run(&runner, "python", src, "", LimitsOverride::default()).await;
    let exit = out.exit.unwrap();
    assert_eq!((exit.stage, exit.code, exit.limit_hit), (Stage::Run, Some(3), None));
    assert_eq!(text(&out.stderr), "oops\n");
}

#[tokio::test]
async fn several_files_in_folders() {
    let runner = runner().await;
    let files = vec![
        JobFile::new("main.py", "from pkg.util import twice\nprint(twice(21))\n"),
        JobFile::new("pkg/__init__.py", ""),
        JobFile::new("pkg/util.py", "def twice(x):\n    return 2 * x\n"),
    ];
    let out = runner.run(Job::new("python", files)).await.unwrap().collect().await;
    assert!(
        out.exit.as_ref().unwrap().is_success(),
        "{:?} {}",
        out.exit,
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "42\n");
}

#[tokio::test]
async fn bad_jobs_are_refused_before_any_container_exists() {
    let runner = runner().await;
    let cases = [
        Job::new("python", vec![JobFile::new("../main.py", "")]),
        Job::new("python", vec![JobFile::new("/etc/main.py", "")]),
        Job::new("python", vec![JobFile::new("other.py", "")]),
        Job::new("cobol", vec![JobFile::new("main.cob", "")]),
    ];
    for job in cases {
        let err = runner.run(job).await.err().expect("refused");
        assert!(
            matches!(err, Error::BadFile { .. } | Error::UnknownLanguage(_)),
            "unexpected error: {err}"
        );
    }
}

#[tokio::test]
async fn unreachable_docker_is_a_clear_error() {
    // No socket at all, and a path that exists but where nothing listens.
    let not_a_socket = std::env::temp_dir().join(format!("mesh-runner-not-docker-{}", std::process::id()));
    std::fs::write(&not_a_socket, b"").unwrap();
    for host in [
        "unix:///nonexistent/docker.sock".to_owned(),
        format!("unix://{}", not_a_socket.display()),
    ] {
        let registry = mesh_runner::Registry::builtin().unwrap();
        let err = mesh_runner::Runner::connect_to(&host, registry, mesh_runner::ImageSource::Local)
            .await
            .err()
            .expect("must fail");
        assert!(matches!(err, Error::DockerUnreachable(_)), "{host}: {err}");
        assert!(err.to_string().contains("scripts/install-docker"), "{err}");
    }
    std::fs::remove_file(not_a_socket).unwrap();
}
