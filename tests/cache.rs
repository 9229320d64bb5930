//! One MFA code per working day: the credential cache, roles assumed from one MFA session, and
//! parallel runs that share one code. The stand-in counts STS calls, so each story can say
//! exactly how many were made.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::env::*;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o777
}

fn entries(env: &TestEnv, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(env.cache_dir())
        .map(|rd| {
            rd.map(|e| e.unwrap().path())
                .filter(|p| {
                    let n = p.file_name().unwrap().to_str().unwrap();
                    n.starts_with(prefix) && n.ends_with(".json")
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Rewrites an entry's expiry to `secs_from_now`, as credentials issued an hour before that
/// (the refresh margin is at most half the credentials' lifetime).
fn set_expiry(path: &std::path::Path, secs_from_now: i64) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let expiration = unix_now() as i64 + secs_from_now;
    doc["credentials"]["expiration"] = serde_json::json!(expiration);
    doc["credentials"]["issued"] = serde_json::json!(expiration - 3600);
    std::fs::write(path, serde_json::to_vec(&doc).unwrap()).unwrap();
}

#[test]
fn a_second_run_needs_no_code_and_makes_no_sts_call() {
    let env = TestEnv::new();
    let first = env.run(["-p", "alice", "-t", &env.alice_code(), "--", "env"]);
    first.success();
    // No -t, no terminal: only the cache can answer.
    let second = env.run(["-p", "alice", "--", "env"]);
    second.success();
    assert_eq!(env.sts.total_calls(), 1);
    assert_eq!(
        first.env_lines()["AWS_ACCESS_KEY_ID"],
        second.env_lines()["AWS_ACCESS_KEY_ID"]
    );
}

#[test]
fn the_cache_is_private_and_holds_no_long_term_secret() {
    let env = TestEnv::new();
    env.run(["-p", "s3-reader", "-t", &env.alice_code(), "--", "true"])
        .success();
    let dir = env.cache_dir();
    assert_eq!(mode(&dir), 0o700);
    let mut files = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(ALICE_SECRET),
            "long-term secret in {}",
            path.display()
        );
        files += 1;
    }
    // A session entry, a role entry, their locks and the spent-code record.
    assert!(files >= 5, "{files}");
    assert_eq!(entries(&env, "session-").len(), 1);
    assert_eq!(entries(&env, "role-").len(), 1);
}

#[test]
fn a_second_role_from_the_same_source_reuses_the_mfa_session_without_a_code() {
    let env = TestEnv::new();
    env.run(["-p", "s3-reader", "-t", &env.alice_code(), "--", "true"])
        .success();
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    assert_eq!(env.sts.calls("AssumeRole"), 1);
    // Another role profile, no code: assumed with the cached MFA session's keys.
    let run = env.run(["-p", "auditor", "--", "env"]);
    run.success();
    assert_eq!(run.env_lines()["MFA_EXEC_ROLE_ARN"], role_arn("auditor"));
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    assert_eq!(env.sts.calls("AssumeRole"), 2);
    // And the plain session profile of the same source and device shares it too.
    env.run(["-p", "alice", "--", "true"]).success();
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}

#[test]
fn expired_role_credentials_are_renewed_from_the_session_without_a_code() {
    let env = TestEnv::new();
    env.run(["-p", "s3-reader", "-t", &env.alice_code(), "--", "true"])
        .success();
    let role = entries(&env, "role-").remove(0);
    set_expiry(&role, 60); // less than the default 5 minutes left
    env.run(["-p", "s3-reader", "--", "true"]).success();
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    assert_eq!(env.sts.calls("AssumeRole"), 2);
}

#[test]
fn min_remaining_decides_when_an_entry_is_too_old() {
    let mut env = TestEnv::new();
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    let entry = entries(&env, "session-").remove(0);
    set_expiry(&entry, 120);
    // Two minutes left is enough when 1 minute is the minimum…
    env.run(["-p", "alice", "--min-remaining", "1m", "--", "true"])
        .success();
    env.set("MFA_EXEC_MIN_REMAINING", "90s");
    env.run(["-p", "alice", "--", "true"]).success();
    assert_eq!(env.sts.total_calls(), 1);
    // …but not under the default 5 minutes: a code is needed (none given, no terminal).
    env.vars.remove("MFA_EXEC_MIN_REMAINING");
    env.run(["-p", "alice", "--no-prompt", "--", "true"])
        .fails(125, &["new MFA code is needed"]);
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    assert_eq!(env.sts.calls("GetSessionToken"), 2);
}

#[test]
fn an_expired_entry_is_a_miss() {
    let env = TestEnv::new();
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    set_expiry(&entries(&env, "session-").remove(0), -10);
    env.run(["-p", "alice", "--no-prompt", "--", "true"])
        .fails(125, &["new MFA code is needed"]);
}

#[test]
fn refresh_calls_sts_and_rewrites_the_entry_and_no_cache_touches_nothing() {
    let env = TestEnv::new();
    let first = env.run(["-p", "alice", "-t", &env.alice_code(), "--", "env"]);
    first.success();
    let refreshed = env.run([
        "-p",
        "alice",
        "--refresh",
        "-t",
        &env.alice_code(),
        "--",
        "env",
    ]);
    refreshed.success();
    assert_eq!(env.sts.calls("GetSessionToken"), 2);
    let cached = env.run(["-p", "alice", "--", "env"]);
    cached.success();
    assert_eq!(
        cached.env_lines()["AWS_ACCESS_KEY_ID"],
        refreshed.env_lines()["AWS_ACCESS_KEY_ID"]
    );
    assert_ne!(
        first.env_lines()["AWS_ACCESS_KEY_ID"],
        refreshed.env_lines()["AWS_ACCESS_KEY_ID"]
    );

    let other = TestEnv::new();
    other
        .run([
            "-p",
            "alice",
            "--no-cache",
            "-t",
            &other.alice_code(),
            "--",
            "true",
        ])
        .success();
    assert!(!other.cache_dir().exists());
    // --no-cache does not read either.
    other
        .run(["-p", "alice", "-t", &other.alice_code(), "--", "true"])
        .success();
    other
        .run(["-p", "alice", "--no-cache", "--no-prompt", "--", "true"])
        .fails(125, &["new MFA code is needed"]);
}

#[test]
fn no_session_and_long_durations_assume_the_role_directly() {
    let env = TestEnv::new();
    env.run([
        "-p",
        "s3-reader",
        "--no-session",
        "-t",
        &env.alice_code(),
        "--",
        "true",
    ])
    .success();
    assert_eq!(env.sts.calls("GetSessionToken"), 0);
    assert_eq!(env.sts.calls("AssumeRole"), 1);
    env.run([
        "-p",
        "s3-reader",
        "-d",
        "2h",
        "-t",
        &env.alice_code(),
        "--",
        "true",
    ])
    .success();
    assert_eq!(env.sts.calls("GetSessionToken"), 0);
    assert_eq!(env.sts.calls("AssumeRole"), 2);
}

#[test]
fn the_session_duration_is_settable_in_the_profile() {
    let env = TestEnv::new();
    env.write_config(&demo_config_file().replace(
        &format!("[profile alice]\nmfa_serial = {ALICE_SERIAL}\n"),
        &format!("[profile alice]\nmfa_serial = {ALICE_SERIAL}\nmfa_exec_session_duration = 2h\n"),
    ));
    env.run(["-p", "s3-reader", "-t", &env.alice_code(), "--", "true"])
        .success();
    let session = std::fs::read_to_string(entries(&env, "session-").remove(0)).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&session).unwrap();
    let left = doc["credentials"]["expiration"].as_i64().unwrap() - unix_now() as i64;
    assert!((7000..=7200).contains(&left), "{left}");
}

/// Waits for runs started at once; each must succeed.
#[track_caller]
fn all_succeed(children: Vec<std::process::Child>) {
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
    }
}

