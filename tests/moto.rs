//! Compatibility with a second, independent STS: moto's server (PyPI). moto does not check
//! signatures or codes, but it answers with its own XML, so these runs prove mfa-exec reads
//! real-world replies and not only the stand-in's.

mod support;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::env::*;

struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_server() -> Option<PathBuf> {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/venv/bin/moto_server");
    require_tool(
        "moto_server (pip install 'moto[server]')",
        &[venv, "moto_server"],
    )
}

fn start_moto(program: PathBuf) -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "moto did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
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
