//! mfa-exec when something goes wrong around it: killed by a signal that dumps core while it
//! holds a long-term secret, and run with a stdout that takes nothing (closed, a pipe whose
//! reader is gone, a full disk). Nothing may be left where it can be read, and a caller must be
//! able to tell that nothing was delivered.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use support::env::*;

/// Waits up to `patience` for a file named `core` or `core.*` in `dir`.
fn core_file(dir: &Path, patience: Duration) -> Option<std::path::PathBuf> {
    let deadline = Instant::now() + patience;
    loop {
        let found = std::fs::read_dir(dir).unwrap().flatten().find(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name == "core" || name.starts_with("core.")
        });
        if let Some(entry) = found {
            return Some(entry.path());
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `bash -c 'ulimit -c unlimited; exec …'` in `dir`, stdout piped.
fn with_unlimited_cores(env: &TestEnv, dir: &Path, script: &str, args: &[&str]) -> Child {
    env.command("bash")
        .current_dir(dir)
        .arg("-c")
        .arg(format!("ulimit -c unlimited && {script}"))
        .arg("bash")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_core_dumping_signal_leaves_no_core_while_the_command_keeps_the_users_limit() {
    let Some(_) = require_tool("bash", &["bash"]) else {
        return;
    };
    let env = TestEnv::new();
    let dir = env.dir.path().join("cores");
    std::fs::create_dir(&dir).unwrap();

    // First, that a core dump lands here at all: a plain process killed by SIGQUIT.
    let mut control = with_unlimited_cores(&env, &dir, "exec sleep 30", &[]);
    std::thread::sleep(Duration::from_millis(200));
    kill(Pid::from_raw(control.id() as i32), Signal::SIGQUIT).unwrap();
    let status = control.wait().unwrap();
    let Some(core) = core_file(&dir, Duration::from_secs(5)) else {
        skipped(&format!(
            "core dumps do not land in the working directory here (core_pattern {:?}, {status:?})",
            std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default()
        ));
        return;
    };
    std::fs::remove_file(core).unwrap();

    // `mfa-exec --server` holding alice's long-term secret and a session; its command reports
    // the core limit it got and its pid.
    let code = env.alice_code();
    let serve = |code: Option<&str>| {
        let mut args = vec![TestEnv::bin(), "--server", "-p", "alice"];
        if let Some(code) = code {
            args.extend(["-t", code]);
        }
        args.extend(["--", "sh", "-c", "ulimit -c; echo $$; exec sleep 30"]);
        let mut served = with_unlimited_cores(&env, &dir, r#"exec "$@""#, &args);
        let mut lines = BufReader::new(served.stdout.take().unwrap()).lines();
        let limit = lines.next().unwrap().unwrap();
        let command_pid: i32 = lines.next().unwrap().unwrap().parse().unwrap();
        assert_eq!(limit, "unlimited", "the command's core limit is the user's");
        (served, command_pid)
    };

    // The command is as dumpable as ever: its own SIGQUIT leaves its core, and mfa-exec ends
    // as shells report a command killed by a signal.
    let (mut served, command_pid) = serve(Some(&code));
    kill(Pid::from_raw(command_pid), Signal::SIGQUIT).unwrap();
    let core = core_file(&dir, Duration::from_secs(5)).expect("the command's core");
    assert!(
        !std::fs::read(&core)
            .unwrap()
            .windows(ALICE_SECRET.len())
            .any(|w| w == ALICE_SECRET.as_bytes()),
        "the command never held alice's long-term secret"
    );
    std::fs::remove_file(core).unwrap();
    let status = served.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGQUIT), "{status:?}");

    // mfa-exec itself, killed by SIGQUIT, leaves no core (and takes its command with it: see
    // tests/server.rs, a_command_dies_with_mfa_exec_when_mfa_exec_is_killed_with_sigkill).
    let (mut served, _) = serve(None);
    kill(Pid::from_raw(served.id() as i32), Signal::SIGQUIT).unwrap();
    let status = served.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGQUIT), "{status:?}");
    assert!(!status.core_dumped(), "mfa-exec dumped core");
    assert_eq!(core_file(&dir, Duration::from_secs(1)), None);

    // exec mode: the command gets exactly the limit mfa-exec was given (bash on both sides:
    // dash counts in 512-byte blocks).
    let out = env
        .command("bash")
        .arg("-c")
        .arg(r#"ulimit -c 1234 && exec "$@""#)
        .arg("bash")
        .args([
            TestEnv::bin(),
            "-p",
            "alice",
            "--",
            "bash",
            "-c",
            "ulimit -c",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let run = Run::from(out);
    run.success();
    assert_eq!(run.stdout, "1234\n");
}

/// `mfa-exec ARGS` with stdout closed (`>&-`), through sh.
fn with_stdout_closed(env: &TestEnv, args: &[&str]) -> Run {
    let out = env
        .command("sh")
        .arg("-c")
        .arg(r#"exec "$@" >&-"#)
        .arg("sh")
        .arg(TestEnv::bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run::from(out)
}

#[test]
fn output_that_reaches_nobody_is_a_failure_a_caller_can_see() {
    let env = TestEnv::new();
    // Closed: refused before the work, so no code is spent on output that cannot go anywhere.
    for args in [
        vec!["--print-env", "-p", "alice", "-t", "123456"],
        vec!["--credential-process", "-p", "alice", "-t", "123456"],
    ] {
        with_stdout_closed(&env, &args)
            .fails(125, &["stdout is closed", "give it a pipe or a file"]);
    }
    assert_eq!(env.sts.total_calls(), 0);

    // A session in the cache for the runs below; `>/dev/null` is asking for no output, which
    // stays allowed (warming the cache).
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let out = env
        .mfa_exec(["--print-env", "-p", "alice", "-t", &env.alice_code()])
        .stdout(null)
        .output()
        .unwrap();
    Run::from(out).success();

    // A pipe whose reader is gone: silent, 141 as for `cat`.
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    let out = env
        .mfa_exec(["--print-env", "-p", "alice"])
        .stdout(Stdio::from(writer))
        .output()
        .unwrap();
    let run = Run::from(out);
    assert_eq!(run.status, Some(141), "{}", run.stderr);
    assert_eq!(run.stderr, "");

    // A full disk: one line with the OS's reason.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = env
        .mfa_exec(["--credential-process", "-p", "alice"])
        .stdout(full)
        .output()
        .unwrap();
    let run = Run::from(out);
    run.fails(125, &["cannot write to stdout (No space left on device)"]);
    assert!(!run.stderr.contains("os error"), "{}", run.stderr);

    // A list is the product too.
    with_stdout_closed(&env, &["cache", "list"]).fails(125, &["stdout is closed"]);
    env.run(["cache", "list"]).success().prints("alice");
    assert_eq!(env.sts.total_calls(), 1);
}
