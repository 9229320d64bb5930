//! `--proxy`: the command gets keys made for the run and an endpoint on 127.0.0.1, never the
//! MFA credentials. Real clients (the AWS CLI v1, boto3, and a hand-written SigV4 client for
//! the aws-chunked forms no Python SDK sends over http) call STS and S3 through it; the
//! stand-in, which knows nothing of the run's keys, sees only requests the proxy signed again.

mod support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};

use sts_standin::Keys;
use support::env::*;

/// A SigV4 client in plain Python for what boto3 does not send over http: aws-chunked bodies
/// with chunk signatures (and a signed trailer), requests signed with a wrong secret, unsigned
/// requests, and a 200 MB upload streamed from memory. It signs with the keys in its
/// environment, as any SDK would.
const CLIENT: &str = r#"
import base64, datetime, hashlib, hmac, http.client, os, sys, zlib

E = os.environ
HOST = E["AWS_ENDPOINT_URL"][len("http://"):]

def sha(b):
    return hashlib.sha256(b).hexdigest()

def hm(k, m):
    return hmac.new(k, m.encode(), hashlib.sha256)

def sign(method, path, headers, payload, secret=None, region="us-east-1", service="s3", query="", declare=True):
    secret = secret or E["AWS_SECRET_ACCESS_KEY"]
    amz = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    headers = dict(headers, host=HOST)
    headers["x-amz-date"] = amz
    if declare:
        headers["x-amz-content-sha256"] = payload
    names = sorted(headers)
    canonical = "\n".join([method, path, query, "".join(f"{n}:{headers[n]}\n" for n in names), ";".join(names), payload])
    scope = f"{amz[:8]}/{region}/{service}/aws4_request"
    key = ("AWS4" + secret).encode()
    for part in (amz[:8], region, service, "aws4_request"):
        key = hm(key, part).digest()
    sig = hm(key, "\n".join(["AWS4-HMAC-SHA256", amz, scope, sha(canonical.encode())])).hexdigest()
    headers["authorization"] = f"AWS4-HMAC-SHA256 Credential={E['AWS_ACCESS_KEY_ID']}/{scope}, SignedHeaders={';'.join(names)}, Signature={sig}"
    return headers, key, amz, scope, sig

def send(method, path, headers, body=b""):
    conn = http.client.HTTPConnection(HOST)
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    return r.status, r.read().decode(errors="replace")

