//! The stand-in itself: it must be as strict as STS, or mfa-exec's tests against it prove nothing.

use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sts_standin::*;

const ALICE_MFA: &str = "arn:aws:iam::123456789012:mfa/alice";
const BOB_MFA: &str = "arn:aws:iam::123456789012:mfa/bob";
const ALICE_ARN: &str = "arn:aws:iam::123456789012:user/alice";

/// A test whose tool is missing says so on stderr; under `CI` (set by .ci/run) it fails instead,
/// as mfa-exec's own tests do: CI must not skip anything.
fn skipped(reason: &str) {
    let thread = std::thread::current();
    // libtest runs each test on a thread named after it.
    let test = thread.name().unwrap_or("a test");
    if std::env::var_os("CI").is_some() {
        panic!("{test} cannot run: {reason}; CI must not skip tests (scripts/test installs what they need)");
    }
    // Past libtest's capture (eprintln! is captured), so that the skip shows in the output.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {reason} (scripts/test installs what the tests need)"
    );
}

fn start() -> StandIn {
    StandIn::start(Config::demo()).expect("stand-in starts")
}

fn alice() -> Keys {
    Config::demo().user("alice").unwrap().keys()
}

fn bob() -> Keys {
    Config::demo().user("bob").unwrap().keys()
}

fn role(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

/// Waits until the current TOTP step has a few seconds left, so that codes for offsets -1..=1
/// stay valid while a test uses them.
fn away_from_step_boundary() {
    let into_step = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 30;
    if into_step >= 27 {
        std::thread::sleep(Duration::from_secs(31 - into_step));
    }
}

#[track_caller]
fn assert_error(reply: &Reply, status: u16, code: &str, message: &str) {
    assert_eq!(
        (reply.status, reply.error_code().as_deref()),
        (status, Some(code)),
        "{}",
        reply.body
    );
    let got = reply.error_message().unwrap_or_default();
    assert!(
        got.starts_with(message),
        "message {got:?} does not start with {message:?}"
    );
    assert!(reply.body.contains("<Type>Sender</Type>"), "{}", reply.body);
    assert!(reply.field("RequestId").is_some(), "{}", reply.body);
}

/// `SerialNumber` and `TokenCode`: a device and one of its codes, then `extra`.
fn mfa<'a>(
    serial: &'a str,
    code: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![("SerialNumber", serial), ("TokenCode", code)];
    params.extend_from_slice(extra);
    params
}

/// GetSessionToken signed with `keys`, for the device `serial` and its `code`.
fn get_session_token(standin: &StandIn, keys: &Keys, serial: &str, code: &str) -> Reply {
    standin.call(keys, "GetSessionToken", &mfa(serial, code, &[]))
}

fn assume(standin: &StandIn, keys: &Keys, role_name: &str, extra: &[(&str, &str)]) -> Reply {
    let arn = role(role_name);
    let mut params = vec![("RoleArn", arn.as_str()), ("RoleSessionName", "test")];
    params.extend_from_slice(extra);
    standin.call(keys, "AssumeRole", &params)
}

fn not_authorized(role_name: &str) -> String {
    format!(
        "User: {ALICE_ARN} is not authorized to perform: sts:AssumeRole on resource: {}",
        role(role_name)
    )
}

/// AssumeRole of `role_name` with `keys` and a code of alice's device at `offset`, and `extra`.
fn assume_with_code(
    standin: &StandIn,
    keys: &Keys,
    role_name: &str,
    offset: i64,
    extra: &[(&str, &str)],
) -> Reply {
    let code = standin.code(ALICE_MFA, offset);
    assume(standin, keys, role_name, &mfa(ALICE_MFA, &code, extra))
}

/// GetSessionToken with alice's MFA device and a code at `offset`: the session keys.
#[track_caller]
fn mfa_session(standin: &StandIn, offset: i64) -> Keys {
    let code = standin.code(ALICE_MFA, offset);
    let reply = get_session_token(standin, &alice(), ALICE_MFA, &code);
    assert_ok(&reply);
    reply.credentials().unwrap()
}

