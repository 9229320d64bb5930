//! Profiles resolved as the AWS SDKs resolve them: role chains of any length, sources that are
//! not an IAM user's keys (the instance, web identity), the MFA code where STS can take it, the
//! 1-hour cap of role chaining, a credential_process that loops back into mfa-exec, and
//! `mfa-exec list`. The stand-in says who signed every call (`signers_of`), so each test reads
//! which keys assumed which role.

mod support;

use std::time::{Duration, Instant};

use sts_standin::{Imds, INSTANCE_ROLE, WEB_IDENTITY_TOKEN};
use support::env::*;

/// The multi-account pattern: `target` (trusts only sessions of `hub`) <- `hub` <- bob's keys;
/// and another role of bob's, `bob-reader`.
fn hub_config() -> String {
    format!(
        "{}[profile hub]\nrole_arn = {}\nsource_profile = bob\n\n\
         [profile target]\nrole_arn = {}\nsource_profile = hub\n\n\
         [profile bob-reader]\nrole_arn = {}\nsource_profile = bob\n\n",
        demo_config_file(),
        role_arn("hub"),
        role_arn("target"),
        role_arn("s3-reader"),
    )
}

#[test]
fn target_hub_keys_takes_one_code_that_then_serves_every_role_of_the_user() {
    let env = TestEnv::new();
    env.write_config(&hub_config());
    let run = env.run(["-p", "target", "-t", &env.code(BOB_SERIAL), "--", "env"]);
    run.success();
    let vars = run.env_lines();
    assert_eq!(vars["MFA_EXEC_ROLE_ARN"], role_arn("target"));
    assert_eq!(
        env.sts.key_owner(&vars["AWS_ACCESS_KEY_ID"]).as_deref(),
        Some("role/target")
    );
    // GetSessionToken by bob's own keys, hub by his MFA session, target by hub's session.
    assert_eq!(env.sts.signers_of("GetSessionToken"), ["user/bob"]);
    assert_eq!(
        env.sts.signers_of("AssumeRole"),
        ["session/bob", "role/hub"]
    );

    // The same code's session serves bob's other roles and the hub itself: no code, no prompt.
    env.run(["-p", "bob-reader", "--no-prompt", "--", "true"])
        .success();
    env.run(["-p", "hub", "--no-prompt", "--", "true"])
        .success();
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    assert_eq!(
        env.sts.signers_of("AssumeRole"),
        ["session/bob", "role/hub", "session/bob", "session/bob"]
    );

    // And target again is a cache hit: no call at all.
    let before = env.sts.total_calls();
    env.run(["-p", "target", "--no-prompt", "--", "true"])
        .success();
    assert_eq!(env.sts.total_calls(), before);
}

#[test]
fn a_chain_without_an_mfa_session_sends_the_code_with_the_first_role_and_caps_the_last() {
    let env = TestEnv::new();
    env.write_config(&format!(
        "{}[profile long-target]\nrole_arn = {}\nsource_profile = hub\nduration_seconds = 7200\n",
        hub_config(),
        role_arn("target")
    ));
    let run = env.run([
        "-p",
        "long-target",
        "--no-session",
        "-t",
        &env.code(BOB_SERIAL),
        "--",
        "env",
    ]);
    run.success();
    assert_eq!(env.sts.calls("GetSessionToken"), 0);
    assert_eq!(env.sts.signers_of("AssumeRole"), ["user/bob", "role/hub"]);
    // Role chaining: STS allows 1 h, so 2 h is asked down to 1 h with one warning.
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("warning"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].contains("role chaining") && warnings[0].contains("1h instead of 2h"),
        "{}",
        warnings[0]
    );
    let left = expiration_secs(&run.env_lines()["AWS_CREDENTIAL_EXPIRATION"]) - unix_now() as i64;
    assert!((3000..=3600).contains(&left), "{left}");

    // Through the MFA session the same profile is capped the same way.
    env.run([
        "-p",
        "long-target",
        "--refresh",
        "-t",
        &env.code(BOB_SERIAL),
        "--",
        "true",
    ])
    .success();
    assert_eq!(env.sts.signers_of("GetSessionToken"), ["user/bob"]);
}

