//! The account the stand-in plays: its IAM users (long-term keys, an MFA device's TOTP seed),
//! its roles (the parts of a trust policy that matter to mfa-exec: who is trusted, whether MFA is
//! required, an external id, the longest session, whether session tags and a source identity may
//! be set; and the role's permission policies) and the demo account every test and the demo
//! start from.

use crate::client::Keys;
use crate::policy::{read_only_access, Policy};

/// carol's keys: a demo user with no MFA device yet.
pub const CAROL_KEY: &str = "AKIACAROLEXAMPLE7Q2Z";
pub const CAROL_SECRET: &str = "Ca7oLbPxRfiCYzK7MDEN/wJalrXUtnEXAMPLEKEY";

/// The role whose credentials the instance metadata stand-in ([`crate::Imds`]) hands out.
pub const INSTANCE_ROLE: &str = "instance";
/// The role AssumeRoleWithWebIdentity assumes with [`WEB_IDENTITY_TOKEN`].
pub const WEB_IDENTITY_ROLE: &str = "ci";
/// The only web identity token the demo account's `ci` role trusts.
pub const WEB_IDENTITY_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.standin-ci-job.c2lnbmF0dXJl";

/// The account every demo principal lives in.
pub const ACCOUNT: &str = "123456789012";

/// An IAM user with long-term keys and (optionally) one virtual MFA device.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub mfa_serial: Option<String>,
    pub totp_seed_base32: String,
}

impl User {
    /// `arn:aws:iam::ACCOUNT:user/NAME`
    pub fn arn(&self) -> String {
        user_arn(&self.name)
    }

    /// The user's long-term keys, for signing.
    pub fn keys(&self) -> Keys {
        Keys::new(&self.access_key_id, &self.secret_access_key, None)
    }
}

/// An IAM role: the parts of its trust policy the stand-in models, and its permissions.
#[derive(Clone, Debug, Default)]
pub struct Role {
    pub name: String,
    pub arn: String,
    pub require_mfa: bool,
    pub max_session_duration: u64,
    pub external_id: Option<String>,
    /// User names the role trusts (their keys and every session they started); empty trusts
    /// no user.
    pub trusted_users: Vec<String>,
    /// Role names whose sessions the role trusts, whoever started them: the hub of a
    /// multi-account chain, an instance's role.
    pub trusted_roles: Vec<String>,
    /// The web identity token the role trusts for AssumeRoleWithWebIdentity (the stand-in's
    /// stand-in for an OIDC provider and the trust policy's conditions).
    pub web_identity_token: Option<String>,
    /// The trust policy allows `sts:TagSession`: AssumeRole may pass session tags (or carry
    /// transitive ones along a chain). Without it STS refuses tags with AccessDenied.
    pub allow_tag_session: bool,
    /// The trust policy allows `sts:SetSourceIdentity`: AssumeRole may set a source identity
    /// (or carry one along a chain).
    pub allow_source_identity: bool,
    /// The role's permission (identity) policies: what its sessions may do at most.
    pub permissions: Vec<Policy>,
}

/// What the stand-in serves: the account's users and roles, and optionally a fixed lifetime for
/// the credentials it issues.
#[derive(Clone, Debug)]
pub struct Config {
    pub users: Vec<User>,
    pub roles: Vec<Role>,
    /// If `Some(n)`: every issued credential expires `n` seconds after issue, whatever
    /// `DurationSeconds` says (`Expiration` reflects it).
    pub lifetime_override: Option<u64>,
}