fn seconds_until(expiration: &str) -> i64 {
    let t = humantime::parse_rfc3339(expiration).expect("Expiration is RFC 3339");
    match t.duration_since(SystemTime::now()) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// Seconds until the reply's credentials expire.
fn seconds_left(reply: &Reply) -> i64 {
    seconds_until(&reply.field("Expiration").unwrap())
}

/// `Action=GetCallerIdentity&Version=2011-06-15`, what the signing tests send.
fn caller_identity_body() -> String {
    form_body(&[("Action", "GetCallerIdentity"), ("Version", VERSION)])
}

/// The SigV4 headers alice's keys give a form POST of `body` to STS in us-east-1, now.
fn signed_by_alice(standin: &StandIn, body: &str) -> Vec<(String, String)> {
    sign_post(
        &standin.url(),
        &alice(),
        "us-east-1",
        "sts",
        SystemTime::now(),
        body,
    )
    .unwrap()
}

/// Signs a form POST of `body` with alice's keys for `region` and `service` as of `time`, and
/// sends it.
fn alice_posts_at(
    standin: &StandIn,
    region: &str,
    service: &str,
    time: SystemTime,
    body: &str,
) -> Reply {
    signed_post(&standin.url(), &alice(), region, service, time, body).unwrap()
}

/// POSTs `body` to `/` with `headers` exactly as given.
fn post(standin: &StandIn, headers: &[(String, String)], body: &str) -> Reply {
    http_request(&standin.url(), "POST", "/", headers, body.as_bytes()).unwrap()
}

/// POSTs a form `body` with no signature at all: only `host` and `content-type`.
fn post_unsigned(standin: &StandIn, body: &str) -> Reply {
    let host = standin.url().trim_start_matches("http://").to_string();
    let headers = vec![
        ("host".to_string(), host),
        ("content-type".to_string(), FORM_CONTENT_TYPE.to_string()),
    ];
    post(standin, &headers, body)
}

#[track_caller]
fn assert_ok(reply: &Reply) {
    assert!(reply.is_ok(), "{}", reply.body);
}

/// Refused with `code`, whatever the status and message.
#[track_caller]
fn assert_code(reply: &Reply, code: &str) {
    assert_eq!(reply.error_code().as_deref(), Some(code), "{}", reply.body);
}

#[track_caller]
fn assert_invalid_token(reply: &Reply) {
    assert_error(
        reply,
        403,
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
    );
}

#[track_caller]
fn assert_bad_signature(reply: &Reply) {
    assert_error(reply, 403, "SignatureDoesNotMatch", "The request signature");
}

#[track_caller]
fn assert_code_refused(reply: &Reply) {
    assert_error(
        reply,
        403,
        "AccessDenied",
        "MultiFactorAuthentication failed with invalid MFA one time pass code.",
    );
}

#[track_caller]
fn assert_no_session_token_for_sessions(reply: &Reply) {
    assert_error(
        reply,
        403,
        "AccessDenied",
        "Cannot call GetSessionToken with session credentials",
    );
}

/// A ValidationError with one error, whose message contains `about`; returns the message.
#[track_caller]
fn one_validation_error(reply: &Reply, about: &str) -> String {
    assert_error(
        reply,
        400,
        "ValidationError",
        "1 validation error detected: ",
    );
    let message = reply.error_message().unwrap();
    assert!(message.contains(about), "{message}");
    message
}

// ---------------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------------

#[test]
fn a_signed_get_caller_identity_with_alices_keys_answers_her_arn() {
    let standin = start();
    let reply = standin.call(&alice(), "GetCallerIdentity", &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.field("Arn").as_deref(), Some(ALICE_ARN));
    assert_eq!(reply.field("Account").as_deref(), Some(ACCOUNT));
    assert!(reply.field("UserId").unwrap().starts_with("AIDA"));
    assert!(reply.body.contains(&format!(
        "<GetCallerIdentityResponse xmlns=\"{NAMESPACE}\">"
    )));
    assert!(reply.field("RequestId").is_some());
    assert_eq!(reply.header("content-type"), Some("text/xml"));

    let bobs = standin.call(&bob(), "GetCallerIdentity", &[]);
    assert_eq!(
        bobs.field("Arn").as_deref(),
        Some("arn:aws:iam::123456789012:user/bob")
    );
}

#[test]
fn a_wrong_secret_gets_signature_does_not_match() {
    let standin = start();
    let mut keys = alice();
    keys.secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGKEY00".to_string();
    let reply = standin.call(&keys, "GetCallerIdentity", &[]);
    assert_error(
        &reply,
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    );
}

#[test]
fn an_unknown_access_key_is_an_invalid_client_token_id() {
    let standin = start();
    let keys = Keys::new("AKIAUNKNOWNUNKNOWN00", "secret", None);
    let reply = standin.call(&keys, "GetCallerIdentity", &[]);
    assert_invalid_token(&reply);
}

#[test]
fn a_request_without_authorization_is_missing_its_authentication_token() {
    let standin = start();
    let reply = post_unsigned(&standin, &caller_identity_body());
    assert_error(
        &reply,
        403,
        "MissingAuthenticationToken",
        "Request is missing Authentication Token",
    );
}

#[test]
fn a_tampered_body_breaks_the_signature() {
    let standin = start();
    let sent = form_body(&[
        ("Action", "AssumeRole"),
        ("Version", VERSION),
        ("RoleArn", &role("open")),
        ("RoleSessionName", "sneaky"),
    ]);
    let headers = signed_by_alice(&standin, &caller_identity_body());
    let reply = post(&standin, &headers, &sent);
    assert_bad_signature(&reply);
    assert_eq!(standin.calls("AssumeRole"), 1, "counted although refused");
}

#[test]
fn a_signed_header_changed_in_transit_breaks_the_signature() {
    let standin = start();
    let body = caller_identity_body();
    let mut headers = signed_by_alice(&standin, &body);
    for (name, value) in &mut headers {
        if name == "content-type" {
            *value = "application/x-www-form-urlencoded".to_string();
        }
    }
    let reply = post(&standin, &headers, &body);
    assert_bad_signature(&reply);
}

#[test]
fn unsigned_headers_may_change_but_signed_ones_may_not_be_dropped() {
    let standin = start();
    let body = caller_identity_body();
    let headers = signed_by_alice(&standin, &body);

    let mut with_agent = headers.clone();
    with_agent.push(("user-agent".to_string(), "curl/8".to_string()));
    let reply = post(&standin, &with_agent, &body);
    assert_ok(&reply);

    let without_content_type: Vec<_> = headers
        .into_iter()
        .filter(|(n, _)| n != "content-type")
        .collect();
    let reply = post(&standin, &without_content_type, &body);
    assert_eq!(reply.status, 403, "{}", reply.body);
}

#[test]
fn a_signature_older_than_15_minutes_has_expired() {
    let standin = start();
    let body = caller_identity_body();
    let twenty_minutes_ago = SystemTime::now() - Duration::from_secs(20 * 60);
    let reply = alice_posts_at(&standin, "us-east-1", "sts", twenty_minutes_ago, &body);
    assert_error(&reply, 403, "SignatureDoesNotMatch", "Signature expired: ");

    let ten_minutes_ago = SystemTime::now() - Duration::from_secs(10 * 60);
    let reply = alice_posts_at(&standin, "eu-central-1", "sts", ten_minutes_ago, &body);
    assert!(
        reply.is_ok(),
        "10 minutes of skew and any region are fine: {}",
        reply.body
    );

    let twenty_minutes_ahead = SystemTime::now() + Duration::from_secs(20 * 60);
    let reply = alice_posts_at(&standin, "us-east-1", "sts", twenty_minutes_ahead, &body);
    assert_error(
        &reply,
        403,
        "SignatureDoesNotMatch",
        "Signature not yet current: ",
    );
}

#[test]
fn a_signature_for_another_service_is_refused() {
    let standin = start();
    // The stand-in also plays IAM and S3 (for `device`); EC2 it does not.
    let reply = alice_posts_at(
        &standin,
        "us-east-1",
        "ec2",
        SystemTime::now(),
        &caller_identity_body(),
    );
    assert_error(
        &reply,
        403,
        "SignatureDoesNotMatch",
        "Credential should be scoped to correct service: 'sts'.",
    );
}

#[test]
fn a_get_with_the_query_string_is_accepted() {
    let standin = start();
    let path = format!("/?{}", caller_identity_body());
    let headers = sign_request(
        "GET",
        &standin.url(),
        &path,
        &[],
        b"",
        &alice(),
        "us-west-2",
        "sts",
        SystemTime::now(),
    )
    .unwrap();
    let reply = http_request(&standin.url(), "GET", &path, &headers, b"").unwrap();
    assert_ok(&reply);
    assert_eq!(reply.field("Arn").as_deref(), Some(ALICE_ARN));
}

#[test]
fn unknown_actions_and_versions_are_invalid_actions() {
    let standin = start();
    let reply = standin.call(&alice(), "GetFederationToken", &[("Name", "x")]);
    assert_error(
        &reply,
        400,
        "InvalidAction",
        "Could not find operation GetFederationToken for version 2011-06-15",
    );

    let body = form_body(&[("Action", "GetCallerIdentity"), ("Version", "2010-01-01")]);
    let reply = alice_posts_at(&standin, "us-east-1", "sts", SystemTime::now(), &body);
    assert_error(&reply, 400, "InvalidAction", "Could not find operation");
}

// ---------------------------------------------------------------------------------------------
// GetSessionToken and MFA codes
// ---------------------------------------------------------------------------------------------

#[test]
fn get_session_token_with_a_fresh_code_succeeds_and_the_same_code_again_is_refused() {
    let standin = start();
    let code = standin.code(ALICE_MFA, 0);

    let first = get_session_token(&standin, &alice(), ALICE_MFA, &code);
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first
        .body
        .contains(&format!("<GetSessionTokenResponse xmlns=\"{NAMESPACE}\">")));
    let creds = first.credentials().unwrap();
    assert!(creds.access_key_id.starts_with("ASIA"));
    assert_eq!(creds.access_key_id.len(), 20);
    assert!(creds.access_key_id[4..]
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
    assert_eq!(creds.secret_access_key.len(), 40);
    assert!(creds.session_token.unwrap().len() > 100);
    let expiration = first.field("Expiration").unwrap();
    assert_eq!(
        expiration.len(),
        "2026-01-01T00:00:00Z".len(),
        "{expiration}"
    );
    assert!(expiration.ends_with('Z'));
    let left = seconds_until(&expiration);
    assert!(
        (43_100..=43_200).contains(&left),
        "default 12 h, got {left} s"
    );

    let again = get_session_token(&standin, &alice(), ALICE_MFA, &code);
    assert_code_refused(&again);
    assert_eq!(standin.calls("GetSessionToken"), 2);
}

#[test]
fn codes_of_the_neighbouring_steps_work_but_older_ones_and_wrong_ones_do_not() {
    away_from_step_boundary();
    let standin = start();
    for offset in [-1, 1] {
        let code = standin.code(ALICE_MFA, offset);
        let reply = get_session_token(&standin, &alice(), ALICE_MFA, &code);
        assert!(reply.is_ok(), "offset {offset}: {}", reply.body);
    }
    let mut tried = Vec::new();
    for offset in [-3, 3] {
        let code = standin.code(ALICE_MFA, offset);
        if [-1, 0, 1]
            .iter()
            .any(|o| standin.code(ALICE_MFA, *o) == code)
        {
            continue; // one chance in a million
        }
        tried.push(offset);
        let reply = get_session_token(&standin, &alice(), ALICE_MFA, &code);
        assert_code_refused(&reply);
    }
    assert!(!tried.is_empty());

    // A code consumed on alice's device says nothing about bob's.
    let bobs = standin.code(BOB_MFA, 0);
    assert_ok(&get_session_token(&standin, &bob(), BOB_MFA, &bobs));
}

#[test]
fn a_token_code_that_is_not_six_digits_is_a_validation_error() {
    let standin = start();
    for (code, constraint) in [
        (
            "12345",
            "Member must have length greater than or equal to 6",
        ),
        ("1234567", "Member must have length less than or equal to 6"),
        (
            "12a456",
            "Member must satisfy regular expression pattern: [\\d]*",
        ),
    ] {
        let reply = get_session_token(&standin, &alice(), ALICE_MFA, code);
        let message = one_validation_error(&reply, "at 'tokenCode' failed to satisfy constraint: ");
        assert!(message.ends_with(constraint), "{message}");
    }
}

#[test]
fn another_users_mfa_serial_cannot_be_validated() {
    let standin = start();
    let code = standin.code(BOB_MFA, 0);
    let reply = get_session_token(&standin, &alice(), BOB_MFA, &code);
    assert_error(
        &reply,
        403,
        "AccessDenied",
        "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your MFA serial number is valid and associated with this user.",
    );
    // The failed attempt did not consume bob's code.
    assert_ok(&get_session_token(&standin, &bob(), BOB_MFA, &code));
}

#[test]
fn get_session_token_durations_must_lie_between_15_minutes_and_36_hours() {
    let standin = start();
    for (duration, constraint) in [
        ("899", "Member must have value greater than or equal to 900"),
        (
            "129601",
            "Member must have value less than or equal to 129600",
        ),
    ] {
        let reply = standin.call(
            &alice(),
            "GetSessionToken",
            &[("DurationSeconds", duration)],
        );
        let message =
            one_validation_error(&reply, &format!("Value '{duration}' at 'durationSeconds'"));
        assert!(message.ends_with(constraint), "{message}");
    }
    for (duration, expected) in [("900", 900), ("129600", 129_600)] {
        let reply = standin.call(
            &alice(),
            "GetSessionToken",
            &[("DurationSeconds", duration)],
        );
        assert_ok(&reply);
        let left = seconds_left(&reply);
        assert!((expected - 60..=expected).contains(&left), "{left}");
    }
}

#[test]
fn session_credentials_cannot_get_another_session_token() {
    let standin = start();
    let session = standin.call(&alice(), "GetSessionToken", &[]);
    let keys = session.credentials().unwrap();
    let reply = standin.call(&keys, "GetSessionToken", &[]);
    assert_no_session_token_for_sessions(&reply);
}

// ---------------------------------------------------------------------------------------------
// AssumeRole
// ---------------------------------------------------------------------------------------------

#[test]
fn a_role_trusted_by_a_role_is_assumed_only_from_that_roles_session() {
    away_from_step_boundary();
    let standin = start();
    let session = mfa_session(&standin, 0);
    // target trusts no user, only sessions of hub: not alice's MFA session, not her keys.
    let denied = assume(&standin, &session, "target", &[]);
    assert_code(&denied, "AccessDenied");
    let hub = assume(&standin, &session, "hub", &[]);
    assert_ok(&hub);
    let hub = hub.credentials().unwrap();
    let target = assume(&standin, &hub, "target", &[]);
    assert_ok(&target);
    let target = target.credentials().unwrap();
    assert_eq!(
        standin.key_owner(&target.access_key_id).as_deref(),
        Some("role/target")
    );
    // And a role's session may not call GetSessionToken either.
    let reply = standin.call(&hub, "GetSessionToken", &[]);
    assert_no_session_token_for_sessions(&reply);
}

#[test]
fn assume_role_with_web_identity_is_unsigned_and_wants_the_roles_token() {
    let standin = start();
    let call = |token: &str| {
        let arn = role(WEB_IDENTITY_ROLE);
        let body = form_body(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", VERSION),
            ("RoleArn", &arn),
            ("RoleSessionName", "ci-job"),
            ("WebIdentityToken", token),
        ]);
        post_unsigned(&standin, &body)
    };
    let refused = call("not-the-token");
    assert_error(
        &refused,
        403,
        "AccessDenied",
        "Not authorized to perform sts:AssumeRoleWithWebIdentity",
    );
    let reply = call(WEB_IDENTITY_TOKEN);
    assert_ok(&reply);
    let keys = reply.credentials().unwrap();
    assert_eq!(
        standin.key_owner(&keys.access_key_id).as_deref(),
        Some("role/ci")
    );
    assert_eq!(
        standin.role_session_of(&keys.access_key_id).as_deref(),
        Some("ci-job")
    );
    // The role's session carries no MFA: hub wants MFA, so without a code it is refused.
    let hub = assume(&standin, &keys, "hub", &[]);
    assert_code(&hub, "AccessDenied");
}

