//! A real Secret Service for the tests that keep keys in the OS keyring (`tests/keys.rs`,
//! `tests/rotate.rs`): Debian's gnome-keyring on a private `dbus-daemon --session`, unlocked
//! with a test password, with the test's own HOME.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::bus::SessionBus;
use super::env::{require_tool, TestEnv};

const PASSWORD: &str = "test-keyring-password";

/// A private session bus with gnome-keyring's Secret Service on it, for one test.
pub struct SecretService {
    keyring: Child,
    /// The bus the keyring serves on (dropped after the keyring daemon).
    bus: SessionBus,
    runtime_dir: PathBuf,
}

impl SecretService {
    /// Starts the bus and the keyring daemon and points `env`'s runs at them. None (skipped)
    /// when the tools are missing outside CI.
    pub fn start(env: &mut TestEnv) -> Option<SecretService> {
        let dbus_daemon = require_tool("dbus-daemon (Debian: dbus)", &["dbus-daemon"])?;
        let gnome_keyring = require_tool(
            "gnome-keyring-daemon (Debian: gnome-keyring)",
            &["gnome-keyring-daemon"],
        )?;
        require_tool("dbus-send (Debian: dbus)", &["dbus-send"])?;
        let runtime_dir = env.dir.path().join("run");
        let bus = SessionBus::start(env.command(&dbus_daemon), &runtime_dir);

        // `--unlock` reads the password from stdin and creates the login keyring with it on
        // first start; as root it may warn that it cannot lock memory (no CAP_IPC_LOCK).
        let mut keyring = env
            .command(&gnome_keyring)
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .args(["--unlock", "--components=secrets", "--foreground"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gnome-keyring-daemon");
        keyring
            .stdin
            .take()
            .unwrap()
            .write_all(PASSWORD.as_bytes())
            .unwrap();

        let service = SecretService {
            keyring,
            bus,
            runtime_dir,
        };
        service.wait_for_the_secret_service(env);
        env.set("DBUS_SESSION_BUS_ADDRESS", service.address());
        env.set(
            "XDG_RUNTIME_DIR",
            &service.runtime_dir.display().to_string(),
        );
        Some(service)
    }

    /// DBUS_SESSION_BUS_ADDRESS of the bus the keyring serves on.
    pub fn address(&self) -> &str {
        &self.bus.address
    }

    pub fn dbus_send(&self, env: &TestEnv, args: &[&str]) -> String {
        let out = env
            .command("dbus-send")
            .env("DBUS_SESSION_BUS_ADDRESS", self.address())
            .args(["--session", "--print-reply"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run dbus-send");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn wait_for_the_secret_service(&self, env: &TestEnv) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let reply = self.dbus_send(
                env,
                &[
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ],
            );
            if reply.contains("boolean true") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "gnome-keyring never took org.freedesktop.secrets on the test bus"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Locks the login collection, as a screen lock or `secret-tool lock` would.
    pub fn lock(&self, env: &TestEnv) {
        let reply = self.dbus_send(
            env,
            &[
                "--dest=org.freedesktop.secrets",
                "/org/freedesktop/secrets",
                "org.freedesktop.Secret.Service.Lock",
                "array:objpath:/org/freedesktop/secrets/collection/login",
            ],
        );
        assert!(reply.contains("collection/login"), "lock reply: {reply}");
    }

    /// The object paths of the items in the login collection: whatever anyone stored there.
    pub fn items(&self, env: &TestEnv) -> Vec<String> {
        let reply = self.dbus_send(
            env,
            &[
                "--dest=org.freedesktop.secrets",
                "/org/freedesktop/secrets/collection/login",
                "org.freedesktop.DBus.Properties.Get",
                "string:org.freedesktop.Secret.Collection",
                "string:Items",
            ],
        );
        assert!(reply.contains("variant"), "Items reply: {reply}");
        reply
            .lines()
            .filter_map(|l| l.trim().strip_prefix("object path "))
            .map(|p| p.trim_matches('"').to_string())
            .collect()
    }

    /// The bus socket's path, as it shows in strace's connect() lines.
    pub fn socket_path(&self) -> &str {
        self.bus.socket_path()
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        let _ = self.keyring.kill();
        let _ = self.keyring.wait();
    }
}
