//! `mfa-exec device add|list|remove`: a user's own virtual MFA device, from "no device" to a
//! working `mfa_serial`, in the terminal, and back. The steps are those AWS documents for a
//! virtual MFA device: CreateVirtualMFADevice, show the QR code, two consecutive codes,
//! EnableMFADevice; and, to tear down, DeactivateMFADevice and DeleteVirtualMFADevice.
//!
//! The rule that shapes `add`: a device that was created but not enabled must not outlive the
//! run. IAM keeps it, its name stays taken, and the next `device add` would fail with
//! "already exists". So from CreateVirtualMFADevice until EnableMFADevice succeeds, every way
//! out deletes it: an error, codes refused too often, the terminal gone (EOF, SIGHUP) and
//! Ctrl-C or SIGTERM at a prompt. Signals go through the terminal's one watcher, which puts the
//! terminal back and runs this command's cleanup: it waits for an IAM call in flight to finish,
//! deletes the device, and the run then ends by the signal it got (Ctrl-C: status 130).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{anyhow, bail, Context, Result};
use tokio::runtime::Runtime;

use super::print_stdout;
use crate::aws::failure::FailureKind;
use crate::aws::iam::{Iam, NewDevice, User};
use crate::aws::new_runtime;
use crate::cli::DeviceCmd;
use crate::clock::rfc3339;
use crate::credentials::prompt::code_on_terminal;
use crate::credentials::{self, cache::Cache};
use crate::profile::{edit, FileKind};
use crate::settings::device::DeviceSettings;
use crate::settings::env::Env;
use crate::settings::request::Request;
use crate::settings::validate::{validate_code, validate_serial};
use crate::settings::Settings;
use crate::terminal::tty::{self, Tty};
use crate::terminal::{qr, say};

/// Rounds of "enter two codes" before giving up (each round is one EnableMFADevice call).
const ENABLE_ROUNDS: u32 = 3;

pub(crate) fn run(cmd: DeviceCmd, env: &Env) -> Result<ExitCode> {
    match cmd {
        DeviceCmd::Add {
            profile,
            device_name,
            qr_png,
            force,
        } => add(profile.as_deref(), device_name, qr_png, force, env),
        DeviceCmd::List { profile } => list(profile.as_deref(), env),
        DeviceCmd::Remove {
            profile,
            serial_number,
            token_code,
        } => remove(profile.as_deref(), serial_number, token_code, env),
    }
}

/// `mfa-exec -p P …` for messages (no `-p` for the default profile).
fn with_profile(profile: &str) -> String {
    if profile == "default" {
        "mfa-exec".into()
    } else {
        format!("mfa-exec -p {profile}")
    }
}

// ------------------------------------------------------------------------------------------
// device add
// ------------------------------------------------------------------------------------------

fn add(
    profile: Option<&str>,
    device_name: Option<String>,
    qr_png: Option<PathBuf>,
    force: bool,
    env: &Env,
) -> Result<ExitCode> {
    // Everything checkable here is checked before anything is created.
    let dev = DeviceSettings::resolve(profile, env)?;
    if let (Some((serial, holder)), false) = (&dev.serial, force) {
        bail!(
            "profile '{}' already uses MFA device {serial} (mfa_serial of profile '{holder}'): pass --force to register another one for it, or first `{} device remove`",
            dev.profile,
            with_profile(&dev.profile)
        );
    }
    if let Some(name) = &device_name {
        validate_device_name(name)?;
    }
    if let Some(path) = &qr_png {
        check_png_path(path)?;
    }
    // mfa_serial is written once the device is enabled, and an enabled device stays: a config
    // that cannot take the line must be found now (a read-only ~/.aws, a dangling link).
    edit::check_writable(&dev.config_path)
        .map_err(|e| anyhow!("{e:#}; no MFA device was created"))?;
    let tty = Tty::open().ok_or_else(|| {
        anyhow!("device add shows a QR code and asks for two codes on the terminal, and there is none: run it in a terminal")
    })?;
    let rt = new_runtime()?;
    let iam = Iam::for_source(&dev)?;
    let user = rt.block_on(iam.caller_user())?;
    let name = device_name.unwrap_or_else(|| user.name.clone());
    validate_device_name(&name)?;

    let guard = Cleanup::arm(iam.clone());
    let device = {
        let mut phase = guard.phase();
        let device = rt.block_on(iam.create_device(&name)).map_err(|e| {
            if e.kind == FailureKind::AlreadyExists {
                anyhow!(
                    "an MFA device named '{name}' already exists in account {}: choose another name with --device-name, or see `{} device list` and `device remove --serial-number arn:aws:iam::{}:mfa/{name}`",
                    user.account,
                    with_profile(&dev.profile),
                    user.account
                )
            } else {
                e.into()
            }
        })?;
        *phase = Phase::Created(device.serial.clone());
        device
    };

    match enroll(&rt, &iam, &guard, &tty, &user, &device, qr_png.as_deref()) {
        Ok(()) => {}
        Err(err) => {
            let mut phase = guard.phase();
            *phase = Phase::Settled;
            return Err(anyhow!(
                "{err:#}; {}",
                delete_again(&rt, &iam, &device.serial)
            ));
        }
    }

    // Enabled: from here on the device is the user's, whatever happens to this run.
    edit::set_key(
        &dev.config_path,
        FileKind::Config,
        &dev.profile,
        "mfa_serial",
        &device.serial,
    )
    .with_context(|| {
        format!(
            "device {} is enabled for IAM user {}, but mfa_serial could not be written: add `mfa_serial = {}` to {} in {} yourself",
            device.serial,
            user.name,
            device.serial,
            dev.section,
            dev.config_path.display()
        )
    })?;
    drop(guard);
    say(&format!(
        "MFA device {} is enabled for IAM user {}; mfa_serial written to {} in {}; try it: {} -- aws sts get-caller-identity",
        device.serial,
        user.name,
        dev.section,
        dev.config_path.display(),
        with_profile(&dev.profile)
    ));
    Ok(ExitCode::SUCCESS)
}

