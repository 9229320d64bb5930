//! `mfa-exec cache list|clear`: what the credential cache holds (never a secret), and
//! removing it.

use std::process::ExitCode;

use anyhow::Result;

use super::print_stdout;
use crate::cli::CacheCmd;
use crate::credentials::cache::Cache;
use crate::settings::choice::{check_given, Origin};
use crate::settings::env::Env;
use crate::terminal::say;

pub(super) fn run(cmd: CacheCmd, env: &Env) -> Result<ExitCode> {
    // `cache clear` without -p clears every profile's entries, so only a name given is checked
    // (and never AWS_PROFILE's: it does not narrow what is cleared).
    if let CacheCmd::Clear {
        profile: Some(name),
    } = &cmd
    {
        check_given(name, Origin::Flag)?;
    }
    let Some(cache) = Cache::existing(env)? else {
        if matches!(cmd, CacheCmd::List) {
            say("the credential cache is empty");
        }
        return Ok(ExitCode::SUCCESS);
    };
    match cmd {
        CacheCmd::List => {
            let mut out = Vec::new();
            let n = cache.list(&mut out)?;
            if n == 0 {
                say(&format!(
                    "the credential cache ({}) is empty",
                    cache.dir().display()
                ));
            }
            print_stdout(&String::from_utf8_lossy(&out))?;
        }
        CacheCmd::Clear { profile } => {
            let n = cache.clear(profile.as_deref())?;
            let whose = profile
                .map(|p| format!(" of profile {p}"))
                .unwrap_or_default();
            say(&format!(
                "removed {n} cached entr{}{whose}",
                if n == 1 { "y" } else { "ies" }
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
