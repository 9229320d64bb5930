//! `mfa-exec device add`: from "no device" to a working `mfa_serial`, in the terminal. The
//! steps are those AWS documents for a virtual MFA device: CreateVirtualMFADevice, show the QR
//! code, two consecutive codes, EnableMFADevice; then `mfa_serial` goes into the profile. The
//! IAM steps and the guarantee that no unenabled device is left behind are `registration`'s;
//! this file is the terminal and the files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};

use super::registration::Registration;
use super::{source_iam, with_profile};
use crate::aws::failure::FailureKind;
use crate::aws::iam::User;
use crate::aws::new_runtime;
use crate::credentials::prompt::code_on_terminal;
use crate::profile::{edit, FileKind};
use crate::settings::device::DeviceSettings;
use crate::settings::env::Env;
use crate::settings::request::Request;
use crate::terminal::tty::Tty;
use crate::terminal::{qr, say};

/// Rounds of "enter two codes" before giving up (each round is one EnableMFADevice call).
const ENABLE_ROUNDS: u32 = 3;

pub(super) fn add(
    request: &Request,
    device_name: Option<String>,
    qr_png: Option<PathBuf>,
    force: bool,
    env: &Env,
) -> Result<ExitCode> {
    // Everything checkable here is checked before anything is created.
    let dev = DeviceSettings::resolve(request, env)?;
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
    let iam = source_iam(&dev)?;
    let user = rt.block_on(iam.caller_user())?;
    let name = device_name.unwrap_or_else(|| user.name.clone());
    validate_device_name(&name)?;

    let registration = Registration::create(&rt, &iam, &name).map_err(|e| {
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
    if let Err(err) = enroll(&registration, &tty, &user, qr_png.as_deref()) {
        return Err(anyhow!("{err:#}; {}", registration.abandon()));
    }
    let device = registration.keep();

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
    registration: &Registration<'_>,
    tty: &Tty,
    user: &User,
    qr_png: Option<&Path>,
) -> Result<()> {
    let device = &registration.device;
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
        if registration.enable(user, &first, &second)? {
            return Ok(());
        }
        if round == ENABLE_ROUNDS {
            bail!("IAM did not accept the codes {ENABLE_ROUNDS} times: check that the app shows the device just scanned and that this machine's clock is right")
        }
        tty.say("IAM did not accept these codes: wait for the app to show a new code, then enter two consecutive codes again.\n")?;
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
