//! `mfa-exec device add|list|remove`: a user's own virtual MFA device, from "no device" to a
//! working `mfa_serial`, and back. `add` is the terminal and the files, `registration` the IAM
//! steps of adding (and the rule that no unenabled device outlives the run), `remove` the way
//! back; `list` is here.

mod add;
mod registration;
mod remove;

use std::process::ExitCode;

use anyhow::Result;

use super::print_stdout;
use crate::aws::iam::Iam;
use crate::aws::{new_runtime, Signer};
use crate::cli::DeviceCmd;
use crate::clock::rfc3339;
use crate::settings::device::DeviceSettings;
use crate::settings::env::Env;
use crate::settings::request::Request;
use crate::terminal::say;

pub(crate) fn run(cmd: DeviceCmd, env: &Env) -> Result<ExitCode> {
    let request = cmd.request();
    match cmd {
        DeviceCmd::Add {
            device_name,
            qr_png,
            force,
            ..
        } => add::add(&request, device_name, qr_png, force, env),
        DeviceCmd::List { .. } => list(&request, env),
        DeviceCmd::Remove {
            serial_number,
            token_code,
            ..
        } => remove::remove(&request, serial_number, token_code, env),
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

/// IAM signing with the profile's source credentials: the device's user's own keys.
fn source_iam(dev: &DeviceSettings) -> Result<Iam> {
    let signer = Signer::source(&dev.source, dev.place.region.as_deref())?;
    Ok(Iam::new(signer, &dev.place))
}

fn list(request: &Request, env: &Env) -> Result<ExitCode> {
    let dev = DeviceSettings::resolve(request, env)?;
    let rt = new_runtime()?;
    let iam = source_iam(&dev)?;
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