#[test]
fn a_chain_whose_messages_name_the_real_cause_costs_no_call() {
    let env = TestEnv::new();
    let role = role_arn("s3-reader");
    env.write_config(&format!(
        "[profile half]\nmfa_serial = {ALICE_SERIAL}\n\n\
         [profile via-half]\nrole_arn = {role}\nsource_profile = half\n\n\
         [profile via-nowhere]\nrole_arn = {role}\nsource_profile = nowhere\nmfa_serial = {ALICE_SERIAL}\n\n\
         [profile both]\nrole_arn = {role}\nsource_profile = alice\ncredential_source = Environment\n\n\
         [profile ring-a]\nrole_arn = {role}\nsource_profile = ring-b\n\n\
         [profile ring-b]\nrole_arn = {role}\nsource_profile = ring-c\n\n\
         [profile ring-c]\nrole_arn = {role}\nsource_profile = ring-a\n\n\
         [profile console]\nlogin_session = arn:aws:iam::123456789012:user/alice\nmfa_serial = {ALICE_SERIAL}\n\n\
         [profile alice]\nmfa_serial = {ALICE_SERIAL}\n"
    ));
    env.write_credentials(&format!(
        "[half]\naws_access_key_id = {ALICE_KEY}\n\n[alice]\naws_access_key_id = {ALICE_KEY}\naws_secret_access_key = {ALICE_SECRET}\n"
    ));
    let code = "123456";
    env.run(["-p", "via-half", "-t", code, "--", "true"]).fails(
        125,
        &["profile 'half' is missing aws_secret_access_key", "add it"],
    );
    env.run(["-p", "via-nowhere", "-t", code, "--", "true"])
        .fails(
            125,
            &[
                "source_profile 'nowhere' (referenced from 'via-nowhere') does not exist",
                "fix source_profile in [profile via-nowhere]",
            ],
        );
    env.run(["-p", "both", "-t", code, "--", "true"]).fails(
        125,
        &["profile 'both' sets both source_profile and credential_source"],
    );
    env.run(["-p", "console", "-t", code, "--", "true"]).fails(
        125,
        &["profile 'console' uses login_session", "credentials-login"],
    );
    env.run(["-p", "ring-b", "-t", code, "--", "true"]).fails(
        125,
        &["source_profile loop: ring-b -> ring-c -> ring-a -> ring-b"],
    );
    assert_eq!(env.sts.total_calls(), 0);
}

#[test]
fn a_credential_process_that_runs_mfa_exec_for_its_own_profile_is_stopped_at_once() {
    let env = TestEnv::new();
    env.write_config(&format!(
        "{}[profile looped]\ncredential_process = {} --credential-process --profile looped\nmfa_serial = {ALICE_SERIAL}\n\n\
         [profile looped-role]\nrole_arn = {}\nsource_profile = looped\n",
        demo_config_file(),
        TestEnv::bin(),
        role_arn("s3-reader")
    ));
    let config = env.home().join(".aws/config").display().to_string();
    for profile in ["looped", "looped-role"] {
        let started = Instant::now();
        let run = env.run(["-p", profile, "-t", "123456", "--", "true"]);
        let took = started.elapsed();
        run.fails(
            125,
            &[
                "credential_process loop",
                "profile 'looped'",
                "credential_process of 'looped'",
                "[profile looped]",
                &config,
            ],
        );
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(took < Duration::from_secs(1), "took {took:?}");
    }
    // What the AWS CLI runs for such a profile stops the same way.
    env.run(["--credential-process", "-p", "looped"])
        .fails(125, &["credential_process loop"]);
    assert_eq!(env.sts.total_calls(), 0);

    // A credential_process that runs mfa-exec for another profile is no loop: the inner run
    // signs with alice's keys.
    env.write_config(&format!(
        "{}[profile proc]\ncredential_process = {} --credential-process --profile open --no-prompt\n\n\
         [profile via-proc]\nrole_arn = {}\nsource_profile = proc\nmfa_serial = {ALICE_SERIAL}\n",
        demo_config_file(),
        TestEnv::bin(),
        role_arn("s3-reader")
    ));
    env.run(["-p", "open", "-t", &env.alice_code(), "--", "true"])
        .success();
    env.run(["-p", "via-proc", "-t", &env.alice_code(), "--", "env"])
        .success();
    // The process gave role credentials (temporary): no GetSessionToken with them, the code
    // went with the AssumeRole, signed by the open role's session.
    assert_eq!(env.sts.signers_of("GetSessionToken"), ["user/alice"]);
    assert_eq!(
        env.sts.signers_of("AssumeRole"),
        ["session/alice", "role/open"]
    );
}

