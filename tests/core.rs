//! The core flows, as a user runs them: both STS operations from profiles and from flags, the
//! child's environment, the failures and their messages and statuses. Every test runs the
//! real binary with a cleared environment against the strict STS stand-in.

mod support;

use std::path::PathBuf;

use support::env::*;

#[test]
fn get_session_token_from_a_profile_puts_temporary_keys_in_the_childs_environment() {
    let env = TestEnv::new();
    let run = env.run(["-p", "alice", "-t", &env.alice_code(), "--", "env"]);
    run.success();
    let vars = run.env_lines();
    assert!(vars["AWS_ACCESS_KEY_ID"].starts_with("ASIA"), "{vars:?}");
    assert_ne!(vars["AWS_SECRET_ACCESS_KEY"], ALICE_SECRET);
    assert!(vars["AWS_SESSION_TOKEN"].len() > 20);
    assert_eq!(vars["MFA_EXEC_PROFILE"], "alice");
    let exp = &vars["AWS_CREDENTIAL_EXPIRATION"];
    assert!(exp.ends_with('Z') && exp.len() == 20, "RFC 3339 UTC: {exp}");
    // No region configured: none is invented for the child.
    assert!(!vars.contains_key("AWS_REGION"));
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    assert_eq!(env.sts.calls("AssumeRole"), 0);
}

#[test]
fn the_child_can_call_aws_with_the_injected_keys() {
    let env = TestEnv::new();
    let client = standin_bin();
    let run = env.run([
        "-p".as_ref(),
        "s3-reader".as_ref(),
        "-t".as_ref(),
        env.alice_code().as_ref(),
        "--".as_ref(),
        client.as_os_str(),
        "call".as_ref(),
        "GetCallerIdentity".as_ref(),
    ]);
    run.success();
    assert!(
        run.stdout
            .contains("arn:aws:sts::123456789012:assumed-role/s3-reader/"),
        "{}",
        run.stdout
    );
    assert_eq!(env.sts.calls("GetCallerIdentity"), 1);
}

#[test]
fn the_aws_cli_in_the_child_sees_the_role() {
    let Some(aws) = aws_cli() else { return };
    let env = TestEnv::new();
    let code = env.alice_code();
    env.run_wrapping(&["-p", "s3-reader", "-t", &code], &aws, &AWS_WHOAMI)
        .success()
        .prints("assumed-role/s3-reader");
}

#[test]
fn get_session_token_from_flags_and_environment_keys_without_profile_files() {
    let mut env = TestEnv::new();
    env.write_config("");
    env.write_credentials("");
    env.set("AWS_ACCESS_KEY_ID", ALICE_KEY)
        .set("AWS_SECRET_ACCESS_KEY", ALICE_SECRET)
        .set("AWS_PROFILE", "");
    let code = env.alice_code();
    let run = env.run([
        "--serial-number",
        ALICE_SERIAL,
        "-t",
        &code,
        "--region",
        "eu-west-1",
        "-d",
        "1h",
        "--",
        "env",
    ]);
    run.success();
    let vars = run.env_lines();
    assert!(vars["AWS_ACCESS_KEY_ID"].starts_with("ASIA"));
    assert_eq!(vars["AWS_REGION"], "eu-west-1");
    assert_eq!(vars["AWS_DEFAULT_REGION"], "eu-west-1");
    assert_eq!(vars["MFA_EXEC_PROFILE"], "default");
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}

#[test]
fn assume_role_from_flags_with_the_code_directly() {
    let env = TestEnv::new();
    let run = env.run([
        "-p",
        "alice",
        "--role-arn",
        &role_arn("s3-reader"),
        "--role-session-name",
        "deploy-1",
        "--no-session",
        "-t",
        &env.alice_code(),
        "--",
        "env",
    ]);
    run.success();
    let vars = run.env_lines();
    assert_eq!(vars["MFA_EXEC_ROLE_ARN"], role_arn("s3-reader"));
    assert_eq!(env.sts.calls("AssumeRole"), 1);
    assert_eq!(env.sts.calls("GetSessionToken"), 0);
}

