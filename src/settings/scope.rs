//! Least privilege per command: what a role session may do beyond what the role allows
//! (nothing: session policies only narrow), and what it carries for attribute-based access
//! control and CloudTrail (session tags, a source identity).
//!
//! AssumeRole takes an inline session policy (`Policy`, at most 2,048 characters of plain
//! text, whitespace counted as written) and up to ten managed policy ARNs (`PolicyArns`); the
//! session may then do only what both the role's policies and the session policies allow.
//! GetSessionToken takes none, so only a role can be scoped. Tags (at most 50; keys 1–128 and
//! values 0–256 characters) and `SourceIdentity` (2–64 characters of `[\w+=,.@-]`, not
//! starting with `aws:`) are checked here as STS checks them, so a mistake costs no call and,
//! above all, no MFA code.
//!
//! Where each part comes from is kept beside it: STS's refusals (a malformed policy, a packed
//! size too large, an unknown ARN) name the option or profile key to fix.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::request::ScopeRequest;
use crate::files::{self, Links};
use crate::profile::{FileKind, Profile};
use crate::terminal::safe;

/// STS's limit on a session policy's plain text, in characters.
pub(crate) const MAX_POLICY_CHARS: usize = 2048;
/// STS's limit on `PolicyArns`.
pub(crate) const MAX_POLICY_ARNS: usize = 10;
/// STS's limit on session tags.
pub(crate) const MAX_TAGS: usize = 50;

/// The session policies of the selected profile's role: set only when one was asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scope {
    /// The inline session policy as written, and where it came from.
    pub(crate) policy: Option<(String, String)>,
    /// Managed policy ARNs (`--read-only`'s ReadOnlyAccess among them), in order, without
    /// repeats, each with where it came from.
    pub(crate) policy_arns: Vec<(String, String)>,
    /// `--read-only` (or `mfa_exec_read_only`): ReadOnlyAccess is among the ARNs.
    pub(crate) read_only: bool,
}

impl Scope {
    /// The options and keys the scope came from, for STS's refusals: `--policy, --read-only`.
    pub(crate) fn origins(&self) -> String {
        let mut origins: Vec<&str> = Vec::new();
        let all = self.policy.iter().chain(&self.policy_arns);
        for (_, from) in all {
            if !origins.contains(&from.as_str()) {
                origins.push(from);
            }
        }
        origins.join(", ")
    }

    /// How `cache list` and `list` name it: `read-only`, `policy`, `ReadOnlyAccess`.
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.policy.is_some() {
            parts.push("inline policy".to_string());
        }
        for (arn, _) in &self.policy_arns {
            let name = arn.rsplit('/').next().unwrap_or(arn);
            if self.read_only && name == "ReadOnlyAccess" && arn.contains(":iam::aws:policy/") {
                parts.push("read-only".to_string());
            } else {
                parts.push(name.to_string());
            }
        }
        parts.join("+")
    }

    /// What decides the credentials, for the cache key: the policy as written and the ARNs.
    pub(crate) fn key_parts(&self) -> Vec<String> {
        let mut parts = vec!["scope".to_string()];
        parts.push(
            self.policy
                .as_ref()
                .map(|(p, _)| p.clone())
                .unwrap_or_default(),
        );
        parts.extend(self.policy_arns.iter().map(|(a, _)| a.clone()));
        parts
    }
}

