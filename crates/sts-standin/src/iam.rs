//! IAM: a user's own virtual MFA device, as IAM's example policy "Allows IAM users to
//! self-manage an MFA device" allows it. Create, enable (two consecutive codes) and list without
//! MFA; deactivation needs an MFA session; deletion only of an unassigned device, by its creator.
//!
//! And a user's own access keys, as AWS's example policy "Allows MFA-authenticated IAM users to
//! manage their own credentials" allows them: CreateAccessKey, ListAccessKeys,
//! UpdateAccessKey and DeleteAccessKey only with an MFA session (explicitly denied otherwise),
//! at most two keys a user (LimitExceeded), a key of another user NoSuchEntity.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::account::{user_arn, ACCOUNT};
use crate::errors::{
    access_denied, check_length, check_pattern, err, null_error, validation, StsError,
};
use crate::ids::{base64, random_string};
use crate::request::param;
use crate::sigv4::Caller;
use crate::state::{AccessKey, Device, KeyStatus, Kind, State};
use crate::totp::{totp_code, unix_now};
use crate::xml::{esc, iso_format, reply_xml_in};

/// IAM's Query-protocol version.
pub const IAM_VERSION: &str = "2010-05-08";
/// XML namespace of every IAM reply.
pub(crate) const NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// The IAM user a request acts for: long-term keys, or a GetSessionToken session **with MFA**
/// (IAM refuses session credentials obtained without MFA, and the stand-in gives roles no IAM
/// permissions).
fn iam_user<'a>(caller: &'a Caller, action: &str) -> Result<&'a str, StsError> {
    match caller {
        Caller::User(u) => Ok(&u.name),
        Caller::Temp(t) if t.kind == Kind::Session && t.mfa => Ok(&t.user),
        Caller::Temp(t) if t.kind == Kind::Session => Err(access_denied(format!(
            "User: {} is not authorized to perform: iam:{action} because no identity-based policy allows the iam:{action} action with session credentials obtained without MFA",
            user_arn(&t.user)
        ))),
        Caller::Temp(..) => Err(access_denied(format!(
            "User: {} is not authorized to perform: iam:{action} because no identity-based policy allows the iam:{action} action",
            caller.arn()
        ))),
    }
}

