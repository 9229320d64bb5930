//! `mfa-exec keys rotate`: a profile's access key replaced by a new one, against the strict
//! stand-in playing IAM's access keys (the two-key limit, MFA required, a new key that works
//! only some seconds after its creation, inactive and deleted keys refused), in
//! `~/.aws/credentials` and in a real Secret Service. The day's MFA session keeps serving
//! after a rotation; a rotation killed at any write, rename or IAM call is finished (or undone)
//! by the next one, leaving exactly one key, stored and working, and no temporary file.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::Digest;
use sts_standin::{KeyStatus, When};
use support::env::*;
use support::files_under;
use support::secret_service::SecretService;

/// A credentials file a real user might have: comments, other profiles, alice's keys between
/// other settings, odd spacing.
fn busy_credentials_file() -> String {
    format!(
        "# Work accounts. Do not share.\n\
         [default]\n\
         region = us-east-1\n\
         \n\
         ; alice is the human\n\
         [alice]\n\
         aws_access_key_id={ALICE_KEY}\n\
         # rotated by hand in March\n\
         aws_secret_access_key   =   {ALICE_SECRET}\n\
         output = json\n\
         \n\
         [bob]\n\
         aws_access_key_id = {BOB_KEY}\n\
         aws_secret_access_key = {BOB_SECRET}\n"
    )
}

fn credentials_path(env: &TestEnv) -> PathBuf {
    env.home().join(".aws/credentials")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// alice's key and secret as the credentials file has them now.
fn alice_in_the_file(env: &TestEnv) -> (String, String) {
    let text = read(&credentials_path(env));
    let section = text
        .split("[alice]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    let value = |key: &str| {
        section
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .and_then(|l| l.split_once('='))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {key} in [alice]:\n{text}"))
    };
    (value("aws_access_key_id"), value("aws_secret_access_key"))
}

/// Temporary files of interrupted writes (`.NAME.PID.RANDOM.tmp`) and rotation journals
/// anywhere under HOME.
fn leftovers(env: &TestEnv) -> Vec<PathBuf> {
    files_under(&env.home())
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            (name.starts_with('.') && name.ends_with(".tmp")) || name.ends_with(".journal")
        })
        .collect()
}

/// The files under HOME that hold `secret`.
fn files_holding(env: &TestEnv, secret: &str) -> Vec<PathBuf> {
    files_under(&env.home())
        .into_iter()
        .filter(|p| {
            std::fs::read(p)
                .unwrap()
                .windows(secret.len())
                .any(|w| w == secret.as_bytes())
        })
        .collect()
}

/// Where `keys rotate` keeps its journal: `$XDG_STATE_HOME/mfa-exec` (made 0700 here).
fn state_dir(env: &TestEnv) -> PathBuf {
    let dir = env.home().join(".local/state/mfa-exec");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    dir
}

/// alice has exactly one key, active, and it is not the one she started with.
#[track_caller]
fn alice_has_one_new_key(env: &TestEnv) -> String {
    let keys = env.sts.access_keys("alice");
    assert_eq!(keys.len(), 1, "alice's keys: {keys:?}");
    assert_eq!(keys[0].1, KeyStatus::Active);
    assert_ne!(keys[0].0, ALICE_KEY);
    keys[0].0.clone()
}

/// The MFA session of alice, cached by one run with a code.
fn alice_with_a_session(env: &TestEnv) {
    let code = env.alice_code();
    env.run(["-p", "alice", "-t", &code, "--", "true"])
        .success();
}