#[test]
fn assume_role_on_s3_reader_is_denied_without_mfa_and_allowed_with_it() {
    let standin = start();
    let denied = assume(&standin, &alice(), "s3-reader", &[]);
    assert_error(&denied, 403, "AccessDenied", &not_authorized("s3-reader"));

    let allowed = assume_with_code(&standin, &alice(), "s3-reader", 0, &[]);
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    assert!(allowed
        .body
        .contains(&format!("<AssumeRoleResponse xmlns=\"{NAMESPACE}\">")));
    assert_eq!(
        allowed.field("Arn").as_deref(),
        Some("arn:aws:sts::123456789012:assumed-role/s3-reader/test")
    );
    let role_id = allowed.field("AssumedRoleId").unwrap();
    assert!(
        role_id.starts_with("AROA") && role_id.ends_with(":test"),
        "{role_id}"
    );
    let left = seconds_left(&allowed);
    assert!((3540..=3600).contains(&left), "default 1 h, got {left}");

    let keys = allowed.credentials().unwrap();
    let who = standin.call(&keys, "GetCallerIdentity", &[]);
    assert_eq!(
        who.field("Arn").as_deref(),
        Some("arn:aws:sts::123456789012:assumed-role/s3-reader/test")
    );
    assert_eq!(who.field("UserId"), Some(role_id));
}

#[test]
fn the_open_role_needs_no_mfa_but_locked_and_unknown_roles_refuse_everyone() {
    let standin = start();
    let open = assume(&standin, &alice(), "open", &[]);
    assert_ok(&open);

    let locked = assume(&standin, &alice(), "locked", &[]);
    assert_error(&locked, 403, "AccessDenied", &not_authorized("locked"));
    let locked = assume_with_code(&standin, &alice(), "locked", 0, &[]);
    assert_error(&locked, 403, "AccessDenied", &not_authorized("locked"));

    let unknown = assume(&standin, &alice(), "no-such-role", &[]);
    assert_error(
        &unknown,
        403,
        "AccessDenied",
        &not_authorized("no-such-role"),
    );
}

#[test]
fn mfa_session_credentials_can_assume_s3_reader_without_a_code_but_not_for_two_hours() {
    let standin = start();
    let session = mfa_session(&standin, 0);

    let chained = assume(&standin, &session, "s3-reader", &[]);
    assert_ok(&chained);

    let too_long = assume(
        &standin,
        &session,
        "s3-reader",
        &[("DurationSeconds", "7200")],
    );
    assert_error(
        &too_long,
        400,
        "ValidationError",
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
    );

    // Role credentials obtained that way chain on, within the same 1-hour limit.
    let role_keys = chained.credentials().unwrap();
    let again = assume(&standin, &role_keys, "auditor", &[]);
    assert_ok(&again);
    let too_long = assume(
        &standin,
        &role_keys,
        "s3-reader",
        &[("DurationSeconds", "3601")],
    );
    assert_error(
        &too_long,
        400,
        "ValidationError",
        "The requested DurationSeconds exceeds the 1 hour session limit",
    );
}

#[test]
fn session_credentials_without_mfa_cannot_assume_an_mfa_role() {
    let standin = start();
    let session = standin.call(&alice(), "GetSessionToken", &[]);
    assert_ok(&session);
    let keys = session.credentials().unwrap();
    let who = standin.call(&keys, "GetCallerIdentity", &[]);
    assert_eq!(who.field("Arn").as_deref(), Some(ALICE_ARN));

    let denied = assume(&standin, &keys, "s3-reader", &[]);
    assert_error(&denied, 403, "AccessDenied", &not_authorized("s3-reader"));
    // ...but a code in the request itself does it.
    let allowed = assume_with_code(&standin, &keys, "s3-reader", 0, &[]);
    assert_ok(&allowed);
}

#[test]
fn assume_role_durations_are_bounded_by_the_role() {
    away_from_step_boundary();
    let standin = start();
    // One code for every call: a refusal must not consume it.
    let code = standin.code(ALICE_MFA, -1);
    let with = |duration| mfa(ALICE_MFA, &code, &[("DurationSeconds", duration)]);

    let reply = assume(&standin, &alice(), "auditor", &with("7200"));
    assert_error(
        &reply,
        400,
        "ValidationError",
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
    );
    let reply = assume(&standin, &alice(), "auditor", &with("899"));
    assert_error(&reply, 400, "ValidationError", "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900");
    let reply = assume(&standin, &alice(), "s3-reader", &with("43201"));
    assert_error(&reply, 400, "ValidationError", "1 validation error detected: Value '43201' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200");

    // The code was never consumed by those refusals.
    let reply = assume(&standin, &alice(), "s3-reader", &with("43200"));
    assert_ok(&reply);
    let left = seconds_left(&reply);
    assert!((43_140..=43_200).contains(&left), "{left}");

    let reply = assume(&standin, &alice(), "open", &[("DurationSeconds", "900")]);
    assert_ok(&reply);
}