fn token_file(env: &TestEnv) -> String {
    let path = env.dir.path().join("token.jwt");
    std::fs::write(&path, WEB_IDENTITY_TOKEN).unwrap();
    path.display().to_string()
}

#[test]
fn a_web_identity_profile_resolves_alone_and_as_the_base_of_a_chain() {
    let env = TestEnv::new();
    let token = token_file(&env);
    env.write_config(&format!(
        "{}[profile ci]\nrole_arn = {}\nweb_identity_token_file = {token}\nrole_session_name = job-7\n\n\
         [profile ci-hub]\nrole_arn = {}\nsource_profile = ci\nmfa_serial = {ALICE_SERIAL}\n\n\
         [profile ci-target]\nrole_arn = {}\nsource_profile = ci-hub\n\n\
         [profile no-role]\nweb_identity_token_file = {token}\n",
        demo_config_file(),
        role_arn("ci"),
        role_arn("hub"),
        role_arn("target"),
    ));
    // On its own: AssumeRoleWithWebIdentity, no code, no device needed.
    let run = env.run(["-p", "ci", "--no-prompt", "--", "env"]);
    run.success();
    let key = &run.env_lines()["AWS_ACCESS_KEY_ID"];
    assert_eq!(env.sts.key_owner(key).as_deref(), Some("role/ci"));
    assert_eq!(env.sts.role_session_of(key).as_deref(), Some("job-7"));
    assert_eq!(env.sts.calls("AssumeRoleWithWebIdentity"), 1);

    // As a base: no GetSessionToken (STS would refuse the role's keys); the code goes with
    // hub's AssumeRole (its profile has mfa_serial), target is assumed by hub's session.
    let run = env.run(["-p", "ci-target", "-t", &env.alice_code(), "--", "env"]);
    run.success();
    assert_eq!(env.sts.calls("GetSessionToken"), 0);
    assert_eq!(env.sts.signers_of("AssumeRole"), ["role/ci", "role/hub"]);
    assert_eq!(
        env.sts
            .key_owner(&run.env_lines()["AWS_ACCESS_KEY_ID"])
            .as_deref(),
        Some("role/target")
    );

    env.run(["-p", "no-role", "--", "true"]).fails(
        125,
        &["profile 'no-role' has web_identity_token_file but no role_arn"],
    );
}