#[test]
fn rotation_in_the_credentials_file_keeps_every_other_byte_and_the_next_run_needs_no_code() {
    let env = TestEnv::new();
    env.write_credentials(&busy_credentials_file());
    let code = env.alice_code();
    let run = env.run(["keys", "rotate", "-p", "alice", "-t", &code]);
    run.success();

    // IAM: the old key deleted, one new key.
    let new_key = alice_has_one_new_key(&env);
    // The file: the two values replaced in place, every other byte as it was.
    let (id, secret) = alice_in_the_file(&env);
    assert_eq!(id, new_key);
    let expected = busy_credentials_file()
        .replace(ALICE_KEY, &new_key)
        .replace(ALICE_SECRET, &secret);
    assert_eq!(read(&credentials_path(&env)), expected);
    // The stored pair works, as alice; the old key is refused.
    assert_eq!(
        env.sts.caller_with(&new_key, &secret).as_deref(),
        Some("arn:aws:iam::123456789012:user/alice")
    );
    assert_eq!(env.sts.caller_with(ALICE_KEY, ALICE_SECRET), None);
    assert!(run.stderr.contains(&new_key) && run.stderr.contains("deleted"));
    assert!(!run.stderr.contains(&secret), "{}", run.stderr);
    assert!(run.stdout.is_empty());

    // The day's MFA session keeps serving: the source and a role from it, without a code.
    env.run(["-p", "alice", "--no-prompt", "--", "true"])
        .success();
    env.run(["-p", "s3-reader", "--no-prompt", "--", "true"])
        .success();
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    // The role was assumed with the session the old key made.
    assert_eq!(env.sts.signers_of("AssumeRole"), ["session/alice"]);
    // The old key's entries are gone: the session is listed once.
    let cached = env.run(["cache", "list"]);
    cached.success();
    assert_eq!(
        cached
            .stdout
            .lines()
            .filter(|l| l.contains("session"))
            .count(),
        1,
        "{}",
        cached.stdout
    );

    // The secret is in the credentials file and nowhere else; no journal, no temporary file.
    assert_eq!(files_holding(&env, &secret), [credentials_path(&env)]);
    assert_eq!(leftovers(&env), Vec::<PathBuf>::new());
    // `list` knows the key's age (today's), and does not mark it.
    let list = env.run(["list", "--json"]);
    list.success();
    assert!(
        list.stdout.contains("\"key_age_days\": 0"),
        "{}",
        list.stdout
    );
    assert!(!list.stdout.contains("days old"));
}

#[test]
fn a_credentials_file_readable_by_others_is_made_private_before_it_holds_the_new_secret() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    env.write_credentials(&busy_credentials_file());
    let path = credentials_path(&env);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let code = env.alice_code();
    let run = env.run(["keys", "rotate", "-p", "alice", "-t", &code]);
    run.success();
    let new_key = alice_has_one_new_key(&env);
    assert_eq!(alice_in_the_file(&env).0, new_key);
    // The file holding the new secret is the user's alone, and the run said so in one line.
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600, "mode {mode:o}");
    let said: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("readable by others"))
        .collect();
    assert_eq!(said.len(), 1, "{}", run.stderr);
    assert!(
        said[0].contains("0644") && said[0].contains("0600"),
        "{}",
        said[0]
    );
}

#[test]
fn list_marks_a_key_older_than_90_days_without_a_network_call() {
    let env = TestEnv::new();
    let code = env.alice_code();
    env.run(["keys", "rotate", "-p", "alice", "-t", &code])
        .success();
    let (new_key, _) = alice_in_the_file(&env);
    // The date the rotation recorded, moved back 100 days (as if it had run then).
    let dates = env.home().join(".config/mfa-exec/key-dates.json");
    let old = unix_now() - 100 * 86_400;
    std::fs::write(
        &dates,
        format!("{{\"version\": 1, \"keys\": {{\"{new_key}\": {old}}}}}\n"),
    )
    .unwrap();
    let calls = env.sts.total_calls();
    let list = env.run(["list"]);
    list.success();
    let line = |p: &str| {
        list.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{p} ")))
            .unwrap_or_else(|| panic!("no {p}: {}", list.stdout))
            .to_string()
    };
    for profile in ["alice", "s3-reader"] {
        assert!(
            line(profile).contains("[key 100 days old: mfa-exec keys rotate -p alice]"),
            "{}",
            line(profile)
        );
    }
    // bob's key has no known date: not marked.
    assert!(!line("bob").contains("days old"), "{}", line("bob"));
    let json = env.run(["list", "--json"]);
    json.success();
    assert!(
        json.stdout.contains("\"key_age_days\": 100"),
        "{}",
        json.stdout
    );
    assert_eq!(env.sts.total_calls(), calls);
}

