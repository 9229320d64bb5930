//! The MFA code where there is no terminal: a process started as an IDE starts it (no
//! controlling terminal) asks in a desktop dialog. Real Xvfb, real zenity and kdialog from
//! Debian, xdotool to type into the dialog; stand-ins only for what cannot run here
//! (osascript) and for a YubiKey (ykman), besides the real ykman with no key attached.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::desktop::{finish_within, Desktop};
use support::env::*;
use support::pty::OnTerminal;

const TITLE: &str = "mfa-exec";
const LIMIT: Duration = Duration::from_secs(60);

/// The profile an IDE's SDK uses: mfa-exec as its credential_process.
fn ide_profile(env: &TestEnv) {
    env.write_config(&format!(
        "{}[profile ide]\ncredential_process = {} --credential-process --profile alice\n",
        demo_config_file(),
        TestEnv::bin()
    ));
}

#[test]
fn an_ide_without_a_terminal_gets_a_zenity_dialog_and_boto3_gets_the_identity() {
    let Some(desktop) = Desktop::with_dialog("zenity") else {
        return;
    };
    let Some(python) = python_with_boto3() else {
        return;
    };
    let env = TestEnv::new();
    ide_profile(&env);
    let script = format!(
        "import boto3\nsts = boto3.Session(profile_name='ide').client('sts', region_name='us-east-1', endpoint_url='{}')\nprint(sts.get_caller_identity()['Arn'])",
        env.sts.url()
    );
    let mut ide = desktop.spawn_detached(&env, &python, &["-c", &script]);

    let window = desktop.wait_for_window(&mut ide, TITLE);
    let argv = desktop.argv_of(&window);
    assert_eq!(argv[0], "zenity", "{argv:?}");
    assert!(argv.contains(&"--hide-text".to_string()), "{argv:?}");
    let text = argv.last().unwrap();
    assert!(
        text.contains("'alice'") && text.contains(ALICE_SERIAL),
        "{text}"
    );
    assert_eq!(env.sts.total_calls(), 0, "a call before the code was typed");
    // The README's screenshot (docs/dialog.png is a copy): the dialog as it shows.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("zenity-dialog.png");
    desktop.screenshot(&window, &shot);

    desktop.type_into(&window, &env.alice_code());
    let run = finish_within(ide, LIMIT);
    run.success().prints("arn:aws:");
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}

#[test]
fn ten_runs_at_once_without_a_terminal_show_one_dialog_and_all_get_credentials() {
    let Some(desktop) = Desktop::with_dialog("zenity") else {
        return;
    };
    let env = TestEnv::new();
    let mut runs: Vec<_> = (0..10)
        .map(|_| desktop.spawn_mfa_exec(&env, &["-p", "alice", "--credential-process"]))
        .collect();
    let window = desktop.wait_for_window(&mut runs[0], TITLE);
    // Give the other nine time to show a dialog of their own, if they were going to.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        desktop.windows(TITLE),
        std::slice::from_ref(&window),
        "more than one dialog"
    );
    desktop.type_into(&window, &env.alice_code());
    for run in runs {
        finish_within(run, LIMIT)
            .success()
            .prints("\"AccessKeyId\"");
    }
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    assert!(desktop.windows(TITLE).is_empty());
}

#[test]
fn cancel_is_one_line_without_a_call_and_nothing_is_cached() {
    let Some(desktop) = Desktop::with_dialog("zenity") else {
        return;
    };
    let env = TestEnv::new();
    let mut run = desktop.spawn_mfa_exec(&env, &["-p", "alice", "--", "true"]);
    let window = desktop.wait_for_window(&mut run, TITLE);
    desktop.press(&window, "Escape");
    let run = finish_within(run, LIMIT);
    run.fails_in_one_line(125, &["dialog was cancelled"]);
    assert_eq!(env.sts.total_calls(), 0);
    // Nothing cached: a run that may not ask finds nothing to use.
    env.run(["-p", "alice", "--no-prompt", "--", "true"])
        .fails(125, &["--no-prompt"]);
    assert_eq!(env.sts.total_calls(), 0);
}

