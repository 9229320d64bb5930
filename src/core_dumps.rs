//! No core dumps of mfa-exec. A core file holds what the process had in memory: the long-term
//! secret key read from the credentials file or the keyring and the temporary credentials, and
//! crash collectors (systemd-coredump, apport) keep it for days, whatever the shell's
//! `ulimit -c` says. So before anything is read, in every mode, the process makes itself
//! non-dumpable (Linux: `prctl(PR_SET_DUMPABLE, 0)`, which those collectors honour; it also
//! keeps the user's other processes from attaching a debugger or reading its memory through
//! /proc) and lowers its own soft core limit to 0 (everywhere).
//!
//! The command mfa-exec runs keeps what the user gave it: `execve` makes a process dumpable
//! again by itself, and the core limit is put back just for the exec or the spawn
//! ([`with_users_limit`]). During that call the process is still non-dumpable on Linux.

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use std::sync::OnceLock;

/// The soft core limit mfa-exec started with, for the commands it starts.
static USERS_LIMIT: OnceLock<nix::sys::resource::rlim_t> = OnceLock::new();

/// Makes this process non-dumpable and its core limit 0. First thing in `main`.
pub(crate) fn forbid() {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_dumpable(false);
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_CORE) {
        if setrlimit(Resource::RLIMIT_CORE, 0, hard).is_ok() {
            let _ = USERS_LIMIT.set(soft);
        }
    }
}

/// Runs `start` (an exec, a spawn) with the core limit mfa-exec was given, so the command
/// inherits that one; 0 again afterwards (a spawned child runs on, an exec may fail).
pub(crate) fn with_users_limit<T>(start: impl FnOnce() -> T) -> T {
    let Some(&soft) = USERS_LIMIT.get() else {
        return start();
    };
    let hard = getrlimit(Resource::RLIMIT_CORE).map_or(soft, |(_, hard)| hard);
    let _ = setrlimit(Resource::RLIMIT_CORE, soft, hard);
    let result = start();
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, hard);
    result
}
