//! What AssumeRole's optional session parameters do, as STS does it: `Policy` and
//! `PolicyArns` (session policies: the session may do only what both they and the role's
//! permissions allow), `Tags` and `TransitiveTagKeys` (session tags, some passed on along a role
//! chain and never overridden there) and `SourceIdentity` (set once, never changed down a
//! chain). [`read`] checks them against STS's service model; [`new_session`] applies STS's rules
//! between them, the calling session and the role's trust policy, and makes the [`Session`] the
//! new credentials carry. Sources: the STS API reference (AssumeRole), the IAM User Guide
//! ("Session policies", "Passing session tags in AWS STS", "Monitor and control actions taken
//! with assumed roles") and STS's answers as AWS recorded them.

use crate::account::Role;
use crate::errors::{
    access_denied, check_chars, check_count, check_length, check_pattern, err, msg, null_error,
    StsError,
};
use crate::policy::{managed_policy, Policy, PolicyError};
use crate::request::{members, param};
use crate::state::{AssumedRole, Session};

/// STS takes at most 10 managed session policies (`PolicyArns`).
const MAX_POLICY_ARNS: usize = 10;
/// At most 50 session tags (the service model's `tagListType`).
const MAX_TAGS: usize = 50;
/// "The plaintext that you use for both inline and managed session policies can't exceed 2,048
/// characters" (STS API reference): the policy part of the packed size.
const POLICY_BUDGET: usize = 2048;
/// The tag part of the packed size. AWS does not publish its packed format; the stand-in counts
/// the tags' plain text against this many characters, so that a few tags take a few percent and
/// 50 long ones overflow, as they do on AWS.
const TAG_BUDGET: usize = 4096;

/// The session parameters of one AssumeRole request, as sent.
#[derive(Debug, Default)]
pub(crate) struct Requested {
    pub(crate) policy: Option<String>,
    pub(crate) policy_arns: Vec<String>,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) transitive_tag_keys: Vec<String>,
    pub(crate) source_identity: Option<String>,
}

/// Reads the session parameters and checks them against STS's service model (lengths, patterns,
/// list sizes), adding its messages to `errors`.
pub(crate) fn read(params: &[(String, String)], errors: &mut Vec<String>) -> Requested {
    let policy = param(params, "Policy").map(str::to_string);
    if let Some(p) = &policy {
        check_length("policy", p, 1, 2048, errors);
        check_chars(
            "policy",
            p,
            r"[\u0009\u000A\u000D\u0020-\u00FF]+",
            |c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FF}'),
            errors,
        );
    }

    let policy_arns: Vec<String> = members(params, "PolicyArns", ".arn")
        .into_iter()
        .map(|(_, arn)| arn)
        .collect();
    for (i, arn) in policy_arns.iter().enumerate() {
        check_length(
            &format!("policyArns.{}.member.arn", i + 1),
            arn,
            20,
            2048,
            errors,
        );
    }
    check_count("policyArns", &policy_arns, MAX_POLICY_ARNS, errors);

    let keys = members(params, "Tags", ".Key");
    let values = members(params, "Tags", ".Value");
    let mut numbers: Vec<u32> = keys.iter().chain(&values).map(|(n, _)| *n).collect();
    numbers.sort_unstable();
    numbers.dedup();
    let mut tags = Vec::new();
    for (i, n) in numbers.iter().enumerate() {
        let member = format!("tags.{}.member", i + 1);
        let key = keys.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let value = values.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        match &key {
            None => errors.push(null_error(&format!("{member}.key"))),
            Some(k) => {
                check_length(&format!("{member}.key"), k, 1, 128, errors);
                check_chars(
                    &format!("{member}.key"),
                    k,
                    TAG_PATTERN_KEY,
                    tag_char,
                    errors,
                );
            }
        }
        match &value {
            None => errors.push(null_error(&format!("{member}.value"))),
            Some(v) => {
                check_length(&format!("{member}.value"), v, 0, 256, errors);
                check_chars(
                    &format!("{member}.value"),
                    v,
                    TAG_PATTERN_VALUE,
                    tag_char,
                    errors,
                );
            }
        }
        tags.push((key.unwrap_or_default(), value.unwrap_or_default()));
    }
    let tag_keys: Vec<String> = tags.iter().map(|(k, _)| k.clone()).collect();
    check_count("tags", &tag_keys, MAX_TAGS, errors);

    let transitive_tag_keys: Vec<String> = members(params, "TransitiveTagKeys", "")
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    for (i, k) in transitive_tag_keys.iter().enumerate() {
        let member = format!("transitiveTagKeys.{}.member", i + 1);
        check_length(&member, k, 1, 128, errors);
        check_chars(&member, k, TAG_PATTERN_KEY, tag_char, errors);
    }
    check_count("transitiveTagKeys", &transitive_tag_keys, MAX_TAGS, errors);

    // `[\w+=,.@-]*`, 2–64: the colon is not allowed, so neither is a value starting `aws:`.
    let source_identity = param(params, "SourceIdentity").map(str::to_string);
    if let Some(s) = &source_identity {
        check_length("sourceIdentity", s, 2, 64, errors);
        check_pattern("sourceIdentity", s, r"[\w+=,.@-]*", "+=,.@-", errors);
    }

    Requested {
        policy,
        policy_arns,
        tags,
        transitive_tag_keys,
        source_identity,
    }
}

