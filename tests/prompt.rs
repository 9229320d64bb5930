//! The MFA prompt, through a real pseudo-terminal: it appears on the terminal, not on stdout,
//! does not echo the code, asks again after a malformed or refused code, and works while
//! stdout is captured (as under `eval "$(mfa-exec --print-env)"`).

mod support;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::env::*;

/// mfa-exec running with a pseudo-terminal as its controlling terminal (stdin and stderr on
/// the terminal, stdout captured separately).
struct OnTerminal {
    child: Child,
    master: File,
    screen: mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl OnTerminal {
    fn start(env: &TestEnv, args: &[&str]) -> Option<OnTerminal> {
        let setsid = require_tool("setsid (util-linux)", &["setsid"])?;
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let slave: OwnedFd = pty.slave;
        // `setsid -c`: a new session whose controlling terminal is stdin's, the pty.
        let child = env
            .command(setsid)
            .arg("-c")
            .arg(TestEnv::bin())
            .args(args)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn on the pty");
        let master = File::from(pty.master);
        let mut reader = master.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Some(OnTerminal {
            child,
            master,
            screen: rx,
            seen: String::new(),
        })
    }

    /// Waits until the terminal shows `text` (after what was already matched).
    #[track_caller]
    fn expect(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(at) = self.seen.find(text) {
                self.seen.drain(..at + text.len());
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.screen.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!("terminal never showed {text:?}; it shows {:?}", self.seen),
            }
        }
    }

    fn type_line(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    /// Exit status and captured stdout; the terminal's remaining text.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let status = self.child.wait().unwrap().code();
        std::thread::sleep(Duration::from_millis(100));
        while let Ok(bytes) = self.screen.try_recv() {
            self.seen.push_str(&String::from_utf8_lossy(&bytes));
        }
        (status, stdout, self.seen)
    }
}

#[test]
fn the_prompt_is_on_the_terminal_and_stdout_carries_only_the_childs_output() {
    let env = TestEnv::new();
    let Some(mut term) = OnTerminal::start(&env, &["-p", "alice", "--", "echo", "child-output"])
    else {
        return;
    };
    term.expect(&format!("Enter MFA code for {ALICE_SERIAL}: "));
    let code = env.alice_code();
    term.type_line(&code);
    let (status, stdout, screen) = term.finish();
    assert_eq!(status, Some(0), "terminal: {screen}");
    assert_eq!(stdout, "child-output\n");
    assert!(!screen.contains(&code), "the code was echoed: {screen:?}");
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}

#[test]
fn print_env_prompts_on_the_terminal_while_its_output_is_captured() {
    let env = TestEnv::new();
    let Some(mut term) = OnTerminal::start(&env, &["-p", "s3-reader", "--print-env"]) else {
        return;
    };
    term.expect("Enter MFA code for ");
    term.type_line(&env.alice_code());
    let (status, stdout, screen) = term.finish();
    assert_eq!(status, Some(0), "terminal: {screen}");
    assert!(
        stdout.starts_with("export AWS_ACCESS_KEY_ID='ASIA"),
        "{stdout}"
    );
    assert!(!stdout.contains("Enter MFA code"));
}

#[test]
fn a_malformed_code_is_asked_again_without_a_network_call() {
    let env = TestEnv::new();
    let Some(mut term) = OnTerminal::start(&env, &["-p", "alice", "--", "true"]) else {
        return;
    };
    term.expect("Enter MFA code for ");
    term.type_line("12ab");
    term.expect("not a 6-digit code");
    assert_eq!(env.sts.total_calls(), 0);
    term.expect("Enter MFA code for ");
    term.type_line(&env.alice_code());
    let (status, _, screen) = term.finish();
    assert_eq!(status, Some(0), "terminal: {screen}");
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}

#[test]
fn a_code_sts_refuses_is_followed_by_a_prompt_for_the_next_one() {
    let env = TestEnv::new();
    let Some(mut term) = OnTerminal::start(&env, &["-p", "alice", "--", "true"]) else {
        return;
    };
    let good = env.alice_code();
    let wrong = format!(
        "{:06}",
        (good.parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    term.expect("Enter MFA code for ");
    term.type_line(&wrong);
    term.expect("enter the next code");
    term.expect("Enter MFA code for ");
    term.type_line(&good);
    let (status, _, screen) = term.finish();
    assert_eq!(status, Some(0), "terminal: {screen}");
    assert_eq!(env.sts.calls("GetSessionToken"), 2);
}

#[test]
fn three_malformed_codes_end_the_run_with_advice() {
    let env = TestEnv::new();
    let Some(mut term) = OnTerminal::start(&env, &["-p", "alice", "--", "true"]) else {
        return;
    };
    for _ in 0..3 {
        term.expect("Enter MFA code for ");
        term.type_line("nope");
    }
    let (status, stdout, screen) = term.finish();
    assert_eq!(status, Some(125));
    assert!(stdout.is_empty());
    assert!(
        screen.contains("mfa-exec: no valid MFA code after 3 tries"),
        "{screen}"
    );
    assert_eq!(env.sts.total_calls(), 0);
}