#[test]
fn the_partner_role_wants_its_external_id() {
    away_from_step_boundary();
    let standin = start();
    let without = assume_with_code(&standin, &alice(), "partner", -1, &[]);
    assert_error(&without, 403, "AccessDenied", &not_authorized("partner"));
    let wrong = assume_with_code(
        &standin,
        &alice(),
        "partner",
        -1,
        &[("ExternalId", "guessed-id")],
    );
    assert_error(&wrong, 403, "AccessDenied", &not_authorized("partner"));
    let right = assume_with_code(
        &standin,
        &alice(),
        "partner",
        -1,
        &[("ExternalId", "partner-ext-id")],
    );
    assert_ok(&right);
}

#[test]
fn assume_role_parameters_are_validated() {
    let standin = start();
    let reply = standin.call(&alice(), "AssumeRole", &[]);
    assert_error(&reply, 400, "ValidationError", "2 validation errors detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null; Value null at 'roleSessionName'");

    let open = role("open");
    for bad in ["x", "has space", &"n".repeat(65)] {
        let reply = standin.call(
            &alice(),
            "AssumeRole",
            &[("RoleArn", &open), ("RoleSessionName", bad)],
        );
        one_validation_error(&reply, "at 'roleSessionName'");
    }
    let name = "a.b@c=d,e-f+g_h";
    let reply = standin.call(
        &alice(),
        "AssumeRole",
        &[("RoleArn", &open), ("RoleSessionName", name)],
    );
    assert_ok(&reply);
    assert_eq!(
        reply.field("Arn"),
        Some(format!(
            "arn:aws:sts::123456789012:assumed-role/open/{name}"
        ))
    );
}

// ---------------------------------------------------------------------------------------------
// Temporary credentials
// ---------------------------------------------------------------------------------------------

#[test]
fn temporary_keys_need_their_own_token() {
    let standin = start();
    let keys = mfa_session(&standin, 0);
    let ok = standin.call(&keys, "GetCallerIdentity", &[]);
    assert_eq!(ok.field("Arn").as_deref(), Some(ALICE_ARN));

    let mut no_token = keys.clone();
    no_token.session_token = None;
    let reply = standin.call(&no_token, "GetCallerIdentity", &[]);
    assert_invalid_token(&reply);

    let mut wrong_token = keys.clone();
    wrong_token.session_token = Some("forged".to_string());
    let reply = standin.call(&wrong_token, "GetCallerIdentity", &[]);
    assert_invalid_token(&reply);

    let mut long_term_with_token = alice();
    long_term_with_token.session_token = keys.session_token.clone();
    let reply = standin.call(&long_term_with_token, "GetCallerIdentity", &[]);
    assert_invalid_token(&reply);

    let mut wrong_secret = keys;
    wrong_secret.secret_access_key = alice().secret_access_key;
    let reply = standin.call(&wrong_secret, "GetCallerIdentity", &[]);
    assert_bad_signature(&reply);
}

#[test]
fn temporary_keys_work_until_they_expire() {
    let standin = start();
    standin.set_lifetime_override(Some(2));
    let reply = standin.call(&alice(), "GetSessionToken", &[("DurationSeconds", "3600")]);
    assert_ok(&reply);
    let left = seconds_left(&reply);
    assert!(
        (0..=2).contains(&left),
        "Expiration shows the override: {left}"
    );
    let keys = reply.credentials().unwrap();

    let who = standin.call(&keys, "GetCallerIdentity", &[]);
    assert_ok(&who);

    std::thread::sleep(Duration::from_millis(2500));
    let expired = standin.call(&keys, "GetCallerIdentity", &[]);
    assert_error(
        &expired,
        403,
        "ExpiredToken",
        "The security token included in the request is expired",
    );

    standin.set_lifetime_override(None);
    let reply = standin.call(&alice(), "GetSessionToken", &[("DurationSeconds", "3600")]);
    let left = seconds_left(&reply);
    assert!((3540..=3600).contains(&left), "{left}");
}

#[test]
fn values_in_replies_are_xml_escaped() {
    let standin = start();
    // Session tokens are base64 with '+' and '/', and error messages carry user input.
    let reply = standin.call(
        &alice(),
        "AssumeRole",
        &[
            ("RoleArn", "arn:aws:iam::123456789012:role/<b>&\"x\""),
            ("RoleSessionName", "sess"),
        ],
    );
    assert!(
        reply.body.contains("role/&lt;b&gt;&amp;\"x\""),
        "{}",
        reply.body
    );
    assert!(!reply.body.contains("<b>"));
}

// ---------------------------------------------------------------------------------------------
// Bookkeeping and concurrency
// ---------------------------------------------------------------------------------------------

#[test]
fn calls_are_counted_per_action_whether_they_succeed_or_not() {
    let standin = start();
    assert_eq!(standin.total_calls(), 0);
    standin.call(&alice(), "GetCallerIdentity", &[]);
    let mut wrong = alice();
    wrong.secret_access_key.push('x');
    standin.call(&wrong, "GetCallerIdentity", &[]);
    assume(&standin, &alice(), "s3-reader", &[]);
    standin.call(&alice(), "GetSessionToken", &[]);

    assert_eq!(standin.calls("GetCallerIdentity"), 2);
    assert_eq!(standin.calls("AssumeRole"), 1);
    assert_eq!(standin.calls("GetSessionToken"), 1);
    assert_eq!(standin.calls("GetFederationToken"), 0);
    assert_eq!(standin.total_calls(), 4);

    let reply = http_request(&standin.url(), "GET", "/_standin/calls", &[], b"").unwrap();
    assert_eq!(reply.status, 200);
    let counts: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(
        counts,
        serde_json::json!({"GetCallerIdentity": 2, "AssumeRole": 1, "GetSessionToken": 1})
    );
    assert_eq!(standin.total_calls(), 4, "the helper path is not counted");
}

#[test]
fn sixteen_clients_at_once_are_all_served_and_a_code_is_used_only_once() {
    let standin = Arc::new(start());
    let clients = 16;
    let barrier = Arc::new(Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let standin = Arc::clone(&standin);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                standin.call(&alice(), "GetCallerIdentity", &[]).status
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    assert_eq!(standin.calls("GetCallerIdentity"), clients);

    let code = standin.code(ALICE_MFA, 0);
    let barrier = Arc::new(Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let standin = Arc::clone(&standin);
            let barrier = Arc::clone(&barrier);
            let code = code.clone();
            std::thread::spawn(move || {
                barrier.wait();
                get_session_token(&standin, &alice(), ALICE_MFA, &code).status
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), clients - 1);
}

#[test]
fn totp_codes_follow_rfc_6238() {
    // RFC 6238 appendix B, SHA1 seed "12345678901234567890", last 6 of the 8 digits.
    let seed = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    assert_eq!(totp_code(seed, 59), "287082");
    assert_eq!(totp_code(seed, 1_111_111_109), "081804");
    assert_eq!(totp_code(seed, 1_234_567_890), "005924");
    assert_eq!(totp_code(seed, 2_000_000_000), "279037");

    let standin = start();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let alice = Config::demo();
    let seed = &alice.user("alice").unwrap().totp_seed_base32;
    let code = standin.code(ALICE_MFA, 2);
    assert!(
        code == totp_code(seed, now + 60) || code == totp_code(seed, now + 90),
        "code(_, 2) is two steps ahead"
    );
}

#[test]
fn the_stand_in_stops_when_dropped() {
    let standin = start();
    let url = standin.url();
    drop(standin);
    let reply = call(&url, &alice(), "GetCallerIdentity", &[]);
    assert!(reply.is_err(), "{reply:?}");
}

// ---------------------------------------------------------------------------------------------
// Compatibility with real clients
// ---------------------------------------------------------------------------------------------

#[test]
fn the_aws_sdk_for_rust_is_accepted() {
    use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region};

    let standin = start();
    let client = |keys: &Keys| {
        let config = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url(standin.url())
            .credentials_provider(Credentials::new(
                &keys.access_key_id,
                &keys.secret_access_key,
                keys.session_token.clone(),
                None,
                "test",
            ))
            .build();
        aws_sdk_sts::Client::from_conf(config)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sts = client(&alice());
        let who = sts
            .get_caller_identity()
            .send()
            .await
            .expect("GetCallerIdentity");
        assert_eq!(who.arn(), Some(ALICE_ARN));
        assert_eq!(who.account(), Some(ACCOUNT));

        let denied = sts
            .assume_role()
            .role_arn(role("s3-reader"))
            .role_session_name("sdk")
            .send()
            .await
            .expect_err("no MFA");
        let denied = denied.into_service_error();
        use aws_sdk_sts::error::ProvideErrorMetadata;
        assert_eq!(denied.code(), Some("AccessDenied"));
        assert_eq!(denied.message(), Some(not_authorized("s3-reader").as_str()));

        let session = sts
            .get_session_token()
            .serial_number(ALICE_MFA)
            .token_code(standin.code(ALICE_MFA, 0))
            .duration_seconds(3600)
            .send()
            .await
            .expect("GetSessionToken");
        let creds = session.credentials().unwrap();
        let keys = Keys::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token()),
        );
        let role = client(&keys)
            .assume_role()
            .role_arn(role("s3-reader"))
            .role_session_name("sdk")
            .send()
            .await
            .expect("AssumeRole with the MFA session");
        assert_eq!(
            role.assumed_role_user().unwrap().arn(),
            "arn:aws:sts::123456789012:assumed-role/s3-reader/sdk"
        );
    });
}

