//! Running a program on a real pseudo-terminal that is its controlling terminal, to type at
//! prompts that go to /dev/tty.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Child, Stdio};
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

    /// Any program on a new terminal, with the test environment.
    pub fn start_program(env: &TestEnv, program: &OsStr, args: &[&str]) -> Option<OnTerminal> {
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
            .stderr(Stdio::from(slave))
            .stdout(Stdio::piped())
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

    /// Exit status and captured stdout; the terminal's remaining text.
    pub fn finish(mut self) -> (Option<i32>, String, String) {
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
