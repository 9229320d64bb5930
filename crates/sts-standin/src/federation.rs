//! The console's federation endpoint (`signin.aws.amazon.com/federation`) and a console page
//! behind it, as the IAM User Guide ("Enable custom identity broker access to the AWS console")
//! describes them:
//!
//! - `GET /federation?Action=getSigninToken&Session=<JSON>[&SessionDuration=S]` takes the
//!   JSON `{"sessionId", "sessionKey", "sessionToken"}` of temporary credentials this stand-in
//!   issued and answers `{"SigninToken": "…"}`. Only AssumeRole credentials are taken (never
//!   GetSessionToken's), unexpired; `SessionDuration` (900–43200) only for a role that long-term
//!   keys assumed: a role assumed with temporary credentials (role chaining, which includes a
//!   GetSessionToken session) may not be sent one, and one assumed that way *with*
//!   DurationSeconds is refused outright.
//! - `GET /federation?Action=login&Issuer=…&Destination=…&SigninToken=…` spends the token
//!   (once, within 15 minutes), sets a session cookie and redirects to `/console`, the stand-in's
//!   console page, which names the assumed role and the destination the login asked for.
//!
//! Refusals are HTTP 400 with a short text body (the endpoint sends no AWS error document).

use std::time::{Duration, SystemTime};

use crate::account::assumed_role_arn;
use crate::ids::{random_string, UPPER_ALNUM};
use crate::request::{param, Incoming};
use crate::state::{Kind, Shared, SigninToken};
use crate::xml::esc;

/// How long a sign-in token is good for.
const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// The console session cookie.
const COOKIE: &str = "standin-console";

/// A reply of the federation endpoint or the console.
pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

fn page(status: u16, content_type: &'static str, body: impl Into<String>) -> Page {
    Page {
        status,
        content_type,
        headers: Vec::new(),
        body: body.into(),
    }
}

fn refuse(message: &str) -> Page {
    page(400, "text/plain", message)
}

pub(crate) fn respond(shared: &Shared, rq: &Incoming) -> Page {
    if rq.method != "GET" {
        return page(405, "text/plain", "Method Not Allowed");
    }
    let params = rq.query_params();
    if rq.path().starts_with("/console") {
        return console(shared, rq, &params);
    }
    let action = param(&params, "Action").unwrap_or("");
    *shared
        .lock()
        .calls
        .entry(format!("federation:{action}"))
        .or_insert(0) += 1;
    match action {
        "getSigninToken" => get_signin_token(shared, &params),
        "login" => login(shared, &params),
        _ => refuse("Unknown Action"),
    }
}

fn get_signin_token(shared: &Shared, params: &[(String, String)]) -> Page {
    let mut state = shared.lock();
    let duration = param(params, "SessionDuration");
    state.session_durations.push(duration.map(String::from));
    let Some(session) = param(params, "Session") else {
        return refuse("Missing Session");
    };
    let Ok(serde_json::Value::Object(json)) = serde_json::from_str::<serde_json::Value>(session)
    else {
        return refuse("Session is not a JSON object");
    };
    let mut keys: Vec<&str> = json.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if keys != ["sessionId", "sessionKey", "sessionToken"] {
        return refuse("Session must hold sessionId, sessionKey and sessionToken");
    }
    let field = |k: &str| json.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let Some(temp) = state.temps.get(field("sessionId")).cloned() else {
        return refuse("Invalid credentials");
    };
    if temp.secret != field("sessionKey") || temp.token != field("sessionToken") {
        return refuse("Invalid credentials");
    }
    if temp.expires <= SystemTime::now() {
        return refuse("The credentials have expired");
    }
    // GetSessionToken's credentials are not federated; only AssumeRole's.
    let (Kind::Role, Some((role, session_name))) = (temp.kind, &temp.role) else {
        return refuse("Credentials from GetSessionToken cannot be used to sign in");
    };
    let duration = match duration.map(|d| d.parse::<u64>()) {
        None => None,
        Some(Ok(d)) if (900..=43_200).contains(&d) => Some(d),
        Some(_) => return refuse("SessionDuration must be between 900 and 43200"),
    };
    if temp.chained && duration.is_some() {
        return refuse("SessionDuration is not allowed for a role assumed by role chaining");
    }
    if temp.chained && temp.duration_given {
        return refuse(
            "A role assumed with DurationSeconds must be assumed with long-term credentials",
        );
    }
    let token = random_string(UPPER_ALNUM, 64);
    state.signin_tokens.insert(
        token.clone(),
        SigninToken {
            arn: assumed_role_arn(role, session_name),
            expires: SystemTime::now() + TOKEN_LIFETIME,
            used: false,
            session_duration: duration,
        },
    );
    page(
        200,
        "application/json",
        serde_json::json!({ "SigninToken": token }).to_string(),
    )
}

fn login(shared: &Shared, params: &[(String, String)]) -> Page {
    let mut state = shared.lock();
    let (Some(token), Some(destination), Some(_issuer)) = (
        param(params, "SigninToken"),
        param(params, "Destination"),
        param(params, "Issuer"),
    ) else {
        return refuse("login needs SigninToken, Destination and Issuer");
    };
    if !(destination.starts_with("https://") || destination.starts_with("http://127.0.0.1")) {
        return refuse("Destination must be an https URL");
    }
    let Some(entry) = state.signin_tokens.get_mut(token) else {
        return refuse("Invalid SigninToken");
    };
    if entry.used || entry.expires <= SystemTime::now() {
        return refuse("The SigninToken has expired or was used");
    }
    entry.used = true;
    let arn = entry.arn.clone();
    let cookie = random_string(UPPER_ALNUM, 32);
    let duration = entry
        .session_duration
        .map_or("role session".to_string(), |d| d.to_string());
    state
        .console_sessions
        .insert(cookie.clone(), (arn, duration));
    let location = format!(
        "/console?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("destination", destination)
            .finish()
    );
    let mut reply = page(302, "text/plain", "");
    reply.headers.push(("Location".into(), location));
    reply.headers.push((
        "Set-Cookie".into(),
        format!("{COOKIE}={cookie}; Path=/; HttpOnly"),
    ));
    reply
}

/// The console page: the signed-in role and where the login asked to go.
fn console(shared: &Shared, rq: &Incoming, params: &[(String, String)]) -> Page {
    let cookie = rq.header("cookie").unwrap_or("").split(';').find_map(|c| {
        c.trim()
            .strip_prefix(COOKIE)
            .and_then(|v| v.strip_prefix('='))
    });
    let state = shared.lock();
    let Some((arn, duration)) = cookie.and_then(|c| state.console_sessions.get(c)) else {
        return page(
            403,
            "text/html",
            "<html><body><h1>Not signed in</h1></body></html>",
        );
    };
    let destination = param(params, "destination").unwrap_or("");
    page(
        200,
        "text/html",
        format!(
            "<html><head><title>AWS Management Console (stand-in)</title></head><body>\n<h1>Signed in</h1>\n<p id=\"role\">{}</p>\n<p id=\"destination\">{}</p>\n<p id=\"session-duration\">{}</p>\n</body></html>\n",
            esc(arn),
            esc(destination),
            esc(duration)
        ),
    )
}