#[test]
fn sixteen_parallel_runs_with_one_code_make_one_sts_call() {
    let env = TestEnv::new();
    let code = env.alice_code();
    let children: Vec<_> = (0..16)
        .map(|_| {
            env.mfa_exec(["-p", "alice", "-t", &code, "--", "true"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    all_succeed(children);
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}

#[test]
fn parallel_runs_for_different_roles_share_one_mfa_session() {
    let env = TestEnv::new();
    let code = env.alice_code();
    let children: Vec<_> = ["s3-reader", "auditor", "open", "partner"]
        .iter()
        .cycle()
        .take(12)
        .map(|p| {
            env.mfa_exec(["-p", p, "-t", &code, "--", "true"])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    all_succeed(children);
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    assert_eq!(env.sts.calls("AssumeRole"), 4);
}

/// A run that takes alice's session lock and then waits on a slow token command (a person at
/// a prompt, in effect). Returns once the lock is held.
fn hold_alices_lock(env: &TestEnv) -> std::process::Child {
    let holder = env
        .mfa_exec([
            "-p",
            "alice",
            "--token-command",
            "sleep 30; echo 000000",
            "--",
            "true",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while entries_with_suffix(env, ".lock") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no lock file appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    holder
}

#[test]
fn a_lock_holder_killed_with_sigkill_does_not_block_the_next_run() {
    let env = TestEnv::new();
    let mut holder = hold_alices_lock(&env);
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    let started = Instant::now();
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    assert!(started.elapsed() < Duration::from_secs(10));
}

fn entries_with_suffix(env: &TestEnv, suffix: &str) -> usize {
    std::fs::read_dir(env.cache_dir())
        .map(|rd| {
            rd.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_str()
                    .unwrap()
                    .ends_with(suffix)
            })
            .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_cache_directory_open_to_others_is_not_used() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.cache_dir()).unwrap();
    std::fs::set_permissions(env.cache_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"]);
    run.success();
    assert!(
        run.stderr.contains("not using the credential cache"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("open to other users"));
    assert_eq!(
        run.stderr.matches("warning").count(),
        1,
        "said once: {}",
        run.stderr
    );
    assert!(entries(&env, "").is_empty());
}

#[test]
fn a_symlinked_cache_directory_is_refused() {
    let env = TestEnv::new();
    let elsewhere = env.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::create_dir_all(env.cache_dir().parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, env.cache_dir()).unwrap();
    let run = env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"]);
    run.success();
    assert!(run.stderr.contains("symbolic link"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

/// The warning about a cache someone else owns says so (its advice may change; this may not).
fn names_the_owner(stderr: &str) -> bool {
    let text = stderr.to_lowercase();
    text.contains("owned by") || text.contains("owner")
}

#[test]
fn a_cache_owned_by_another_user_is_not_used() {
    // Handing the directory to another user (uid 65534, "nobody") takes root, which is how
    // the tests run in CI; anywhere else the test says it was skipped.
    if !nix::unistd::geteuid().is_root() {
        skipped("giving the cache directory to another user needs root");
        return;
    }
    let env = TestEnv::new();
    // A good MFA session is cached, then the directory changes owner: whoever owns it now
    // could have written what is in it, so mfa-exec must neither read nor write it.
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    assert_eq!(entries(&env, "session-").len(), 1);
    let before = listing(&env.cache_dir());
    std::os::unix::fs::chown(env.cache_dir(), Some(65534), Some(65534)).unwrap();

    let run = env.run(["-p", "alice", "--no-prompt", "--", "true"]);
    run.fails(125, &["new MFA code is needed"]);
    assert!(names_the_owner(&run.stderr), "{}", run.stderr);
    assert_eq!(env.sts.calls("GetSessionToken"), 1);

    // With a code the command still runs, and nothing is added to the directory.
    let run = env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"]);
    run.success();
    assert!(names_the_owner(&run.stderr), "{}", run.stderr);
    // The advice is one that can work: chmod cannot change who owns the directory.
    assert!(
        !run.stderr.contains("chmod"),
        "chmod cannot fix ownership: {}",
        run.stderr
    );
    assert!(run.stderr.contains("remove it"), "{}", run.stderr);
    assert_eq!(env.sts.calls("GetSessionToken"), 2);
    assert_eq!(
        listing(&env.cache_dir()),
        before,
        "the directory was written to"
    );
}

/// Every file in `dir` with its length and modification time.
fn listing(dir: &std::path::Path) -> Vec<(std::ffi::OsString, u64, std::time::SystemTime)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (e.file_name(), m.len(), m.modified().unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn an_entry_open_to_others_or_a_symlinked_entry_is_not_read() {
    let env = TestEnv::new();
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    let entry = entries(&env, "session-").remove(0);
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = env.run(["-p", "alice", "--no-prompt", "--", "true"]);
    run.fails(125, &["new MFA code is needed"]);
    assert!(run.stderr.contains("open to other users"), "{}", run.stderr);

    // A symlink planted in place of the entry is neither followed for reading nor written
    // through: the file it points to stays as it was.
    let target = env.dir.path().join("planted");
    std::fs::write(&target, "not yours").unwrap();
    std::fs::remove_file(&entry).unwrap();
    std::os::unix::fs::symlink(&target, &entry).unwrap();
    let run = env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"]);
    run.success();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "not yours");
    assert!(!std::fs::symlink_metadata(&entry)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn a_corrupt_or_truncated_entry_is_a_miss_that_gets_replaced() {
    for damage in [
        |t: &str| t[..t.len() / 2].to_string(),
        |_: &str| "{ not json".to_string(),
        |_: &str| String::new(),
    ] {
        let env = TestEnv::new();
        env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
            .success();
        let entry = entries(&env, "session-").remove(0);
        let text = std::fs::read_to_string(&entry).unwrap();
        std::fs::write(&entry, damage(&text)).unwrap();
        let run = env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"]);
        run.success();
        assert!(run.stderr.contains("damaged"), "{}", run.stderr);
        assert_eq!(run.stderr.matches("damaged").count(), 1, "{}", run.stderr);
        // Replaced: the next run is a silent hit.
        let again = env.run(["-p", "alice", "--", "true"]);
        again.success();
        assert!(again.stderr.is_empty(), "{}", again.stderr);
        assert_eq!(env.sts.calls("GetSessionToken"), 2);
    }
}

#[test]
fn a_cache_that_cannot_be_written_still_runs_the_command() {
    let env = TestEnv::new();
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    // Make every write fail: the entry's place and its lock are taken by directories.
    let entry = entries(&env, "session-").remove(0);
    std::fs::remove_file(&entry).unwrap();
    std::fs::create_dir(&entry).unwrap();
    let lock = entry.with_extension("lock");
    std::fs::remove_file(&lock).unwrap();
    std::fs::create_dir(&lock).unwrap();
    let run = env.run(["-p", "alice", "-t", &env.alice_code(), "--", "echo", "ran"]);
    run.success();
    assert_eq!(run.stdout, "ran\n");
    assert!(
        run.stderr.contains("cannot write to the credential cache"),
        "{}",
        run.stderr
    );
    // The lock and the entry write both failed: one warning about writing, not one per file.
    assert_eq!(
        run.stderr
            .matches("cannot write to the credential cache")
            .count(),
        1,
        "{}",
        run.stderr
    );
}

#[test]
fn cache_list_shows_profiles_and_expiry_but_no_secret_and_clear_removes_them() {
    let env = TestEnv::new();
    let run = env.run(["-p", "s3-reader", "-t", &env.alice_code(), "--", "env"]);
    run.success();
    let vars = run.env_lines();
    let list = env.run(["cache", "list"]);
    list.success();
    assert!(list.stdout.contains("s3-reader"), "{}", list.stdout);
    assert!(list.stdout.contains("alice"));
    assert!(list.stdout.contains("session") && list.stdout.contains("role"));
    for secret in [
        vars["AWS_SECRET_ACCESS_KEY"].as_str(),
        vars["AWS_SESSION_TOKEN"].as_str(),
        vars["AWS_ACCESS_KEY_ID"].as_str(),
        ALICE_SECRET,
    ] {
        assert!(!list.stdout.contains(secret));
    }

    env.run(["cache", "clear", "--profile", "s3-reader"])
        .success();
    let list = env.run(["cache", "list"]);
    list.success();
    assert!(!list.stdout.contains("s3-reader"), "{}", list.stdout);
    assert!(list.stdout.contains("alice"));
    env.run(["cache", "clear"]).success();
    assert!(env.run(["cache", "list"]).success().stdout.is_empty());
}

#[test]
fn a_cached_session_sts_no_longer_accepts_is_replaced_with_a_new_code() {
    let env = TestEnv::new();
    env.run(["-p", "s3-reader", "-t", &env.alice_code(), "--", "true"])
        .success();
    // The session's keys become unknown to STS (as after a revocation); the role entry is gone.
    let session = entries(&env, "session-").remove(0);
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&session).unwrap()).unwrap();
    doc["credentials"]["access_key_id"] = serde_json::json!("ASIAREVOKED000000000");
    std::fs::write(&session, doc.to_string()).unwrap();
    std::fs::remove_file(entries(&env, "role-").remove(0)).unwrap();

    // Without a code, the run says one is needed; with one, a new session is made.
    env.run(["-p", "auditor", "--no-prompt", "--", "true"])
        .fails(125, &["new MFA code is needed"]);
    let run = env.run(["-p", "s3-reader", "-t", &env.alice_code(), "--", "true"]);
    run.success();
    assert!(
        run.stderr.contains("refused the cached MFA session"),
        "{}",
        run.stderr
    );
    assert_eq!(env.sts.calls("GetSessionToken"), 2);
    env.run(["-p", "auditor", "--", "true"]).success();
}

#[test]
fn a_no_prompt_run_does_not_hang_behind_a_run_waiting_for_a_code() {
    let env = TestEnv::new();
    let mut holder = hold_alices_lock(&env);
    let started = Instant::now();
    env.run(["-p", "alice", "--no-prompt", "--", "true"])
        .fails(125, &["another mfa-exec run", "--no-prompt"]);
    assert!(started.elapsed() < Duration::from_secs(15));
    holder.kill().unwrap();
    holder.wait().unwrap();
}

#[test]
fn cache_clear_removes_damaged_entries_too_and_list_reports_them() {
    let env = TestEnv::new();
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    let entry = entries(&env, "session-").remove(0);
    std::fs::write(&entry, "{\"version\":1").unwrap();
    let list = env.run(["cache", "list"]);
    list.success();
    assert!(list.stderr.contains("cannot be read"), "{}", list.stderr);
    env.run(["cache", "clear"]).success();
    assert_eq!(std::fs::read_dir(env.cache_dir()).unwrap().count(), 0);
}
