//! The shell integration (`shell/mfa-exec.{bash,zsh,fish}`) in real shells. Each test loads
//! the script the way a user does (`eval "$(mfa-exec init bash)"`, `mfa-exec init fish |
//! source`), runs `mfa` against the STS stand-in with a code, and looks at what the shell ends
//! up with. The scenarios are written once, in the commands the three shells share, and run in
//! each; a shell missing here says its tests were skipped (CI installs all three).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use support::env::*;

// ------------------------------------------------------------------------------------------
// The shells
// ------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Bash,
    Zsh,
    Fish,
}

struct Shell {
    kind: Kind,
    program: PathBuf,
    /// fish: read the configuration (needed for universal variables; off elsewhere, so that
    /// other packages' handlers under /etc/fish stay out of the output).
    fish_config: bool,
}

/// What a scenario script produced: its output, the `st LABEL` statuses it printed, and the
/// environments it saved with `snap LABEL`.
struct Session {
    run: Run,
    dir: PathBuf,
}

impl Shell {
    fn find(kind: Kind) -> Option<Shell> {
        let name = match kind {
            Kind::Bash => "bash",
            Kind::Zsh => "zsh",
            Kind::Fish => "fish",
        };
        require_tool(name, &[name]).map(|program| Shell {
            kind,
            program,
            fish_config: false,
        })
    }

    /// Helpers every scenario uses, the same names in each shell:
    /// `st LABEL` prints `LABEL=<status of the previous command>`; `snap LABEL` saves the
    /// exported environment; `capture LABEL CMD…` saves CMD's stdout and prints its status;
    /// `setenv`/`unsetenv`; `prompt` runs the hooks the shell runs before a prompt.
    fn helpers(&self) -> &'static str {
        match self.kind {
            Kind::Bash => {
                r#"set -u
st() { echo "$1=$?"; }
snap() { env -0 >"$SNAP/$1.env"; }
capture() { local l=$1; shift; "$@" >"$SNAP/$l.out"; echo "$l=$?"; }
setenv() { export "$1=$2"; }
unsetenv() { unset "$1"; }
prompt() { eval "$PROMPT_COMMAND"; }
"#
            }
            // Options a user may have set; the script must not depend on zsh's defaults.
            Kind::Zsh => {
                r#"setopt nounset ksh_arrays sh_word_split
st() { echo "$1=$?"; }
snap() { env -0 >"$SNAP/$1.env"; }
capture() { local l=$1; shift; "$@" >"$SNAP/$l.out"; echo "$l=$?"; }
setenv() { export "$1=$2"; }
unsetenv() { unset "$1"; }
prompt() { local f; for f in "${precmd_functions[@]}"; do "$f"; done; }
"#
            }
            Kind::Fish => {
                r#"function st; echo "$argv[1]=$status"; end
function snap; env -0 >$SNAP/$argv[1].env; end
function capture; set -l l $argv[1]; $argv[2..-1] >$SNAP/$l.out; echo "$l=$status"; end
function setenv; set -gx $argv[1] $argv[2]; end
function unsetenv; set -e -g $argv[1]; end
function prompt; emit fish_prompt; end
"#
            }
        }
    }

    /// How a user loads the integration.
    fn source_line(&self) -> &'static str {
        match self.kind {
            Kind::Bash => "eval \"$(\"$MFA_EXEC_BIN\" init bash)\"\n",
            Kind::Zsh => "eval \"$(\"$MFA_EXEC_BIN\" init zsh)\"\n",
            Kind::Fish => "\"$MFA_EXEC_BIN\" init fish | source\n",
        }
    }

    fn command(&self, env: &TestEnv, vars: &[(&str, &str)], dir: &Path) -> Command {
        // A new session has no terminal: a prompt for a code would fail instead of waiting.
        let mut cmd = match which("setsid") {
            Some(setsid) => {
                let mut c = env.command(setsid);
                c.arg("--wait").arg(&self.program);
                c
            }
            None => env.command(&self.program),
        };
        cmd.env("MFA_EXEC_BIN", TestEnv::bin()).env("SNAP", dir);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd
    }

    fn session(cmd: &mut Command, dir: PathBuf) -> Session {
        let run = Run::from(cmd.output().expect("run the shell"));
        Session { run, dir }
    }

    /// A directory for one run's snapshots, removed with the test environment.
    fn snap_dir(&self, env: &TestEnv) -> PathBuf {
        tempfile::Builder::new()
            .prefix(&format!("{:?}-", self.kind))
            .tempdir_in(env.dir.path())
            .unwrap()
            .keep()
    }

    /// Runs `setup`, loads the integration, then runs `script`, all in one non-interactive
    /// shell with the test environment plus `vars`.
    fn run(&self, env: &TestEnv, vars: &[(&str, &str)], setup: &str, script: &str) -> Session {
        let dir = self.snap_dir(env);
        let text = format!(
            "{}{setup}\n{}{script}\n",
            self.helpers(),
            self.source_line()
        );
        let mut cmd = self.command(env, vars, &dir);
        match self.kind {
            Kind::Bash => cmd.args(["--norc", "--noprofile", "-c", &text]),
            Kind::Zsh => cmd.args(["-f", "-c", &text]),
            Kind::Fish if self.fish_config => cmd.args(["-c", &text]),
            Kind::Fish => cmd.args(["--no-config", "-c", &text]),
        };
        cmd.stdin(Stdio::null());
        Self::session(&mut cmd, dir)
    }

    /// The same, but an interactive shell reading the lines from its input: it runs its
    /// prompt hooks after each one, as in a terminal (bash and zsh; fish needs a terminal).
    fn run_interactive(
        &self,
        env: &TestEnv,
        vars: &[(&str, &str)],
        setup: &str,
        script: &str,
    ) -> Session {
        assert_ne!(self.kind, Kind::Fish);
        let dir = self.snap_dir(env);
        let text = format!(
            "{}{setup}\n{}{script}\nexit\n",
            self.helpers().replace("set -u\n", ""),
            self.source_line()
        );
        let mut cmd = self.command(env, vars, &dir);
        match self.kind {
            Kind::Bash => cmd.args(["--norc", "--noprofile", "-i"]),
            _ => cmd.args(["-f", "-i"]),
        };
        let input = std::fs::File::create(dir.join("input")).and_then(|mut f| {
            use std::io::Write;
            f.write_all(text.as_bytes())?;
            std::fs::File::open(dir.join("input"))
        });
        cmd.stdin(input.expect("write the input"));
        Self::session(&mut cmd, dir)
    }
}

