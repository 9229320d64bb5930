//! Credentials that outlive the hour: the credential_process document that every SDK can call,
//! and `--server`, the local container-credentials endpoint that keeps a long command going
//! across role-credential expiries on one MFA code.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use support::env::*;
use support::pty::OnTerminal;

#[test]
fn credential_process_prints_the_sdk_document_and_nothing_else() {
    let env = TestEnv::new();
    let run = env.run([
        "--credential-process",
        "-p",
        "s3-reader",
        "-t",
        &env.alice_code(),
    ]);
    run.success();
    let doc: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("stdout is one JSON document");
    assert_eq!(doc["Version"], 1);
    assert!(doc["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    assert!(doc["SecretAccessKey"].as_str().unwrap().len() >= 40);
    assert!(doc["SessionToken"].as_str().unwrap().len() > 20);
    let exp = doc["Expiration"].as_str().unwrap();
    assert!(exp.ends_with('Z') && exp.contains('T'), "{exp}");
    // A second call is answered from the cache.
    env.run(["--credential-process", "-p", "s3-reader"])
        .success();
    assert_eq!(env.sts.calls("AssumeRole"), 1);
}

fn credential_process_profile(env: &TestEnv) {
    env.write_config(&format!(
        "{}[profile viaproc]\ncredential_process = {} --credential-process --profile s3-reader\n",
        demo_config_file(),
        TestEnv::bin()
    ));
}

#[test]
fn the_aws_cli_uses_mfa_exec_as_its_credential_process() {
    let Some(aws) = aws_cli() else { return };
    let env = TestEnv::new();
    credential_process_profile(&env);
    // Warm the cache, as a first interactive run would.
    env.run(["-p", "s3-reader", "-t", &env.alice_code(), "--", "true"])
        .success();
    let viaproc = [&AWS_WHOAMI[..], &["--profile", "viaproc"]].concat();
    let run = Run::from(env.command(&aws).args(&viaproc).output().unwrap());
    run.success().prints("assumed-role/s3-reader");
}

#[test]
fn under_the_aws_cli_the_prompt_still_reaches_the_terminal() {
    let Some(aws) = aws_cli() else { return };
    let env = TestEnv::new();
    credential_process_profile(&env);
    // The CLI captures the process's stdout and stderr; the prompt must use /dev/tty.
    let viaproc = [&AWS_WHOAMI[..], &["--profile", "viaproc"]].concat();
    let Some(mut term) = OnTerminal::start_program(&env, aws.as_os_str(), &viaproc) else {
        return;
    };
    term.expect("Enter MFA code for ");
    term.type_line(&env.alice_code());
    let (status, stdout, screen) = term.finish();
    assert_eq!(status, Some(0), "terminal: {screen}");
    assert!(stdout.contains("assumed-role/s3-reader"), "{stdout}");
}

/// `mfa-exec --server` running a shell child that prints its endpoint and token, then waits
/// for `release` to exist.
struct Served {
    child: Child,
    url: String,
    token: String,
    env_dump: String,
    release: PathBuf,
}

fn serve_waiting_child(env: &TestEnv, profile: &str) -> Served {
    let release = env.dir.path().join("release");
    let script = format!(
        "echo \"$AWS_CONTAINER_CREDENTIALS_FULL_URI\"; echo \"$AWS_CONTAINER_AUTHORIZATION_TOKEN\"; \
         env | grep -c '^AWS_ACCESS_KEY_ID=' ; \
         while [ ! -e '{}' ]; do sleep 0.05; done",
        release.display()
    );
    let mut child = env
        .mfa_exec([
            "--server",
            "-p",
            profile,
            "-t",
            &env.alice_code(),
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().expect("child output").unwrap();
    let (url, token, env_dump) = (next(), next(), next());
    Served {
        child,
        url,
        token,
        env_dump,
        release,
    }
}

/// A raw HTTP GET: status and body.
fn get(url: &str, authorization: Option<&str>) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[test]
fn the_server_answers_only_with_the_token_and_only_on_its_path() {
    let env = TestEnv::new();
    let served = serve_waiting_child(&env, "s3-reader");
    assert!(
        served.url.starts_with("http://127.0.0.1:"),
        "{}",
        served.url
    );
    assert!(served.token.len() >= 64, "a 32-byte token, hex");
    assert_eq!(served.env_dump, "0", "the child has no static keys");

    let (status, body) = get(&served.url, None);
    assert_eq!(status, 403);
    assert!(!body.contains("AccessKeyId"));
    let (status, body) = get(&served.url, Some("0000wrongtoken"));
    assert_eq!(status, 403);
    assert!(!body.contains("AccessKeyId"));
    let other = served.url.replace("/credentials", "/other");
    assert_eq!(get(&other, Some(&served.token)).0, 404);

    let (status, body) = get(&served.url, Some(&served.token));
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(doc["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    assert!(
        doc["Token"].as_str().unwrap().len() > 20,
        "the field is Token"
    );
    assert!(doc["SecretAccessKey"].is_string() && doc["Expiration"].is_string());

    std::fs::write(&served.release, "").unwrap();
    let mut child = served.child;
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_long_running_child_keeps_working_across_role_expiries_on_one_code() {
    let Some(python) = python_with_boto3() else {
        return;
    };
    let env = TestEnv::new();
    // The MFA session, with its normal lifetime.
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    // From now on the stand-in issues role credentials that live 3 seconds.
    env.sts.set_lifetime_override(Some(3));
    let script = r#"
import time, boto3
sts = boto3.client("sts", region_name="us-east-1")
arns = set()
for i in range(8):
    arns.add(sts.get_caller_identity()["Arn"])
    time.sleep(1.2)
print(len(arns), sorted(arns)[0])
"#;
    let server = ["--server", "-p", "s3-reader", "--min-remaining", "1s"];
    env.run_wrapping(&server, &python, &["-c", script])
        .success()
        .prints("assumed-role/s3-reader");
    // About ten seconds of calls with 3-second credentials: several renewals, no new code.
    assert!(
        env.sts.calls("AssumeRole") >= 3,
        "{}",
        env.sts.calls("AssumeRole")
    );
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    assert_eq!(env.sts.calls("GetCallerIdentity"), 8);
}

#[test]
fn when_the_mfa_session_ends_and_no_terminal_is_there_the_error_is_clear() {
    let env = TestEnv::new();
    // Credentials (and so the MFA session) that really end after 2 seconds.
    env.sts.set_lifetime_override(Some(2));
    let served = serve_waiting_child(&env, "alice");
    std::thread::sleep(Duration::from_millis(2500));
    let (status, body) = get(&served.url, Some(&served.token));
    assert_eq!(status, 500);
    assert!(
        body.contains("no terminal to ask for the MFA code"),
        "{body}"
    );
    assert!(!body.contains("AccessKeyId"));
    std::fs::write(&served.release, "").unwrap();
    let mut child = served.child;
    assert!(child.wait().unwrap().success());
}

/// `mfa-exec --server` for alice (whose session is already cached) running `script`.
fn serve_child(env: &TestEnv, script: &str) -> Child {
    env.mfa_exec(["--server", "-p", "alice", "--", "sh", "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_ready(child: &mut Child) {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

#[test]
fn signals_go_to_the_child_and_its_status_comes_back() {
    use nix::sys::signal::Signal::*;
    let env = TestEnv::new();
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    for (sig, code) in [(SIGTERM, 42), (SIGINT, 43), (SIGHUP, 44)] {
        let name = format!("{sig:?}").trim_start_matches("SIG").to_string();
        let mut child = serve_child(
            &env,
            &format!("trap 'exit {code}' {name}; echo ready; while :; do sleep 0.05; done"),
        );
        wait_ready(&mut child);
        signal(&child, sig);
        assert_eq!(child.wait().unwrap().code(), Some(code), "{name}");
    }
    // A child that dies of a signal: 128 + n.
    let mut child = serve_child(&env, "echo ready; kill -KILL $$");
    wait_ready(&mut child);
    assert_eq!(child.wait().unwrap().code(), Some(128 + 9));
    let mut child = serve_child(&env, "echo ready; exit 3");
    wait_ready(&mut child);
    assert_eq!(child.wait().unwrap().code(), Some(3));
}

/// The state letter of `/proc/PID/stat`, None once the process is gone.
fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S …": the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn a_command_dies_with_mfa_exec_when_mfa_exec_is_killed_with_sigkill() {
    // A CI runner that gives up sends SIGKILL, which mfa-exec cannot pass on. Where mfa-exec
    // stays the command's parent (exec mode with the history, --server), the command must
    // still die with it, as it would had mfa-exec exec'd it.
    let env = TestEnv::new();
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    let pidfile = env.home().join("command.pid");
    let script = format!("echo $$ > {}; echo ready; exec sleep 60", pidfile.display());
    for mode in [&[][..], &["--server"][..], &["--proxy"][..]] {
        let mut args: Vec<&str> = mode.to_vec();
        args.extend(["-p", "alice", "--", "sh", "-c", &script]);
        let mut mfa = env.mfa_exec(&args).stdout(Stdio::piped()).spawn().unwrap();
        wait_ready(&mut mfa);
        let command: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Until the shell has become sleep (same pid), it is still starting.
        let comm = || std::fs::read_to_string(format!("/proc/{command}/comm")).unwrap_or_default();
        let started = (0..200).any(|_| {
            if comm().trim() == "sleep" {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
            false
        });
        assert!(started, "{mode:?}: the command never started sleep");
        assert!(
            matches!(process_state(command), Some('S' | 'R')),
            "{mode:?}: running"
        );
        signal(&mfa, nix::sys::signal::Signal::SIGKILL);
        let status = mfa.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        // Gone, or a zombie its new parent has not reaped yet: either way, not running.
        let dead = (0..100).any(|_| {
            let state = process_state(command);
            if matches!(state, None | Some('Z') | Some('X')) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
            false
        });
        assert!(
            dead,
            "{mode:?}: the command outlived mfa-exec ({:?})",
            process_state(command)
        );
        std::fs::remove_file(&pidfile).unwrap();
    }
}

#[test]
fn the_aws_cli_under_the_server_gets_credentials_from_the_endpoint() {
    let Some(aws) = aws_cli() else { return };
    let env = TestEnv::new();
    let code = env.alice_code();
    env.run_wrapping(
        &["--server", "-p", "s3-reader", "-t", &code],
        &aws,
        &AWS_WHOAMI,
    )
    .success()
    .prints("assumed-role/s3-reader");
}

#[test]
fn a_default_profile_with_its_own_keys_is_flagged_because_sdks_would_read_it_first() {
    let env = TestEnv::new();
    env.write_credentials(&format!(
        "{}\n[default]\naws_access_key_id = {BOB_KEY}\naws_secret_access_key = {BOB_SECRET}\n",
        demo_credentials_file()
    ));
    let run = env.run([
        "--server",
        "-p",
        "alice",
        "-t",
        &env.alice_code(),
        "--",
        "true",
    ]);
    run.success();
    assert!(
        run.stderr
            .contains("profile 'default' has aws_access_key_id"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_missing_command_under_the_server_gets_status_127() {
    let env = TestEnv::new();
    env.run([
        "--server",
        "-p",
        "alice",
        "-t",
        &env.alice_code(),
        "--",
        "no-such-command-xyz",
    ])
    .fails(127, &["no-such-command-xyz: command not found"]);
}

#[test]
fn without_the_disk_cache_the_server_keeps_the_mfa_session_in_memory() {
    let Some(python) = python_with_boto3() else {
        return;
    };
    let env = TestEnv::new();
    // Role credentials live 3 seconds; the MFA session keeps its normal lifetime.
    env.sts.set_role_lifetime_override(Some(3));
    let script = r#"
import time, boto3
sts = boto3.client("sts", region_name="us-east-1")
for i in range(6):
    print(sts.get_caller_identity()["Arn"])
    time.sleep(1.2)
"#;
    let code = env.alice_code();
    let server = [
        "--server",
        "--no-cache",
        "-p",
        "s3-reader",
        "-t",
        &code,
        "--min-remaining",
        "1s",
    ];
    env.run_wrapping(&server, &python, &["-c", script])
        .success()
        .prints("assumed-role/s3-reader");
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    assert!(
        env.sts.calls("AssumeRole") >= 2,
        "{}",
        env.sts.calls("AssumeRole")
    );
    assert!(!env.cache_dir().exists(), "--no-cache wrote to disk");
}