/// The scope of the selected profile's role: the command line's, else (part by part) the
/// profile's `mfa_exec_policy`, `mfa_exec_policy_arns` and `mfa_exec_read_only`. `role_arn`
/// gives `--read-only` its partition. None when nothing narrows the session.
pub(crate) fn resolve(
    asked: &ScopeRequest,
    profile: Profile<'_>,
    role_arn: &str,
    home: Option<&Path>,
) -> Result<Option<Scope>> {
    // Only a message or a scope's origin names the section: not built for every profile.
    let section = || format!("in [{}]", FileKind::Config.section(profile.name));
    let mut scope = Scope::default();
    match (&asked.policy, profile.get("mfa_exec_policy")) {
        (Some(value), _) => {
            let text = policy_text(value, "--policy", home)?;
            scope.policy = Some((check_policy(&text, "--policy")?, "--policy".into()));
        }
        (None, Some(value)) => {
            let from = format!("mfa_exec_policy {}", section());
            let text = policy_text(value, &from, home)?;
            scope.policy = Some((check_policy(&text, &from)?, from));
        }
        (None, None) => {}
    }
    let mut arns: Vec<(String, String)> = Vec::new();
    if asked.policy_arns.is_empty() {
        if let Some(list) = profile.get("mfa_exec_policy_arns") {
            let from = format!("mfa_exec_policy_arns {}", section());
            for arn in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                arns.push((arn.to_string(), from.clone()));
            }
        }
    } else {
        arns.extend(
            asked
                .policy_arns
                .iter()
                .map(|a| (a.clone(), "--policy-arn".to_string())),
        );
    }
    let read_only_key = profile.get("mfa_exec_read_only");
    let read_only = asked.read_only
        || match read_only_key {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => bail!(
                "mfa_exec_read_only = '{}' {} is not true or false; fix it",
                safe(v),
                section()
            ),
        };
    if read_only {
        let from = if asked.read_only {
            "--read-only".to_string()
        } else {
            format!("mfa_exec_read_only {}", section())
        };
        arns.push((read_only_arn(role_arn), from));
    }
    for (arn, from) in &arns {
        check_policy_arn(arn, from)?;
    }
    let mut unique: Vec<(String, String)> = Vec::new();
    for (arn, from) in arns {
        if !unique.iter().any(|(a, _)| *a == arn) {
            unique.push((arn, from));
        }
    }
    if unique.len() > MAX_POLICY_ARNS {
        bail!(
            "{} managed session policies ({}): STS takes at most {MAX_POLICY_ARNS}; pass fewer --policy-arn",
            unique.len(),
            Scope {
                policy_arns: unique,
                ..Scope::default()
            }
            .origins()
        );
    }
    scope.policy_arns = unique;
    scope.read_only = read_only;
    Ok((scope.policy.is_some() || !scope.policy_arns.is_empty()).then_some(scope))
}

/// The profile keys that scope a role session, in the order a refusal names them.
const PROFILE_KEYS: [&str; 6] = [
    "mfa_exec_read_only",
    "mfa_exec_policy",
    "mfa_exec_policy_arns",
    "session_tags",
    "transitive_session_tags",
    "source_identity",
];

/// GetSessionToken takes no session policy, tag or source identity: asking for one without a
/// role would hand the command the whole user, unscoped. Refused before any call, naming the
/// flag (or else the profile key) that asked.
pub(crate) fn refuse_without_role(asked: &ScopeRequest, profile: Profile<'_>) -> Result<()> {
    let name = profile.name;
    let from_flag = [
        (asked.read_only, "--read-only"),
        (asked.policy.is_some(), "--policy"),
        (!asked.policy_arns.is_empty(), "--policy-arn"),
        (!asked.tags.is_empty(), "--tag"),
        (asked.source_identity.is_some(), "--source-identity"),
    ]
    .into_iter()
    .find_map(|(set, flag)| set.then(|| flag.to_string()));
    let from_key = PROFILE_KEYS
        .into_iter()
        .find(|k| profile.get(k).is_some())
        .map(|k| format!("{k} in [{}]", FileKind::Config.section(name)));
    let Some(what) = from_flag.or(from_key) else {
        return Ok(());
    };
    bail!(
        "{what} scopes a role session, and profile '{name}' has no role: GetSessionToken takes no session policy, tag or source identity; use a role profile (mfa-exec list shows them), or add role_arn to this one"
    )
}

/// AWS managed `ReadOnlyAccess`, in the partition of the role (`arn:aws-cn:…` for a role in
/// China): a policy ARN of another partition does not exist there.
pub(crate) fn read_only_arn(role_arn: &str) -> String {
    let partition = role_arn
        .split(':')
        .nth(1)
        .filter(|p| !p.is_empty())
        .unwrap_or("aws");
    format!("arn:{partition}:iam::aws:policy/ReadOnlyAccess")
}

