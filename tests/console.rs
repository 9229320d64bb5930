//! `mfa-exec console`: the AWS console signed in as the profile's role, through the stand-in's
//! federation endpoint. The sign-in URL is a bearer credential: it may be on stdout with
//! `--print-url` and in the browser's argv, and nowhere else.

mod support;

use support::env::*;

/// The s3-reader profile with a region (and a duration_seconds that a console run must not
/// send: a role assumed from the MFA session with DurationSeconds cannot sign in).
fn console_env() -> TestEnv {
    let env = TestEnv::new();
    let config = demo_config_file().replace(
        "[profile s3-reader]\n",
        "[profile s3-reader]\nregion = eu-west-1\nduration_seconds = 1800\n",
    );
    env.write_config(&config);
    env
}

/// The `SigninToken` of a login URL.
fn token_of(url: &str) -> String {
    url.split("&SigninToken=").nth(1).unwrap().to_string()
}

/// Opens a login URL as a browser would (following the redirect with its cookie) and returns
/// the console page.
fn open_like_a_browser(env: &TestEnv, url: &str) -> String {
    let path = url
        .strip_prefix(&env.sts.url())
        .expect("the stand-in's URL");
    let login = sts_standin::http_request(&env.sts.url(), "GET", path, &[], &[]).unwrap();
    assert_eq!(login.status, 302, "{}", login.body);
    let header = |name: &str| {
        login
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let cookie = header("set-cookie").split(';').next().unwrap().to_string();
    let page = sts_standin::http_request(
        &env.sts.url(),
        "GET",
        &header("location"),
        &[("Cookie".to_string(), cookie)],
        &[],
    )
    .unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    page.body
}

#[test]
fn print_url_alone_on_stdout_signs_in_as_the_role_and_a_second_run_needs_no_code() {
    let env = console_env();
    let code = env.alice_code();
    let run = env.run(["console", "-p", "s3-reader", "-t", &code, "--print-url"]);
    run.success();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.stdout);
    let url = lines[0];
    assert!(
        url.starts_with(&format!(
            "{}/federation?Action=login&Issuer=mfa-exec&Destination=",
            env.sts.url()
        )),
        "{url}"
    );
    assert!(!run.stderr.contains(&token_of(url)), "{}", run.stderr);
    let page = open_like_a_browser(&env, url);
    assert!(
        page.contains("arn:aws:sts::123456789012:assumed-role/s3-reader/"),
        "{page}"
    );
    assert!(
        page.contains("https://console.aws.amazon.com/console/home?region=eu-west-1"),
        "{page}"
    );

    // The same MFA session and role: no code, no STS call.
    let again = env.run(["console", "-p", "s3-reader", "--print-url", "--no-prompt"]);
    again.success();
    assert_ne!(token_of(again.stdout.trim()), token_of(url));
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    assert_eq!(env.sts.calls("AssumeRole"), 1);
    // A role assumed from the MFA session is role chaining: never a SessionDuration.
    assert_eq!(env.sts.session_durations(), vec![None, None]);
}

