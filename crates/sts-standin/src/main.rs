//! `sts-standin`: the stand-in as a program, for scripts/demo and the benchmarks; mfa-exec's tests
//! also run its `call` as a child that signs with the keys mfa-exec gives it.
//!
//! ```text
//! sts-standin serve [--port N] [--lifetime SECS] [--verbose] [--reuse-codes] [--latency MS]
//! sts-standin code [--serial SERIAL | --seed-file FILE] [--step N]
//! sts-standin call ACTION [Name=Value ...] [--endpoint URL] [--env]
//! sts-standin calls [ACTION] [--endpoint URL]
//! sts-standin phone [--keep-seed FILE] -- PROGRAM [ARGS...]
//! ```
//!
//! `serve` prints its URL on one line and serves the demo account (users alice and bob, roles
//! s3-reader, auditor, partner, open, locked) until SIGTERM, SIGINT or SIGHUP (exit status 0).
//! `code` prints the current TOTP code of a demo MFA device (or of the seed in FILE). `call` signs one STS request with
//! the keys in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` (region
//! `AWS_REGION`, else us-east-1) and prints a one-line summary, or `ERROR Code: Message` on
//! stderr with exit status 1; `--env` prints returned credentials as `NAME=value` lines.
//! `call ListBuckets` is S3's (a signed `GET /`): it prints the bucket names.
//!
//! `phone` plays an authenticator app for `mfa-exec device add` (the demo's registration):
//! it runs PROGRAM on a new pseudo-terminal, shows that terminal's output, reads the QR code
//! drawn there, and types two consecutive codes computed from its seed. `--keep-seed FILE`
//! keeps the seed (0600), as the app would, for `code --seed-file FILE` later.
//!
//! For scripts/bench: `serve --reuse-codes` accepts a TOTP code any number of times (real STS
//! accepts each once), so repeated cold runs can share one code; `calls` prints the stand-in's
//! request counts per action as JSON (`GET /_standin/calls`), or with ACTION just that count.

use std::io::Write;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::signal::{SigSet, Signal};
use sts_standin::{self as sts, phone};

