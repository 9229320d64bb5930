//! What the account holds while the stand-in serves: its MFA devices (the configured users' and
//! those created through IAM since), its users' access keys (the configured ones and those
//! created through IAM since, with their status and when IAM starts accepting them), the temporary credentials it has issued (with what a role
//! session carries: session policies, tags, source identity), the TOTP codes already used, the
//! S3 objects put, the AssumeRole calls as received, and the request counts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::account::Config;
use crate::policy::Policy;

/// Where temporary credentials came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// From GetSessionToken.
    Session,
    /// From AssumeRole.
    Role,
}

/// Temporary credentials the stand-in issued (keyed by their access key id in [`State`]).
#[derive(Clone, Debug)]
pub(crate) struct Temp {
    pub(crate) secret: String,
    pub(crate) token: String,
    pub(crate) expires: SystemTime,
    pub(crate) kind: Kind,
    /// Whether they carry MFA (`aws:MultiFactorAuthPresent`): issued with a code, or a role
    /// assumed with credentials that carried it.
    pub(crate) mfa: bool,
    /// The IAM user at the root of the chain.
    pub(crate) user: String,
    /// For role credentials: role name, session name.
    pub(crate) role: Option<(String, String)>,
    /// AssumeRole signed by temporary credentials (role chaining): the federation endpoint
    /// then takes no SessionDuration.
    pub(crate) chained: bool,
    /// AssumeRole called with DurationSeconds: the federation endpoint refuses such a session
    /// unless long-term keys assumed it.
    pub(crate) duration_given: bool,
    /// What a role session carries besides its role (empty for other credentials).
    pub(crate) session: Session,
}

/// What a role session carries: the session policies it was scoped by, its session tags (its
/// own and those inherited as transitive), which of them pass on along a chain, and its source
/// identity. [`StandIn::session`](crate::StandIn::session) shows it to tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// The inline session policy (`Policy`), as sent.
    pub policy: Option<String>,
    /// The managed session policies (`PolicyArns`).
    pub policy_arns: Vec<String>,
    /// Session tags, inherited transitive ones first, then the request's.
    pub tags: Vec<(String, String)>,
    /// Keys of the tags that pass on to sessions this one assumes (role chaining).
    pub transitive_tag_keys: Vec<String>,
    /// Set once, never changed further down a chain.
    pub source_identity: Option<String>,
    /// The parsed session policies (inline, then managed); None when none were passed, so the
    /// role's permissions alone apply.
    pub(crate) scope: Option<Vec<Policy>>,
}

/// One AssumeRole request as the stand-in received it (after its parameters' own validation,
/// refused or not): what mfa-exec sent. [`StandIn::assumed_roles`](crate::StandIn::assumed_roles)
/// lists them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssumedRole {
    pub role_arn: String,
    pub session_name: String,
    /// `Policy`, as sent.
    pub policy: Option<String>,
    /// `PolicyArns.member.N.arn`, in N order.
    pub policy_arns: Vec<String>,
    /// `Tags.member.N.Key` / `.Value`, in N order.
    pub tags: Vec<(String, String)>,
    /// `TransitiveTagKeys.member.N`, in N order.
    pub transitive_tag_keys: Vec<String>,
    pub source_identity: Option<String>,
    /// The error code STS answered with, None when it issued credentials.
    pub error: Option<String>,
}

/// An object put into one of the demo buckets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    pub bucket: String,
    pub key: String,
    pub body: Vec<u8>,
    /// `Content-Type` as put (S3's default `binary/octet-stream` when none was sent).
    pub content_type: String,
    /// The ETag S3 answered with (quoted).
    pub etag: String,
    pub last_modified: SystemTime,
}

/// A sign-in token the federation endpoint issued: good once, for 15 minutes.
#[derive(Clone, Debug)]
pub(crate) struct SigninToken {
    /// The assumed role's session ARN, which the console page shows.
    pub(crate) arn: String,
    pub(crate) expires: SystemTime,
    pub(crate) used: bool,
    /// The SessionDuration it was asked with, if any.
    pub(crate) session_duration: Option<u64>,
}

/// A virtual MFA device in the account.
#[derive(Clone, Debug)]
pub(crate) struct Device {
    pub(crate) seed_base32: String,
    /// The user it is enabled for (assigned to), if any.
    pub(crate) user: Option<String>,
    /// Who created it (only they may delete it while it is unassigned).
    pub(crate) creator: String,
    pub(crate) enabled_at: Option<SystemTime>,
}

/// Whether an access key may sign (UpdateAccessKey switches it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Inactive,
}

impl KeyStatus {
    /// IAM's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "Active",
            KeyStatus::Inactive => "Inactive",
        }
    }
}

