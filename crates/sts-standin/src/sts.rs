//! STS: GetCallerIdentity, GetSessionToken, AssumeRole and (unsigned)
//! AssumeRoleWithWebIdentity, with STS's parameter constraints,
//! its MFA rules (a code is good for the steps either side of now, and only once per device) and
//! its limits on durations (a role's MaxSessionDuration; one hour for role chaining). AssumeRole's
//! session policies, tags and source identity are `session`'s.

use std::time::{Duration, SystemTime};

use crate::account::{assumed_role_arn, ACCOUNT};
use crate::errors::{
    access_denied, check_length, check_pattern, err, invalid_token, msg, null_error, validation,
    StsError,
};
use crate::ids::{base64, random_bytes, random_string, stable_id, SECRET_CHARS, UPPER_ALNUM};
use crate::request::{param, VERSION};
use crate::session;
use crate::sigv4::Caller;
use crate::state::{Kind, Session, State, Temp};
use crate::totp::{totp_code, unix_now};
use crate::xml::{esc, iso_format, reply_xml};

/// Runs STS action `action` (after authentication).
pub(crate) fn action(
    state: &mut State,
    caller: &Caller,
    params: &[(String, String)],
    action: &str,
    id: &str,
) -> Result<String, StsError> {
    let version = param(params, "Version");
    if version != Some(VERSION)
        || !matches!(
            action,
            "GetSessionToken" | "AssumeRole" | "GetCallerIdentity" | "AssumeRoleWithWebIdentity"
        )
    {
        return Err(err(
            400,
            "InvalidAction",
            format!(
                "Could not find operation {action} for version {}",
                version.unwrap_or("NO_VERSION_SPECIFIED")
            ),
        ));
    }
    match action {
        "GetSessionToken" => get_session_token(state, caller, params, id),
        "AssumeRole" => assume_role(state, caller, params, id),
        // Signed: STS takes the token, not the signature, but a signed call is not refused.
        "AssumeRoleWithWebIdentity" => assume_role_with_web_identity(state, params, id),
        _ => Ok(get_caller_identity(caller, id)),
    }
}

/// AssumeRoleWithWebIdentity: unsigned; the token is the credential. The role must trust the
/// token ([`crate::Role::web_identity_token`]); the session carries no MFA and no user.
pub(crate) fn assume_role_with_web_identity(
    state: &mut State,
    params: &[(String, String)],
    id: &str,
) -> Result<String, StsError> {
    if param(params, "Version") != Some(VERSION) {
        return Err(err(
            400,
            "InvalidAction",
            "Could not find operation AssumeRoleWithWebIdentity for version NO_VERSION_SPECIFIED",
        ));
    }
    let mut errors = Vec::new();
    let (role_arn, session) = role_params(params, &mut errors);
    let token = param(params, "WebIdentityToken");
    match token {
        None => errors.push(null_error("webIdentityToken")),
        Some(t) => check_length("webIdentityToken", t, 4, 20_000, &mut errors),
    }
    let duration = duration_param(params, 900, 43_200, &mut errors);
    if !errors.is_empty() {
        return Err(validation(&errors));
    }
    let (role_arn, session) = (role_arn.unwrap_or_default(), session.unwrap_or_default());
    let role = state
        .config
        .roles
        .iter()
        .find(|r| r.arn == role_arn && r.web_identity_token.as_deref() == token)
        .cloned()
        .ok_or_else(|| access_denied("Not authorized to perform sts:AssumeRoleWithWebIdentity"))?;
    let duration = duration.unwrap_or(3600);
    if duration > role.max_session_duration {
        return Err(err(400, "ValidationError", msg::ROLE_MAX_DURATION));
    }
    let (akid, temp) = issue(
        state,
        duration,
        Kind::Role,
        false,
        "",
        Some((role.name.clone(), session.to_string())),
    );
    let result = format!(
        "<SubjectFromWebIdentityToken>standin-ci-job</SubjectFromWebIdentityToken>\n    <AssumedRoleUser>\n      <AssumedRoleId>{}:{}</AssumedRoleId>\n      <Arn>{}</Arn>\n    </AssumedRoleUser>\n    {}",
        stable_id("AROA", &role.name),
        esc(session),
        esc(&assumed_role_arn(&role.name, session)),
        credentials_xml(&akid, &temp),
    );
    Ok(reply_xml("AssumeRoleWithWebIdentity", &result, id))
}