#[test]
fn a_role_profile_with_external_id_and_a_long_duration_assumes_the_role_with_the_code() {
    let env = TestEnv::new();
    env.write_config(&format!(
        "{}[profile long]\nrole_arn = {}\nsource_profile = alice\nduration_seconds = 7200\n",
        demo_config_file(),
        role_arn("s3-reader")
    ));
    let run = env.run(["-p", "long", "-t", &env.alice_code(), "--", "env"]);
    run.success();
    // More than STS's 1-hour cap on chained roles: straight AssumeRole with the code.
    assert_eq!(env.sts.calls("GetSessionToken"), 0);
    assert_eq!(env.sts.calls("AssumeRole"), 1);
    let left = expiration_secs(&run.env_lines()["AWS_CREDENTIAL_EXPIRATION"]) - unix_now() as i64;
    assert!((7000..=7200).contains(&left), "{left}");

    let run = env.run(["-p", "partner", "-t", &env.alice_code(), "--", "true"]);
    run.success();
}

#[test]
fn exec_keeps_the_commands_exit_status_and_stdout() {
    let env = TestEnv::new();
    let run = env.run([
        "-p",
        "alice",
        "-t",
        &env.alice_code(),
        "--",
        "sh",
        "-c",
        "echo only-this; exit 7",
    ]);
    assert_eq!(run.status, Some(7));
    assert_eq!(run.stdout, "only-this\n");
}

#[test]
fn removed_variables_do_not_reach_the_child() {
    let mut env = TestEnv::new();
    env.set("AWS_PROFILE", "alice")
        .set("AWS_DEFAULT_PROFILE", "alice")
        .set("AWS_SECURITY_TOKEN", "stale");
    let run = env.run(["-t", &env.alice_code(), "--", "env"]);
    run.success();
    let vars = run.env_lines();
    for gone in ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SECURITY_TOKEN"] {
        assert!(!vars.contains_key(gone), "{gone} leaked: {vars:?}");
    }
    assert_eq!(vars["MFA_EXEC_PROFILE"], "alice");
}

#[test]
fn mfa_exec_inside_mfa_exec_signs_with_the_long_term_keys_not_the_inherited_ones() {
    let env = TestEnv::new();
    let outer_code = env.alice_code();
    let inner_code = env.alice_code();
    // The inner run inherits ASIA keys and MFA_EXEC_PROFILE=alice. GetSessionToken signed with
    // those would be refused by STS; signed with alice's own keys it succeeds.
    let run = env.run([
        "-p",
        "alice",
        "-t",
        &outer_code,
        "--",
        TestEnv::bin(),
        "--no-cache",
        "-t",
        &inner_code,
        "--",
        "env",
    ]);
    run.success();
    assert_eq!(run.env_lines()["MFA_EXEC_PROFILE"], "alice");
    assert_eq!(env.sts.calls("GetSessionToken"), 2);
}

#[test]
fn endpoint_and_region_come_from_the_profile_when_the_environment_has_none() {
    let mut env = TestEnv::new();
    env.set("AWS_ENDPOINT_URL", "");
    env.write_config(&format!(
        "[profile alice]\nmfa_serial = {ALICE_SERIAL}\nregion = ap-south-1\nservices = local\n\n\
         [services local]\nsts =\n  endpoint_url = {}\n",
        env.sts.url()
    ));
    let run = env.run(["-p", "alice", "-t", &env.alice_code(), "--", "env"]);
    run.success();
    assert_eq!(run.env_lines()["AWS_REGION"], "ap-south-1");
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}

