//! Long-term keys in the OS keyring (`mfa-exec keys`), against a real Secret Service: Debian's
//! gnome-keyring on a private `dbus-daemon --session`, unlocked with a test password, with the
//! test's own HOME. Keys move out of a credentials file byte-exactly, sign MFA calls against the
//! strict stand-in, never reach the child, the cache or any file under HOME, and a cache hit
//! opens no D-Bus connection at all (strace says so). No keyring reachable, a locked one or a
//! bus that never answers: one line, exit 125, no STS call.

mod support;

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::env::*;
use support::files_under;
use support::pty::OnTerminal;
use support::secret_service::SecretService;

/// A credentials file a real user might have: comments, other profiles, alice's keys between
/// other settings.
fn busy_credentials_file() -> String {
    format!(
        "# Work accounts. Do not share.\n\
         [default]\n\
         region = us-east-1\n\
         \n\
         ; alice is the human\n\
         [alice]\n\
         aws_access_key_id = {ALICE_KEY}\n\
         # rotated in March\n\
         aws_secret_access_key = {ALICE_SECRET}\n\
         output = json\n\
         \n\
         [bob]\n\
         aws_access_key_id   =   {BOB_KEY}\n\
         aws_secret_access_key = {BOB_SECRET}\n\
         \n\
         [ci]\n\
         aws_access_key_id = AKIAXXXXXXXXXXXXXXXX\n\
         aws_secret_access_key = ci-secret-stays-in-the-file-0000000000\n\
         \n\
         [pasted]\n\
         aws_access_key_id = ASIAXXXXXXXXXXXXXXXX\n\
         aws_secret_access_key = temporary-secret-000000000000000000000\n\
         aws_session_token = FwoGZXIvYXdzEXAMPLE\n"
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn credentials_path(env: &TestEnv) -> PathBuf {
    env.home().join(".aws/credentials")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A test's HOME with its Secret Service, and alice's keys moved into the keyring from the
/// demo credentials file. None (skipped) when the tools are missing outside CI.
fn alice_in_the_keyring() -> Option<(TestEnv, SecretService)> {
    let mut env = TestEnv::new();
    let ss = SecretService::start(&mut env)?;
    env.run(["keys", "add", "-p", "alice", "--from-credentials-file"])
        .success();
    Some((env, ss))
}

#[test]
fn keys_move_out_of_a_busy_credentials_file_leaving_every_other_byte() {
    let mut env = TestEnv::new();
    let Some(_ss) = SecretService::start(&mut env) else {
        return;
    };
    env.write_credentials(&busy_credentials_file());

    let run = env.run(["keys", "add", "-p", "alice", "--from-credentials-file"]);
    run.success();
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains(ALICE_KEY), "{}", run.stderr);
    assert!(!run.stderr.contains(ALICE_SECRET));

    // Exactly the two key lines are gone; the comment between them, alice's other settings
    // and every other profile are as they were.
    let expected = busy_credentials_file()
        .replace(&format!("aws_access_key_id = {ALICE_KEY}\n"), "")
        .replace(&format!("aws_secret_access_key = {ALICE_SECRET}\n"), "");
    assert_eq!(read(&credentials_path(&env)), expected);

    // bob's keys, with their odd spacing, move too; his section held nothing else and the
    // config file defines him, so the section goes.
    env.run(["keys", "add", "-p", "bob", "--from-credentials-file"])
        .success();
    let expected = expected.replace(
        &format!(
            "[bob]\naws_access_key_id   =   {BOB_KEY}\naws_secret_access_key = {BOB_SECRET}\n\n"
        ),
        "",
    );
    assert_eq!(read(&credentials_path(&env)), expected);

    let list = env.run(["keys", "list"]);
    list.success();
    assert_eq!(
        list.stdout,
        format!(
            "PROFILE              ACCESS KEY ID            AGE\nalice                {ALICE_KEY}     unknown\nbob                  {BOB_KEY}     unknown\n"
        )
    );

    // Moving again: nothing left to move. Temporary keys are no long-term keys to keep. The
    // file is not touched by either.
    env.run(["keys", "add", "-p", "alice", "--from-credentials-file"])
        .fails(
            125,
            &["no aws_access_key_id", "[alice]", "keys add -p alice"],
        );
    env.run(["keys", "add", "-p", "pasted", "--from-credentials-file"])
        .fails(125, &["temporary keys", "aws_session_token"]);
    assert_eq!(read(&credentials_path(&env)), expected);
}

#[test]
fn an_mfa_call_is_signed_with_the_keyrings_keys_which_never_reach_the_child() {
    let Some((env, _ss)) = alice_in_the_keyring() else {
        return;
    };
    assert!(!read(&credentials_path(&env)).contains(ALICE_KEY));

    // The stand-in checks the SigV4 signature with alice's secret: only her real keys pass.
    let run = env.run(["-p", "alice", "-t", &env.alice_code(), "--", "env"]);
    run.success();
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    let child = run.env_lines();
    assert!(child["AWS_ACCESS_KEY_ID"].starts_with("ASIA"), "{child:?}");
    assert!(!run.stdout.contains(ALICE_SECRET) && !run.stdout.contains(ALICE_KEY));
    assert!(!run.stderr.contains(ALICE_SECRET));

    // A role whose source_profile is alice: the same session, no second code.
    let role = env.run(["-p", "s3-reader", "--", "env"]);
    role.success();
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    assert_eq!(env.sts.calls("AssumeRole"), 1);
    assert!(!role.stdout.contains(ALICE_SECRET));
}

#[test]
fn a_role_profile_that_is_its_own_source_takes_its_keys_from_the_keyring() {
    let mut env = TestEnv::new();
    let Some(_ss) = SecretService::start(&mut env) else {
        return;
    };
    // The AWS CLI's shape for "these keys assume that role": source_profile names itself.
    env.write_config(&format!(
        "{}[profile reader]\nrole_arn = {}\nsource_profile = reader\nmfa_serial = {ALICE_SERIAL}\n",
        demo_config_file(),
        role_arn("s3-reader")
    ));
    env.write_credentials(&format!(
        "[reader]\naws_access_key_id = {ALICE_KEY}\naws_secret_access_key = {ALICE_SECRET}\n"
    ));
    env.run(["keys", "add", "-p", "reader", "--from-credentials-file"])
        .success();
    // The config file still defines the profile, so the emptied section went.
    assert_eq!(read(&credentials_path(&env)), "");

    let run = env.run(["-p", "reader", "-t", &env.alice_code(), "--", "env"]);
    run.success();
    assert!(run.env_lines()["AWS_ACCESS_KEY_ID"].starts_with("ASIA"));
    assert_eq!(env.sts.calls("AssumeRole"), 1);
}

#[test]
fn a_cache_hit_opens_no_dbus_connection() {
    let Some(strace) = require_tool("strace (Debian: strace)", &["strace"]) else {
        return;
    };
    let Some((mut env, ss)) = alice_in_the_keyring() else {
        return;
    };

    let traced = |name: &str, args: &[&str]| -> (Run, String) {
        let log = env.dir.path().join(name);
        let out = env
            .command(&strace)
            .args(["-f", "-e", "trace=connect", "-o"])
            .arg(&log)
            .arg(TestEnv::bin())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run strace");
        (Run::from(out), read(&log))
    };

    // The miss reads the keyring: strace sees the connection to the bus (so it would see one).
    let code = env.alice_code();
    let (miss, miss_log) = traced("miss.strace", &["-p", "alice", "-t", &code, "--", "true"]);
    miss.success();
    assert!(
        miss_log.contains(ss.socket_path()),
        "the miss should connect to {}:\n{miss_log}",
        ss.socket_path()
    );

    // The hit: no connect() to any unix socket, the bus's or another.
    let (hit, hit_log) = traced("hit.strace", &["-p", "alice", "--", "true"]);
    hit.success();
    assert_eq!(env.sts.total_calls(), 1);
    let unix_connects: Vec<&str> = hit_log
        .lines()
        .filter(|l| l.contains("connect(") && l.contains("AF_UNIX"))
        .collect();
    assert!(
        unix_connects.is_empty(),
        "the cache hit connected to unix sockets: {unix_connects:?}"
    );

    // And so a hit works with no keyring reachable at all.
    env.set("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    env.run(["-p", "alice", "--", "true"]).success();
    assert_eq!(env.sts.total_calls(), 1);
}

#[test]
fn the_interactive_add_asks_on_the_terminal_without_echoing_the_secret() {
    let mut env = TestEnv::new();
    let Some(ss) = SecretService::start(&mut env) else {
        return;
    };
    // alice's keys are nowhere on disk: only what is typed.
    env.write_credentials(&format!(
        "[bob]\naws_access_key_id = {BOB_KEY}\naws_secret_access_key = {BOB_SECRET}\n"
    ));
    env.run(["-p", "alice", "-t", "123456", "--", "true"])
        .fails(125, &["no source credentials", "keys add -p alice"]);

    let Some(mut term) = OnTerminal::start(&env, &["keys", "add", "-p", "alice"]) else {
        return;
    };
    term.expect("Enter Access Key ID: ");
    term.type_line(ALICE_KEY);
    term.expect("Enter Secret Access Key: ");
    term.type_line(ALICE_SECRET);
    let (status, stdout, screen) = term.finish();
    assert_eq!(status, Some(0), "terminal: {screen}");
    assert_eq!(stdout, "");
    assert!(
        !screen.contains(ALICE_SECRET),
        "the secret was echoed: {screen:?}"
    );
    assert!(screen.contains("stored access key"), "{screen:?}");
    assert_eq!(ss.items(&env).len(), 1, "one item in the keyring");

    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}

#[test]
fn a_temporary_or_malformed_key_typed_at_the_prompt_is_refused() {
    let mut env = TestEnv::new();
    let Some(_ss) = SecretService::start(&mut env) else {
        return;
    };
    let Some(mut term) = OnTerminal::start(&env, &["keys", "add", "-p", "alice"]) else {
        return;
    };
    term.expect("Enter Access Key ID: ");
    term.type_line("ASIAIOSFODNN7EXAMPLE");
    let (status, _, screen) = term.finish();
    assert_eq!(status, Some(125), "terminal: {screen}");
    assert!(screen.contains("temporary access key"), "{screen:?}");
    let list = env.run(["keys", "list"]);
    list.success();
    assert_eq!(list.stdout, "");
}

/// Ctrl-C at the secret's prompt, part of the secret typed: nothing is stored, not in the
/// keyring and not in the record of profiles with keys there; echo is back on and
/// mfa-exec ends by the SIGINT it got, as at a run's prompt.
#[test]
fn ctrl_c_at_the_secret_prompt_stores_nothing_and_ends_by_sigint() {
    let mut env = TestEnv::new();
    let Some(ss) = SecretService::start(&mut env) else {
        return;
    };
    env.write_credentials("");
    let Some(mut term) = OnTerminal::start_in_script(&env, &["keys", "add", "-p", "alice"]) else {
        return;
    };
    term.expect("Enter Access Key ID: ");
    term.type_line(ALICE_KEY);
    term.expect("Enter Secret Access Key: ");
    term.press(&ALICE_SECRET.as_bytes()[..12]);
    term.press(b"\x03"); // the terminal's VINTR character
    let saw = term.finish_script();
    assert!(!saw.screen.contains(&ALICE_SECRET[..12]), "{saw:#?}");
    saw.ended_by_sigint().terminal_restored();

    assert_eq!(
        ss.items(&env),
        Vec::<String>::new(),
        "the keyring holds nothing"
    );
    assert!(!env.home().join(".config/mfa-exec/keyring.json").exists());
    let list = env.run(["keys", "list"]);
    list.success();
    assert_eq!(list.stdout, "");
    env.run(["-p", "alice", "-t", "123456", "--", "true"])
        .fails(125, &["no source credentials", "keys add -p alice"]);
    assert_eq!(env.sts.total_calls(), 0);
}

#[test]
fn keys_list_and_remove() {
    let mut env = TestEnv::new();
    let Some(_ss) = SecretService::start(&mut env) else {
        return;
    };
    let empty = env.run(["keys", "list"]);
    empty.success();
    assert_eq!(empty.stdout, "");
    assert!(empty.stderr.contains("no keys in the OS keyring"));

    for p in ["alice", "bob"] {
        env.run(["keys", "add", "-p", p, "--from-credentials-file"])
            .success();
    }
    let list = env.run(["keys", "list"]);
    list.success().prints(ALICE_KEY).prints(BOB_KEY);
    assert!(!list.stdout.contains(ALICE_SECRET) && !list.stdout.contains(BOB_SECRET));

    // AWS_PROFILE picks the profile, as for a run.
    let removed = env
        .mfa_exec(["keys", "remove"])
        .env("AWS_PROFILE", "alice")
        .output()
        .unwrap();
    Run::from(removed).success();
    let list = env.run(["keys", "list"]);
    assert_eq!(
        list.success().stdout,
        // Keys moved in, not made by `keys rotate`: their age is not known.
        format!("PROFILE              ACCESS KEY ID            AGE\nbob                  {BOB_KEY}     unknown\n")
    );

    // alice has no keys anywhere now: refused before any STS call, saying how to add them.
    env.run(["-p", "alice", "-t", "123456", "--", "true"])
        .fails(125, &["no source credentials", "keys add -p alice"]);
    env.run(["keys", "remove", "-p", "alice"])
        .fails(125, &["'alice' has no keys in the OS keyring"]);
    assert_eq!(env.sts.total_calls(), 0);

    // bob still signs.
    env.run(["-p", "bob", "-t", &env.code(BOB_SERIAL), "--", "true"])
        .success();
}

#[test]
fn no_reachable_keyring_is_one_line_exit_125_and_no_sts_call() {
    let Some((mut env, ss)) = alice_in_the_keyring() else {
        return;
    };
    let before_bob = read(&credentials_path(&env));

    // No bus at that address.
    env.set("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    env.run(["-p", "alice", "-t", "123456", "--", "true"])
        .fails(125, &["OS keyring", "Secret Service"]);
    // Nothing is moved without a keyring to move it to: the file is not changed.
    env.run(["keys", "add", "-p", "bob", "--from-credentials-file"])
        .fails(125, &["OS keyring"]);
    assert_eq!(read(&credentials_path(&env)), before_bob);
    env.run(["keys", "list"]).fails(125, &["OS keyring"]);
    // The interactive add finds out before asking for a secret (here: before finding no
    // terminal).
    env.run(["keys", "add", "-p", "carol"])
        .fails(125, &["OS keyring"]);

    // A bus that accepts the connection and never answers: bounded by the keyring timeout.
    let silent = env.dir.path().join("silent-bus");
    let _listener = UnixListener::bind(&silent).unwrap();
    env.set(
        "DBUS_SESSION_BUS_ADDRESS",
        &format!("unix:path={}", silent.display()),
    );
    env.set("MFA_EXEC_KEYRING_TIMEOUT", "2s");
    env.run(["-p", "alice", "-t", "123456", "--", "true"])
        .fails(
            125,
            &["did not answer within 2s", "MFA_EXEC_KEYRING_TIMEOUT"],
        );

    // The real bus, with the keyring locked and nobody to type its password.
    env.set("DBUS_SESSION_BUS_ADDRESS", ss.address());
    ss.lock(&env);
    env.run(["-p", "alice", "-t", "123456", "--", "true"])
        .fails(125, &["OS keyring is locked", "unlock"]);

    assert_eq!(env.sts.total_calls(), 0);
}

#[test]
fn the_long_term_secret_is_in_no_file_under_home() {
    let Some((env, _ss)) = alice_in_the_keyring() else {
        return;
    };
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    env.run(["-p", "s3-reader", "--", "true"]).success();
    env.run(["keys", "list"]).success();

    let files = files_under(&env.home());
    // The keyring's own (encrypted) file, the record, the cache entries are all there…
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    for part in [
        "keyrings/",
        "mfa-exec/keyring.json",
        ".cache/mfa-exec/session-",
    ] {
        assert!(
            names.iter().any(|n| n.contains(part)),
            "no {part} in {names:?}"
        );
    }
    // …and not one holds the secret.
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !contains(&bytes, ALICE_SECRET),
            "{} holds the secret",
            f.display()
        );
    }
}

/// The record of which profiles keep keys in the keyring is read on every run of such a
/// profile, cache hits included: a FIFO planted there is refused at once, not waited on.
#[test]
fn a_fifo_as_the_keyring_record_is_refused_without_hanging() {
    let env = TestEnv::new();
    let record = env.home().join(".config/mfa-exec/keyring.json");
    std::fs::create_dir_all(record.parent().unwrap()).unwrap();
    nix::unistd::mkfifo(&record, nix::sys::stat::Mode::S_IRWXU).unwrap();

    // A profile in no file sends the settings to the record to look for it.
    let mut child = env
        .mfa_exec(["-p", "ghost", "-t", "123456", "--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mfa-exec hung on the FIFO at {}", record.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Run::from(child.wait_with_output().unwrap())
        .fails(125, &["keyring.json is not a regular file"]);
    assert_eq!(env.sts.total_calls(), 0);
}

// ------------------------------------------------------------------------------------------
// Faults: two moves at once, a run killed at the rename, a record kept in dotfiles.
// ------------------------------------------------------------------------------------------

fn record_path(env: &TestEnv) -> PathBuf {
    env.home().join(".config/mfa-exec/keyring.json")
}

/// The `.NAME.*.tmp` files in a directory.
fn temporary_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.ends_with(".tmp"))
        .collect()
}

#[test]
fn two_moves_out_of_one_credentials_file_at_once_keep_every_other_line() {
    // alice's and bob's keys moved by two runs started together: without a lock, the second
    // rename put back the keys the first run had just moved (and the record lost a profile).
    let mut env = TestEnv::new();
    let Some(_ss) = SecretService::start(&mut env) else {
        return;
    };
    let expected = busy_credentials_file()
        .replace(&format!("aws_access_key_id = {ALICE_KEY}\n"), "")
        .replace(&format!("aws_secret_access_key = {ALICE_SECRET}\n"), "")
        .replace(
            &format!(
                "[bob]\naws_access_key_id   =   {BOB_KEY}\naws_secret_access_key = {BOB_SECRET}\n\n"
            ),
            "",
        );
    for round in 1..=20 {
        env.write_credentials(&busy_credentials_file());
        let _ = std::fs::remove_file(record_path(&env));
        let runs: Vec<Child> = ["alice", "bob"]
            .into_iter()
            .map(|p| {
                env.mfa_exec(["keys", "add", "-p", p, "--from-credentials-file"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for run in runs {
            Run::from(run.wait_with_output().unwrap()).success();
        }
        assert_eq!(read(&credentials_path(&env)), expected, "round {round}");
        let record = read(&record_path(&env));
        assert!(
            record.contains(ALICE_KEY) && record.contains(BOB_KEY),
            "round {round}: {record}"
        );
    }
}

#[test]
fn a_run_killed_at_the_rename_leaves_no_temporary_file_after_the_next_edit() {
    // strace kills the run as it renames its new credentials file into place (after the
    // keyring took alice's keys): the temporary file beside it holds every other profile's
    // long-term keys. The next edit of the file removes it.
    let Some(strace) = require_tool("strace (Debian: strace)", &["strace"]) else {
        return;
    };
    let mut env = TestEnv::new();
    let Some(_ss) = SecretService::start(&mut env) else {
        return;
    };
    let credentials = credentials_path(&env);
    let renames = "rename,renameat,renameat2";
    let out = env
        .command(&strace)
        .args(["-f", "-o"])
        .arg(env.dir.path().join("killed.strace"))
        .arg("-e")
        .arg(format!("trace={renames}"))
        .arg("-e")
        // The second rename: the first puts the keyring record in place. (`-P` cannot pick
        // the credentials file: strace 6.1 matches only a rename's first path.)
        .arg(format!("inject={renames}:signal=SIGKILL:when=2"))
        .arg(TestEnv::bin())
        .args(["keys", "add", "-p", "alice", "--from-credentials-file"])
        .stdin(Stdio::null())
        .output()
        .expect("run strace");
    let killed = Run::from(out);
    let aws = env.home().join(".aws");
    let left = temporary_files(&aws);
    assert_eq!(
        left.len(),
        1,
        "the killed run left its temporary file: {left:?}\n{}\n{}",
        killed.stderr,
        read(&env.dir.path().join("killed.strace"))
    );
    assert!(left[0].starts_with(".credentials."), "{left:?}");
    assert!(contains(
        &std::fs::read(aws.join(&left[0])).unwrap(),
        BOB_SECRET
    ));
    assert!(
        read(&credentials).contains(ALICE_SECRET),
        "not renamed into place"
    );

    env.run(["keys", "add", "-p", "bob", "--from-credentials-file"])
        .success();
    assert_eq!(temporary_files(&aws), Vec::<String>::new());
    assert!(!read(&credentials).contains(BOB_SECRET));
}

#[test]
fn a_symlinked_keyring_record_stays_a_link() {
    // The record kept in a dotfiles repository, linked from ~/.config: edits change the file
    // in the repository and leave the link.
    let mut env = TestEnv::new();
    let Some(_ss) = SecretService::start(&mut env) else {
        return;
    };
    let dotfiles = env.home().join("dotfiles");
    std::fs::create_dir_all(&dotfiles).unwrap();
    std::fs::write(
        dotfiles.join("keyring.json"),
        "{\"version\":1,\"profiles\":{}}\n",
    )
    .unwrap();
    std::fs::create_dir_all(record_path(&env).parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("../../dotfiles/keyring.json", record_path(&env)).unwrap();

    env.run(["keys", "add", "-p", "alice", "--from-credentials-file"])
        .success();
    let is_link = |env: &TestEnv| {
        std::fs::symlink_metadata(record_path(env))
            .unwrap()
            .is_symlink()
    };
    assert!(is_link(&env), "the record's link became a file");
    assert!(read(&dotfiles.join("keyring.json")).contains(ALICE_KEY));
    env.run(["keys", "remove", "-p", "alice"]).success();
    assert!(is_link(&env), "the record's link became a file");
    assert!(!read(&dotfiles.join("keyring.json")).contains(ALICE_KEY));
    assert_eq!(temporary_files(&dotfiles), Vec::<String>::new());
}