#[test]
fn a_malformed_answer_is_asked_again_in_a_new_dialog() {
    let Some(desktop) = Desktop::with_dialog("zenity") else {
        return;
    };
    let env = TestEnv::new();
    let mut run = desktop.spawn_mfa_exec(&env, &["-p", "alice", "--", "true"]);
    let first = desktop.wait_for_window(&mut run, TITLE);
    desktop.type_into(&first, "12ab");
    // A new dialog, which says why it asks again.
    let second = desktop.wait_for_dialog(&mut run, TITLE, |argv| {
        argv.last()
            .is_some_and(|t| t.contains("not a 6-digit code"))
    });
    assert_eq!(env.sts.total_calls(), 0);
    desktop.type_into(&second, &env.alice_code());
    finish_within(run, LIMIT).success();
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}

#[test]
fn real_kdialog_asks_under_kde_and_its_noise_stays_out_of_stderr() {
    let Some(desktop) = Desktop::with_dialog("kdialog") else {
        return;
    };
    let mut env = TestEnv::new();
    env.set("XDG_CURRENT_DESKTOP", "KDE");
    let mut run = desktop.spawn_mfa_exec(&env, &["-p", "s3-reader", "--credential-process"]);
    let window = desktop.wait_for_window(&mut run, TITLE);
    let argv = desktop.argv_of(&window);
    assert_eq!(argv[0], "kdialog", "{argv:?}");
    assert!(argv.contains(&"--password".to_string()), "{argv:?}");
    assert!(argv.last().unwrap().contains("'s3-reader'"), "{argv:?}");
    desktop.type_into(&window, &env.alice_code());
    let run = finish_within(run, LIMIT);
    run.success();
    // kdialog complains about XDG_RUNTIME_DIR (Qt) on its stderr; none of it is the user's.
    assert_eq!(run.stderr, "", "the dialog's stderr leaked");
    assert_eq!(env.sts.calls("AssumeRole"), 1);
}

#[test]
fn a_dialog_that_cannot_open_says_why_in_one_line() {
    let Some(_) = require_tool("zenity", &["zenity"]) else {
        return;
    };
    let mut env = TestEnv::new();
    // A display nobody serves.
    env.set("DISPLAY", ":987");
    env.run(["-p", "alice", "--prompt", "zenity", "--", "true"])
        .fails(125, &["zenity failed", "cannot open display", "--prompt"]);
    assert_eq!(env.sts.total_calls(), 0);
}

#[test]
fn without_a_terminal_or_a_display_the_error_comes_at_once() {
    let Some(setsid) = require_tool("setsid (util-linux)", &["setsid"]) else {
        return;
    };
    let env = TestEnv::new();
    let started = Instant::now();
    let run = without_a_terminal(&env, &setsid, &["-p", "alice", "--credential-process"]);
    assert!(started.elapsed() < Duration::from_secs(2));
    run.fails_in_one_line(
        125,
        &[
            "no terminal to ask",
            "no desktop",
            "-t",
            "mfa_process",
            "--prompt",
            "mfa_prompt",
            "zenity",
        ],
    );
    assert_eq!(env.sts.total_calls(), 0);
}

/// A stand-in for a program that cannot run here: records its argv (one per line) in
/// `NAME.argv` and runs `body` (sh).
fn stand_in(env: &mut TestEnv, name: &str, body: &str) -> PathBuf {
    let bin = env.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let record = env.dir.path().join(format!("{name}.argv"));
    let script = bin.join(name);
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n{body}\n",
            record.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    env.set("PATH", &path);
    record
}

/// A stand-in for `name` that prints a code of alice's device, as an answered dialog or a
/// YubiKey does; returns where its argv is recorded.
fn answering_with_alices_code(env: &mut TestEnv, name: &str) -> PathBuf {
    let code = env.alice_code();
    stand_in(env, name, &format!("echo {code}"))
}

