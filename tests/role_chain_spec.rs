//! The AWS SDK for Rust's specification of profile resolution (`tests/data/assume-role-tests.json`,
//! vendored from smithy-rs, Apache-2.0; see tests/data/README.md) as a test of mfa-exec: every
//! case is written into a real config file and run through the real binary against the STS
//! stand-in, with and without `--no-session`. The stand-in says which keys signed each call, so
//! a case passes only if the chain the spec names is the chain that was assumed: from the
//! spec's keys (through mfa-exec's MFA session first, or directly with `--no-session`), the
//! instance's role, or a web identity, each role in the spec's order. An error case passes if
//! mfa-exec refuses it with the same cause, in its own words, before any STS call.
//!
//! Every case runs; none is skipped. The spec's placeholders are mapped onto the stand-in: its
//! access keys are users of the stand-in's account (each with an MFA device), `RoleA` and
//! `RoleB` are roles there (RoleA wants MFA and, where a case sets one, its external id),
//! `/var/token.jwt` is a file holding the token RoleA and RoleB trust, and the instance's
//! metadata service is the stand-in's.

mod support;

use std::collections::BTreeMap;

use serde_json::Value;
use sts_standin::{Config, Imds, Role, User, INSTANCE_ROLE, WEB_IDENTITY_TOKEN};
use support::env::*;

/// The spec's access keys, played by users of the stand-in: (spec key, access key id, secret,
/// TOTP seed). The user's name is the spec's key.
const SPEC_USERS: [(&str, &str, &str, &str); 4] = [
    (
        "abc123",
        "AKIASPECABC123000001",
        "specABC123secret/specABC123secret/spec01",
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
    ),
    (
        "ghi890",
        "AKIASPECGHI890000002",
        "specGHI890secret/specGHI890secret/spec02",
        "MFRGGZDFMZTWQ2LKMFRGGZDFMZTWQ2LK",
    ),
    (
        "mno456",
        "AKIASPECMNO456000003",
        "specMNO456secret/specMNO456secret/spec03",
        "ONSWG4TFORZGK4DBONSWG4TFORZGK4DB",
    ),
    (
        "profile_b_key",
        "AKIASPECPROFILEB0004",
        "specPROFILEBsecret/specPROFILEBsecret/04",
        "KRUGS4ZANFZSAYJAKRUGS4ZANFZSAYJA",
    ),
];

/// Keys the spec says must never be used: unknown to the stand-in, so using them fails.
const BUG_KEY: &str = "AKIABUGIFRETURNED000";

fn spec_serial(user: &str) -> String {
    format!("arn:aws:iam::{}:mfa/{user}", sts_standin::ACCOUNT)
}

/// The spec's error, as mfa-exec words the same cause.
fn our_words(spec_error: &str) -> &'static str {
    match spec_error {
        "profile must contain `source_profile`" => {
            "has role_arn but no source_profile or credential_source"
        }
        "profile contained both source_profile and credential_source" => {
            "sets both source_profile and credential_source"
        }
        "profile missing aws_secret_access_key" => "is missing aws_secret_access_key",
        "profile missing aws_access_key_id" => "is missing aws_access_key_id",
        "expected `aws_access_key_id` and `aws_secret_access_key` to be defined" => {
            "no source credentials for profile 'B'"
        }
        "could not find source profile B referenced from A" => {
            "source_profile 'B' (referenced from 'A') does not exist"
        }
        "No profiles were defined" => "profile 'A' is not in",
        "profile formed an infinite loop" => "source_profile loop: A -> B -> A",
        "`role_arn` was missing" => "has web_identity_token_file but no role_arn",
        other => panic!("a spec error without a translation: {other}"),
    }
}

/// The stand-in for a case: the demo account, the spec's users, RoleA and RoleB.
fn config(case: &Value) -> Config {
    let mut config = Config::demo();
    for (name, key, secret, seed) in SPEC_USERS {
        config.users.push(User {
            name: name.to_string(),
            access_key_id: key.to_string(),
            secret_access_key: secret.to_string(),
            mfa_serial: Some(spec_serial(name)),
            totp_seed_base32: seed.to_string(),
        });
    }
    let selected = case["input"]["selected_profile"].as_str().unwrap();
    let external_id = case["input"]["profile"][selected]["external_id"]
        .as_str()
        .map(String::from);
    for name in ["RoleA", "RoleB"] {
        config.roles.push(Role {
            name: name.to_string(),
            arn: role_arn(name),
            // RoleB is the middle of chains that take the code at RoleA.
            require_mfa: name == "RoleA",
            max_session_duration: 43_200,
            external_id: external_id.clone().filter(|_| name == "RoleA"),
            trusted_users: SPEC_USERS.iter().map(|u| u.0.to_string()).collect(),
            trusted_roles: vec![INSTANCE_ROLE.to_string(), "RoleB".to_string()],
            web_identity_token: Some(WEB_IDENTITY_TOKEN.to_string()),
            ..Role::default()
        });
    }
    config
}

