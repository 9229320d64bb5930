//! `mfa-exec history`: every run, in every mode, leaves one line in
//! `$XDG_STATE_HOME/mfa-exec/history.jsonl` (here the test home's `~/.local/state`), which
//! `history` shows as a table or JSON. The stories: what a run records (and never: a secret,
//! an argument), the filters, privacy, a history that cannot be written, parallel runs, the
//! bound, and the opt-out that restores the plain exec.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;
use support::env::*;

fn state_dir(env: &TestEnv) -> PathBuf {
    env.home().join(".local/state/mfa-exec")
}

fn history_file(env: &TestEnv) -> PathBuf {
    state_dir(env).join("history.jsonl")
}

/// `history --json ARGS`, parsed: the runs, oldest first.
#[track_caller]
fn history_json(env: &TestEnv, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["history", "--json"];
    all.extend_from_slice(args);
    let run = env.run(all);
    run.success();
    let value: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("history --json is JSON: {e}\n{}", run.stdout));
    value.as_array().expect("a JSON array").clone()
}

/// Every line of the history file, each parsed on its own.
#[track_caller]
fn lines(env: &TestEnv) -> Vec<Value> {
    std::fs::read_to_string(history_file(env))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a whole line: {e}: {l}")))
        .collect()
}

#[test]
fn each_mode_records_its_profile_role_credentials_command_status_and_duration() {
    let env = TestEnv::new();
    // Exec, with a code: the command's own status and how long it ran; its arguments are
    // not kept.
    let run = env.run([
        "-p",
        "s3-reader",
        "-t",
        &env.alice_code(),
        "--",
        "/bin/sh",
        "-c",
        "sleep 0.3; exit 7",
    ]);
    assert_eq!(run.status, Some(7), "{}", run.stderr);
    // Exec from the cache, the command killed by SIGTERM: mfa-exec ends by that signal too,
    // as it did when it exec'd, and the history says 143.
    let killed = env
        .mfa_exec(["-p", "s3-reader", "--", "sh", "-c", "kill -TERM $$"])
        .output()
        .unwrap();
    assert_eq!(killed.status.signal(), Some(15), "{killed:?}");
    // --print-env of alice's MFA session: the one s3-reader was assumed from, cached (the code
    // given is not needed), and --credential-process.
    env.run(["-p", "alice", "-t", &env.alice_code(), "--print-env"])
        .success();
    env.run(["-p", "s3-reader", "--credential-process"])
        .success();
    // --server and the console.
    let served = env.run(["--server", "-p", "s3-reader", "--", "sh", "-c", "exit 5"]);
    assert_eq!(served.status, Some(5), "{}", served.stderr);
    env.run(["console", "-p", "s3-reader", "--print-url"])
        .success();

    let runs = history_json(&env, &[]);
    let field = |i: usize, name: &str| runs[i][name].clone();
    let summary: Vec<(String, String, String, String, i64)> = runs
        .iter()
        .map(|r| {
            (
                r["mode"].as_str().unwrap().to_string(),
                r["profile"].as_str().unwrap().to_string(),
                r["credentials"].as_str().unwrap().to_string(),
                r["command"].as_str().unwrap_or("-").to_string(),
                r["status"].as_i64().unwrap(),
            )
        })
        .collect();
    let expect = |m: &str, p: &str, c: &str, cmd: &str, s: i64| {
        (
            m.to_string(),
            p.to_string(),
            c.to_string(),
            cmd.to_string(),
            s,
        )
    };
    assert_eq!(
        summary,
        [
            expect("exec", "s3-reader", "code", "sh", 7),
            expect("exec", "s3-reader", "cache", "sh", 143),
            expect("print-env", "alice", "cache", "-", 0),
            expect("credential-process", "s3-reader", "cache", "-", 0),
            expect("server", "s3-reader", "cache", "sh", 5),
            expect("console", "s3-reader", "cache", "-", 0),
        ]
    );
    // The role acted as; for a user's MFA session, the user's device.
    assert_eq!(field(0, "arn"), role_arn("s3-reader").as_str());
    assert_eq!(field(2, "arn"), ALICE_SERIAL);
    assert_eq!(field(1, "signal"), 15);
    assert!(field(0, "duration_ms").as_u64().unwrap() >= 300, "{runs:?}");
    assert!(field(0, "start").as_str().unwrap().ends_with('Z'));
    assert_eq!(field(0, "ended"), true);
    assert_eq!(field(0, "requests"), serde_json::json!([]));
    // Only argv[0]'s file name: never the directory, never an argument.
    let text = std::fs::read_to_string(history_file(&env)).unwrap();
    assert!(
        !text.contains("/bin/sh") && !text.contains("sleep 0.3"),
        "{text}"
    );
}