#[test]
fn a_rotation_records_the_age_of_every_key_iam_lists_even_one_it_did_not_make() {
    // alice's key was typed in by hand (mfa-exec never made it) and she has a second one:
    // the rotation is refused, but IAM's ListAccessKeys said when her key was made, and
    // `list` now shows its age.
    let env = TestEnv::new();
    let list = env.run(["list", "--json"]);
    list.success();
    assert!(
        !list.stdout.contains("\"key_age_days\": 0"),
        "{}",
        list.stdout
    );
    env.sts.add_access_key("alice");
    let code = env.alice_code();
    env.run(["keys", "rotate", "-p", "alice", "-t", &code])
        .fails_in_one_line(125, &["already has two access keys"]);
    let list = env.run(["list", "--json"]);
    list.success();
    assert!(
        list.stdout.contains("\"key_age_days\": 0"),
        "{}",
        list.stdout
    );
}

#[test]
fn another_users_keys_pasted_into_the_profile_never_get_the_old_session() {
    // The session is carried over by the rotation alone: a profile whose keys are replaced
    // by hand (here with bob's) is another user, and must not be served alice's session.
    let env = TestEnv::new();
    alice_with_a_session(&env);
    env.write_credentials(&format!(
        "[alice]\naws_access_key_id = {BOB_KEY}\naws_secret_access_key = {BOB_SECRET}\n"
    ));
    env.run(["-p", "alice", "--no-prompt", "--", "true"])
        .fails_in_one_line(125, &["code"]);
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}

#[test]
fn rotation_in_the_keyring_stores_the_new_key_there_and_nowhere_else() {
    let mut env = TestEnv::new();
    let Some(ss) = SecretService::start(&mut env) else {
        return;
    };
    env.run(["keys", "add", "-p", "alice", "--from-credentials-file"])
        .success();
    let code = env.alice_code();
    env.run(["keys", "rotate", "-p", "alice", "-t", &code])
        .success();
    let new_key = alice_has_one_new_key(&env);

    // The keyring's one item and the record name the new key; keys list shows it, aged 0 days.
    assert_eq!(ss.items(&env).len(), 1);
    let record = read(&env.home().join(".config/mfa-exec/keyring.json"));
    assert!(
        record.contains(&new_key) && !record.contains(ALICE_KEY),
        "{record}"
    );
    let list = env.run(["keys", "list"]);
    list.success();
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with("alice") && l.contains(&new_key) && l.contains("0 days")),
        "{}",
        list.stdout
    );

    // The next run needs no code; and once the cache is gone, the keyring's new key signs
    // GetSessionToken (so the stored secret is the right one).
    env.run(["-p", "alice", "--no-prompt", "--", "true"])
        .success();
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    env.run(["cache", "clear"]).success();
    let code = env.alice_code();
    env.run(["-p", "alice", "-t", &code, "--", "true"])
        .success();
    let last = env
        .sts
        .requests()
        .into_iter()
        .rfind(|s| s.action == "GetSessionToken")
        .unwrap();
    assert_eq!(
        (last.access_key_id.as_str(), last.status),
        (new_key.as_str(), 200)
    );
    assert_eq!(leftovers(&env), Vec::<PathBuf>::new());
}

#[test]
fn a_new_key_that_works_only_6_s_later_is_waited_for_before_the_old_one_goes() {
    let env = TestEnv::new();
    env.sts.set_new_key_delay(Duration::from_secs(6));
    let code = env.alice_code();
    let started = Instant::now();
    let run = env.run(["keys", "rotate", "-p", "alice", "-t", &code]);
    run.success();
    assert!(started.elapsed() >= Duration::from_secs(6));
    assert!(
        run.stderr.contains("waiting for IAM to accept the new key"),
        "{}",
        run.stderr
    );
    let new_key = alice_has_one_new_key(&env);

    // In the stand-in's order: the new key refused at first, then a call it signed
    // succeeded, and only then was the old key deleted.
    let requests = env.sts.requests();
    let by_new = |ok: bool| {
        requests.iter().position(|s| {
            s.action == "GetCallerIdentity" && s.access_key_id == new_key && (s.status == 200) == ok
        })
    };
    let refused = by_new(false).expect("the new key was refused at first");
    let worked = by_new(true).expect("a call signed by the new key succeeded");
    let deleted = requests
        .iter()
        .position(|s| s.action == "DeleteAccessKey")
        .expect("DeleteAccessKey");
    assert!(refused < worked && worked < deleted, "{requests:?}");
}