const USAGE: &str = "usage:
  sts-standin serve [--port N] [--lifetime SECS] [--verbose] [--reuse-codes] [--latency MS]
  sts-standin code [--serial SERIAL | --seed-file FILE] [--step N]
  sts-standin call ACTION [Name=Value ...] [--endpoint URL] [--env]
  sts-standin calls [ACTION] [--endpoint URL]
  sts-standin phone [--keep-seed FILE] -- PROGRAM [ARGS...]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("code") => code(&args[1..]),
        Some("call") => call(&args[1..]),
        Some("calls") => calls(&args[1..]),
        Some("phone") => phone(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => Err(Failure::Usage("expected a command".to_string())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("sts-standin: {m}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Sts(code, message)) => {
            eprintln!("ERROR {code}: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Other(m)) => {
            eprintln!("sts-standin: {m}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    Usage(String),
    Sts(String, String),
    Other(String),
}

/// Takes the value of option `name` from `args` at `*i` (advancing `*i`).
fn value(args: &[String], i: &mut usize, name: &str) -> Result<String, Failure> {
    *i += 1;
    args.get(*i)
        .cloned()
        .ok_or_else(|| Failure::Usage(format!("{name} needs a value")))
}

fn number<T: std::str::FromStr>(text: &str, name: &str) -> Result<T, Failure> {
    text.parse()
        .map_err(|_| Failure::Usage(format!("{name}: not a number: {text}")))
}

fn serve(args: &[String]) -> Result<(), Failure> {
    let mut port = 0u16;
    let mut lifetime = None;
    let mut verbose = false;
    let mut reuse_codes = false;
    let mut latency_ms = 0u64;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--port" => port = number(&value(args, &mut i, "--port")?, "--port")?,
            "--lifetime" => {
                lifetime = Some(number(&value(args, &mut i, "--lifetime")?, "--lifetime")?)
            }
            "--verbose" | "-v" => verbose = true,
            "--reuse-codes" => reuse_codes = true,
            "--latency" => latency_ms = number(&value(args, &mut i, "--latency")?, "--latency")?,
            other => return Err(Failure::Usage(format!("serve: unexpected {other}"))),
        }
        i += 1;
    }
    // Wait for SIGTERM/SIGINT with sigwait rather than dying of them: a shell script's
    // background job has SIGINT ignored, but a blocked signal still reaches sigwait (on Linux),
    // and the stand-in shuts down cleanly. Blocked before the server threads start, so that
    // they inherit the mask.
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(signal);
    }
    signals
        .thread_block()
        .map_err(|e| Failure::Other(format!("cannot block signals: {e}")))?;

    let mut config = sts::Config::demo();
    config.lifetime_override = lifetime;
    let standin = sts::StandIn::start_on(config, port)
        .map_err(|e| Failure::Other(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
    standin.set_log(verbose);
    standin.set_reuse_codes(reuse_codes);
    standin.set_latency(std::time::Duration::from_millis(latency_ms));
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", standin.url())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Other(format!("stdout: {e}")))?;
    drop(out);
    let signal = signals
        .wait()
        .map_err(|e| Failure::Other(format!("sigwait: {e}")))?;
    if verbose {
        eprintln!("sts-standin: {signal}, stopping");
    }
    drop(standin);
    Ok(())
}

fn code(args: &[String]) -> Result<(), Failure> {
    let config = sts::Config::demo();
    let mut serial = config.users[0].mfa_serial.clone().unwrap_or_default();
    let mut seed_file = None;
    let mut step = 0i64;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--serial" => serial = value(args, &mut i, "--serial")?,
            "--seed-file" => seed_file = Some(value(args, &mut i, "--seed-file")?),
            "--step" => step = number(&value(args, &mut i, "--step")?, "--step")?,
            other => return Err(Failure::Usage(format!("code: unexpected {other}"))),
        }
        i += 1;
    }
    let seed = match seed_file {
        Some(path) => std::fs::read_to_string(&path)
            .map_err(|e| Failure::Other(format!("{path}: {e}")))?
            .trim()
            .to_string(),
        None => config
            .users
            .iter()
            .find(|u| u.mfa_serial.as_deref() == Some(serial.as_str()))
            .ok_or_else(|| Failure::Other(format!("no demo MFA device {serial}")))?
            .totp_seed_base32
            .clone(),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| Failure::Other(e.to_string()))?
        .as_secs() as i64;
    let t = (now + step * 30).max(0) as u64;
    println!("{}", sts::totp_code(&seed, t));
    Ok(())
}

/// `phone [--keep-seed FILE] -- PROGRAM ARGS…`: see the module header.
fn phone(args: &[String]) -> Result<(), Failure> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;

    let mut keep_seed = None;
    let mut i = 0;
    while i < args.len() && args[i] != "--" {
        match args[i].as_str() {
            "--keep-seed" => keep_seed = Some(value(args, &mut i, "--keep-seed")?),
            other => return Err(Failure::Usage(format!("phone: unexpected {other}"))),
        }
        i += 1;
    }
    let argv = args.get(i + 1..).unwrap_or_default();
    let Some(program) = argv.first() else {
        return Err(Failure::Usage(
            "phone: which program? (after --)".to_string(),
        ));
    };
    let pty = nix::pty::openpty(None, None).map_err(|e| Failure::Other(format!("openpty: {e}")))?;
    // openpty's descriptors are inherited across exec: the program must not hold the master,
    // or it never sees the terminal hang up when the phone gives up (and waits for a code).
    nix::fcntl::fcntl(
        &pty.master,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| Failure::Other(format!("openpty: {e}")))?;
    let slave = std::fs::File::from(pty.slave);
    let slave_err = slave
        .try_clone()
        .map_err(|e| Failure::Other(e.to_string()))?;
    // `setsid -c`: a new session whose controlling terminal is the pty (the program's prompts
    // go to /dev/tty).
    let mut child = std::process::Command::new("setsid")
        .arg("-c")
        .arg(program)
        .args(&argv[1..])
        .stdin(slave)
        .stderr(slave_err)
        .spawn()
        .map_err(|e| Failure::Other(format!("cannot run setsid -c {program}: {e}")))?;
    let mut master = std::fs::File::from(pty.master);
    let mut screen = String::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    let mut codes: Option<(String, String)> = None;
    let mut typed = 0;
    let mut out = std::io::stdout();
    // Reading ends with EIO once the program has exited and the terminal has no other user.
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        let _ = out.write_all(&buf[..n]);
        let _ = out.flush();
        pending.extend_from_slice(&buf[..n]);
        let complete = match std::str::from_utf8(&pending) {
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            _ => pending.len(),
        };
        screen.push_str(&String::from_utf8_lossy(&pending[..complete]));
        pending.drain(..complete);
        if typed == 0 && screen.contains("Enter the first code: ") {
            let uri = phone::decode_terminal_qr(&screen).ok_or_else(|| {
                Failure::Other("phone: no readable QR code on the terminal".into())
            })?;
            let seed = phone::uri_param(&uri, "secret")
                .ok_or_else(|| Failure::Other("phone: the QR code holds no secret".into()))?;
            if let Some(path) = &keep_seed {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(path)
                    .and_then(|mut f| f.write_all(seed.as_bytes()))
                    .map_err(|e| Failure::Other(format!("{path}: {e}")))?;
            }
            let pair = phone::consecutive_codes(&seed);
            let _ = writeln!(
                out,
                "\n[phone: scanned the QR code ({}); typing the codes it shows, {} then {}]",
                phone::uri_label(&uri).unwrap_or_default(),
                pair.0,
                pair.1
            );
            let _ = master.write_all(format!("{}\n", pair.0).as_bytes());
            codes = Some(pair);
            typed = 1;
            screen.clear();
        } else if typed == 1 && screen.contains("Enter the second code: ") {
            if let Some((_, second)) = &codes {
                let _ = master.write_all(format!("{second}\n").as_bytes());
            }
            typed = 2;
        }
    }
    let status = child.wait().map_err(|e| Failure::Other(e.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::Other(format!("{program} exited with {status}")))
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `calls [ACTION]`: the stand-in's request counts (JSON), or one action's count.
fn calls(args: &[String]) -> Result<(), Failure> {
    let mut endpoint = env("AWS_ENDPOINT_URL_STS").or_else(|| env("AWS_ENDPOINT_URL"));
    let mut action = None;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        match arg.as_str() {
            "--endpoint" | "--endpoint-url" => endpoint = Some(value(args, &mut i, arg)?),
            _ if arg.starts_with("--") => {
                return Err(Failure::Usage(format!("calls: unknown option {arg}")))
            }
            _ if action.is_none() => action = Some(arg.clone()),
            _ => return Err(Failure::Usage(format!("calls: unexpected {arg}"))),
        }
        i += 1;
    }
    let endpoint = endpoint.ok_or_else(|| {
        Failure::Usage("calls: no endpoint (--endpoint or AWS_ENDPOINT_URL)".to_string())
    })?;
    let reply = sts::http_request(&endpoint, "GET", "/_standin/calls", &[], b"")
        .map_err(|e| Failure::Other(format!("{endpoint}: {e}")))?;
    if reply.status != 200 {
        return Err(Failure::Other(format!("{endpoint}: HTTP {}", reply.status)));
    }
    match action {
        None => println!("{}", reply.body),
        Some(action) => {
            let counts: std::collections::BTreeMap<String, usize> =
                serde_json::from_str(&reply.body)
                    .map_err(|e| Failure::Other(format!("calls: bad JSON: {e}")))?;
            println!("{}", counts.get(&action).copied().unwrap_or(0));
        }
    }
    Ok(())
}