/// The largest policy file or stdin read: far more than any policy STS takes, small enough
/// that a wrong path (a log file, /dev/zero) is refused at once.
const MAX_POLICY_FILE: u64 = 64 * 1024;

/// A policy as given: the JSON itself (it starts with `{`), `-` for standard input (command
/// line only), or a file (`~/` is the home directory, for profile keys).
fn policy_text(value: &str, from: &str, home: Option<&Path>) -> Result<String> {
    if value.trim_start().starts_with('{') {
        return Ok(value.to_string());
    }
    if value == "-" && from == "--policy" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_POLICY_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| anyhow::anyhow!("--policy -: cannot read standard input ({e})"))?;
        if bytes.len() as u64 > MAX_POLICY_FILE {
            bail!("--policy -: standard input is larger than 64 KB; a session policy is at most {MAX_POLICY_CHARS} characters");
        }
        return String::from_utf8(bytes).map_err(|_| {
            anyhow::anyhow!("--policy -: standard input is not UTF-8 text; a policy is JSON")
        });
    }
    let path = match (value.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(value),
    };
    let opened = files::open_regular(&path, Links::Follow, MAX_POLICY_FILE)
        .and_then(|f| {
            f.map(|(file, _)| files::read_bounded(file, &path, MAX_POLICY_FILE))
                .transpose()
        })
        .map_err(|e| anyhow::anyhow!("{from}: {e}"))?;
    let Some(bytes) = opened else {
        bail!(
            "{from}: {} does not exist; give a policy file, - for standard input, or the JSON itself",
            path.display()
        );
    };
    String::from_utf8(bytes).map_err(|_| {
        anyhow::anyhow!(
            "{from}: {} is not UTF-8 text; a policy is JSON",
            path.display()
        )
    })
}

/// A session policy as STS checks it before anything else: JSON, an object with `Statement`,
/// at most 2,048 characters as written.
pub(crate) fn check_policy(text: &str, from: &str) -> Result<String> {
    let chars = text.chars().count();
    if chars > MAX_POLICY_CHARS {
        bail!(
            "the session policy from {from} is {chars} characters; STS takes at most {MAX_POLICY_CHARS} (whitespace counts): shorten it, or use managed policies (--policy-arn)"
        );
    }
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!("the session policy from {from} is not valid JSON ({e}); fix it")
    })?;
    let statement = doc.as_object().and_then(|o| o.get("Statement"));
    match statement {
        Some(serde_json::Value::Array(_)) | Some(serde_json::Value::Object(_)) => {
            Ok(text.to_string())
        }
        _ => bail!(
            "the session policy from {from} has no Statement: a policy is {{\"Version\": \"2012-10-17\", \"Statement\": [...]}}"
        ),
    }
}

/// An IAM policy ARN: `arn:PARTITION:iam::ACCOUNT-or-aws:policy/[PATH/]NAME`.
pub(crate) fn check_policy_arn(arn: &str, from: &str) -> Result<()> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && matches!(parts[1], "aws" | "aws-cn" | "aws-us-gov")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && (parts[4] == "aws"
            || (parts[4].len() == 12 && parts[4].bytes().all(|b| b.is_ascii_digit())))
        && parts[5].strip_prefix("policy/").is_some_and(|name| {
            !name.is_empty()
                && !name.ends_with('/')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_/".contains(c))
        })
        && (20..=2048).contains(&arn.len());
    if ok {
        Ok(())
    } else {
        bail!(
            "{from} '{}' is not an IAM policy ARN (arn:aws:iam::aws:policy/ReadOnlyAccess, arn:aws:iam::123456789012:policy/NAME)",
            safe(arn)
        )
    }
}

/// A role's session tags, transitive keys and source identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tagging {
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) transitive: Vec<String>,
    pub(crate) source_identity: Option<String>,
}

