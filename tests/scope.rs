//! Least privilege per command: a role session narrowed by session policies (`--read-only`,
//! `--policy`, `--policy-arn`, or the profile's `mfa_exec_*` keys) and carrying session tags
//! and a source identity; refused before any call where STS would refuse it, cached apart
//! from the unscoped session, and served by the one MFA session of the day.

mod support;

use std::io::Write;
use std::process::Stdio;

use support::env::*;

const READ_S3: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:List*","s3:Get*"],"Resource":"*"}]}"#;

/// The demo profiles and one more, `[profile NAME]` with these lines.
fn with_profile(env: &TestEnv, name: &str, lines: &str) {
    env.write_config(&format!("{}[profile {name}]\n{lines}", demo_config_file()));
}

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
    with_profile(
        &env,
        "viewer",
        &format!(
            "role_arn = {}\nsource_profile = alice\nmfa_exec_read_only = true\nsession_tags = team=platform,cost-center=42\ntransitive_session_tags = team\nsource_identity = alice\n",
            role_arn("s3-reader")
        ),
    );
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

/// The AWS CLI in each mode a command can get credentials: `aws s3 ARGS` run under
/// `mfa-exec -p open MFA_ARGS` (exec, `--server`), with `--print-env`'s variables, or through
/// a `credential_process` profile.
struct Modes<'a> {
    env: &'a TestEnv,
    aws: std::path::PathBuf,
}

impl Modes<'_> {
    /// `aws ARGS` as each mode runs it: (mode, the run).
    fn each(&self, mfa_args: &[&str], aws_args: &[&str]) -> Vec<(&'static str, Run)> {
        let env = self.env;
        let mut all = vec![("exec", env.run_wrapping(mfa_args, &self.aws, aws_args))];
        let server: Vec<&str> = [&["--server"], mfa_args].concat();
        all.push(("--server", env.run_wrapping(&server, &self.aws, aws_args)));
        let print: Vec<&str> = [mfa_args, &["--print-env", "--shell", "bash"]].concat();
        let printed = env.run(&print);
        printed.success();
        let mut aws = env.command(&self.aws);
        for line in printed.stdout.lines() {
            let Some(rest) = line.strip_prefix("export ") else {
                continue;
            };
            let (name, value) = rest.split_once('=').unwrap();
            aws.env(name, value.trim_matches('\''));
        }
        all.push((
            "--print-env",
            Run::from(aws.args(aws_args).output().unwrap()),
        ));
        let with_profile: Vec<&str> = [aws_args, &["--profile", "agent"]].concat();
        let via = Run::from(env.command(&self.aws).args(&with_profile).output().unwrap());
        all.push(("credential_process", via));
        all
    }
}

/// `--read-only` in every mode: the session lists the buckets but cannot write to one; the
/// same role unscoped writes, and a scoped run after that still cannot. One MFA code for all
/// of it, the one the first run typed.
#[test]
fn read_only_lists_but_cannot_write_in_every_mode_and_the_unscoped_role_still_can() {
    let Some(aws) = aws_cli() else { return };
    let env = TestEnv::new();
    with_profile(
        &env,
        "agent",
        &format!(
            "credential_process = {} --credential-process -p open --read-only\n",
            TestEnv::bin()
        ),
    );
    let file = env.dir.path().join("report.txt");
    std::fs::write(&file, "quarterly numbers\n").unwrap();
    let file = file.to_str().unwrap();
    // The day's first run types the code; every run after it uses the MFA session.
    env.run([
        "-p",
        "open",
        "-t",
        &env.alice_code(),
        "--read-only",
        "--",
        "true",
    ])
    .success();
    let modes = Modes { env: &env, aws };
    let scoped = ["-p", "open", "--read-only"];
    let put = ["s3", "cp", file, "s3://demo-reports/report.txt"];
    for (mode, run) in modes.each(&scoped, &["s3", "ls"]) {
        assert_eq!(run.status, Some(0), "{mode}: {}", run.stderr);
        assert!(
            run.stdout.contains("demo-reports"),
            "{mode}: {}",
            run.stdout
        );
    }
    for (mode, run) in modes.each(&scoped, &put) {
        assert_ne!(run.status, Some(0), "{mode} wrote: {}", run.stdout);
        assert!(
            run.stderr.contains("AccessDenied"),
            "{mode}: {}",
            run.stderr
        );
    }
    assert!(env.sts.objects().is_empty());

    env.run_wrapping(&["-p", "open"], &modes.aws, &put)
        .success();
    assert_eq!(env.sts.objects().len(), 1, "the unscoped role wrote");
    let again = env.run_wrapping(&scoped, &modes.aws, &put);
    assert!(again.stderr.contains("AccessDenied"), "{}", again.stderr);
    assert_eq!(calls(&env, "GetSessionToken"), 1, "one code for the day");
}

