//! mfa-exec against a hostile local user and a hostile environment, each story an attack run
//! against the real binary. The credential server is attacked with real sockets on 127.0.0.1
//! (a flood under a low file-descriptor limit, a 64 MB request head, 200 slow clients) while
//! its child's own request must still be answered; the cache with FIFOs, huge files and
//! leftovers of killed writes; the terminal with escape sequences in profile names; STS with
//! broken endpoints and answers.

mod support;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::env::*;

/// `mfa-exec --server` (under `ulimit -n LIMIT` when given) running a shell child that prints
/// its endpoint and token, then waits for `release` to exist.
struct Served {
    child: Child,
    url: String,
    token: String,
    release: PathBuf,
}

impl Served {
    fn start(env: &TestEnv, fd_limit: Option<u32>) -> Served {
        let release = env.dir.path().join("release");
        let script = format!(
            "echo \"$AWS_CONTAINER_CREDENTIALS_FULL_URI\"; echo \"$AWS_CONTAINER_AUTHORIZATION_TOKEN\"; \
             while [ ! -e '{}' ]; do sleep 0.05; done",
            release.display()
        );
        let code = env.alice_code();
        let args = [
            "--server",
            "-p",
            "s3-reader",
            "-t",
            &code,
            "--",
            "sh",
            "-c",
            &script,
        ];
        let mut cmd = match fd_limit {
            // exec: the server itself runs under the limit, with the same pid.
            Some(limit) => {
                let mut cmd = env.command("sh");
                cmd.arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(TestEnv::bin())
                    .args(args);
                cmd
            }
            None => env.mfa_exec(args),
        };
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = || lines.next().expect("the child's output").unwrap();
        let (url, token) = (next(), next());
        Served {
            child,
            url,
            token,
            release,
        }
    }

    fn host(&self) -> String {
        let rest = self.url.strip_prefix("http://").unwrap();
        rest[..rest.find('/').unwrap()].to_string()
    }

    /// The child's own request: status and body, or why there was none within `patience`.
    fn child_request(&self, patience: Duration) -> Result<(u16, String), String> {
        let host = self.host();
        let mut stream = TcpStream::connect(&host).map_err(|e| format!("connect: {e}"))?;
        stream.set_read_timeout(Some(patience)).unwrap();
        write!(
            stream,
            "GET /credentials HTTP/1.1\r\nHost: {host}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
            self.token
        )
        .map_err(|e| format!("send: {e}"))?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|e| format!("no answer within {patience:?}: {e}"))?;
        let status = response
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP response: {response:?}"))?;
        let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        Ok((status, body))
    }

    #[track_caller]
    fn child_gets_credentials(&self) {
        let (status, body) = self
            .child_request(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("the child's request failed: {e}"));
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"AccessKeyId\":\"ASIA"), "{body}");
    }

    /// Lets the child finish; the server's stderr.
    fn finish(mut self) -> String {
        std::fs::write(&self.release, "").unwrap();
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(status.success(), "{stderr}");
        stderr
    }

    /// The server's peak resident memory, in KiB.
    fn peak_memory_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }
}

/// A failed test still ends its server and child (the child waits for `release`).
impl Drop for Served {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.release, "");
        for _ in 0..100 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- the credential server under attack ---------------------------------------------------------

#[test]
fn a_connection_flood_under_a_low_fd_limit_does_not_take_the_endpoint_away() {
    let env = TestEnv::new();
    // 64 descriptors: a few hundred bare connections exhaust them many times over.
    let served = Served::start(&env, Some(64));
    let host = served.host();
    let addr = host.parse().unwrap();
    let flood: Vec<TcpStream> = (0..400)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok())
        .collect();
    assert!(flood.len() > 64, "only {} connections opened", flood.len());
    // While the flood holds its connections, and after it lets go, the child is answered.
    served.child_gets_credentials();
    drop(flood);
    served.child_gets_credentials();
    served.finish();
}

