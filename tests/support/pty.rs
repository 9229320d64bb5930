//! Running a program on a real pseudo-terminal that is its controlling terminal, to type at
//! prompts that go to /dev/tty.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::env::{require_tool, TestEnv};

/// mfa-exec running with a pseudo-terminal as its controlling terminal (stdin and stderr on
/// the terminal, stdout captured separately).
#[must_use = "finish the terminal's run and check how it ended"]
pub struct OnTerminal {
    child: Child,
    master: File,
    screen: mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl OnTerminal {
    /// mfa-exec ARGS on a new terminal.
    pub fn start(env: &TestEnv, args: &[&str]) -> Option<OnTerminal> {
        OnTerminal::start_program(env, TestEnv::bin().as_ref(), args)
    }

    /// `mfa-exec ARGS` as one line of a bash script on a new terminal, the way a user's script
    /// (`for p in a b; do mfa-exec -p "$p" -- deploy; done`) runs it; see [`ScriptSaw`].
    ///
    /// `$?` is 130 both for a command killed by SIGINT and for one that exited with 130; what
    /// tells them apart is the wait status, which the line's runner reads: it prints
    /// `script-went-on` (a shell would go on to the next line) only when the command exited,
    /// then exits with the line's status as a shell reports it. The script runs under a `sh` that
    /// outlives the Ctrl-C (it traps SIGINT; a trap, unlike an ignored signal, is not
    /// inherited) and reports the script's status and the terminal's settings afterwards.
    /// Non-interactive shells leave the terminal as they find it, so `stty -a` shows what
    /// mfa-exec left.
    pub fn start_in_script(env: &TestEnv, args: &[&str]) -> Option<OnTerminal> {
        require_tool("python3", &["python3"])?;
        // The line's runner reports how the command ended from its wait status itself: a shell
        // also stops a script for a command killed by SIGINT, but only when the shell saw the
        // SIGINT first, which a starved CPU can reorder. The runner ignores SIGINT (the
        // command gets it back) and exits as a shell reports the line: 128 + n for signal n.
        const SCRIPT: &str = r#"trap : INT
python3 -c 'import signal, subprocess, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
code = subprocess.call(sys.argv[1:], preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
if code >= 0:
    print("script-went-on", flush=True)
sys.exit(code if code >= 0 else 128 - code)' "$@"
echo status=$?
stty -a"#;
        let mut all = vec!["-c", SCRIPT, "sh", TestEnv::bin()];
        all.extend_from_slice(args);
        OnTerminal::start_program(env, "sh".as_ref(), &all)
    }

    /// Any program on a new terminal, with the test environment.
    pub fn start_program(env: &TestEnv, program: &OsStr, args: &[&str]) -> Option<OnTerminal> {
        OnTerminal::spawn(env, program, args, false)
    }

    /// An interactive shell on a new terminal, its stdout on the terminal too (line editors
    /// such as fish's draw on stdout); `finish` then returns an empty stdout.
    pub fn start_shell(env: &TestEnv, program: &OsStr, args: &[&str]) -> Option<OnTerminal> {
        OnTerminal::spawn(env, program, args, true)
    }

    fn spawn(
        env: &TestEnv,
        program: &OsStr,
        args: &[&str],
        stdout_on_terminal: bool,
    ) -> Option<OnTerminal> {
        let setsid = require_tool("setsid (util-linux)", &["setsid"])?;
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let slave: OwnedFd = pty.slave;
        // `setsid -c`: a new session whose controlling terminal is stdin's, the pty.
        let child = env
            .command(setsid)
            .arg("-c")
            .arg(program)
            .args(args)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(if stdout_on_terminal {
                Stdio::from(slave.try_clone().unwrap())
            } else {
                Stdio::piped()
            })
            .stderr(Stdio::from(slave))
            .spawn()
            .expect("spawn on the pty");
        let master = File::from(pty.master);
        let mut reader = master.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            // A character split between two reads (a QR code's half blocks are 3 bytes) is
            // sent whole, with the next read.
            let mut pending: Vec<u8> = Vec::new();
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                pending.extend_from_slice(&buf[..n]);
                let complete = match std::str::from_utf8(&pending) {
                    Err(e) if e.error_len().is_none() => e.valid_up_to(),
                    _ => pending.len(),
                };
                let chunk: Vec<u8> = pending.drain(..complete).collect();
                if tx.send(chunk).is_err() {
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
    pub fn expect(&mut self, text: &str) {
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

    /// Keys as typed, without a newline (`b"\x03"` is Ctrl-C).
    pub fn press(&mut self, keys: &[u8]) {
        self.master.write_all(keys).unwrap();
    }

    /// The process id of the program (`setsid -c` execs it in place).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the terminal showed that `expect` has not consumed yet, after waiting until
    /// it shows `text`.
    #[track_caller]
    pub fn screen_until(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(at) = self.seen.find(text) {
                let screen: String = self.seen.drain(..at + text.len()).collect();
                return screen;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.screen.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!("terminal never showed {text:?}; it shows {:?}", self.seen),
            }
        }
    }

    pub fn type_line(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    /// How the script of [`OnTerminal::start_in_script`] saw mfa-exec end.
    pub fn finish_script(self) -> ScriptSaw {
        let (_, stdout, screen) = self.finish();
        ScriptSaw {
            status: stdout
                .lines()
                .find_map(|l| l.strip_prefix("status=")?.parse().ok()),
            went_on: stdout.lines().any(|l| l == "script-went-on"),
            stty: stdout
                .lines()
                .skip_while(|l| !l.starts_with("status="))
                .skip(1)
                .collect::<Vec<_>>()
                .join("\n"),
            stdout,
            screen,
        }
    }

    /// Exit status and captured stdout; the terminal's remaining text.
    pub fn finish(self) -> (Option<i32>, String, String) {
        let (status, stdout, screen) = self.finish_with_status();
        (status.code(), stdout, screen)
    }

    /// Like [`OnTerminal::finish`] with the whole wait status, which also says which signal
    /// ended the program (`setsid -c` execs it in place, so the status is the program's own).
    pub fn finish_with_status(mut self) -> (ExitStatus, String, String) {
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_string(&mut stdout).unwrap();
        }
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        while let Ok(bytes) = self.screen.try_recv() {
            self.seen.push_str(&String::from_utf8_lossy(&bytes));
        }
        (status, stdout, std::mem::take(&mut self.seen))
    }
}

/// A test that fails before `finish` leaves no program behind on its terminal.
impl Drop for OnTerminal {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a bash script saw of the mfa-exec line it ran (see [`OnTerminal::start_in_script`]).
#[derive(Debug)]
pub struct ScriptSaw {
    /// `$?` of the line, as the shell reports it: 128 + n for a command killed by signal n.
    pub status: Option<i32>,
    /// The script went on to its next line: mfa-exec exited rather than dying of a signal.
    pub went_on: bool,
    /// `stty -a` afterwards: the terminal's settings as mfa-exec left them.
    pub stty: String,
    /// Everything on stdout (mfa-exec's, the script's and stty's).
    pub stdout: String,
    /// What the terminal showed after the last `expect`.
    pub screen: String,
}

impl ScriptSaw {
    /// Ended by SIGINT, as a shell needs to see a Ctrl-C: status 130, and the script stopped
    /// (a command that caught the signal and exited 130 would let it go on).
    #[track_caller]
    pub fn ended_by_sigint(&self) -> &Self {
        assert_eq!(
            self.status,
            Some(130),
            "the shell's status for the line: {self:#?}"
        );
        assert!(
            !self.went_on,
            "mfa-exec exited instead of ending by SIGINT, so the script went on: {self:#?}"
        );
        self
    }

    /// The terminal echoes typing again and is back in line mode with signal keys on
    /// (`stty -a` shows `-echo` for a setting that is off).
    #[track_caller]
    pub fn terminal_restored(&self) -> &Self {
        for setting in ["echo", "icanon", "isig"] {
            assert!(
                self.stty.split_whitespace().any(|w| w == setting),
                "{setting} is off after mfa-exec ended:\n{}\nterminal: {:?}",
                self.stty,
                self.screen
            );
        }
        self
    }
}