#[test]
fn a_new_key_that_never_works_keeps_the_old_one_and_the_next_run_finishes() {
    let mut env = TestEnv::new();
    env.set("MFA_EXEC_KEY_WAIT", "3s");
    env.sts.set_new_key_delay(Duration::from_secs(8));
    let code = env.alice_code();
    let run = env.run(["keys", "rotate", "-p", "alice", "-t", &code]);
    run.fails(125, &[]);
    // The line said while waiting, then one line that says what the next run does.
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    assert!(lines[0].contains("waiting for IAM to accept the new key"));
    assert!(
        lines[1].contains("has not accepted the new key")
            && lines[1].contains("the next `mfa-exec keys rotate -p alice` deletes the old key"),
        "{}",
        lines[1]
    );
    // Both keys: the old one still works, the new one is stored.
    assert_eq!(env.sts.access_keys("alice").len(), 2);
    assert_eq!(env.sts.calls("DeleteAccessKey"), 0);
    // The next run, once IAM accepts the stored key, finishes the rotation.
    let (id, secret) = alice_in_the_file(&env);
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.sts.caller_with(&id, &secret).is_none() {
        assert!(Instant::now() < deadline, "the new key never worked");
        std::thread::sleep(Duration::from_millis(100));
    }
    let run = env.run(["keys", "rotate", "-p", "alice", "--no-prompt"]);
    run.success();
    assert!(
        run.stderr.contains("finishing the rotation"),
        "{}",
        run.stderr
    );
    let new_key = alice_has_one_new_key(&env);
    assert_eq!(alice_in_the_file(&env).0, new_key);
    assert_eq!(leftovers(&env), Vec::<PathBuf>::new());
}

#[test]
fn a_user_with_two_keys_is_refused_naming_the_other_and_nothing_changes() {
    let env = TestEnv::new();
    let (other, _) = env.sts.add_access_key("alice");
    let before = read(&credentials_path(&env));
    let code = env.alice_code();
    env.run(["keys", "rotate", "-p", "alice", "-t", &code])
        .fails_in_one_line(
            125,
            &[&other, "two access keys", "aws iam delete-access-key"],
        );
    assert_eq!(
        env.sts.access_keys("alice"),
        [
            (ALICE_KEY.to_string(), KeyStatus::Active),
            (other, KeyStatus::Active)
        ]
    );
    assert_eq!(env.sts.calls("CreateAccessKey"), 0);
    assert_eq!(read(&credentials_path(&env)), before);
    assert_eq!(leftovers(&env), Vec::<PathBuf>::new());
}

#[test]
fn keep_old_deactivates_the_old_key_instead_of_deleting_it() {
    let env = TestEnv::new();
    let code = env.alice_code();
    // Asked of a role profile: the keys rotated are those of its source, alice.
    let run = env.run([
        "keys",
        "rotate",
        "-p",
        "s3-reader",
        "--keep-old",
        "-t",
        &code,
    ]);
    run.success();
    assert!(
        run.stderr.contains("profile alice") && run.stderr.contains("deactivated"),
        "{}",
        run.stderr
    );
    let keys = env.sts.access_keys("alice");
    let (new_key, _) = alice_in_the_file(&env);
    assert_eq!(
        keys,
        [
            (ALICE_KEY.to_string(), KeyStatus::Inactive),
            (new_key, KeyStatus::Active)
        ]
    );
    // An inactive key signs nothing.
    assert_eq!(env.sts.caller_with(ALICE_KEY, ALICE_SECRET), None);
    assert_eq!(env.sts.calls("DeleteAccessKey"), 0);
}

#[test]
fn no_permission_to_create_a_key_is_one_line_and_nothing_changes() {
    let env = TestEnv::new();
    env.sts.disallow("alice", "CreateAccessKey");
    let before = read(&credentials_path(&env));
    let code = env.alice_code();
    env.run(["keys", "rotate", "-p", "alice", "-t", &code])
        .fails_in_one_line(125, &["iam:CreateAccessKey", "nothing was changed"]);
    assert_eq!(
        env.sts.access_keys("alice"),
        [(ALICE_KEY.to_string(), KeyStatus::Active)]
    );
    assert_eq!(read(&credentials_path(&env)), before);
    assert_eq!(leftovers(&env), Vec::<PathBuf>::new());
}