/// Keeps up to 300 connections to the endpoint open, always opening new ones and closing the
/// oldest, for `secs` seconds: as fast as Python can.
const FLOODER: &str = r#"
import collections, socket, sys, time
port, end = int(sys.argv[1]), time.time() + float(sys.argv[2])
held = collections.deque()
while time.time() < end:
    try:
        held.append(socket.create_connection(("127.0.0.1", port), timeout=1))
    except OSError:
        time.sleep(0.001)
    while len(held) > 300:
        held.popleft().close()
"#;

#[test]
fn a_sustained_flood_by_another_user_does_not_keep_the_child_waiting() {
    if !nix::unistd::geteuid().is_root() {
        skipped("flooding as another user (nobody) needs root");
        return;
    }
    let Some(python) = require_tool(
        "python3 (Debian's, runnable by nobody)",
        &["/usr/bin/python3"],
    ) else {
        return;
    };
    let Some(setpriv) = require_tool("setpriv (util-linux)", &["setpriv"]) else {
        return;
    };
    let env = TestEnv::new();
    // 64 descriptors: at most 16 connections without the token at a time.
    let served = Served::start(&env, Some(64));
    let port = served.host().rsplit_once(':').unwrap().1.to_string();
    let flooders: Vec<Child> = (0..3)
        .map(|_| {
            Command::new(&setpriv)
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&python)
                .args(["-c", FLOODER, &port, "20"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // The oldest connections without the token are dropped to make room: each of the child's
    // requests (sent as soon as it connects, as SDKs do) is answered.
    for _ in 0..30 {
        served.child_gets_credentials();
    }
    for mut flooder in flooders {
        assert!(
            flooder.try_wait().unwrap().is_none(),
            "the flood ended before the child's requests"
        );
        let _ = flooder.kill();
        let _ = flooder.wait();
    }
    served.finish();
}

#[test]
fn a_64_mb_request_head_is_cut_off_before_the_token_is_even_checked() {
    let env = TestEnv::new();
    let served = Served::start(&env, None);
    let mut stream = TcpStream::connect(served.host()).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /credentials HTTP/1.1\r\nHost: x\r\nX-Padding: ")
        .unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    while sent < 64 << 20 {
        match stream.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break, // the server hung up: what is wanted
        }
    }
    assert!(
        sent < 64 << 20,
        "the server took all 64 MB of a request head"
    );
    // The server never held the head: its peak memory is far below 64 MB.
    let peak = served.peak_memory_kib();
    assert!(peak < 48 * 1024, "peak resident memory {peak} KiB");
    served.child_gets_credentials();
    served.finish();
}

#[test]
fn two_hundred_slow_clients_neither_keep_the_child_waiting_nor_stay_connected() {
    let env = TestEnv::new();
    let served = Served::start(&env, None);
    let host = served.host();
    // Each sends half a request head and then nothing.
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = TcpStream::connect(&host).unwrap();
            s.write_all(b"GET /credentials HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    served.child_gets_credentials();
    // The server gives a head a few seconds to arrive, then hangs up: reading ends (EOF
    // or a reset) instead of waiting forever.
    let mut one = slow.pop().unwrap();
    one.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut sink = Vec::new();
    if let Err(e) = one.read_to_end(&mut sink) {
        assert!(
            !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "a slow client was still connected after 20 s"
        );
    }
    drop(slow);
    served.finish();
}

// ---- margins: how fresh credentials must be -----------------------------------------------------

#[test]
fn a_huge_min_remaining_never_hands_out_expired_credentials() {
    let env = TestEnv::new();
    env.sts.set_lifetime_override(Some(2));
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    // The cached session has expired.
    std::thread::sleep(Duration::from_millis(2500));
    // 2^63: wrapped through a signed cast, this once made every entry "fresh".
    let mut env = env;
    env.set("MFA_EXEC_MIN_REMAINING", "9223372036854775808");
    env.run(["-p", "alice", "--no-prompt", "--", "true"])
        .fails(125, &["MFA_EXEC_MIN_REMAINING", "at most 36h"]);
    // The largest margin accepted still cannot make the expired entry fresh.
    env.set("MFA_EXEC_MIN_REMAINING", "36h");
    env.run(["-p", "alice", "--no-prompt", "--", "true"])
        .fails(125, &["new MFA code is needed"]);
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}

#[test]
fn credentials_shorter_than_the_margin_are_not_fetched_again_for_every_request() {
    let env = TestEnv::new();
    // Role credentials that live 40 s, under the default 5-minute margin.
    env.sts.set_role_lifetime_override(Some(40));
    let code = env.alice_code();
    env.run(["--credential-process", "-p", "s3-reader", "-t", &code])
        .success();
    for _ in 0..3 {
        env.run(["--credential-process", "-p", "s3-reader"])
            .success();
    }
    assert_eq!(env.sts.calls("AssumeRole"), 1);
    // The server too: three requests, no renewal.
    let served = Served::start(&env, None);
    for _ in 0..3 {
        served.child_gets_credentials();
    }
    served.finish();
    assert_eq!(env.sts.calls("AssumeRole"), 1);
}

// ---- the token command --------------------------------------------------------------------------

#[test]
fn a_password_in_the_token_command_is_never_printed() {
    let env = TestEnv::new();
    for (command, program) in [
        ("OATH_PASSWORD=hunter2 false", "false"),
        ("OATH_PASSWORD=hunter2 echo 12", "echo"),
    ] {
        env.write_config(&format!(
            "{}[profile withproc]\nmfa_serial = {ALICE_SERIAL}\nsource_profile = alice\nrole_arn = {}\nmfa_process = {command}\n",
            demo_config_file(),
            role_arn("s3-reader")
        ));
        let run = env.run(["-p", "withproc", "--no-cache", "--", "true"]);
        run.fails(125, &[&format!("the token command ({program} …)")]);
        assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    }
}

#[test]
fn a_token_command_that_never_stops_printing_is_cut_off() {
    let env = TestEnv::new();
    env.write_config(&format!(
        "{}[profile endless]\nmfa_serial = {ALICE_SERIAL}\nsource_profile = alice\nrole_arn = {}\nmfa_process = yes 123456\n",
        demo_config_file(),
        role_arn("s3-reader")
    ));
    run_without_hanging(env.mfa_exec(["-p", "endless", "--no-cache", "--", "true"])).fails(
        125,
        &["the token command (yes …) did not print a 6-digit code"],
    );
    assert_eq!(env.sts.total_calls(), 0);
}

// ---- files that are not what they seem ----------------------------------------------------------

/// Runs a command, failing the test (and killing the command) if it takes over 20 s.
#[track_caller]
fn run_without_hanging(mut cmd: Command) -> Run {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mfa-exec hung");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Run::from(child.wait_with_output().unwrap())
}

fn cache_file(env: &TestEnv, prefix: &str) -> PathBuf {
    std::fs::read_dir(env.cache_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}* in the cache"))
}

fn mkfifo(path: &std::path::Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

#[test]
fn fifos_and_huge_files_in_the_cache_hang_nothing_and_are_not_read() {
    let env = TestEnv::new();
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    let entry = cache_file(&env, "session-");
    let used = env.cache_dir().join("used-codes");
    std::fs::remove_file(&entry).unwrap();
    std::fs::remove_file(&used).unwrap();
    mkfifo(&entry);
    mkfifo(&used);
    let run = run_without_hanging(env.mfa_exec(["cache", "list"]));
    run.success();
    assert!(run.stderr.contains("1 cache entry"), "{}", run.stderr);
    assert!(run.stderr.contains("cannot be read"), "{}", run.stderr);
    // A run reads neither, and replaces the entry.
    let run =
        run_without_hanging(env.mfa_exec(["-p", "alice", "-t", &env.alice_code(), "--", "true"]));
    run.success();
    assert!(run.stderr.contains("not a regular file"), "{}", run.stderr);

    // A 2 GB sparse entry is refused by its size, not read.
    run_without_hanging(env.mfa_exec(["cache", "clear"])).success();
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    let entry = cache_file(&env, "session-");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&entry)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let run = run_without_hanging(env.mfa_exec(["-p", "alice", "--no-prompt", "--", "true"]));
    run.fails(125, &["new MFA code is needed"]);
    assert!(
        run.stderr.contains("is larger than 64 KB; remove it"),
        "{}",
        run.stderr
    );
}

// ---- leftovers of interrupted writes ------------------------------------------------------------

/// A pid no process has now.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn temporary_files_of_killed_writes_are_listed_and_cleaned() {
    let env = TestEnv::new();
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    let entry = cache_file(&env, "session-");
    let name = entry.file_name().unwrap().to_str().unwrap().to_string();
    let plant = |suffix: &str| {
        let tmp = env
            .cache_dir()
            .join(format!(".{name}.{}.{suffix}.tmp", dead_pid()));
        std::fs::write(
            &tmp,
            "{\"credentials\": {\"secret_access_key\": \"half-writ",
        )
        .unwrap();
        tmp
    };
    let leftover = plant("0a0b0c");
    let run = env.run(["cache", "list"]);
    run.success();
    assert!(run.stderr.contains("1 temporary file"), "{}", run.stderr);
    // Clearing one profile removes that profile's leftovers too.
    env.run(["cache", "clear", "--profile", "alice"]).success();
    assert!(
        !leftover.exists(),
        "cache clear --profile left a temporary file"
    );
    // And the next write to the directory removes any other leftover.
    let leftover = plant("0d0e0f");
    env.run(["-p", "bob", "-t", &env.code(BOB_SERIAL), "--", "true"])
        .success();
    assert!(!leftover.exists(), "a write left an old temporary file");
    let run = env.run(["cache", "list"]);
    run.success();
    assert!(!run.stderr.contains("temporary file"), "{}", run.stderr);
}

// ---- escape sequences in outside text -----------------------------------------------------------

const CLEAR_SCREEN: &str = "x\u{1b}[2Jy";

fn no_control_characters(text: &str) -> bool {
    !text.chars().any(|c| c.is_control() && c != '\n')
}

#[test]
fn escape_sequences_in_outside_text_are_shown_escaped() {
    let env = TestEnv::new();
    let run = env.run(["-p", CLEAR_SCREEN, "-t", "123456", "--", "true"]);
    run.fails(125, &["--profile 'x\\x1b[2Jy' is not a profile name"]);
    assert!(no_control_characters(&run.stderr), "{:?}", run.stderr);
    let run = env.run([
        "-p",
        "alice",
        "--region",
        "eu\u{9b}31m",
        "-t",
        "123456",
        "--",
        "true",
    ]);
    run.fails(125, &["region 'eu\\u{9b}31m'"]);
    assert!(no_control_characters(&run.stderr), "{:?}", run.stderr);

    // A profile name with an escape sequence and a terminal title cannot come from the AWS
    // files (the SDKs' parser refuses it), but a cache entry is outside text too: one whose
    // profile field says so is listed escaped.
    let evil = "e\u{1b}]0;pwned\u{7}vil";
    env.run(["-p", "s3-reader", "-t", &env.alice_code(), "--", "true"])
        .success();
    let mut planted = 0;
    for entry in std::fs::read_dir(env.cache_dir()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains("\"s3-reader\"") {
            let json = serde_json::to_string(evil).unwrap();
            std::fs::write(&path, text.replace("\"s3-reader\"", &json)).unwrap();
            planted += 1;
        }
    }
    assert!(planted > 0, "no cache entry named the profile");
    let run = env.run(["cache", "list"]);
    run.success().prints("e\\x1b]0;pwned\\x07vil");
    assert!(no_control_characters(&run.stdout), "{:?}", run.stdout);
}

/// What a shell's `mfa-status` and `mfa_prompt_info` print for a hostile profile name.
fn shell_helpers(env: &TestEnv, shell: &str, profile: &str, extra: &str) -> Run {
    let expiry = sts_standin::iso_format(std::time::SystemTime::now() + Duration::from_secs(3600));
    let script = match shell {
        "fish" => format!(
            "{} init fish | source; mfa-status; mfa_prompt_info; {extra}",
            TestEnv::bin()
        ),
        _ => format!(
            "eval \"$({} init {shell})\"; mfa-status; mfa_prompt_info; {extra}",
            TestEnv::bin()
        ),
    };
    Run::from(
        env.command(shell)
            .arg("-c")
            .arg(script)
            .env("MFA_EXEC_PROFILE", profile)
            .env("MFA_EXEC_ROLE_ARN", format!("arn{CLEAR_SCREEN}"))
            .env("AWS_CREDENTIAL_EXPIRATION", expiry)
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
}

#[test]
fn the_shell_helpers_show_a_hostile_profile_name_escaped() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish"] {
        let Some(_) = require_tool(shell, &[shell]) else {
            continue;
        };
        let run = shell_helpers(&env, shell, CLEAR_SCREEN, "");
        run.success();
        assert!(
            run.stdout.contains("left (until"),
            "{shell}: {}",
            run.stdout
        );
        assert!(
            no_control_characters(&run.stdout),
            "{shell}: {:?}",
            run.stdout
        );
        assert!(run.stdout.contains("2Jy"), "{shell}: {:?}", run.stdout);
    }
}

#[test]
fn zsh_prompt_text_escapes_percent() {
    let Some(_) = require_tool("zsh", &["zsh"]) else {
        return;
    };
    let env = TestEnv::new();
    // Prompt-expanded (as with prompt_subst), the name comes out as it is: %F{red} and %n
    // are text, not a colour and the user name.
    let run = shell_helpers(
        &env,
        "zsh",
        "prod%F{red}%n",
        "echo; print -rP -- \"$(mfa_prompt_info)\"",
    );
    run.success();
    let last = run.stdout.lines().last().unwrap();
    assert!(last.starts_with("[prod%F{red}%n "), "{:?}", run.stdout);
    assert!(no_control_characters(&run.stdout), "{:?}", run.stdout);
}

// ---- STS failures -------------------------------------------------------------------------------
// (The advice for a cache directory of another user is checked in tests/cache.rs,
// `a_cache_owned_by_another_user_is_not_used`.)

#[test]
fn a_malformed_endpoint_is_refused_without_showing_the_request() {
    let mut env = TestEnv::new();
    env.set("AWS_ENDPOINT_URL", "http://[::1");
    let code = env.alice_code();
    let run = env.run(["-p", "alice", "-t", &code, "--", "true"]);
    run.fails(125, &["endpoint URL 'http://[::1' is not a valid URL"]);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(!run.stderr.contains(&code) && !run.stderr.contains("TokenCode"));
}

/// A stand-in for a broken STS: answers every request with `status` and `body`.
fn broken_sts(status: &str, body: &str) -> String {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 65536];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    url
}