/// The demo config with `lines` added to alice's profile (after her `mfa_serial`).
fn alice_profile_with(env: &TestEnv, lines: &str) {
    env.write_config(&demo_config_file().replace(
        &format!("mfa_serial = {ALICE_SERIAL}\n"),
        &format!("mfa_serial = {ALICE_SERIAL}\n{lines}"),
    ));
}

/// `mfa-exec ARGS` in a session of its own (`setsid`), without a controlling terminal.
fn without_a_terminal(env: &TestEnv, setsid: &Path, args: &[&str]) -> Run {
    let out = env
        .command(setsid)
        .arg(TestEnv::bin())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    Run::from(out)
}

fn argv(record: &Path) -> Vec<String> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn osascript_is_asked_with_a_hidden_answer_and_cancel_is_one_line() {
    // There is no macOS here: a stand-in records the argv and answers as osascript does.
    let mut env = TestEnv::new();
    let record = answering_with_alices_code(&mut env, "osascript");
    env.run(["-p", "alice", "--prompt", "osascript", "--", "true"])
        .success();
    let args = argv(&record);
    assert_eq!(args[0], "-e");
    let script = &args[1];
    assert!(
        script.starts_with(
            "text returned of (display dialog \"Enter the MFA code for AWS profile 'alice'"
        ),
        "{script}"
    );
    assert!(script.contains(ALICE_SERIAL));
    assert!(
        script
            .ends_with("default answer \"\" with hidden answer with title \"mfa-exec: MFA code\")"),
        "{script}"
    );

    let mut env = TestEnv::new();
    stand_in(
        &mut env,
        "osascript",
        "echo '0:90: execution error: User canceled. (-128)' >&2; exit 1",
    );
    let run = env.run(["-p", "alice", "--prompt", "osascript", "--", "true"]);
    run.fails(125, &["dialog was cancelled"]);
    assert!(!run.stderr.contains("execution error"), "{}", run.stderr);
    assert_eq!(env.sts.total_calls(), 0);
}

#[test]
fn kdialog_stand_in_gets_the_documented_options() {
    let mut env = TestEnv::new();
    let code = env.alice_code();
    let record = stand_in(
        &mut env,
        "kdialog",
        &format!("echo 'kdialog noise' >&2; echo {code}"),
    );
    let run = env.run(["-p", "alice", "--prompt", "kdialog", "--", "true"]);
    run.success();
    assert!(!run.stderr.contains("noise"));
    let args = argv(&record);
    assert_eq!(&args[..3], ["--title", "mfa-exec: MFA code", "--password"]);
    assert!(args[3].contains("'alice'") && args[3].contains(ALICE_SERIAL));
}

#[test]
fn ykman_gives_the_code_for_the_serial_or_the_configured_account() {
    let mut env = TestEnv::new();
    let record = answering_with_alices_code(&mut env, "ykman");
    env.run(["-p", "alice", "--prompt", "ykman", "--", "true"])
        .success();
    assert_eq!(
        argv(&record),
        ["oath", "accounts", "code", "--single", ALICE_SERIAL]
    );

    // mfa_ykman_account and mfa_prompt on the source profile serve its roles; the device
    // from YKMAN_OATH_DEVICE_SERIAL.
    let mut env = TestEnv::new();
    alice_profile_with(&env, "mfa_prompt = ykman\nmfa_ykman_account = AWS alice\n");
    env.set("YKMAN_OATH_DEVICE_SERIAL", "7654321");
    let record = answering_with_alices_code(&mut env, "ykman");
    env.run(["-p", "s3-reader", "--", "true"]).success();
    assert_eq!(
        argv(&record),
        [
            "--device",
            "7654321",
            "oath",
            "accounts",
            "code",
            "--single",
            "AWS alice"
        ]
    );
}