#[test]
fn a_failed_run_is_recorded_with_its_status_and_no_message() {
    let env = TestEnv::new();
    env.run(["-p", "nosuch", "--", "true"])
        .fails(125, &["profile 'nosuch'"]);
    env.run(["-p", "s3-reader", "--", "no-such-command-here"])
        .fails(125, &[]);
    let runs = history_json(&env, &[]);
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0]["status"], 125);
    assert_eq!(runs[0]["profile"], "nosuch");
    assert_eq!(runs[0]["credentials"], Value::Null);
    // No -p: the profile the one rule chose; a name that is not one is not kept.
    env.run(["--", "true"]).fails(125, &["profile 'default'"]);
    env.run(["-p", "bad name!", "--", "true"])
        .fails(125, &["not a profile name"]);
    let runs = history_json(&env, &[]);
    assert_eq!(runs.len(), 4, "{runs:?}");
    assert_eq!(runs[2]["profile"], "default");
    assert_eq!(runs[3]["profile"], Value::Null);
    assert_eq!(runs[3]["status"], 125);
    // A usage mistake touched nothing and is not a run.
    env.run(["--print-env", "--", "true"]).fails(125, &[]);
    assert_eq!(history_json(&env, &[]).len(), 4);
}

#[test]
fn a_command_that_is_not_found_is_recorded_with_127() {
    let env = TestEnv::new();
    let run = env.run([
        "-p",
        "s3-reader",
        "-t",
        &env.alice_code(),
        "--",
        "no-such-command-here",
    ]);
    run.fails(127, &["command not found"]);
    let runs = history_json(&env, &[]);
    assert_eq!(runs[0]["status"], 127);
    assert_eq!(runs[0]["credentials"], "code");
    assert_eq!(runs[0]["command"], "no-such-command-here");
}