#[test]
fn sts_server_errors_and_garbage_are_explained_in_one_line() {
    let cases = [
        (
            "500 Internal Server Error",
            "<html><body>oops\n\n\n</body></html>",
            &["HTTP 500", "server error"][..],
        ),
        ("200 OK", "not xml!!", &["HTTP 200", "is the endpoint really STS"][..]),
        (
            "400 Bad Request",
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>",
            &["throttling", "wait a minute"][..],
        ),
    ];
    for (status, body, needles) in cases {
        let mut env = TestEnv::new();
        env.set("AWS_ENDPOINT_URL", &broken_sts(status, body));
        let code = env.alice_code();
        let run = env.run(["-p", "alice", "-t", &code, "--", "true"]);
        run.fails(125, needles);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(!run.stderr.contains("Unknown"), "{}", run.stderr);
        assert!(!run.stderr.contains(&code), "{}", run.stderr);
    }
}

#[test]
fn a_profile_name_that_is_not_text_is_an_error_not_the_default_profile() {
    let env = TestEnv::new();
    let run = Run::from(
        env.mfa_exec(["-t", "123456", "--", "true"])
            .env("AWS_PROFILE", OsStr::from_bytes(b"prod\xff"))
            .output()
            .unwrap(),
    );
    run.fails(125, &["AWS_PROFILE is not valid UTF-8"]);
    // The subcommands that act on a profile refuse it too, instead of acting on `default`.
    for args in [["device", "list"], ["keys", "remove"]] {
        let run = Run::from(
            env.mfa_exec(args)
                .env("AWS_PROFILE", OsStr::from_bytes(b"prod\xff"))
                .output()
                .unwrap(),
        );
        run.fails(125, &["AWS_PROFILE is not valid UTF-8"]);
    }
    assert_eq!(env.sts.total_calls(), 0);
}
