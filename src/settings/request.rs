//! What a command asks of the settings, typed: the cli turns each subcommand's arguments into
//! one [`Request`] (and a run's into an [`Output`] beside it), and [`super::Settings::resolve`]
//! folds it with the environment and the profile files. Every command resolves through it (a
//! run, `console`, `list`, `device`, `keys`), so a rule about profiles, codes or durations is
//! written once, below the cli, and nothing patches the settings afterwards: what a command
//! needs differently (the console's session, the MFA session IAM wants) is part of the request.

use std::ffi::OsString;

use clap::ValueEnum;

/// What a command asks for. `None`/`false` everywhere: a run of the chosen profile as its
/// files configure it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Request {
    /// `-p`/`--profile`; without it the one rule of [`super::choice`] chooses.
    pub(crate) profile: Option<String>,
    /// `--serial-number`, over the profiles' `mfa_serial`.
    pub(crate) serial: Option<String>,
    pub(crate) code: CodeRequest,
    pub(crate) role: RoleRequest,
    /// `--duration` as typed: the lifetime of the credentials handed on (of the console
    /// session for [`Purpose::Console`]).
    pub(crate) duration: Option<String>,
    /// `--session-duration` as typed.
    pub(crate) session_duration: Option<String>,
    /// `--region`.
    pub(crate) region: Option<String>,
    pub(crate) cache: CacheRequest,
    /// `--no-session`: a role assumed directly with the code.
    pub(crate) no_session: bool,
    pub(crate) scope: ScopeRequest,
    pub(crate) purpose: Purpose,
}

/// What narrows the role session (`--policy`, `--policy-arn`, `--read-only`) and what it
/// carries (`--tag`, `--source-identity`), over the profile's keys.
#[derive(Debug, Default, Clone)]
pub(crate) struct ScopeRequest {
    /// `--policy` as typed: the JSON, a file, or `-` for standard input.
    pub(crate) policy: Option<String>,
    pub(crate) policy_arns: Vec<String>,
    pub(crate) read_only: bool,
    /// `--tag K=V`, as typed.
    pub(crate) tags: Vec<String>,
    pub(crate) source_identity: Option<String>,
}

impl Request {
    /// A run of this profile as its files configure it (`list` asks what the cache holds for
    /// it).
    pub(crate) fn for_profile(name: &str) -> Request {
        Request {
            profile: Some(name.to_string()),
            ..Request::default()
        }
    }

    /// The MFA session of this request's profile's source user with this device, by the
    /// same rules as `mfa-exec -p PROFILE --serial-number SERIAL [-t CODE]` but without the
    /// profile's role: IAM's self-manage policy wants the session itself (`device remove`).
    pub(crate) fn mfa_session(&self, serial: &str, code: Option<&str>) -> Request {
        Request {
            profile: self.profile.clone(),
            region: self.region.clone(),
            serial: Some(serial.to_string()),
            code: CodeRequest {
                given: code.map(String::from),
                ..CodeRequest::default()
            },
            purpose: Purpose::MfaSession,
            ..Request::default()
        }
    }
}

/// Where the MFA code comes from.
#[derive(Debug, Default, Clone)]
pub(crate) struct CodeRequest {
    /// `-t`/`--token-code`.
    pub(crate) given: Option<String>,
    /// `--token-command`, over the profiles' `mfa_process`.
    pub(crate) command: Option<String>,
    /// `--prompt`, over `MFA_EXEC_PROMPT` and `mfa_prompt`.
    pub(crate) prompt: Option<PromptKind>,
    /// `--no-prompt`.
    pub(crate) no_prompt: bool,
}

/// `--role-arn`, `--role-session-name`, `--external-id`, over the profile's.
#[derive(Debug, Default, Clone)]
pub(crate) struct RoleRequest {
    pub(crate) arn: Option<String>,
    pub(crate) session_name: Option<String>,
    pub(crate) external_id: Option<String>,
}

/// `--min-remaining`, `--refresh`, `--no-cache`.
#[derive(Debug, Default, Clone)]
pub(crate) struct CacheRequest {
    pub(crate) min_remaining: Option<String>,
    pub(crate) refresh: bool,
    pub(crate) off: bool,
}

/// What the credentials are for, where that changes how they are obtained.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A command gets them: the profile's role (or `--role-arn`) for its `duration_seconds`.
    #[default]
    Run,
    /// The console sign-in. Without `--duration`: the role assumed from the MFA session with
    /// no DurationSeconds (the federation endpoint refuses a chained role's SessionDuration,
    /// so the profile's `duration_seconds` is not applied). With it: the role assumed directly
    /// with a code, for that long.
    Console,
    /// The MFA session itself, whatever the profile's role: what IAM's self-manage policy
    /// wants (`device remove` deactivates with it).
    MfaSession,
}

/// Where a person is asked for the MFA code (`--prompt`, `MFA_EXEC_PROMPT`, `mfa_prompt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PromptKind {
    /// The terminal if there is one, else a desktop dialog (zenity, kdialog, osascript)
    Auto,
    /// The controlling terminal only
    Terminal,
    /// A GTK dialog (zenity)
    Zenity,
    /// A KDE dialog (kdialog)
    Kdialog,
    /// A macOS dialog (osascript)
    Osascript,
    /// A YubiKey's OATH code (ykman oath accounts code)
    Ykman,
}

/// The shells `--print-env` can write for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ShellKind {
    /// POSIX sh: bash, zsh, dash, ksh
    Sh,
    Bash,
    Zsh,
    Fish,
    #[value(alias = "pwsh")]
    Powershell,
}

/// What a run does with the credentials.
#[derive(Clone, Debug)]
pub(crate) enum Output {
    Exec(Vec<OsString>),
    PrintEnv(ShellKind),
    CredentialProcess,
    Server(Vec<OsString>),
    Proxy(Vec<OsString>),
}

/// The names a `ValueEnum`'s values are typed as, for messages: `a, b or c`.
pub(crate) fn one_of<E: ValueEnum>() -> String {
    let names: Vec<String> = E::value_variants()
        .iter()
        .filter_map(|v| v.to_possible_value())
        .map(|v| v.get_name().to_string())
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_kinds_are_named_from_the_enum() {
        assert_eq!(
            one_of::<PromptKind>(),
            "auto, terminal, zenity, kdialog, osascript or ykman"
        );
    }
}
