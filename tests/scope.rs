//! Least privilege per command: a role session narrowed by session policies (`--read-only`,
//! `--policy`, `--policy-arn`, or the profile's `mfa_exec_*` keys) and carrying session tags
//! and a source identity; refused before any call where STS would refuse it, cached apart
//! from the unscoped session, and served by the one MFA session of the day.

mod support;

use std::io::Write;
use std::process::Stdio;

use support::env::*;

const READ_S3: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:List*","s3:Get*"],"Resource":"*"}]}"#;

/// How many requests of this action the stand-in saw.
fn calls(env: &TestEnv, action: &str) -> usize {
    env.sts
        .requests()
        .into_iter()
        .filter(|r| r.action == action)
        .count()
}

/// The access key id a child of `mfa-exec ARGS -- env` got.
fn key_of(env: &TestEnv, args: &[&str]) -> String {
    let run = env.run_wrapping(args, "env".as_ref(), &[]);
    run.success();
    run.env_lines()["AWS_ACCESS_KEY_ID"].clone()
}

/// alice's role `s3-reader`, first as the role allows it, then read-only, then with an inline
/// policy: three role sessions, three cache entries, one MFA code. Each scope finds its own
/// entry again; none is ever handed another's credentials.
#[test]
fn each_scope_is_its_own_cache_entry_and_one_code_serves_them_all() {
    let env = TestEnv::new();
    let code = env.alice_code();
    let whole = key_of(&env, &["-p", "s3-reader", "-t", &code]);
    let read_only = key_of(&env, &["-p", "s3-reader", "--read-only"]);
    let inline = key_of(&env, &["-p", "s3-reader", "--policy", READ_S3]);
    assert_eq!(calls(&env, "GetSessionToken"), 1, "one code for the day");
    assert_eq!(calls(&env, "AssumeRole"), 3, "one role session per scope");
    assert_ne!(whole, read_only);
    assert_ne!(read_only, inline);
    assert_ne!(whole, inline);

    // Each run finds its own entry again, in any order.
    assert_eq!(key_of(&env, &["-p", "s3-reader", "--read-only"]), read_only);
    assert_eq!(key_of(&env, &["-p", "s3-reader"]), whole);
    assert_eq!(
        key_of(&env, &["-p", "s3-reader", "--policy", READ_S3]),
        inline
    );
    assert_eq!(calls(&env, "AssumeRole"), 3, "all three from the cache");

    // `cache list` says which entry is which; `list` shows a profile's own scope.
    let list = env.run(["cache", "list"]);
    list.success();
    assert!(
        list.stdout
            .contains(&format!("{} [read-only]", role_arn("s3-reader"))),
        "{}",
        list.stdout
    );
    assert!(
        list.stdout
            .contains(&format!("{} [inline policy]", role_arn("s3-reader"))),
        "{}",
        list.stdout
    );
}

/// A profile can be scoped by definition: `mfa_exec_read_only = true` gives the session
/// ReadOnlyAccess (in the role's partition) without a flag, and `list` shows it.
#[test]
fn a_profile_scoped_by_its_keys_is_read_only_without_a_flag() {
    let env = TestEnv::new();
    env.write_config(&format!(
        "{}[profile viewer]\nrole_arn = {}\nsource_profile = alice\nmfa_exec_read_only = true\nsession_tags = team=platform,cost-center=42\ntransitive_session_tags = team\nsource_identity = alice\n",
        demo_config_file(),
        role_arn("s3-reader")
    ));
    let viewer = key_of(&env, &["-p", "viewer", "-t", &env.alice_code()]);
    let flagged = key_of(&env, &["-p", "s3-reader", "--read-only"]);
    assert_ne!(viewer, flagged, "tags make it another session");
    let list = env.run(["list", "--json"]);
    list.success();
    let profiles: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let viewer = profiles
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["profile"] == "viewer")
        .unwrap();
    assert_eq!(
        viewer["scope"],
        "read-only; tags team=platform,cost-center=42; transitive team; source identity alice"
    );
}