/// Runs IAM action `action` (after authentication).
pub(crate) fn action(
    state: &mut State,
    caller: &Caller,
    params: &[(String, String)],
    action: &str,
    id: &str,
) -> Result<String, StsError> {
    const ACTIONS: [&str; 9] = [
        "CreateVirtualMFADevice",
        "EnableMFADevice",
        "ListMFADevices",
        "DeactivateMFADevice",
        "DeleteVirtualMFADevice",
        "CreateAccessKey",
        "ListAccessKeys",
        "UpdateAccessKey",
        "DeleteAccessKey",
    ];
    let version = param(params, "Version");
    if version != Some(IAM_VERSION) || !ACTIONS.contains(&action) {
        return Err(err(
            400,
            "InvalidAction",
            format!(
                "Could not find operation {action} for version {}",
                version.unwrap_or("NO_VERSION_SPECIFIED")
            ),
        ));
    }
    let me = iam_user(caller, action)?.to_string();
    let mut errors = Vec::new();
    let required = |name: &str, member: &str, errors: &mut Vec<String>| {
        let value = param(params, name);
        if value.is_none() {
            errors.push(null_error(member));
        }
        value.unwrap_or_default().to_string()
    };
    let not_authorized = |resource: &str| {
        access_denied(format!(
            "User: {} is not authorized to perform: iam:{action} on resource: {resource}",
            user_arn(&me)
        ))
    };
    if action.ends_with("AccessKey") || action == "ListAccessKeys" {
        return access_keys(state, caller, params, action, id, &me);
    }
    match action {
        "CreateVirtualMFADevice" => {
            let name = required("VirtualMFADeviceName", "virtualMFADeviceName", &mut errors);
            if param(params, "VirtualMFADeviceName").is_some() {
                check_length("virtualMFADeviceName", &name, 1, 226, &mut errors);
                check_pattern(
                    "virtualMFADeviceName",
                    &name,
                    r"[\w+=,.@-]+",
                    "+=,.@-",
                    &mut errors,
                );
            }
            let path = param(params, "Path").unwrap_or("/").to_string();
            if !path.starts_with('/') || !path.ends_with('/') {
                errors.push(format!("Value '{path}' at 'path' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007F]+\\u002F)"));
            }
            if !errors.is_empty() {
                return Err(validation(&errors));
            }
            let serial = format!("arn:aws:iam::{ACCOUNT}:mfa{path}{name}");
            if state.devices.contains_key(&serial) {
                return Err(err(
                    409,
                    "EntityAlreadyExists",
                    "MFADevice entity at the same path and name already exists.",
                ));
            }
            let seed = random_string(BASE32, 64);
            // The content IAM's API reference gives for QRCodePNG.
            let png = qr_png(&format!("otpauth://totp/{name}@{ACCOUNT}?secret={seed}"));
            state.devices.insert(
                serial.clone(),
                Device {
                    seed_base32: seed.clone(),
                    user: None,
                    creator: me,
                    enabled_at: None,
                },
            );
            // Both blobs are base64 on the wire; the seed blob's bytes are the Base32 text.
            let result = format!(
                "<VirtualMFADevice>\n      <SerialNumber>{}</SerialNumber>\n      <Base32StringSeed>{}</Base32StringSeed>\n      <QRCodePNG>{}</QRCodePNG>\n    </VirtualMFADevice>",
                esc(&serial),
                base64(seed.as_bytes()),
                base64(&png)
            );
            Ok(reply_xml_in(action, Some(&result), id, NAMESPACE))
        }
        "EnableMFADevice" => {
            let user = required("UserName", "userName", &mut errors);
            let serial = required("SerialNumber", "serialNumber", &mut errors);
            let mut codes = Vec::new();
            for (name, member) in [
                ("AuthenticationCode1", "authenticationCode1"),
                ("AuthenticationCode2", "authenticationCode2"),
            ] {
                let code = required(name, member, &mut errors);
                if param(params, name).is_some() {
                    check_length(member, &code, 6, 6, &mut errors);
                    if !code.chars().all(|c| c.is_ascii_digit()) {
                        errors.push(format!("Value '{code}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\d]+"));
                    }
                }
                codes.push(code);
            }
            if !errors.is_empty() {
                return Err(validation(&errors));
            }
            if state.config.user(&user).is_none() {
                return Err(err(
                    404,
                    "NoSuchEntity",
                    format!("The user with name {user} cannot be found."),
                ));
            }
            if user != me {
                return Err(not_authorized(&user_arn(&user)));
            }
            let Some(device) = state.devices.get(&serial) else {
                return Err(err(
                    404,
                    "NoSuchEntity",
                    format!("VirtualMFADevice with serial number {serial} doesn't exist."),
                ));
            };
            if device.user.is_some() {
                return Err(err(
                    409,
                    "EntityAlreadyExists",
                    "MFA Device is already in use.",
                ));
            }
            // Two consecutive codes, the second at most one step ahead of now; each code is
            // accepted once.
            let now = unix_now() / 30;
            let step = (now.saturating_sub(2)..=now).find(|s| {
                totp_code(&device.seed_base32, s * 30) == codes[0]
                    && totp_code(&device.seed_base32, (s + 1) * 30) == codes[1]
                    && !state.used_codes.contains(&(serial.clone(), *s))
                    && !state.used_codes.contains(&(serial.clone(), s + 1))
            });
            let Some(step) = step else {
                return Err(err(
                    403,
                    "InvalidAuthenticationCode",
                    "Authentication code for device is not valid.",
                ));
            };
            state.used_codes.insert((serial.clone(), step));
            state.used_codes.insert((serial.clone(), step + 1));
            let device = state.devices.get_mut(&serial).expect("found above");
            device.user = Some(user);
            device.enabled_at = Some(SystemTime::now());
            Ok(reply_xml_in(action, None, id, NAMESPACE))
        }
        "ListMFADevices" => {
            let user = param(params, "UserName").unwrap_or(&me).to_string();
            if user != me {
                return Err(not_authorized(&user_arn(&user)));
            }
            let members: String = state
                .devices
                .iter()
                .filter(|(_, d)| d.user.as_deref() == Some(user.as_str()))
                .map(|(serial, d)| {
                    format!(
                        "\n      <member>\n        <UserName>{}</UserName>\n        <SerialNumber>{}</SerialNumber>\n        <EnableDate>{}</EnableDate>\n      </member>",
                        esc(&user),
                        esc(serial),
                        iso_format(d.enabled_at.unwrap_or(UNIX_EPOCH))
                    )
                })
                .collect();
            let result = format!(
                "<IsTruncated>false</IsTruncated>\n    <MFADevices>{members}\n    </MFADevices>"
            );
            Ok(reply_xml_in(action, Some(&result), id, NAMESPACE))
        }
        "DeactivateMFADevice" => {
            let user = required("UserName", "userName", &mut errors);
            let serial = required("SerialNumber", "serialNumber", &mut errors);
            if !errors.is_empty() {
                return Err(validation(&errors));
            }
            // The self-manage policy denies this unless aws:MultiFactorAuthPresent.
            if !caller.temp().is_some_and(|t| t.mfa) {
                return Err(access_denied(format!(
                    "User: {} is not authorized to perform: iam:DeactivateMFADevice on resource: {} with an explicit deny in an identity-based policy",
                    user_arn(&me),
                    user_arn(&user)
                )));
            }
            if user != me {
                return Err(not_authorized(&user_arn(&user)));
            }
            match state.devices.get_mut(&serial) {
                Some(d) if d.user.as_deref() == Some(user.as_str()) => {
                    d.user = None;
                    d.enabled_at = None;
                    Ok(reply_xml_in(action, None, id, NAMESPACE))
                }
                _ => Err(err(
                    404,
                    "NoSuchEntity",
                    format!(
                        "MFA Device with serial number {serial} does not exist for user {user}."
                    ),
                )),
            }
        }
        _ => {
            // DeleteVirtualMFADevice
            let serial = required("SerialNumber", "serialNumber", &mut errors);
            if !errors.is_empty() {
                return Err(validation(&errors));
            }
            let Some(device) = state.devices.get(&serial) else {
                return Err(err(
                    404,
                    "NoSuchEntity",
                    format!("VirtualMFADevice with serial number {serial} doesn't exist."),
                ));
            };
            if device.user.is_some() {
                return Err(err(409, "DeleteConflict", "MFA device is still in use."));
            }
            if device.creator != me {
                return Err(not_authorized(&serial));
            }
            state.devices.remove(&serial);
            Ok(reply_xml_in(action, None, id, NAMESPACE))
        }
    }
}

