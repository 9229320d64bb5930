//! What the user typed, as clap parses it: no I/O and no defaults from files here. Each
//! command's arguments become one typed [`Request`] (and a run's an [`Output`]), which the
//! settings resolve; nothing past this file sees clap's structs.

use std::ffi::OsString;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::settings::request::{
    CacheRequest, CodeRequest, Output, PromptKind, Purpose, Request, RoleRequest, ScopeRequest,
    ShellKind,
};

#[derive(Debug, Parser)]
#[command(
    name = "mfa-exec",
    // The package's version, and the git commit when built from a checkout (build.rs).
    version = env!("MFA_EXEC_VERSION"),
    about = "Run a command with MFA-backed temporary AWS credentials",
    long_about = "Gets temporary AWS credentials with an MFA code (STS GetSessionToken, or \
AssumeRole for a role profile), caches them, and runs COMMAND with AWS_ACCESS_KEY_ID, \
AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN in its environment.",
    after_help = "Examples:\n  mfa-exec -- aws s3 ls\n  mfa-exec -p prod -- terraform plan\n  \
eval \"$(mfa-exec --print-env)\"\n  mfa-exec list\n  mfa-exec cache list",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) subcommand: Option<Sub>,
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

/// A run's arguments alone. Building clap's definition of every subcommand and option costs
/// most of a cache hit's start, and most invocations are runs: those are parsed with this
/// smaller definition first. Only a parse that succeeds is taken from it; anything else (a
/// subcommand, `--help`, `--version`, a mistake) is parsed again by [`Cli`], so every message,
/// help text and error is [`Cli`]'s own.
#[derive(Debug, Parser)]
#[command(name = "mfa-exec")]
struct RunOnly {
    #[command(flatten)]
    run: RunArgs,
}

/// The first words that are never a run: every subcommand of [`Sub`] (a test keeps the list
/// whole) and clap's help and version flags.
const NOT_A_RUN: &[&str] = &[
    "cache",
    "keys",
    "init",
    "completions",
    "device",
    "list",
    "console",
    "history",
    "profiles",
    "man",
    "help",
    "--help",
    "-h",
    "--version",
    "-V",
];