/// Credentials of a role session no user started, as an instance's metadata service hands
/// them out: (access key id, secret, session token, expiration).
pub(crate) fn role_credentials(
    state: &mut State,
    role: &str,
    lifetime: u64,
) -> (String, String, String, SystemTime) {
    let (akid, temp) = issue(
        state,
        lifetime,
        Kind::Role,
        false,
        "",
        Some((role.to_string(), "i-0standin".to_string())),
    );
    (akid, temp.secret, temp.token, temp.expires)
}

fn get_caller_identity(caller: &Caller, id: &str) -> String {
    let result = format!(
        "<Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{ACCOUNT}</Account>",
        esc(&caller.arn()),
        esc(&caller.user_id()),
    );
    reply_xml("GetCallerIdentity", &result, id)
}

fn get_session_token(
    state: &mut State,
    caller: &Caller,
    params: &[(String, String)],
    id: &str,
) -> Result<String, StsError> {
    let mut errors = Vec::new();
    let duration = duration_param(params, 900, 129_600, &mut errors);
    let serial = param(params, "SerialNumber");
    let code = param(params, "TokenCode");
    check_mfa_params(serial, code, &mut errors);
    if !errors.is_empty() {
        return Err(validation(&errors));
    }
    let duration = duration.unwrap_or(43_200);

    let Caller::User(user) = caller else {
        return Err(access_denied(msg::GST_WITH_SESSION));
    };
    let mfa = match (serial, code) {
        (None, None) => None,
        (serial, code) => Some(check_mfa(state, &user.name, serial, code)?),
    };

    if let Some(step) = &mfa {
        state.used_codes.insert(step.clone());
    }
    let (akid, temp) = issue(
        state,
        duration,
        Kind::Session,
        mfa.is_some(),
        &user.name,
        None,
    );
    let result = credentials_xml(&akid, &temp);
    Ok(reply_xml("GetSessionToken", &result, id))
}

/// AssumeRole, recorded as received (for [`crate::StandIn::assumed_roles`]) with the error code
/// it was refused with, if any.
fn assume_role(
    state: &mut State,
    caller: &Caller,
    params: &[(String, String)],
    id: &str,
) -> Result<String, StsError> {
    let mut errors = Vec::new();
    let (role_arn, session) = role_params(params, &mut errors);
    let requested = session::read(params, &mut errors);
    state
        .assumed_roles
        .push(requested.record(role_arn.unwrap_or_default(), session.unwrap_or_default()));
    let index = state.assumed_roles.len() - 1;
    let result = assume_role_checked(state, caller, params, id, errors, &requested);
    if let Err(e) = &result {
        state.assumed_roles[index].error = Some(e.code.to_string());
    }
    result
}