const BOTOCORE_SCRIPT: &str = r#"
import json, sys
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

url, key, secret, serial, code = sys.argv[1:6]
session = botocore.session.Session()
config = Config(retries={"max_attempts": 1})

def client(key, secret, token=None):
    return session.create_client(
        "sts", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
        aws_secret_access_key=secret, aws_session_token=token, config=config)

sts = client(key, secret)
out = {"arn": sts.get_caller_identity()["Arn"]}
try:
    sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/s3-reader", RoleSessionName="boto")
    out["denied"] = None
except ClientError as e:
    out["denied"] = e.response["Error"]["Code"]
creds = sts.get_session_token(SerialNumber=serial, TokenCode=code)["Credentials"]
out["session"] = creds["AccessKeyId"]
chained = client(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
role = chained.assume_role(
    RoleArn="arn:aws:iam::123456789012:role/s3-reader", RoleSessionName="boto")
out["role"] = role["AssumedRoleUser"]["Arn"]
print(json.dumps(out))
"#;

#[test]
fn botocore_signatures_are_accepted() {
    let python = std::env::var("MFA_EXEC_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let has_botocore = Command::new(&python)
        .args(["-c", "import botocore"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_botocore {
        skipped(&format!("{python} cannot import botocore"));
        return;
    }

    let standin = start();
    let keys = alice();
    let code = standin.code(ALICE_MFA, 0);
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(&python);
    command
        .args(["-c", BOTOCORE_SCRIPT, &standin.url()])
        .args([
            &keys.access_key_id,
            &keys.secret_access_key,
            ALICE_MFA,
            &code,
        ])
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("AWS_")
            && !matches!(
                name.as_str(),
                "AWS_CONFIG_FILE" | "AWS_SHARED_CREDENTIALS_FILE" | "AWS_EC2_METADATA_DISABLED"
            )
        {
            command.env_remove(&name);
        }
    }
    let output = command.output().expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let out: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(out["arn"], ALICE_ARN);
    assert_eq!(out["denied"], "AccessDenied");
    assert!(out["session"].as_str().unwrap().starts_with("ASIA"));
    assert_eq!(
        out["role"],
        "arn:aws:sts::123456789012:assumed-role/s3-reader/boto"
    );
    assert_eq!(standin.calls("GetSessionToken"), 1);
    assert_eq!(standin.calls("AssumeRole"), 2);
}

const BOTOCORE_ACCESS_KEYS: &str = r#"
import json, sys
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

url, key, secret, serial, code = sys.argv[1:6]
session = botocore.session.Session()
config = Config(retries={"max_attempts": 1})

def client(service, key, secret, token=None):
    return session.create_client(
        service, endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
        aws_secret_access_key=secret, aws_session_token=token, config=config)

out = {}
try:
    client("iam", key, secret).create_access_key()
except ClientError as e:
    out["without_mfa"] = e.response["Error"]["Code"]
creds = client("sts", key, secret).get_session_token(
    SerialNumber=serial, TokenCode=code)["Credentials"]
iam = client("iam", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
new = iam.create_access_key()["AccessKey"]
out["new"] = [new["UserName"], new["AccessKeyId"], new["Status"], len(new["SecretAccessKey"]),
              new["CreateDate"].year]
try:
    iam.create_access_key()
except ClientError as e:
    out["third"] = [e.response["Error"]["Code"], e.response["Error"]["Message"]]
iam.update_access_key(AccessKeyId=key, Status="Inactive")
listed = iam.list_access_keys()
out["listed"] = [[k["AccessKeyId"], k["Status"]] for k in listed["AccessKeyMetadata"]]
out["truncated"] = listed["IsTruncated"]
iam.delete_access_key(AccessKeyId=key)
try:
    iam.delete_access_key(AccessKeyId=key)
except ClientError as e:
    out["gone"] = e.response["Error"]["Code"]
print(json.dumps(out))
"#;

/// IAM's access key actions as botocore, reading IAM's service model, sees them: the XML of
/// CreateAccessKey and ListAccessKeys parses (CreateDate a timestamp), and the refusals carry
/// IAM's codes.
#[test]
fn botocore_reads_the_access_key_actions() {
    let python = std::env::var("MFA_EXEC_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let has_botocore = Command::new(&python)
        .args(["-c", "import botocore"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_botocore {
        skipped(&format!("{python} cannot import botocore"));
        return;
    }
    let standin = start();
    let keys = alice();
    let code = standin.code(ALICE_MFA, 0);
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(&python);
    command
        .args(["-c", BOTOCORE_ACCESS_KEYS, &standin.url()])
        .args([
            &keys.access_key_id,
            &keys.secret_access_key,
            ALICE_MFA,
            &code,
        ])
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("AWS_")
            && !matches!(
                name.as_str(),
                "AWS_CONFIG_FILE" | "AWS_SHARED_CREDENTIALS_FILE" | "AWS_EC2_METADATA_DISABLED"
            )
        {
            command.env_remove(&name);
        }
    }
    let output = command.output().expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let out: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(out["without_mfa"], "AccessDenied");
    let new_id = out["new"][1].as_str().unwrap().to_string();
    assert!(new_id.starts_with("AKIA") && new_id.len() == 20, "{out}");
    assert_eq!(out["new"][0], "alice");
    assert_eq!(out["new"][2], "Active");
    assert_eq!(out["new"][3], 40);
    assert!(out["new"][4].as_u64().unwrap() >= 2026);
    assert_eq!(
        out["third"],
        serde_json::json!([
            "LimitExceeded",
            "Cannot exceed quota for AccessKeysPerUser: 2"
        ])
    );
    assert_eq!(
        out["listed"],
        serde_json::json!([[keys.access_key_id, "Inactive"], [new_id, "Active"]])
    );
    assert_eq!(out["truncated"], false);
    assert_eq!(out["gone"], "NoSuchEntity");
    assert_eq!(standin.access_keys("alice"), [(new_id, KeyStatus::Active)]);
}

// ---------------------------------------------------------------------------------------------
// The console's federation endpoint
// ---------------------------------------------------------------------------------------------

fn session_json(keys: &Keys) -> String {
    serde_json::json!({
        "sessionId": keys.access_key_id,
        "sessionKey": keys.secret_access_key,
        "sessionToken": keys.session_token.clone().unwrap_or_default(),
    })
    .to_string()
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded_pairs(pairs);
    q.insert(0, '?');
    q
}

fn form_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", percent(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn get(standin: &StandIn, path_and_query: &str, cookie: Option<&str>) -> Reply {
    let headers: Vec<(String, String)> = cookie
        .map(|c| vec![("Cookie".to_string(), c.to_string())])
        .unwrap_or_default();
    http_request(&standin.url(), "GET", path_and_query, &headers, &[]).expect("transport")
}

fn signin_token(standin: &StandIn, keys: &Keys, duration: Option<&str>) -> Reply {
    let json = session_json(keys);
    let mut pairs = vec![("Action", "getSigninToken"), ("Session", json.as_str())];
    if let Some(d) = duration {
        pairs.push(("SessionDuration", d));
    }
    get(standin, &format!("/federation{}", query(&pairs)), None)
}

fn token_of(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.body);
    let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    json["SigninToken"].as_str().unwrap().to_string()
}

#[test]
fn federation_takes_a_role_assumed_from_an_mfa_session_and_logs_in_once() {
    away_from_step_boundary();
    let standin = start();
    let session = mfa_session(&standin, 0);
    let role_keys = assume(&standin, &session, "s3-reader", &[])
        .credentials()
        .unwrap();
    let token = token_of(&signin_token(&standin, &role_keys, None));
    let login = query(&[
        ("Action", "login"),
        ("Issuer", "test"),
        (
            "Destination",
            "https://console.aws.amazon.com/s3/home?region=eu-west-1",
        ),
        ("SigninToken", &token),
    ]);
    let reply = get(&standin, &format!("/federation{login}"), None);
    assert_eq!(reply.status, 302, "{}", reply.body);
    let header = |name: &str| {
        reply
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let cookie = header("set-cookie");
    let cookie = cookie.split(';').next().unwrap();
    let page = get(&standin, &header("location"), Some(cookie));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("arn:aws:sts::123456789012:assumed-role/s3-reader/test"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("s3/home?region=eu-west-1"),
        "{}",
        page.body
    );
    // Without the cookie no console; the token again is refused.
    assert_eq!(get(&standin, &header("location"), None).status, 403);
    assert_eq!(
        get(&standin, &format!("/federation{login}"), None).status,
        400
    );
}

#[test]
fn federation_refuses_session_credentials_unknown_keys_and_a_chained_session_duration() {
    away_from_step_boundary();
    let standin = start();
    let session = mfa_session(&standin, 0);
    let refused = signin_token(&standin, &session, None);
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("GetSessionToken"), "{}", refused.body);

    let mut forged = session.clone();
    forged.secret_access_key = "wrong".into();
    assert_eq!(signin_token(&standin, &forged, None).status, 400);

    // A role assumed from the MFA session is role chaining: no SessionDuration for it, and
    // none when it was assumed with DurationSeconds either.
    let chained = assume(&standin, &session, "s3-reader", &[])
        .credentials()
        .unwrap();
    let refused = signin_token(&standin, &chained, Some("7200"));
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("role chaining"), "{}", refused.body);
    let with_duration = assume(
        &standin,
        &session,
        "s3-reader",
        &[("DurationSeconds", "1800")],
    )
    .credentials()
    .unwrap();
    assert_eq!(signin_token(&standin, &with_duration, None).status, 400);
    assert_eq!(
        standin.session_durations(),
        vec![None, None, Some("7200".to_string()), None]
    );
}

#[test]
fn federation_takes_a_session_duration_for_a_role_long_term_keys_assumed() {
    away_from_step_boundary();
    let standin = start();
    let direct = assume_with_code(
        &standin,
        &alice(),
        "s3-reader",
        0,
        &[("DurationSeconds", "7200")],
    )
    .credentials()
    .unwrap();
    token_of(&signin_token(&standin, &direct, Some("7200")));
    assert_eq!(signin_token(&standin, &direct, Some("60")).status, 400);
    assert_eq!(signin_token(&standin, &direct, Some("43201")).status, 400);
}

// Least privilege per command (issue 25): role permissions, session policies, session tags,
// source identity, and S3's objects.

const READ_ONLY: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";

/// alice's MFA session assumes `role_name` (role chaining: no code needed, MFA carried) with
/// `extra` parameters.
fn assume_from_session(
    standin: &StandIn,
    session: &Keys,
    role_name: &str,
    extra: &[(&str, &str)],
) -> Reply {
    assume(standin, session, role_name, extra)
}

/// Keys of `role_name` assumed from alice's MFA `session` with `extra` parameters.
#[track_caller]
fn role_keys(standin: &StandIn, session: &Keys, role_name: &str, extra: &[(&str, &str)]) -> Keys {
    let reply = assume_from_session(standin, session, role_name, extra);
    assert_ok(&reply);
    reply.credentials().unwrap()
}

/// A fresh MFA session of alice's (a code of the current step).
fn alice_session(standin: &StandIn) -> Keys {
    away_from_step_boundary();
    mfa_session(standin, 0)
}

/// An S3 request with `keys` (the body's SHA-256 stated, as botocore sends over http).
fn s3(standin: &StandIn, keys: &Keys, method: &str, path: &str, body: &[u8]) -> Reply {
    s3_request(&standin.url(), keys, method, path, &[], None, body).unwrap()
}

#[track_caller]
fn assert_s3_denied(reply: &Reply) {
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(reply.error_code().as_deref(), Some("AccessDenied"));
    assert_eq!(reply.error_message().as_deref(), Some("Access Denied"));
    assert!(
        reply.body.starts_with("<?xml"),
        "S3's error XML: {}",
        reply.body
    );
    assert!(!reply.body.contains("<Type>"), "no STS Type in S3 errors");
}

/// The one refusal a call got: (status, code, message).
fn refusal(reply: &Reply) -> (u16, String, String) {
    (
        reply.status,
        reply.error_code().unwrap_or_default(),
        reply.error_message().unwrap_or_default(),
    )
}

#[test]
fn a_role_scoped_by_read_only_access_lists_but_cannot_put_while_the_unscoped_role_can() {
    let standin = start();
    let session = alice_session(&standin);
    let scoped = role_keys(
        &standin,
        &session,
        "open",
        &[("PolicyArns.member.1.arn", READ_ONLY)],
    );
    let unscoped = role_keys(&standin, &session, "open", &[]);

    // Read-only: ListBuckets and ListObjectsV2 work, PutObject is S3's AccessDenied.
    let list = list_buckets(&standin.url(), &scoped).unwrap();
    assert_ok(&list);
    assert!(
        list.body.contains("<Name>demo-reports</Name>"),
        "{}",
        list.body
    );
    assert_ok(&s3(
        &standin,
        &scoped,
        "GET",
        "/demo-reports?list-type=2",
        b"",
    ));
    assert_s3_denied(&s3(&standin, &scoped, "PUT", "/demo-reports/a.txt", b"no"));
    assert!(standin.objects().is_empty());

    // The same role without a scope writes.
    assert_ok(&s3(
        &standin,
        &unscoped,
        "PUT",
        "/demo-reports/a.txt",
        b"yes",
    ));
    let objects = standin.objects();
    assert_eq!(objects.len(), 1);
    assert_eq!(
        (objects[0].bucket.as_str(), objects[0].key.as_str()),
        ("demo-reports", "a.txt")
    );
    assert_eq!(objects[0].body, b"yes");

    // Now the scoped session reads what the other one wrote.
    let got = s3(&standin, &scoped, "GET", "/demo-reports/a.txt", b"");
    assert_ok(&got);
    assert_eq!(got.body, "yes");

    // The session remembers its scope.
    let session = standin.session(&scoped.access_key_id).unwrap();
    assert_eq!(session.policy_arns, vec![READ_ONLY.to_string()]);
    assert_eq!(session.policy, None);
}

#[test]
fn an_inline_deny_blocks_put_object_and_a_session_policy_never_grants_more_than_the_role() {
    let standin = start();
    let session = alice_session(&standin);
    let deny_put = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"s3:*","Resource":"*"},
        {"Effect":"Deny","Action":"s3:PutObject","Resource":"arn:aws:s3:::demo-reports/*"}]}"#;
    let keys = role_keys(&standin, &session, "open", &[("Policy", deny_put)]);
    assert_s3_denied(&s3(&standin, &keys, "PUT", "/demo-reports/x", b"1"));
    // The Deny names one bucket: the other is still writable.
    assert_ok(&s3(&standin, &keys, "PUT", "/demo-logs/x", b"1"));

    // s3-reader may only read: a session policy allowing everything does not let it write.
    let allow_all =
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;
    let reader = role_keys(&standin, &session, "s3-reader", &[("Policy", allow_all)]);
    assert_s3_denied(&s3(&standin, &reader, "PUT", "/demo-logs/y", b"1"));
    assert_ok(&s3(&standin, &reader, "GET", "/demo-logs/x", b""));
}