#[test]
fn a_source_profile_with_credential_process_is_resolved_by_the_sdk_chain() {
    let env = TestEnv::new();
    env.write_credentials("");
    let doc = format!(
        r#"{{"Version": 1, "AccessKeyId": "{ALICE_KEY}", "SecretAccessKey": "{ALICE_SECRET}"}}"#
    );
    env.write_config(&format!(
        "[profile src]\ncredential_process = printf '%s' '{doc}'\nmfa_serial = {ALICE_SERIAL}\n\n\
         [profile viaproc]\nrole_arn = {}\nsource_profile = src\n",
        role_arn("s3-reader")
    ));
    let run = env.run(["-p", "viaproc", "-t", &env.alice_code(), "--", "true"]);
    run.success();
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    assert_eq!(env.sts.calls("AssumeRole"), 1);
}

// ---- failures: one line, what to do, status 125, no secret ----

#[test]
fn a_wrong_code_is_refused_by_sts_with_advice() {
    let env = TestEnv::new();
    let good = env.alice_code();
    let wrong = format!("{:06}", (good.parse::<u32>().unwrap() + 1) % 1_000_000);
    env.run(["-p", "alice", "-t", &wrong, "--", "true"])
        .fails(125, &["refused the MFA code", "wait for the next code"]);
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}

#[test]
fn a_code_already_spent_is_refused_before_the_network() {
    let env = TestEnv::new();
    let code = env.alice_code();
    env.run(["-p", "alice", "-t", &code, "--", "true"])
        .success();
    env.run(["-p", "alice", "--refresh", "-t", &code, "--", "true"])
        .fails(125, &["already used", "next code"]);
    assert_eq!(env.sts.calls("GetSessionToken"), 1);

    // Without the cache's memory, STS itself refuses the spent code.
    env.run(["-p", "alice", "--no-cache", "-t", &code, "--", "true"])
        .fails(125, &["wrong, expired or already used"]);
}

#[test]
fn a_serial_that_is_not_the_users_device_is_named() {
    let env = TestEnv::new();
    let code = env.code(BOB_SERIAL);
    env.run([
        "-p",
        "alice",
        "--serial-number",
        BOB_SERIAL,
        "-t",
        &code,
        "--",
        "true",
    ])
    .fails(125, &["not associated", BOB_SERIAL, "mfa_serial"]);
}

#[test]
fn unknown_source_keys_and_wrong_secrets_are_explained_without_the_secret() {
    let env = TestEnv::new();
    env.write_credentials(
        "[alice]\naws_access_key_id = AKIAUNKNOWNKEY000000\naws_secret_access_key = nope\n",
    );
    let run = env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"]);
    run.fails(125, &["does not recognise", "AKIAUNKNOWNKEY000000"]);

    let wrong_secret = "WRONGsecretWRONGsecretWRONGsecret0000000";
    env.write_credentials(&format!(
        "[alice]\naws_access_key_id = {ALICE_KEY}\naws_secret_access_key = {wrong_secret}\n"
    ));
    let run = env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"]);
    run.fails(125, &["secret access key is wrong", "clock"]);
    assert!(!run.stderr.contains(wrong_secret));
}

#[test]
fn expired_source_credentials_say_so() {
    let env = TestEnv::new();
    // Temporary source keys that expire in a second: issue them through mfa-exec itself.
    env.sts.set_lifetime_override(Some(1));
    let issued = env.run([
        "-p",
        "alice",
        "--no-cache",
        "-t",
        &env.alice_code(),
        "--",
        "env",
    ]);
    issued.success();
    env.sts.set_lifetime_override(None);
    let vars = issued.env_lines();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    env.write_credentials(&format!(
        "[temp]\naws_access_key_id = {}\naws_secret_access_key = {}\naws_session_token = {}\n",
        vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"], vars["AWS_SESSION_TOKEN"]
    ));
    env.write_config(&format!("[profile temp]\nmfa_serial = {ALICE_SERIAL}\n"));
    let run = env.run([
        "-p",
        "temp",
        "--role-arn",
        &role_arn("s3-reader"),
        "--no-session",
        "-t",
        &env.alice_code(),
        "--",
        "true",
    ]);
    run.fails(125, &["expired"]);
    assert!(!run.stderr.contains(&vars["AWS_SECRET_ACCESS_KEY"]));
}

