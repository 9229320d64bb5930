//! `mfa-exec device add|list|remove`: a new IAM user setting up MFA, told against the
//! stand-in through a real pseudo-terminal. carol is where every new IAM user starts: access
//! keys and no MFA device. A test "scans" the QR code mfa-exec draws (decoding it as a phone would),
//! types two consecutive codes, and follows the device from registration to removal.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;

use sts_standin::phone::{
    consecutive_codes, decode_png_qr, decode_terminal_qr, next_code, uri_label, uri_param,
};
use sts_standin::{Keys, Reply, Signed, CAROL_KEY, CAROL_SECRET};
use support::env::*;
use support::files_under;
use support::pty::OnTerminal;

const CAROL_SERIAL: &str = "arn:aws:iam::123456789012:mfa/carol";

/// A config file as people keep them: comments, odd spacing, several profiles; carol's
/// section exists without a device.
fn hand_written_config() -> String {
    format!(
        "# Work accounts, edited by hand\n\
         [default]\n\
         region = eu-west-1   ; home region\n\
         \n\
         [profile alice]\n\
         mfa_serial = {ALICE_SERIAL}\n\
         ; alice's role profiles follow\n\
         [profile s3-reader]\n\
         role_arn = {}\n\
         source_profile = alice\n\
         \n\
         # carol joined this week\n\
         [profile carol]\n\
         region=us-east-1\n\
         output = json\n\
         # (ask ops before adding roles)\n\
         \n\
         [profile bob]\n\
         mfa_serial = {BOB_SERIAL}\n",
        role_arn("s3-reader")
    )
}

fn carol_env() -> TestEnv {
    let env = TestEnv::new();
    env.write_config(&hand_written_config());
    env.write_credentials(&format!(
        "{}\n[carol]\naws_access_key_id = {CAROL_KEY}\naws_secret_access_key = {CAROL_SECRET}\n",
        demo_credentials_file()
    ));
    env
}

fn config_text(env: &TestEnv) -> String {
    std::fs::read_to_string(env.home().join(".aws/config")).unwrap()
}

fn carol_devices(env: &TestEnv) -> Vec<(String, Option<String>)> {
    env.sts
        .devices()
        .into_iter()
        .filter(|(serial, _)| serial.contains("carol"))
        .collect()
}

/// Starts `device add ARGS` on a terminal and reads the QR code it draws: (terminal, seed).
fn start_add(env: &TestEnv, args: &[&str]) -> Option<(OnTerminal, String)> {
    let mut all = vec!["device", "add"];
    all.extend_from_slice(args);
    let mut term = OnTerminal::start(env, &all)?;
    let seed = scan_qr(&mut term);
    Some((term, seed))
}

/// Reads the QR code `device add` draws, up to its first prompt, as a phone would: the seed.
fn scan_qr(term: &mut OnTerminal) -> String {
    let screen = term.screen_until("Enter the first code: ");
    let uri = decode_terminal_qr(&screen)
        .unwrap_or_else(|| panic!("no readable QR code on the terminal:\n{screen}"));
    assert_eq!(
        uri_param(&uri, "issuer").as_deref(),
        Some("Amazon Web Services")
    );
    uri_param(&uri, "secret").expect("the URI carries the seed")
}

/// Types two codes at `device add`'s prompts (the first one is showing).
fn type_codes(term: &mut OnTerminal, (first, second): (String, String)) {
    term.type_line(&first);
    term.expect("Enter the second code: ");
    term.type_line(&second);
}

