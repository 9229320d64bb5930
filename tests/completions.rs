//! Tab completion in real bash, zsh and fish on a pty, as a user presses Tab: `mfa-exec de<Tab>`
//! completes to `device`, `mfa-exec -p <Tab>` offers the profiles of the user's config as it is
//! at that moment, `mfa-exec device <Tab>` offers `add list remove`. Here the completions come
//! from `mfa-exec completions SHELL`; the Debian package's test (the `#[ignore]`d one at the
//! end, run by scripts/test-package in CI) runs the same scenarios with the completions where
//! the package puts them, found by each shell on its own, and checks the rest of the package:
//! its contents, lintian, the manual pages, the shell scripts, and a clean removal.

mod support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::env::*;
use support::pty::OnTerminal;

#[derive(Clone, Copy, Debug)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Where the shell finds mfa-exec and its completions.
enum Install {
    /// `mfa-exec completions SHELL` written into this directory, and `bin/mfa-exec` in it the
    /// binary under test: what a `cargo install` user sets up by hand.
    Generated(PathBuf),
    /// The package installed on this machine: /usr/bin/mfa-exec, and the completions where
    /// bash-completion, zsh and fish look by default.
    System,
    /// The package unpacked with `dpkg -x` into this tree, where installing needs root.
    Tree(PathBuf),
}

const CONFIG: &str = "[default]\nregion = eu-west-1\n\n[profile team-blue]\nregion = eu-west-1\n";

/// The config after the shell has started: completion must read the file as it is on Tab.
const CONFIG_LATER: &str =
    "[default]\nregion = eu-west-1\n\n[profile team-blue]\nregion = eu-west-1\n\n\
[profile team-green]\nsource_profile = default\nrole_arn = arn:aws:iam::123456789012:role/green\n";

impl Install {
    fn bin_dir(&self) -> PathBuf {
        match self {
            Install::Generated(dir) => dir.join("bin"),
            Install::System => PathBuf::from("/usr/bin"),
            Install::Tree(tree) => tree.join("usr/bin"),
        }
    }

    /// What a user's rc file would say (nothing, for the package: the shells find it).
    fn setup(&self, shell: Shell) -> String {
        match (self, shell) {
            (Install::Generated(d), Shell::Bash) => format!("source {}/mfa-exec.bash", d.display()),
            (Install::Generated(d), Shell::Zsh) => format!(
                "fpath=({} $fpath); autoload -Uz compinit; compinit -u",
                d.display()
            ),
            (Install::Generated(d), Shell::Fish) => format!("source {}/mfa-exec.fish", d.display()),
            // bash-completion's loader finds the package's file by the command's name.
            (Install::System, Shell::Bash) => {
                "source /usr/share/bash-completion/bash_completion".to_string()
            }
            (Install::System, Shell::Zsh) => "autoload -Uz compinit; compinit -u".to_string(),
            (Install::System, Shell::Fish) => "true".to_string(),
            (Install::Tree(t), Shell::Bash) => format!(
                "source {}/usr/share/bash-completion/completions/mfa-exec",
                t.display()
            ),
            (Install::Tree(t), Shell::Zsh) => format!(
                "fpath=({}/usr/share/zsh/vendor-completions $fpath); autoload -Uz compinit; compinit -u",
                t.display()
            ),
            (Install::Tree(t), Shell::Fish) => format!(
                "set -p fish_complete_path {}/usr/share/fish/vendor_completions.d",
                t.display()
            ),
        }
    }
}

/// `mfa-exec completions SHELL` for each shell, and the binary, in a directory of the test's.
fn generated(env: &TestEnv) -> Install {
    let dir = env.dir.path().join("completions");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::os::unix::fs::symlink(TestEnv::bin(), dir.join("bin/mfa-exec")).unwrap();
    for (shell, file) in [
        ("bash", "mfa-exec.bash"),
        ("zsh", "_mfa-exec"),
        ("fish", "mfa-exec.fish"),
    ] {
        let run = env.run(["completions", shell]);
        run.success();
        std::fs::write(dir.join(file), &run.stdout).unwrap();
    }
    Install::Generated(dir)
}