#[test]
fn since_and_profile_narrow_the_history_and_the_table_reads_as_columns() {
    let env = TestEnv::new();
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    // The role, assumed from alice's cached MFA session: STS called, no code.
    let run = env.run(["-p", "s3-reader", "--", "sh", "-c", "exit 7"]);
    assert_eq!(run.status, Some(7), "{}", run.stderr);
    // A run from two days ago, as an older mfa-exec run would have left it.
    let two_days_ago = (unix_now() - 2 * 86_400) * 1000;
    let old = format!(
        "{{\"type\":\"run\",\"id\":\"1-{two_days_ago}\",\"start_ms\":{two_days_ago},\"profile\":\"auditor\",\"arn\":\"{}\",\"mode\":\"exec\",\"credentials\":\"code\",\"command\":\"terraform\",\"status\":0,\"duration_ms\":61000}}\n",
        role_arn("auditor")
    );
    let mut text = std::fs::read_to_string(history_file(&env)).unwrap();
    text.insert_str(0, &old);
    std::fs::write(history_file(&env), text).unwrap();

    let profiles = |runs: Vec<Value>| -> Vec<String> {
        runs.iter()
            .map(|r| r["profile"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        profiles(history_json(&env, &[])),
        ["auditor", "alice", "s3-reader"]
    );
    assert_eq!(
        profiles(history_json(&env, &["--since", "1h"])),
        ["alice", "s3-reader"]
    );
    let yesterday = env.run(["history", "--since", "1d", "-p", "auditor"]);
    yesterday.success();
    assert_eq!(yesterday.stdout, "", "no match: nothing on stdout");
    assert_eq!(
        profiles(history_json(
            &env,
            &["--since", "2020-01-01T00:00:00Z", "-p", "auditor"]
        )),
        ["auditor"]
    );
    env.run(["history", "--since", "last tuesday"])
        .fails_in_one_line(125, &["--since 'last tuesday'", "RFC 3339"]);
    env.run(["history", "-p", "bad name!"])
        .fails_in_one_line(125, &["not a profile name"]);

    // The table: a header, one row a run, oldest first, the ARN shortened.
    let table = env.run(["history"]);
    table.success();
    let rows: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(rows.len(), 4, "{}", table.stdout);
    for column in [
        "TIME",
        "PROFILE",
        "ACTED AS",
        "MODE",
        "CREDENTIALS",
        "COMMAND",
        "STATUS",
        "DURATION",
    ] {
        assert!(rows[0].contains(column), "{}", rows[0]);
    }
    let words = |row: &str| row.split_whitespace().map(String::from).collect::<Vec<_>>();
    // Date and time (two words), then the columns.
    assert_eq!(
        words(rows[1])[2..],
        [
            "auditor",
            "123456789012:role/auditor",
            "exec",
            "code",
            "terraform",
            "0",
            "1m01s"
        ]
    );
    assert_eq!(
        words(rows[3])[2..8],
        [
            "s3-reader",
            "123456789012:role/s3-reader",
            "exec",
            "sts",
            "sh",
            "7"
        ]
    );
}

#[test]
fn the_history_is_private_and_holds_no_key_token_code_or_argument() {
    let env = TestEnv::new();
    let code = env.alice_code();
    env.run([
        "-p",
        "s3-reader",
        "-t",
        &code,
        "--",
        "sh",
        "-c",
        "exit 0",
        "--password=hunter2",
    ])
    .success();
    let printed = env.run(["-p", "s3-reader", "--credential-process"]);
    printed.success();
    let creds: Value = serde_json::from_str(&printed.stdout).unwrap();
    let shell = env.run(["-p", "alice", "--print-env"]);
    shell.success();

    let dir = state_dir(&env);
    let mode = |p: &PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&history_file(&env)), 0o600);
    let mut secrets = vec![
        ALICE_KEY.to_string(),
        ALICE_SECRET.to_string(),
        code.clone(),
        "hunter2".to_string(),
    ];
    for name in ["AccessKeyId", "SecretAccessKey", "SessionToken"] {
        secrets.push(creds[name].as_str().unwrap().to_string());
    }
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{secret} in {text}");
        }
    }
    assert_eq!(lines(&env).len(), 3);

    // Opened up by someone: closed again by the next run.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(history_file(&env), std::fs::Permissions::from_mode(0o644)).unwrap();
    env.run(["-p", "s3-reader", "--", "true"]).success();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&history_file(&env)), 0o600);
}