impl Config {
    /// The demo account: users alice and bob, each with a virtual MFA device, carol without
    /// one, and the roles `s3-reader`, `auditor`, `partner`, `open`, `locked`, `hub`, `target`
    /// (trusts only `hub`), `instance` (the instance metadata stand-in's) and `ci` (web
    /// identity). Their permissions are in the README's table.
    pub fn demo() -> Config {
        let user = |name: &str, key: &str, secret: &str, seed: &str| User {
            name: name.to_string(),
            access_key_id: key.to_string(),
            secret_access_key: secret.to_string(),
            mfa_serial: Some(format!("arn:aws:iam::{ACCOUNT}:mfa/{name}")),
            totp_seed_base32: seed.to_string(),
        };
        let role = |name: &str, require_mfa: bool, max: u64, external_id: Option<&str>| Role {
            name: name.to_string(),
            arn: format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            require_mfa,
            max_session_duration: max,
            external_id: external_id.map(str::to_string),
            trusted_users: vec!["alice".to_string(), "bob".to_string()],
            trusted_roles: Vec::new(),
            web_identity_token: None,
            allow_tag_session: false,
            allow_source_identity: false,
            permissions: vec![s3_read()],
        };
        // Roles whose trust policy also allows sts:TagSession and sts:SetSourceIdentity: those
        // mfa-exec scopes per command (and the chain through hub to target).
        let tagging = |mut r: Role| {
            r.allow_tag_session = true;
            r.allow_source_identity = true;
            r
        };
        let s3_reader = tagging(role("s3-reader", true, 43200, None));
        let mut auditor = role("auditor", true, 3600, None);
        auditor.permissions = vec![read_only_access()];
        let mut partner = role("partner", true, 3600, Some("partner-ext-id"));
        partner.permissions = vec![Policy::allow(&["s3:ListAllMyBuckets"], &["*"])
            .and(Policy::allow(
                &["s3:ListBucket"],
                &["arn:aws:s3:::demo-reports"],
            ))
            .and(Policy::allow(
                &["s3:GetObject"],
                &["arn:aws:s3:::demo-reports/*"],
            ))];
        // The one role that may write: everything in S3 on the demo buckets.
        let mut open = tagging(role("open", false, 3600, None));
        open.permissions =
            vec![
                Policy::allow(&["s3:ListAllMyBuckets"], &["*"]).and(Policy::allow(
                    &["s3:*"],
                    &["arn:aws:s3:::demo-*", "arn:aws:s3:::demo-*/*"],
                )),
            ];
        let mut locked = role("locked", false, 3600, None);
        locked.trusted_users.clear();
        locked.permissions.clear();
        // A multi-account chain: `hub` trusts the users (and the instance's and the web
        // identity's roles), `target` trusts only sessions of `hub`; both want MFA.
        let mut hub = tagging(role("hub", true, 43200, None));
        hub.trusted_roles = vec![INSTANCE_ROLE.to_string(), WEB_IDENTITY_ROLE.to_string()];
        let mut target = tagging(role("target", true, 43200, None));
        target.trusted_users.clear();
        target.trusted_roles = vec!["hub".to_string()];
        // What an EC2 instance's profile and a CI job's OIDC token get (no MFA, no user).
        let mut instance = role(INSTANCE_ROLE, false, 3600, None);
        instance.trusted_users.clear();
        let mut web = role(WEB_IDENTITY_ROLE, false, 3600, None);
        web.trusted_users.clear();
        web.web_identity_token = Some(WEB_IDENTITY_TOKEN.to_string());
        Config {
            users: vec![
                user(
                    "alice",
                    "AKIAIOSFODNN7EXAMPLE",
                    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                    "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                ),
                user(
                    "bob",
                    "AKIAI44QH8DHBEXAMPLE",
                    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
                    "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU",
                ),
                // Where every new user starts: keys, no MFA device (`device add` registers one).
                User {
                    name: "carol".to_string(),
                    access_key_id: CAROL_KEY.to_string(),
                    secret_access_key: CAROL_SECRET.to_string(),
                    mfa_serial: None,
                    totp_seed_base32: String::new(),
                },
            ],
            roles: vec![
                s3_reader, auditor, partner, open, locked, hub, target, instance, web,
            ],
            lifetime_override: None,
        }
    }

    /// The user called `name`.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The role called `name`.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }
}

/// Reading S3: list the buckets, list and get the objects of any bucket.
fn s3_read() -> Policy {
    Policy::allow(
        &["s3:ListAllMyBuckets", "s3:ListBucket", "s3:GetObject"],
        &["*"],
    )
}

/// `arn:aws:iam::ACCOUNT:user/NAME`
pub(crate) fn user_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/{name}")
}

/// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`, the ARN a role session acts as.
pub(crate) fn assumed_role_arn(role: &str, session: &str) -> String {
    format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}")
}