/// An interactive shell on a terminal with the completions loaded, ready for typing.
fn start(env: &mut TestEnv, shell: Shell, install: &Install) -> Option<OnTerminal> {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    env.set("PATH", &format!("{}:{path}", install.bin_dir().display()));
    env.set("TERM", "xterm");
    env.set("NO_COLOR", "1");
    let (name, args): (&str, &[&str]) = match (shell, install) {
        (Shell::Bash, _) => ("bash", &["--norc", "--noprofile", "-i"]),
        (Shell::Zsh, _) => ("zsh", &["-f", "-i"]),
        // Installed: fish's own configuration sets the path where it finds vendor completions.
        (Shell::Fish, Install::System) => ("fish", &["-i"]),
        (Shell::Fish, _) => ("fish", &["--no-config", "-i"]),
    };
    let program = require_tool(name, &[name])?;
    let mut term = OnTerminal::start_shell(env, program.as_os_str(), args)?;
    term.type_line(&install.setup(shell));
    // What the shell prints, not the echo of what was typed.
    term.type_line("echo set''up-done");
    term.expect("setup-done");
    Some(term)
}

fn tab(shell: Shell) -> &'static [u8] {
    match shell {
        // bash lists the candidates on the second Tab.
        Shell::Bash => b"\t\t",
        Shell::Zsh | Shell::Fish => b"\t",
    }
}

/// The shell is done with: dropping the terminal ends it.
fn end(term: OnTerminal) {
    drop(term);
}

/// Types `line` and presses Tab as a user does to see the candidates: what the terminal
/// shows up to `last`, the candidate it waits for.
#[track_caller]
fn candidates(term: &mut OnTerminal, shell: Shell, line: &[u8], last: &str) -> String {
    term.press(line);
    term.press(tab(shell));
    term.screen_until(last)
}

/// One story of completion in `shell`, from a fresh test environment.
type Scenario = fn(Shell, &Install, &mut TestEnv);

const SCENARIOS: [Scenario; 3] = [
    subcommand_is_completed,
    profiles_are_offered,
    device_subcommands_are_offered,
];

/// Every scenario in `shell`, with the completions `mfa-exec completions SHELL` writes.
fn completes_with_generated_files(shell: Shell) {
    for scenario in SCENARIOS {
        let mut env = TestEnv::new();
        let install = generated(&env);
        scenario(shell, &install, &mut env);
    }
}

/// `mfa-exec de<Tab>` becomes `mfa-exec device `: run with `--help`, it is that command's help.
fn subcommand_is_completed(shell: Shell, install: &Install, env: &mut TestEnv) {
    let Some(mut term) = start(env, shell, install) else {
        return;
    };
    term.press(b"mfa-exec de\t");
    term.type_line(" --help");
    term.expect("Usage: mfa-exec device");
    end(term);
}

/// `mfa-exec -p <Tab>` lists the profiles, including one added after the shell started.
fn profiles_are_offered(shell: Shell, install: &Install, env: &mut TestEnv) {
    env.write_config(CONFIG);
    let Some(mut term) = start(env, shell, install) else {
        return;
    };
    env.write_config(CONFIG_LATER);
    let listed = candidates(&mut term, shell, b"mfa-exec -p ", "team-green");
    assert!(
        listed.contains("default") && listed.contains("team-blue"),
        "{shell:?}: `mfa-exec -p <Tab>` showed {listed:?}"
    );
    end(term);
}

/// `mfa-exec device <Tab>` lists `add`, `list` and `remove`.
fn device_subcommands_are_offered(shell: Shell, install: &Install, env: &mut TestEnv) {
    let Some(mut term) = start(env, shell, install) else {
        return;
    };
    let listed = candidates(&mut term, shell, b"mfa-exec device ", "remove");
    assert!(
        listed.contains("add") && listed.contains("list"),
        "{shell:?}: `mfa-exec device <Tab>` showed {listed:?}"
    );
    end(term);
}

#[test]
fn bash_completes_subcommands_profiles_and_device_commands() {
    completes_with_generated_files(Shell::Bash);
}

#[test]
fn zsh_completes_subcommands_profiles_and_device_commands() {
    completes_with_generated_files(Shell::Zsh);
}

