//! `mfa-exec device remove`: a virtual MFA device deactivated (IAM's self-manage policy wants
//! an MFA session for that, made with a code from this very device) and deleted, its
//! `mfa_serial` line taken out of the profile, and the cached sessions it made cleared.

use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};

use super::{source_iam, with_profile};
use crate::aws::failure::FailureKind;
use crate::aws::iam::Iam;
use crate::aws::{new_runtime, Signer};
use crate::credentials::{self, cache::Cache};
use crate::profile::{edit, FileKind};
use crate::settings::device::DeviceSettings;
use crate::settings::env::Env;
use crate::settings::request::Request;
use crate::settings::validate::{validate_code, validate_serial};
use crate::settings::Settings;
use crate::terminal::say;

pub(super) fn remove(
    request: &Request,
    serial: Option<String>,
    token_code: Option<String>,
    env: &Env,
) -> Result<ExitCode> {
    let dev = DeviceSettings::resolve(request, env)?;
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
    let iam = source_iam(&dev)?;
    let user = rt.block_on(iam.caller_user())?;
    let assigned = rt
        .block_on(iam.list(&user.name))?
        .iter()
        .any(|d| d.serial == serial);

    let what = if assigned {
        // IAM's self-manage policy denies deactivation without MFA: get an MFA session the
        // usual way (the cache, -t, the token command or the prompt), with this device.
        let session = request.mfa_session(&serial, token_code.as_deref());
        let settings = Settings::resolve(&session, env, &env.profile_files()?)?;
        let cache = if settings.cache.enabled {
            Cache::open(env)
        } else {
            None
        };
        let (session, _) = credentials::obtain(&settings, cache.as_ref())?;
        let with_mfa = Iam::new(Signer::session(&session), &dev.place);
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
