//! A real Secret Service for the tests that keep keys in the OS keyring (`tests/keys.rs`,
//! `tests/rotate.rs`): Debian's gnome-keyring on a private `dbus-daemon --session`, unlocked
//! with a test password, with the test's own HOME.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::env::{require_tool, TestEnv};

const PASSWORD: &str = "test-keyring-password";

/// A private session bus with gnome-keyring's Secret Service on it, for one test.
pub struct SecretService {
    bus: Child,
    keyring: Child,
    pub address: String,
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
        std::fs::create_dir_all(&runtime_dir).unwrap();
        std::fs::set_permissions(
            &runtime_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let mut bus = env
            .command(&dbus_daemon)
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .arg(format!("--address=unix:path={}/bus", runtime_dir.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .expect("read the bus address");
        let address = address.trim().to_string();
        assert!(address.starts_with("unix:"), "bus address {address:?}");

        // `--unlock` reads the password from stdin and creates the login keyring with it on
        // first start; as root it may warn that it cannot lock memory (no CAP_IPC_LOCK).
        let mut keyring = env
            .command(&gnome_keyring)
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
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
            bus,
            keyring,
            address,
            runtime_dir,
        };
        service.wait_for_the_secret_service(env);
        env.set("DBUS_SESSION_BUS_ADDRESS", &service.address.clone());
        env.set(
            "XDG_RUNTIME_DIR",
            &service.runtime_dir.display().to_string(),
        );
        Some(service)
    }

    pub fn dbus_send(&self, env: &TestEnv, args: &[&str]) -> String {
        let out = env
            .command("dbus-send")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
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
        self.address
            .strip_prefix("unix:path=")
            .and_then(|rest| rest.split(',').next())
            .expect("a unix:path= address")
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        for child in [&mut self.keyring, &mut self.bus] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
