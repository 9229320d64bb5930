//! A desktop for the dialog tests: a real X server (Xvfb) that dialog programs (zenity,
//! kdialog) open their windows on, and xdotool to find a window, type into it, press keys,
//! and `import` (ImageMagick) to take a screenshot. Processes that ask are started with
//! `setsid`: a new session without a controlling terminal, as an IDE runs them. Like a real
//! desktop session, the desktop has its own session bus and runtime directory: without them Qt
//! and GTK fall back to X11 autolaunch of a bus (`dbus-launch --autolaunch`), a legacy path
//! no desktop takes and one more thing to wait for on a loaded machine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::background::Background;
use super::bus::SessionBus;
use super::env::*;

/// Ended when dropped, in the fields' order: the X server, then its session's bus.
pub struct Desktop {
    _xvfb: Background,
    /// `:N`, for DISPLAY.
    pub display: String,
    xdotool: PathBuf,
    bus: SessionBus,
    /// XDG_RUNTIME_DIR (0700), where the bus's socket lives.
    runtime_dir: tempfile::TempDir,
}

/// How long a dialog may take to show: generous, as a loaded 2-core machine starting a Qt
/// program for the first time can be slow.
const WINDOW_LIMIT: Duration = Duration::from_secs(60);

impl Desktop {
    /// A new X server on a free display, or a skip when Xvfb or xdotool is missing.
    pub fn start() -> Option<Desktop> {
        let xvfb = require_tool("Xvfb (Debian xvfb)", &["Xvfb"])?;
        let xdotool = require_tool("xdotool", &["xdotool"])?;
        let dbus_daemon = require_tool("dbus-daemon (Debian: dbus)", &["dbus-daemon"])?;
        // -displayfd: the server picks a free display and writes its number when it is ready.
        // -noreset: by default an X server resets when its last client disconnects, and a
        // client connecting meanwhile is refused ("cannot open display") — as mfa-exec's
        // second dialog can, started right after the first one closed.
        let (xvfb, number) = Background::ready_line(
            Command::new(xvfb)
                .args([
                    "-noreset",
                    "-displayfd",
                    "1",
                    "-screen",
                    "0",
                    "800x600x24",
                    "-nolisten",
                    "tcp",
                ])
                .stdin(Stdio::null())
                .stderr(Stdio::null()),
            "Xvfb",
        );

        let runtime_dir = tempfile::tempdir().expect("runtime dir");
        let bus = SessionBus::start(Command::new(dbus_daemon), runtime_dir.path());
        Some(Desktop {
            _xvfb: xvfb,
            display: format!(":{number}"),
            xdotool,
            bus,
            runtime_dir,
        })
    }

    /// A new X server and the dialog program `dialog` (zenity, kdialog), or a skip when
    /// either is missing.
    pub fn with_dialog(dialog: &str) -> Option<Desktop> {
        let desktop = Desktop::start()?;
        require_tool(dialog, &[dialog])?;
        Some(desktop)
    }

    fn xdotool(&self, args: &[&str]) -> String {
        let out = Command::new(&self.xdotool)
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .expect("run xdotool");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The visible windows whose title contains `title`.
    pub fn windows(&self, title: &str) -> Vec<String> {
        self.xdotool(&["search", "--onlyvisible", "--name", title])
            .split_whitespace()
            .map(String::from)
            .collect()
    }

    /// Waits for a visible window whose title contains `title`, shown for `asker` (the
    /// process that asks), and returns it.
    #[track_caller]
    pub fn wait_for_window(&self, asker: &mut Child, title: &str) -> String {
        self.wait_for_dialog(asker, title, |_| true)
    }

    /// Waits for a visible window whose title contains `title` and whose program's argv
    /// passes `test` (the X server reuses a closed window's id for the next client's window,
    /// so a new dialog is told by its process). Fails at once, with what `asker` said, if
    /// `asker` ends before a window shows; or after [`WINDOW_LIMIT`].
    #[track_caller]
    pub fn wait_for_dialog(
        &self,
        asker: &mut Child,
        title: &str,
        test: impl Fn(&[String]) -> bool,
    ) -> String {
        let started = Instant::now();
        loop {
            if let Some(w) = self
                .windows(title)
                .into_iter()
                .find(|w| test(&self.argv_of(w)))
            {
                return w;
            }
            if let Some(status) = asker.try_wait().unwrap() {
                panic!(
                    "no window titled '{title}' appeared; the asker ended ({status}) saying: {}",
                    Self::stderr_of(asker)
                );
            }
            if started.elapsed() > WINDOW_LIMIT {
                let _ = asker.kill();
                let _ = asker.wait();
                panic!(
                    "no window titled '{title}' appeared in {WINDOW_LIMIT:?}; visible: {:?}; the asker said: {}",
                    self.visible_titles(),
                    Self::stderr_of(asker)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stderr_of(child: &mut Child) -> String {
        let mut text = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut err, &mut text);
        }
        text
    }

    /// The titles of all visible windows, for a failure's message.
    fn visible_titles(&self) -> Vec<String> {
        self.xdotool(&["search", "--onlyvisible", "--name", ""])
            .split_whitespace()
            .map(|w| self.xdotool(&["getwindowname", w]).trim().to_string())
            .collect()
    }

    /// The command line of the process that owns the window (GTK and Qt set _NET_WM_PID).
    pub fn argv_of(&self, window: &str) -> Vec<String> {
        let pid = self.xdotool(&["getwindowpid", window]);
        let raw = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).unwrap_or_default();
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    /// Types `text` into the window and presses Return.
    pub fn type_into(&self, window: &str, text: &str) {
        self.xdotool(&["windowfocus", "--sync", window]);
        self.xdotool(&["type", "--delay", "30", text]);
        self.xdotool(&["key", "Return"]);
    }

    /// Presses a key (`Escape`) in the window.
    pub fn press(&self, window: &str, key: &str) {
        self.xdotool(&["windowfocus", "--sync", window]);
        self.xdotool(&["key", key]);
    }

    /// A screenshot of one window, as PNG.
    pub fn screenshot(&self, window: &str, to: &Path) {
        let Some(import) = require_tool("import (Debian imagemagick)", &["import"]) else {
            return;
        };
        let status = Command::new(import)
            .args(["-window", window])
            .arg(to)
            .env("DISPLAY", &self.display)
            .status()
            .expect("run import");
        assert!(status.success(), "import failed");
    }

    /// `PROGRAM ARGS` without a controlling terminal (setsid), as an IDE runs it, on this
    /// display, with the test environment; stdout and stderr captured.
    pub fn spawn_detached(&self, env: &TestEnv, program: &Path, args: &[&str]) -> Child {
        let setsid = require_tool("setsid (util-linux)", &["setsid"]).expect("setsid");
        env.command(setsid)
            .arg(program)
            .args(args)
            .env("DISPLAY", &self.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus.address)
            .env("XDG_RUNTIME_DIR", self.runtime_dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    }

    /// `mfa-exec ARGS` as [`Desktop::spawn_detached`] runs a program: as an IDE runs it.
    pub fn spawn_mfa_exec(&self, env: &TestEnv, args: &[&str]) -> Child {
        self.spawn_detached(env, Path::new(TestEnv::bin()), args)
    }
}

/// Waits for a child, killing it after `limit`.
#[track_caller]
pub fn finish_within(mut child: Child, limit: Duration) -> Run {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Run::from(child.wait_with_output().unwrap())
}
