//! HTTPS, as it is between mfa-exec and real AWS: the stand-in behind a TLS terminator with a
//! certificate from a private CA (openssl), which mfa-exec trusts only when the system's roots
//! include it (`SSL_CERT_FILE`, as rustls-native-certs reads it). This is the path every call
//! to AWS takes, through the SDK's HTTPS client on rustls with ring; the other tests talk
//! plain HTTP to the stand-in.

mod support;

use std::path::Path;
use std::process::Command;

use support::background::Background;
use support::env::*;

/// A private CA and a certificate it signed for `localhost` and 127.0.0.1, as a server has:
/// rustls refuses a self-signed CA certificate used as the server's own.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
            &["-subj", "/CN=mfa-exec test CA"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

/// Terminates TLS on a free port and pipes each connection's bytes to `upstream` (the
/// stand-in's host:port) unchanged; ended when dropped.
struct Terminator {
    _process: Background,
    port: u16,
}

const TERMINATOR: &str = r#"
import socket, ssl, sys, threading
cert, key, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
print(srv.getsockname()[1], flush=True)
def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def handle(conn):
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (OSError, ssl.SSLError):
        conn.close()
        return
    up = socket.create_connection((host, port))
    threading.Thread(target=pipe, args=(tls, up), daemon=True).start()
    pipe(up, tls)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
"#;

fn terminator(dir: &Path, upstream: &str) -> Option<Terminator> {
    let python = require_tool("python3", &["python3"])?;
    let (host, port) = upstream.rsplit_once(':').expect("host:port");
    let (process, port) = Background::ready_line(
        Command::new(python)
            .args(["-c", TERMINATOR])
            .arg(dir.join("server.pem"))
            .arg(dir.join("server.key"))
            .args([host, port]),
        "the TLS terminator",
    );
    let port = port.parse().expect("the terminator's port");
    Some(Terminator {
        _process: process,
        port,
    })
}

/// The stand-in behind TLS: the environment, and the HTTPS endpoint (held for the test).
fn behind_tls() -> Option<(TestEnv, Terminator)> {
    require_tool("openssl", &["openssl"])?;
    let mut env = TestEnv::new();
    let certs = env.dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    make_certificates(&certs);
    let upstream = env.sts.url();
    let upstream = upstream.trim_start_matches("http://").trim_end_matches('/');
    let tls = terminator(&certs, upstream)?;
    env.set(
        "AWS_ENDPOINT_URL",
        &format!("https://localhost:{}", tls.port),
    );
    Some((env, tls))
}

#[test]
fn a_run_gets_its_credentials_over_https_from_an_endpoint_the_system_roots_trust() {
    let Some((mut env, _tls)) = behind_tls() else {
        return;
    };
    let ca = env.dir.path().join("certs/ca.pem");
    env.set("SSL_CERT_FILE", ca.to_str().unwrap());
    let code = env.alice_code();
    let run = env.run(["-p", "s3-reader", "-t", &code, "--", "env"]);
    run.success();
    assert!(run.env_lines()["AWS_ACCESS_KEY_ID"].starts_with("ASIA"));
    // Both calls went through TLS: the MFA session, then the role from it.
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    assert_eq!(env.sts.calls("AssumeRole"), 1);
}

#[test]
fn an_endpoint_whose_certificate_no_root_vouches_for_is_refused_with_the_reason() {
    let Some((env, _tls)) = behind_tls() else {
        return;
    };
    // The system's roots do not include the private CA.
    let code = env.alice_code();
    env.run(["-p", "alice", "-t", &code, "--", "true"])
        .fails_in_one_line(
            125,
            &["cannot reach STS at https://localhost", "certificate"],
        );
    assert_eq!(env.sts.calls("GetSessionToken"), 0);
}