#[test]
fn a_key_made_by_a_person_while_iam_refuses_create_access_key_is_never_deleted() {
    // IAM refused CreateAccessKey (AccessDenied): it made no key. A key alice made in the
    // console at that very moment is hers, not an orphan of the rotation: it stays.
    let env = TestEnv::new();
    env.sts.disallow("alice", "CreateAccessKey");
    env.sts
        .add_access_key_on("CreateAccessKey", When::Received, "alice");
    let code = env.alice_code();
    env.run(["keys", "rotate", "-p", "alice", "-t", &code])
        .fails_in_one_line(125, &["iam:CreateAccessKey", "nothing was changed"]);
    assert_eq!(env.sts.access_keys("alice").len(), 2);
    assert_eq!(env.sts.calls("DeleteAccessKey"), 0);
    assert_eq!(leftovers(&env), Vec::<PathBuf>::new());
}

#[test]
fn throttling_is_one_line_saying_what_changed_and_what_the_next_run_does() {
    let env = TestEnv::new();
    alice_with_a_session(&env);
    // Throttled at CreateAccessKey (the SDK's retry included): nothing changed.
    env.sts.throttle("CreateAccessKey", 2);
    env.run(["keys", "rotate", "-p", "alice", "--no-prompt"])
        .fails_in_one_line(125, &["throttling", "nothing was changed"]);
    assert_eq!(env.sts.access_keys("alice").len(), 1);
    assert_eq!(leftovers(&env), Vec::<PathBuf>::new());
    // Throttled at DeleteAccessKey: the new key is stored and works; the next run deletes
    // the old one.
    env.sts.throttle("DeleteAccessKey", 2);
    env.run(["keys", "rotate", "-p", "alice", "--no-prompt"])
        .fails_in_one_line(
            125,
            &["throttling", "is stored and works", "deletes the old key"],
        );
    assert_eq!(env.sts.access_keys("alice").len(), 2);
    the_next_rotation_leaves_one_working_stored_key(&env, "after throttling", false);
}

#[test]
fn no_session_and_no_code_is_one_line_and_no_iam_call() {
    let env = TestEnv::new();
    env.run(["keys", "rotate", "-p", "alice", "--no-prompt"])
        .fails_in_one_line(125, &["code"]);
    assert_eq!(env.sts.total_calls(), 0);
    assert_eq!(leftovers(&env), Vec::<PathBuf>::new());
}

#[test]
fn keys_from_the_environment_or_a_credential_process_are_refused_before_any_call() {
    let mut env = TestEnv::new();
    env.write_config(&format!(
        "[profile alice]\nmfa_serial = {ALICE_SERIAL}\n\n[profile tool]\nmfa_serial = {ALICE_SERIAL}\ncredential_process = /bin/false\n"
    ));
    env.run(["keys", "rotate", "-p", "tool", "--no-prompt"])
        .fails_in_one_line(125, &["credential_process of profile tool"]);
    env.set("AWS_ACCESS_KEY_ID", ALICE_KEY);
    env.set("AWS_SECRET_ACCESS_KEY", ALICE_SECRET);
    env.set("AWS_PROFILE", "alice");
    env.run(["keys", "rotate", "--no-prompt"])
        .fails_in_one_line(125, &["environment (AWS_ACCESS_KEY_ID)"]);
    assert_eq!(env.sts.total_calls(), 0);
}

#[test]
fn without_mfa_the_stand_in_denies_key_management_as_the_self_management_policy_does() {
    // What rotation is up against: long-term keys alone may not touch access keys.
    let env = TestEnv::new();
    let keys = sts_standin::Keys::new(ALICE_KEY, ALICE_SECRET, None);
    let reply = env.sts.call_iam(&keys, "CreateAccessKey", &[]);
    assert_eq!(reply.status, 403);
    assert_eq!(reply.error_code().as_deref(), Some("AccessDenied"));
    assert!(
        reply.body.contains("with an explicit deny"),
        "{}",
        reply.body
    );
    assert_eq!(env.sts.access_keys("alice").len(), 1);
}