#[test]
fn carol_registers_a_device_uses_it_for_s3_lists_it_and_removes_it() {
    let Some(aws) = aws_cli() else { return };
    let env = carol_env();
    let before = config_text(&env);
    let png = env.dir.path().join("carol-qr.png");
    let png_arg = png.display().to_string();

    // Without MFA, carol's keys may not list the buckets.
    let denied = env
        .command(&aws)
        .args(["s3", "ls", "--region", "us-east-1"])
        .env("AWS_ACCESS_KEY_ID", CAROL_KEY)
        .env("AWS_SECRET_ACCESS_KEY", CAROL_SECRET)
        .output()
        .unwrap();
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("AccessDenied"));

    // Register: the QR code on the terminal holds the device's seed, labelled for the app.
    let Some((mut term, seed)) = start_add(&env, &["-p", "carol", "--qr-png", &png_arg]) else {
        return;
    };
    type_codes(&mut term, consecutive_codes(&seed));
    let (status, stdout, screen) = term.finish();
    assert_eq!(status, Some(0), "{screen}");
    assert_eq!(stdout, "", "nothing on stdout");
    assert!(
        screen.contains(&format!("MFA device {CAROL_SERIAL} is enabled for IAM user carol; mfa_serial written to [profile carol]")),
        "{screen}"
    );

    // Exactly one line more, in carol's section, after her last property.
    assert_eq!(
        config_text(&env),
        before.replace(
            "output = json\n",
            &format!("output = json\nmfa_serial = {CAROL_SERIAL}\n")
        )
    );
    assert_eq!(
        carol_devices(&env),
        vec![(CAROL_SERIAL.to_string(), Some("carol".to_string()))]
    );

    // IAM's PNG: private, and the same seed.
    let mode = std::fs::metadata(&png).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let png_uri = decode_png_qr(&std::fs::read(&png).unwrap()).expect("a readable QR PNG");
    assert_eq!(
        uri_param(&png_uri, "secret").as_deref(),
        Some(seed.as_str())
    );
    assert_eq!(uri_label(&png_uri).as_deref(), Some("carol@123456789012"));

    // The new device works at once: S3 ListBuckets through mfa-exec.
    let run = env.run_wrapping(
        &["-p", "carol", "-t", &next_code(&seed)],
        &aws,
        &["s3", "ls", "--region", "us-east-1"],
    );
    run.success();
    assert!(run.stdout.contains("demo-reports"), "{}", run.stdout);

    // `device list` marks the device the profile uses.
    let list = env.run(["device", "list", "-p", "carol"]);
    list.success();
    let line = list
        .stdout
        .lines()
        .find(|l| l.contains(CAROL_SERIAL))
        .unwrap_or_else(|| panic!("{}", list.stdout));
    assert!(
        line.starts_with('*') && line.ends_with("profile carol"),
        "{line}"
    );

    // The seed was written nowhere but the PNG asked for: not the config, not the cache.
    std::fs::remove_file(&png).unwrap();
    for file in files_under(&env.home()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&seed),
            "the seed is in {}",
            file.display()
        );
    }

    // Remove: the MFA session cached by the S3 run signs the deactivation, no code needed.
    let removed = env.run(["device", "remove", "-p", "carol"]);
    removed.success();
    assert!(
        removed.stderr.contains(&format!(
            "deactivated and deleted MFA device {CAROL_SERIAL} of IAM user carol"
        )),
        "{}",
        removed.stderr
    );
    assert_eq!(
        config_text(&env),
        before,
        "the config file is back, byte for byte"
    );
    // The MFA session of the S3 run is cleared with the device.
    assert!(
        removed.stderr.contains("; 1 cached entry cleared"),
        "{}",
        removed.stderr
    );
    assert!(carol_devices(&env).is_empty());
    let list = env.run(["device", "list", "-p", "carol"]);
    list.success();
    assert!(list.stderr.contains("has no MFA device"), "{}", list.stderr);
}