#[test]
fn a_history_that_cannot_be_written_never_fails_the_run() {
    let mut env = TestEnv::new();
    env.run(["-p", "s3-reader", "-t", &env.alice_code(), "--", "true"])
        .success();
    // The state "directory" is a file: nothing can be made there, not even by root.
    let blocked = env.dir.path().join("not-a-directory");
    std::fs::write(&blocked, "").unwrap();
    env.set("XDG_STATE_HOME", blocked.to_str().unwrap());
    let run = env.run(["-p", "s3-reader", "--", "sh", "-c", "echo out; exit 3"]);
    assert_eq!(run.status, Some(3), "{}", run.stderr);
    assert_eq!(run.stdout, "out\n");
    let warnings: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(warnings[0].contains("not in the history"), "{}", run.stderr);
    assert!(
        warnings[0].contains("MFA_EXEC_HISTORY=off"),
        "{}",
        run.stderr
    );
    // --print-env's stdout stays shell code only.
    let printed = env.run(["-p", "s3-reader", "--print-env"]);
    printed.success();
    assert!(printed.stdout.starts_with("export "), "{}", printed.stdout);

    // A read-only state directory (root writes through the mode bits, so only when not root).
    if !nix::unistd::geteuid().is_root() {
        let readonly = env.dir.path().join("readonly");
        std::fs::create_dir_all(readonly.join("mfa-exec")).unwrap();
        std::fs::set_permissions(
            readonly.join("mfa-exec"),
            std::fs::Permissions::from_mode(0o500),
        )
        .unwrap();
        env.set("XDG_STATE_HOME", readonly.to_str().unwrap());
        let run = env.run(["-p", "s3-reader", "--", "sh", "-c", "exit 4"]);
        assert_eq!(run.status, Some(4), "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
}

#[test]
fn twenty_parallel_runs_each_append_one_whole_line() {
    let env = TestEnv::new();
    env.run(["-p", "s3-reader", "-t", &env.alice_code(), "--", "true"])
        .success();
    let children: Vec<_> = (0..20)
        .map(|i| {
            env.mfa_exec(["-p", "s3-reader", "--", "sh", "-c", &format!("exit {i}")])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(i as i32), "{out:?}");
    }
    let lines = lines(&env);
    assert_eq!(lines.len(), 21);
    let mut statuses: Vec<i64> = lines[1..]
        .iter()
        .map(|l| l["status"].as_i64().unwrap())
        .collect();
    statuses.sort();
    assert_eq!(statuses, (0..20).collect::<Vec<i64>>());
}

#[test]
fn the_history_keeps_to_its_bound_dropping_the_oldest_runs() {
    let mut env = TestEnv::new();
    env.set("MFA_EXEC_HISTORY_MAX", "4096");
    env.run(["-p", "s3-reader", "-t", &env.alice_code(), "--", "true"])
        .success();
    // About 250 bytes a run: 60 runs are 15 KB.
    for i in 0..60 {
        let run = env.run([
            "-p",
            "s3-reader",
            "--",
            "sh",
            "-c",
            &format!("exit {}", i % 100 + 100),
        ]);
        assert_eq!(run.status, Some(i % 100 + 100), "{}", run.stderr);
        assert_eq!(run.stderr, "", "no warning");
        let size = std::fs::metadata(history_file(&env)).unwrap().len();
        assert!(size <= 4096, "{size} bytes after run {i}");
    }
    // Whole lines only, the newest kept, the oldest gone.
    let lines = lines(&env);
    assert!(lines.len() >= 8, "{}", lines.len());
    assert_eq!(lines.last().unwrap()["status"], 159);
    assert!(lines.iter().all(|l| l["status"] != 0));
    // No temporary file left beside it.
    let names: Vec<String> = std::fs::read_dir(state_dir(&env))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["history.jsonl"]);
}

#[test]
fn a_missing_or_damaged_history_is_read_without_failing() {
    let env = TestEnv::new();
    let empty = env.run(["history"]);
    empty.success();
    assert_eq!(empty.stdout, "");
    assert_eq!(history_json(&env, &[]), Vec::<Value>::new());

    env.run(["-p", "s3-reader", "-t", &env.alice_code(), "--", "true"])
        .success();
    let mut text = std::fs::read_to_string(history_file(&env)).unwrap();
    text.push_str("{\"type\":\"run\",\"id\":\"cut short by a full di\n\u{0}\u{0}garbage\n");
    std::fs::write(history_file(&env), text).unwrap();
    env.run(["-p", "s3-reader", "--", "true"]).success();
    let read = env.run(["history", "--json"]);
    read.success();
    let runs: Value = serde_json::from_str(&read.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 2);
    assert_eq!(read.stderr.lines().count(), 1, "{}", read.stderr);
    assert!(
        read.stderr.contains("skipped 2 damaged lines"),
        "{}",
        read.stderr
    );
}

#[test]
fn with_history_off_exec_mode_replaces_itself_and_nothing_is_written() {
    let mut env = TestEnv::new();
    let pid_of_command = |env: &TestEnv| {
        let child = env
            .mfa_exec(["-p", "s3-reader", "--", "sh", "-c", "echo $$"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mfa_exec_pid = child.id();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let command_pid: u32 = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        (mfa_exec_pid, command_pid)
    };
    env.run(["-p", "s3-reader", "-t", &env.alice_code(), "--", "true"])
        .success();
    // Recording: mfa-exec stays the command's parent.
    let (parent, command) = pid_of_command(&env);
    assert_ne!(parent, command);
    std::fs::remove_dir_all(state_dir(&env)).unwrap();

    env.set("MFA_EXEC_HISTORY", "off");
    let (parent, command) = pid_of_command(&env);
    assert_eq!(parent, command, "exec'd: the command is mfa-exec's process");
    env.run(["-p", "s3-reader", "--print-env"]).success();
    assert!(!state_dir(&env).exists());
}
