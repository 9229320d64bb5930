//! A command mfa-exec starts and stays the parent of, for the modes that must outlive the
//! exec: `--server` (and a signing proxy later), which keep serving the command while it
//! runs, and exec mode itself while the history records runs, so that someone is left to see
//! the command's exit status and duration.
//!
//! Staying the parent must not change what the command's caller sees, which exec mode gets
//! for free: the command's exit status is mfa-exec's, and death by signal n is `128 + n`, as
//! a shell reports it (so `terraform apply` killed by SIGTERM still reads as killed in CI).
//! Signals are the command's to act on: a terminal's Ctrl-C or hang-up already reaches it
//! (it is in our process group), so forwarding those would deliver them twice — and tools
//! like terraform treat a second interrupt as "stop immediately" — while a signal a process
//! sent to mfa-exec (kill, systemd, a CI runner) is passed on, since only we got it.

use std::ffi::OsString;
use std::process::{ExitCode, ExitStatus};
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::backend::Handle;
use signal_hook::iterator::exfiltrator::origin::WithOrigin;
use signal_hook::iterator::SignalsInfo;
use signal_hook::low_level::siginfo::Cause;

use crate::output::environment::EnvChanges;
use crate::output::exec;

/// The running command, with the thread that passes signals on to it.
pub(crate) struct Child {
    process: std::process::Child,
    signals: Handle,
    forwarder: JoinHandle<()>,
}

impl Child {
    /// Starts `argv` with the environment changes, mfa-exec staying its parent; from here on
    /// SIGINT, SIGTERM and SIGHUP are the command's. A command that cannot start is an
    /// [`crate::exit::Exit`] with env(1)'s status (127 not found, 126 not runnable).
    pub(crate) fn spawn(argv: &[OsString], changes: &EnvChanges) -> Result<Child> {
        // Subscribe before the child exists so no signal is lost; from here on they are the
        // child's to act on, not the prompt's.
        crate::terminal::tty::leave_signals_to_the_caller();
        let mut signals = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM, SIGHUP])
            .context("cannot set up signal handling")?;
        let mut cmd = exec::command(argv, changes);
        die_with_mfa_exec(&mut cmd);
        let process = crate::core_dumps::with_users_limit(|| cmd.spawn())
            .map_err(|e| exec::cannot_run(&argv[0], &e))?;
        let pid = nix::unistd::Pid::from_raw(process.id() as i32);
        let handle = signals.handle();
        let forwarder = std::thread::spawn(move || {
            for origin in signals.forever() {
                // From the terminal: the child has it already. Sent by a process: ours alone.
                if matches!(origin.cause, Cause::Sent(_)) {
                    if let Ok(sig) = nix::sys::signal::Signal::try_from(origin.signal) {
                        let _ = nix::sys::signal::kill(pid, sig);
                    }
                }
            }
        });
        Ok(Child {
            process,
            signals: handle,
            forwarder,
        })
    }

    /// Waits for the command to end, passing signals on meanwhile; then stops passing them.
    pub(crate) fn wait(mut self) -> Result<ExitStatus> {
        let status = self.process.wait().context("cannot wait for the command")?;
        self.signals.close();
        let _ = self.forwarder.join();
        Ok(status)
    }
}

/// The command is killed with mfa-exec (Linux: `PR_SET_PDEATHSIG`), as it would be if mfa-exec
/// had exec'd it: a CI runner's or the OOM killer's SIGKILL of mfa-exec, which cannot be
/// caught and passed on, must not leave the command running without its parent, its
/// credential endpoint or its history line. Linux sends the signal when the *thread* that
/// started the child ends: every mode starts it from the main thread, which lives until
/// mfa-exec exits, and by then the command has ended (or mfa-exec died).
fn die_with_mfa_exec(cmd: &mut std::process::Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = nix::unistd::getpid();
        // SAFETY: the hook runs in the child between fork and exec, where only
        // async-signal-safe calls are allowed: it makes two system calls (prctl, getppid),
        // allocates nothing and takes no lock.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
                // mfa-exec died between the fork and the prctl: the signal would never come.
                if nix::unistd::getppid() != parent {
                    return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// mfa-exec's status for the command's: its own, or 128 + n when it died of signal n (as
/// shells report it).
pub(crate) fn exit_code(status: ExitStatus) -> ExitCode {
    ExitCode::from(status_number(status))
}

/// The number [`exit_code`] ends with, for the history.
pub(crate) fn status_number(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => (128 + sig) as u8,
        _ => crate::exit::FAILURE,
    }
}

/// Ends mfa-exec as the command ended, for exec mode, whose caller saw the command itself
/// end before mfa-exec stayed its parent: the same status, or death by the same signal (a
/// shell script stops when a command it waits for dies of SIGINT, not when one exits with
/// 130). A signal that would not end mfa-exec leaves 128 + n.
pub(crate) fn end_as(status: ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = status.signal() {
        // mfa-exec's own core limit is 0 and it is not dumpable: a SIGQUIT or SIGSEGV passed
        // on here leaves no core of it.
        let _ = signal_hook::low_level::emulate_default_handler(sig);
    }
    exit_code(status)
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    fn sh(script: &str) -> Vec<OsString> {
        ["sh", "-c", script].map(OsString::from).to_vec()
    }

    #[test]
    fn a_command_that_exits_gives_its_status_back() {
        for code in [0, 1, 3, 255] {
            assert_eq!(
                exit_code(ExitStatus::from_raw(code << 8)),
                ExitCode::from(code as u8)
            );
        }
    }

    #[test]
    fn a_command_killed_by_a_signal_reads_as_128_plus_the_signal_as_in_a_shell() {
        assert_eq!(exit_code(ExitStatus::from_raw(2)), ExitCode::from(130)); // SIGINT
        assert_eq!(exit_code(ExitStatus::from_raw(9)), ExitCode::from(137)); // SIGKILL
        assert_eq!(exit_code(ExitStatus::from_raw(15)), ExitCode::from(143)); // SIGTERM
                                                                              // A core dump flag does not change the number.
        assert_eq!(
            exit_code(ExitStatus::from_raw(11 | 0x80)),
            ExitCode::from(139)
        );
    }

    #[test]
    fn the_command_runs_with_the_changes_and_its_status_comes_back() {
        let mut changes = EnvChanges::default();
        changes.set("MFA_EXEC_TEST_SET", "from mfa-exec");
        changes.remove("HOME");
        let child = Child::spawn(
            &sh(r#"[ "$MFA_EXEC_TEST_SET" = "from mfa-exec" ] && [ -z "${HOME+set}" ] && exit 7"#),
            &changes,
        )
        .unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(7));
    }

    #[test]
    fn a_command_that_kills_itself_is_seen_dying_of_that_signal() {
        let child = Child::spawn(&sh("kill -TERM $$"), &EnvChanges::default()).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(15));
        assert_eq!(exit_code(status), ExitCode::from(143));
    }

    #[test]
    fn a_command_that_cannot_start_has_env1s_status() {
        let missing = [OsString::from("mfa-exec-test-no-such-command")];
        let err = Child::spawn(&missing, &EnvChanges::default())
            .err()
            .expect("it cannot start");
        let exit = err.downcast_ref::<crate::exit::Exit>().unwrap();
        assert_eq!(exit.status, crate::exit::NOT_FOUND);
        assert!(
            exit.message.contains("command not found"),
            "{}",
            exit.message
        );
    }
}