#[test]
fn wrong_codes_leave_no_device_and_no_config_line() {
    let env = carol_env();
    let before = config_text(&env);
    let Some((mut term, seed)) = start_add(&env, &["-p", "carol"]) else {
        return;
    };
    // Codes of another seed are refused by IAM; after three rounds mfa-exec gives up.
    let other = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    for round in 0..3 {
        if round > 0 {
            term.expect("Enter the first code: ");
        }
        let (a, b) = consecutive_codes(other);
        let (a, b) = if consecutive_codes(&seed) == (a.clone(), b.clone()) {
            ("000000".to_string(), "111111".to_string())
        } else {
            (a, b)
        };
        if round == 0 {
            // Checked before IAM sees them: 6 digits, and not the same code twice. What is
            // typed is not echoed.
            term.type_line("12345");
            let shown = term.screen_until("That is not a 6-digit code; try again.");
            assert!(!shown.contains("12345"), "the typing was echoed: {shown:?}");
            term.expect("Enter the first code: ");
            term.type_line(&a);
            term.expect("Enter the second code: ");
            term.type_line(&a);
            let shown = term.screen_until("That is the same code again");
            assert!(!shown.contains(&a), "the code was echoed: {shown:?}");
            term.expect("Enter the second code: ");
            term.type_line(&b);
        } else {
            type_codes(&mut term, (a, b));
        }
        if round < 2 {
            term.expect("IAM did not accept these codes");
        }
    }
    let (status, stdout, screen) = term.finish();
    assert_eq!(status, Some(125), "{screen}");
    assert_eq!(stdout, "");
    let line = screen
        .lines()
        .find(|l| l.starts_with("mfa-exec: "))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(line.contains("did not accept the codes 3 times"), "{line}");
    assert!(
        line.contains(&format!("device {CAROL_SERIAL} was deleted again")),
        "{line}"
    );
    assert!(carol_devices(&env).is_empty(), "{:?}", env.sts.devices());
    assert_eq!(config_text(&env), before);

    // Nothing left behind: the next try is not told the name is taken.
    let Some((term, _)) = start_add(&env, &["-p", "carol"]) else {
        return;
    };
    drop(term);
}

/// Ctrl-C at the first-code prompt, with the device created in IAM but not enabled: the
/// device is deleted again (an unenabled virtual device would keep its name taken), and then
/// mfa-exec ends by the SIGINT it got, echo back on, as at a run's prompt.
#[test]
fn ctrl_c_at_a_prompt_deletes_the_device_just_created_and_ends_by_sigint() {
    let env = carol_env();
    let before = config_text(&env);
    let Some(mut term) = OnTerminal::start_in_script(&env, &["device", "add", "-p", "carol"])
    else {
        return;
    };
    scan_qr(&mut term);
    assert_eq!(carol_devices(&env).len(), 1, "created, not yet enabled");
    term.press(b"\x03"); // the terminal's VINTR character
    let saw = term.finish_script();
    let line = saw
        .screen
        .lines()
        .find(|l| l.starts_with("mfa-exec: "))
        .unwrap_or_else(|| panic!("{saw:#?}"));
    assert!(
        line.contains(&format!(
            "interrupted before the device was enabled; device {CAROL_SERIAL} was deleted again"
        )),
        "{line}"
    );
    assert!(carol_devices(&env).is_empty(), "{:?}", env.sts.devices());
    assert_eq!(config_text(&env), before);
    saw.ended_by_sigint().terminal_restored();
}

#[test]
fn a_terminal_that_goes_away_leaves_no_device() {
    let env = carol_env();
    let Some((mut term, _seed)) = start_add(&env, &["-p", "carol"]) else {
        return;
    };
    // What the kernel sends when the terminal's window is closed.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(term.pid() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    term.press(b"");
    let (status, _, screen) = term.finish_with_status();
    assert_eq!(
        status.signal(),
        Some(nix::sys::signal::Signal::SIGHUP as i32),
        "killed by SIGHUP, not an exit ({status}): {screen}"
    );
    assert!(
        screen.contains("the terminal went away before the device was enabled"),
        "{screen}"
    );
    assert!(carol_devices(&env).is_empty());
}

