//! IAM policy documents, as far as the stand-in needs them to decide what a role session may do:
//! statements with `Effect` Allow or Deny, `Action`/`NotAction` with IAM's `*` and `?` wildcards
//! (case-insensitive, as IAM compares action names), and `Resource`/`NotResource` (ARNs with
//! wildcards, case-sensitive). It also holds the AWS managed policies the stand-in knows
//! (`ReadOnlyAccess`, in every partition). Evaluation follows IAM's logic for one policy set: an
//! explicit Deny wins, else an Allow allows, else the request is implicitly denied ("Policy
//! evaluation logic" in the IAM User Guide). It imports nothing from the crate: the account, the
//! STS and S3 modules build on it.

use serde_json::Value;

/// One IAM policy document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

/// Allow or Deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One statement. `not_action` / `not_resource` say the lists are IAM's `NotAction` /
/// `NotResource`: the statement matches what they do *not* name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub effect: Effect,
    pub actions: Vec<String>,
    pub not_action: bool,
    pub resources: Vec<String>,
    pub not_resource: bool,
}

/// Why a document is not a policy the stand-in can use.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PolicyError {
    /// Not JSON at all.
    InvalidJson,
    /// JSON, but not a valid identity (or session) policy; IAM's message.
    Malformed(&'static str),
    /// Valid IAM, but beyond what the stand-in evaluates (a `Condition`).
    Unsupported(&'static str),
}

/// IAM's messages for policies it cannot parse (MalformedPolicyDocument).
pub(crate) mod msg {
    pub const INVALID_JSON: &str = "This policy contains invalid Json";
    pub const SYNTAX: &str = "Syntax errors in policy.";
    pub const PRINCIPAL: &str = "Policy document should not specify a principal.";
    pub const VENDOR: &str =
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.";
    pub const CONDITION: &str =
        "The stand-in does not evaluate policy conditions (Condition); use Action and Resource only";
}

/// The outcome of evaluating a set of policies for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Some statement allows it and none denies it.
    Allow,
    /// A statement denies it explicitly.
    Deny,
    /// Nothing allows it (IAM's implicit deny).
    NotAllowed,
}

impl Policy {
    /// One Allow statement.
    pub fn allow(actions: &[&str], resources: &[&str]) -> Policy {
        Policy {
            statements: vec![Statement {
                effect: Effect::Allow,
                actions: actions.iter().map(|a| a.to_string()).collect(),
                not_action: false,
                resources: resources.iter().map(|r| r.to_string()).collect(),
                not_resource: false,
            }],
        }
    }

    /// Adds the statements of `other`.
    pub fn and(mut self, other: Policy) -> Policy {
        self.statements.extend(other.statements);
        self
    }

    /// Parses a policy document as IAM does for identity and session policies: an object with
    /// an optional `Version`, and `Statement` (one object or a list), each with `Effect`,
    /// `Action` or `NotAction`, `Resource` or `NotResource`, an optional `Sid`, and no
    /// `Principal` (identity policies name none).
    pub(crate) fn parse(text: &str) -> Result<Policy, PolicyError> {
        let doc: Value = serde_json::from_str(text).map_err(|_| PolicyError::InvalidJson)?;
        let Value::Object(doc) = doc else {
            return Err(PolicyError::Malformed(msg::SYNTAX));
        };
        for key in doc.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(PolicyError::Malformed(msg::SYNTAX));
            }
        }
        if let Some(v) = doc.get("Version") {
            if !matches!(v.as_str(), Some("2012-10-17" | "2008-10-17")) {
                return Err(PolicyError::Malformed(msg::SYNTAX));
            }
        }
        let statements = match doc.get("Statement") {
            Some(Value::Array(list)) if !list.is_empty() => list.iter().collect::<Vec<_>>(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => return Err(PolicyError::Malformed(msg::SYNTAX)),
        };
        let statements = statements
            .into_iter()
            .map(parse_statement)
            .collect::<Result<_, _>>()?;
        Ok(Policy { statements })
    }
}