fn assume_role_checked(
    state: &mut State,
    caller: &Caller,
    params: &[(String, String)],
    id: &str,
    mut errors: Vec<String>,
    requested: &session::Requested,
) -> Result<String, StsError> {
    let (role_arn, session) = role_params(params, &mut Vec::new());
    let external_id = param(params, "ExternalId");
    if let Some(x) = external_id {
        check_length("externalId", x, 2, 1224, &mut errors);
        check_pattern("externalId", x, r"[\w+=,.@:\/-]*", "+=,.@:/-", &mut errors);
    }
    let duration = duration_param(params, 900, 43_200, &mut errors);
    let serial = param(params, "SerialNumber");
    let code = param(params, "TokenCode");
    check_mfa_params(serial, code, &mut errors);
    if !errors.is_empty() {
        return Err(validation(&errors));
    }
    let role_arn = role_arn.unwrap_or_default();
    let session = session.unwrap_or_default();

    let not_authorized = || {
        access_denied(format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            caller.arn()
        ))
    };
    let role = state
        .config
        .roles
        .iter()
        .find(|r| r.arn == role_arn)
        .cloned()
        .ok_or_else(not_authorized)?;
    // Trusted: the user who started the chain, or the role whose session signs (a hub).
    let signing_role = caller.temp().and_then(|t| t.role.as_ref()).map(|r| &r.0);
    let trusted = role.trusted_users.iter().any(|u| u == caller.user_name())
        || signing_role.is_some_and(|r| role.trusted_roles.contains(r));
    if !trusted {
        return Err(not_authorized());
    }
    if let Some(expected) = &role.external_id {
        if external_id != Some(expected.as_str()) {
            return Err(not_authorized());
        }
    }
    let mfa = match (serial, code) {
        (None, None) => None,
        (serial, code) => Some(check_mfa(state, caller.user_name(), serial, code)?),
    };
    let mfa_present = mfa.is_some() || caller.temp().is_some_and(|t| t.mfa);
    if role.require_mfa && !mfa_present {
        return Err(not_authorized());
    }
    let (new_session, packed) = session::new_session(
        requested,
        caller.temp().map(|t| &t.session),
        &role,
        &caller.arn(),
    )?;

    let duration_given = duration.is_some();
    let duration = duration.unwrap_or(3600);
    if duration > role.max_session_duration {
        return Err(err(400, "ValidationError", msg::ROLE_MAX_DURATION));
    }
    let chained = caller.temp().is_some();
    if chained && duration > 3600 {
        return Err(err(400, "ValidationError", msg::ROLE_CHAINING));
    }

    if let Some(step) = &mfa {
        state.used_codes.insert(step.clone());
    }
    let user = caller.user_name().to_string();
    let (akid, temp) = issue(
        state,
        duration,
        Kind::Role,
        mfa_present,
        &user,
        Some((role.name.clone(), session.to_string())),
    );
    if let Some(t) = state.temps.get_mut(&akid) {
        t.chained = chained;
        t.duration_given = duration_given;
        t.session = new_session.clone();
    }
    // STS answers PackedPolicySize when session policies or tags were passed, and the session's
    // SourceIdentity when it has one.
    let packed = packed
        .map(|p| format!("\n    <PackedPolicySize>{p}</PackedPolicySize>"))
        .unwrap_or_default();
    let source_identity = new_session
        .source_identity
        .as_deref()
        .map(|s| format!("\n    <SourceIdentity>{}</SourceIdentity>", esc(s)))
        .unwrap_or_default();
    let result = format!(
        "<AssumedRoleUser>\n      <AssumedRoleId>{}:{}</AssumedRoleId>\n      <Arn>{}</Arn>\n    </AssumedRoleUser>\n    {}{packed}{source_identity}",
        stable_id("AROA", &role.name),
        esc(session),
        esc(&assumed_role_arn(&role.name, session)),
        credentials_xml(&akid, &temp),
    );
    Ok(reply_xml("AssumeRole", &result, id))
}

/// `RoleArn` and `RoleSessionName`, which AssumeRole and AssumeRoleWithWebIdentity both
/// require, checked against STS's service model (errors collected, in that order).
fn role_params<'a>(
    params: &'a [(String, String)],
    errors: &mut Vec<String>,
) -> (Option<&'a str>, Option<&'a str>) {
    let role_arn = param(params, "RoleArn");
    let session = param(params, "RoleSessionName");
    match role_arn {
        None => errors.push(null_error("roleArn")),
        Some(arn) => check_length("roleArn", arn, 20, 2048, errors),
    }
    match session {
        None => errors.push(null_error("roleSessionName")),
        Some(s) => {
            check_length("roleSessionName", s, 2, 64, errors);
            check_pattern("roleSessionName", s, r"[\w+=,.@-]*", "+=,.@-", errors);
        }
    }
    (role_arn, session)
}