#[test]
fn keys_changed_by_hand_during_a_rotation_are_never_overwritten() {
    // A rotation killed after CreateAccessKey, and meanwhile the profile's keys were changed by
    // hand: the next run must not write the journal's key over them. It deletes the new key,
    // which nobody else holds, and says so.
    let env = TestEnv::new();
    alice_with_a_session(&env);
    let (new_key, new_secret) = env.sts.add_access_key("alice");
    let digest = sha2::Sha256::digest(b"alice");
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    // The journal as the killed run left it: it had rotated a key the file no longer holds.
    let journal = serde_json::json!({
        "version": 1, "profile": "alice", "store": "credentials-file", "user": "alice",
        "user_arn": "arn:aws:iam::123456789012:user/alice", "old_key": "AKIAREPLACEDBYHAND00",
        "keys_before": [ALICE_KEY], "keep_old": false, "started": unix_now(), "step": "created",
        "new_key": new_key, "new_secret": new_secret, "new_created": unix_now()
    });
    let path = env.cache_dir().join(format!("rotation-{hex}.journal"));
    std::fs::write(&path, journal.to_string()).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let before = read(&credentials_path(&env));

    let run = env.run(["keys", "rotate", "-p", "alice", "--no-prompt"]);
    run.fails(
        125,
        &[
            "changed during the rotation",
            "were left as they are",
            &new_key,
        ],
    );
    assert_eq!(read(&credentials_path(&env)), before);
    assert_eq!(
        env.sts.access_keys("alice"),
        [(ALICE_KEY.to_string(), KeyStatus::Active)]
    );
    assert_eq!(leftovers(&env), Vec::<PathBuf>::new());
}

#[test]
fn a_second_rotation_while_one_is_inside_create_access_key_is_refused_and_loses_nothing() {
    // Run A has recorded its intent and IAM has just made its new key; run B starts then.
    // B must not take A's journal for an interrupted one (it would delete A's new key, and A
    // would store a deleted key over the only working secret): it is refused in one line.
    let env = TestEnv::new();
    alice_with_a_session(&env);
    let second = std::sync::Mutex::new(Some(env.mfa_exec([
        "keys",
        "rotate",
        "-p",
        "alice",
        "--no-prompt",
    ])));
    let (tx, rx) = std::sync::mpsc::channel();
    env.sts.on("CreateAccessKey", When::Answered, move || {
        let mut b = second.lock().unwrap().take().unwrap();
        tx.send(b.stdin(Stdio::null()).output().unwrap()).unwrap();
    });
    let a = env.run(["keys", "rotate", "-p", "alice", "--no-prompt"]);
    let b = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let b_err = String::from_utf8_lossy(&b.stderr);
    assert_eq!(b.status.code(), Some(125), "{b_err}");
    assert_eq!(b_err.trim().lines().count(), 1, "{b_err}");
    assert!(
        b_err.contains("another mfa-exec keys rotate for profile alice is running (pid "),
        "{b_err}"
    );
    a.success();
    // Exactly one key, the one A stored, and it works.
    let new_key = alice_has_one_new_key(&env);
    let (id, secret) = alice_in_the_file(&env);
    assert_eq!(id, new_key);
    assert!(env.sts.caller_with(&id, &secret).is_some());
    assert_eq!(env.sts.calls("CreateAccessKey"), 1);
    assert_eq!(leftovers(&env), Vec::<PathBuf>::new());
}

#[test]
fn a_key_made_by_a_person_after_an_interrupted_rotation_is_never_undone() {
    // A rotation was killed at its intent three days ago; since then alice made a second key
    // in the console. The next rotation undoes the old intent, but that key is not the killed
    // run's (it was made days after): it stays, and the two-key limit then refuses the
    // rotation, naming it.
    let env = TestEnv::new();
    alice_with_a_session(&env);
    let digest = sha2::Sha256::digest(b"alice");
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let journal = serde_json::json!({
        "version": 1, "profile": "alice", "store": "credentials-file", "user": "alice",
        "user_arn": "arn:aws:iam::123456789012:user/alice", "old_key": ALICE_KEY,
        "keys_before": [ALICE_KEY], "keep_old": false, "started": unix_now() - 3 * 86_400,
        "step": "intent"
    });
    let path = state_dir(&env).join(format!("rotation-{hex}.journal"));
    std::fs::write(&path, journal.to_string()).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (persons, _) = env.sts.add_access_key("alice");
    let before = read(&credentials_path(&env));

    let run = env.run(["keys", "rotate", "-p", "alice", "--no-prompt"]);
    run.fails(125, &["already has two access keys", &persons]);
    let mut keys: Vec<String> = env
        .sts
        .access_keys("alice")
        .into_iter()
        .map(|k| k.0)
        .collect();
    keys.sort();
    let mut expected = vec![ALICE_KEY.to_string(), persons.clone()];
    expected.sort();
    assert_eq!(keys, expected, "{}", run.stderr);
    assert_eq!(env.sts.calls("DeleteAccessKey"), 0);
    assert_eq!(read(&credentials_path(&env)), before);
    assert_eq!(leftovers(&env), Vec::<PathBuf>::new());
}