#[test]
fn an_instance_role_source_assumes_the_role_with_the_code_and_never_asks_for_a_session() {
    let mut env = TestEnv::new();
    let imds = Imds::start(&env.sts, INSTANCE_ROLE).expect("start the IMDS stand-in");
    env.set("AWS_EC2_METADATA_DISABLED", "false")
        .set("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url());
    env.write_config(&format!(
        "{}[profile ec2-hub]\nrole_arn = {}\ncredential_source = Ec2InstanceMetadata\nmfa_serial = {ALICE_SERIAL}\nduration_seconds = 7200\n\n\
         [profile ec2]\ncredential_source = Ec2InstanceMetadata\nmfa_serial = {ALICE_SERIAL}\n",
        demo_config_file(),
        role_arn("hub"),
    ));
    let run = env.run(["-p", "ec2-hub", "-t", &env.alice_code(), "--", "env"]);
    run.success();
    assert!(imds.credentials_served() >= 1);
    assert_eq!(env.sts.calls("GetSessionToken"), 0);
    assert_eq!(env.sts.signers_of("AssumeRole"), ["role/instance"]);
    assert!(run.stderr.contains("role chaining"), "{}", run.stderr);

    // No role: GetSessionToken cannot take the instance's keys; said before any call.
    let before = env.sts.total_calls();
    env.run(["-p", "ec2", "-t", &env.alice_code(), "--", "true"])
        .fails(
            125,
            &[
                "profile 'ec2' has no role to assume",
                "temporary",
                "role_arn",
            ],
        );
    assert_eq!(env.sts.total_calls(), before);
}

#[test]
fn list_shows_every_profile_with_its_chain_device_and_cache_and_never_a_secret() {
    let env = TestEnv::new();
    let token = token_file(&env);
    env.write_config(&format!(
        "{}[profile ci]\nrole_arn = {}\nweb_identity_token_file = {token}\n\n\
         [profile ec2-hub]\nrole_arn = {}\ncredential_source = Ec2InstanceMetadata\nmfa_serial = {ALICE_SERIAL}\n\n\
         [profile dev-sso]\nsso_session = corp\nsso_account_id = {}\nsso_role_name = Dev\n\n\
         [sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n\n\
         [profile proc]\ncredential_process = /bin/false\n\n\
         [profile broken]\nrole_arn = {}\nsource_profile = nowhere\n",
        hub_config(),
        role_arn("ci"),
        role_arn("hub"),
        sts_standin::ACCOUNT,
        role_arn("hub"),
    ));
    env.run(["-p", "target", "-t", &env.code(BOB_SERIAL), "--", "true"])
        .success();

    let run = env.run(["list"]);
    run.success();
    let line = |name: &str| {
        run.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{}", run.stdout))
            .to_string()
    };
    let target = line("target");
    assert!(
        target.contains("role target <- role hub <- keys of bob"),
        "{target}"
    );
    assert!(target.contains(BOB_SERIAL), "{target}");
    assert!(target.contains("left"), "cached credentials: {target}");
    assert!(line("bob-reader").contains("role bob-reader <- keys of bob"));
    // bob-reader has no credentials cached, but the MFA session it would use is.
    assert!(line("bob-reader").contains("left"));
    assert!(line("alice").contains("keys"));
    assert!(line("ci").contains("web identity"));
    assert!(line("ec2-hub").contains("role ec2-hub <- the EC2 instance's role"));
    assert!(line("dev-sso").contains("SSO"));
    assert!(line("proc").contains("credential_process"));
    assert!(line("broken").contains("does not exist"));
    for secret in [ALICE_SECRET, BOB_SECRET, "ASIA"] {
        assert!(!run.stdout.contains(secret), "{}", run.stdout);
    }

    let run = env.run(["list", "--json"]);
    run.success();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let target = doc
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["profile"] == "target")
        .unwrap();
    assert_eq!(target["roles"], serde_json::json!(["target", "hub"]));
    assert_eq!(target["source"], "keys of bob");
    assert_eq!(target["mfa_serial"], BOB_SERIAL);
    assert!(target["credentials_expire"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert!(target["session_expires"].as_str().unwrap().ends_with('Z'));

    // No profiles at all: a friendly line, success, nothing on stdout (`[]` for scripts).
    env.write_config("");
    env.write_credentials("");
    let run = env.run(["list"]);
    run.success();
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.contains("no profiles yet"), "{}", run.stderr);
    env.run(["list", "--json"]).success().prints("[]");
}

/// `2026-01-02T03:04:05Z` as unix seconds.
fn expiration_secs(text: &str) -> i64 {
    humantime::parse_rfc3339(text)
        .expect("RFC 3339")
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
