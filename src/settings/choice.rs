//! Which profile a command acts on: one rule for every command that takes `-p` (runs,
//! `console`, `device`, `keys`), so a command nested in `mfa-exec -p alice -- bash` acts on
//! alice whichever command it is, and one check of the name, before anything is read or called.
//!
//! The order is the AWS CLI's (`--profile`, then `AWS_PROFILE`, then the older
//! `AWS_DEFAULT_PROFILE`) with one step of mfa-exec's before `default`: the profile an outer
//! mfa-exec loaded. An outer run removes `AWS_PROFILE` from its command's environment (the
//! SDKs would otherwise prefer that profile's keys to the ones it hands on) and leaves
//! `MFA_EXEC_PROFILE` instead.

use anyhow::{bail, Result};

use super::env::Env;
use crate::profile::check_name;

/// Set by an outer run in its command's environment: the profile it loaded.
pub(crate) const OUTER_PROFILE_VAR: &str = "MFA_EXEC_PROFILE";

/// Where the chosen name came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// `-p`/`--profile`.
    Flag,
    /// `AWS_PROFILE` or `AWS_DEFAULT_PROFILE`.
    Var(&'static str),
    /// An outer mfa-exec's profile (`MFA_EXEC_PROFILE`).
    OuterRun,
    /// Nothing named one.
    Default,
}

impl Origin {
    /// How a message names where the name came from.
    fn given_as(self) -> &'static str {
        match self {
            Origin::Flag => "--profile",
            Origin::Var(var) => var,
            Origin::OuterRun => OUTER_PROFILE_VAR,
            Origin::Default => "the profile",
        }
    }
}

/// The profile a command acts on.
#[derive(Clone, Debug)]
pub(crate) struct Choice {
    pub(crate) name: String,
    pub(crate) origin: Origin,
}

impl Choice {
    /// `--profile`, else `AWS_PROFILE`, else `AWS_DEFAULT_PROFILE`, else the outer run's
    /// profile, else `default`; the name checked.
    pub(crate) fn resolve(flag: Option<&str>, env: &Env) -> Result<Choice> {
        let choice = choose(flag, env)?;
        check_given(&choice.name, choice.origin)?;
        Ok(choice)
    }

    /// Named by the user (flag or variable): it must exist, and a missing one is explained.
    pub(crate) fn named(&self) -> bool {
        matches!(self.origin, Origin::Flag | Origin::Var(_))
    }

    /// Named with `--profile`: it beats keys in the environment, as in botocore.
    pub(crate) fn flag(&self) -> bool {
        self.origin == Origin::Flag
    }
}

fn choose(flag: Option<&str>, env: &Env) -> Result<Choice> {
    let chosen = |name: &str, origin| {
        Ok(Choice {
            name: name.to_string(),
            origin,
        })
    };
    if let Some(name) = flag {
        return chosen(name, Origin::Flag);
    }
    // A profile name that is not text would otherwise be skipped in silence, and the command
    // would use `default`: other credentials than the user asked for.
    for var in ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", OUTER_PROFILE_VAR] {
        if let Some(name) = env.get(var) {
            let origin = if var == OUTER_PROFILE_VAR {
                Origin::OuterRun
            } else {
                Origin::Var(var)
            };
            return chosen(name, origin);
        }
        if env.is_not_text(var) {
            bail!("{var} is not valid UTF-8, so it cannot name a profile; fix {var} or pass --profile");
        }
    }
    chosen("default", Origin::Default)
}

/// The one check of a profile name a user gave (`-p`, a variable), with the one message.
pub(crate) fn check_given(name: &str, origin: Origin) -> Result<()> {
    check_name(name, origin.given_as())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_pairs(vars)
    }

    #[test]
    fn the_flag_then_the_variables_then_the_outer_run_then_default() {
        let all = [
            ("AWS_PROFILE", "a"),
            ("AWS_DEFAULT_PROFILE", "b"),
            ("MFA_EXEC_PROFILE", "c"),
        ];
        let pick = |flag, vars: &[(&str, &str)]| {
            let c = Choice::resolve(flag, &env(vars)).unwrap();
            (c.name, c.origin)
        };
        assert_eq!(pick(Some("f"), &all), ("f".into(), Origin::Flag));
        assert_eq!(pick(None, &all), ("a".into(), Origin::Var("AWS_PROFILE")));
        assert_eq!(
            pick(None, &all[1..]),
            ("b".into(), Origin::Var("AWS_DEFAULT_PROFILE"))
        );
        assert_eq!(pick(None, &all[2..]), ("c".into(), Origin::OuterRun));
        assert_eq!(pick(None, &[]), ("default".into(), Origin::Default));
    }

    #[test]
    fn a_name_the_sdks_would_ignore_is_refused_saying_where_it_came_from() {
        let err = Choice::resolve(Some("bad]name"), &env(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--profile 'bad]name' is not a profile name: the AWS SDKs accept only letters, digits and - / . % @ _ : + in one (mfa-exec list shows the profiles there are)"
        );
        let err = Choice::resolve(None, &env(&[("AWS_PROFILE", "a b")])).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("AWS_PROFILE 'a b' is not a profile name"));
        for good in ["alice", "team/dev.admin", "a_b-c%d@e:f+g"] {
            assert!(Choice::resolve(Some(good), &env(&[])).is_ok(), "{good}");
        }
    }
}