// ------------------------------------------------------------------------------------------
// Kills: after each IAM call (a stand-in hook SIGKILLs the run), and at each write, fsync and rename
// (strace's fault injection). The next rotation leaves exactly one key, stored and working.
// ------------------------------------------------------------------------------------------

/// After a killed rotation: the next one (no code: the session is cached) leaves alice one
/// active key, the one stored (in the credentials file, or the keyring when `keyring`), that
/// works; no journal, no temporary file, and the secret in the credentials file alone (in no
/// file at all with the keyring).
#[track_caller]
fn the_next_rotation_leaves_one_working_stored_key(env: &TestEnv, what: &str, keyring: bool) {
    let run = env.run(["keys", "rotate", "-p", "alice", "--no-prompt"]);
    assert_eq!(
        run.status,
        Some(0),
        "{what}: the next rotation failed: {}",
        run.stderr
    );
    let keys = env.sts.access_keys("alice");
    assert_eq!(keys.len(), 1, "{what}: {keys:?}\n{}", run.stderr);
    assert_eq!(keys[0].1, KeyStatus::Active, "{what}");
    assert_eq!(leftovers(env), Vec::<PathBuf>::new(), "{what}");
    if keyring {
        let listed = env.run(["keys", "list"]);
        listed.success();
        assert!(
            listed
                .stdout
                .lines()
                .any(|l| l.starts_with("alice") && l.contains(&keys[0].0)),
            "{what}: the keyring does not hold IAM's key {}: {}",
            keys[0].0,
            listed.stdout
        );
        // Read back from the keyring, it signed a call that succeeded (the rotation checks
        // the key as the store holds it).
        assert!(
            env.sts
                .requests()
                .iter()
                .any(|s| s.action == "GetCallerIdentity"
                    && s.access_key_id == keys[0].0
                    && s.status == 200),
            "{what}: the stored key never worked"
        );
        assert!(!read(&credentials_path(env)).contains("[alice]"), "{what}");
    } else {
        let (id, secret) = alice_in_the_file(env);
        assert_eq!(keys[0].0, id, "{what}: IAM's key is not the stored one");
        assert!(
            env.sts.caller_with(&id, &secret).is_some(),
            "{what}: the stored key does not work"
        );
        assert_eq!(
            files_holding(env, &secret),
            [credentials_path(env)],
            "{what}"
        );
    }
    // And the day's session still serves.
    env.run(["-p", "alice", "--no-prompt", "--", "true"])
        .success();
}

#[test]
fn the_journal_is_kept_in_the_state_directory_and_survives_a_wiped_cache() {
    // A rotation stopped before its end (IAM does not accept the new key in time) leaves its
    // journal in ~/.local/state/mfa-exec (0600 in 0700), not in the cache a cleaner may wipe.
    let env = TestEnv::new();
    alice_with_a_session(&env);
    env.sts.set_new_key_delay(Duration::from_secs(4));
    let out = env
        .mfa_exec(["keys", "rotate", "-p", "alice", "--no-prompt"])
        .env("MFA_EXEC_KEY_WAIT", "1s")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let journals: Vec<PathBuf> = leftovers(&env)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "journal"))
        .collect();
    let state = env.home().join(".local/state/mfa-exec");
    assert_eq!(journals.len(), 1, "{journals:?}");
    assert_eq!(journals[0].parent().unwrap(), state);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    use std::os::unix::fs::PermissionsExt;
    assert_eq!((mode(&journals[0]), mode(&state)), (0o600, 0o700));
    // A wiped cache (the MFA session goes with it: a code is needed) loses nothing.
    std::fs::remove_dir_all(env.cache_dir()).unwrap();
    // Once IAM accepts the stored key (it gets the new session), the next rotation finishes.
    let (id, secret) = alice_in_the_file(&env);
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.sts.caller_with(&id, &secret).is_none() {
        assert!(Instant::now() < deadline, "the new key never worked");
        std::thread::sleep(Duration::from_millis(100));
    }
    let code = env.alice_code();
    env.run(["keys", "rotate", "-p", "alice", "-t", &code])
        .success();
    let new_key = alice_has_one_new_key(&env);
    assert_eq!(alice_in_the_file(&env).0, new_key);
    assert_eq!(leftovers(&env), Vec::<PathBuf>::new());
}

