//! Reading ~/.aws as the AWS SDKs do: the profile a user names is the profile mfa-exec uses,
//! a file the SDKs refuse is refused before any STS call, and a "file" that never ends or is
//! absurdly large gets a clear error in bounded time.

mod support;

use std::io::Read;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::env::*;

/// Waits for a started mfa-exec at most `limit` (a guard against hangs, not a timing
/// assertion), then collects it.
fn finish_within(mut child: Child, limit: Duration) -> Run {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let (mut stdout, mut stderr) = (String::new(), String::new());
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut stdout)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return Run {
                status: status.code(),
                stdout,
                stderr,
            };
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("mfa-exec still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(env: &TestEnv, args: &[&str]) -> Child {
    env.mfa_exec(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A comment written straight after `]` once made a hand-written parser skip the header, so
/// prod's role landed in dev: `-p dev` assumed the production role. The SDK's parser reads it.
#[test]
fn a_comment_after_a_header_keeps_each_profile_its_own() {
    let env = TestEnv::new();
    env.write_config(&format!(
        "[profile base]\nmfa_serial = {ALICE_SERIAL}\n\
         [profile dev]\nmfa_serial = {ALICE_SERIAL}\nsource_profile = base\n\
         [profile prod]# production\nrole_arn = {}\nsource_profile = base\n",
        role_arn("s3-reader")
    ));
    // dev signs with its own keys (the SDKs ignore source_profile without role_arn).
    env.write_credentials(&format!(
        "[base]\naws_access_key_id = {ALICE_KEY}\naws_secret_access_key = {ALICE_SECRET}\n\
         [dev]\naws_access_key_id = {ALICE_KEY}\naws_secret_access_key = {ALICE_SECRET}\n"
    ));

    let dev = env.run([
        "-p",
        "dev",
        "--no-cache",
        "-t",
        &env.alice_code(),
        "--",
        "env",
    ]);
    dev.success();
    let vars = dev.env_lines();
    assert_eq!(vars["MFA_EXEC_PROFILE"], "dev");
    assert!(
        !vars.contains_key("MFA_EXEC_ROLE_ARN"),
        "dev is not a role: {vars:?}"
    );
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    assert_eq!(env.sts.calls("AssumeRole"), 0);

    let prod = env.run([
        "-p",
        "prod",
        "--no-cache",
        "-t",
        &env.alice_code(),
        "--",
        "env",
    ]);
    prod.success();
    assert_eq!(prod.env_lines()["MFA_EXEC_ROLE_ARN"], role_arn("s3-reader"));
    assert_eq!(env.sts.calls("AssumeRole"), 1);
}

/// What the SDKs refuse (here `key : value`) is refused in one line naming the file and the
/// line, and costs no STS call and no code.
#[test]
fn a_malformed_config_is_refused_before_any_sts_call() {
    let env = TestEnv::new();
    let config = format!(
        "{}[profile broken]\nregion : eu-west-1\n",
        demo_config_file()
    );
    let line = config.lines().count();
    env.write_config(&config);
    let run = env.run(["-p", "alice", "-t", "123456", "--", "true"]);
    run.fails(
        125,
        &[&format!("config on line {line}"), "Expected an '=' sign"],
    );
    assert_eq!(env.sts.calls("GetSessionToken"), 0);

    // The same for the credentials file, and for the profile list used by completion.
    env.write_config(&demo_config_file());
    env.write_credentials("[alice]\naws_access_key_id = x\n[profile alice]\n  indented\n");
    env.run(["-p", "alice", "-t", "123456", "--", "true"])
        .fails(125, &["credentials on line 4"]);
    env.run(["profiles"]).fails(125, &["credentials on line 4"]);
    assert_eq!(env.sts.total_calls(), 0);
}

/// A config "file" that never ends, or never starts (a FIFO nobody writes), is refused at
/// once instead of hanging or eating memory.
#[test]
fn dev_zero_and_a_fifo_as_the_config_file_are_refused_at_once() {
    let mut env = TestEnv::new();
    env.set("AWS_CONFIG_FILE", "/dev/zero");
    let run = finish_within(
        spawn(&env, &["-p", "alice", "--", "true"]),
        Duration::from_secs(20),
    );
    run.fails(125, &["/dev/zero is not a regular file", "AWS_CONFIG_FILE"]);

    let fifo = env.dir.path().join("config-fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    env.set("AWS_CONFIG_FILE", fifo.to_str().unwrap());
    let run = finish_within(
        spawn(&env, &["-p", "alice", "--", "true"]),
        Duration::from_secs(20),
    );
    run.fails(125, &["config-fifo is not a regular file"]);
    assert_eq!(env.sts.total_calls(), 0);
}

/// A few MB of real profiles (a big organisation's generated config) is read quickly; a file
/// far beyond any real one is refused with a clear message.
#[test]
fn a_two_megabyte_config_works_and_an_absurd_one_is_refused() {
    let mut env = TestEnv::new();
    let mut config = demo_config_file();
    let mut n = 0;
    while config.len() < 2 * 1024 * 1024 {
        config.push_str(&format!(
            "# team {n}\n[profile team-{n}]\nrole_arn = arn:aws:iam::123456789012:role/team-{n}\nsource_profile = alice\nregion = eu-west-1\n\n"
        ));
        n += 1;
    }
    config.push_str(&format!(
        "[profile last]\nrole_arn = {}\nsource_profile = alice\n",
        role_arn("s3-reader")
    ));
    env.write_config(&config);
    let run = finish_within(
        spawn(&env, &["-p", "last", "-t", &env.alice_code(), "--", "env"]),
        Duration::from_secs(30),
    );
    run.success();
    assert_eq!(run.env_lines()["MFA_EXEC_ROLE_ARN"], role_arn("s3-reader"));

    let big = env.dir.path().join("huge-config");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(64 * 1024 * 1024).unwrap(); // sparse: no disk used
    env.set("AWS_CONFIG_FILE", big.to_str().unwrap());
    let run = finish_within(
        spawn(&env, &["-p", "alice", "--", "true"]),
        Duration::from_secs(20),
    );
    run.fails(125, &["huge-config is larger than 16 MB"]);
}

/// Sections the SDKs do not see as the profile the user means get a message that says why,
/// instead of "not found" next to a section the user can see in the file.
#[test]
fn a_profile_the_sdks_ignore_is_explained() {
    let env = TestEnv::new();
    env.write_config(&format!(
        "{}[ops]\nregion = eu-west-1\n",
        demo_config_file()
    ));
    env.write_credentials(&format!(
        "{}[profile ci]\naws_access_key_id = {ALICE_KEY}\naws_secret_access_key = {ALICE_SECRET}\n",
        demo_credentials_file()
    ));
    env.run(["-p", "ops", "--", "true"])
        .fails(125, &["has [ops]", "[profile ops]; rename the section"]);
    env.run(["-p", "ci", "--", "true"])
        .fails(125, &["credentials has [profile ci]", "is [ci]"]);
    env.run(["-p", "o'brien", "--", "true"])
        .fails(125, &["only letters, digits and - / . % @ _ : +"]);
    assert_eq!(env.sts.total_calls(), 0);
}