#[test]
fn add_refuses_before_creating_anything() {
    let env = carol_env();
    // A profile that already has a device.
    env.run(["device", "add", "-p", "alice"])
        .fails(125, &["already uses MFA device", ALICE_SERIAL, "--force"]);
    // A bad device name, and no terminal to draw on.
    env.run(["device", "add", "-p", "carol", "--device-name", "my phone"])
        .fails(125, &["device name 'my phone' is not valid"]);
    env.run(["device", "add", "-p", "carol"])
        .fails(125, &["run it in a terminal"]);
    assert_eq!(env.sts.calls("CreateVirtualMFADevice"), 0);
    assert_eq!(env.sts.total_calls(), 0, "no network call at all");

    // Keys of a role session cannot own a device: refused after GetCallerIdentity.
    let role = env.sts.call(
        &sts_standin::Keys::new(ALICE_KEY, ALICE_SECRET, None),
        "AssumeRole",
        &[("RoleArn", &role_arn("open")), ("RoleSessionName", "demo")],
    );
    let keys = role.credentials().expect("role credentials");
    let mut env = env;
    env.set("AWS_ACCESS_KEY_ID", &keys.access_key_id)
        .set("AWS_SECRET_ACCESS_KEY", &keys.secret_access_key)
        .set("AWS_SESSION_TOKEN", keys.session_token.as_deref().unwrap());
    let Some(term) = OnTerminal::start(&env, &["device", "add"]) else {
        return;
    };
    let (status, _, screen) = term.finish();
    assert_eq!(status, Some(125), "{screen}");
    assert!(
        screen.contains("belongs to a role session (open/demo)"),
        "{screen}"
    );
    assert!(screen.contains("IAM user's access keys"), "{screen}");
    assert_eq!(env.sts.calls("CreateVirtualMFADevice"), 0);
}

#[test]
fn a_taken_name_says_what_to_do() {
    let env = carol_env();
    // A device left over from an earlier attempt elsewhere, under carol's name.
    let reply = env.sts.call_iam(
        &sts_standin::Keys::new(CAROL_KEY, CAROL_SECRET, None),
        "CreateVirtualMFADevice",
        &[("VirtualMFADeviceName", "carol")],
    );
    assert!(reply.is_ok(), "{}", reply.body);
    let Some(term) = OnTerminal::start(&env, &["device", "add", "-p", "carol"]) else {
        return;
    };
    let (status, _, screen) = term.finish();
    assert_eq!(status, Some(125), "{screen}");
    for needle in [
        "an MFA device named 'carol' already exists in account 123456789012",
        "--device-name",
        "device remove --serial-number arn:aws:iam::123456789012:mfa/carol",
    ] {
        assert!(screen.contains(needle), "{needle}: {screen}");
    }
    // And that removes the leftover (it was never enabled: no code needed).
    env.run([
        "device",
        "remove",
        "-p",
        "carol",
        "--serial-number",
        CAROL_SERIAL,
    ])
    .success();
    assert!(carol_devices(&env).is_empty());
}

#[test]
fn removing_needs_an_mfa_session_and_a_device() {
    let env = carol_env();
    env.run(["device", "remove", "-p", "carol"]).fails(
        125,
        &["profile 'carol' has no mfa_serial", "--serial-number"],
    );
    // alice's device: no cached MFA session and no terminal to ask for a code on, so
    // nothing is deactivated.
    env.run(["device", "remove", "-p", "alice"])
        .fails(125, &["no terminal to ask for the MFA code on"]);
    assert!(env
        .sts
        .devices()
        .iter()
        .any(|(s, u)| s == ALICE_SERIAL && u.as_deref() == Some("alice")));
    // With a code it goes, and alice's mfa_serial line with it.
    env.run(["device", "remove", "-p", "alice", "-t", &env.alice_code()])
        .success();
    assert!(!env.sts.devices().iter().any(|(s, _)| s == ALICE_SERIAL));
    assert!(!config_text(&env).contains(ALICE_SERIAL));
}

#[test]
fn force_registers_another_device_and_replaces_the_line_in_place() {
    let env = carol_env();
    let before = config_text(&env);
    let Some((mut term, seed)) = start_add(
        &env,
        &["-p", "alice", "--force", "--device-name", "alice-phone2"],
    ) else {
        return;
    };
    type_codes(&mut term, consecutive_codes(&seed));
    let (status, _, screen) = term.finish();
    assert_eq!(status, Some(0), "{screen}");
    let new_serial = "arn:aws:iam::123456789012:mfa/alice-phone2";
    assert_eq!(
        config_text(&env),
        before.replace(
            &format!("mfa_serial = {ALICE_SERIAL}\n"),
            &format!("mfa_serial = {new_serial}\n")
        )
    );
    // Both devices are alice's; the list marks the one the profile uses now.
    let list = env.run(["device", "list", "-p", "alice"]);
    list.success();
    assert!(
        list.stdout.contains(&format!("* {new_serial}")),
        "{}",
        list.stdout
    );
    assert!(
        list.stdout.contains(&format!("  {ALICE_SERIAL}")),
        "{}",
        list.stdout
    );
}

