//! What `device add|list|remove` need, resolved once by the same rules as a run (the same
//! profile choice and checks, source keys, region and endpoints), but without requiring an
//! `mfa_serial`: registering the first device is the point.

use std::path::PathBuf;

use anyhow::Result;

use super::choice::Choice;
use super::endpoints::Place;
use super::env::Env;
use super::request::Request;
use super::source::{check_named_profile, source, source_chain, Source};
use crate::profile::FileKind;

/// The profile's IAM user as `device` commands see it.
pub(crate) struct DeviceSettings {
    pub(crate) profile: String,
    /// The keys that sign for the device's IAM user (for a role profile, its source's).
    pub(crate) source: Source,
    /// Where its IAM calls go.
    pub(crate) place: Place,
    /// The `mfa_serial` the profile uses now and the profile that holds it (itself or one of
    /// its source profiles).
    pub(crate) serial: Option<(String, String)>,
    pub(crate) config_path: PathBuf,
    /// `[profile NAME]` or `[default]`, for messages.
    pub(crate) section: String,
}

impl DeviceSettings {
    /// The request's profile, chosen by the one rule, and its source user.
    pub(crate) fn resolve(request: &Request, env: &Env) -> Result<DeviceSettings> {
        let choice = Choice::resolve(request.profile.as_deref(), env)?;
        let files = env.profile_files()?;
        let profile = files.profile(&choice.name);
        if choice.named() {
            check_named_profile(&files, profile, env)?;
        }
        // A device belongs to the user whose keys sign: the profile's source credentials, found
        // exactly as for an MFA call (keys in the environment beat AWS_PROFILE, not `-p`; an
        // outer run's temporary keys never sign).
        let source = source(&files, profile, env, choice.flag())?;
        let chain = source_chain(&files, profile, env)?;
        let serial = chain.iter().find_map(|p| {
            p.get("mfa_serial")
                .map(|s| (s.to_string(), p.name.to_string()))
        });
        Ok(DeviceSettings {
            place: Place::of(&files, profile, env)?,
            section: format!("[{}]", FileKind::Config.section(&choice.name)),
            profile: choice.name,
            source,
            serial,
            config_path: files.config_path.clone(),
        })
    }
}