/// A refused call: AWS's error code (or the bare HTTP status) and its message (or the body).
fn refusal(reply: &sts::Reply) -> Failure {
    Failure::Sts(
        reply
            .error_code()
            .unwrap_or_else(|| format!("HTTP {}", reply.status)),
        reply.error_message().unwrap_or_else(|| reply.body.clone()),
    )
}

fn call(args: &[String]) -> Result<(), Failure> {
    let mut action = None;
    let mut params: Vec<(String, String)> = Vec::new();
    let mut endpoint = env("AWS_ENDPOINT_URL_STS").or_else(|| env("AWS_ENDPOINT_URL"));
    let mut export = false;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        match arg.as_str() {
            "--endpoint" | "--endpoint-url" => endpoint = Some(value(args, &mut i, arg)?),
            "--env" => export = true,
            _ if arg.starts_with("--") => {
                return Err(Failure::Usage(format!("call: unknown option {arg}")))
            }
            _ if action.is_none() => action = Some(arg.clone()),
            _ => {
                let (name, val) = arg.split_once('=').ok_or_else(|| {
                    Failure::Usage(format!("call: expected Name=Value, got {arg}"))
                })?;
                params.push((name.to_string(), val.to_string()));
            }
        }
        i += 1;
    }
    let action = action.ok_or_else(|| Failure::Usage("call: which ACTION?".to_string()))?;
    let endpoint = endpoint.ok_or_else(|| {
        Failure::Usage(
            "call: no endpoint (--endpoint, AWS_ENDPOINT_URL_STS or AWS_ENDPOINT_URL)".to_string(),
        )
    })?;
    let (Some(key), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) else {
        return Err(Failure::Usage(
            "call: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set".to_string(),
        ));
    };
    let keys = sts::Keys::new(&key, &secret, env("AWS_SESSION_TOKEN").as_deref());
    let region = env("AWS_REGION").unwrap_or_else(|| "us-east-1".to_string());

    if action == "ListBuckets" {
        let reply = sts::list_buckets(&endpoint, &keys)
            .map_err(|e| Failure::Other(format!("{endpoint}: {e}")))?;
        if !reply.is_ok() {
            return Err(refusal(&reply));
        }
        for bucket in reply.body.split("<Name>").skip(1) {
            println!("{}", bucket.split('<').next().unwrap_or(""));
        }
        return Ok(());
    }
    let mut all = vec![("Action", action.as_str()), ("Version", sts::VERSION)];
    all.extend(params.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let reply = sts::signed_post(
        &endpoint,
        &keys,
        &region,
        sts::SERVICE,
        SystemTime::now(),
        &sts::form_body(&all),
    )
    .map_err(|e| Failure::Other(format!("{endpoint}: {e}")))?;

    if !reply.is_ok() {
        return Err(refusal(&reply));
    }
    let field = |tag: &str| reply.field(tag).unwrap_or_default();
    if export {
        if let Some(creds) = reply.credentials() {
            println!("AWS_ACCESS_KEY_ID={}", creds.access_key_id);
            println!("AWS_SECRET_ACCESS_KEY={}", creds.secret_access_key);
            println!(
                "AWS_SESSION_TOKEN={}",
                creds.session_token.unwrap_or_default()
            );
            println!("AWS_CREDENTIAL_EXPIRATION={}", field("Expiration"));
            return Ok(());
        }
    }
    match action.as_str() {
        "GetCallerIdentity" => println!("{}", field("Arn")),
        "AssumeRole" => println!("{} until {}", field("Arn"), field("Expiration")),
        "GetSessionToken" => println!(
            "session {} until {}",
            field("AccessKeyId"),
            field("Expiration")
        ),
        _ => println!("OK"),
    }
    Ok(())
}