const TAG_PATTERN_KEY: &str = r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+";
const TAG_PATTERN_VALUE: &str = r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*";

/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]`: letters, separators (spaces, not tabs or newlines), numbers and
/// `_.:/=+-@`.
fn tag_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || (c.is_whitespace() && !c.is_control())
        || "_.:/=+-@".contains(c)
}

impl Requested {
    /// The request as [`crate::StandIn::assumed_roles`] shows it.
    pub(crate) fn record(&self, role_arn: &str, session_name: &str) -> AssumedRole {
        AssumedRole {
            role_arn: role_arn.to_string(),
            session_name: session_name.to_string(),
            policy: self.policy.clone(),
            policy_arns: self.policy_arns.clone(),
            tags: self.tags.clone(),
            transitive_tag_keys: self.transitive_tag_keys.clone(),
            source_identity: self.source_identity.clone(),
            error: None,
        }
    }
}

/// The session AssumeRole of `role` starts for a caller whose own session (if it signed with one)
/// is `calling`, and the `PackedPolicySize` to answer with (when session policies or tags are
/// in play). `caller_arn` names the caller in AccessDenied messages.
pub(crate) fn new_session(
    requested: &Requested,
    calling: Option<&Session>,
    role: &Role,
    caller_arn: &str,
) -> Result<(Session, Option<u32>), StsError> {
    let not_authorized = |action: &str| {
        access_denied(format!(
            "User: {caller_arn} is not authorized to perform: {action} on resource: {}",
            role.arn
        ))
    };

    // Transitive tags of the calling session pass on (IAM User Guide, "Chaining roles with
    // session tags"); the others stay with it.
    let inherited: Vec<(String, String)> = calling
        .map(|s| {
            s.tags
                .iter()
                .filter(|(k, _)| has_key(&s.transitive_tag_keys, k))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let inherited_keys: Vec<String> = inherited.iter().map(|(k, _)| k.clone()).collect();

    // Tags (passed or inherited) need sts:TagSession in the role's trust policy; a source
    // identity (set or inherited) needs sts:SetSourceIdentity, in every role of a chain.
    if (!requested.tags.is_empty() || !inherited.is_empty()) && !role.allow_tag_session {
        return Err(not_authorized("sts:TagSession"));
    }
    let inherited_identity = calling.and_then(|s| s.source_identity.clone());
    let source_identity = match (&inherited_identity, &requested.source_identity) {
        // Once set, a source identity cannot be changed for the rest of the chain.
        (Some(had), Some(asked)) if had != asked => {
            return Err(not_authorized("sts:SetSourceIdentity"))
        }
        (had, asked) => had.clone().or_else(|| asked.clone()),
    };
    if source_identity.is_some() && !role.allow_source_identity {
        return Err(not_authorized("sts:SetSourceIdentity"));
    }

    // Tag keys compare case-insensitively: no two alike, every transitive key among the tags,
    // and none overriding a transitive tag of the calling session.
    let keys: Vec<String> = requested.tags.iter().map(|(k, _)| k.clone()).collect();
    for (i, k) in keys.iter().enumerate() {
        if has_key(&keys[..i], k) {
            return Err(invalid_parameter(msg::DUPLICATE_TAG_KEYS));
        }
    }
    if requested
        .transitive_tag_keys
        .iter()
        .any(|t| !has_key(&keys, t))
    {
        return Err(invalid_parameter(msg::TRANSITIVE_NOT_IN_TAGS));
    }
    if keys.iter().any(|k| has_key(&inherited_keys, k)) {
        return Err(invalid_parameter(msg::TRANSITIVE_CONFLICT));
    }

    // Session policies: the inline one must be a policy, each ARN a managed policy STS knows.
    let mut scope = Vec::new();
    if let Some(text) = &requested.policy {
        scope.push(Policy::parse(text).map_err(|e| match e {
            PolicyError::InvalidJson => malformed(crate::policy::msg::INVALID_JSON.to_string()),
            PolicyError::Malformed(m) => malformed(m.to_string()),
            PolicyError::Unsupported(m) => err(501, "NotImplemented", m),
        })?);
    }
    for arn in &requested.policy_arns {
        let policy = managed_policy(arn).ok_or_else(|| {
            malformed(format!("Policy {arn} does not exist or is not attachable."))
        })?;
        scope.push(policy);
    }

    let tags: Vec<(String, String)> = inherited
        .into_iter()
        .chain(requested.tags.clone())
        .collect();
    let mut transitive_tag_keys = inherited_keys;
    transitive_tag_keys.extend(requested.transitive_tag_keys.iter().cloned());

    // The packed size (a percentage of STS's limit): policies and tags are packed apart.
    let policy_chars = requested.policy.as_deref().map_or(0, |p| p.chars().count())
        + requested
            .policy_arns
            .iter()
            .map(|a| a.chars().count())
            .sum::<usize>();
    let tag_chars: usize = tags
        .iter()
        .map(|(k, v)| k.chars().count() + v.chars().count())
        .sum();
    let policy_pct = percent(policy_chars, POLICY_BUDGET);
    let tag_pct = percent(tag_chars, TAG_BUDGET);
    if policy_pct > 100 {
        return Err(too_large(format!(
            "Packed policy consumes {policy_pct}% of allotted space, please use smaller policy."
        )));
    }
    if tag_pct > 100 {
        return Err(too_large(format!(
            "Packed size of session tags consumes {tag_pct}% of allotted space."
        )));
    }
    let in_play =
        requested.policy.is_some() || !requested.policy_arns.is_empty() || !tags.is_empty();
    let packed = in_play.then_some(policy_pct.max(tag_pct));

    let session = Session {
        policy: requested.policy.clone(),
        policy_arns: requested.policy_arns.clone(),
        tags,
        transitive_tag_keys,
        source_identity,
        scope: (requested.policy.is_some() || !requested.policy_arns.is_empty()).then_some(scope),
    };
    Ok((session, packed))
}

/// Whether `keys` holds `key`, compared as STS compares tag keys (case-insensitively).
fn has_key(keys: &[String], key: &str) -> bool {
    keys.iter().any(|k| k.to_lowercase() == key.to_lowercase())
}

/// `part` of `whole` in whole percent, rounded up (as STS's PackedPolicySize).
fn percent(part: usize, whole: usize) -> u32 {
    (part * 100).div_ceil(whole) as u32
}

fn invalid_parameter(message: &str) -> StsError {
    err(400, "InvalidParameterValue", message)
}

fn malformed(message: String) -> StsError {
    err(400, "MalformedPolicyDocument", message)
}

fn too_large(message: String) -> StsError {
    err(400, "PackedPolicyTooLarge", message)
}