fn parse_statement(value: &Value) -> Result<Statement, PolicyError> {
    let Value::Object(st) = value else {
        return Err(PolicyError::Malformed(msg::SYNTAX));
    };
    if st.contains_key("Principal") || st.contains_key("NotPrincipal") {
        return Err(PolicyError::Malformed(msg::PRINCIPAL));
    }
    for key in st.keys() {
        if !matches!(
            key.as_str(),
            "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource" | "Condition"
        ) {
            return Err(PolicyError::Malformed(msg::SYNTAX));
        }
    }
    let effect = match st.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err(PolicyError::Malformed(msg::SYNTAX)),
    };
    let (actions, not_action) = one_of(st, "Action", "NotAction")?;
    for action in &actions {
        // IAM: an action is `*` or `vendor:name` (the name may hold wildcards).
        if action != "*"
            && !action
                .split_once(':')
                .is_some_and(|(v, n)| !v.is_empty() && !n.is_empty())
        {
            return Err(PolicyError::Malformed(msg::VENDOR));
        }
    }
    let (resources, not_resource) = one_of(st, "Resource", "NotResource")?;
    if st.contains_key("Condition") {
        return Err(PolicyError::Unsupported(msg::CONDITION));
    }
    Ok(Statement {
        effect,
        actions,
        not_action,
        resources,
        not_resource,
    })
}

/// Exactly one of `name` and `not_name`, a string or a non-empty list of strings.
fn one_of(
    st: &serde_json::Map<String, Value>,
    name: &str,
    not_name: &str,
) -> Result<(Vec<String>, bool), PolicyError> {
    let (value, not) = match (st.get(name), st.get(not_name)) {
        (Some(v), None) => (v, false),
        (None, Some(v)) => (v, true),
        _ => return Err(PolicyError::Malformed(msg::SYNTAX)),
    };
    let list = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or(PolicyError::Malformed(msg::SYNTAX))?,
        _ => return Err(PolicyError::Malformed(msg::SYNTAX)),
    };
    Ok((list, not))
}

impl Statement {
    fn matches(&self, action: &str, resource: &str) -> bool {
        let action_named = self.actions.iter().any(|p| wildcard(p, action, true));
        let resource_named = self.resources.iter().any(|p| wildcard(p, resource, false));
        action_named != self.not_action && resource_named != self.not_resource
    }
}