#[test]
fn session_policies_sts_cannot_use_are_refused_with_its_codes() {
    let standin = start();
    let session = alice_session(&standin);
    let try_with =
        |extra: &[(&str, &str)]| refusal(&assume_from_session(&standin, &session, "open", extra));

    assert_eq!(
        try_with(&[("Policy", "{\"Statement\": [")]),
        (
            400,
            "MalformedPolicyDocument".into(),
            "This policy contains invalid Json".into()
        )
    );
    assert_eq!(
        try_with(&[(
            "Policy",
            r#"{"Statement":[{"Effect":"Allow","Action":"PutObject","Resource":"*"}]}"#
        )]),
        (
            400,
            "MalformedPolicyDocument".into(),
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.".into()
        )
    );
    assert_eq!(
        try_with(&[(
            "PolicyArns.member.1.arn",
            "arn:aws:iam::aws:policy/NoSuchPolicy"
        )]),
        (
            400,
            "MalformedPolicyDocument".into(),
            "Policy arn:aws:iam::aws:policy/NoSuchPolicy does not exist or is not attachable."
                .into()
        )
    );

    // Eleven managed policies: one too many.
    let names: Vec<String> = (1..=11)
        .map(|n| format!("PolicyArns.member.{n}.arn"))
        .collect();
    let eleven: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), READ_ONLY)).collect();
    let (status, code, message) = try_with(&eleven);
    assert_eq!((status, code.as_str()), (400, "ValidationError"));
    assert!(
        message.starts_with("1 validation error detected: Value '["),
        "{message}"
    );
    assert!(message.ends_with("at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10"), "{message}");

    // 2,049 characters of plain text, whitespace counting as written.
    let statement =
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#;
    let long = format!("{statement}{}", " ".repeat(2049 - statement.len()));
    let (status, code, message) = try_with(&[("Policy", &long)]);
    assert_eq!((status, code.as_str()), (400, "ValidationError"));
    assert!(message.ends_with("at 'policy' failed to satisfy constraint: Member must have length less than or equal to 2048"), "{message}");

    // 2,048 characters inline are allowed, but not with a managed policy's ARN besides.
    let full = format!("{statement}{}", " ".repeat(2048 - statement.len()));
    assert_ok(&assume_from_session(
        &standin,
        &session,
        "open",
        &[("Policy", &full)],
    ));
    assert_eq!(
        try_with(&[("Policy", &full), ("PolicyArns.member.1.arn", READ_ONLY)]),
        (
            400,
            "PackedPolicyTooLarge".into(),
            "Packed policy consumes 102% of allotted space, please use smaller policy.".into()
        )
    );
    // The refusals are STS's XML.
    let reply = assume_from_session(&standin, &session, "open", &[("Policy", "nope")]);
    assert_error(
        &reply,
        400,
        "MalformedPolicyDocument",
        "This policy contains invalid Json",
    );
}

