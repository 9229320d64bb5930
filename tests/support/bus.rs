//! A private D-Bus session bus for one test, as a desktop session has one: the dialog tests'
//! desktop runs on it (Qt and GTK look for it), and the keyring tests' Secret Service is a
//! service on it. Its socket lives in a runtime directory of the test's own, which is 0700 as
//! `XDG_RUNTIME_DIR` must be.

use std::path::Path;
use std::process::{Command, Stdio};

use super::background::Background;

/// The bus daemon, ended when dropped.
pub struct SessionBus {
    _daemon: Background,
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
        let (daemon, address) = Background::ready_line(
            dbus_daemon
                .env("XDG_RUNTIME_DIR", runtime_dir)
                .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
                .arg(format!("--address=unix:path={}/bus", runtime_dir.display()))
                .stdin(Stdio::null())
                .stderr(Stdio::null()),
            "dbus-daemon",
        );
        assert!(address.starts_with("unix:"), "bus address {address:?}");
        SessionBus {
            _daemon: daemon,
            address,
        }
    }

    /// The bus socket's path, as it shows in strace's connect() lines.
    pub fn socket_path(&self) -> &str {
        self.address
            .strip_prefix("unix:path=")
            .and_then(|rest| rest.split(',').next())
            .expect("a unix:path= address")
    }
}