#[test]
fn fish_completes_subcommands_profiles_and_device_commands() {
    completes_with_generated_files(Shell::Fish);
}

/// `mfa-exec profiles` prints the names of both files' profiles and nothing else: the
/// completions take every line of it as a name.
#[test]
fn profiles_prints_only_names() {
    let env = TestEnv::new();
    env.write_config(CONFIG_LATER);
    env.write_credentials("[carol]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = x\n");
    let run = env.run(["profiles"]);
    run.success();
    assert_eq!(run.stdout, "carol\ndefault\nteam-blue\nteam-green\n");
}

// ------------------------------------------------------------------------------------------
// The Debian package (scripts/test-package builds it and runs this test; CI runs that script)
// ------------------------------------------------------------------------------------------

/// The files the package must hold, besides one manual page per subcommand.
const PACKAGED: &[&str] = &[
    "/usr/bin/mfa-exec",
    "/usr/share/man/man1/mfa-exec.1.gz",
    "/usr/share/man/man1/mfa-exec-device.1.gz",
    "/usr/share/man/man1/mfa-exec-device-add.1.gz",
    "/usr/share/man/man1/mfa-exec-cache-clear.1.gz",
    "/usr/share/man/man1/mfa-exec-keys.1.gz",
    "/usr/share/bash-completion/completions/mfa-exec",
    "/usr/share/zsh/vendor-completions/_mfa-exec",
    "/usr/share/fish/vendor_completions.d/mfa-exec.fish",
    "/usr/share/mfa-exec/shell/mfa-exec.bash",
    "/usr/share/mfa-exec/shell/mfa-exec.zsh",
    "/usr/share/mfa-exec/shell/mfa-exec.fish",
    "/usr/share/mfa-exec/shell/mfa-exec.ps1",
    "/usr/share/doc/mfa-exec/copyright",
    "/usr/share/doc/mfa-exec/changelog.Debian.gz",
];

#[track_caller]
fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// dpkg ARGS, waiting (up to 10 minutes) while another apt or dpkg run holds dpkg's lock.
#[track_caller]
fn dpkg(args: &[&OsStr]) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        let out = Command::new("dpkg").args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && err.contains("lock") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_secs(2));
            continue;
        }
        assert!(out.status.success(), "dpkg {args:?} failed: {err}");
        return String::from_utf8_lossy(&out.stdout).into_owned();
    }
}