/// The stand-in's IAM, called directly: the rules of IAM that `device add|remove` meet, with
/// IAM's error codes, and a device that works for GetSessionToken as soon as it is enabled.
#[test]
fn the_stand_ins_iam_keeps_iams_rules() {
    let env = carol_env();
    let carol = Keys::new(CAROL_KEY, CAROL_SECRET, None);
    let refused = |reply: Reply, code: &str| {
        assert_eq!(reply.error_code().as_deref(), Some(code), "{}", reply.body);
    };
    let device = [("SerialNumber", CAROL_SERIAL)];
    let for_carol = [("UserName", "carol"), ("SerialNumber", CAROL_SERIAL)];

    let created = env.sts.call_iam(
        &carol,
        "CreateVirtualMFADevice",
        &[("VirtualMFADeviceName", "carol")],
    );
    assert!(created.is_ok(), "{}", created.body);
    assert_eq!(created.field("SerialNumber").as_deref(), Some(CAROL_SERIAL));
    refused(
        env.sts.call_iam(
            &carol,
            "CreateVirtualMFADevice",
            &[("VirtualMFADeviceName", "carol")],
        ),
        "EntityAlreadyExists",
    );

    // Two consecutive codes, in order; each code counts once, for IAM and STS alike.
    let enable = |first: &str, second: &str| {
        let mut params = for_carol.to_vec();
        params.extend([
            ("AuthenticationCode1", first),
            ("AuthenticationCode2", second),
        ]);
        env.sts.call_iam(&carol, "EnableMFADevice", &params)
    };
    let (first, second) = (
        env.sts.code(CAROL_SERIAL, -1),
        env.sts.code(CAROL_SERIAL, 0),
    );
    refused(enable(&second, &first), "InvalidAuthenticationCode");
    let enabled = enable(&first, &second);
    assert!(enabled.is_ok(), "{}", enabled.body);
    let listed = env
        .sts
        .call_iam(&carol, "ListMFADevices", &[("UserName", "carol")]);
    assert!(listed.body.contains(CAROL_SERIAL), "{}", listed.body);
    let session = |code: &str| {
        env.sts.call(
            &carol,
            "GetSessionToken",
            &[("SerialNumber", CAROL_SERIAL), ("TokenCode", code)],
        )
    };
    refused(session(&second), "AccessDenied");
    let with_mfa = session(&env.sts.code(CAROL_SERIAL, 1));
    let with_mfa = with_mfa.credentials().expect("an MFA session at once");

    // An enabled device is not deleted; deactivating it takes an MFA session.
    refused(
        env.sts.call_iam(&carol, "DeleteVirtualMFADevice", &device),
        "DeleteConflict",
    );
    refused(
        env.sts.call_iam(&carol, "DeactivateMFADevice", &for_carol),
        "AccessDenied",
    );
    let no_mfa = env.sts.call(&carol, "GetSessionToken", &[]);
    let no_mfa = no_mfa.credentials().expect("a session without MFA");
    refused(
        env.sts.call_iam(&no_mfa, "DeactivateMFADevice", &for_carol),
        "AccessDenied",
    );
    let deactivated = env
        .sts
        .call_iam(&with_mfa, "DeactivateMFADevice", &for_carol);
    assert!(deactivated.is_ok(), "{}", deactivated.body);
    let deleted = env
        .sts
        .call_iam(&with_mfa, "DeleteVirtualMFADevice", &device);
    assert!(deleted.is_ok(), "{}", deleted.body);
    refused(
        env.sts.call_iam(&carol, "DeleteVirtualMFADevice", &device),
        "NoSuchEntity",
    );
    assert!(carol_devices(&env).is_empty());
}