/// An inline policy that denies writing narrows the role as ReadOnlyAccess does, and what a
/// run sends is what the user wrote: the policy as written, the ARNs, the tags of the profile
/// that names them, the transitive keys and the source identity.
#[test]
fn the_scope_and_tags_reach_the_assume_role_as_given() {
    let env = TestEnv::new();
    with_profile(
        &env,
        "tagged",
        &format!(
            "role_arn = {}\nsource_profile = alice\nsession_tags = team=platform,project=x\ntransitive_session_tags = team\nsource_identity = alice\n",
            role_arn("s3-reader")
        ),
    );
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:PutObject","Resource":"*"},{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    env.run([
        "-p",
        "tagged",
        "-t",
        &env.alice_code(),
        "--policy",
        deny,
        "--read-only",
        "--tag",
        "ticket=OPS-42",
        "--",
        "true",
    ])
    .success();
    let assumed = env.sts.assumed_roles();
    assert_eq!(assumed.len(), 1, "{assumed:?}");
    let sent = &assumed[0];
    assert_eq!(sent.role_arn, role_arn("s3-reader"));
    assert_eq!(sent.policy.as_deref(), Some(deny));
    assert_eq!(sent.policy_arns, ["arn:aws:iam::aws:policy/ReadOnlyAccess"]);
    assert_eq!(
        sent.tags,
        [
            ("team".to_string(), "platform".to_string()),
            ("project".to_string(), "x".to_string()),
            ("ticket".to_string(), "OPS-42".to_string()),
        ]
    );
    assert_eq!(sent.transitive_tag_keys, ["team"]);
    assert_eq!(sent.source_identity.as_deref(), Some("alice"));
    assert_eq!(sent.error, None);
}

/// In a chain the scope narrows the last role only, as STS applies it; the hop before is
/// assumed whole, with its own profile's tags.
#[test]
fn in_a_chain_only_the_last_role_is_scoped() {
    let env = TestEnv::new();
    env.write_config(&format!(
        "{}[profile hub]\nrole_arn = {}\nsource_profile = alice\nsession_tags = team=platform\ntransitive_session_tags = team\n\n[profile target]\nrole_arn = {}\nsource_profile = hub\n",
        demo_config_file(),
        role_arn("hub"),
        role_arn("target")
    ));
    env.run([
        "-p",
        "target",
        "-t",
        &env.alice_code(),
        "--read-only",
        "--",
        "true",
    ])
    .success();
    let assumed = env.sts.assumed_roles();
    let arns: Vec<&str> = assumed.iter().map(|a| a.role_arn.as_str()).collect();
    assert_eq!(arns, [role_arn("hub"), role_arn("target")]);
    assert!(assumed[0].policy_arns.is_empty(), "{assumed:?}");
    assert_eq!(
        assumed[0].tags,
        [("team".to_string(), "platform".to_string())]
    );
    assert_eq!(
        assumed[1].policy_arns,
        ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    );
    assert!(
        assumed[1].tags.is_empty(),
        "the transitive tag travels in the session, not the call"
    );
    assert!(assumed.iter().all(|a| a.error.is_none()), "{assumed:?}");
}

/// What STS refuses once it sees the whole request (an ARN it does not know) comes back in
/// one line naming the option, and costs no code twice: the MFA session stays cached.
#[test]
fn an_unknown_policy_arn_is_sts_refusal_naming_the_option() {
    let env = TestEnv::new();
    env.run([
        "-p",
        "s3-reader",
        "-t",
        &env.alice_code(),
        "--policy-arn",
        "arn:aws:iam::123456789012:policy/does-not-exist",
        "--",
        "true",
    ])
    .fails(125, &["--policy-arn", "s3-reader"]);
    env.run(["-p", "s3-reader", "--", "true"]).success();
    assert_eq!(calls(&env, "GetSessionToken"), 1);
}

/// A role whose trust policy does not allow sts:TagSession refuses a tagged session; the line
/// says which role, which option, and the two ways out.
#[test]
fn a_role_that_takes_no_tags_is_named_with_the_way_out() {
    let env = TestEnv::new();
    env.run([
        "-p",
        "auditor",
        "-t",
        &env.alice_code(),
        "--tag",
        "team=platform",
        "--",
        "true",
    ])
    .fails(
        125,
        &[
            &role_arn("auditor"),
            "does not take session tags (from --tag, session_tags)",
            "allow sts:TagSession",
        ],
    );
    env.run(["-p", "auditor", "--", "true"]).success();
    assert_eq!(
        calls(&env, "GetSessionToken"),
        1,
        "the MFA session was kept"
    );
}

/// Tags that fit STS's per-tag limits but not its packed size, and a policy STS finds
/// malformed although it is JSON with a Statement: STS's refusals, one line each, naming the
/// options they came from.
#[test]
fn sts_refusals_of_a_scope_name_the_options_they_came_from() {
    let env = TestEnv::new();
    let long = "v".repeat(250);
    let tags: Vec<String> = (0..30).map(|i| format!("k{i}={long}")).collect();
    let code = env.alice_code();
    let mut args = vec!["-p", "s3-reader", "-t", &code];
    for tag in &tags {
        args.extend(["--tag", tag.as_str()]);
    }
    args.extend(["--", "true"]);
    env.run(&args).fails(
        125,
        &["too large for STS once packed (from --tag, session_tags)"],
    );
    let with_principal = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#;
    env.run(["-p", "s3-reader", "--policy", with_principal, "--", "true"])
        .fails(
            125,
            &[
                "STS refused the session policy",
                "as malformed (from --policy)",
                "principal",
            ],
        );
    assert_eq!(calls(&env, "GetSessionToken"), 1);
}

/// The console signs in with the scoped role session: the federation endpoint gets the
/// credentials of an AssumeRole that carried ReadOnlyAccess.
#[test]
fn the_console_signs_in_with_the_scoped_session() {
    let env = TestEnv::new();
    let run = env.run([
        "console",
        "-p",
        "s3-reader",
        "-t",
        &env.alice_code(),
        "--read-only",
        "--print-url",
    ]);
    run.success();
    assert!(run.stdout.contains("Action=login"), "{}", run.stdout);
    let assumed = env.sts.assumed_roles();
    assert_eq!(assumed.len(), 1, "{assumed:?}");
    assert_eq!(
        assumed[0].policy_arns,
        ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    );
}
