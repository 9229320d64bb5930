//! Compatibility with a second, independent STS: moto's server (PyPI). moto does not check
//! signatures or codes, but it answers with its own XML, so these runs prove mfa-exec reads
//! real-world replies and not only the stand-in's.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sts_standin::phone::{consecutive_codes, decode_terminal_qr, uri_param};
use sts_standin::{call_service, Keys, IAM_VERSION};
use support::background::Background;
use support::env::*;
use support::pty::OnTerminal;

/// moto's server, ended when dropped.
struct Moto {
    process: Background,
    url: String,
}

fn moto_server() -> Option<PathBuf> {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/venv/bin/moto_server");
    require_tool(
        "moto_server (pip install 'moto[server]')",
        &[venv, "moto_server"],
    )
}

/// moto's server on a free port, once it answers HTTP. The port is found free and then given to
/// moto, so another process (a parallel test's connection) can take it in between: moto then
/// exits, and it is started again on another port. Being ready means an HTTP answer, not only
/// a connection, which a socket that connected to itself (the port in the ephemeral range,
/// nothing listening) would also give.
fn start_moto(program: PathBuf) -> Moto {
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut moto = Moto {
            process: Background::spawn(
                std::process::Command::new(&program)
                    .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
                "moto_server",
            ),
            url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        loop {
            if moto.process.has_ended() {
                break; // the port was taken: another one
            }
            if answers_http(port) {
                return moto;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("moto exited at start three times (is the port range exhausted?)")
}

/// Whether something on the port answers a request with an HTTP status line.
fn answers_http(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = [0u8; 5];
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .and_then(|()| stream.read_exact(&mut head))
        .is_ok_and(|()| &head == b"HTTP/")
}

#[test]
fn both_operations_work_against_moto() {
    let Some(program) = moto_server() else { return };
    let moto = start_moto(program);
    let mut env = TestEnv::new();
    env.set("AWS_ENDPOINT_URL", &moto.url);

    let run = env.run(["-p", "alice", "-t", "123456", "--", "env"]);
    run.success();
    let vars = run.env_lines();
    assert!(!vars["AWS_SESSION_TOKEN"].is_empty());
    assert!(vars["AWS_CREDENTIAL_EXPIRATION"].ends_with('Z'));

    let run = env.run([
        "-p",
        "s3-reader",
        "--no-session",
        "-t",
        "654321",
        "--",
        "env",
    ]);
    run.success();
    let vars = run.env_lines();
    assert!(vars["AWS_ACCESS_KEY_ID"].starts_with("ASIA"), "{vars:?}");

    // The role through the MFA session moto issued above (cached): no code.
    let run = env.run(["-p", "auditor", "--print-env"]);
    run.success();
    assert!(run.stdout.contains("export AWS_SESSION_TOKEN='"));
}

/// `device add` against moto's IAM: moto answers with its own XML (its seed, a PNG that is
/// random bytes) and accepts any codes, but the QR code, the enabling and the config line must
/// still come out right.
#[test]
fn device_add_registers_a_device_at_moto() {
    let Some(program) = moto_server() else { return };
    let moto = start_moto(program);
    let mut env = TestEnv::new();
    env.set("AWS_ENDPOINT_URL", &moto.url);

    // moto keeps its own IAM users: dave and his keys are made there first.
    let admin = Keys::new(ALICE_KEY, ALICE_SECRET, None);
    let iam = |action: &str, params: &[(&str, &str)]| {
        let reply = call_service(&moto.url, &admin, "iam", IAM_VERSION, action, params).unwrap();
        assert!(reply.is_ok(), "{action}: {}", reply.body);
        reply
    };
    iam("CreateUser", &[("UserName", "dave")]);
    let key = iam("CreateAccessKey", &[("UserName", "dave")]);
    let (key_id, secret) = (
        key.field("AccessKeyId").unwrap(),
        key.field("SecretAccessKey").unwrap(),
    );
    env.write_credentials(&format!(
        "[dave]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
    ));
    env.write_config("# dave's profile\n[profile dave]\nregion = us-east-1\n");

    let Some(mut term) = OnTerminal::start(&env, &["device", "add", "-p", "dave"]) else {
        return;
    };
    let screen = term.screen_until("Enter the first code: ");
    let uri = decode_terminal_qr(&screen).unwrap_or_else(|| panic!("no QR code:\n{screen}"));
    let seed = uri_param(&uri, "secret").expect("a seed in the URI");
    let (first, second) = consecutive_codes(&seed);
    term.type_line(&first);
    term.expect("Enter the second code: ");
    term.type_line(&second);
    let (status, _, screen) = term.finish();
    assert_eq!(status, Some(0), "{screen}");

    let serial = "arn:aws:iam::123456789012:mfa/dave";
    let config = std::fs::read_to_string(env.home().join(".aws/config")).unwrap();
    assert_eq!(
        config,
        format!("# dave's profile\n[profile dave]\nregion = us-east-1\nmfa_serial = {serial}\n")
    );
    let list = env.run(["device", "list", "-p", "dave"]);
    list.success();
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with('*') && l.contains(serial)),
        "{}",
        list.stdout
    );
}
