//! A helper process a test keeps running beside mfa-exec (an X server, a session bus, a TLS
//! terminator, moto): killed and reaped when the test ends, a failed one included, so no test
//! leaves a process behind.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct Background {
    child: Child,
}

impl Background {
    /// Starts `command` as it was made (its stdout is the caller's to set).
    pub fn spawn(command: &mut Command, what: &str) -> Background {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        Background { child }
    }

    /// Starts `command` and waits for the first line it prints, which helpers print once they
    /// are ready: a display number, a bus address, a port.
    pub fn ready_line(command: &mut Command, what: &str) -> (Background, String) {
        let mut helper = Background::spawn(command.stdout(Stdio::piped()), what);
        let mut line = String::new();
        BufReader::new(helper.child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("read what {what} printed: {e}"));
        let line = line.trim().to_string();
        assert!(!line.is_empty(), "{what} exited before it was ready");
        (helper, line)
    }

    /// Whether it has ended (and so no longer serves).
    pub fn has_ended(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