impl Session {
    /// The status `st LABEL` printed.
    #[track_caller]
    fn status(&self, label: &str) -> i32 {
        self.number(label) as i32
    }

    /// The number of the last `LABEL=N` line.
    #[track_caller]
    fn number(&self, label: &str) -> i64 {
        let prefix = format!("{label}=");
        self.run
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .next_back()
            .unwrap_or_else(|| panic!("no `{label}=` line\n{}", self.transcript()))
            .parse()
            .unwrap()
    }

    #[track_caller]
    fn ok(&self, label: &str) -> &Self {
        assert_eq!(self.status(label), 0, "{label}\n{}", self.transcript());
        self
    }

    /// The environment `snap LABEL` saved.
    #[track_caller]
    fn env(&self, label: &str) -> BTreeMap<String, String> {
        let bytes = std::fs::read(self.dir.join(format!("{label}.env")))
            .unwrap_or_else(|e| panic!("snapshot {label}: {e}\n{}", self.transcript()));
        String::from_utf8(bytes)
            .unwrap()
            .split('\0')
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (k, v) = e.split_once('=').expect("NAME=value");
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    /// What `capture LABEL …` saved.
    #[track_caller]
    fn out(&self, label: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{label}.out")))
            .unwrap_or_else(|e| panic!("output {label}: {e}\n{}", self.transcript()))
    }

    fn transcript(&self) -> String {
        format!(
            "status {:?}\nstdout:\n{}\nstderr:\n{}",
            self.run.status, self.run.stdout, self.run.stderr
        )
    }
}

/// What the shell itself adds to its environment (and the harness's own variables): the rest
/// must be exactly what mfa-exec's exec mode gives a child.
fn without_shell_noise(env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    env.iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "PWD" | "OLDPWD" | "SHLVL" | "_" | "LOGNAME" | "USER" | "SNAP"
            )
        })
        .filter(|(k, _)| !k.starts_with("T_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn from_now(secs: i64) -> SystemTime {
    let now = SystemTime::now();
    if secs >= 0 {
        now + Duration::from_secs(secs as u64)
    } else {
        now - Duration::from_secs((-secs) as u64)
    }
}

/// How the scripts show a time left: 45s, 42m, 11h05m.
fn shown(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// The time left shown for credentials of `lifetime` seconds issued moments ago: all of it
/// (STS rounds the expiry to the second) or a minute less.
fn just_issued(lifetime: u64) -> [String; 2] {
    [shown(lifetime), shown(lifetime - 60)]
}

/// A signed STS client to run from inside the shell: the AWS CLI v1 when it is here, else the
/// stand-in's own `call` (crates/sts-standin, built by `cargo test --workspace`).
fn client() -> Option<(PathBuf, &'static str)> {
    if let Some(aws) = aws_cli() {
        return Some((
            aws,
            "sts get-caller-identity --region us-east-1 --output text --query Arn",
        ));
    }
    Some((standin_bin(), "call GetCallerIdentity"))
}

// ------------------------------------------------------------------------------------------
// The scenarios, each run in bash, zsh and fish
// ------------------------------------------------------------------------------------------

/// The shell's variables after `mfa` are exactly those `mfa-exec -- env` gives a child, stale
/// ones that would override the new keys included, and an AWS client in the shell signs with
/// them.
fn mfa_loads_exactly_what_exec_mode_gives_a_child(sh: &Shell) {
    let env = TestEnv::new();
    let stale = [
        ("AWS_PROFILE", "bob"),
        ("AWS_DEFAULT_PROFILE", "bob"),
        ("AWS_SECURITY_TOKEN", "stale-token"),
        ("MFA_EXEC_ROLE_ARN", "arn:aws:iam::123456789012:role/stale"),
    ];
    let code = env.alice_code();
    let client = client();
    let client_line = client
        .as_ref()
        .map(|(_, args)| format!("\"$T_CLIENT\" {args}; st client"))
        .unwrap_or_default();
    let client_path = client
        .as_ref()
        .map(|(p, _)| p.display().to_string())
        .unwrap_or_default();
    let mut vars = stale.to_vec();
    vars.extend([
        ("T_CODE", code.as_str()),
        ("T_CLIENT", client_path.as_str()),
    ]);

    let s = sh.run(
        &env,
        &vars,
        "",
        &format!(
            "mfa -p alice --region us-east-1 -t \"$T_CODE\"; st mfa\nsnap loaded\n{client_line}"
        ),
    );
    s.ok("mfa");
    let loaded = s.env("loaded");

    // Exec mode, from the cache that mfa filled: the same credentials.
    let mut exec = env.mfa_exec(["-p", "alice", "--region", "us-east-1", "--", "env", "-0"]);
    exec.env("MFA_EXEC_BIN", TestEnv::bin());
    for (k, v) in stale {
        exec.env(k, v);
    }
    let out = exec.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let child: BTreeMap<String, String> = String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

    assert_eq!(without_shell_noise(&loaded), without_shell_noise(&child));
    assert!(
        loaded["AWS_ACCESS_KEY_ID"].starts_with("ASIA"),
        "{loaded:?}"
    );
    assert_eq!(loaded["MFA_EXEC_PROFILE"], "alice");
    assert_eq!(loaded["AWS_REGION"], "us-east-1");
    for (name, _) in stale {
        assert!(!loaded.contains_key(name), "{name} is still set");
    }
    assert_eq!(
        env.sts.calls("GetSessionToken"),
        1,
        "exec mode used the cache"
    );

    if client.is_some() {
        s.ok("client");
        assert!(
            s.run
                .stdout
                .contains("arn:aws:iam::123456789012:user/alice"),
            "{}",
            s.transcript()
        );
        assert_eq!(env.sts.calls("GetCallerIdentity"), 1);
    }
}

/// `mfa-off` removes what mfa set and puts back what it removed or replaced, so the
/// environment is again what it was; a variable the user changed in between keeps the change.
fn mfa_off_puts_the_environment_back_as_it_was(sh: &Shell) {
    let env = TestEnv::new();
    let code = env.alice_code();
    let vars = [
        // The user's own keys and profile, which mfa replaces and removes.
        ("AWS_ACCESS_KEY_ID", BOB_KEY),
        ("AWS_SECRET_ACCESS_KEY", BOB_SECRET),
        ("AWS_PROFILE", "bob"),
        ("AWS_REGION", "eu-west-1"),
        ("T_CODE", code.as_str()),
    ];
    let s = sh.run(
        &env,
        &vars,
        "",
        r#"mfa-off; st off-with-nothing-loaded
snap before
mfa -p alice -t "$T_CODE"; st mfa
snap loaded
mfa-off; st off
snap after
mfa-status; st status-after-off
mfa -p alice; st mfa-again
setenv AWS_REGION ap-south-1
mfa-off; st off-again
snap changed-in-between
"#,
    );
    for label in [
        "off-with-nothing-loaded",
        "mfa",
        "off",
        "mfa-again",
        "off-again",
    ] {
        s.ok(label);
    }
    assert_eq!(s.status("status-after-off"), 1);

    let before = s.env("before");
    let loaded = s.env("loaded");
    assert_ne!(loaded["AWS_ACCESS_KEY_ID"], BOB_KEY);
    assert!(!loaded.contains_key("AWS_PROFILE"));
    assert_eq!(loaded["AWS_DEFAULT_REGION"], "eu-west-1");

    assert_eq!(
        without_shell_noise(&s.env("after")),
        without_shell_noise(&before)
    );

    let mut expected = without_shell_noise(&before);
    expected.insert("AWS_REGION".into(), "ap-south-1".into());
    assert_eq!(without_shell_noise(&s.env("changed-in-between")), expected);
}

/// `mfa` alone renews the profile the last mfa named (from the cache here), and a second mfa
/// starts from the shell as it was: another profile does not inherit the first one's region,
/// nor the user's AWS_PROFILE that mfa removed.
fn mfa_alone_renews_and_another_profile_starts_afresh(sh: &Shell) {
    let env = TestEnv::new();
    env.write_config(&demo_config_file().replace(
        "[profile s3-reader]\n",
        "[profile s3-reader]\nregion = eu-north-1\n",
    ));
    let code = env.alice_code();
    let s = sh.run(
        &env,
        &[("AWS_PROFILE", "bob"), ("T_CODE", &code)],
        "",
        r#"mfa -p s3-reader -t "$T_CODE"; st role
snap role
mfa; st renew
snap renewed
mfa -p alice; st alice
snap alice
"#,
    );
    s.ok("role").ok("renew").ok("alice");
    let (role, renewed, alice) = (s.env("role"), s.env("renewed"), s.env("alice"));
    assert_eq!(role["MFA_EXEC_PROFILE"], "s3-reader");
    assert_eq!(role["AWS_REGION"], "eu-north-1");
    assert_eq!(without_shell_noise(&renewed), without_shell_noise(&role));
    assert_eq!(alice["MFA_EXEC_PROFILE"], "alice");
    assert!(!alice.contains_key("MFA_EXEC_ROLE_ARN"), "{alice:?}");
    for name in ["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"] {
        assert!(!alice.contains_key(name), "{name} in {alice:?}");
    }
    // One code for everything: the MFA session is cached and shared.
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    assert_eq!(env.sts.calls("AssumeRole"), 1);
}

/// Values full of shell syntax (the user's own AWS_PROFILE, and a profile name made of every
/// character the AWS SDKs accept in one) arrive byte for byte, in the variables, the prompt and
/// back after mfa-off, and run nothing.
fn values_full_of_shell_syntax_round_trip_and_run_nothing(sh: &Shell) {
    let env = TestEnv::new();
    let name = "o%brien%s%n%%:@+/-a.b_c%F%B";
    let users_profile = "line1\nline2 '$(touch pwned3)' \\\" %% ${HOME} `id`";
    env.write_config(&format!(
        "{}[profile {name}]\nmfa_serial = {ALICE_SERIAL}\n",
        demo_config_file()
    ));
    env.write_credentials(&format!(
        "{}\n[{name}]\naws_access_key_id = {ALICE_KEY}\naws_secret_access_key = {ALICE_SECRET}\n",
        demo_credentials_file()
    ));
    let code = env.alice_code();
    let vars = [
        ("T_PROFILE", name),
        ("AWS_PROFILE", users_profile),
        ("T_CODE", code.as_str()),
    ];
    let s = sh.run(
        &env,
        &vars,
        "",
        r#"snap before
mfa -p "$T_PROFILE" -t "$T_CODE"; st mfa
snap loaded
capture info mfa_prompt_info
capture status mfa-status
mfa-off; st off
snap after
"#,
    );
    s.ok("mfa").ok("info").ok("status").ok("off");
    assert_eq!(s.env("loaded")["MFA_EXEC_PROFILE"], name);
    let info = s.out("info");
    // zsh's mfa_prompt_info is prompt text: % doubled, so a prompt shows it as it is.
    let shown = match sh.kind {
        Kind::Zsh => name.replace('%', "%%"),
        _ => name.to_string(),
    };
    assert!(
        just_issued(12 * 3600)
            .iter()
            .any(|left| info == format!("[{shown} {left}]")),
        "{info}"
    );
    let status = s.out("status");
    assert!(
        just_issued(12 * 3600)
            .iter()
            .any(|left| status
                .starts_with(&format!("profile {name}, MFA session, {left} left (until "))),
        "{status}"
    );
    assert_eq!(s.env("after")["AWS_PROFILE"], users_profile);
    assert_eq!(
        without_shell_noise(&s.env("after")),
        without_shell_noise(&s.env("before"))
    );
    assert!(!env.dir.path().join("pwned3").exists(), "a command ran");
    assert!(!env.home().join("pwned3").exists(), "a command ran");
}

/// When mfa-exec fails (a wrong code, an unknown profile, a code needed with --no-prompt),
/// `mfa` returns its status, the shell keeps every variable, and the one-line message shows.
/// `mfa --help` shows the help and evaluates none of it.
fn a_failed_mfa_leaves_the_shell_unchanged(sh: &Shell) {
    let env = TestEnv::new();
    // A code ten minutes ahead: STS refuses it.
    let wrong = env.sts.code(ALICE_SERIAL, 20);
    let vars = [("AWS_PROFILE", "bob"), ("T_WRONG", wrong.as_str())];
    let s = sh.run(
        &env,
        &vars,
        "",
        r#"snap before
mfa -p alice -t "$T_WRONG"; st wrong-code
mfa -p no-such-profile -t 123456; st unknown-profile
mfa -p alice --no-prompt; st no-prompt
mfa --help; st help
snap after
mfa-status; st status
"#,
    );
    assert_eq!(s.status("wrong-code"), 125);
    assert_eq!(s.status("unknown-profile"), 125);
    assert_eq!(s.status("no-prompt"), 125);
    assert_eq!(s.status("status"), 1);
    s.ok("help");
    assert!(s.run.stdout.contains("--print-env"), "{}", s.transcript());
    assert_eq!(
        without_shell_noise(&s.env("after")),
        without_shell_noise(&s.env("before"))
    );
    let messages: Vec<&str> = s
        .run
        .stderr
        .lines()
        .filter(|l| l.starts_with("mfa-exec: "))
        .collect();
    assert_eq!(messages.len(), 3, "{}", s.transcript());
    assert!(messages[1].contains("no-such-profile"), "{messages:?}");
    assert!(messages[2].contains("--no-prompt"), "{messages:?}");
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}

/// `mfa` evaluates nothing but the assignments `--print-env` prints: from a stand-in for
/// mfa-exec that slips in a command or a variable of its own, it takes nothing at all.
fn mfa_evaluates_nothing_but_assignments(sh: &Shell) {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let mut vars = Vec::new();
    for (name, output) in [
        (
            "command",
            "export AWS_ACCESS_KEY_ID='AKIAFAKE'\ntouch pwned",
        ),
        (
            "variable",
            "export AWS_ACCESS_KEY_ID='AKIAFAKE'\nexport LD_PRELOAD='/tmp/evil.so'",
        ),
        (
            "quote",
            "export AWS_ACCESS_KEY_ID='AKIA'FAKE'; touch pwned; '",
        ),
    ] {
        let fake = env.dir.path().join(format!("fake-{name}"));
        let text = env.dir.path().join(format!("fake-{name}.txt"));
        std::fs::write(&text, format!("{output}\n")).unwrap();
        std::fs::write(&fake, format!("#!/bin/sh\ncat '{}'\n", text.display())).unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        vars.push((format!("T_FAKE_{name}"), fake.display().to_string()));
    }
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let script = r#"snap before
MFA_EXEC_BIN="$T_FAKE_command" mfa -p alice; st command
MFA_EXEC_BIN="$T_FAKE_variable" mfa -p alice; st variable
MFA_EXEC_BIN="$T_FAKE_quote" mfa -p alice; st quote
snap after
"#;
    let s = sh.run(&env, &vars, "", script);
    for name in ["command", "variable", "quote"] {
        assert_eq!(s.status(name), 1, "{name}\n{}", s.transcript());
    }
    assert_eq!(
        s.run.stderr.matches("mfa: unexpected output from").count(),
        3,
        "{}",
        s.transcript()
    );
    assert_eq!(
        without_shell_noise(&s.env("after")),
        without_shell_noise(&s.env("before"))
    );
    assert!(!env.dir.path().join("pwned").exists(), "a command ran");
}

/// Loading the integration again (a re-read ~/.bashrc) adds no second hook or completion and
/// keeps what the first mfa saved, so mfa-off still restores.
fn sourcing_twice_installs_nothing_twice(sh: &Shell) {
    let env = TestEnv::new();
    let code = env.alice_code();
    let (setup, count) = match sh.kind {
        Kind::Bash => (
            "PROMPT_COMMAND='echo \"user hook saw $?\"'",
            r#"printf 'hooks=%s\n' "$PROMPT_COMMAND""#,
        ),
        Kind::Zsh => (
            "user_hook() { :; }; precmd_functions=(user_hook)",
            r#"print -r -- "hooks=${(j:,:)precmd_functions[@]}""#,
        ),
        Kind::Fish => (
            "",
            r#"echo "hooks="(functions --handlers | string match -r '\S*mfa\S*' | string join ,)
echo "completions="(complete -C 'mfa --no-p' | string join ,)"#,
        ),
    };
    let s = sh.run(
        &env,
        &[("T_CODE", &code), ("AWS_PROFILE", "bob")],
        setup,
        &format!(
            "snap before\nmfa -p alice -t \"$T_CODE\"; st mfa\n{}{count}\nmfa-off; st off\nsnap after\n",
            sh.source_line()
        ),
    );
    s.ok("mfa").ok("off");
    let hooks = s
        .run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("hooks="))
        .unwrap();
    match sh.kind {
        Kind::Bash => assert_eq!(hooks, "_mfa_exec_prompt_hook;echo \"user hook saw $?\""),
        Kind::Zsh => assert_eq!(hooks, "user_hook,_mfa_exec_precmd"),
        Kind::Fish => {
            assert_eq!(hooks, "__mfa_exec_on_prompt");
            assert!(
                s.run
                    .stdout
                    .contains("completions=--no-prompt\tNever ask for a code\n"),
                "{}",
                s.transcript()
            );
        }
    }
    assert_eq!(
        without_shell_noise(&s.env("after")),
        without_shell_noise(&s.env("before"))
    );
}

/// The prompt helper computes the time left in the shell: with no program reachable on PATH
/// it still prints `[profile 42m]`, for a time in UTC or with an offset, and nothing (status
/// 0) when nothing is loaded.
fn the_prompt_helper_needs_no_process(sh: &Shell) {
    let env = TestEnv::new();
    let in_42m = rfc3339(from_now(42 * 60 + 30));
    // The same instant in India: 5h30 ahead of UTC.
    let in_42m_india = rfc3339(from_now(42 * 60 + 30 + 5 * 3600 + 1800)).replace('Z', "+05:30");
    let in_1h05 = rfc3339(from_now(3600 + 5 * 60 + 30));
    let past = rfc3339(from_now(-10));
    let vars = [
        ("T_42M", in_42m.as_str()),
        ("T_42M_INDIA", in_42m_india.as_str()),
        ("T_1H05", in_1h05.as_str()),
        ("T_PAST", past.as_str()),
    ];
    // fish measures its boot time once with date(1), the first time it needs the clock.
    let warm_up = if sh.kind == Kind::Fish {
        "setenv MFA_EXEC_PROFILE x; setenv AWS_CREDENTIAL_EXPIRATION $T_PAST; mfa_prompt_info >/dev/null
unsetenv MFA_EXEC_PROFILE; unsetenv AWS_CREDENTIAL_EXPIRATION"
    } else {
        ""
    };
    let s = sh.run(
        &env,
        &vars,
        "",
        &format!(
            r#"{warm_up}
setenv PATH /nonexistent
capture nothing mfa_prompt_info
setenv MFA_EXEC_PROFILE prod
setenv AWS_CREDENTIAL_EXPIRATION "$T_42M"
capture 42m mfa_prompt_info
setenv AWS_CREDENTIAL_EXPIRATION "$T_42M_INDIA"
capture india mfa_prompt_info
setenv AWS_CREDENTIAL_EXPIRATION "$T_1H05"
capture 1h05 mfa_prompt_info
setenv AWS_CREDENTIAL_EXPIRATION "$T_PAST"
capture past mfa_prompt_info
unsetenv MFA_EXEC_PROFILE
unsetenv AWS_CREDENTIAL_EXPIRATION
"#
        ),
    );
    for (label, shown) in [
        ("nothing", ""),
        ("42m", "[prod 42m]"),
        ("india", "[prod 42m]"),
        ("1h05", "[prod 1h05m]"),
        ("past", "[prod expired]"),
    ] {
        s.ok(label);
        assert_eq!(s.out(label), shown, "{label}\n{}", s.transcript());
    }
    assert!(!s.run.stderr.contains("not found"), "{}", s.transcript());
}

/// Calendar arithmetic behind the prompt: RFC 3339 times to seconds since the epoch, across
/// leap days, centuries, 2038 and offsets, against known values.
fn the_expiration_is_read_with_calendar_arithmetic(sh: &Shell) {
    let cases = [
        ("1970-01-01T00:00:00Z", 0),
        ("1999-12-31T23:59:59Z", 946_684_799),
        ("2000-02-29T23:59:59Z", 951_868_799),
        ("2000-03-01T00:00:00Z", 951_868_800),
        ("2024-02-29T12:00:00Z", 1_709_208_000),
        ("2026-11-22T16:48:45Z", 1_795_366_125),
        ("2026-11-22T16:48:45.250Z", 1_795_366_125),
        ("2026-11-22T22:18:45+05:30", 1_795_366_125),
        ("2026-11-22T11:48:45-05:00", 1_795_366_125),
        ("2038-01-19T03:14:08Z", 2_147_483_648),
        ("2100-03-01T00:00:00Z", 4_107_542_400),
    ];
    let line = |t: &str| match sh.kind {
        Kind::Bash | Kind::Zsh => format!("_mfa_exec_epoch '{t}' && echo \"{t}=$_mfa_exec_t\""),
        Kind::Fish => format!("echo '{t}='(__mfa_exec_epoch '{t}')"),
    };
    let script: String = cases
        .iter()
        .map(|(t, _)| line(t) + "\n")
        .collect::<String>()
        + match sh.kind {
            Kind::Fish => "__mfa_exec_epoch 'next tuesday'; st garbage",
            _ => "_mfa_exec_epoch 'next tuesday'; st garbage",
        };
    let env = TestEnv::new();
    let s = sh.run(&env, &[], "", &script);
    for (t, secs) in cases {
        assert_eq!(s.number(t), secs, "{t}");
    }
    assert_ne!(s.status("garbage"), 0);
}

/// `mfa-status` names the profile, a role or an MFA session, and the time left; it fails when
/// nothing is loaded or the credentials have expired.
fn mfa_status_tells_profile_kind_and_time_left(sh: &Shell) {
    let env = TestEnv::new();
    let code = env.alice_code();
    let s = sh.run(
        &env,
        &[("T_CODE", &code)],
        "",
        r#"capture none mfa-status
mfa -p s3-reader -t "$T_CODE"; st mfa-role
capture role mfa-status
mfa -p alice; st mfa-session
capture session mfa-status
setenv AWS_CREDENTIAL_EXPIRATION 2020-01-01T00:00:00Z
capture expired mfa-status
mfa-off; st off
capture after-off mfa-status
"#,
    );
    s.ok("mfa-role").ok("mfa-session").ok("off");
    assert_eq!(s.status("none"), 1);
    assert!(s.run.stderr.contains("mfa: no credentials loaded; run mfa"));

    s.ok("role");
    let role = s.out("role");
    let arn = role_arn("s3-reader");
    assert!(
        just_issued(3600)
            .iter()
            .any(|left| role.starts_with(&format!(
                "profile s3-reader, role {arn}, {left} left (until "
            ))),
        "{role}"
    );
    s.ok("session");
    let session = s.out("session");
    assert!(
        just_issued(12 * 3600)
            .iter()
            .any(|left| session
                .starts_with(&format!("profile alice, MFA session, {left} left (until "))),
        "{session}"
    );
    assert_eq!(s.status("expired"), 1);
    assert_eq!(
        s.out("expired"),
        "profile alice, MFA session, expired at 2020-01-01T00:00:00Z\n"
    );
    assert_eq!(s.status("after-off"), 1);
    assert_eq!(s.out("after-off"), "");
}

/// With MFA_EXEC_AUTO_REFRESH=1, the hook before a prompt renews credentials that are getting
/// short from what the cache holds (a role, from the cached MFA session), at most once a
/// minute; when only a new code would do, it warns once and changes nothing. Without it,
/// prompts never run mfa-exec.
fn auto_refresh_renews_from_the_cache_or_warns_once(sh: &Shell) {
    let env = TestEnv::new();
    // Role credentials of 20 s: mfa-exec's margin is at most half a lifetime, so they are
    // due for renewal only once past their first 10 s, whatever MFA_EXEC_MIN_REMAINING says.
    env.sts.set_role_lifetime_override(Some(20));
    let code = env.alice_code();
    // Past the one-try-a-minute limit: it tries again, but does not warn again.
    let a_minute_later = match sh.kind {
        Kind::Fish => "set -g __mfa_exec_retry_at 0",
        _ => "_mfa_exec_retry_at=0",
    };
    let s = sh.run(
        &env,
        &[("T_CODE", &code)],
        "",
        &format!(
            r#"mfa -p s3-reader -t "$T_CODE"; st mfa
setenv MFA_EXEC_MIN_REMAINING 2h
snap role
prompt; st prompt-opted-out
snap role-untouched
sleep 12
setenv MFA_EXEC_AUTO_REFRESH 1
prompt; st prompt-refresh
snap role-renewed
prompt; st prompt-again
mfa -p alice; st mfa-alice
setenv MFA_EXEC_MIN_REMAINING 13h
snap session
prompt; st prompt-warn
prompt; st prompt-warn-again
{a_minute_later}
prompt; st prompt-a-minute-later
snap session-after
"#
        ),
    );
    for label in [
        "mfa",
        "prompt-opted-out",
        "prompt-refresh",
        "prompt-again",
        "mfa-alice",
        "prompt-warn",
        "prompt-warn-again",
        "prompt-a-minute-later",
    ] {
        s.ok(label);
    }
    let (role, renewed) = (s.env("role"), s.env("role-renewed"));
    assert_eq!(
        without_shell_noise(&s.env("role-untouched")),
        without_shell_noise(&role)
    );
    assert_ne!(renewed["AWS_ACCESS_KEY_ID"], role["AWS_ACCESS_KEY_ID"]);
    assert!(renewed["AWS_CREDENTIAL_EXPIRATION"] >= role["AWS_CREDENTIAL_EXPIRATION"]);
    assert_eq!(renewed["MFA_EXEC_PROFILE"], "s3-reader");
    assert_eq!(renewed["MFA_EXEC_ROLE_ARN"], role_arn("s3-reader"));
    // One code: the session; two roles: mfa's and the renewal's; none from "prompt-again".
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    assert_eq!(env.sts.calls("AssumeRole"), 2);

    assert_eq!(
        without_shell_noise(&s.env("session-after")),
        without_shell_noise(&s.env("session"))
    );
    let warnings: Vec<&str> = s
        .run
        .stderr
        .lines()
        .filter(|l| l.starts_with("mfa"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", s.transcript());
    assert!(
        just_issued(12 * 3600).iter().any(|left| warnings[0]
            == format!("mfa: the credentials of profile alice expire in {left} and cannot be renewed without an MFA code: run mfa")),
        "{}",
        warnings[0]
    );
}

/// Completion offers mfa-exec's options and the profiles of the AWS config files.
fn completion_offers_options_and_profiles(sh: &Shell) {
    let env = TestEnv::new();
    let profiles = "alice auditor bob locked open partner s3-reader";
    let script = match sh.kind {
        Kind::Bash => {
            r#"c() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _mfa_exec_complete; echo "${COMPREPLY[*]}"; }
echo "profiles=$(c mfa -p '')"
echo "profiles-a=$(c mfa-exec --profile a)"
echo "no=$(c mfa --no-)"
echo "pr=$(c mfa-exec --pr)"
echo "mfa-pr=$(c mfa --pr)"
echo "sub=$(c mfa-exec '')"
echo "init=$(c mfa-exec init '')"
echo "shell=$(c mfa-exec --print-env --shell f)"
echo "command=$(c mfa-exec -p alice -- mfa-of)"
complete -p mfa mfa-exec
"#
        }
        Kind::Zsh => {
            // Completion itself needs the line editor; here: that it is registered with
            // compinit (also when compinit comes after the script), and the profile list.
            r#"unsetopt ksh_arrays
autoload -Uz compinit; compinit -u -D
prompt
echo "registered=${_comps[mfa]-} ${_comps[mfa-exec]-}"
_describe() { local -a l; l=("${(@P)argv[-1]}"); echo "profiles=${l[*]}"; }
_mfa_exec_profiles
"#
        }
        Kind::Fish => {
            r#"function c; complete -C "$argv" | string replace -r '\t.*' '' | string join ' '; end
echo "profiles="(c 'mfa -p ')
echo "profiles-a="(c 'mfa-exec --profile a')
echo "no="(c 'mfa --no-')
echo "pr="(c 'mfa-exec --pr')
echo "mfa-pr="(c 'mfa --pr')
echo "sub="(c 'mfa-exec ')
echo "init="(c 'mfa-exec init ')
echo "shell="(c 'mfa-exec --print-env --shell f')
echo "command="(c 'mfa-exec -p alice -- mfa-of')
"#
        }
    };
    let s = sh.run(&env, &[], "", script);
    let got: BTreeMap<&str, &str> = s
        .run
        .stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    assert_eq!(got.get("profiles"), Some(&profiles), "{}", s.transcript());
    if sh.kind == Kind::Zsh {
        assert_eq!(
            got.get("registered"),
            Some(&"_mfa_exec_complete _mfa_exec_complete"),
            "{}",
            s.transcript()
        );
        return;
    }
    let expected = [
        ("profiles-a", "alice auditor"),
        ("no", "--no-prompt --no-cache --no-session"),
        ("pr", "--profile --print-env --prompt --proxy"),
        ("mfa-pr", "--profile --prompt"),
        ("sub", "cache init completions"),
        ("init", "bash zsh fish powershell"),
        ("shell", "fish"),
        ("command", "mfa-off"),
    ];
    for (label, words) in expected {
        let mut got_words: Vec<&str> = got
            .get(label)
            .unwrap_or_else(|| panic!("{label}\n{}", s.transcript()))
            .split_whitespace()
            .collect();
        let mut want: Vec<&str> = words.split_whitespace().collect();
        got_words.sort();
        want.sort();
        assert_eq!(got_words, want, "{label}\n{}", s.transcript());
    }
    if sh.kind == Kind::Bash {
        assert!(s
            .run
            .stdout
            .contains("complete -F _mfa_exec_complete mfa\n"));
        assert!(s
            .run
            .stdout
            .contains("complete -F _mfa_exec_complete mfa-exec\n"));
    }
}

macro_rules! in_every_shell {
    ($($scenario:ident),* $(,)?) => {
        mod bash {
            $(#[test] fn $scenario() { if let Some(sh) = super::Shell::find(super::Kind::Bash) { super::$scenario(&sh) } })*
        }
        mod zsh {
            $(#[test] fn $scenario() { if let Some(sh) = super::Shell::find(super::Kind::Zsh) { super::$scenario(&sh) } })*
        }
        mod fish {
            $(#[test] fn $scenario() { if let Some(sh) = super::Shell::find(super::Kind::Fish) { super::$scenario(&sh) } })*
        }
    };
}

in_every_shell!(
    mfa_loads_exactly_what_exec_mode_gives_a_child,
    mfa_off_puts_the_environment_back_as_it_was,
    mfa_alone_renews_and_another_profile_starts_afresh,
    values_full_of_shell_syntax_round_trip_and_run_nothing,
    a_failed_mfa_leaves_the_shell_unchanged,
    mfa_evaluates_nothing_but_assignments,
    sourcing_twice_installs_nothing_twice,
    the_prompt_helper_needs_no_process,
    the_expiration_is_read_with_calendar_arithmetic,
    mfa_status_tells_profile_kind_and_time_left,
    auto_refresh_renews_from_the_cache_or_warns_once,
    completion_offers_options_and_profiles,
);

// ------------------------------------------------------------------------------------------
// Shell-specific
// ------------------------------------------------------------------------------------------

/// In a real interactive bash, the hook runs before every prompt and the user's own
/// PROMPT_COMMAND after it still sees the status of the command the user ran, also when the
/// hook has just tried a refresh (and warned).
#[test]
fn bash_prompt_hook_keeps_the_exit_status() {
    let Some(sh) = Shell::find(Kind::Bash) else {
        return;
    };
    prompt_hook_keeps_the_exit_status(
        &sh,
        "PROMPT_COMMAND='echo \"user hook saw $?\"'",
        "",
        "_mfa_exec_prompt_hook",
    );
}

/// The same in an interactive zsh, with the user's precmd function after ours.
#[test]
fn zsh_prompt_hook_keeps_the_exit_status() {
    let Some(sh) = Shell::find(Kind::Zsh) else {
        return;
    };
    prompt_hook_keeps_the_exit_status(
        &sh,
        "unsetopt prompt_sp prompt_cr",
        "user_hook() { echo \"user hook saw $?\"; }; precmd_functions+=(user_hook)",
        "_mfa_exec_precmd",
    );
}

fn prompt_hook_keeps_the_exit_status(sh: &Shell, setup: &str, after_source: &str, hook: &str) {
    let env = TestEnv::new();
    let code = env.alice_code();
    let s = sh.run_interactive(
        &env,
        &[("T_CODE", &code)],
        &format!("PS1=''\n{setup}"),
        &format!(
            r#"{after_source}
mfa -p alice -t "$T_CODE"
setenv MFA_EXEC_AUTO_REFRESH 1
setenv MFA_EXEC_MIN_REMAINING 13h
echo mark-false; false
echo mark-exit-3; sh -c 'exit 3'
echo mark-true
(exit 4); {hook}; echo "called directly: $?"
"#
        ),
    );
    assert!(
        s.run.stdout.contains("called directly: 4\n"),
        "{}",
        s.transcript()
    );
    for (mark, status) in [("mark-false", 1), ("mark-exit-3", 3), ("mark-true", 0)] {
        assert!(
            s.run
                .stdout
                .contains(&format!("{mark}\nuser hook saw {status}\n")),
            "{mark}\n{}",
            s.transcript()
        );
    }
    let warnings = s
        .run
        .stderr
        .matches("cannot be renewed without an MFA code")
        .count();
    assert_eq!(warnings, 1, "{}", s.transcript());
}

/// fish restores $status around each event handler itself; the handler returns it as well,
/// for code that calls it directly.
#[test]
fn fish_prompt_handler_keeps_the_exit_status() {
    let Some(sh) = Shell::find(Kind::Fish) else {
        return;
    };
    let env = TestEnv::new();
    let code = env.alice_code();
    let s = sh.run(
        &env,
        &[("T_CODE", &code)],
        "",
        r#"function user_hook --on-event fish_prompt; echo "user hook saw $status"; end
mfa -p alice -t "$T_CODE"; st mfa
setenv MFA_EXEC_AUTO_REFRESH 1
setenv MFA_EXEC_MIN_REMAINING 13h
false; __mfa_exec_on_prompt; st direct
sh -c 'exit 3'; prompt
"#,
    );
    s.ok("mfa");
    assert_eq!(s.status("direct"), 1);
    assert!(
        s.run.stdout.contains("user hook saw 3\n"),
        "{}",
        s.transcript()
    );
}

/// `set -e -g` cannot remove a universal variable (`set -Ux AWS_PROFILE dev`), which commands
/// then still get: mfa says so, and mfa-off leaves the universal variable as it was.
#[test]
fn fish_universal_aws_profile_is_reported_and_kept() {
    let Some(sh) = Shell::find(Kind::Fish) else {
        return;
    };
    let sh = Shell {
        fish_config: true,
        ..sh
    };
    let env = TestEnv::new();
    let code = env.alice_code();
    let s = sh.run(
        &env,
        &[("T_CODE", &code)],
        "set -Ux AWS_PROFILE dev",
        r#"mfa -p alice -t "$T_CODE"; st mfa
mfa-off; st off
echo "universal=$AWS_PROFILE"
set -q -g AWS_PROFILE; st global
"#,
    );
    s.ok("mfa").ok("off");
    assert!(
        s.run.stderr.contains(
            "mfa: AWS_PROFILE is a universal variable, so commands still get it; remove it with set -e -U AWS_PROFILE"
        ),
        "{}",
        s.transcript()
    );
    assert!(
        s.run.stdout.contains("universal=dev\n"),
        "{}",
        s.transcript()
    );
    assert_eq!(s.status("global"), 1, "no global copy was left behind");
}

/// PROMPT_COMMAND as an array (bash 5.1+): the hook goes in front once, the user's entries stay.
#[test]
fn bash_prompt_command_array_gets_the_hook_once() {
    let Some(sh) = Shell::find(Kind::Bash) else {
        return;
    };
    let env = TestEnv::new();
    let s = sh.run(
        &env,
        &[],
        "PROMPT_COMMAND=('history -a' 'echo hi')",
        &format!("{}declare -p PROMPT_COMMAND", sh.source_line()),
    );
    assert!(
        s.run.stdout.contains(
            r#"declare -a PROMPT_COMMAND=([0]="_mfa_exec_prompt_hook" [1]="history -a" [2]="echo hi")"#
        ),
        "{}",
        s.transcript()
    );
}

/// zsh prompts expand `%`: the variable for a prompt doubles it, the printed text does not.
#[test]
fn zsh_prompt_variable_is_escaped_for_prompts() {
    let Some(sh) = Shell::find(Kind::Zsh) else {
        return;
    };
    let env = TestEnv::new();
    let exp = rfc3339(from_now(42 * 60 + 30));
    let s = sh.run(
        &env,
        &[("T_EXP", &exp)],
        "",
        r#"setenv MFA_EXEC_PROFILE 'a%F{red}b'
setenv AWS_CREDENTIAL_EXPIRATION "$T_EXP"
prompt
print -r -- "var=$MFA_PROMPT_INFO"
print -r -- "shown=${(%)MFA_PROMPT_INFO}"
"#,
    );
    assert!(
        s.run.stdout.contains("var=[a%%F{red}b 42m]\n"),
        "{}",
        s.transcript()
    );
    assert!(
        s.run.stdout.contains("shown=[a%F{red}b 42m]\n"),
        "{}",
        s.transcript()
    );
}

/// zsh completion, through the line editor: an interactive zsh in a pseudo-terminal (zpty)
/// gets TAB after each partial line, and the commands (stubs that print their arguments) show
/// what completion made of it.
#[test]
fn zsh_completes_options_profiles_and_subcommands() {
    let Some(sh) = Shell::find(Kind::Zsh) else {
        return;
    };
    let env = TestEnv::new();
    let lines = [
        ("mfa -p s3", "-p s3-reader"),
        ("mfa --profile aud", "--profile auditor"),
        ("mfa --no-pr", "--no-prompt"),
        ("mfa --credential-pr", "--credential-pr"),
        ("mfa-exec --credential-pr", "--credential-process"),
        ("mfa-exec --profile=par", "--profile=partner"),
        ("mfa-exec init fi", "init fish"),
        ("mfa-exec cache clear -p lo", "cache clear -p locked"),
        (
            "mfa-exec --print-env --shell fi",
            "--print-env --shell fish",
        ),
        ("mfa-exec -p alice -- mfa-exe", "-p alice -- mfa-exec"),
    ];
    let typed: String = lines
        .iter()
        .map(|(line, _)| format!("zpty -w z $'{line}\\t'\n"))
        .collect();
    let s = sh.run(
        &env,
        &[],
        "",
        &format!(
            r#"unsetopt ksh_arrays sh_word_split
zmodload zsh/zpty zsh/datetime
zpty z zsh -f -i
zpty -w z 'PS1="> "; autoload -Uz compinit; compinit -u -D'
zpty -w z 'eval "$("$MFA_EXEC_BIN" init zsh)"'
zpty -w z 'mfa() {{ print -r -- "ARGS:$*"; }}; mfa-exec() {{ print -r -- "ARGS:$*"; }}'
{typed}zpty -w z 'print D""ONE'
out= end=$(( EPOCHSECONDS + 20 ))
while (( EPOCHSECONDS < end )) && [[ $out != *DONE* ]]; do
    if zpty -r -t z chunk; then out+=$chunk; else sleep 0.1; fi
done
zpty -d z
print -r -- "${{out//$'\r'/}}"
"#
        ),
    );
    let got: Vec<&str> = s
        .run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ARGS:"))
        .filter(|l| !l.starts_with('$'))
        .collect();
    let want: Vec<&str> = lines.iter().map(|(_, args)| *args).collect();
    assert_eq!(got, want, "{}", s.transcript());
}

// ------------------------------------------------------------------------------------------
// The scripts themselves
// ------------------------------------------------------------------------------------------

fn script_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("shell")
        .join(name)
}

/// `mfa-exec init SHELL` prints the script in shell/, as built.
#[test]
fn init_prints_the_script_of_each_shell() {
    let env = TestEnv::new();
    for (shell, file) in [
        ("bash", "mfa-exec.bash"),
        ("zsh", "mfa-exec.zsh"),
        ("fish", "mfa-exec.fish"),
        ("powershell", "mfa-exec.ps1"),
        ("pwsh", "mfa-exec.ps1"),
    ] {
        let run = env.run(["init", shell]);
        run.success();
        assert_eq!(
            run.stdout,
            std::fs::read_to_string(script_path(file)).unwrap(),
            "{shell}"
        );
    }
}

/// Every option `mfa-exec --help` lists is offered by every script's completion.
#[test]
fn every_option_is_completed_in_every_script() {
    let env = TestEnv::new();
    let help = env.run(["--help"]);
    help.success();
    let options: Vec<&str> = help
        .stdout
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .collect();
    assert!(options.contains(&"--token-command") && options.contains(&"--print-env"));
    for file in [
        "mfa-exec.bash",
        "mfa-exec.zsh",
        "mfa-exec.fish",
        "mfa-exec.ps1",
    ] {
        let text = std::fs::read_to_string(script_path(file)).unwrap();
        for option in &options {
            let fish_form = format!("-l {}", &option[2..]);
            assert!(
                text.contains(&format!("'{option}'"))
                    || text.contains(&format!("{option} "))
                    || text.contains(&format!("{option}="))
                    || text.contains(&format!("{option}["))
                    || text.contains(&format!("{option}}}"))
                    || text.contains(&format!("{option}'"))
                    || text.contains(&format!("{option}\n"))
                    || text.contains(&fish_form),
                "{file} does not complete {option}"
            );
        }
    }
}

/// The bash script passes shellcheck (scripts/test installs it; CI fails without it).
#[test]
fn the_bash_script_passes_shellcheck() {
    let Some(shellcheck) = require_tool("shellcheck", &["shellcheck"]) else {
        return;
    };
    let out = Command::new(shellcheck)
        .args(["--shell=bash", "--severity=style"])
        .arg(script_path("mfa-exec.bash"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