/// A device belongs to an IAM user: for a role profile, the user of its source profile signs,
/// and the role profile gets the `mfa_serial` (as `device add -p PROFILE` promises).
#[test]
fn a_role_profile_registers_its_source_users_device() {
    let env = carol_env();
    let config = format!(
        "{}[profile carol-reader]\nrole_arn = {}\nsource_profile = carol\n",
        hand_written_config(),
        role_arn("s3-reader")
    );
    env.write_config(&config);
    let Some((mut term, seed)) = start_add(&env, &["-p", "carol-reader"]) else {
        return;
    };
    type_codes(&mut term, consecutive_codes(&seed));
    let (status, _, screen) = term.finish();
    assert_eq!(status, Some(0), "{screen}");
    assert!(
        screen.contains(&format!(
            "MFA device {CAROL_SERIAL} is enabled for IAM user carol; mfa_serial written to [profile carol-reader]"
        )),
        "{screen}"
    );
    assert_eq!(
        config_text(&env),
        format!("{config}mfa_serial = {CAROL_SERIAL}\n")
    );
    assert_eq!(
        carol_devices(&env),
        vec![(CAROL_SERIAL.to_string(), Some("carol".to_string()))]
    );
}

/// alice's profile in eu-west-1, bob's in us-west-2; the other demo profiles as they are.
fn regional_config() -> String {
    demo_config_file()
        .replace(
            &format!("[profile alice]\nmfa_serial = {ALICE_SERIAL}\n"),
            &format!("[profile alice]\nmfa_serial = {ALICE_SERIAL}\nregion = eu-west-1\n"),
        )
        .replace(
            &format!("[profile bob]\nmfa_serial = {BOB_SERIAL}\n"),
            &format!("[profile bob]\nmfa_serial = {BOB_SERIAL}\nregion = us-west-2\n"),
        )
}

/// Inside an mfa-exec run for alice, the child's AWS_REGION is alice's region. A `device`
/// command for bob, whose profile names its own region, signs for bob's region, as a nested
/// run does: an outer mfa-exec's region must not beat the profile's own. A region the user
/// set (no outer mfa-exec) still beats the profile's, as in every AWS tool.
#[test]
fn inside_a_run_for_one_profile_device_list_for_another_signs_for_that_profiles_region() {
    let mut env = TestEnv::new();
    env.write_config(&regional_config());
    let run = env.run([
        "-p",
        "alice",
        "-t",
        &env.alice_code(),
        "--",
        TestEnv::bin(),
        "device",
        "list",
        "-p",
        "bob",
    ]);
    run.success().prints(BOB_SERIAL);
    assert_eq!(env.sts.regions_of("GetSessionToken"), ["eu-west-1"]);
    let bobs: Vec<Signed> = env
        .sts
        .requests()
        .into_iter()
        .filter(|r| r.access_key_id == BOB_KEY)
        .collect();
    let signed_for = |action: &str| -> Vec<(String, String)> {
        bobs.iter()
            .filter(|r| r.action == action)
            .map(|r| (r.service.clone(), r.region.clone()))
            .collect()
    };
    // STS is regional: "who am I" goes to bob's region.
    assert_eq!(
        signed_for("GetCallerIdentity"),
        [("sts".to_string(), "us-west-2".to_string())],
        "{bobs:?}"
    );
    // IAM is global: in the aws partition it is signed for us-east-1, whatever the region.
    assert_eq!(
        signed_for("ListMFADevices"),
        [("iam".to_string(), "us-east-1".to_string())],
        "{bobs:?}"
    );

    env.set("AWS_REGION", "ap-south-1");
    env.run(["device", "list", "-p", "bob"])
        .success()
        .prints(BOB_SERIAL);
    assert_eq!(
        env.sts.regions_of("GetCallerIdentity"),
        ["us-west-2", "ap-south-1"]
    );
}

/// A region that is no region name is refused before any call, by runs and `device`
/// commands alike: it would otherwise end up in the signature and in the endpoint's host.
#[test]
fn a_malformed_region_is_refused_before_any_call_by_runs_and_device_commands() {
    let env = TestEnv::new();
    env.write_config(&demo_config_file().replace(
        &format!("[profile alice]\nmfa_serial = {ALICE_SERIAL}\n"),
        &format!("[profile alice]\nmfa_serial = {ALICE_SERIAL}\nregion = not a region!\n"),
    ));
    let refused = ["region 'not a region!' is not a region name"];
    env.run(["-p", "alice", "-t", "123456", "--", "true"])
        .fails(125, &refused);
    env.run(["device", "list", "-p", "alice"])
        .fails(125, &refused);
    env.run(["device", "remove", "-p", "alice", "-t", "123456"])
        .fails(125, &refused);
    assert_eq!(env.sts.total_calls(), 0, "no call at all");
    assert!(env.sts.devices().iter().any(|(s, _)| s == ALICE_SERIAL));
}