#[test]
fn a_role_that_does_not_trust_the_user_is_named() {
    let env = TestEnv::new();
    env.run([
        "-p",
        "locked",
        "--no-session",
        "-t",
        &env.alice_code(),
        "--",
        "true",
    ])
    .fails(
        125,
        &["not allowed to assume", &role_arn("locked"), "trust policy"],
    );
}

#[test]
fn durations_out_of_range_are_refused_locally_or_explained() {
    let env = TestEnv::new();
    // Locally: below GetSessionToken's 15 minutes, no STS call and no code spent.
    env.run(["-p", "alice", "-d", "10m", "-t", "123456", "--", "true"])
        .fails(125, &["between 15m and 36h", "--duration"]);
    env.run(["-p", "s3-reader", "-d", "13h", "-t", "123456", "--", "true"])
        .fails(125, &["between 15m and 12h"]);
    assert_eq!(env.sts.total_calls(), 0);
    // By STS: the auditor role allows at most 1 h.
    env.run([
        "-p",
        "auditor",
        "-d",
        "2h",
        "-t",
        &env.alice_code(),
        "--",
        "true",
    ])
    .fails(
        125,
        &["does not allow a session that long", &role_arn("auditor")],
    );
}

#[test]
fn an_unreachable_endpoint_is_named() {
    let mut env = TestEnv::new();
    env.set("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    env.run(["-p", "alice", "-t", "123456", "--", "true"])
        .fails(125, &["cannot reach STS at http://127.0.0.1:9"]);
}

#[test]
fn missing_source_credentials_say_where_mfa_exec_looked() {
    let env = TestEnv::new();
    env.write_credentials("");
    let run = env.run(["-p", "alice", "-t", "123456", "--", "true"]);
    run.fails(
        125,
        &[
            "no source credentials for profile 'alice'",
            "credentials",
            "config",
        ],
    );
    assert_eq!(env.sts.total_calls(), 0);
}

#[test]
fn a_first_time_user_with_no_aws_files_is_told_so_and_pointed_to_aws_configure() {
    let env = TestEnv::new();
    std::fs::remove_dir_all(env.home().join(".aws")).unwrap();
    let run = env.run(["--", "aws", "s3", "ls"]);
    run.fails(
        125,
        &[
            "no source credentials for profile 'default'",
            "neither",
            "nothing is set up yet",
            "`aws configure --profile default`",
        ],
    );
    let line = run.stderr.trim_end();
    assert!(
        line.find("neither") < line.find("aws configure"),
        "first what is missing, then what to do: {line}"
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert_eq!(env.sts.total_calls(), 0);
}

#[test]
fn a_first_time_user_naming_a_profile_is_told_nothing_is_set_up_yet() {
    let env = TestEnv::new();
    std::fs::remove_dir_all(env.home().join(".aws")).unwrap();
    let run = env.run(["-p", "prod", "--", "aws", "s3", "ls"]);
    run.fails(
        125,
        &[
            "profile 'prod' does not exist",
            "nothing is set up yet",
            "`aws configure --profile prod`",
        ],
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert_eq!(env.sts.total_calls(), 0);
}

#[test]
fn init_without_a_shell_lists_the_shells_it_knows() {
    let env = TestEnv::new();
    let run = env.run(["init"]);
    run.fails(
        125,
        &[
            "init needs a shell",
            "bash, zsh, fish, powershell",
            "mfa-exec init bash",
        ],
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

#[test]
fn local_mistakes_cost_no_sts_call() {
    let env = TestEnv::new();
    env.write_config("[profile nodevice]\nregion = us-east-1\n");
    env.write_credentials(&format!(
        "[nodevice]\naws_access_key_id = {ALICE_KEY}\naws_secret_access_key = {ALICE_SECRET}\n"
    ));
    env.run(["-p", "nodevice", "-t", "123456", "--", "true"])
        .fails(125, &["no MFA device", "mfa_serial", "--serial-number"]);
    env.run([
        "-p",
        "nodevice",
        "--serial-number",
        "arn:aws:iam::12:mfa/x",
        "-t",
        "123456",
        "--",
        "true",
    ])
    .fails(125, &["MFA serial", "not valid"]);
    env.run([
        "-p",
        "nodevice",
        "--serial-number",
        ALICE_SERIAL,
        "-t",
        "12345",
        "--",
        "true",
    ])
    .fails(125, &["exactly 6 digits"]);
    env.run([
        "-p",
        "nodevice",
        "--serial-number",
        ALICE_SERIAL,
        "--role-arn",
        "role/x",
        "-t",
        "123456",
        "--",
        "true",
    ])
    .fails(125, &["role ARN", "arn:aws:iam::"]);
    env.run(["-p", "nowhere", "--", "true"])
        .fails(125, &["profile 'nowhere'", "nodevice"]);
    env.run(["-p", "nodevice", "aws", "s3", "ls"])
        .fails(125, &["after --"]);
    assert_eq!(env.sts.total_calls(), 0);
}

#[test]
fn without_a_terminal_or_a_code_the_error_names_the_options() {
    let Some(setsid) = require_tool("setsid (util-linux)", &["setsid"]) else {
        return;
    };
    let env = TestEnv::new();
    // setsid: a new session with no controlling terminal, as under cron or CI.
    let out = env
        .command(setsid)
        .args([TestEnv::bin(), "-p", "alice", "--", "true"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    Run::from(out).fails(125, &["no terminal", "--token-code", "--token-command"]);
}

#[test]
fn a_token_command_supplies_the_code() {
    let env = TestEnv::new();
    let code = env.alice_code();
    env.run([
        "-p",
        "alice",
        "--token-command",
        &format!("echo {code}"),
        "--",
        "true",
    ])
    .success();
    env.run([
        "-p",
        "alice",
        "--no-cache",
        "--token-command",
        "echo not-a-code",
        "--",
        "true",
    ])
    .fails(125, &["did not print a 6-digit code"]);
}

#[test]
fn commands_that_cannot_run_get_env_statuses() {
    let env = TestEnv::new();
    let code = env.alice_code();
    env.run(["-p", "alice", "-t", &code, "--", "no-such-command-xyz"])
        .fails(127, &["no-such-command-xyz", "not found"]);
    // Cached now: no code needed for the second.
    let not_exec = env.home().join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    env.run([
        "-p".as_ref(),
        "alice".as_ref(),
        "--".as_ref(),
        not_exec.as_os_str(),
    ])
    .fails(126, &["permission denied"]);
}

#[test]
fn print_env_evaluated_by_sh_gives_what_exec_mode_gives_the_child() {
    let mut env = TestEnv::new();
    // The most hostile profile name the AWS SDKs accept (letters, digits, - / . % @ _ : +;
    // they ignore sections named otherwise): it reaches MFA_EXEC_PROFILE verbatim.
    let hostile = "o%s%n%%:@+/-brien_.%B";
    env.write_config(&format!(
        "{}[profile {hostile}]\nrole_arn = {}\nsource_profile = alice\nregion = eu-west-1\n",
        demo_config_file(),
        role_arn("s3-reader")
    ));
    env.set("AWS_PROFILE", "leftover");
    let exec = env.run(["-p", hostile, "-t", &env.alice_code(), "--", "env"]);
    exec.success();
    let printed = env.run(["-p", hostile, "--print-env"]);
    printed.success();
    let out = env
        .command("sh")
        .args(["-c", "eval \"$MFA_EXEC_OUT\" && env"])
        .env("MFA_EXEC_OUT", &printed.stdout)
        .output()
        .unwrap();
    let evaluated = Run::from(out);
    evaluated.success();
    assert!(!env.dir.path().join("pwned").exists());
    assert!(!env.dir.path().join("pwned2").exists());
    let (a, b) = (exec.env_lines(), evaluated.env_lines());
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "MFA_EXEC_PROFILE",
        "MFA_EXEC_ROLE_ARN",
    ] {
        assert_eq!(a.get(name), b.get(name), "{name}");
    }
    assert_eq!(b["MFA_EXEC_PROFILE"], hostile);
    assert!(!b.contains_key("AWS_PROFILE"));
}

/// `2026-11-22T16:48:45Z` → unix seconds (days-from-civil).
fn expiration_secs(text: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| text[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

#[test]
fn usage_errors_are_one_line_with_the_fix() {
    let env = TestEnv::new();
    for (args, needle) in [
        (
            vec!["--prfile", "alice", "--", "true"],
            "similar argument exists: '--profile'",
        ),
        (vec!["--shell", "fish", "--", "true"], "--print-env"),
        (vec!["--print-env", "--shell", "tcsh"], "possible values"),
        (
            vec!["-p", "alice", "cache", "list"],
            "a subcommand comes first",
        ),
    ] {
        let run = env.run(&args);
        run.fails(125, &[needle]);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn inside_an_mfa_exec_shell_a_profiles_own_region_beats_the_outer_profiles() {
    let env = TestEnv::new();
    env.write_config(&format!(
        "{}[profile west]\nrole_arn = {}\nsource_profile = alice\nregion = us-west-2\n",
        demo_config_file().replace(
            &format!("[profile alice]\nmfa_serial = {ALICE_SERIAL}\n"),
            &format!("[profile alice]\nmfa_serial = {ALICE_SERIAL}\nregion = eu-west-1\n")
        ),
        role_arn("s3-reader")
    ));
    // The outer run for alice exports eu-west-1; the inner one is for west.
    let run = env.run([
        "-p",
        "alice",
        "-t",
        &env.alice_code(),
        "--",
        TestEnv::bin(),
        "-p",
        "west",
        "--",
        "env",
    ]);
    run.success();
    let vars = run.env_lines();
    assert_eq!(vars["AWS_REGION"], "us-west-2");
    assert_eq!(vars["AWS_DEFAULT_REGION"], "us-west-2");
    // An explicit AWS_REGION (no outer mfa-exec) still wins, as in every AWS tool.
    let mut env2 = TestEnv::new();
    env2.write_config(&format!(
        "{}[profile west]\nrole_arn = {}\nsource_profile = alice\nregion = us-west-2\n",
        demo_config_file(),
        role_arn("s3-reader")
    ));
    env2.set("AWS_REGION", "ap-south-1");
    let run = env2.run(["-p", "west", "-t", &env2.alice_code(), "--", "env"]);
    run.success();
    assert_eq!(run.env_lines()["AWS_REGION"], "ap-south-1");
}

#[test]
fn environment_keys_beat_aws_profile_but_not_an_explicit_profile_flag() {
    let mut env = TestEnv::new();
    // The profile's own keys are unknown to STS; the environment's are alice's.
    env.write_credentials(
        "[alice]\naws_access_key_id = AKIAUNKNOWNKEY000000\naws_secret_access_key = nope\n",
    );
    env.set("AWS_PROFILE", "alice")
        .set("AWS_ACCESS_KEY_ID", ALICE_KEY)
        .set("AWS_SECRET_ACCESS_KEY", ALICE_SECRET);
    env.run(["-t", &env.alice_code(), "--no-cache", "--", "true"])
        .success();
    env.run([
        "-p",
        "alice",
        "--no-cache",
        "-t",
        &env.alice_code(),
        "--",
        "true",
    ])
    .fails(125, &["does not recognise", "AKIAUNKNOWNKEY000000"]);
}

#[test]
fn a_failing_credential_process_source_is_named_as_such_without_its_stderr() {
    let env = TestEnv::new();
    env.write_credentials("");
    env.write_config(&format!(
        "[profile src]\ncredential_process = sh -c 'echo leaked-secret-text >&2; exit 4'\nmfa_serial = {ALICE_SERIAL}\n"
    ));
    let run = env.run(["-p", "src", "-t", "123456", "--", "true"]);
    run.fails(
        125,
        &["cannot get the source credentials", "profile src", "exit"],
    );
    assert!(!run.stderr.contains("leaked-secret-text"), "{}", run.stderr);
    assert!(!run.stderr.contains("cannot reach STS"), "{}", run.stderr);
    assert_eq!(env.sts.total_calls(), 0);
}

#[test]
fn token_command_errors_name_the_program_but_not_its_arguments() {
    let env = TestEnv::new();
    let run = env.run([
        "-p",
        "alice",
        "--token-command",
        "echo hunter2-password",
        "--",
        "true",
    ]);
    run.fails(125, &["token command (echo …)", "6-digit code"]);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
}

#[test]
fn inside_an_mfa_exec_that_used_environment_keys_the_error_explains_the_temporary_keys() {
    let mut env = TestEnv::new();
    env.write_config(&format!("[profile other]\nmfa_serial = {ALICE_SERIAL}\n"));
    env.write_credentials("");
    env.set("AWS_ACCESS_KEY_ID", ALICE_KEY)
        .set("AWS_SECRET_ACCESS_KEY", ALICE_SECRET);
    let code = env.alice_code();
    let run = env.run([
        "--serial-number",
        ALICE_SERIAL,
        "-t",
        &code,
        "--",
        TestEnv::bin(),
        "--serial-number",
        ALICE_SERIAL,
        "--no-cache",
        "--",
        "true",
    ]);
    run.fails(125, &["temporary ones from an outer mfa-exec", "mfa-off"]);
}

#[test]
fn completions_are_printed_for_each_shell_and_parse() {
    let env = TestEnv::new();
    for (shell, checker) in [("bash", "bash"), ("zsh", "zsh"), ("fish", "fish")] {
        let run = env.run(["completions", shell]);
        run.success().prints("profile").prints("print-env");
        let Some(program) = require_tool(checker, &[checker]) else {
            continue;
        };
        let script = env.dir.path().join(format!("completions.{shell}"));
        std::fs::write(&script, &run.stdout).unwrap();
        let check = Run::from(
            env.command(program)
                .arg("-n")
                .arg(&script)
                .output()
                .unwrap(),
        );
        check.success();
    }
    env.run(["completions", "powershell"])
        .success()
        .prints("Register-ArgumentCompleter");
}

/// The README's Troubleshooting section quotes mfa-exec's messages word for word; these are the
/// lines the binary prints now, in the same situations, with the temporary home shown as
/// `/home/alice` as the README has it. (The "3 MFA codes in a row" line needs a terminal: see
/// `three_codes_sts_refuses_end_the_run_with_advice_about_the_devices_clock` in tests/prompt.rs.)
#[test]
fn the_readme_troubleshooting_quotes_what_mfa_exec_prints() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Troubleshooting\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Troubleshooting section in README.md");
    let quoted: Vec<&str> = section
        .lines()
        .filter(|l| l.starts_with("mfa-exec: "))
        .collect();

    let mut printed = Vec::new();
    let mut line_of = |env: &TestEnv, args: &[&str]| {
        let run = env.run(args);
        assert_eq!(run.status, Some(125), "{args:?}: {}", run.stderr);
        let line = run
            .stderr
            .trim_end()
            .replace(&env.home().display().to_string(), "/home/alice");
        assert_eq!(line.lines().count(), 1, "{line}");
        printed.push(line);
    };

    // A first-time user: no ~/.aws at all, with and without a profile named.
    let fresh = TestEnv::new();
    std::fs::remove_dir_all(fresh.home().join(".aws")).unwrap();
    line_of(&fresh, &["--", "true"]);
    line_of(&fresh, &["-p", "prod", "--", "true"]);

    // A profile with keys and no device.
    let env = TestEnv::new();
    env.write_config(&format!(
        "{}[profile nodevice]\nregion = eu-west-1\n",
        demo_config_file()
    ));
    env.write_credentials(&format!(
        "{}\n[nodevice]\naws_access_key_id = {ALICE_KEY}\naws_secret_access_key = {ALICE_SECRET}\n",
        demo_credentials_file()
    ));
    line_of(&env, &["-p", "nodevice", "--", "true"]);

    // A wrong code, then a good one spent and given again.
    let good: u32 = env.alice_code().parse().unwrap();
    let wrong = format!("{:06}", (good + 500_000) % 1_000_000);
    line_of(&env, &["-p", "alice", "-t", &wrong, "--", "true"]);
    let code = env.alice_code();
    env.run(["-p", "alice", "-t", &code, "--", "true"])
        .success();
    line_of(
        &env,
        &["-p", "alice", "--refresh", "-t", &code, "--", "true"],
    );

    // A role whose trust policy does not let alice in.
    line_of(
        &env,
        &["-p", "locked", "-t", &env.alice_code(), "--", "true"],
    );

    for line in &printed {
        assert!(
            quoted.contains(&line.as_str()),
            "README's Troubleshooting does not quote what mfa-exec prints now:\n{line}"
        );
    }
    for line in &quoted {
        assert!(
            printed.iter().any(|p| p == line) || line.contains("MFA codes in a row"),
            "README's Troubleshooting quotes a line mfa-exec no longer prints:\n{line}"
        );
    }
}

/// The quick start's `scripts/demo`, on this build (no release build): every step checks its
/// own outcome and the script exits non-zero when one does not behave as shown.
#[test]
fn the_quick_start_demo_runs_offline_and_every_step_behaves_as_shown() {
    let bin_dir = PathBuf::from(TestEnv::bin())
        .parent()
        .unwrap()
        .to_path_buf();
    standin_bin();
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo"))
        .env_clear()
        .env("HOME", home.path())
        .env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
        )
        .env("MFA_EXEC_DEMO_BIN_DIR", &bin_dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run scripts/demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for shown in [
        "ERROR AccessDenied: User: arn:aws:iam::123456789012:user/alice is not authorized",
        "assumed-role/s3-reader/",
        "is enabled for IAM user carol",
        "demo-reports",
        "deactivated and deleted MFA device arn:aws:iam::123456789012:mfa/carol",
        "Done: one MFA code",
    ] {
        assert!(stdout.contains(shown), "{shown:?} missing from:\n{stdout}");
    }
    assert!(!stderr.contains("demo: FAILED"), "{stderr}");
}

/// The README's Troubleshooting says this machine's clock matters less than the device's: when
/// STS refuses a request signed too far from its own time, the AWS SDK signs it again with
/// STS's time. Here mfa-exec runs under faketime, 3 hours fast and then 2 days slow, against a
/// stand-in on the real time.
#[test]
fn a_machine_clock_hours_or_days_off_still_gets_credentials() {
    let Some(faketime) = require_tool("faketime (Debian: faketime)", &["faketime"]) else {
        return;
    };
    let env = TestEnv::new();
    for offset in ["+3h", "-2d"] {
        let before = env.sts.calls("GetSessionToken");
        let code = env.alice_code();
        let mut cmd = env.command(&faketime);
        cmd.args(["-f", offset, TestEnv::bin()])
            .args(["-p", "alice", "--no-cache", "-t", &code, "--", "env"])
            .stdin(std::process::Stdio::null());
        let run = Run::from(cmd.output().expect("run faketime"));
        run.success();
        assert!(
            run.env_lines()["AWS_ACCESS_KEY_ID"].starts_with("ASIA"),
            "{offset}: {}",
            run.stdout
        );
        // The first, skewed request was refused and the SDK sent it again.
        assert!(
            env.sts.calls("GetSessionToken") >= before + 2,
            "{offset}: the clock was not off, or nothing was retried"
        );
    }
}