/// Shows the QR code, writes the PNG when asked, and enables the device with two codes.
fn enroll(
    rt: &Runtime,
    iam: &Iam,
    guard: &Cleanup,
    tty: &Tty,
    user: &User,
    device: &NewDevice,
    qr_png: Option<&Path>,
) -> Result<()> {
    let device_name = device.serial.rsplit('/').next().unwrap_or(&device.serial);
    let uri = qr::otpauth_uri(device_name, &user.account, &device.seed_base32);
    let drawing = qr::render(&uri)?;
    tty.say(&format!(
        "Scan this QR code with your authenticator app (it adds \"{}\" for {device_name}@{}):\n{drawing}",
        qr::ISSUER,
        user.account
    ))?;
    if let Some(path) = qr_png {
        write_png(path, &device.qr_png)?;
        tty.say(&format!(
            "The QR code is also in {} (mode 0600).\n",
            path.display()
        ))?;
    }
    tty.say("Enter two consecutive codes from the app.\n")?;
    for round in 1..=ENABLE_ROUNDS {
        let first = code_on_terminal(tty, "Enter the first code: ", None)?;
        let second = code_on_terminal(tty, "Enter the second code: ", Some(&first))?;
        let mut phase = guard.phase();
        match rt.block_on(iam.enable(&user.name, &device.serial, &first, &second)) {
            Ok(()) => {
                *phase = Phase::Settled;
                return Ok(());
            }
            Err(e) if e.kind == FailureKind::InvalidCode && round < ENABLE_ROUNDS => {
                drop(phase);
                tty.say("IAM did not accept these codes: wait for the app to show a new code, then enter two consecutive codes again.\n")?;
            }
            Err(e) if e.kind == FailureKind::InvalidCode => {
                bail!("IAM did not accept the codes {ENABLE_ROUNDS} times: check that the app shows the device just scanned and that this machine's clock is right")
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the last round returns")
}

/// IAM's VirtualMFADeviceName: 1–226 characters of letters, digits and `+=,.@_-`.
fn validate_device_name(name: &str) -> Result<()> {
    let ok = (1..=226).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok {
        Ok(())
    } else {
        bail!("device name '{name}' is not valid: 1–226 characters of letters, digits and +=,.@_- (pass --device-name)")
    }
}

fn check_png_path(path: &Path) -> Result<()> {
    if path.is_dir() {
        bail!(
            "--qr-png {} is a directory: give a file name",
            path.display()
        );
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        bail!(
            "--qr-png {}: the directory {} does not exist",
            path.display(),
            parent.display()
        );
    }
    Ok(())
}

/// IAM's PNG, 0600, written to a new file beside the target and renamed over it: a symlink at
/// the path is replaced, never written through.
fn write_png(path: &Path, png: &[u8]) -> Result<()> {
    if png.is_empty() {
        bail!("IAM returned no QR code image for --qr-png");
    }
    crate::files::write_atomic(path, png, Some(0o600)).map_err(|e| {
        anyhow!(
            "cannot write --qr-png {}: {}",
            path.display(),
            e.root_cause()
        )
    })
}

// ------------------------------------------------------------------------------------------
// The codes, and what a signal does while a device hangs unenabled
// ------------------------------------------------------------------------------------------

/// Where `add` stands, for the signal watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Nothing created yet (or the call that creates is in flight: the lock is held).
    Before,
    /// This device exists and is not enabled: it must be deleted on the way out.
    Created(String),
    /// Enabled (the device stays; the run finishes writing the config), or already deleted
    /// by the run itself: the run ends on its own.
    Settled,
}

/// The phase, shared with the cleanup a signal runs, for as long as `add` runs.
struct Cleanup {
    phase: Arc<Mutex<Phase>>,
    _registered: tty::CleanupGuard,
}

impl Cleanup {
    /// From now on SIGINT, SIGTERM and SIGHUP first undo what `add` did so far.
    fn arm(iam: Iam) -> Cleanup {
        let phase = Arc::new(Mutex::new(Phase::Before));
        let watched = Arc::clone(&phase);
        let registered = tty::on_signal(move |why| {
            // Waits for an IAM call in flight: its outcome decides what to undo.
            let phase = watched.lock().unwrap_or_else(|e| e.into_inner()).clone();
            match phase {
                Phase::Before => {
                    say(&format!("{why}; no MFA device was created"));
                    true
                }
                Phase::Created(serial) => {
                    let outcome = match new_runtime() {
                        Ok(rt) => delete_again(&rt, &iam, &serial),
                        Err(e) => could_not_delete(&serial, &e),
                    };
                    say(&format!("{why} before the device was enabled; {outcome}"));
                    true
                }
                Phase::Settled => false,
            }
        });
        Cleanup {
            phase,
            _registered: registered,
        }
    }

    /// Held across an IAM call, so a signal waits for its outcome.
    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Deletes a device that was created and not enabled: what happened, for the end of a message.
fn delete_again(rt: &Runtime, iam: &Iam, serial: &str) -> String {
    match rt.block_on(iam.delete(serial)) {
        Ok(()) => format!("device {serial} was deleted again, nothing is left behind"),
        Err(e) => could_not_delete(serial, &e),
    }
}

fn could_not_delete(serial: &str, why: &dyn std::fmt::Display) -> String {
    format!(
        "and device {serial} could not be deleted ({why}): delete it with `aws iam delete-virtual-mfa-device --serial-number {serial}`"
    )
}

// ------------------------------------------------------------------------------------------
// device list
// ------------------------------------------------------------------------------------------

fn list(profile: Option<&str>, env: &Env) -> Result<ExitCode> {
    let dev = DeviceSettings::resolve(profile, env)?;
    let rt = new_runtime()?;
    let iam = Iam::for_source(&dev)?;
    let user = rt.block_on(iam.caller_user())?;
    let devices = rt.block_on(iam.list(&user.name))?;
    let in_use = dev.serial.as_ref().map(|(s, _)| s.as_str());
    if devices.is_empty() {
        say(&format!(
            "IAM user {} (profile '{}') has no MFA device; register one with `{} device add`",
            user.name,
            dev.profile,
            with_profile(&dev.profile)
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let width = devices
        .iter()
        .map(|d| d.serial.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = format!("  {:<width$}  {:<20}  USED BY\n", "SERIAL", "ENABLED (UTC)");
    for d in &devices {
        let used = in_use == Some(d.serial.as_str());
        out.push_str(&format!(
            "{} {:<width$}  {:<20}  {}\n",
            if used { '*' } else { ' ' },
            d.serial,
            rfc3339(u64::try_from(d.enabled).unwrap_or(0)),
            if used {
                format!("profile {}", dev.profile)
            } else {
                "-".into()
            }
        ));
    }
    print_stdout(&out)?;
    if let Some(serial) = in_use.filter(|s| !devices.iter().any(|d| d.serial == *s)) {
        say(&format!(
            "profile '{}' uses {serial}, which is not among this user's devices; fix its mfa_serial or run `{} device add --force`",
            dev.profile,
            with_profile(&dev.profile)
        ));
    }
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------------------------------------
// device remove
// ------------------------------------------------------------------------------------------

fn remove(
    profile: Option<&str>,
    serial: Option<String>,
    token_code: Option<String>,
    env: &Env,
) -> Result<ExitCode> {
    let dev = DeviceSettings::resolve(profile, env)?;
    let serial = match serial.or_else(|| dev.serial.as_ref().map(|(s, _)| s.clone())) {
        Some(s) => s,
        None => bail!(
            "profile '{}' has no mfa_serial: pass the device with --serial-number (see `{} device list`)",
            dev.profile,
            with_profile(&dev.profile)
        ),
    };
    validate_serial(&serial)?;
    if !serial.contains(":mfa/") {
        bail!("{serial} is not a virtual MFA device's ARN (arn:aws:iam::<account>:mfa/<name>): only virtual devices can be removed here");
    }
    if let Some(code) = &token_code {
        validate_code(code)?;
    }
    let rt = new_runtime()?;
    let iam = Iam::for_source(&dev)?;
    let user = rt.block_on(iam.caller_user())?;
    let assigned = rt
        .block_on(iam.list(&user.name))?
        .iter()
        .any(|d| d.serial == serial);

    let what = if assigned {
        // IAM's self-manage policy denies deactivation without MFA: get an MFA session the
        // usual way (the cache, -t, the token command or the prompt), with this device.
        let request = Request::mfa_session(profile, &serial, token_code.as_deref());
        let settings = Settings::resolve(&request, env, &env.profile_files()?)?;
        let cache = if settings.cache.enabled {
            Cache::open(env)
        } else {
            None
        };
        let (session, _) = credentials::obtain(&settings, cache.as_ref())?;
        let with_mfa = Iam::for_session(&dev, &session);
        rt.block_on(with_mfa.deactivate(&user.name, &serial))?;
        rt.block_on(with_mfa.delete(&serial)).map_err(|e| {
            anyhow!("device {serial} was deactivated but not deleted ({e}); run `{} device remove --serial-number {serial}` again", with_profile(&dev.profile))
        })?;
        format!(
            "deactivated and deleted MFA device {serial} of IAM user {}",
            user.name
        )
    } else {
        // Not assigned to this user: a device left over from an interrupted registration
        // elsewhere, say. It can be deleted as it is; IAM says if it does not exist.
        match rt.block_on(iam.delete(&serial)) {
            Ok(()) => format!("deleted MFA device {serial} (it was not enabled)"),
            Err(e) if e.kind == FailureKind::NoSuchEntity => format!("IAM has no device {serial}"),
            Err(e) => return Err(e.into()),
        }
    };

    // Exactly the line `device add` would have written: `mfa_serial = <this serial>` in the
    // profile (or the source profile) that holds it; everything else in the file stays.
    let files = env.profile_files()?;
    let mut holders = vec![dev.profile.clone()];
    if let Some((_, holder)) = &dev.serial {
        holders.push(holder.clone());
    }
    let mut removed_from = Vec::new();
    for holder in holders {
        if files.profile(&holder).get("mfa_serial") == Some(serial.as_str())
            && !removed_from.contains(&holder)
            && edit::remove_keys(
                &dev.config_path,
                FileKind::Config,
                &holder,
                &["mfa_serial"],
                true,
            )? > 0
        {
            removed_from.push(holder);
        }
    }
    // The cached sessions and roles of this device's user are useless now.
    let cleared = match Cache::existing(env) {
        Ok(Some(cache)) => {
            let mut n = cache.clear(Some(&dev.profile)).unwrap_or(0);
            if let Some(src) = dev.source.profile().filter(|s| *s != dev.profile) {
                n += cache.clear(Some(src)).unwrap_or(0);
            }
            n
        }
        _ => 0,
    };
    let config = if removed_from.is_empty() {
        "no mfa_serial line named it".to_string()
    } else {
        format!(
            "its mfa_serial line removed from profile {} in {}",
            removed_from.join(", "),
            dev.config_path.display()
        )
    };
    say(&format!(
        "{what}; {config}; {cleared} cached entr{} cleared",
        if cleared == 1 { "y" } else { "ies" }
    ));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_follow_iam() {
        assert!(validate_device_name("alice").is_ok());
        assert!(validate_device_name("alice.phone+2@x_y=z,w-1").is_ok());
        for bad in ["", "a b", "a/b", &"x".repeat(227)] {
            assert!(validate_device_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_png_is_private_and_never_written_through_a_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        // A link planted at the path: the link is replaced, its target keeps its bytes.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let png = dir.path().join("qr.png");
        std::os::unix::fs::symlink(&victim, &png).unwrap();
        write_png(&png, b"\x89PNG").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!std::fs::symlink_metadata(&png).unwrap().is_symlink());
        assert_eq!(std::fs::read(&png).unwrap(), b"\x89PNG");
        assert_eq!(mode(&png), 0o600);
        // An existing readable file becomes 0600 too.
        std::fs::set_permissions(&png, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_png(&png, b"\x89PNG2").unwrap();
        assert_eq!(mode(&png), 0o600);
        assert!(write_png(&png, b"").is_err());
    }
}
