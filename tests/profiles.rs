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

/// The record of what a run asked of the parse (`profile::remembered`), in the cache directory.
fn remembered_parse(env: &TestEnv) -> Option<std::path::PathBuf> {
    std::fs::read_dir(env.cache_dir())
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "parsed"))
}

/// Files written a moment ago are not remembered (a write in the same clock tick could leave
/// the same identity); a person's files are older than this.
fn let_the_files_settle() {
    std::thread::sleep(Duration::from_millis(120));
}

/// A cache hit answers from what the previous run remembered of the parse, and an edit of
/// the config is seen by the very next run even when only the ctime tells it: the same size,
/// the same inode, and the modification time put back to the nanosecond.
#[test]
fn an_edit_of_the_same_size_within_the_same_second_is_seen_by_the_next_run() {
    let env = TestEnv::new();
    let config = |region: &str| {
        format!(
            "{}[profile eu]\nregion = {region}\nrole_arn = {}\nsource_profile = alice\n",
            demo_config_file(),
            role_arn("s3-reader")
        )
    };
    env.write_config(&config("eu-west-1"));
    let_the_files_settle();

    let first = env.run(["-p", "eu", "-t", &env.alice_code(), "--", "env"]);
    first.success();
    assert_eq!(first.env_lines()["AWS_REGION"], "eu-west-1");
    assert!(
        remembered_parse(&env).is_some(),
        "the first run remembered the parse"
    );
    let hit = env.run(["-p", "eu", "--", "env"]);
    hit.success();
    assert_eq!(hit.env_lines()["AWS_REGION"], "eu-west-1");
    assert_eq!(env.sts.total_calls(), 2, "the second run was a cache hit");

    let path = env.home().join(".aws/config");
    let before = std::fs::metadata(&path).unwrap();
    env.write_config(&config("eu-west-2"));
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(before.modified().unwrap())
        .unwrap();
    let after = std::fs::metadata(&path).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((after.len(), after.ino()), (before.len(), before.ino()));
    assert_eq!(after.modified().unwrap(), before.modified().unwrap());

    let edited = env.run(["-p", "eu", "--", "env"]);
    edited.success();
    assert_eq!(edited.env_lines()["AWS_REGION"], "eu-west-2");
}

/// What is remembered of the parse names no secret, is private like the cache, and a run that
/// must call STS reads the secret from the credentials file.
#[test]
fn the_remembered_parse_holds_no_secret_and_is_private() {
    let env = TestEnv::new();
    let_the_files_settle();
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    let record = remembered_parse(&env).expect("a remembered parse");
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(!text.contains(ALICE_SECRET), "{text}");
    assert!(text.contains("aws_secret_access_key"), "{text}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&record).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // From the record, a new MFA session: signed with the secret read from the file.
    let refreshed = env.run([
        "-p",
        "alice",
        "--refresh",
        "-t",
        &env.alice_code(),
        "--",
        "true",
    ]);
    refreshed.success();
    assert_eq!(env.sts.calls("GetSessionToken"), 2);
}

/// An organisation's generated config: 100,000 profiles. The right one resolves (cold, then
/// from the remembered parse), and `list` shows every one.
#[test]
fn a_config_of_a_hundred_thousand_profiles_resolves_and_lists_every_one() {
    let env = TestEnv::new();
    let mut config = demo_config_file();
    for n in 0..100_000 {
        config.push_str(&format!(
            "[profile team-{n}]\nrole_arn = arn:aws:iam::123456789012:role/team-{n}\nsource_profile = alice\n"
        ));
    }
    config.push_str(&format!(
        "[profile last]\nrole_arn = {}\nsource_profile = alice\n",
        role_arn("s3-reader")
    ));
    env.write_config(&config);
    let_the_files_settle();
    for code in [Some(env.alice_code()), None] {
        let mut args = vec!["-p", "last"];
        if let Some(code) = &code {
            args.extend(["-t", code]);
        }
        args.extend(["--", "env"]);
        let run = finish_within(spawn(&env, &args), Duration::from_secs(120));
        run.success();
        assert_eq!(run.env_lines()["MFA_EXEC_ROLE_ARN"], role_arn("s3-reader"));
    }
    assert_eq!(
        env.sts.calls("AssumeRole"),
        1,
        "the second run was a cache hit"
    );

    // Collected as it is written: 100,000 lines fill a pipe long before the end.
    let list = env.run(["list"]);
    list.success();
    let lines: Vec<&str> = list.stdout.lines().skip(1).collect();
    assert_eq!(lines.len(), 100_000 + 8, "{}", &list.stdout[..200]);
    assert!(lines.iter().any(|l| l.starts_with("team-99999 ")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("last ") && l.contains("role last <- keys of alice")));
}