impl Tagging {
    pub(crate) fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.transitive.is_empty() && self.source_identity.is_none()
    }

    /// What decides the credentials, for the cache key: every tag whole, in order.
    pub(crate) fn key_parts(&self) -> Vec<String> {
        let mut parts = vec!["tags".to_string()];
        for (k, v) in &self.tags {
            parts.push(k.clone());
            parts.push(v.clone());
        }
        parts.push("transitive".to_string());
        parts.extend(self.transitive.iter().cloned());
        parts.push("source identity".to_string());
        parts.push(self.source_identity.clone().unwrap_or_default());
        parts
    }

    /// For `cache list` and `list`: `tags k=v,k2=v2; transitive k; source identity x`, long
    /// values cut short and at most five tags named (a table line, not a dump).
    pub(crate) fn describe(&self) -> String {
        const SHOWN: usize = 5;
        const VALUE: usize = 24;
        let mut parts = Vec::new();
        if !self.tags.is_empty() {
            let mut tags: Vec<String> = self
                .tags
                .iter()
                .take(SHOWN)
                .map(|(k, v)| match v.char_indices().nth(VALUE) {
                    Some((cut, _)) => format!("{k}={}…", &v[..cut]),
                    None => format!("{k}={v}"),
                })
                .collect();
            if self.tags.len() > SHOWN {
                tags.push(format!("+{} more", self.tags.len() - SHOWN));
            }
            parts.push(format!("tags {}", tags.join(",")));
        }
        if !self.transitive.is_empty() {
            parts.push(format!("transitive {}", self.transitive.join(",")));
        }
        if let Some(id) = &self.source_identity {
            parts.push(format!("source identity {id}"));
        }
        parts.join("; ")
    }
}

/// A profile's `session_tags`, `transitive_session_tags` and `source_identity`, read as
/// aws-vault reads them (`k1=v1,k2=v2`, `k1,k2`), with the command line's `--tag K=V` and
/// `--source-identity` on top for the selected profile (a key given again replaces the
/// profile's value).
pub(crate) fn tagging(
    profile: Profile<'_>,
    cli_tags: &[String],
    cli_source_identity: Option<&str>,
) -> Result<Tagging> {
    // Only a message or a scope's origin names the section: not built for every profile.
    let section = || format!("in [{}]", FileKind::Config.section(profile.name));
    let mut tags: Vec<(String, String)> = Vec::new();
    let mut put = |key: &str, value: &str, from: &str| -> Result<()> {
        check_tag(key, value, from)?;
        tags.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        tags.push((key.to_string(), value.to_string()));
        Ok(())
    };
    if let Some(list) = profile.get("session_tags") {
        let from = format!("session_tags {}", section());
        for pair in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                bail!(
                    "{from}: '{}' is not KEY=VALUE; write session_tags = key1=value1,key2=value2",
                    safe(pair)
                );
            };
            put(k.trim(), v.trim(), &from)?;
        }
    }
    for pair in cli_tags {
        let Some((k, v)) = pair.split_once('=') else {
            bail!(
                "--tag '{}' is not KEY=VALUE; write --tag team=platform",
                safe(pair)
            );
        };
        put(k, v, "--tag")?;
    }
    if tags.len() > MAX_TAGS {
        bail!(
            "{} session tags: STS takes at most {MAX_TAGS}; drop some --tag or session_tags",
            tags.len()
        );
    }
    let mut transitive = Vec::new();
    if let Some(list) = profile.get("transitive_session_tags") {
        for key in list.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            if !tags.iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
                bail!(
                    "transitive_session_tags {} names '{}', which is not one of the session tags; add it to session_tags (or --tag)",
                    section(),
                    safe(key)
                );
            }
            transitive.push(key.to_string());
        }
    }
    let source_identity = match (cli_source_identity, profile.get("source_identity")) {
        (Some(id), _) => Some(check_source_identity(id, "--source-identity")?),
        (None, Some(id)) => Some(check_source_identity(
            id,
            &format!("source_identity {}", section()),
        )?),
        (None, None) => None,
    };
    Ok(Tagging {
        tags,
        transitive,
        source_identity,
    })
}