/// GetSessionToken takes no session policy: a profile without a role is refused in one line
/// that says to use a role profile, with no call and no code spent.
#[test]
fn only_a_role_can_be_scoped() {
    let env = TestEnv::new();
    for flag in [
        &["--read-only"][..],
        &["--policy", READ_S3][..],
        &["--policy-arn", "arn:aws:iam::aws:policy/ReadOnlyAccess"][..],
        &["--tag", "team=platform"][..],
        &["--source-identity", "alice"][..],
    ] {
        let mut args = vec!["-p", "alice", "-t", "123456"];
        args.extend_from_slice(flag);
        args.extend(["--", "true"]);
        env.run(&args).fails(
            125,
            &[flag[0], "profile 'alice' has no role", "use a role profile"],
        );
    }
    env.write_config(&demo_config_file().replace(
        &format!("[profile alice]\nmfa_serial = {ALICE_SERIAL}\n"),
        &format!("[profile alice]\nmfa_serial = {ALICE_SERIAL}\nmfa_exec_read_only = true\n"),
    ));
    env.run(["-p", "alice", "-t", "123456", "--print-env"])
        .fails(
            125,
            &["mfa_exec_read_only in [profile alice]", "has no role"],
        );
    assert_eq!(env.sts.total_calls(), 0);
}

/// What STS would refuse is refused here, in one line naming the option, before any call.
#[test]
fn malformed_scopes_are_refused_before_any_call() {
    let env = TestEnv::new();
    let eleven: Vec<String> = (0..11)
        .map(|i| format!("arn:aws:iam::123456789012:policy/p{i}"))
        .collect();
    let mut too_many = vec!["-p", "s3-reader", "-t", "123456"];
    for arn in &eleven {
        too_many.extend(["--policy-arn", arn.as_str()]);
    }
    too_many.extend(["--", "true"]);
    env.run(&too_many)
        .fails(125, &["11 managed session policies", "at most 10"]);
    let long = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::{}"}}]}}"#,
        "b".repeat(2000)
    );
    let refusals: [(&[&str], &[&str]); 7] = [
        (&["--policy", "{not json"], &["--policy is not valid JSON"]),
        (
            &["--policy", r#"{"Version":"2012-10-17"}"#],
            &["no Statement"],
        ),
        (&["--policy", &long], &["2108 characters", "at most 2048"]),
        (
            &["--policy", "/nonexistent/policy.json"],
            &["--policy: /nonexistent/policy.json does not exist"],
        ),
        (
            &["--policy-arn", "ReadOnlyAccess"],
            &["--policy-arn 'ReadOnlyAccess' is not an IAM policy ARN"],
        ),
        (&["--tag", "team"], &["--tag 'team' is not KEY=VALUE"]),
        (
            &["--source-identity", "aws:me"],
            &["--source-identity 'aws:me' is not a source identity"],
        ),
    ];
    for (flag, needles) in refusals {
        let mut args = vec!["-p", "s3-reader", "-t", "123456"];
        args.extend_from_slice(flag);
        args.extend(["--", "true"]);
        env.run(&args).fails(125, needles);
    }
    assert_eq!(env.sts.total_calls(), 0);
}

/// `--policy -` reads the policy from standard input; a file works too, and both are the same
/// scope as the JSON given inline (one cache entry).
#[test]
fn a_policy_comes_from_stdin_a_file_or_the_command_line() {
    let env = TestEnv::new();
    let inline = key_of(
        &env,
        &[
            "-p",
            "s3-reader",
            "-t",
            &env.alice_code(),
            "--policy",
            READ_S3,
        ],
    );
    let file = env.dir.path().join("read-s3.json");
    std::fs::write(&file, READ_S3).unwrap();
    let from_file = key_of(
        &env,
        &["-p", "s3-reader", "--policy", file.to_str().unwrap()],
    );
    assert_eq!(from_file, inline);

    let mut child = env
        .mfa_exec(["-p", "s3-reader", "--policy", "-", "--", "env"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(READ_S3.as_bytes())
        .unwrap();
    let run = Run::from(child.wait_with_output().unwrap());
    run.success();
    assert_eq!(run.env_lines()["AWS_ACCESS_KEY_ID"], inline);
    assert_eq!(calls(&env, "AssumeRole"), 1);
}