/// Parses `DurationSeconds` (None when absent or invalid; errors collected).
fn duration_param(
    params: &[(String, String)],
    min: u64,
    max: u64,
    errors: &mut Vec<String>,
) -> Option<u64> {
    let raw = param(params, "DurationSeconds")?;
    let Ok(n) = raw.trim().parse::<i64>() else {
        errors.push(format!("Value '{raw}' at 'durationSeconds' failed to satisfy constraint: Member must be a number"));
        return None;
    };
    if n < min as i64 {
        errors.push(format!("Value '{n}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to {min}"));
        None
    } else if n > max as i64 {
        errors.push(format!("Value '{n}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to {max}"));
        None
    } else {
        Some(n as u64)
    }
}

fn check_mfa_params(serial: Option<&str>, code: Option<&str>, errors: &mut Vec<String>) {
    if let Some(serial) = serial {
        check_length("serialNumber", serial, 9, 256, errors);
        check_pattern("serialNumber", serial, r"[\w+=/:,.@-]*", "+=/:,.@-", errors);
    }
    if let Some(code) = code {
        check_length("tokenCode", code, 6, 6, errors);
        if !code.chars().all(|c| c.is_ascii_digit()) {
            errors.push(format!("Value '{code}' at 'tokenCode' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\d]*"));
        }
    }
}

/// Checks `serial` + `code` for user `user`; returns the (serial, step) to consume on success.
fn check_mfa(
    state: &State,
    user: &str,
    serial: Option<&str>,
    code: Option<&str>,
) -> Result<(String, u64), StsError> {
    // A role session no user started (an instance's, a web identity's) has no device of its
    // own: the stand-in takes any enabled device for it, as the SDKs send mfa_serial as given.
    let owner = if user.is_empty() {
        None
    } else {
        Some(
            state
                .config
                .user(user)
                .ok_or_else(invalid_token)?
                .name
                .as_str(),
        )
    };
    let Some(serial) = serial else {
        return Err(access_denied(msg::MFA_BAD_SERIAL));
    };
    let Some(device) = state
        .devices
        .get(serial)
        .filter(|d| d.user.is_some() && owner.is_none_or(|o| d.user.as_deref() == Some(o)))
    else {
        return Err(access_denied(msg::MFA_BAD_SERIAL));
    };
    let Some(code) = code else {
        return Err(access_denied(msg::MFA_BAD_CODE));
    };
    let now_step = unix_now() / 30;
    let step = [now_step, now_step.saturating_sub(1), now_step + 1]
        .into_iter()
        .find(|step| totp_code(&device.seed_base32, step * 30) == code)
        .ok_or_else(|| access_denied(msg::MFA_BAD_CODE))?;
    let key = (serial.to_string(), step);
    if !state.reuse_codes && state.used_codes.contains(&key) {
        return Err(access_denied(msg::MFA_BAD_CODE));
    }
    Ok(key)
}

fn issue(
    state: &mut State,
    duration: u64,
    kind: Kind,
    mfa: bool,
    user: &str,
    role: Option<(String, String)>,
) -> (String, Temp) {
    let role_only = matches!(kind, Kind::Role)
        .then_some(state.role_lifetime_override)
        .flatten();
    let lifetime = role_only
        .or(state.config.lifetime_override)
        .unwrap_or(duration);
    let akid = format!("ASIA{}", random_string(UPPER_ALNUM, 16));
    let temp = Temp {
        secret: random_string(SECRET_CHARS, 40),
        token: base64(&random_bytes(240)),
        expires: SystemTime::now() + Duration::from_secs(lifetime),
        kind,
        mfa,
        user: user.to_string(),
        role,
        chained: false,
        duration_given: false,
        session: Session::default(),
    };
    state.temps.insert(akid.clone(), temp.clone());
    (akid, temp)
}

fn credentials_xml(akid: &str, temp: &Temp) -> String {
    format!(
        "<Credentials>\n      <AccessKeyId>{}</AccessKeyId>\n      <SecretAccessKey>{}</SecretAccessKey>\n      <SessionToken>{}</SessionToken>\n      <Expiration>{}</Expiration>\n    </Credentials>",
        esc(akid),
        esc(&temp.secret),
        esc(&temp.token),
        iso_format(temp.expires),
    )
}
