//! The environment a command gets: variables to set and variables to remove, computed once
//! and then either applied to the exec'd child or printed for a shell to eval, so the two
//! can never disagree.

use crate::credentials::Obtained;
use crate::secrets::Credentials;
use crate::settings::Settings;

/// Variables removed because something would read them *over* the new keys: botocore reads
/// the legacy AWS_SECURITY_TOKEN before AWS_SESSION_TOKEN, and tools that pass a profile
/// explicitly read AWS_PROFILE / AWS_DEFAULT_PROFILE.
pub(crate) const REMOVED: [&str; 3] = ["AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"];

/// Ordered changes: `Some` sets, `None` removes (cargo-util's ProcessBuilder shape).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct EnvChanges(pub(crate) Vec<(String, Option<String>)>);

impl EnvChanges {
    pub(crate) fn set(&mut self, name: &str, value: impl Into<String>) {
        self.put(name, Some(value.into()));
    }

    pub(crate) fn remove(&mut self, name: &str) {
        self.put(name, None);
    }

    fn put(&mut self, name: &str, value: Option<String>) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }
}

/// What exec mode gives the child, and `--print-env` prints.
pub(crate) fn for_credentials(
    creds: &Credentials,
    obtained: Obtained,
    settings: &Settings,
) -> EnvChanges {
    let mut env = EnvChanges::default();
    env.set("AWS_ACCESS_KEY_ID", &creds.access_key_id);
    env.set("AWS_SECRET_ACCESS_KEY", &creds.secret_access_key);
    env.set("AWS_SESSION_TOKEN", &creds.session_token);
    env.set("AWS_CREDENTIAL_EXPIRATION", creds.expiration_rfc3339());
    if let Some(region) = &settings.region {
        // botocore reads only AWS_DEFAULT_REGION; the CLI v2 docs say AWS_REGION wins.
        env.set("AWS_REGION", region);
        env.set("AWS_DEFAULT_REGION", region);
    }
    for name in REMOVED {
        env.remove(name);
    }
    env.set("MFA_EXEC_PROFILE", &settings.profile);
    // For `mfa-status` and prompts; removed when not a role so a stale one never lingers.
    match (obtained, &settings.role) {
        (Obtained::Role, Some(role)) => env.set("MFA_EXEC_ROLE_ARN", &role.arn),
        _ => env.remove("MFA_EXEC_ROLE_ARN"),
    }
    env
}