/// IAM's evaluation of `policies` for `action` on `resource`: Deny wins, then Allow.
pub(crate) fn decide(policies: &[Policy], action: &str, resource: &str) -> Decision {
    let mut allowed = false;
    for st in policies.iter().flat_map(|p| &p.statements) {
        if st.matches(action, resource) {
            match st.effect {
                Effect::Deny => return Decision::Deny,
                Effect::Allow => allowed = true,
            }
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::NotAllowed
    }
}

/// IAM's wildcards: `*` any run of characters (none included), `?` any one character.
pub(crate) fn wildcard(pattern: &str, value: &str, case_insensitive: bool) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if case_insensitive {
            s.to_lowercase().chars().collect()
        } else {
            s.chars().collect()
        }
    };
    let (p, v) = (fold(pattern), fold(value));
    // Iterative matching with backtracking to the last `*`.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < v.len() {
        if i < p.len() && (p[i] == '?' || p[i] == v[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// The AWS managed policy `arn` names, if the stand-in knows it: `ReadOnlyAccess` in the
/// `aws`, `aws-cn` and `aws-us-gov` partitions.
pub(crate) fn managed_policy(arn: &str) -> Option<Policy> {
    let name = ["aws", "aws-cn", "aws-us-gov"]
        .iter()
        .find_map(|partition| arn.strip_prefix(&format!("arn:{partition}:iam::aws:policy/")))?;
    (name == "ReadOnlyAccess").then(read_only_access)
}

/// A part of AWS's `ReadOnlyAccess` (the real one lists hundreds of services' `Get*`, `List*`,
/// `Describe*`): the reads of the services the stand-in serves. S3 authorises HeadObject with
/// `s3:GetObject` and ListObjectsV2 with `s3:ListBucket`, so `s3:Get*` and `s3:List*` cover
/// every read the stand-in's S3 knows.
pub fn read_only_access() -> Policy {
    Policy::allow(
        &[
            "s3:Get*",
            "s3:List*",
            "s3:Describe*",
            "sts:GetCallerIdentity",
            "iam:Get*",
            "iam:List*",
            "iam:Generate*",
        ],
        &["*"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_follow_iam() {
        assert!(wildcard("s3:Get*", "s3:GetObject", true));
        assert!(wildcard("S3:get*", "s3:GetObject", true));
        assert!(!wildcard("s3:Get*", "s3:PutObject", true));
        assert!(wildcard("s3:?etObject", "s3:GetObject", true));
        assert!(wildcard("*", "anything", false));
        assert!(wildcard(
            "arn:aws:s3:::demo-*/*",
            "arn:aws:s3:::demo-logs/a/b",
            false
        ));
        assert!(!wildcard(
            "arn:aws:s3:::demo-*/*",
            "arn:aws:s3:::demo-logs",
            false
        ));
        assert!(!wildcard(
            "arn:aws:s3:::Demo-*",
            "arn:aws:s3:::demo-logs",
            false
        ));
        assert!(wildcard("a*b*c", "aXbYbZc", false));
    }

    #[test]
    fn deny_wins_over_allow() {
        let p = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":"s3:*","Resource":"*"},
                {"Effect":"Deny","Action":"s3:PutObject","Resource":"*"}]}"#,
        )
        .unwrap();
        let all = [p];
        assert_eq!(
            decide(&all, "s3:PutObject", "arn:aws:s3:::b/k"),
            Decision::Deny
        );
        assert_eq!(
            decide(&all, "s3:GetObject", "arn:aws:s3:::b/k"),
            Decision::Allow
        );
        assert_eq!(decide(&all, "iam:ListUsers", "*"), Decision::NotAllowed);
    }

    #[test]
    fn not_action_matches_what_it_does_not_name() {
        let p = Policy::parse(
            r#"{"Statement":{"Effect":"Allow","NotAction":"s3:Put*","Resource":"*"}}"#,
        )
        .unwrap();
        let all = [p];
        assert_eq!(decide(&all, "s3:GetObject", "x"), Decision::Allow);
        assert_eq!(decide(&all, "s3:PutObject", "x"), Decision::NotAllowed);
    }

    #[test]
    fn what_iam_refuses_is_refused() {
        assert_eq!(Policy::parse("{not json"), Err(PolicyError::InvalidJson));
        assert_eq!(
            Policy::parse("[]"),
            Err(PolicyError::Malformed(msg::SYNTAX))
        );
        assert_eq!(
            Policy::parse(r#"{"Statement":[{"Effect":"Maybe","Action":"s3:*","Resource":"*"}]}"#),
            Err(PolicyError::Malformed(msg::SYNTAX))
        );
        assert_eq!(
            Policy::parse(
                r#"{"Statement":[{"Effect":"Allow","Action":"PutObject","Resource":"*"}]}"#
            ),
            Err(PolicyError::Malformed(msg::VENDOR))
        );
        assert_eq!(
            Policy::parse(
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#
            ),
            Err(PolicyError::Malformed(msg::PRINCIPAL))
        );
        assert_eq!(
            Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}"#),
            Err(PolicyError::Malformed(msg::SYNTAX))
        );
    }

    #[test]
    fn read_only_access_exists_in_every_partition() {
        for p in ["aws", "aws-cn", "aws-us-gov"] {
            let arn = format!("arn:{p}:iam::aws:policy/ReadOnlyAccess");
            assert_eq!(managed_policy(&arn), Some(read_only_access()));
        }
        assert_eq!(
            managed_policy("arn:aws:iam::aws:policy/AdministratorAccess"),
            None
        );
        assert_eq!(
            managed_policy("arn:aws:iam::123456789012:policy/ReadOnlyAccess"),
            None
        );
    }
}
