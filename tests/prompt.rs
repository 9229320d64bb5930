//! The MFA prompt, through a real pseudo-terminal: it appears on the terminal, not on stdout,
//! does not echo the code, asks again after a malformed or refused code, works while stdout
//! is captured (as under `eval "$(mfa-exec --print-env)"`), and gives way to Ctrl-C.

mod support;

use support::env::*;
use support::pty::OnTerminal;

#[test]
fn the_prompt_is_on_the_terminal_and_stdout_carries_only_the_childs_output() {
    let env = TestEnv::new();
    let Some(mut term) = OnTerminal::start(&env, &["-p", "alice", "--", "echo", "child-output"])
    else {
        return;
    };
    term.expect(&format!("Enter MFA code for {ALICE_SERIAL}: "));
    let code = env.alice_code();
    term.type_line(&code);
    let (status, stdout, screen) = term.finish();
    assert_eq!(status, Some(0), "terminal: {screen}");
    assert_eq!(stdout, "child-output\n");
    assert!(!screen.contains(&code), "the code was echoed: {screen:?}");
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}

#[test]
fn print_env_prompts_on_the_terminal_while_its_output_is_captured() {
    let env = TestEnv::new();
    let Some(mut term) = OnTerminal::start(&env, &["-p", "s3-reader", "--print-env"]) else {
        return;
    };
    term.expect("Enter MFA code for ");
    term.type_line(&env.alice_code());
    let (status, stdout, screen) = term.finish();
    assert_eq!(status, Some(0), "terminal: {screen}");
    assert!(
        stdout.starts_with("export AWS_ACCESS_KEY_ID='ASIA"),
        "{stdout}"
    );
    assert!(!stdout.contains("Enter MFA code"));
}

#[test]
fn a_malformed_code_is_asked_again_without_a_network_call() {
    let env = TestEnv::new();
    let Some(mut term) = OnTerminal::start(&env, &["-p", "alice", "--", "true"]) else {
        return;
    };
    term.expect("Enter MFA code for ");
    term.type_line("12ab");
    term.expect("not a 6-digit code");
    assert_eq!(env.sts.total_calls(), 0);
    term.expect("Enter MFA code for ");
    term.type_line(&env.alice_code());
    let (status, _, screen) = term.finish();
    assert_eq!(status, Some(0), "terminal: {screen}");
    assert_eq!(env.sts.calls("GetSessionToken"), 1);
}

#[test]
fn a_code_sts_refuses_is_followed_by_a_prompt_for_the_next_one() {
    let env = TestEnv::new();
    let Some(mut term) = OnTerminal::start(&env, &["-p", "alice", "--", "true"]) else {
        return;
    };
    let good = env.alice_code();
    let wrong = format!(
        "{:06}",
        (good.parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    term.expect("Enter MFA code for ");
    term.type_line(&wrong);
    term.expect("enter the next code");
    term.expect("Enter MFA code for ");
    term.type_line(&good);
    let (status, _, screen) = term.finish();
    assert_eq!(status, Some(0), "terminal: {screen}");
    assert_eq!(env.sts.calls("GetSessionToken"), 2);
}

#[test]
fn three_codes_sts_refuses_end_the_run_with_advice_about_the_devices_clock() {
    let env = TestEnv::new();
    let Some(mut term) = OnTerminal::start(&env, &["-p", "alice", "--", "true"]) else {
        return;
    };
    let good: u32 = env.alice_code().parse().unwrap();
    for n in 1..=3 {
        term.expect("Enter MFA code for ");
        term.type_line(&format!("{:06}", (good + n * 111_111) % 1_000_000));
    }
    let (status, stdout, screen) = term.finish();
    assert_eq!(status, Some(125), "terminal: {screen}");
    assert!(stdout.is_empty());
    assert!(
        screen.contains("mfa-exec: STS refused 3 MFA codes in a row; check the device's clock"),
        "{screen}"
    );
    assert_eq!(env.sts.calls("GetSessionToken"), 3);
}

#[test]
fn three_malformed_codes_end_the_run_with_advice() {
    let env = TestEnv::new();
    let Some(mut term) = OnTerminal::start(&env, &["-p", "alice", "--", "true"]) else {
        return;
    };
    for _ in 0..3 {
        term.expect("Enter MFA code for ");
        term.type_line("nope");
    }
    let (status, stdout, screen) = term.finish();
    assert_eq!(status, Some(125));
    assert!(stdout.is_empty());
    assert!(
        screen.contains("mfa-exec: no valid MFA code after 3 tries"),
        "{screen}"
    );
    assert_eq!(env.sts.total_calls(), 0);
}

/// Ctrl-C at the prompt: the terminal driver sends SIGINT to the foreground process group
/// (mfa-exec and the script running it). mfa-exec puts echo back on and ends by that SIGINT,
/// so the shell reports 130 and the script stops, as for any command interrupted there.
#[test]
fn ctrl_c_at_the_prompt_ends_the_run_by_sigint_and_leaves_the_terminal_echoing() {
    let env = TestEnv::new();
    let Some(mut term) = OnTerminal::start_in_script(&env, &["-p", "alice", "--", "true"]) else {
        return;
    };
    term.expect(&format!("Enter MFA code for {ALICE_SERIAL}: "));
    term.press(b"\x03"); // the terminal's VINTR character
    term.finish_script().ended_by_sigint().terminal_restored();
    assert_eq!(env.sts.total_calls(), 0, "no STS call was made");
}