#[test]
fn session_tags_and_a_source_identity_outside_sts_rules_are_refused() {
    let standin = start();
    let session = alice_session(&standin);
    let try_on = |role_name: &str, extra: &[(&str, &str)]| {
        refusal(&assume_from_session(&standin, &session, role_name, extra))
    };

    // 51 tags.
    let names: Vec<(String, String)> = (1..=51)
        .map(|n| {
            (
                format!("Tags.member.{n}.Key"),
                format!("Tags.member.{n}.Value"),
            )
        })
        .collect();
    let keys: Vec<String> = (1..=51).map(|n| format!("k{n}")).collect();
    let mut tags: Vec<(&str, &str)> = Vec::new();
    for ((k, v), key) in names.iter().zip(&keys) {
        tags.push((k, key));
        tags.push((v, "v"));
    }
    let (status, code, message) = try_on("open", &tags);
    assert_eq!((status, code.as_str()), (400, "ValidationError"));
    assert!(message.ends_with("at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50"), "{message}");
    // Fifty are allowed.
    assert_ok(&assume_from_session(
        &standin,
        &session,
        "open",
        &tags[..100],
    ));

    let tag =
        |k: &'static str, v: &'static str| [("Tags.member.1.Key", k), ("Tags.member.1.Value", v)];
    assert_eq!(
        try_on("open", &tag("no*stars", "v")),
        (
            400,
            "ValidationError".into(),
            r"1 validation error detected: Value 'no*stars' at 'tags.1.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+".into()
        )
    );
    let long_value = "v".repeat(257);
    let (_, code, message) = try_on(
        "open",
        &[
            ("Tags.member.1.Key", "k"),
            ("Tags.member.1.Value", &long_value),
        ],
    );
    assert_eq!(code, "ValidationError");
    assert!(message.ends_with("at 'tags.1.member.value' failed to satisfy constraint: Member must have length less than or equal to 256"), "{message}");

    let mut transitive_elsewhere = tag("Project", "x").to_vec();
    transitive_elsewhere.push(("TransitiveTagKeys.member.1", "Team"));
    assert_eq!(
        try_on("open", &transitive_elsewhere),
        (
            400,
            "InvalidParameterValue".into(),
            "The specified transitive tag key must be included in the requested tags.".into()
        )
    );
    assert_eq!(
        try_on(
            "open",
            &[
                ("Tags.member.1.Key", "Project"),
                ("Tags.member.1.Value", "a"),
                ("Tags.member.2.Key", "project"),
                ("Tags.member.2.Value", "b"),
            ]
        ),
        (
            400,
            "InvalidParameterValue".into(),
            "Duplicate tag keys found. Please note that Tag keys are case insensitive.".into()
        )
    );

    // The source identity: 2–64 of [\w+=,.@-], so never `aws:…`.
    for bad in ["aws:alice", "a", "alice smith"] {
        let (_, code, message) = try_on("open", &[("SourceIdentity", bad)]);
        assert_eq!(code, "ValidationError", "{bad}: {message}");
        assert!(
            message.contains("at 'sourceIdentity' failed to satisfy constraint"),
            "{message}"
        );
    }

    // partner's trust policy allows neither sts:TagSession nor sts:SetSourceIdentity.
    let partner = |extra: &[(&str, &str)]| {
        let mut all = vec![("ExternalId", "partner-ext-id")];
        all.extend_from_slice(extra);
        refusal(&assume_from_session(&standin, &session, "partner", &all))
    };
    let session_arn = "arn:aws:iam::123456789012:user/alice";
    assert_eq!(
        partner(&tag("Project", "x")),
        (
            403,
            "AccessDenied".into(),
            format!(
                "User: {session_arn} is not authorized to perform: sts:TagSession on resource: {}",
                role("partner")
            )
        )
    );
    assert_eq!(
        partner(&[("SourceIdentity", "alice")]),
        (
            403,
            "AccessDenied".into(),
            format!("User: {session_arn} is not authorized to perform: sts:SetSourceIdentity on resource: {}", role("partner"))
        )
    );
    assert_ok(&assume_from_session(
        &standin,
        &session,
        "partner",
        &[("ExternalId", "partner-ext-id")],
    ));
}

#[test]
fn transitive_tags_pass_along_a_chain_and_cannot_be_overridden_there() {
    let standin = start();
    let session = alice_session(&standin);
    let hub = role_keys(
        &standin,
        &session,
        "hub",
        &[
            ("Tags.member.1.Key", "Project"),
            ("Tags.member.1.Value", "apollo"),
            ("Tags.member.2.Key", "Ticket"),
            ("Tags.member.2.Value", "T-1"),
            ("TransitiveTagKeys.member.1", "Project"),
        ],
    );
    let reply = assume(
        &standin,
        &hub,
        "target",
        &[("Tags.member.1.Key", "Step"), ("Tags.member.1.Value", "2")],
    );
    assert_ok(&reply);
    assert!(reply.field("PackedPolicySize").is_some(), "{}", reply.body);
    let target = reply.credentials().unwrap();
    let session = standin.session(&target.access_key_id).unwrap();
    // Project came along (still transitive); Ticket stayed with the hub's session.
    assert_eq!(
        session.tags,
        vec![
            ("Project".to_string(), "apollo".to_string()),
            ("Step".to_string(), "2".to_string())
        ]
    );
    assert_eq!(session.transitive_tag_keys, vec!["Project".to_string()]);

    // Setting Project again down the chain, in any case, is refused.
    for key in ["Project", "PROJECT"] {
        let again = assume(
            &standin,
            &hub,
            "target",
            &[
                ("Tags.member.1.Key", key),
                ("Tags.member.1.Value", "gemini"),
            ],
        );
        assert_error(
            &again,
            400,
            "InvalidParameterValue",
            "One of the specified transitive tag keys can't be set because it conflicts with a transitive tag key from the calling session.",
        );
    }
    // And the role whose trust policy does not allow sts:TagSession cannot take them on.
    let auditor = assume(&standin, &hub, "auditor", &[]);
    assert_error(&auditor, 403, "AccessDenied", "User: arn:aws:sts::123456789012:assumed-role/hub/test is not authorized to perform: sts:TagSession");
}

