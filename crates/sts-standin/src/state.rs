//! What the account holds while the stand-in serves: its MFA devices (the configured users' and
//! those created through IAM since), the temporary credentials it has issued, the TOTP codes
//! already used, and the request counts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::account::Config;

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

/// The account's state, behind the one lock every request takes.
pub(crate) struct State {
    pub(crate) config: Config,
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
}

/// What the worker threads share: the state, and two flags read without its lock.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Set when the [`StandIn`](crate::StandIn) is dropped: workers leave their loop.
    pub(crate) stop: AtomicBool,
    /// One line per request on stderr (`serve --verbose`).
    pub(crate) log: AtomicBool,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking handler must not take the stand-in down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