// ------------------------------------------------------------------------------------------
// Faults: the config written by two runs at once, one that cannot be written, one owned by
// someone else.
// ------------------------------------------------------------------------------------------

/// The demo account with two more new users, dave and erin, each with keys and no device.
fn dave_and_erin_env() -> TestEnv {
    let mut config = sts_standin::Config::demo();
    for (name, key) in [
        ("dave", "AKIADAVEEXAMPLE7Q2Z1"),
        ("erin", "AKIAERINEXAMPLE7Q2Z1"),
    ] {
        config.users.push(sts_standin::User {
            name: name.into(),
            access_key_id: key.into(),
            secret_access_key: format!("{name}/secretK7MDENG/bPxRfiCYEXAMPLEKEY0"),
            mfa_serial: None,
            totp_seed_base32: String::new(),
        });
    }
    let env = TestEnv::with_config(config);
    env.write_config(&format!(
        "{}[profile dave]\nregion = us-east-1\n\n[profile erin]\nregion = us-east-1\n",
        demo_config_file()
    ));
    env.write_credentials(&format!(
        "{}\n[dave]\naws_access_key_id = AKIADAVEEXAMPLE7Q2Z1\naws_secret_access_key = dave/secretK7MDENG/bPxRfiCYEXAMPLEKEY0\n\
         \n[erin]\naws_access_key_id = AKIAERINEXAMPLE7Q2Z1\naws_secret_access_key = erin/secretK7MDENG/bPxRfiCYEXAMPLEKEY0\n",
        demo_credentials_file()
    ));
    env
}

#[test]
fn two_adds_finishing_at_once_both_keep_their_line() {
    // Without a lock, each run read the config before the other's rename and wrote its own
    // line into that copy: one line was lost in most rounds, with both runs saying it was
    // written. 20 rounds, the second codes typed into both terminals back to back.
    for round in 1..=20 {
        let env = dave_and_erin_env();
        let before = config_text(&env);
        let Some((mut dave, dave_seed)) = start_add(&env, &["-p", "dave"]) else {
            return;
        };
        let Some((mut erin, erin_seed)) = start_add(&env, &["-p", "erin"]) else {
            return;
        };
        let (dave_first, dave_second) = consecutive_codes(&dave_seed);
        let (erin_first, erin_second) = consecutive_codes(&erin_seed);
        dave.type_line(&dave_first);
        erin.type_line(&erin_first);
        dave.expect("Enter the second code: ");
        erin.expect("Enter the second code: ");
        dave.type_line(&dave_second);
        erin.type_line(&erin_second);
        for (term, name) in [(dave, "dave"), (erin, "erin")] {
            let (status, _, screen) = term.finish();
            assert_eq!(status, Some(0), "round {round}, {name}: {screen}");
        }
        let expected = before
            .replace(
                "[profile dave]\nregion = us-east-1\n",
                "[profile dave]\nregion = us-east-1\nmfa_serial = arn:aws:iam::123456789012:mfa/dave\n",
            )
            .replace(
                "[profile erin]\nregion = us-east-1\n",
                "[profile erin]\nregion = us-east-1\nmfa_serial = arn:aws:iam::123456789012:mfa/erin\n",
            );
        assert_eq!(config_text(&env), expected, "round {round}");
    }
}