def chunked_put(path, data, trailer):
    form = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")
    pieces = [data[i:i + 65536] for i in range(0, len(data), 65536)] + [b""]
    crc = "x-amz-checksum-crc32:" + base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    length = sum(len(f"{len(p):x};chunk-signature=") + 66 + len(p) + (2 if p or not trailer else 0) for p in pieces)
    headers = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
    if trailer:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
        length += len(crc) + 2 + len("x-amz-trailer-signature:") + 64 + 4
    headers["content-length"] = str(length)
    headers, key, amz, scope, prev = sign("PUT", path, headers, form)
    body = bytearray()
    for p in pieces:
        prev = hm(key, "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz, scope, prev, sha(b""), sha(p)])).hexdigest()
        body += f"{len(p):x};chunk-signature={prev}\r\n".encode() + p
        if p or not trailer:
            body += b"\r\n"
    if trailer:
        prev = hm(key, "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz, scope, prev, sha((crc + "\n").encode())])).hexdigest()
        body += f"{crc}\r\nx-amz-trailer-signature:{prev}\r\n\r\n".encode()
    assert len(body) == length
    return send("PUT", path, headers, bytes(body))

def big_put(path, megabytes):
    headers, *_ = sign("PUT", path, {"content-length": str(megabytes << 20)}, "UNSIGNED-PAYLOAD")
    conn = http.client.HTTPConnection(HOST)
    conn.putrequest("PUT", path, skip_host=True, skip_accept_encoding=True)
    for n, v in headers.items():
        conn.putheader(n, v)
    conn.endheaders()
    block = bytes(range(256)) * 4096
    for _ in range(megabytes):
        conn.send(block)
    r = conn.getresponse()
    return r.status, r.read().decode(errors="replace")

what = sys.argv[1]
if what == "chunked":
    data = bytes(range(256)) * 700 + b"tail"
    print("plain", *chunked_put("/demo-reports/chunked.bin", data, False))
    print("trailer", *chunked_put("/demo-reports/trailer.bin", data, True))
elif what == "refused":
    print("unsigned", *send("GET", "/", {}))
    headers, *_ = sign("GET", "/", {}, sha(b""), secret="wrong" + E["AWS_SECRET_ACCESS_KEY"])
    print("wrong-secret", *send("GET", "/", headers))
    headers, *_ = sign("PUT", "/demo-reports/stream", {"content-type": "application/vnd.amazon.eventstream"}, "UNSIGNED-PAYLOAD")
    print("event-stream", *send("PUT", "/demo-reports/stream", headers))
elif what == "scope":
    # The credential scope names the host the proxy forwards to: a service or region that is
    # not a plain name would send the real signature elsewhere.
    for region, service in (("us-east-1", "abc123.execute-api"), ("x.evil.example?", "s3")):
        headers, *_ = sign("GET", "/", {}, sha(b""), region=region, service=service)
        print("scope", service, region, *send("GET", "/", headers))
elif what == "execute-api":
    headers, *_ = sign("GET", "/prod/pets", {}, sha(b""), service="execute-api")
    print("execute-api", *send("GET", "/prod/pets", headers))
elif what == "early":
    # A 30 MiB form body announced under another access key: the proxy answers before
    # reading it (the client sends a few bytes and waits).
    headers, *_ = sign("POST", "/", {"content-type": "application/x-www-form-urlencoded", "content-length": str(30 << 20)}, sha(b""), service="sts", declare=False)
    headers["authorization"] = headers["authorization"].replace(E["AWS_ACCESS_KEY_ID"], "AKIAIOSFODNN7EXAMPLE")
    conn = http.client.HTTPConnection(HOST, timeout=10)
    conn.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
    for n, v in headers.items():
        conn.putheader(n, v)
    conn.endheaders()
    conn.sock.sendall(b"Action=GetCallerIdentity&")
    r = conn.getresponse()
    print("early", r.status, r.read().decode(errors="replace"))
elif what == "minting":
    # Action= in a form body whose hash is declared, and in the query string.
    form = b"Action=GetSessionToken&Version=2011-06-15"
    headers, *_ = sign("POST", "/", {"content-type": "application/x-www-form-urlencoded"}, sha(form), service="sts")
    print("declared-body", *send("POST", "/", headers, form))
    query = "Action=CreateAccessKey&Version=2010-05-08"
    headers, *_ = sign("POST", "/", {}, sha(b""), service="iam", query=query)
    print("query-action", *send("POST", "/?" + query, headers))
    gz = zlib.compressobj(wbits=31)
    packed = gz.compress(form) + gz.flush()
    headers, *_ = sign("POST", "/", {"content-type": "application/x-www-form-urlencoded", "content-encoding": "gzip"}, sha(packed), service="sts")
    print("gzip-body", *send("POST", "/", headers, packed))
elif what == "big":
    print("big", *big_put("/demo-reports/big.bin", int(sys.argv[2])))
    with open(f"/proc/{os.getppid()}/status") as status:
        print(next(l for l in status if l.startswith("VmHWM")))
"#;

/// A TestEnv whose profile `open` (the role allowed s3:* on the demo buckets) has a region.
fn proxy_env() -> TestEnv {
    let env = TestEnv::new();
    env.write_config(&format!(
        "{}[profile open]\nrole_arn = {}\nsource_profile = alice\nregion = us-east-1\n",
        demo_config_file().replace(
            &format!(
                "[profile open]\nrole_arn = {}\nsource_profile = alice\n\n",
                role_arn("open")
            ),
            ""
        ),
        role_arn("open")
    ));
    env
}

fn write_client(env: &TestEnv) -> PathBuf {
    let path = env.dir.path().join("sigv4_client.py");
    std::fs::write(&path, CLIENT).unwrap();
    path
}

#[test]
fn the_aws_cli_calls_sts_and_s3_through_the_proxy_and_the_bytes_come_back_whole() {
    let Some(aws) = aws_cli() else { return };
    let env = proxy_env();
    let upload: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(env.dir.path().join("up.bin"), &upload).unwrap();
    let script = format!(
        "set -e; A='{aws}'; $A sts get-caller-identity --query Arn --output text; \
         $A s3api list-buckets --query 'Buckets[].Name' --output text; \
         $A s3 cp up.bin s3://demo-reports/up.bin; $A s3 cp s3://demo-reports/up.bin down.bin",
        aws = aws.display()
    );
    let run = env.run([
        "-p",
        "open",
        "-t",
        &env.alice_code(),
        "--proxy",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    run.success()
        .prints("assumed-role/open/")
        .prints("demo-reports\tdemo-logs");
    let down = std::fs::read(env.dir.path().join("down.bin")).unwrap();
    assert!(down == upload, "the download is the upload");
    // The stand-in saw each call signed with the role's session, never with the run's keys.
    let seen = env.sts.requests();
    let ops: Vec<&str> = seen.iter().map(|s| s.action.as_str()).collect();
    for op in ["GetCallerIdentity", "ListBuckets", "PutObject", "GetObject"] {
        assert!(ops.contains(&op), "{op} reached the stand-in: {ops:?}");
    }
    for s in seen
        .iter()
        .filter(|s| s.action != "GetSessionToken" && s.action != "AssumeRole")
    {
        assert_eq!(
            env.sts.key_owner(&s.access_key_id).as_deref(),
            Some("role/open"),
            "{s:?}"
        );
    }
}

#[test]
fn boto3_calls_sts_and_s3_through_the_proxy() {
    let Some(python) = python_with_boto3() else {
        return;
    };
    let env = proxy_env();
    let script = r#"
import boto3
print(boto3.client("sts").get_caller_identity()["Arn"])
s3 = boto3.client("s3")
print(" ".join(b["Name"] for b in s3.list_buckets()["Buckets"]))
s3.put_object(Bucket="demo-logs", Key="from boto3/é+.txt", Body=b"hello through the proxy")
print(s3.get_object(Bucket="demo-logs", Key="from boto3/é+.txt")["Body"].read().decode())
print(s3.head_object(Bucket="demo-logs", Key="from boto3/é+.txt")["ContentLength"])
import urllib.request, urllib.error
from botocore.config import Config
try:
    urllib.request.urlopen(s3.generate_presigned_url("get_object", Params={"Bucket": "demo-logs", "Key": "k"}))
except urllib.error.HTTPError as e:
    print("sigv2 presigned:", e.code, e.read().decode())
s3 = boto3.client("s3", config=Config(signature_version="s3v4"))
url = s3.generate_presigned_url("get_object", Params={"Bucket": "demo-logs", "Key": "from boto3/é+.txt"}, ExpiresIn=60)
print("presigned:", urllib.request.urlopen(url).read().decode())
try:
    urllib.request.urlopen(url.replace("Signature=", "Signature=0"))
except urllib.error.HTTPError as e:
    print("tampered presigned:", e.code)
"#;
    let run = env.run_wrapping(
        &["-p", "open", "-t", &env.alice_code(), "--proxy"],
        &python,
        &["-c", script],
    );
    run.success()
        .prints("assumed-role/open/")
        .prints("demo-reports demo-logs")
        .prints("hello through the proxy\n23")
        .prints("sigv2 presigned: 403")
        .prints("Signature Version 2 URLs")
        .prints("presigned: hello through the proxy")
        .prints("tampered presigned: 403");
    let object = env
        .sts
        .objects()
        .into_iter()
        .find(|o| o.key == "from boto3/é+.txt");
    assert_eq!(
        object.map(|o| o.body),
        Some(b"hello through the proxy".to_vec())
    );
}

/// The AWS SDK for Go v2 program in tests/data/proxy-go, built with the modules scripts/test
/// downloaded (GOPROXY=off: the test reaches no network).
fn go_client(dir: &Path) -> Option<PathBuf> {
    let go = require_tool("go", &["go", "/usr/local/go/bin/go"])?;
    let out = dir.join("proxy-go");
    let built = std::process::Command::new(go)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/proxy-go"))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=readonly")
        .arg("build")
        .arg("-o")
        .arg(&out)
        .arg(".")
        .output()
        .expect("run go build");
    assert!(
        built.status.success(),
        "go build failed (scripts/test downloads the modules with `go mod download`): {}",
        String::from_utf8_lossy(&built.stderr)
    );
    Some(out)
}

#[test]
fn the_go_sdk_calls_sts_and_s3_through_the_proxy() {
    let env = proxy_env();
    let Some(client) = go_client(env.dir.path()) else {
        return;
    };
    let run = env.run_wrapping(
        &["-p", "open", "-t", &env.alice_code(), "--proxy"],
        &client,
        &[],
    );
    run.success()
        .prints("assumed-role/open/")
        .prints("demo-reports demo-logs")
        .prints("round trip: true 105000");
    let object = env
        .sts
        .objects()
        .into_iter()
        .find(|o| o.key == "from-go.txt");
    assert_eq!(object.map(|o| o.body.len()), Some(105000));
    let put: Vec<Option<String>> = env
        .sts
        .requests()
        .into_iter()
        .filter(|s| s.action == "PutObject")
        .map(|s| s.payload)
        .collect();
    println!("the Go SDK's PutObject payload form: {put:?}");
}

#[test]
fn aws_chunked_uploads_are_re_signed_chunk_by_chunk_with_and_without_a_trailer() {
    let Some(python) = python_with_boto3() else {
        return;
    };
    let env = proxy_env();
    let client = write_client(&env);
    let run = env.run_wrapping(
        &["-p", "open", "-t", &env.alice_code(), "--proxy"],
        &python,
        &[client.to_str().unwrap(), "chunked"],
    );
    run.success().prints("plain 200").prints("trailer 200");
    let data: Vec<u8> = [
        (0..=255u8).collect::<Vec<u8>>().repeat(700),
        b"tail".to_vec(),
    ]
    .concat();
    for key in ["chunked.bin", "trailer.bin"] {
        let object = env.sts.objects().into_iter().find(|o| o.key == key);
        assert!(
            object.is_some_and(|o| o.body == data),
            "{key} arrived whole"
        );
    }
    // The stand-in checked the chunk signatures of both forms, with the role's secret.
    let forms: Vec<Option<String>> = env
        .sts
        .requests()
        .into_iter()
        .filter(|s| s.action == "PutObject")
        .map(|s| s.payload)
        .collect();
    assert_eq!(
        forms,
        [
            Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_string()),
            Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER".to_string())
        ]
    );
}

#[test]
fn the_command_holds_only_keys_that_aws_refuses() {
    let env = proxy_env();
    let run = env.run([
        "-p",
        "open",
        "-t",
        &env.alice_code(),
        "--proxy",
        "--",
        "env",
    ]);
    run.success();
    let vars = run.env_lines();
    let key = &vars["AWS_ACCESS_KEY_ID"];
    let secret = &vars["AWS_SECRET_ACCESS_KEY"];
    assert!(key.starts_with("AKIA") && key.len() == 20, "{key}");
    assert_eq!(secret.len(), 40);
    assert!(!vars.contains_key("AWS_SESSION_TOKEN"), "{vars:?}");
    assert!(vars["AWS_ENDPOINT_URL"].starts_with("http://127.0.0.1:"));
    assert_eq!(vars["AWS_REGION"], "us-east-1");
    // No credential the stand-in issued for the run (the MFA session's and the role's key ids,
    // secrets and tokens), nor alice's own secret, is in any variable of the command's
    // environment, nor in what mfa-exec printed.
    let issued = env.sts.issued();
    assert!(issued.len() >= 2, "{issued:?}");
    let secrets = issued
        .iter()
        .flat_map(|k| {
            [
                k.access_key_id.clone(),
                k.secret_access_key.clone(),
                k.session_token.clone().unwrap_or_default(),
            ]
        })
        .chain([ALICE_SECRET.to_string()])
        .filter(|s| !s.is_empty());
    for secret in secrets {
        for (name, value) in &vars {
            assert!(!value.contains(&secret), "{name} holds a real credential");
        }
        assert!(
            !run.stdout.contains(&secret),
            "stdout holds a real credential"
        );
        assert!(
            !run.stderr.contains(&secret),
            "stderr holds a real credential"
        );
    }
    // The run's keys, sent to the stand-in directly, are refused.
    let reply = env
        .sts
        .call(&Keys::new(key, secret, None), "GetCallerIdentity", &[]);
    assert_eq!(reply.error_code().as_deref(), Some("InvalidClientTokenId"));
}

#[test]
fn the_commands_inherited_tokens_and_per_service_endpoints_are_taken_away() {
    let mut env = proxy_env();
    let standin = env.sts.url();
    env.set("AWS_SESSION_TOKEN", "inherited")
        .set(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://127.0.0.1:1/creds",
        )
        .set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "t")
        .set("AWS_ENDPOINT_URL_S3", &standin)
        .set("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "");
    let run = env.run([
        "-p",
        "open",
        "-t",
        &env.alice_code(),
        "--proxy",
        "--",
        "env",
    ]);
    run.success();
    let vars = run.env_lines();
    for gone in [
        "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_ENDPOINT_URL_S3",
    ] {
        assert!(!vars.contains_key(gone), "{gone} reached the command");
    }
    // Set, not only removed: it beats a config file's ignore_configured_endpoint_urls.
    assert_eq!(vars["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"], "false");
}

#[test]
fn a_config_that_ignores_configured_endpoints_does_not_take_the_command_around_the_proxy() {
    let Some(aws) = aws_cli() else { return };
    let env = proxy_env();
    let config = std::fs::read_to_string(env.home().join(".aws/config")).unwrap();
    env.write_config(&format!(
        "[default]\nignore_configured_endpoint_urls = true\n\n{config}"
    ));
    let run = env.run_wrapping(
        &["-p", "open", "-t", &env.alice_code(), "--proxy"],
        &aws,
        &[
            "sts",
            "get-caller-identity",
            "--query",
            "Arn",
            "--output",
            "text",
        ],
    );
    run.success().prints("assumed-role/open/");
    assert_eq!(env.sts.calls("GetCallerIdentity"), 1);
}

#[test]
fn unsigned_forged_and_event_stream_requests_are_refused_and_never_forwarded() {
    let Some(aws) = aws_cli() else { return };
    let Some(python) = python_with_boto3() else {
        return;
    };
    let env = proxy_env();
    let client = write_client(&env);
    let script = format!(
        "A='{aws}'; $A --no-sign-request s3api list-buckets; echo \"unsigned status $?\"; \
         AWS_SECRET_ACCESS_KEY=wrong$AWS_SECRET_ACCESS_KEY $A sts get-caller-identity; echo \"forged status $?\"; \
         '{python}' '{client}' refused",
        aws = aws.display(),
        python = python.display(),
        client = client.display()
    );
    let run = env.run([
        "-p",
        "open",
        "-t",
        &env.alice_code(),
        "--proxy",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    run.success()
        .prints("unsigned status 25")
        .prints("forged status 25")
        .prints("unsigned 403")
        .prints("wrong-secret 403")
        .prints("event-stream 501");
    assert!(
        run.stderr.contains("(AccessDenied)")
            && run
                .stderr
                .contains("mfa-exec proxy: the request is not signed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("(SignatureDoesNotMatch)") && run.stderr.contains("mfa-exec proxy"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{}",
        run.stdout
    );
    // Only the run's own STS calls reached the stand-in.
    let ops: Vec<String> = env.sts.requests().into_iter().map(|s| s.action).collect();
    assert_eq!(ops, ["GetSessionToken", "AssumeRole"], "{ops:?}");
}

#[test]
fn a_200_mb_upload_streams_through_a_proxy_that_stays_under_64_mb() {
    let Some(python) = python_with_boto3() else {
        return;
    };
    let env = proxy_env();
    let client = write_client(&env);
    let run = env.run_wrapping(
        &["-p", "open", "-t", &env.alice_code(), "--proxy"],
        &python,
        &[client.to_str().unwrap(), "big", "200"],
    );
    run.success().prints("big 200");
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .expect("VmHWM line");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    println!(
        "the proxy's peak RSS over a 200 MB upload: {} MiB",
        kib / 1024
    );
    assert!(kib < 64 * 1024, "{line}");
    let object = env
        .sts
        .objects()
        .into_iter()
        .find(|o| o.key == "big.bin")
        .unwrap();
    assert_eq!(object.body.len(), 200 << 20);
}

#[test]
fn the_command_status_comes_back_and_the_port_closes_with_it() {
    let env = proxy_env();
    let run = env.run([
        "-p",
        "open",
        "-t",
        &env.alice_code(),
        "--proxy",
        "--",
        "sh",
        "-c",
        "echo \"$AWS_ENDPOINT_URL\"; exit 7",
    ]);
    assert_eq!(run.status, Some(7), "{}", run.stderr);
    let port = run.stdout.trim().rsplit(':').next().unwrap().to_string();
    assert!(
        TcpStream::connect(format!("127.0.0.1:{port}")).is_err(),
        "port {port} still open"
    );
    let killed = env.run(["-p", "open", "--proxy", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(killed.status, Some(143));
}

#[test]
fn proxy_with_a_printing_mode_is_refused_in_one_line_before_any_call() {
    let env = proxy_env();
    for other in ["--print-env", "--credential-process", "--server"] {
        let run = env.run(["-p", "open", "--proxy", other]);
        run.fails_in_one_line(125, &["--proxy"]);
    }
    assert_eq!(env.sts.total_calls(), 0);
}

#[test]
fn proxy_narrows_the_session_with_read_only() {
    let Some(aws) = aws_cli() else { return };
    let env = proxy_env();
    std::fs::write(env.dir.path().join("f"), b"x").unwrap();
    let run = env.run_wrapping(
        &[
            "-p",
            "open",
            "-t",
            &env.alice_code(),
            "--proxy",
            "--read-only",
        ],
        Path::new(&aws),
        &["s3", "cp", "f", "s3://demo-reports/f"],
    );
    assert_ne!(run.status, Some(0));
    assert!(run.stderr.contains("AccessDenied"), "{}", run.stderr);
}

#[test]
fn a_long_running_command_keeps_working_through_the_proxy_across_role_expiries_on_one_code() {
    let Some(python) = python_with_boto3() else {
        return;
    };
    let env = proxy_env();
    // The MFA session, with its normal lifetime.
    env.run(["-p", "alice", "-t", &env.alice_code(), "--", "true"])
        .success();
    // From now on the stand-in issues role credentials that live 6 seconds; the proxy renews
    // them when fewer than 3 remain, so a call may stall up to 3 seconds (a loaded CI machine)
    // and still be signed with live credentials, while 16 seconds of calls span several
    // expiries.
    env.sts.set_lifetime_override(Some(6));
    let script = r#"
import time, boto3
sts = boto3.client("sts")
for i in range(8):
    sts.get_caller_identity()
    time.sleep(2)
print("eight calls")
"#;
    let proxy = ["--proxy", "-p", "open", "--min-remaining", "3s"];
    env.run_wrapping(&proxy, &python, &["-c", script])
        .success()
        .prints("eight calls");
    // The proxy signed with renewed role credentials (the command's keys never changed), all
    // from the one MFA session.
    assert!(
        env.sts.calls("AssumeRole") >= 3,
        "{}",
        env.sts.calls("AssumeRole")
    );
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    let signers: std::collections::BTreeSet<String> = env
        .sts
        .requests()
        .into_iter()
        .filter(|s| s.action == "GetCallerIdentity")
        .map(|s| s.access_key_id)
        .collect();
    assert!(signers.len() >= 3, "{signers:?}");
}

#[test]
fn operations_that_mint_credentials_outliving_the_run_are_refused_and_never_forwarded() {
    let Some(aws) = aws_cli() else { return };
    let Some(python) = python_with_boto3() else {
        return;
    };
    let env = proxy_env();
    let client = write_client(&env);
    let script = format!(
        "A='{aws}'; $A sts assume-role --role-arn {role} --role-session-name escape; \
         echo \"assume-role status $?\"; \
         $A iam create-access-key; echo \"create-access-key status $?\"; \
         '{python}' '{client}' minting",
        aws = aws.display(),
        role = role_arn("open"),
        python = python.display(),
        client = client.display()
    );
    let run = env.run([
        "-p",
        "open",
        "-t",
        &env.alice_code(),
        "--proxy",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    run.success()
        .prints("assume-role status 25")
        .prints("create-access-key status 25")
        .prints("declared-body 403")
        .prints("query-action 403")
        .prints("gzip-body 403");
    // The CLI's error is one line naming the operation and what to do instead.
    for (cli_op, op) in [
        ("AssumeRole", "sts:AssumeRole"),
        ("CreateAccessKey", "iam:CreateAccessKey"),
    ] {
        let line = run
            .stderr
            .lines()
            .find(|l| l.contains(&format!("when calling the {cli_op} operation")))
            .unwrap_or_else(|| panic!("no {cli_op} error in {}", run.stderr));
        assert!(
            line.contains(&format!(
                "(AccessDenied) when calling the {cli_op} operation: mfa-exec proxy: {op} would hand the command credentials that outlive the run"
            )) && line.contains("without --proxy"),
            "{line}"
        );
    }
    assert!(
        run.stdout.contains("iam:CreateAccessKey would hand"),
        "{}",
        run.stdout
    );
    // Only the run's own STS calls reached the stand-in.
    let ops: Vec<String> = env.sts.requests().into_iter().map(|s| s.action).collect();
    assert_eq!(ops, ["GetSessionToken", "AssumeRole"], "{ops:?}");
}

#[test]
fn a_credential_scope_that_is_not_a_plain_service_and_region_is_never_forwarded() {
    let Some(python) = python_with_boto3() else {
        return;
    };
    let env = proxy_env();
    let client = write_client(&env);
    let run = env.run_wrapping(
        &["-p", "open", "-t", &env.alice_code(), "--proxy"],
        &python,
        &[client.to_str().unwrap(), "scope"],
    );
    run.success()
        .prints("scope abc123.execute-api us-east-1 403")
        .prints("the credential scope's service is not a service signing name")
        .prints("scope s3 x.evil.example? 403")
        .prints("the credential scope's region is not a region name");
    let ops: Vec<String> = env.sts.requests().into_iter().map(|s| s.action).collect();
    assert_eq!(ops, ["GetSessionToken", "AssumeRole"], "{ops:?}");
}

#[test]
fn a_service_whose_host_the_request_cannot_tell_gets_a_501_naming_the_variable_that_would() {
    let Some(python) = python_with_boto3() else {
        return;
    };
    // Only STS has a configured endpoint (the stand-in): an execute-api request has none.
    let mut env = proxy_env();
    let standin = env.sts.url();
    env.set("AWS_ENDPOINT_URL", "")
        .set("AWS_ENDPOINT_URL_STS", &standin);
    let client = write_client(&env);
    let run = env.run_wrapping(
        &["-p", "open", "-t", &env.alice_code(), "--proxy"],
        &python,
        &[client.to_str().unwrap(), "execute-api"],
    );
    run.success()
        .prints("execute-api 501")
        .prints("set AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI for mfa-exec");
}

#[test]
fn a_request_under_another_key_is_refused_before_its_body_is_read() {
    let Some(python) = python_with_boto3() else {
        return;
    };
    let env = proxy_env();
    let client = write_client(&env);
    let run = env.run_wrapping(
        &["-p", "open", "-t", &env.alice_code(), "--proxy"],
        &python,
        &[client.to_str().unwrap(), "early"],
    );
    run.success()
        .prints("early 403")
        .prints("<Code>InvalidClientTokenId</Code>");
}

#[test]
fn the_history_lists_each_proxied_request_under_its_run_beside_a_plain_run() {
    let Some(aws) = aws_cli() else { return };
    let env = proxy_env();
    let script = format!(
        "A='{aws}'; $A sts get-caller-identity >/dev/null; $A s3api list-buckets >/dev/null; \
         $A --no-sign-request s3api list-buckets 2>/dev/null; exit 3",
        aws = aws.display()
    );
    let proxied = env.run([
        "-p",
        "open",
        "-t",
        &env.alice_code(),
        "--proxy",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(proxied.status, Some(3), "{}", proxied.stderr);
    env.run(["-p", "open", "--", "true"]).success();

    let listed = env.run(["history", "--json"]);
    listed.success();
    let runs: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let runs = runs.as_array().expect("a JSON array of runs");
    assert_eq!(runs.len(), 2, "{runs:#?}");
    let (first, second) = (&runs[0], &runs[1]);
    assert_eq!(first["mode"], "proxy");
    assert_eq!(first["profile"], "open");
    assert_eq!(first["command"], "sh");
    assert_eq!(first["status"], 3);
    assert_eq!(first["credentials"], "code");
    let requests: Vec<(String, String, u64, bool)> = first["requests"]
        .as_array()
        .expect("the proxied run's requests")
        .iter()
        .map(|r| {
            (
                r["service"].as_str().unwrap_or_default().to_string(),
                r["operation"].as_str().unwrap_or_default().to_string(),
                r["status"].as_u64().unwrap_or_default(),
                !r["refused"].is_null(),
            )
        })
        .collect();
    assert!(
        requests.contains(&("sts".into(), "GetCallerIdentity".into(), 200, false))
            && requests.contains(&("s3".into(), "ListBuckets".into(), 200, false)),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|(_, _, status, refused)| *status == 403 && *refused),
        "the unsigned request is recorded as refused: {requests:?}"
    );
    // The plain run, after it: the cache served it, and it made no request through a proxy.
    assert_eq!(second["mode"], "exec");
    assert_eq!(second["credentials"], "cache");
    assert_eq!(second["requests"], serde_json::json!([]));
    // The table shows the requests under their run.
    env.run(["history"])
        .success()
        .prints("GetCallerIdentity")
        .prints("ListBuckets");
}
