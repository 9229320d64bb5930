//! The test environment: a temporary HOME with AWS profile files, a strict STS stand-in, and
//! the real `mfa-exec` binary run with a cleared environment (this machine sets AWS_CA_BUNDLE
//! and SSL_* variables that must not leak into tests).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sts_standin::{Config, StandIn, ACCOUNT};

pub const ALICE_SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";
pub const BOB_SERIAL: &str = "arn:aws:iam::123456789012:mfa/bob";
pub const ALICE_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
pub const ALICE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
pub const BOB_KEY: &str = "AKIAI44QH8DHBEXAMPLE";
pub const BOB_SECRET: &str = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY";

pub fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

/// Profiles for the stand-in's demo fixtures: `alice` and `bob` hold keys and a device; the
/// role profiles take alice as their source.
pub fn demo_config_file() -> String {
    let mut text = format!(
        "[profile alice]\nmfa_serial = {ALICE_SERIAL}\n\n[profile bob]\nmfa_serial = {BOB_SERIAL}\n\n"
    );
    for role in ["s3-reader", "auditor", "open", "locked"] {
        text.push_str(&format!(
            "[profile {role}]\nrole_arn = {}\nsource_profile = alice\n\n",
            role_arn(role)
        ));
    }
    text.push_str(&format!(
        "[profile partner]\nrole_arn = {}\nsource_profile = alice\nexternal_id = partner-ext-id\n\n",
        role_arn("partner")
    ));
    text
}

pub fn demo_credentials_file() -> String {
    format!(
        "[alice]\naws_access_key_id = {ALICE_KEY}\naws_secret_access_key = {ALICE_SECRET}\n\n\
         [bob]\naws_access_key_id = {BOB_KEY}\naws_secret_access_key = {BOB_SECRET}\n"
    )
}

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub sts: StandIn,
    /// Extra variables for every run (on top of the cleared base).
    pub vars: BTreeMap<String, String>,
    /// TOTP steps already handed out, per serial: STS accepts each code once.
    used_steps: Mutex<BTreeMap<String, Vec<u64>>>,
}

impl TestEnv {
    /// The demo stand-in and the demo profile files.
    pub fn new() -> TestEnv {
        TestEnv::with_config(Config::demo())
    }

