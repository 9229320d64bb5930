//! A strict local stand-in for AWS STS, the IAM calls of a user's own virtual MFA device and the
//! S3 calls of `aws s3 ls` and `aws s3 cp`, so that mfa-exec can be tested, demonstrated and
//! benchmarked without an AWS account: its integration tests start one in-process ([`StandIn::start`]), and the
//! `sts-standin` binary serves one for scripts/demo and the benchmarks.
//!
//! Strict means it refuses what AWS refuses, with AWS's error codes, HTTP statuses and messages:
//! a request must be signed with SigV4 by a known key (a temporary one with its session token)
//! within 15 minutes of now; a TOTP code is good for the 30-second steps either side of now and
//! only once per device; AssumeRole on a role whose trust policy requires MFA needs a code or
//! credentials that carry MFA; a role session lasts at most the role's MaxSessionDuration, and one
//! hour when assumed with temporary credentials (role chaining); parameters are checked against
//! STS's and IAM's service models; a role session may do in S3 only what its role's permission
//! policies and its session policies both allow, and session tags and a source identity follow
//! STS's rules along a chain. Replies are the Query protocol's XML, as STS and IAM send it, and
//! S3's.
//!
//! The modules follow a request: [`server`](StandIn) takes it and makes it a `request` (which
//! also holds STS's API version and signing name), `sigv4` says who signed it, and `sts` (with
//! `session`), `iam`, `s3` (with `payload`) or `federation` answers it from the `account`, its
//! `policy` documents and its `state`. Each of those only reads the `request`, below them; none
//! imports the server that calls it. `client` is a small signed
//! client for the tests and the binary; [`phone`] plays an authenticator app.

mod account;
mod client;
mod errors;
mod federation;
mod iam;
mod ids;
mod imds;
mod payload;
pub mod phone;
mod policy;
mod request;
mod s3;
mod server;
mod session;
mod sigv4;
mod state;
mod sts;
mod totp;
mod xml;

pub use account::{
    Config, Role, User, ACCOUNT, CAROL_KEY, CAROL_SECRET, INSTANCE_ROLE, WEB_IDENTITY_ROLE,
    WEB_IDENTITY_TOKEN,
};
pub use client::{
    call, call_service, form_body, http_request, list_buckets, s3_request, sign_post, sign_request,
    signed_post, Keys, Reply, FORM_CONTENT_TYPE,
};
pub use iam::IAM_VERSION;
pub use imds::Imds;
pub use policy::{read_only_access, Effect, Policy, Statement};
pub use request::{NAMESPACE, SERVICE, VERSION};
pub use server::StandIn;
pub use state::{AssumedRole, KeyStatus, Session, Signed, StoredObject, When};
pub use totp::totp_code;
pub use xml::{esc, iso_format};