#[test]
fn without_print_url_the_browser_gets_the_url_and_neither_stdout_nor_stderr_holds_it() {
    let Some(curl) = require_tool("curl", &["curl"]) else {
        return;
    };
    let mut env = console_env();
    // A browser that follows the login with its cookie and keeps the page it lands on.
    let page = env.dir.path().join("page.html");
    let jar = env.dir.path().join("jar");
    let browser = env.dir.path().join("browser");
    std::fs::write(
        &browser,
        format!(
            "#!/bin/sh\nexec {} -sS -L -b /dev/null -c {} -o {} \"$1\"\n",
            curl.display(),
            jar.display(),
            page.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &browser,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    env.set("BROWSER", &browser.display().to_string());
    let code = env.alice_code();
    let run = env.run(["console", "-p", "s3-reader", "-t", &code, "--service", "s3"]);
    run.success();
    assert_eq!(run.stdout, "");
    assert!(!run.stderr.contains("SigninToken"), "{}", run.stderr);
    assert!(!run.stderr.contains("federation"), "{}", run.stderr);
    let page = std::fs::read_to_string(&page).unwrap();
    assert!(
        page.contains("arn:aws:sts::123456789012:assumed-role/s3-reader/"),
        "{page}"
    );
    assert!(
        page.contains("https://console.aws.amazon.com/s3/home?region=eu-west-1"),
        "{page}"
    );
}

#[test]
fn a_browser_that_cannot_start_is_one_line_suggesting_print_url() {
    let mut env = console_env();
    env.set("BROWSER", "/nonexistent/browser");
    let code = env.alice_code();
    let run = env.run(["console", "-p", "s3-reader", "-t", &code]);
    run.fails(125, &["could not open a browser", "--print-url"]);
    assert_eq!(run.stdout, "");
    assert!(!run.stderr.contains("SigninToken"), "{}", run.stderr);
}

#[test]
fn duration_2h_assumes_the_role_directly_with_a_code_and_sends_session_duration_7200() {
    let env = console_env();
    let code = env.alice_code();
    let run = env.run([
        "console",
        "-p",
        "s3-reader",
        "-t",
        &code,
        "--duration",
        "2h",
        "--print-url",
    ]);
    run.success();
    assert!(run.stderr.contains("new MFA code"), "{}", run.stderr);
    assert_eq!(env.sts.calls("GetSessionToken"), 0);
    assert_eq!(env.sts.signers_of("AssumeRole"), vec!["user/alice"]);
    assert_eq!(env.sts.session_durations(), vec![Some("7200".to_string())]);
    let page = open_like_a_browser(&env, run.stdout.trim());
    assert!(
        page.contains("<p id=\"session-duration\">7200</p>"),
        "{page}"
    );
}

#[test]
fn a_profile_without_a_role_and_bad_options_are_refused_before_any_call() {
    let env = console_env();
    env.run(["console", "-p", "alice", "--print-url"])
        .fails(125, &["profile 'alice' has no role", "role_arn"]);
    env.run(["console", "-p", "s3-reader", "--duration", "5m"])
        .fails(125, &["--duration", "15m"]);
    env.run([
        "console",
        "-p",
        "s3-reader",
        "--destination",
        "http://example.com/",
    ])
    .fails(125, &["--destination", "https"]);
    env.run(["console", "-p", "s3-reader", "--service", "S3 home"])
        .fails(125, &["--service"]);
    env.run([
        "console",
        "-p",
        "s3-reader",
        "--duration",
        "2h",
        "--no-prompt",
    ])
    .fails(125, &["--duration", "-t CODE"]);
    assert_eq!(env.sts.total_calls(), 0);
    assert!(env.sts.session_durations().is_empty());
}

#[test]
fn headless_chromium_started_through_browser_lands_on_the_roles_s3_console() {
    let Some(chromium) = require_tool("chromium", &["chromium", "chromium-browser"]) else {
        return;
    };
    let mut env = console_env();
    // As a user sets it: words, the URL added last. --dump-dom prints the page it lands on,
    // which mfa-exec passes to its stderr (stdout is the product's).
    let profile_dir = env.dir.path().join("chromium");
    env.set(
        "BROWSER",
        &format!(
            "{} --headless --no-sandbox --disable-gpu --user-data-dir={} --dump-dom",
            chromium.display(),
            profile_dir.display()
        ),
    );
    let code = env.alice_code();
    let run = env.run(["console", "-p", "s3-reader", "-t", &code, "--service", "s3"]);
    run.success();
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .contains("<p id=\"role\">arn:aws:sts::123456789012:assumed-role/s3-reader/"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "<p id=\"destination\">https://console.aws.amazon.com/s3/home?region=eu-west-1</p>"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn from_inside_an_mfa_exec_child_console_uses_its_own_cache_not_the_environments_keys() {
    let env = console_env();
    let code = env.alice_code();
    let bin = std::path::Path::new(TestEnv::bin());
    let run = env.run_wrapping(
        &["-p", "s3-reader", "-t", &code],
        bin,
        &["console", "--print-url", "--no-prompt"],
    );
    run.success();
    assert!(run.stdout.contains("Action=login"), "{}", run.stdout);
    // The child's environment named the profile and the cache held the MFA session: one code.
    // The run's role was assumed with the profile's duration_seconds, which cannot sign in, so
    // the console assumed it again from the cached session, without DurationSeconds or a code.
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
    assert_eq!(
        env.sts.signers_of("AssumeRole"),
        vec!["session/alice", "session/alice"]
    );
    assert_eq!(env.sts.session_durations(), vec![None]);
}