impl Cli {
    /// Parses the process's arguments: as a run with [`RunOnly`] when they are one, else with
    /// the whole definition.
    pub(crate) fn parse_runs_first() -> Result<Cli, clap::Error> {
        let args: Vec<OsString> = std::env::args_os().collect();
        // A first word that is a subcommand or clap's own flag is never a run: straight to the
        // whole definition, without a run's parse failing first.
        let first = args.get(1).and_then(|a| a.to_str());
        if first.is_some_and(|a| NOT_A_RUN.contains(&a)) {
            return Cli::try_parse_from(args);
        }
        if let Ok(RunOnly { run }) = RunOnly::try_parse_from(&args) {
            return Ok(Cli {
                subcommand: None,
                run,
            });
        }
        Cli::try_parse_from(args)
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Sub {
    /// Show or clear cached credentials
    #[command(subcommand)]
    Cache(CacheCmd),
    /// Keep long-term keys in the OS keyring instead of ~/.aws/credentials, and rotate them
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Print the shell integration script: eval "$(mfa-exec init bash)"
    Init {
        /// Optional for clap so that `mfa-exec init` alone can list the shells in one line
        #[arg(value_enum)]
        shell: Option<InitShell>,
    },
    /// Print shell completions for mfa-exec's options
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Register, list or remove your own virtual MFA device
    #[command(subcommand)]
    Device(DeviceCmd),
    /// List the profiles: how each resolves (its role chain and source), its MFA device and
    /// what the cache holds for it (never a secret)
    List {
        /// One JSON array, for scripts
        #[arg(long)]
        json: bool,
    },
    /// Print profile names from the AWS config files, one per line (for completion)
    #[command(hide = true)]
    Profiles,
    /// Write the manual pages into DIR (for packagers: scripts/package)
    #[command(hide = true)]
    Man {
        #[arg(value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
        dir: std::path::PathBuf,
    },
    /// Open the AWS console signed in as the profile's role, with the same MFA session as runs
    Console(ConsoleArgs),
    /// Show the run history: when each run was, its profile and role, whether a code was
    /// spent, its command's name and exit status (never a secret or an argument)
    History {
        /// Only runs that started within this long (1h, 2d, 30m) or since this time (RFC 3339,
        /// 2026-12-07T09:00:00Z)
        #[arg(long, value_name = "DURATION|TIME")]
        since: Option<String>,
        /// Only the runs of this profile
        #[arg(short, long, value_name = "NAME")]
        profile: Option<String>,
        /// One JSON array, for scripts
        #[arg(long)]
        json: bool,
    },
}

/// What narrows a role session and what it carries: for runs and the console alike.
#[derive(Debug, Default, Args)]
pub(crate) struct ScopeArgs {
    /// A session policy that narrows the role session: a file, - for stdin, or the JSON
    /// itself (at most 2,048 characters) [profile key: mfa_exec_policy]
    #[arg(long, value_name = "FILE|JSON")]
    pub(crate) policy: Option<String>,

    /// A managed policy that narrows the role session (repeatable, at most 10) [profile key:
    /// mfa_exec_policy_arns]
    #[arg(long = "policy-arn", value_name = "ARN")]
    pub(crate) policy_arns: Vec<String>,

    /// Narrow the role session to AWS's ReadOnlyAccess managed policy [profile key:
    /// mfa_exec_read_only]
    #[arg(long)]
    pub(crate) read_only: bool,

    /// A session tag for the role session (repeatable) [profile key: session_tags]
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub(crate) tags: Vec<String>,

    /// The source identity CloudTrail records for the role session [profile key:
    /// source_identity]
    #[arg(long, value_name = "NAME")]
    pub(crate) source_identity: Option<String>,
}

impl ScopeArgs {
    fn request(&self) -> ScopeRequest {
        ScopeRequest {
            policy: self.policy.clone(),
            policy_arns: self.policy_arns.clone(),
            read_only: self.read_only,
            tags: self.tags.clone(),
            source_identity: self.source_identity.clone(),
        }
    }
}

/// `mfa-exec console`: a console sign-in URL for the profile's role credentials.
#[derive(Debug, Default, Args)]
pub(crate) struct ConsoleArgs {
    /// AWS profile to use; it must have a role [env: AWS_PROFILE; default: default]
    #[arg(short, long, value_name = "NAME")]
    pub(crate) profile: Option<String>,

    /// The 6-digit MFA code, when one is needed (otherwise the token command, else a prompt)
    #[arg(short = 't', long, value_name = "CODE")]
    pub(crate) token_code: Option<String>,

    /// Command whose output is the MFA code, run with sh -c [profile key: mfa_process]
    #[arg(long, value_name = "COMMAND")]
    pub(crate) token_command: Option<String>,

    /// Never ask for a code on the terminal: fail instead when a new code is needed
    #[arg(long)]
    pub(crate) no_prompt: bool,

    /// The console's region [env: AWS_REGION, AWS_DEFAULT_REGION; profile key: region]
    #[arg(long, value_name = "REGION")]
    pub(crate) region: Option<String>,

    /// Print the sign-in URL on stdout instead of opening a browser (it signs in whoever
    /// opens it for 15 minutes: treat it as a password)
    #[arg(long)]
    pub(crate) print_url: bool,

    /// Open this service's console (s3, ec2, iam, ...) instead of the console home
    #[arg(long, value_name = "NAME", conflicts_with = "destination")]
    pub(crate) service: Option<String>,

    /// Open this https URL of the console after signing in
    #[arg(long, value_name = "URL")]
    pub(crate) destination: Option<String>,

    /// Console session length, 15m to 12h: assumes the role directly from the long-term keys
    /// with a new MFA code (without it, the console session follows the role session
    /// assumed from the cached MFA session, at most 1h)
    #[arg(short, long, value_name = "DURATION")]
    pub(crate) duration: Option<String>,

    #[command(flatten)]
    pub(crate) scope: ScopeArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CacheCmd {
    /// List cached entries: profile, kind, expiry (never a secret)
    List,
    /// Remove cached entries, all of them or one profile's
    Clear {
        /// Only the entries of this profile (and the MFA sessions it is the source of)
        #[arg(short, long)]
        profile: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCmd {
    /// Store a profile's access key in the OS keyring: asked on the terminal, or moved out of
    /// the credentials file
    Add {
        /// The profile the keys sign for [env: AWS_PROFILE; default: default]
        #[arg(short, long, value_name = "NAME")]
        profile: Option<String>,
        /// Move the profile's aws_access_key_id/aws_secret_access_key from the credentials
        /// file (the two lines are removed once the keyring holds them)
        #[arg(long)]
        from_credentials_file: bool,
    },
    /// List the profiles with keys in the OS keyring, their access key ids and ages (never a
    /// secret)
    List,
    /// Replace the profile's access key by a new one: with an MFA session, CreateAccessKey,
    /// store the new key where the old one was (the OS keyring, or the credentials file, every
    /// other byte kept), wait until IAM accepts it, then delete the old key. Each step is
    /// recorded first in a private journal in the cache directory, so that a rotation
    /// interrupted at any point (even killed) is finished, or undone, by the next `keys rotate`.
    /// Needs iam:ListAccessKeys, iam:CreateAccessKey and iam:DeleteAccessKey (iam:UpdateAccessKey
    /// with --keep-old) on your own user. The cached MFA session keeps serving afterwards
    Rotate {
        /// The profile whose keys are rotated (for a role profile: its source's) [env:
        /// AWS_PROFILE; default: default]
        #[arg(short, long, value_name = "NAME")]
        profile: Option<String>,
        /// Deactivate the old key instead of deleting it (delete it yourself later with `aws
        /// iam delete-access-key`)
        #[arg(long)]
        keep_old: bool,
        /// The 6-digit MFA code, when no MFA session is cached (otherwise the token command,
        /// else a prompt)
        #[arg(short = 't', long, value_name = "CODE")]
        token_code: Option<String>,
        /// Command whose output is the MFA code, run with sh -c [profile key: mfa_process]
        #[arg(long, value_name = "COMMAND")]
        token_command: Option<String>,
        /// Never ask for a code: fail instead when no MFA session is cached
        #[arg(long)]
        no_prompt: bool,
    },
    /// Delete a profile's keys from the OS keyring
    Remove {
        /// The profile whose keys go [env: AWS_PROFILE; default: default]
        #[arg(short, long, value_name = "NAME")]
        profile: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeviceCmd {
    /// Create a virtual MFA device for the profile's IAM user, show its QR code on the
    /// terminal, enable it with two consecutive codes and write mfa_serial into the profile
    Add {
        /// Profile whose IAM user gets the device [env: AWS_PROFILE; default: default]
        #[arg(short, long, value_name = "NAME")]
        profile: Option<String>,
        /// Name of the device in IAM [default: the IAM user name]
        #[arg(long, value_name = "NAME")]
        device_name: Option<String>,
        /// Also write IAM's QR code image to FILE (mode 0600)
        #[arg(long, value_name = "FILE")]
        qr_png: Option<std::path::PathBuf>,
        /// Register a device even though the profile already has an mfa_serial
        #[arg(long)]
        force: bool,
    },
    /// List the MFA devices of the profile's IAM user, marking the one the profile uses
    List {
        /// Profile whose IAM user to ask about [env: AWS_PROFILE; default: default]
        #[arg(short, long, value_name = "NAME")]
        profile: Option<String>,
    },
    /// Deactivate and delete a virtual MFA device (this needs a code from it), and remove its
    /// mfa_serial line from the profile
    Remove {
        /// Profile that uses the device [env: AWS_PROFILE; default: default]
        #[arg(short, long, value_name = "NAME")]
        profile: Option<String>,
        /// The device's ARN [default: the profile's mfa_serial]
        #[arg(long, value_name = "ARN")]
        serial_number: Option<String>,
        /// A current code of the device (otherwise the token command, else a prompt)
        #[arg(short = 't', long, value_name = "CODE")]
        token_code: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum InitShell {
    Bash,
    Zsh,
    Fish,
    #[value(alias = "pwsh")]
    Powershell,
}

#[derive(Debug, Default, Args)]
pub(crate) struct RunArgs {
    /// AWS profile to use [env: AWS_PROFILE; default: default]
    #[arg(short, long, value_name = "NAME")]
    pub(crate) profile: Option<String>,

    /// MFA device serial or ARN [profile key: mfa_serial]
    #[arg(long, value_name = "SERIAL")]
    pub(crate) serial_number: Option<String>,

    /// The 6-digit MFA code (otherwise the token command, else a prompt: see --prompt)
    #[arg(short = 't', long, value_name = "CODE")]
    pub(crate) token_code: Option<String>,

    /// Command whose output is the MFA code, run with sh -c [profile key: mfa_process]
    #[arg(long, value_name = "COMMAND")]
    pub(crate) token_command: Option<String>,

    /// Where to ask for the MFA code when none is given or computed [env: MFA_EXEC_PROMPT;
    /// profile key: mfa_prompt; default: auto]
    #[arg(long, value_enum, value_name = "KIND")]
    pub(crate) prompt: Option<PromptKind>,

    /// Role to assume [profile key: role_arn]
    #[arg(long, value_name = "ARN")]
    pub(crate) role_arn: Option<String>,

    /// Role session name [profile key: role_session_name; default: mfa-exec-<unix time>]
    #[arg(long, value_name = "NAME")]
    pub(crate) role_session_name: Option<String>,

    /// External id for the role [profile key: external_id]
    #[arg(long, value_name = "ID")]
    pub(crate) external_id: Option<String>,

    /// Credential lifetime: seconds, or 90m, 12h [profile key: duration_seconds]
    #[arg(short, long, value_name = "DURATION")]
    pub(crate) duration: Option<String>,

    /// Lifetime of the MFA session roles are assumed from [profile key:
    /// mfa_exec_session_duration; default: 12h]
    #[arg(long, value_name = "DURATION")]
    pub(crate) session_duration: Option<String>,

    /// AWS region [env: AWS_REGION, AWS_DEFAULT_REGION; profile key: region]
    #[arg(long, value_name = "REGION")]
    pub(crate) region: Option<String>,

    /// Never ask for a code (terminal, dialog or YubiKey): fail instead when a new code is
    /// needed (for scripts and prompt hooks)
    #[arg(long)]
    pub(crate) no_prompt: bool,

    /// Reuse cached credentials only while more than this is left [env:
    /// MFA_EXEC_MIN_REMAINING; default: 5m]
    #[arg(long, value_name = "DURATION")]
    pub(crate) min_remaining: Option<String>,

    /// Ignore cached credentials: call STS and rewrite the cache entry
    #[arg(long)]
    pub(crate) refresh: bool,

    /// Neither read nor write the credential cache
    #[arg(long)]
    pub(crate) no_cache: bool,

    /// For a role: call AssumeRole with the MFA code directly, without an MFA session
    #[arg(long)]
    pub(crate) no_session: bool,

    #[command(flatten)]
    pub(crate) scope: ScopeArgs,

    /// Print shell code that sets the variables (for eval) instead of running a command
    #[arg(long, conflicts_with_all = ["credential_process", "server", "proxy"])]
    pub(crate) print_env: bool,

    /// Shell syntax for --print-env
    #[arg(long, value_enum, value_name = "SHELL", requires = "print_env")]
    pub(crate) shell: Option<ShellKind>,

    /// Print the credential_process JSON document (for ~/.aws/config) instead of running a command
    #[arg(long, conflicts_with_all = ["server", "proxy"])]
    pub(crate) credential_process: bool,

    /// Serve refreshed credentials to COMMAND on a local endpoint (ECS container format)
    #[arg(long)]
    pub(crate) server: bool,

    /// Run COMMAND with keys made for this run alone and AWS_ENDPOINT_URL pointing at a local
    /// signing proxy, which checks each request's signature, signs it again with the MFA
    /// credentials and forwards it to AWS: the command never holds the real keys
    #[arg(long, conflicts_with = "server")]
    pub(crate) proxy: bool,

    /// The command to run, after --
    #[arg(last = true, value_name = "COMMAND")]
    pub(crate) command: Vec<OsString>,
}

impl RunArgs {
    /// What a run asks of the settings.
    pub(crate) fn request(&self) -> Request {
        Request {
            profile: self.profile.clone(),
            serial: self.serial_number.clone(),
            code: CodeRequest {
                given: self.token_code.clone(),
                command: self.token_command.clone(),
                prompt: self.prompt,
                no_prompt: self.no_prompt,
            },
            role: RoleRequest {
                arn: self.role_arn.clone(),
                session_name: self.role_session_name.clone(),
                external_id: self.external_id.clone(),
            },
            duration: self.duration.clone(),
            session_duration: self.session_duration.clone(),
            region: self.region.clone(),
            cache: CacheRequest {
                min_remaining: self.min_remaining.clone(),
                refresh: self.refresh,
                off: self.no_cache,
            },
            no_session: self.no_session,
            scope: self.scope.request(),
            purpose: Purpose::Run,
        }
    }

    /// What the run does with the credentials: exactly one of a command, `--print-env` or
    /// `--credential-process` (clap keeps the flags apart; the command is checked here).
    pub(crate) fn output(&self) -> Result<Output> {
        let command = self.command.clone();
        if self.print_env || self.credential_process {
            if !command.is_empty() {
                bail!("--print-env and --credential-process print credentials and run no command; drop the command after --");
            }
            return Ok(if self.print_env {
                Output::PrintEnv(self.shell.unwrap_or(ShellKind::Sh))
            } else {
                Output::CredentialProcess
            });
        }
        if command.is_empty() {
            bail!("no command to run: put it after --, e.g. `mfa-exec -- aws sts get-caller-identity`, or use --print-env");
        }
        Ok(if self.server {
            Output::Server(command)
        } else if self.proxy {
            Output::Proxy(command)
        } else {
            Output::Exec(command)
        })
    }
}

impl DeviceCmd {
    /// What a `device` command asks of the settings: its profile (the device's user is the
    /// one whose keys that profile signs with).
    pub(crate) fn request(&self) -> Request {
        let (DeviceCmd::Add { profile, .. }
        | DeviceCmd::List { profile }
        | DeviceCmd::Remove { profile, .. }) = self;
        Request {
            profile: profile.clone(),
            ..Request::default()
        }
    }
}

impl KeysCmd {
    /// What a `keys` command asks of the settings: its profile (none for `keys list`).
    pub(crate) fn request(&self) -> Request {
        let profile = match self {
            KeysCmd::Add { profile, .. }
            | KeysCmd::Remove { profile }
            | KeysCmd::Rotate { profile, .. } => profile.clone(),
            KeysCmd::List => None,
        };
        Request {
            profile,
            ..Request::default()
        }
    }
}

impl ConsoleArgs {
    /// What the console asks of the settings: the profile's role as a run gets it, its
    /// `--duration` the console session's.
    pub(crate) fn request(&self) -> Request {
        Request {
            profile: self.profile.clone(),
            code: CodeRequest {
                given: self.token_code.clone(),
                command: self.token_command.clone(),
                prompt: None,
                no_prompt: self.no_prompt,
            },
            duration: self.duration.clone(),
            region: self.region.clone(),
            scope: self.scope.request(),
            purpose: Purpose::Console,
            ..Request::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// A subcommand missing from the list would still work (its run parse fails first), only
    /// slower; one in the list that is not a subcommand would turn a command into an error.
    #[test]
    fn the_words_that_are_never_a_run_are_the_subcommands_and_claps_flags() {
        let cli = Cli::command();
        let subcommands: Vec<&str> = cli.get_subcommands().map(|s| s.get_name()).collect();
        for name in &subcommands {
            assert!(NOT_A_RUN.contains(name), "{name} is not in NOT_A_RUN");
        }
        for word in NOT_A_RUN {
            assert!(
                subcommands.contains(word) || word.starts_with('-') || *word == "help",
                "{word} is no subcommand"
            );
        }
    }
}