/// `device add -p carol` as uid 65534 when the tests run as root (root may write anywhere, so
/// a read-only directory stops only another user); HOME is handed to that user first.
fn add_as_a_user(env: &TestEnv) -> Option<Run> {
    if !nix::unistd::geteuid().is_root() {
        return Some(env.run(["device", "add", "-p", "carol"]));
    }
    let setpriv = require_tool("setpriv (util-linux)", &["setpriv"])?;
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for path in [env.home(), env.home().join(".aws")]
        .into_iter()
        .chain(files_under(&env.home()))
    {
        std::os::unix::fs::lchown(&path, Some(65534), Some(65534)).unwrap();
    }
    let out = env
        .command(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(TestEnv::bin())
        .args(["device", "add", "-p", "carol"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    Some(Run::from(out))
}

#[test]
fn a_config_that_cannot_be_written_is_refused_before_any_iam_call() {
    // A dangling link (a dotfiles repository moved away): the device would be created and
    // enabled, and the line then had nowhere to go.
    let env = carol_env();
    let config = env.home().join(".aws/config");
    std::fs::remove_file(&config).unwrap();
    std::os::unix::fs::symlink("../dotfiles/aws-config", &config).unwrap();
    env.run(["device", "add", "-p", "carol"]).fails(
        125,
        &[
            "config is a symbolic link to",
            "dotfiles/aws-config, which does not exist: create that file, or remove the link",
            "no MFA device was created",
        ],
    );
    assert_eq!(env.sts.total_calls(), 0, "no IAM call at all");

    // A read-only ~/.aws: the rename that replaces the config needs to create a file there.
    let env = carol_env();
    let aws = env.home().join(".aws");
    std::fs::set_permissions(&aws, std::fs::Permissions::from_mode(0o555)).unwrap();
    let Some(run) = add_as_a_user(&env) else {
        return;
    };
    run.fails(
        125,
        &[
            ".aws does not let mfa-exec create files (Permission denied)",
            "make the directory writable (chmod u+w",
            "no MFA device was created",
        ],
    );
    assert!(!run.stderr.contains("os error"), "{}", run.stderr);
    assert_eq!(env.sts.total_calls(), 0, "no IAM call at all");

    // A read-only config file in a writable directory.
    let env = carol_env();
    std::fs::set_permissions(config_path(&env), std::fs::Permissions::from_mode(0o444)).unwrap();
    let Some(run) = add_as_a_user(&env) else {
        return;
    };
    run.fails(
        125,
        &[
            "config cannot be written (Permission denied): make it writable",
            "no MFA device was created",
        ],
    );
    assert_eq!(env.sts.total_calls(), 0, "no IAM call at all");
}

fn config_path(env: &TestEnv) -> std::path::PathBuf {
    env.home().join(".aws/config")
}

#[test]
fn an_edit_by_root_keeps_the_users_owner_group_mode_and_link() {
    // `sudo -E mfa-exec device add`: the config stays the user's file, behind the user's
    // dotfiles link, with its group and mode.
    if !nix::unistd::geteuid().is_root() {
        skipped("giving the config another owner and group needs root");
        return;
    }
    let env = carol_env();
    let dotfiles = env.home().join("dotfiles");
    std::fs::create_dir(&dotfiles).unwrap();
    let real = dotfiles.join("aws-config");
    std::fs::rename(config_path(&env), &real).unwrap();
    std::os::unix::fs::symlink("../dotfiles/aws-config", config_path(&env)).unwrap();
    std::os::unix::fs::chown(&real, Some(1000), Some(100)).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = std::fs::read_to_string(&real).unwrap();

    let Some((mut term, seed)) = start_add(&env, &["-p", "carol"]) else {
        return;
    };
    type_codes(&mut term, consecutive_codes(&seed));
    let (status, _, screen) = term.finish();
    assert_eq!(status, Some(0), "{screen}");

    use std::os::unix::fs::MetadataExt;
    let link = std::fs::symlink_metadata(config_path(&env)).unwrap();
    assert!(link.is_symlink(), "the link was replaced by a file");
    let meta = std::fs::metadata(&real).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (1000, 100, 0o640)
    );
    assert_eq!(
        std::fs::read_to_string(&real).unwrap(),
        before.replace(
            "output = json\n",
            &format!("output = json\nmfa_serial = {CAROL_SERIAL}\n")
        )
    );
    let names: Vec<_> = std::fs::read_dir(&dotfiles)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["aws-config"], "nothing left beside the real file");
}