    pub fn with_config(config: Config) -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        let env = TestEnv {
            sts: StandIn::start(config).expect("start the STS stand-in"),
            dir,
            vars: BTreeMap::new(),
            used_steps: Mutex::new(BTreeMap::new()),
        };
        std::fs::create_dir_all(env.home().join(".aws")).unwrap();
        env.write_config(&demo_config_file());
        env.write_credentials(&demo_credentials_file());
        env
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.home().join(".cache").join("mfa-exec")
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.home().join(".aws/config"), text).unwrap();
    }

    /// The credentials file, 0600 as `aws configure` writes it.
    pub fn write_credentials(&self, text: &str) {
        let path = self.home().join(".aws/credentials");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    }

    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// The path of the binary under test.
    pub fn bin() -> &'static str {
        env!("CARGO_BIN_EXE_mfa-exec")
    }

    /// The variables every run starts from.
    pub fn base_vars(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            ("HOME".to_string(), self.home().display().to_string()),
            (
                "PATH".to_string(),
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            ),
            ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
            ("AWS_ENDPOINT_URL".to_string(), self.sts.url()),
            ("LANG".to_string(), "C.UTF-8".to_string()),
        ];
        vars.extend(self.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        vars
    }

    /// A command for `program` with the test environment (HOME, PATH, endpoint…).
    #[must_use = "run the command and check how it ended"]
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear().current_dir(self.dir.path());
        for (k, v) in self.base_vars() {
            cmd.env(k, v);
        }
        cmd
    }

    /// `mfa-exec ARGS…` with the test environment and no stdin.
    #[must_use = "run the command and check how it ended"]
    pub fn mfa_exec<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(Self::bin());
        cmd.args(args).stdin(Stdio::null());
        cmd
    }

    /// Runs `mfa-exec ARGS…` (detached from any terminal) and collects its output.
    #[track_caller]
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Run::from(self.mfa_exec(args).output().expect("run mfa-exec"))
    }

    /// `mfa-exec ARGS -- PROGRAM PROGRAM_ARGS`, collected.
    #[track_caller]
    pub fn run_wrapping(&self, args: &[&str], program: &Path, program_args: &[&str]) -> Run {
        let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        all.push(OsStr::new("--"));
        all.push(program.as_os_str());
        all.extend(program_args.iter().map(OsStr::new));
        self.run(all)
    }

    /// A TOTP code for `serial` that the stand-in has not seen yet, waiting for the next
    /// 30-second step when this step's codes are spent.
    pub fn code(&self, serial: &str) -> String {
        loop {
            let now = unix_now();
            let step = now / 30;
            let mut used = self.used_steps.lock().unwrap();
            let spent = used.entry(serial.to_string()).or_default();
            // This step's code and the next one are valid now and for the next 30 s.
            if let Some(s) = [step, step + 1].into_iter().find(|s| !spent.contains(s)) {
                spent.push(s);
                return self.sts.code(serial, s as i64 - step as i64);
            }
            drop(used);
            std::thread::sleep(Duration::from_millis(((step + 1) * 30 - now) * 1000 + 50));
        }
    }

    pub fn alice_code(&self) -> String {
        self.code(ALICE_SERIAL)
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The AWS CLI's "who am I", as a user with a region configured would ask it: prints the ARN.
pub const AWS_WHOAMI: [&str; 8] = [
    "sts",
    "get-caller-identity",
    "--region",
    "us-east-1",
    "--query",
    "Arn",
    "--output",
    "text",
];

/// A finished run, with assertions that point at the test line. A run nobody checks proves
/// nothing, so leaving one unchecked does not compile (`unused_must_use` is denied).
#[must_use = "check the run: .success(), .fails(..) or .prints(..)"]
pub struct Run {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn success(&self) -> &Self {
        assert_eq!(
            self.status,
            Some(0),
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Fails with `status` and a one-line `mfa-exec: …` message containing every `needle`.
    #[track_caller]
    pub fn fails(&self, status: i32, needles: &[&str]) -> &Self {
        assert_eq!(
            self.status,
            Some(status),
            "expected status {status}\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        let line = self
            .stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("mfa-exec: "))
            .unwrap_or_else(|| panic!("no `mfa-exec: ` line in stderr:\n{}", self.stderr));
        for needle in needles {
            assert!(
                line.contains(needle),
                "message {line:?} does not contain {needle:?}"
            );
        }
        self
    }

    /// Like [`Run::fails`], and that `mfa-exec: …` line is all of stderr.
    #[track_caller]
    pub fn fails_in_one_line(&self, status: i32, needles: &[&str]) -> &Self {
        self.fails(status, needles);
        assert_eq!(self.stderr.lines().count(), 1, "{}", self.stderr);
        self
    }

    #[track_caller]
    pub fn prints(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The `NAME=value` lines of a child that ran `env`.
    pub fn env_lines(&self) -> BTreeMap<String, String> {
        self.stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// A tool the tests need (a shell, the AWS CLI, shellcheck). Missing on a developer's machine:
/// the test is skipped and says so (see `skipped`). Missing in CI (`CI` set): the test fails,
/// because `scripts/test` installs it.
pub fn require_tool(name: &str, candidates: &[&str]) -> Option<PathBuf> {
    for c in candidates {
        let p = Path::new(c);
        if p.is_absolute() && p.exists() {
            return Some(p.to_path_buf());
        }
        if !p.is_absolute() {
            if let Some(found) = which(c) {
                return Some(found);
            }
        }
    }
    skipped(&format!("{name} is not installed here"));
    None
}

/// Says that the running test (or part of it) did not run, where `cargo test` shows it:
/// libtest captures `eprintln!` and shows it only for failing tests, so this writes to the
/// process's stderr directly. Under CI (`CI` set) nothing may be skipped: it panics instead,
/// because `scripts/test` installs everything the tests need.
pub fn skipped(reason: &str) {
    use std::io::Write;
    let thread = std::thread::current();
    // libtest runs each test on a thread named after it.
    let test = thread.name().unwrap_or("a test");
    if std::env::var_os("CI").is_some() {
        panic!("{test} cannot run: {reason}; CI must not skip tests (scripts/test installs what they need)");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {reason} (scripts/test installs what the tests need)"
    );
}

pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// A Python with boto3 (the venv scripts/test makes), or a skip.
pub fn python_with_boto3() -> Option<PathBuf> {
    let python = std::env::var("MFA_EXEC_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import boto3"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(PathBuf::from(python));
    }
    require_tool("python3 with boto3", &[])
}

/// The AWS CLI v1 (it honours AWS_ENDPOINT_URL; Debian's v2.9 does not): from
/// `MFA_EXEC_TEST_AWS_CLI`, else the venv `.ci/run` makes.
pub fn aws_cli() -> Option<PathBuf> {
    let from_env = std::env::var("MFA_EXEC_TEST_AWS_CLI").ok();
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/venv/bin/aws");
    let mut candidates: Vec<&str> = Vec::new();
    if let Some(p) = from_env.as_deref() {
        candidates.push(p);
    }
    candidates.push(venv);
    require_tool("the AWS CLI v1 (pip install awscli)", &candidates)
}

/// The stand-in's binary (crates/sts-standin), next to the binary under test: a child that
/// signs calls with the keys mfa-exec gives it (`sts-standin call …`), and what scripts/demo
/// runs. `cargo test --workspace` (scripts/test) builds it; a `cargo test` of this package alone
/// does not, so a missing or out-of-date binary stops the test, rather than testing old code.
pub fn standin_bin() -> PathBuf {
    let bin = Path::new(TestEnv::bin()).with_file_name("sts-standin");
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/sts-standin");
    let built = std::fs::metadata(&bin).and_then(|m| m.modified());
    let Ok(built) = built else {
        panic!(
            "{} is missing: run `cargo test --workspace` (scripts/test), which builds it",
            bin.display()
        );
    };
    // What cargo compares too: the times of the sources (not of Cargo.toml).
    let mut sources = Vec::new();
    let mut dirs = vec![crate_dir.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources.push(path);
            }
        }
    }
    for source in sources {
        let changed = std::fs::metadata(&source)
            .and_then(|m| m.modified())
            .unwrap();
        assert!(
            changed <= built,
            "{} is older than {}: `cargo test --workspace` (scripts/test) rebuilds it (with \
             `--test NAME`, cargo builds no other package's binaries)",
            bin.display(),
            source.display()
        );
    }
    bin
}