const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// IAM's quota of access keys a user.
const KEYS_PER_USER: usize = 2;

/// A new long-term key pair: `AKIA` and 16 capitals or digits, a 40-character secret.
pub(crate) fn new_access_key() -> (String, String) {
    const ID: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (
        format!("AKIA{}", random_string(ID, 16)),
        random_string(SECRET, 40),
    )
}

/// The access key actions, for the user `me` (UserName may only name the caller).
fn access_keys(
    state: &mut State,
    caller: &Caller,
    params: &[(String, String)],
    action: &str,
    id: &str,
    me: &str,
) -> Result<String, StsError> {
    let user = param(params, "UserName").unwrap_or(me).to_string();
    // The example policy's statement "BlockMostAccessUnlessSignedInWithMFA" denies every key
    // action unless aws:MultiFactorAuthPresent: an explicit deny, whoever the keys belong to.
    if !caller.temp().is_some_and(|t| t.mfa) {
        return Err(access_denied(format!(
            "User: {} is not authorized to perform: iam:{action} on resource: user {user} with an explicit deny in an identity-based policy",
            user_arn(me)
        )));
    }
    if state.config.user(&user).is_none() {
        return Err(err(
            404,
            "NoSuchEntity",
            format!("The user with name {user} cannot be found."),
        ));
    }
    if user != me
        || state
            .not_allowed
            .contains(&(me.to_string(), action.to_string()))
    {
        return Err(access_denied(format!(
            "User: {} is not authorized to perform: iam:{action} on resource: user {user} because no identity-based policy allows the iam:{action} action",
            user_arn(me)
        )));
    }
    let mut errors = Vec::new();
    let key_id = || param(params, "AccessKeyId").unwrap_or_default().to_string();
    if action != "CreateAccessKey" && action != "ListAccessKeys" {
        match param(params, "AccessKeyId") {
            None => errors.push(null_error("accessKeyId")),
            Some(k) => {
                check_length("accessKeyId", k, 16, 128, &mut errors);
                check_pattern("accessKeyId", k, r"[\w]+", "", &mut errors);
            }
        }
    }
    let status = param(params, "Status").unwrap_or_default().to_string();
    if action == "UpdateAccessKey" {
        match param(params, "Status") {
            None => errors.push(null_error("status")),
            Some("Active" | "Inactive") => {}
            Some(other) => errors.push(format!(
                "Value '{other}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
            )),
        }
    }
    if !errors.is_empty() {
        return Err(validation(&errors));
    }
    let not_found = |k: &str| {
        err(
            404,
            "NoSuchEntity",
            format!("The Access Key with id {k} cannot be found."),
        )
    };
    let mine = |state: &State, k: &str| state.access_keys.get(k).is_some_and(|a| a.user == user);
    match action {
        "CreateAccessKey" => {
            let count = state
                .access_keys
                .values()
                .filter(|k| k.user == user)
                .count();
            if count >= KEYS_PER_USER {
                return Err(err(
                    409,
                    "LimitExceeded",
                    format!("Cannot exceed quota for AccessKeysPerUser: {KEYS_PER_USER}"),
                ));
            }
            let (new_id, secret) = new_access_key();
            let now = SystemTime::now();
            state.access_keys.insert(
                new_id.clone(),
                AccessKey {
                    secret: secret.clone(),
                    user: user.clone(),
                    status: KeyStatus::Active,
                    created: now,
                    usable_from: now + state.new_key_delay,
                },
            );
            let result = format!(
                "<AccessKey>\n      <UserName>{}</UserName>\n      <AccessKeyId>{new_id}</AccessKeyId>\n      <Status>Active</Status>\n      <SecretAccessKey>{}</SecretAccessKey>\n      <CreateDate>{}</CreateDate>\n    </AccessKey>",
                esc(&user),
                esc(&secret),
                iso_format(now)
            );
            Ok(reply_xml_in(action, Some(&result), id, NAMESPACE))
        }
        "ListAccessKeys" => {
            let mut keys: Vec<(&String, &AccessKey)> = state
                .access_keys
                .iter()
                .filter(|(_, k)| k.user == user)
                .collect();
            keys.sort_by_key(|(k, a)| (a.created, (*k).clone()));
            let members: String = keys
                .iter()
                .map(|(k, a)| {
                    format!(
                        "\n      <member>\n        <UserName>{}</UserName>\n        <AccessKeyId>{k}</AccessKeyId>\n        <Status>{}</Status>\n        <CreateDate>{}</CreateDate>\n      </member>",
                        esc(&user),
                        a.status.as_str(),
                        iso_format(a.created)
                    )
                })
                .collect();
            let result = format!(
                "<UserName>{}</UserName>\n    <AccessKeyMetadata>{members}\n    </AccessKeyMetadata>\n    <IsTruncated>false</IsTruncated>",
                esc(&user)
            );
            Ok(reply_xml_in(action, Some(&result), id, NAMESPACE))
        }
        "UpdateAccessKey" => {
            let k = key_id();
            if !mine(state, &k) {
                return Err(not_found(&k));
            }
            let key = state.access_keys.get_mut(&k).expect("found above");
            key.status = if status == "Active" {
                KeyStatus::Active
            } else {
                KeyStatus::Inactive
            };
            Ok(reply_xml_in(action, None, id, NAMESPACE))
        }
        _ => {
            // DeleteAccessKey
            let k = key_id();
            if !mine(state, &k) {
                return Err(not_found(&k));
            }
            state.access_keys.remove(&k);
            Ok(reply_xml_in(action, None, id, NAMESPACE))
        }
    }
}

/// A black-on-white PNG of the QR code of `text`: 4 pixels a module, 4 modules of quiet zone.
pub(crate) fn qr_png(text: &str) -> Vec<u8> {
    let code = qrcode::QrCode::new(text.as_bytes()).expect("text fits a QR code");
    let modules = code.width();
    let colors = code.to_colors();
    let (scale, quiet) = (4usize, 4usize);
    let side = (modules + 2 * quiet) * scale;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (mx, my) = (i % modules + quiet, i / modules + quiet);
            for y in my * scale..(my + 1) * scale {
                pixels[y * side + mx * scale..y * side + (mx + 1) * scale].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("PNG header");
    writer.write_image_data(&pixels).expect("PNG data");
    writer.finish().expect("PNG end");
    out
}