#[test]
fn a_rotation_killed_after_each_iam_call_is_finished_or_undone_by_the_next() {
    let env = TestEnv::new();
    alice_with_a_session(&env);
    for (action, when) in [
        // IAM made the key, its secret never reached mfa-exec: the next run deletes it.
        ("CreateAccessKey", When::Received),
        ("CreateAccessKey", When::Answered),
        ("ListAccessKeys", When::Answered),
        ("DeleteAccessKey", When::Received),
        ("DeleteAccessKey", When::Answered),
    ] {
        let what = format!("killed at {action} {when:?}");
        let pid = Arc::new(AtomicU32::new(0));
        let target = Arc::clone(&pid);
        env.sts.on(action, when, move || {
            let pid = target.load(Ordering::SeqCst);
            assert!(pid > 0);
            let killed = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap();
            assert!(killed.success());
        });
        let served_before = env.sts.calls(action);
        let child = env
            .mfa_exec(["keys", "rotate", "-p", "alice", "--no-prompt"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        pid.store(child.id(), Ordering::SeqCst);
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            Some(libc::SIGKILL),
            "{what}: not killed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // What the dead run asked is done all the same, as AWS would do it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while env.sts.calls(action) == served_before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        the_next_rotation_leaves_one_working_stored_key(&env, &what, false);
    }
}

#[test]
fn a_rotation_killed_at_each_write_fsync_and_rename_is_finished_or_undone_by_the_next() {
    let env = TestEnv::new();
    killed_at_each_write_fsync_and_rename(&env, false);
}

#[test]
fn a_keyring_rotation_killed_at_each_write_fsync_and_rename_is_finished_or_undone_by_the_next() {
    let mut env = TestEnv::new();
    let Some(_ss) = SecretService::start(&mut env) else {
        return;
    };
    env.run(["keys", "add", "-p", "alice", "--from-credentials-file"])
        .success();
    killed_at_each_write_fsync_and_rename(&env, true);
}

/// Rotations of alice's key killed by strace at the 1st, 2nd… fsync (or rename) until one
/// runs through: each followed by the next rotation.
fn killed_at_each_write_fsync_and_rename(env: &TestEnv, keyring: bool) {
    let Some(strace) = require_tool("strace (Debian: strace)", &["strace"]) else {
        return;
    };
    alice_with_a_session(env);
    // Every write (the journal's, the temporary files', the keyring's, and stderr's and the
    // sockets': strace 6.1 cannot single out files' descriptors), fsync and rename.
    for call in [
        "write,writev,pwrite64",
        "fsync,fdatasync",
        "rename,renameat,renameat2",
    ] {
        let mut n = 1;
        loop {
            let what = format!("killed at {call} #{n}");
            let out = env
                .command(&strace)
                .args(["-f", "-qq", "-o", "/dev/null", "-e"])
                .arg(format!("trace={call}"))
                .arg("-e")
                .arg(format!("inject={call}:signal=SIGKILL:when={n}"))
                .arg(TestEnv::bin())
                .args(["keys", "rotate", "-p", "alice", "--no-prompt"])
                .stdin(Stdio::null())
                .output()
                .expect("run strace");
            // strace ends itself with the tracee's signal: a kill is a SIGKILL, nothing else
            // (a run that failed otherwise is no kill, and fails the test).
            let killed = std::os::unix::process::ExitStatusExt::signal(&out.status);
            assert!(
                out.status.success() || killed == Some(libc::SIGKILL),
                "{what}: not killed but {:?}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            the_next_rotation_leaves_one_working_stored_key(env, &what, keyring);
            if killed.is_none() {
                // The rotation has fewer of these calls than n: every one was tried.
                eprintln!("{call}: killed at each of {} calls", n - 1);
                assert!(
                    n > 3,
                    "{call}: only {n} calls: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                break;
            }
            n += 1;
            assert!(n < 400, "{call}: still killed at #{n}");
        }
    }
}