#[test]
fn the_flag_beats_the_environment_which_beats_the_profile() {
    let mut env = TestEnv::new();
    alice_profile_with(&env, "mfa_prompt = kdialog\n");
    let ykman = answering_with_alices_code(&mut env, "ykman");
    let osascript = stand_in(&mut env, "osascript", "exit 3");
    let kdialog = stand_in(&mut env, "kdialog", "exit 3");
    env.set("MFA_EXEC_PROMPT", "osascript");
    env.run(["-p", "alice", "--prompt", "ykman", "--", "true"])
        .success();
    assert!(!argv(&ykman).is_empty());
    env.run(["-p", "alice", "--no-cache", "--", "true"])
        .fails(125, &["osascript failed"]);
    assert!(!argv(&osascript).is_empty() && argv(&kdialog).is_empty());
    env.set("MFA_EXEC_PROMPT", "nonsense");
    env.run(["-p", "alice", "--no-cache", "--", "true"]).fails(
        125,
        &[
            "MFA_EXEC_PROMPT",
            "auto, terminal, zenity, kdialog, osascript or ykman",
        ],
    );
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}

#[test]
fn ykman_failures_and_non_codes_are_one_line_and_never_sent() {
    let cases = [
        (
            "echo 'Error: No matching account found.' >&2; exit 1",
            "no OATH account named",
        ),
        (
            "echo 'Touch your YubiKey...' >&2; echo 'Error: Touch account timed out!' >&2; exit 1",
            "not touched in time",
        ),
        (
            "echo 'Error: Multiple matches, please make the query more specific.' >&2; exit 1",
            "several OATH accounts",
        ),
        ("echo 'Password:'; exit 0", "did not print a 6-digit code"),
    ];
    for (body, needle) in cases {
        let mut env = TestEnv::new();
        stand_in(&mut env, "ykman", body);
        let run = env.run(["-p", "alice", "--prompt", "ykman", "--", "true"]);
        run.fails_in_one_line(125, &[needle]);
        assert!(!run.stderr.contains("Password:"));
        assert_eq!(env.sts.total_calls(), 0);
    }
}

#[test]
fn ykman_asks_for_a_touch_on_the_terminal() {
    let mut env = TestEnv::new();
    let code = env.alice_code();
    stand_in(&mut env, "ykman", &format!("sleep 0.3; echo {code}"));
    let Some(mut term) =
        OnTerminal::start(&env, &["-p", "alice", "--prompt", "ykman", "--", "true"])
    else {
        return;
    };
    term.expect("Touch your YubiKey");
    let (status, _, screen) = term.finish();
    assert_eq!(status, Some(0), "terminal: {screen}");
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}

#[test]
fn the_real_ykman_without_a_yubikey_says_so_in_one_line() {
    let Some(_) = require_tool("ykman (Debian yubikey-manager)", &["ykman"]) else {
        return;
    };
    let env = TestEnv::new();
    let run = env.run(["-p", "alice", "--prompt", "ykman", "--", "true"]);
    run.fails_in_one_line(125, &["found no YubiKey", "insert it"]);
    assert_eq!(env.sts.total_calls(), 0);
}

#[test]
fn a_cache_hit_never_looks_for_a_dialog() {
    let env = TestEnv::new();
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    // No zenity can be found (PATH is empty of it) and nothing asks: the cache answers.
    let out = env
        .mfa_exec(["-p", "alice", "--prompt", "zenity", "--credential-process"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    Run::from(out).success();
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}

#[test]
fn without_a_terminal_ykman_asks_for_a_touch_through_notify_send() {
    let Some(setsid) = require_tool("setsid (util-linux)", &["setsid"]) else {
        return;
    };
    let mut env = TestEnv::new();
    answering_with_alices_code(&mut env, "ykman");
    let notified = stand_in(&mut env, "notify-send", "");
    without_a_terminal(
        &env,
        &setsid,
        &["-p", "alice", "--prompt", "ykman", "--credential-process"],
    )
    .success();
    // The notification is not waited for: give its process a moment.
    let started = Instant::now();
    while argv(&notified).is_empty() && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let args = argv(&notified);
    assert!(
        args.iter().any(|a| a.contains("Touch your YubiKey")),
        "{args:?}"
    );
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}