/// Text without the overstrikes of a terminal's bold and underline (`c\x08c`, `_\x08c`).
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if chars.peek() == Some(&'\x08') {
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
#[ignore = "needs the .deb: scripts/test-package builds it and runs this (CI does)"]
fn the_debian_package_installs_documents_completes_and_removes_cleanly() {
    let deb = std::env::var_os("MFA_EXEC_TEST_DEB")
        .map(PathBuf::from)
        .expect("MFA_EXEC_TEST_DEB names the .deb (scripts/test-package sets it)");
    let tools = ["dpkg", "dpkg-deb", "lintian", "man", "bash", "zsh", "fish"];
    for tool in tools {
        assert!(
            which(tool).is_some(),
            "{tool} is missing (scripts/test-package installs it)"
        );
    }

    // What the package holds.
    let contents = output(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    let listed: Vec<&str> = contents
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches('.'))
        .collect();
    for path in PACKAGED {
        assert!(
            listed.contains(path),
            "the package lacks {path}: {contents}"
        );
    }
    for doc in ["README.md", "changelog"] {
        assert!(
            listed
                .iter()
                .any(|p| p.starts_with(&format!("/usr/share/doc/mfa-exec/{doc}"))),
            "the package lacks {doc}: {contents}"
        );
    }

    // lintian: no error (warnings are shown, not failed on).
    let lintian = Command::new("lintian").arg(&deb).output().unwrap();
    let report = String::from_utf8_lossy(&lintian.stdout);
    eprintln!(
        "lintian:\n{report}{}",
        String::from_utf8_lossy(&lintian.stderr)
    );
    let errors: Vec<&str> = report.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian reports errors: {errors:#?}");

    // Installed (twice: an upgrade over itself), or unpacked where that needs root.
    let scratch = tempfile::tempdir().unwrap();
    let install = if is_root() {
        dpkg(&["-i".as_ref(), deb.as_os_str()]);
        dpkg(&["-i".as_ref(), deb.as_os_str()]);
        Install::System
    } else {
        eprintln!("not root: the package is unpacked with dpkg -x instead of installed");
        let tree = scratch.path().join("root");
        output(Command::new("dpkg").arg("-x").arg(&deb).arg(&tree));
        Install::Tree(tree)
    };
    let root = match &install {
        Install::Tree(tree) => tree.clone(),
        _ => PathBuf::from("/"),
    };
    let at = |p: &str| root.join(p.trim_start_matches('/'));

    let version = output(Command::new(at("/usr/bin/mfa-exec")).arg("--version"));
    assert!(
        version.starts_with(&format!("mfa-exec {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );

    // Every manual page renders, with the sections a user looks for.
    let man_dir = at("/usr/share/man/man1");
    let pages: Vec<PathBuf> = std::fs::read_dir(&man_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("mfa-exec"))
        })
        .collect();
    assert!(pages.len() >= 10, "manual pages: {pages:?}");
    for page in &pages {
        let text = output(
            Command::new("man")
                .env("MANWIDTH", "80")
                .env("MAN_KEEP_FORMATTING", "0")
                .args(["-l", "-P", "cat"])
                .arg(page),
        );
        // man's pager-less output overstrikes bold text (`N\x08N`): the letters alone.
        let text = plain(&text);
        for section in ["NAME", "SYNOPSIS", "ENVIRONMENT", "FILES", "EXIT STATUS"] {
            assert!(
                text.lines().any(|l| l == section),
                "{} has no {section} section:\n{text}",
                page.display()
            );
        }
    }
    if matches!(install, Install::System) {
        let found = output(Command::new("man").args(["-w", "mfa-exec"]));
        assert_eq!(found.trim(), "/usr/share/man/man1/mfa-exec.1.gz");
    }

    // The shell scripts are those `init` prints, and load in their shells.
    for (shell, file) in [
        ("bash", "mfa-exec.bash"),
        ("zsh", "mfa-exec.zsh"),
        ("fish", "mfa-exec.fish"),
        ("powershell", "mfa-exec.ps1"),
    ] {
        let path = at(&format!("/usr/share/mfa-exec/shell/{file}"));
        let installed = std::fs::read_to_string(&path).unwrap();
        let printed = output(Command::new(at("/usr/bin/mfa-exec")).args(["init", shell]));
        assert_eq!(
            installed,
            printed,
            "{} differs from `init {shell}`",
            path.display()
        );
    }
    for (shell, check) in [
        ("bash", "source \"$0\" && declare -F mfa mfa-off mfa-status"),
        ("zsh", "source \"$0\" && whence -w mfa mfa-off mfa-status"),
    ] {
        let path = at(&format!("/usr/share/mfa-exec/shell/mfa-exec.{shell}"));
        output(Command::new(shell).arg("-c").arg(check).arg(&path));
    }
    let fish_script = at("/usr/share/mfa-exec/shell/mfa-exec.fish");
    output(
        Command::new("fish")
            .arg("--no-config")
            .arg("-c")
            .arg("source $argv[1]; and functions -q mfa mfa-off mfa-status")
            .arg(&fish_script),
    );

    // Completion from where the package put it.
    for shell in SHELLS {
        for scenario in SCENARIOS {
            let mut env = TestEnv::new();
            scenario(shell, &install, &mut env);
        }
    }

    // Removed: no file of the package is left.
    if matches!(install, Install::System) {
        let files = output(Command::new("dpkg").args(["-L", "mfa-exec"]));
        dpkg(&["-r".as_ref(), "mfa-exec".as_ref()]);
        let left: Vec<&str> = files
            .lines()
            .filter(|p| Path::new(p).is_file() || Path::new(p).is_symlink())
            .collect();
        assert!(left.is_empty(), "dpkg -r left these behind: {left:?}");
        let status = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", "mfa-exec"])
            .output()
            .unwrap();
        let status = String::from_utf8_lossy(&status.stdout);
        assert!(
            status.is_empty() || status.contains("not-installed"),
            "after dpkg -r the package is still {status:?}"
        );
    }
}
