//! A private D-Bus session bus for one test, as a desktop session has one: the dialog tests'
//! desktop runs on it (Qt and GTK look for it), and the keyring tests' Secret Service is a
//! service on it. Its socket lives in a runtime directory of the test's own, which is 0700 as
//! `XDG_RUNTIME_DIR` must be.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct SessionBus {
    daemon: Child,
    /// DBUS_SESSION_BUS_ADDRESS of the bus (`unix:path=…,guid=…`).
    pub address: String,
}

impl SessionBus {
    /// Starts `dbus_daemon` (the command the caller made for it: the program and the
    /// environment it runs in) as a session bus listening on `runtime_dir/bus`, and waits for
    /// its address: the daemon prints it once it listens.
    pub fn start(mut dbus_daemon: Command, runtime_dir: &Path) -> SessionBus {
        std::fs::create_dir_all(runtime_dir).unwrap();
        std::fs::set_permissions(
            runtime_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let mut daemon = dbus_daemon
            .env("XDG_RUNTIME_DIR", runtime_dir)
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .arg(format!("--address=unix:path={}/bus", runtime_dir.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let mut address = String::new();
        BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut address)
            .expect("read the bus address");
        let address = address.trim().to_string();
        assert!(address.starts_with("unix:"), "bus address {address:?}");
        SessionBus { daemon, address }
    }

    /// The bus socket's path, as it shows in strace's connect() lines.
    pub fn socket_path(&self) -> &str {
        self.address
            .strip_prefix("unix:path=")
            .and_then(|rest| rest.split(',').next())
            .expect("a unix:path= address")
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}