/// An IAM user's long-term access key (keyed by its id in [`State`]).
#[derive(Clone, Debug)]
pub(crate) struct AccessKey {
    pub(crate) secret: String,
    pub(crate) user: String,
    pub(crate) status: KeyStatus,
    pub(crate) created: SystemTime,
    /// IAM is eventually consistent: a key just created is refused (InvalidClientTokenId)
    /// until this moment ([`StandIn::set_new_key_delay`](crate::StandIn::set_new_key_delay)).
    pub(crate) usable_from: SystemTime,
}

/// The account's state, behind the one lock every request takes.
pub(crate) struct State {
    pub(crate) config: Config,
    /// Every user's access keys by id, the configured ones first (at most 2 a user, as IAM).
    pub(crate) access_keys: BTreeMap<String, AccessKey>,
    /// How long a key made by CreateAccessKey is refused before it works (0 by default).
    pub(crate) new_key_delay: Duration,
    /// (user, IAM action) pairs the user's policies do not allow (a user without the
    /// self-management policy's key permissions).
    pub(crate) not_allowed: HashSet<(String, String)>,
    /// Requests of these actions still to be answered with Throttling, and how many.
    pub(crate) throttled: HashMap<String, usize>,
    /// Virtual MFA devices by serial: the configured users' (enabled) and those created since.
    pub(crate) devices: BTreeMap<String, Device>,
    pub(crate) temps: HashMap<String, Temp>,
    /// (device serial, TOTP step) pairs already used.
    pub(crate) used_codes: HashSet<(String, u64)>,
    /// Benchmarks only (`sts-standin serve --reuse-codes`): accept a used code again.
    pub(crate) reuse_codes: bool,
    /// Like `Config::lifetime_override`, for role credentials only (MFA sessions keep theirs).
    pub(crate) role_lifetime_override: Option<u64>,
    /// Benchmarks only (`sts-standin serve --latency MS`): answer each request this much later,
    /// as a real STS endpoint across the internet does.
    pub(crate) latency: Duration,
    /// Requests by action (`GET /_standin/calls`), refused ones included.
    pub(crate) calls: BTreeMap<String, usize>,
    /// All requests but `/_standin/` ones.
    pub(crate) total: usize,
    /// How each signed request was signed, in order.
    pub(crate) signed: Vec<Signed>,
    /// Sign-in tokens of the federation endpoint, by token.
    pub(crate) signin_tokens: HashMap<String, SigninToken>,
    /// Console sessions the federation endpoint's login started, by cookie value: the role
    /// session's ARN and the SessionDuration asked for ("role session" when none was).
    pub(crate) console_sessions: HashMap<String, (String, String)>,
    /// The SessionDuration of every getSigninToken request, in order (None: not sent).
    pub(crate) session_durations: Vec<Option<String>>,
    /// Every AssumeRole request that passed the service model's validation, in order.
    pub(crate) assumed_roles: Vec<AssumedRole>,
    /// S3 objects by (bucket, key).
    pub(crate) objects: BTreeMap<(String, String), StoredObject>,
}

/// A request as it was signed: its `Action` and the SigV4 credential scope of its
/// `Authorization` header (`KEY/DATE/REGION/SERVICE/aws4_request`). Real STS refuses a scope
/// that names another region than its endpoint's; this one stand-in serves every region, so
/// tests read here which region a command signed for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    pub action: String,
    pub access_key_id: String,
    pub region: String,
    pub service: String,
    /// The HTTP status it was answered with (200: done).
    pub status: u16,
    /// `x-amz-content-sha256` as sent (S3: a hex hash, UNSIGNED-PAYLOAD or a STREAMING-… form).
    pub payload: Option<String>,
}

/// When a [`Hook`] runs: as a request arrives (before it is served: what it asks is done
/// anyway, as AWS would do it for a client that died after sending), or once it was done and
/// its answer is ready, before the answer is sent (so a client killed then never hears it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Received,
    Answered,
}

/// A test's hook on one action (a SIGKILL of the client at that moment, say); runs once.
pub(crate) struct Hook {
    pub(crate) action: String,
    pub(crate) when: When,
    pub(crate) run: Box<dyn FnOnce() + Send>,
}

/// What the worker threads share: the state, and two flags read without its lock.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Set when the [`StandIn`](crate::StandIn) is dropped: workers leave their loop.
    pub(crate) stop: AtomicBool,
    /// One line per request on stderr (`serve --verbose`).
    pub(crate) log: AtomicBool,
    /// Tests' hooks, taken out as they run.
    pub(crate) hooks: Mutex<Vec<Hook>>,
}

impl Shared {
    /// Runs (and forgets) the hooks on `action` at `when`, outside the state's lock.
    pub(crate) fn run_hooks(&self, action: &str, when: When) {
        let due: Vec<Hook> = {
            let mut hooks = self.hooks.lock().unwrap_or_else(|e| e.into_inner());
            let (due, keep) = hooks
                .drain(..)
                .partition(|h| h.action == action && h.when == when);
            *hooks = keep;
            due
        };
        for hook in due {
            (hook.run)();
        }
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking handler must not take the stand-in down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