/// STS's tag rules: key 1–128, value 0–256 characters, of letters, digits, spaces and
/// `_ . : / = + - @`; keys starting with `aws:` are AWS's own.
fn check_tag(key: &str, value: &str, from: &str) -> Result<()> {
    let allowed = |s: &str| {
        s.chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
    };
    if key.is_empty() || key.chars().count() > 128 || !allowed(key) {
        bail!(
            "{from}: tag key '{}' is not valid: 1–128 letters, digits, spaces and _ . : / = + - @",
            safe(key)
        );
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        bail!(
            "{from}: tag key '{}' starts with aws:, which is AWS's own",
            safe(key)
        );
    }
    if value.chars().count() > 256 || !allowed(value) {
        bail!(
            "{from}: the value of tag '{}' is not valid: at most 256 letters, digits, spaces and _ . : / = + - @",
            safe(key)
        );
    }
    Ok(())
}

/// STS's SourceIdentity: 2–64 characters of `[\w+=,.@-]`, not starting with `aws:`.
fn check_source_identity(id: &str, from: &str) -> Result<String> {
    let ok = (2..=64).contains(&id.chars().count())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
        && !id.to_ascii_lowercase().starts_with("aws:");
    if ok {
        Ok(id.to_string())
    } else {
        bail!(
            "{from} '{}' is not a source identity: 2–64 letters, digits and _ + = , . @ -, not starting with aws:",
            safe(id)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_is_in_the_partition_of_the_role() {
        assert_eq!(
            read_only_arn("arn:aws:iam::123456789012:role/x"),
            "arn:aws:iam::aws:policy/ReadOnlyAccess"
        );
        assert_eq!(
            read_only_arn("arn:aws-cn:iam::123456789012:role/x"),
            "arn:aws-cn:iam::aws:policy/ReadOnlyAccess"
        );
        assert_eq!(
            read_only_arn("arn:aws-us-gov:iam::123456789012:role/x"),
            "arn:aws-us-gov:iam::aws:policy/ReadOnlyAccess"
        );
    }

    #[test]
    fn a_policy_is_json_with_a_statement_and_at_most_2048_characters() {
        let ok = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}]}"#;
        assert!(check_policy(ok, "--policy").is_ok());
        let err = check_policy("{not json", "--policy")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid JSON"), "{err}");
        let err = check_policy(r#"{"Version":"2012-10-17"}"#, "--policy")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no Statement"), "{err}");
        let padded = format!("{ok}{}", " ".repeat(2049 - ok.len()));
        let err = check_policy(&padded, "--policy").unwrap_err().to_string();
        assert!(err.contains("2049 characters"), "{err}");
        assert!(check_policy(&padded[..2048], "--policy").is_ok());
    }

    #[test]
    fn policy_arns_are_iam_policy_arns() {
        for good in [
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
            "arn:aws:iam::123456789012:policy/team/dev-read",
            "arn:aws-cn:iam::aws:policy/ReadOnlyAccess",
        ] {
            assert!(check_policy_arn(good, "--policy-arn").is_ok(), "{good}");
        }
        for bad in [
            "ReadOnlyAccess",
            "arn:aws:iam::aws:role/x",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::12345:policy/x",
            "arn:aws:iam::aws:policy/",
        ] {
            assert!(check_policy_arn(bad, "--policy-arn").is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_and_source_identity_follow_sts() {
        assert!(check_tag("team", "platform", "--tag").is_ok());
        assert!(check_tag("cost center", "", "--tag").is_ok());
        assert!(check_tag("", "x", "--tag").is_err());
        assert!(check_tag(&"k".repeat(129), "x", "--tag").is_err());
        assert!(check_tag("k", &"v".repeat(257), "--tag").is_err());
        assert!(check_tag("aws:x", "v", "--tag").is_err());
        assert!(check_tag("k", "a;b", "--tag").is_err());
        assert!(check_source_identity("alice@example.com", "--source-identity").is_ok());
        for bad in ["a", "aws:me", "has space", &"x".repeat(65)] {
            assert!(
                check_source_identity(bad, "--source-identity").is_err(),
                "{bad}"
            );
        }
    }
}