#[test]
fn a_source_identity_once_set_stays_for_the_whole_chain() {
    let standin = start();
    let hub_reply = {
        away_from_step_boundary();
        let session = mfa_session(&standin, 0);
        assume_from_session(
            &standin,
            &session,
            "hub",
            &[("SourceIdentity", "alice@example.com")],
        )
    };
    assert_ok(&hub_reply);
    assert_eq!(
        hub_reply.field("SourceIdentity").as_deref(),
        Some("alice@example.com")
    );
    let hub = hub_reply.credentials().unwrap();

    // Not repeated: inherited.
    let target = assume(&standin, &hub, "target", &[]);
    assert_ok(&target);
    assert_eq!(
        target.field("SourceIdentity").as_deref(),
        Some("alice@example.com")
    );
    let keys = target.credentials().unwrap();
    assert_eq!(
        standin
            .session(&keys.access_key_id)
            .unwrap()
            .source_identity
            .as_deref(),
        Some("alice@example.com")
    );
    // Repeated unchanged: fine. Changed: refused.
    assert_ok(&assume(
        &standin,
        &hub,
        "target",
        &[("SourceIdentity", "alice@example.com")],
    ));
    let changed = assume(&standin, &hub, "target", &[("SourceIdentity", "mallory")]);
    assert_error(
        &changed,
        403,
        "AccessDenied",
        &format!(
            "User: arn:aws:sts::123456789012:assumed-role/hub/test is not authorized to perform: sts:SetSourceIdentity on resource: {}",
            role("target")
        ),
    );
}

#[test]
fn s3_keeps_the_bytes_put_and_refuses_a_body_that_does_not_match_its_hash() {
    let standin = start();
    let session = alice_session(&standin);
    let keys = role_keys(&standin, &session, "open", &[]);
    let body = b"line one\nline two\n";

    // A stated SHA-256 that is not the body's.
    let wrong = "0".repeat(64);
    let refused = s3_request(
        &standin.url(),
        &keys,
        "PUT",
        "/demo-logs/app.log",
        &[],
        Some(&wrong),
        body,
    )
    .unwrap();
    assert_eq!(
        refusal(&refused),
        (
            400,
            "XAmzContentSHA256Mismatch".into(),
            "The provided 'x-amz-content-sha256' header does not match what was computed.".into()
        )
    );
    // An S3 request must state one.
    let headers = sign_request(
        "GET",
        &standin.url(),
        "/demo-logs?list-type=2",
        &[],
        b"",
        &keys,
        "us-east-1",
        "s3",
        SystemTime::now(),
    )
    .unwrap();
    let unstated = http_request(
        &standin.url(),
        "GET",
        "/demo-logs?list-type=2",
        &headers,
        b"",
    )
    .unwrap();
    assert_eq!(refusal(&unstated).1, "InvalidRequest");
    assert!(standin.objects().is_empty());

    // The right hash, and UNSIGNED-PAYLOAD (S3 takes it; the signature then covers no body).
    let put = s3_request(
        &standin.url(),
        &keys,
        "PUT",
        "/demo-logs/app.log",
        &[("content-type", "text/plain")],
        None,
        body,
    )
    .unwrap();
    assert_ok(&put);
    // S3's ETag of a single-part object: the MD5 of its bytes, quoted.
    assert_eq!(
        put.header("etag"),
        Some("\"987929d61c9b69f0c6406b840aa77fd8\"")
    );
    let unsigned = s3_request(
        &standin.url(),
        &keys,
        "PUT",
        "/demo-logs/dir/other%20name.txt",
        &[],
        Some("UNSIGNED-PAYLOAD"),
        b"x",
    )
    .unwrap();
    assert_ok(&unsigned);

    // GetObject gives back the bytes, HeadObject their length.
    let got = s3(&standin, &keys, "GET", "/demo-logs/app.log", b"");
    assert_ok(&got);
    assert_eq!(got.body.as_bytes(), body);
    assert_eq!(got.header("content-type"), Some("text/plain"));
    assert_eq!(got.header("etag"), put.header("etag"));
    let head = s3(&standin, &keys, "HEAD", "/demo-logs/app.log", b"");
    assert_ok(&head);
    assert_eq!(
        head.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(
        refusal(&s3(&standin, &keys, "GET", "/demo-logs/missing", b"")),
        (
            404,
            "NoSuchKey".into(),
            "The specified key does not exist.".into()
        )
    );
    assert_eq!(
        refusal(&s3(
            &standin,
            &keys,
            "GET",
            "/no-such-bucket?list-type=2",
            b""
        ))
        .1,
        "NoSuchBucket"
    );

    // ListObjectsV2 as `aws s3 ls s3://demo-logs/` asks: a delimiter rolls dir/ up.
    let ls = s3(
        &standin,
        &keys,
        "GET",
        "/demo-logs?list-type=2&prefix=&delimiter=%2F&encoding-type=url",
        b"",
    );
    assert_ok(&ls);
    assert!(ls.body.contains("<Key>app.log</Key>"), "{}", ls.body);
    assert!(
        ls.body
            .contains("<CommonPrefixes><Prefix>dir/</Prefix></CommonPrefixes>"),
        "{}",
        ls.body
    );
    assert!(ls.body.contains("<KeyCount>2</KeyCount>"), "{}", ls.body);
    let inside = s3(
        &standin,
        &keys,
        "GET",
        "/demo-logs?list-type=2&prefix=dir%2F&encoding-type=url",
        b"",
    );
    assert!(
        inside.body.contains("<Key>dir/other%20name.txt</Key>"),
        "{}",
        inside.body
    );

    // What the stand-in does not serve is said plainly.
    let multipart = s3(&standin, &keys, "POST", "/demo-logs/big?uploads", b"");
    assert_eq!(
        (multipart.status, multipart.error_code().as_deref()),
        (501, Some("NotImplemented"))
    );
}

#[test]
fn assumed_roles_lists_each_assume_role_with_what_it_carried() {
    let standin = start();
    let session = alice_session(&standin);
    let policy = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}}"#;
    assert_ok(&assume_from_session(
        &standin,
        &session,
        "open",
        &[
            ("Policy", policy),
            ("PolicyArns.member.1.arn", READ_ONLY),
            ("Tags.member.1.Key", "Command"),
            ("Tags.member.1.Value", "aws s3 ls"),
            ("TransitiveTagKeys.member.1", "Command"),
            ("SourceIdentity", "alice"),
        ],
    ));
    assume_from_session(
        &standin,
        &session,
        "partner",
        &[("SourceIdentity", "alice")],
    );

    let calls = standin.assumed_roles();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0],
        AssumedRole {
            role_arn: role("open"),
            session_name: "test".into(),
            policy: Some(policy.into()),
            policy_arns: vec![READ_ONLY.into()],
            tags: vec![("Command".into(), "aws s3 ls".into())],
            transitive_tag_keys: vec!["Command".into()],
            source_identity: Some("alice".into()),
            error: None,
        }
    );
    assert_eq!(calls[1].error.as_deref(), Some("AccessDenied"));
}

#[test]
fn a_phone_that_cannot_read_the_code_hangs_up_on_the_program_instead_of_leaving_it_waiting() {
    // The program asks for a code with no QR code on its screen: the phone gives up, and the
    // program must then see its terminal go away (SIGHUP), not wait for a code forever.
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!(
        "echo $$ > '{}'; printf 'Enter the first code: ' >&2; read code",
        pid_file.display()
    );
    let status = Command::new(env!("CARGO_BIN_EXE_sts-standin"))
        .args(["phone", "--", "sh", "-c", &script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("sts-standin runs");
    assert!(
        !status.success(),
        "the phone reports that it could not read a code"
    );
    let pid = std::fs::read_to_string(&pid_file).expect("the program started");
    let pid = pid.trim();
    let alive = || {
        Command::new("kill")
            .args(["-0", pid])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let deadline = SystemTime::now() + Duration::from_secs(10);
    while alive() && SystemTime::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let still_waiting = alive();
    if still_waiting {
        let _ = Command::new("kill").args(["-9", pid]).status();
    }
    assert!(
        !still_waiting,
        "the program still waits for a code 10 s after the phone gave up"
    );
}
