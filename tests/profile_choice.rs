//! Which profile a command acts on, told as one rule for every command: `-p`, then
//! AWS_PROFILE, then AWS_DEFAULT_PROFILE, then the profile of the mfa-exec the command runs
//! inside, then `default`; and one check of the name, with one message, before any call.

mod support;

use support::env::*;

/// The one line every command gives for a name no AWS SDK would read.
const BAD_NAME: &str = "mfa-exec: --profile 'bad]name' is not a profile name: the AWS SDKs accept only letters, digits and - / . % @ _ : + in one (mfa-exec list shows the profiles there are)";

/// The access keys that signed each request of this action, in order.
fn signed_by(env: &TestEnv, action: &str) -> Vec<String> {
    env.sts
        .requests()
        .into_iter()
        .filter(|r| r.action == action)
        .map(|r| r.access_key_id)
        .collect()
}

/// Bob opens a shell with his credentials and asks, inside it, which MFA devices he has. The
/// nested `device list` names no profile, as the nested runs he types there do not: it acts
/// on bob, the outer run's profile, signed with bob's own keys (never with the outer run's
/// temporary ones), and marks bob's device as the one in use.
#[test]
fn inside_a_run_for_bob_device_list_without_p_acts_on_bob_as_a_nested_run_does() {
    let env = TestEnv::new();
    let code = env.code(BOB_SERIAL);
    let mfa_exec = TestEnv::bin().as_ref();
    let run = env.run_wrapping(&["-p", "bob", "-t", &code], mfa_exec, &["device", "list"]);
    run.success().prints(BOB_SERIAL).prints("profile bob");
    assert_eq!(signed_by(&env, "ListMFADevices"), [BOB_KEY]);
    assert_eq!(signed_by(&env, "GetCallerIdentity"), [BOB_KEY]);

    // And a nested run, by the same rule, gets bob's credentials from the cache.
    let run = env.run_wrapping(&["-p", "bob"], mfa_exec, &["--", "env"]);
    run.success();
    assert_eq!(run.env_lines()["MFA_EXEC_PROFILE"], "bob");
    assert_eq!(
        signed_by(&env, "GetSessionToken"),
        [BOB_KEY],
        "one code, one session"
    );
}

/// `-p 'bad]name'`: every command that takes a profile refuses it with the same line and
/// status 125, before reading a keyring, opening a browser or calling STS or IAM.
#[test]
fn a_profile_name_the_sdks_would_ignore_is_refused_alike_by_every_command() {
    let env = TestEnv::new();
    let commands: [&[&str]; 7] = [
        &["-p", "bad]name", "-t", "123456", "--", "true"],
        &["-p", "bad]name", "--print-env"],
        &["device", "list", "-p", "bad]name"],
        &["device", "add", "-p", "bad]name"],
        &["keys", "add", "-p", "bad]name"],
        &["console", "-p", "bad]name", "--print-url"],
        &["cache", "clear", "-p", "bad]name"],
    ];
    for args in commands {
        let run = env.run(args);
        run.fails(125, &[]);
        assert_eq!(run.stderr.trim_end(), BAD_NAME, "{args:?}");
        assert_eq!(run.stdout, "", "{args:?}");
    }
    assert_eq!(env.sts.total_calls(), 0);
}

/// The same name from AWS_PROFILE is refused naming the variable, for runs and `device`
/// alike; `cache clear` without -p clears everything and does not look at it.
#[test]
fn a_bad_name_from_aws_profile_is_refused_naming_the_variable() {
    let mut env = TestEnv::new();
    env.set("AWS_PROFILE", "bad name");
    for args in [
        &["-t", "123456", "--", "true"][..],
        &["device", "list"][..],
        &["keys", "remove"][..],
    ] {
        env.run(args).fails(
            125,
            &[
                "AWS_PROFILE 'bad name' is not a profile name",
                "letters, digits",
            ],
        );
    }
    env.run(["cache", "clear"]).success();
    assert_eq!(env.sts.total_calls(), 0);
}