/// What the spec expects, in the stand-in's terms.
enum Expected {
    Error(&'static str),
    Chain {
        /// `user/NAME`, `role/instance` or `web/ROLE` (AssumeRoleWithWebIdentity).
        base: String,
        /// Roles assumed after the base, in order.
        roles: Vec<String>,
        /// The session name of the last step, when the spec sets one.
        session_name: Option<String>,
    },
}

fn role_name(arn: &str) -> String {
    arn.rsplit('/').next().unwrap().to_string()
}

fn expected(case: &Value) -> Expected {
    let output = &case["output"];
    if let Some(error) = output["Error"].as_str() {
        return Expected::Error(our_words(error));
    }
    let steps = output["ProfileChain"].as_array().unwrap();
    let base = &steps[0];
    let mut session_name = None;
    let base = if let Some(keys) = base.get("AccessKey") {
        format!("user/{}", keys["access_key_id"].as_str().unwrap())
    } else if base.get("NamedSource").is_some() {
        format!("role/{INSTANCE_ROLE}")
    } else {
        let web = &base["WebIdentityToken"];
        session_name = web["role_session_name"].as_str().map(String::from);
        format!("web/{}", role_name(web["role_arn"].as_str().unwrap()))
    };
    let roles: Vec<String> = steps[1..]
        .iter()
        .map(|s| role_name(s["AssumeRole"]["role_arn"].as_str().unwrap()))
        .collect();
    if let Some(last) = steps[1..].last() {
        session_name = last["AssumeRole"]["role_session_name"]
            .as_str()
            .map(String::from);
    }
    Expected::Chain {
        base,
        roles,
        session_name,
    }
}

/// The case's profiles as a config file, the spec's placeholders mapped onto the stand-in.
fn config_file(case: &Value, token_file: &str, serial: &str) -> String {
    let keys: BTreeMap<&str, (&str, &str)> = SPEC_USERS
        .iter()
        .map(|(name, key, secret, _)| (*name, (*key, *secret)))
        .collect();
    let selected = case["input"]["selected_profile"].as_str().unwrap();
    let mut text = String::new();
    for (name, props) in case["input"]["profile"].as_object().unwrap() {
        text.push_str(&format!("[profile {name}]\n"));
        let key_of = |id: &str| keys.get(id).copied();
        for (k, v) in props.as_object().unwrap() {
            let v = v.as_str().unwrap();
            let value = match k.as_str() {
                "role_arn" if v.starts_with("arn:aws:iam::123456789:role/") => {
                    role_arn(&role_name(v))
                }
                "web_identity_token_file" => token_file.to_string(),
                "aws_access_key_id" if v == "bug_if_returned" => BUG_KEY.to_string(),
                "aws_secret_access_key" if v == "bug_if_returned" => "bug".repeat(10),
                "aws_access_key_id" => key_of(v).map_or(v.to_string(), |k| k.0.to_string()),
                "aws_secret_access_key" => {
                    // The spec pairs each key with its secret in the same profile.
                    let id = props["aws_access_key_id"].as_str().unwrap_or("");
                    key_of(id).map_or(v.to_string(), |k| k.1.to_string())
                }
                _ => v.to_string(),
            };
            text.push_str(&format!("{k} = {value}\n"));
        }
        if name == selected {
            text.push_str(&format!("mfa_serial = {serial}\n"));
        }
        text.push('\n');
    }
    text
}

/// Runs one case in one mode; Err says how it differs from the spec. `warm`: the case runs
/// twice, the second time answered from what the first remembered of the parse
/// (`profile::remembered`), and both must walk the spec's chain.
fn run_case(case: &Value, no_session: bool, warm: bool) -> Result<(), String> {
    let expected = expected(case);
    let mut env = TestEnv::with_config(config(case));
    let token_file = env.dir.path().join("token.jwt");
    std::fs::write(&token_file, WEB_IDENTITY_TOKEN).unwrap();
    let serial = match &expected {
        Expected::Chain { base, .. } if base.starts_with("user/") => spec_serial(&base[5..]),
        _ => ALICE_SERIAL.to_string(),
    };
    env.write_config(&config_file(
        case,
        &token_file.display().to_string(),
        &serial,
    ));
    env.write_credentials("");
    let imds = Imds::start(&env.sts, INSTANCE_ROLE).unwrap();
    env.set("AWS_EC2_METADATA_DISABLED", "false")
        .set("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url());

    let selected = case["input"]["selected_profile"].as_str().unwrap();
    let passes = if warm {
        // Files written a moment ago are never remembered (the same identity could hide a
        // second write in the same clock tick); a person's files are older than this.
        std::thread::sleep(std::time::Duration::from_millis(120));
        2
    } else {
        1
    };
    let mut run = None;
    for pass in 0..passes {
        let code = match &expected {
            Expected::Error(_) => "123456".to_string(),
            Expected::Chain { .. } => env.code(&serial),
        };
        let mut args = vec!["-p", selected, "-t", code.as_str()];
        if no_session {
            args.push("--no-session");
        }
        if pass > 0 {
            // The first pass cached the credentials: this one calls STS again, so that its
            // chain is seen.
            args.push("--no-cache");
        }
        args.extend(["--", "env"]);
        let this = env.run(&args);
        if pass == 0 && warm && this.status == Some(0) && !remembered(&env) {
            return Err("the first run remembered nothing of the parse".into());
        }
        run = Some(this);
    }
    let run = run.unwrap();

    let (base, roles, session_name) = match expected {
        Expected::Error(needle) => {
            let line = run.stderr.trim_end();
            if run.status != Some(125) || !line.contains(needle) || line.lines().count() != 1 {
                return Err(format!(
                    "expected one line with {needle:?} and status 125, got {:?}: {line}",
                    run.status
                ));
            }
            if env.sts.total_calls() != 0 {
                return Err(format!(
                    "{} STS calls before the refusal",
                    env.sts.total_calls()
                ));
            }
            return Ok(());
        }
        Expected::Chain {
            base,
            roles,
            session_name,
        } => (base, roles, session_name),
    };
    if run.status != Some(0) {
        return Err(format!(
            "failed ({:?}): {}",
            run.status,
            run.stderr.trim_end()
        ));
    }
    // Who signed each AssumeRole: the base (or the MFA session of its user), then each role.
    let mut want_signers = Vec::new();
    let mut want_sessions = Vec::new();
    let mut final_owner = roles
        .last()
        .map(|r| format!("role/{r}"))
        .unwrap_or_default();
    if let Some(user) = base.strip_prefix("user/") {
        if no_session {
            want_signers.push(base.clone());
        } else {
            want_sessions.push(base.clone());
            want_signers.push(format!("session/{user}"));
        }
    } else if let Some(web) = base.strip_prefix("web/") {
        if roles.is_empty() {
            final_owner = format!("role/{web}");
        } else {
            want_signers.push(format!("role/{web}"));
        }
    } else {
        want_signers.push(base.clone());
    }
    for role in roles.iter().take(roles.len().saturating_sub(1)) {
        want_signers.push(format!("role/{role}"));
    }
    let want_signers: Vec<String> = want_signers
        .iter()
        .cycle()
        .take(want_signers.len() * passes)
        .cloned()
        .collect();
    let want_sessions: Vec<String> = want_sessions
        .iter()
        .cycle()
        .take(want_sessions.len() * passes)
        .cloned()
        .collect();
    let signers = env.sts.signers_of("AssumeRole");
    let sessions = env.sts.signers_of("GetSessionToken");
    if signers != want_signers || sessions != want_sessions {
        return Err(format!(
            "GetSessionToken by {sessions:?} and AssumeRole by {signers:?}; the spec's chain is GetSessionToken by {want_sessions:?} and AssumeRole by {want_signers:?}"
        ));
    }
    let web_calls = env.sts.calls("AssumeRoleWithWebIdentity");
    if web_calls != usize::from(base.starts_with("web/")) * passes {
        return Err(format!("{web_calls} AssumeRoleWithWebIdentity calls"));
    }
    let key = run.env_lines()["AWS_ACCESS_KEY_ID"].clone();
    let owner = env.sts.key_owner(&key);
    if owner.as_deref() != Some(final_owner.as_str()) {
        return Err(format!(
            "the command got keys of {owner:?}, not {final_owner}"
        ));
    }
    if let Some(name) = session_name {
        let got = env.sts.role_session_of(&key);
        if got.as_deref() != Some(name.as_str()) {
            return Err(format!("role session name {got:?}, not {name}"));
        }
    }
    Ok(())
}

/// Whether a run left a record of what it asked of the parse in the cache directory.
fn remembered(env: &TestEnv) -> bool {
    std::fs::read_dir(env.cache_dir())
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().extension().is_some_and(|x| x == "parsed"))
}

fn every_case(warm: bool) {
    let cases: Vec<Value> =
        serde_json::from_str(include_str!("data/assume-role-tests.json")).unwrap();
    assert_eq!(cases.len(), 21, "the spec has 21 cases");
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        for no_session in [false, true] {
            if let Err(why) = run_case(case, no_session, warm) {
                let mode = if no_session { " (--no-session)" } else { "" };
                failures.push(format!("case {i} {:?}{mode}: {why}", case["docs"]));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_case_of_the_sdks_role_chain_spec_resolves_as_the_spec_says() {
    every_case(false);
}

/// The same from the remembered parse: a second run with the very same files answers from
/// the record of the first, and walks the same chain.
#[test]
fn every_case_resolves_as_the_spec_says_from_the_remembered_parse_too() {
    every_case(true);
}
