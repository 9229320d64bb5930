//! The AWS shared config and credentials files, read as the AWS SDK's own parser reads them.
//!
//! mfa-exec must never disagree with the AWS CLI about what a profile says: a hand-written
//! parser once read `[profile prod]# production` as no header at all, so prod's `role_arn`
//! landed in the profile above it. So the SDK's parser (`aws_config::profile::load`, which
//! every AWS SDK checks against the shared conformance suite, run here as a test) is the
//! source of truth. Ordinary files are read by [`sections`] instead, a tenth of the cost for
//! `list` and a first run with thousands of profiles: it reads only what it reads exactly as
//! the SDK does (tested against it on that suite and on generated files) and hands anything
//! else to the SDK's parser. This module adds what the SDK leaves to its callers:
//!
//! - **Bounded, non-blocking reads.** The SDK reads whatever the path names; a FIFO, a device
//!   (`AWS_CONFIG_FILE=/dev/zero`) or a runaway file would hang or exhaust memory. Each file is
//!   opened without blocking, checked to be a regular file (symlinks followed, as the SDKs do:
//!   dotfile managers link `~/.aws/config`) and read up to [`MAX_FILE_SIZE`].
//! - **Refusal instead of silence.** The SDK reads a file that is not UTF-8 as an empty one and
//!   turns a syntax error into a multi-line message; here either is one line naming the file
//!   (and the line), before any STS call.
//! - **Synchronous use.** The SDK's `load` is async, but with the file contents already in
//!   memory it only awaits ready futures: one poll completes it, so the cache-hit path starts
//!   no runtime.

pub(crate) mod edit;
mod remembered;
mod sections;

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::SystemTime;

use anyhow::{anyhow, bail, Result};
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_runtime::env_config::property::PropertiesKey;
use aws_runtime::env_config::section::{EnvConfigSections, Profile as SdkProfile};
use aws_types::os_shim_internal::{Env as SdkEnv, Fs as SdkFs};

use crate::files::{self, Links};
use crate::names::{name_hash, NameSet};
use remembered::{Answer, Identity, Record, Seen};

/// Larger than any real profile file (thousands of profiles fit in a few MB), small enough to
/// read and parse in well under a second.
pub(crate) const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// The two AWS profile files name a profile's section differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// `[default]`, `[profile NAME]` (also accept `[profile default]`).
    Config = 0,
    /// `[NAME]`.
    Credentials = 1,
}

impl FileKind {
    /// The profile's section as this file spells it between the brackets: `profile NAME` in
    /// the config file (`default` alone for the default profile), `NAME` in the credentials
    /// file. The one spelling every message and edit uses.
    pub(crate) fn section(self, profile: &str) -> String {
        match self {
            FileKind::Config if profile != "default" => format!("profile {profile}"),
            _ => profile.to_string(),
        }
    }

    fn file(self) -> &'static str {
        match self {
            FileKind::Config => "config",
            FileKind::Credentials => "credentials",
        }
    }
}

/// The SDKs' rule for profile names, `[A-Za-z0-9_\-/.%@:\+]+`: they ignore a section named
/// otherwise, so a profile that breaks it cannot be used by any AWS tool. `given_as` names
/// where the name came from (`--profile`, `AWS_PROFILE`), in the one message for it.
pub(crate) fn check_name(name: &str, given_as: &str) -> Result<()> {
    if is_identifier(name) {
        return Ok(());
    }
    bail!(
        "{given_as} '{}' is not a profile name: the AWS SDKs accept only letters, digits and - / . % @ _ : + in one (mfa-exec list shows the profiles there are)",
        crate::terminal::safe(name)
    )
}

pub(crate) struct ProfileFiles {
    pub(crate) config_path: PathBuf,
    pub(crate) credentials_path: PathBuf,
    /// Both files' identities, taken before they were read; None when one could not be told.
    identities: Option<(Identity, Identity)>,
    /// Where this pair of files' record is kept and what is asked of the parse is noted, when
    /// the parse may be remembered (a run's files, settled: see [`remembered::SETTLE`]).
    record_path: Option<PathBuf>,
    /// The record that matched the files: it answers instead of a parse.
    record: Option<Record>,
    /// What was asked of the parse this run, for the next record.
    asked: RefCell<Record>,
    /// The files as read and parsed: at once without a record; with one, at the first
    /// question the record cannot answer.
    full: OnceCell<Full>,
    config_only: OnceCell<EnvConfigSections>,
    credentials_only: OnceCell<EnvConfigSections>,
}

/// Both files read and parsed.
struct Full {
    parsed: Parsed,
    /// The text of each file, for the per-file views below (parsed only when asked for: the
    /// run path needs the merged view alone).
    config_text: Option<String>,
    credentials_text: Option<String>,
    /// The identities of the files as opened for the read.
    read_as: (Identity, Identity),
}

/// The files' sections: read by [`sections`] where it reads them as the SDK does (most files,
/// at a tenth of the cost), else by the SDK's parser.
enum Parsed {
    Own(sections::Sections),
    Sdk {
        sections: EnvConfigSections,
        /// Every name a property of either file could have (see [`ParsedProfile::get`]).
        names: NameSet,
    },
}

/// One profile of the parse.
#[derive(Clone, Copy)]
enum ParsedProfile<'a> {
    Own(sections::Section<'a>),
    Sdk(&'a SdkProfile, &'a NameSet),
}

impl<'a> ParsedProfile<'a> {
    /// A property as the SDK's `Profile::get` finds it. Most keys a run asks for are in no
    /// profile, and each asks without a lookup: [`sections`] by the lengths of a section's
    /// names; for the SDK's parse, by the names of the files' lines, since an SDK lookup
    /// lowercases the key into a new String and SipHashes it (`list` asks each of thousands of
    /// profiles for some thirty keys). Its parser names a property by the text of its line
    /// before the first `=`, its spaces and tabs trimmed, lowercased, and looks a key up
    /// lowercased: every line's name is in `names`, so a key whose hash is not there is in no
    /// profile. (A line that is no property only adds a name; a hash that collides only asks
    /// the parse.)
    fn get(&self, key: &str) -> Option<&'a str> {
        match self {
            ParsedProfile::Own(section) => section.get(key),
            ParsedProfile::Sdk(profile, names) => {
                names.contains(&name_hash(key)).then(|| profile.get(key))?
            }
        }
    }
}

impl Parsed {
    fn profile(&self, name: &str) -> Option<ParsedProfile<'_>> {
        match self {
            Parsed::Own(sections) => sections.profile(name).map(ParsedProfile::Own),
            Parsed::Sdk { sections, names } => sections
                .get_profile(name)
                .map(|profile| ParsedProfile::Sdk(profile, names)),
        }
    }

    fn profile_names(&self) -> Vec<String> {
        match self {
            Parsed::Own(sections) => sections.profiles().map(String::from).collect(),
            Parsed::Sdk { sections, .. } => sections.profiles().map(String::from).collect(),
        }
    }

    /// A `[services NAME]` sub-property (never in files [`sections`] reads: it declines them).
    fn service(&self, key: &PropertiesKey) -> Option<&str> {
        match self {
            Parsed::Own(_) => None,
            Parsed::Sdk { sections, .. } => sections.other_sections().get(key).map(String::as_str),
        }
    }
}

impl Full {
    /// Reads and parses both files; a missing file is an empty one, as for every AWS SDK.
    fn load(config_path: &Path, credentials_path: &Path) -> Result<Full> {
        let (config_text, config_id) = read_bounded(config_path)?;
        let (credentials_text, credentials_id) = read_bounded(credentials_path)?;
        let parsed = match sections::read(config_text.as_deref(), credentials_text.as_deref()) {
            Some(sections) => Parsed::Own(sections),
            None => Parsed::Sdk {
                sections: parse(&[
                    (EnvConfigFileKind::Config, config_path, &config_text),
                    (
                        EnvConfigFileKind::Credentials,
                        credentials_path,
                        &credentials_text,
                    ),
                ])?,
                names: [&config_text, &credentials_text]
                    .into_iter()
                    .flatten()
                    .flat_map(|text| text.lines())
                    .filter_map(|line| line.split_once('='))
                    .map(|(name, _)| name_hash(name.trim_matches([' ', '\t'])))
                    .collect(),
            },
        };
        Ok(Full {
            parsed,
            config_text,
            credentials_text,
            read_as: (config_id, credentials_id),
        })
    }
}

/// Where a profile's answers come from.
#[derive(Clone, Copy)]
enum Inner<'a> {
    /// The parse (None: neither file has the profile).
    Parsed(Option<ParsedProfile<'a>>),
    /// The record of an earlier parse of the same files.
    Remembered(&'a Seen),
}

/// One profile as the AWS CLI sees it: the credentials file's keys win over the config file's.
#[derive(Clone, Copy)]
pub(crate) struct Profile<'a> {
    pub(crate) name: &'a str,
    inner: Inner<'a>,
    files: &'a ProfileFiles,
}

/// A secret property (`aws_secret_access_key`, `aws_session_token`): its value, or where to
/// read it when it is needed, for a profile answered from the record (which holds no secret).
#[derive(Clone)]
pub(crate) enum Secret {
    Known(String),
    InFiles(Box<SecretInFiles>),
}

/// Where a secret left out of the record is read.
#[derive(Clone)]
pub(crate) struct SecretInFiles {
    config_path: PathBuf,
    credentials_path: PathBuf,
    profile: String,
    key: &'static str,
    /// The files the record was made from: the secret is read from those or not at all.
    identities: (Identity, Identity),
}

impl Secret {
    /// The value: for a remembered profile, read from the files now (a cache miss, about to
    /// call STS), which must still be the ones the rest of the settings came from.
    pub(crate) fn read(&self) -> Result<String> {
        let SecretInFiles {
            config_path,
            credentials_path,
            profile,
            key,
            identities,
        } = match self {
            Secret::Known(value) => return Ok(value.clone()),
            Secret::InFiles(stored) => stored.as_ref(),
        };
        let full = Full::load(config_path, credentials_path)?;
        if full.read_as != *identities {
            bail!(
                "{} or {} changed while mfa-exec ran; run the command again",
                config_path.display(),
                credentials_path.display()
            );
        }
        match full.parsed.profile(profile).and_then(|p| p.get(key)) {
            Some(value) if !value.is_empty() => Ok(value.to_string()),
            _ => bail!("[{profile}] has no {key} any more; run the command again"),
        }
    }
}

impl<'a> Profile<'a> {
    /// A property with a non-empty value (`region =` with nothing after it counts as unset).
    pub(crate) fn get(&self, key: &str) -> Option<&'a str> {
        self.get_raw(key).filter(|v| !v.is_empty())
    }

    /// A property exactly as the SDK parsed it, empty values included.
    pub(crate) fn get_raw(&self, key: &str) -> Option<&'a str> {
        match self.inner {
            Inner::Parsed(inner) => {
                let value = inner?.get(key);
                self.files.note(self.name, |seen| seen.note(key, value));
                value
            }
            Inner::Remembered(seen) => match seen.answer(key) {
                Answer::Value(v) => Some(v),
                Answer::Absent => None,
                // Not in the record: the parse answers (and the next record knows).
                Answer::Withheld | Answer::Unknown => {
                    let files = self.files;
                    let value = files.parsed(self.name)?.get(key);
                    files.note(self.name, |seen| seen.note(key, value));
                    value
                }
            },
        }
    }

    /// Whether the profile has a non-empty property, without reading a secret's value.
    pub(crate) fn has(&self, key: &str) -> bool {
        match self.inner {
            Inner::Remembered(seen) if matches!(seen.answer(key), Answer::Withheld) => true,
            _ => self.get(key).is_some(),
        }
    }

    /// A non-empty secret property, read from the files only when its value is used.
    pub(crate) fn secret(&self, key: &'static str) -> Option<Secret> {
        let files = self.files;
        match (self.inner, files.identities) {
            (Inner::Remembered(seen), Some(identities))
                if matches!(seen.answer(key), Answer::Withheld) =>
            {
                Some(Secret::InFiles(Box::new(SecretInFiles {
                    config_path: files.config_path.clone(),
                    credentials_path: files.credentials_path.clone(),
                    profile: self.name.to_string(),
                    key,
                    identities,
                })))
            }
            _ => self.get(key).map(|v| Secret::Known(v.to_string())),
        }
    }

    /// Whether either file has a (valid) section for this profile.
    pub(crate) fn exists(&self) -> bool {
        match self.inner {
            Inner::Parsed(inner) => inner.is_some(),
            Inner::Remembered(seen) => seen.exists,
        }
    }

    /// A non-empty property as the credentials file alone has it (`keys add
    /// --from-credentials-file` moves exactly those).
    pub(crate) fn get_in_credentials_file(&self, key: &str) -> Option<&'a str> {
        let files = self.files;
        let only = files.credentials_only.get_or_init(|| {
            let full = files.full();
            parse_one(
                EnvConfigFileKind::Credentials,
                &files.credentials_path,
                &full.credentials_text,
            )
        });
        only.get_profile(self.name)?
            .get(key)
            .filter(|v| !v.is_empty())
    }

    /// Whether the config file has a section for this profile.
    pub(crate) fn in_config_file(&self) -> bool {
        let files = self.files;
        files
            .config_only
            .get_or_init(|| {
                let full = files.full();
                parse_one(
                    EnvConfigFileKind::Config,
                    &files.config_path,
                    &full.config_text,
                )
            })
            .get_profile(self.name)
            .is_some()
    }
}

impl ProfileFiles {
    /// Reads and parses both files; a missing file is an empty one, as for every AWS SDK.
    pub(crate) fn load(config_path: PathBuf, credentials_path: PathBuf) -> Result<ProfileFiles> {
        let full = Full::load(&config_path, &credentials_path)?;
        let files = ProfileFiles::unread(config_path, credentials_path, None, None, None);
        let _ = files.full.set(full);
        Ok(files)
    }

    /// The files of a run: answered from the record kept in `dir` when both files are exactly
    /// what it was made from, else read and parsed as [`ProfileFiles::load`] does, noting what
    /// is asked so that [`ProfileFiles::remember`] can keep it for the next run.
    pub(crate) fn load_remembering(
        config_path: PathBuf,
        credentials_path: PathBuf,
        dir: Option<&Path>,
    ) -> Result<ProfileFiles> {
        ProfileFiles::load_remembering_at(config_path, credentials_path, dir, SystemTime::now())
    }

    /// [`ProfileFiles::load_remembering`] as at `now` (tests move it past the settling time).
    fn load_remembering_at(
        config_path: PathBuf,
        credentials_path: PathBuf,
        dir: Option<&Path>,
        now: SystemTime,
    ) -> Result<ProfileFiles> {
        let identities = match (
            Identity::stat(&config_path),
            Identity::stat(&credentials_path),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            _ => None,
        };
        let settled = identities.is_some_and(|(c, k)| c.settled(now) && k.settled(now));
        let paths = (config_path.as_path(), credentials_path.as_path());
        let record_path = dir
            .filter(|_| settled)
            .map(|dir| remembered::record_path(dir, paths));
        let record = match (&record_path, identities) {
            (Some(at), Some(ids)) => Record::read(at, paths, ids),
            _ => None,
        };
        let remembered = record.is_some();
        let files = ProfileFiles::unread(
            config_path,
            credentials_path,
            identities,
            record_path,
            record,
        );
        if !remembered {
            let _ = files
                .full
                .set(Full::load(&files.config_path, &files.credentials_path)?);
        }
        Ok(files)
    }

    fn unread(
        config_path: PathBuf,
        credentials_path: PathBuf,
        identities: Option<(Identity, Identity)>,
        record_path: Option<PathBuf>,
        record: Option<Record>,
    ) -> ProfileFiles {
        let asked = match identities {
            Some(ids) => Record::new((&config_path, &credentials_path), ids),
            None => Record::default(),
        };
        ProfileFiles {
            config_path,
            credentials_path,
            identities,
            record_path,
            record,
            asked: RefCell::new(asked),
            full: OnceCell::new(),
            config_only: OnceCell::new(),
            credentials_only: OnceCell::new(),
        }
    }

    /// The parse, made now if the record answered so far. The record matched the files a
    /// moment ago, so they parsed then; if they no longer do, they changed in between, and no
    /// answer given so far can be trusted: the run ends here, with the parse's error.
    fn full(&self) -> &Full {
        self.full.get_or_init(
            || match Full::load(&self.config_path, &self.credentials_path) {
                Ok(full) => full,
                Err(e) => {
                    crate::terminal::say(&format!("{e:#} (it changed while mfa-exec read it)"));
                    std::process::exit(crate::exit::FAILURE.into())
                }
            },
        )
    }

    /// A profile as the parse has it.
    fn parsed(&self, name: &str) -> Option<ParsedProfile<'_>> {
        self.full().parsed.profile(name)
    }

    /// Notes what the parse said of a profile, when the parse is to be remembered.
    fn note(&self, name: &str, what: impl FnOnce(&mut Seen)) {
        if self.record_path.is_some() {
            let mut asked = self.asked.borrow_mut();
            let seen = asked.profiles.entry(name.to_string()).or_default();
            seen.exists = self.parsed(name).is_some();
            what(seen);
        }
    }

    pub(crate) fn profile<'a>(&'a self, name: &'a str) -> Profile<'a> {
        if let Some(seen) = self.record.as_ref().and_then(|r| r.profiles.get(name)) {
            return Profile {
                name,
                inner: Inner::Remembered(seen),
                files: self,
            };
        }
        self.note(name, |_| {});
        Profile {
            name,
            inner: Inner::Parsed(self.parsed(name)),
            files: self,
        }
    }

    /// Keeps what this run asked of the parse for the next run with the same files (with
    /// what the record already held), when anything is new. Best effort: a record that
    /// cannot be written costs the next run a parse, nothing else.
    pub(crate) fn remember(&self) {
        let (Some(at), Some(full), Some(ids)) =
            (&self.record_path, self.full.get(), self.identities)
        else {
            return;
        };
        // Read as they were stat'ed, or a write came in between: keep nothing.
        if full.read_as != ids {
            return;
        }
        let asked = self.asked.borrow();
        let mut record = match &self.record {
            Some(old) if !old.is_full() => old.clone(),
            _ => Record::new((&self.config_path, &self.credentials_path), ids),
        };
        let before = record.clone();
        for (name, seen) in &asked.profiles {
            record.profiles.entry(name.clone()).or_default().merge(seen);
            record.profiles.get_mut(name).expect("just added").exists = seen.exists;
        }
        record
            .services
            .extend(asked.services.iter().map(|(k, v)| (k.clone(), v.clone())));
        if self.record.is_none()
            || record.profiles != before.profiles
            || record.services != before.services
        {
            record.write(at);
        }
    }

    /// Whether either file exists (a first-time user has neither).
    pub(crate) fn any_file_exists(&self) -> bool {
        match (self.full.get(), self.identities) {
            (None, Some((c, k))) => c.present() || k.present(),
            _ => {
                let full = self.full();
                full.config_text.is_some() || full.credentials_text.is_some()
            }
        }
    }

    /// Why the SDKs do not see a profile that the user may believe is there, if a reason is
    /// visible: a section written the other file's way. (A name they do not accept is refused
    /// before the files are read: [`check_name`].)
    pub(crate) fn why_missing(&self, name: &str) -> Option<String> {
        // Section headers as written (`profile x`, `x`), without brackets or comments.
        let written = |text: &Option<String>, header: &str| {
            headers(text.as_deref())
                .any(|h| h.split_whitespace().collect::<Vec<_>>().join(" ") == header)
        };
        let full = self.full();
        let files = [
            (
                FileKind::Config,
                FileKind::Credentials,
                &full.config_text,
                &self.config_path,
            ),
            (
                FileKind::Credentials,
                FileKind::Config,
                &full.credentials_text,
                &self.credentials_path,
            ),
        ];
        files.into_iter().find_map(|(kind, other, text, path)| {
            let (own, wrong) = (kind.section(name), other.section(name));
            (own != wrong && written(text, &wrong)).then(|| {
                format!(
                    "{} has [{wrong}], but in the {} file a profile's section is [{own}]; rename the section",
                    path.display(),
                    kind.file()
                )
            })
        })
    }

    /// The key by which the `default` profile holds credentials of its own, if it does: SDKs
    /// read those before container credentials (what `--server` serves).
    pub(crate) fn default_profile_credentials(&self) -> Option<&'static str> {
        let default = self.profile("default");
        [
            "aws_access_key_id",
            "credential_process",
            "sso_session",
            "sso_start_url",
            "role_arn",
            "web_identity_token_file",
        ]
        .into_iter()
        .find(|k| default.get(k).is_some())
    }

    /// A `[services NAME]` section's sub-property, e.g. `("dev", "sts", "endpoint_url")`.
    pub(crate) fn service_property(&self, section: &str, service: &str, key: &str) -> Option<&str> {
        let noted = format!("{section} {service} {key}");
        if self.full.get().is_none() {
            if let Some(value) = self.record.as_ref().and_then(|r| r.services.get(&noted)) {
                return value.as_deref();
            }
        }
        let key = PropertiesKey::builder()
            .section_key("services")
            .section_name(section)
            .property_name(service)
            .sub_property_name(key)
            .build()
            .ok()?;
        let value = self.full().parsed.service(&key).filter(|v| !v.is_empty());
        if self.record_path.is_some() {
            self.asked
                .borrow_mut()
                .services
                .insert(noted, value.map(String::from));
        }
        value
    }

    /// Every profile name in either file, sorted, for completion and messages.
    pub(crate) fn profile_names(&self) -> Vec<String> {
        let mut names = self.full().parsed.profile_names();
        // Names are unique (a map's keys): no order among equals to keep. Ordered by their
        // first 16 bytes as one number first, which settles most comparisons of thousands of
        // names like `team-0042-admin` without comparing strings. (Zeros after a short name
        // order it as the strings do: a profile name has no NUL.)
        let head = |name: &str| {
            let mut bytes = [0u8; 16];
            let n = name.len().min(16);
            bytes[..n].copy_from_slice(&name.as_bytes()[..n]);
            u128::from_be_bytes(bytes)
        };
        let mut keyed: Vec<(u128, String)> = names.drain(..).map(|n| (head(&n), n)).collect();
        keyed.sort_unstable();
        names.extend(keyed.into_iter().map(|(_, n)| n));
        names
    }

    /// The names of the `[sso-session NAME]` sections, sorted.
    #[cfg(test)]
    fn sso_session_names(&self) -> Vec<String> {
        let mut names: Vec<String> = match &self.full().parsed {
            Parsed::Own(sections) => sections.sso_sessions().map(String::from).collect(),
            Parsed::Sdk { sections, .. } => sections.sso_sessions().map(String::from).collect(),
        };
        names.sort();
        names
    }

    #[cfg(test)]
    fn sso_session_get(&self, session: &str, key: &str) -> Option<&str> {
        match &self.full().parsed {
            Parsed::Own(sections) => sections.sso_session(session)?.get(key),
            Parsed::Sdk { sections, .. } => sections.sso_session(session)?.get(key),
        }
    }
}

/// Parses files already read (a missing one is `None`) with the SDK's parser. The SDK reads
/// through its `Fs` seam: it is given the bytes under their real paths, so that its parse
/// errors name the file.
fn parse(files: &[(EnvConfigFileKind, &Path, &Option<String>)]) -> Result<EnvConfigSections> {
    let mut fs: HashMap<OsString, Vec<u8>> = HashMap::new();
    let mut builder = EnvConfigFiles::builder();
    for (kind, path, text) in files {
        if let Some(text) = text {
            fs.insert(path.as_os_str().to_owned(), text.clone().into_bytes());
            builder = builder.with_file(*kind, path);
        }
    }
    if fs.is_empty() {
        // No file exists (the SDK's builder insists on at least one).
        return Ok(EnvConfigSections::default());
    }
    let (sdk_files, sdk_fs, sdk_env) = (
        builder.build(),
        SdkFs::from_raw_map(fs),
        SdkEnv::from_slice(&[]),
    );
    let load = aws_config::profile::load(
        &sdk_fs,
        &sdk_env,
        &sdk_files,
        Some(Cow::Borrowed("default")),
    );
    complete_without_runtime(load).map_err(|e| {
        // A parse error (the only kind left once the bytes are in memory) is the source:
        // `error parsing PATH on line N: MESSAGE`.
        let detail = std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
        anyhow!(
            "{}; fix the file (the AWS CLI and SDKs refuse it too)",
            one_line(&detail)
        )
    })
}

/// One file on its own, for the per-file views (the merged parse already succeeded, so this
/// one cannot fail).
fn parse_one(kind: EnvConfigFileKind, path: &Path, text: &Option<String>) -> EnvConfigSections {
    parse(&[(kind, path, text)]).unwrap_or_default()
}

/// The section headers of a file as written, without brackets or trailing comments.
fn headers(text: Option<&str>) -> impl Iterator<Item = &str> {
    text.unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix('['))
        .filter_map(|l| l.split_once(']'))
        .map(|(h, _)| h.trim())
}

/// The SDKs' rule for profile, section and property names (`validate_identifier`):
/// `[A-Za-z0-9_\-/.%@:\+]+`. (The SDK's own lets an empty name through; an empty one is read in
/// ways left to it.)
fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-/.%@:+".contains(&b))
}

/// The SDK's parse errors read `error parsing PATH on line N:\n  MESSAGE`; one line here.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Drives a future that never waits (the SDK's `load` over an in-memory `Fs`) to completion
/// with a single poll, instead of starting a runtime for it.
fn complete_without_runtime<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut TaskContext::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        // The SDK's loader only awaits its `Fs` and `Env` shims, which are ready at once for
        // in-memory data; if a future version ever waits, that is a bug to see, not to hide.
        Poll::Pending => unreachable!("the AWS profile loader waited on in-memory files"),
    }
}

/// Reads a profile file: `None` when it does not exist; refuses anything that is not a regular,
/// UTF-8 file of sane size, in bounded time (a FIFO is opened without blocking). With the text,
/// the identity of the file opened.
fn read_bounded(path: &Path) -> Result<(Option<String>, Identity)> {
    let refused = |e: files::Refused| {
        anyhow!("{e}; point AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE at a profile file, or unset them")
    };
    let Some((file, meta)) =
        files::open_regular(path, Links::Follow, MAX_FILE_SIZE).map_err(refused)?
    else {
        return Ok((None, Identity::ABSENT));
    };
    let identity = Identity::of(&meta);
    let bytes = files::read_bounded(file, path, MAX_FILE_SIZE).map_err(refused)?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok((Some(text), identity)),
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            bail!(
                "{} is not UTF-8 text (line {line}); save it as UTF-8 (the AWS SDKs would read it as empty)",
                path.display()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new() -> Dir {
            Dir(tempfile::tempdir().unwrap())
        }
        fn load(&self, config: Option<&str>, credentials: Option<&str>) -> Result<ProfileFiles> {
            let (c, k) = (
                self.0.path().join("config"),
                self.0.path().join("credentials"),
            );
            if let Some(text) = config {
                std::fs::write(&c, text).unwrap();
            }
            if let Some(text) = credentials {
                std::fs::write(&k, text).unwrap();
            }
            ProfileFiles::load(c, k)
        }
        /// As a run loads them, remembering into `cache/` here, an hour later (so that files
        /// just written count as settled).
        fn load_remembering(
            &self,
            config: Option<&str>,
            credentials: Option<&str>,
        ) -> Result<ProfileFiles> {
            use std::os::unix::fs::DirBuilderExt;
            let cache = self.0.path().join("cache");
            if !cache.exists() {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&cache)
                    .unwrap();
                for (name, text) in [("config", config), ("credentials", credentials)] {
                    if let Some(text) = text {
                        std::fs::write(self.0.path().join(name), text).unwrap();
                    }
                }
            }
            ProfileFiles::load_remembering_at(
                self.0.path().join("config"),
                self.0.path().join("credentials"),
                Some(&cache),
                SystemTime::now() + std::time::Duration::from_secs(3600),
            )
        }
    }

    fn files(config: &str, credentials: &str) -> ProfileFiles {
        Dir::new().load(Some(config), Some(credentials)).unwrap()
    }

    #[test]
    fn profile_names_are_in_string_order_however_long_their_shared_start() {
        let names = [
            "b",
            "B",
            "a",
            "aa",
            "a-",
            "a.b",
            "team-platform-prod-admin",
            "team-platform-prod",
            "team-platform-prod-",
            "team-platform-pro",
            "team-platform-prod-a",
            "z",
            "0",
        ];
        let config: String = names.iter().map(|n| format!("[profile {n}]\n")).collect();
        let mut sorted: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        sorted.sort();
        assert_eq!(files(&config, "").profile_names(), sorted);
    }

    #[test]
    fn a_key_no_line_names_is_absent_without_asking_the_parse_and_every_named_one_is_found() {
        // Names as people write them: upper case, tabs and spaces around, a comment after the
        // value, a sub-property; each is found as the SDK finds it, by this module's reader
        // and (with a `[services]` section, which it leaves to the SDK) by the SDK's parser.
        let config = "[profile a]\nRole_ARN\t =arn:aws:iam::123456789012:role/x # a comment\n\tREGION  = us-east-1\ns3 =\n  max_concurrent_requests = 10\n";
        let services = "[services s]\nsts =\n  endpoint_url = http://localhost:1\n";
        for (config, by_the_sdk) in [
            (config.to_string(), false),
            (config.to_string() + services, true),
        ] {
            let f = files(&config, "[a]\nAWS_ACCESS_KEY_ID = AKIA1\n");
            let a = f.profile("a");
            // (A line that starts with a tab continues the value before it.)
            assert_eq!(
                a.get("role_arn"),
                Some("arn:aws:iam::123456789012:role/x\nREGION  = us-east-1")
            );
            assert_eq!(a.get("aws_access_key_id"), Some("AKIA1"));
            assert!(a.get("s3").is_some());
            // A continuation is no property of its own, and a name on no line is in no profile.
            assert_eq!(a.get("region"), None);
            assert_eq!(a.get("max_concurrent_requests"), None);
            assert_eq!(a.get("mfa_serial"), None);
            let parsed = &f.full().parsed;
            assert_eq!(matches!(parsed, Parsed::Sdk { .. }), by_the_sdk);
            if let Parsed::Sdk { names, .. } = parsed {
                let may_have = |key: &str| names.contains(&name_hash(key));
                assert!(may_have("ROLE_arn") && may_have("aws_access_key_id"));
                assert!(!may_have("mfa_serial") && !may_have("role_arn "));
                assert_eq!(
                    f.service_property("s", "sts", "endpoint_url"),
                    Some("http://localhost:1")
                );
            }
        }
    }

    #[test]
    fn config_and_credentials_merge_with_credentials_winning() {
        let f = files(
            "[default]\nregion = eu-west-1\n[profile prod]\nrole_arn = arn:aws:iam::123456789012:role/x ; why\nsource_profile=base\n",
            "[base]\naws_access_key_id = AKIA1\naws_secret_access_key = s#ecret\n[prod]\nregion = us-west-2\n",
        );
        assert_eq!(f.profile("default").get("region"), Some("eu-west-1"));
        let prod = f.profile("prod");
        assert_eq!(
            prod.get("role_arn"),
            Some("arn:aws:iam::123456789012:role/x")
        );
        assert_eq!(prod.get("region"), Some("us-west-2"));
        assert_eq!(
            f.profile("base").get("aws_secret_access_key"),
            Some("s#ecret")
        );
        assert!(!f.profile("missing").exists());
        assert_eq!(f.profile_names(), vec!["base", "default", "prod"]);
    }

    #[test]
    fn a_comment_right_after_a_header_does_not_move_properties_into_the_profile_above() {
        let f = files(
            "[profile dev]\nmfa_serial = arn:aws:iam::111111111111:mfa/me\nsource_profile = base\n\
             [profile prod]# production\nrole_arn = arn:aws:iam::222222222222:role/Admin\nsource_profile = base\n",
            "",
        );
        assert_eq!(f.profile("dev").get("role_arn"), None);
        assert_eq!(
            f.profile("prod").get("role_arn"),
            Some("arn:aws:iam::222222222222:role/Admin")
        );
    }

    #[test]
    fn per_file_views_say_which_file_holds_what() {
        let f = files(
            "[profile a]\naws_access_key_id = FROMCONFIG\n[profile b]\nregion = x\n",
            "[a]\naws_secret_access_key = s\n[c]\naws_access_key_id = AKIAC\n",
        );
        let (a, b, c) = (f.profile("a"), f.profile("b"), f.profile("c"));
        assert_eq!(a.get("aws_access_key_id"), Some("FROMCONFIG"));
        assert_eq!(a.get_in_credentials_file("aws_access_key_id"), None);
        assert_eq!(
            a.get_in_credentials_file("aws_secret_access_key"),
            Some("s")
        );
        assert_eq!(
            c.get_in_credentials_file("aws_access_key_id"),
            Some("AKIAC")
        );
        assert!(a.in_config_file() && b.in_config_file() && !c.in_config_file());
    }

    #[test]
    fn services_sections_hold_sub_properties() {
        let f = files(
            "[profile dev]\nservices = local\n[services local]\nsts =\n  endpoint_url = http://127.0.0.1:9000\ns3 =\n  endpoint_url = http://x\n",
            "",
        );
        assert_eq!(
            f.service_property("local", "sts", "endpoint_url"),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(f.service_property("local", "iam", "endpoint_url"), None);
    }

    #[test]
    fn profile_default_wins_and_comments_are_skipped() {
        let f = files(
            "# top\n[profile default]\nregion = a\n; c\n[default]\nregion = b\n",
            "",
        );
        assert_eq!(f.profile("default").get("region"), Some("a"));
    }

    #[test]
    fn missing_files_are_empty() {
        let f = Dir::new().load(None, None).unwrap();
        assert!(f.profile_names().is_empty());
    }

    #[test]
    fn a_malformed_file_is_refused_in_one_line_naming_file_and_line() {
        let dir = Dir::new();
        let err = dir
            .load(Some("[profile a]\nregion = x\nkey : value\n"), None)
            .err()
            .expect("refused")
            .to_string();
        assert!(!err.contains('\n'), "{err}");
        assert!(err.contains("config on line 3"), "{err}");
        assert!(err.contains("Expected an '=' sign"), "{err}");
    }

    #[test]
    fn non_utf8_devices_fifos_and_directories_are_refused() {
        let dir = Dir::new();
        std::fs::write(dir.0.path().join("credentials"), b"[a]\nx = \xff\n").unwrap();
        let err = dir.load(None, None).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("not UTF-8 text (line 2)"), "{err}");

        let zero = ProfileFiles::load("/dev/zero".into(), "/nonexistent/credentials".into())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(zero.contains("not a regular file"), "{zero}");

        let fifo = dir.0.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = ProfileFiles::load(fifo, "/nonexistent".into())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular file"), "{err}");

        let err = ProfileFiles::load(dir.0.path().into(), "/nonexistent".into())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a directory"), "{err}");
    }

    #[test]
    fn a_remembered_parse_holds_no_secret_and_answers_until_a_file_changes() {
        let dir = Dir::new();
        let (config, credentials) = (
            "[profile a]\nregion = eu-west-1\nservices = s\n[services s]\nsts =\n  endpoint_url = http://x\n",
            "[a]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = SeCrEt/value\naws_session_token = ToKeN\n",
        );
        let cold = dir
            .load_remembering(Some(config), Some(credentials))
            .unwrap();
        let a = cold.profile("a");
        assert_eq!(a.get("region"), Some("eu-west-1"));
        assert_eq!(a.get("aws_access_key_id"), Some("AKIAEXAMPLE"));
        assert!(a.has("aws_secret_access_key") && a.has("aws_session_token"));
        assert_eq!(a.get("aws_secret_access_key"), Some("SeCrEt/value"));
        assert_eq!(a.get("aws_session_token"), Some("ToKeN"));
        assert_eq!(
            cold.service_property("s", "sts", "endpoint_url"),
            Some("http://x")
        );
        assert!(!cold.profile("b").exists());
        cold.remember();

        let record = std::fs::read_dir(dir.0.path().join("cache"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "parsed"))
            .expect("a record");
        let text = std::fs::read_to_string(&record).unwrap();
        assert!(
            !text.contains("SeCrEt") && !text.contains("ToKeN"),
            "{text}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&record).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let warm = dir.load_remembering(None, None).unwrap();
        assert!(warm.record.is_some());
        let a = warm.profile("a");
        assert_eq!(a.get("region"), Some("eu-west-1"));
        assert!(a.has("aws_secret_access_key"));
        assert_eq!(
            a.secret("aws_secret_access_key").unwrap().read().unwrap(),
            "SeCrEt/value"
        );
        assert_eq!(
            warm.service_property("s", "sts", "endpoint_url"),
            Some("http://x")
        );
        assert!(!warm.profile("b").exists());
        assert!(warm.full.get().is_none(), "answered without a parse");
        // A property never asked: the parse answers.
        assert_eq!(warm.profile("a").get("output"), None);
        assert!(warm.full.get().is_some());

        // The same size, at once: a new ctime (and mtime), so the record no longer matches.
        std::fs::write(
            dir.0.path().join("config"),
            config.replace("eu-west-1", "us-west-2"),
        )
        .unwrap();
        let changed = dir.load_remembering(None, None).unwrap();
        assert!(changed.record.is_none());
        assert_eq!(changed.profile("a").get("region"), Some("us-west-2"));
    }

    #[test]
    fn files_changed_a_moment_ago_are_not_remembered() {
        let dir = Dir::new();
        dir.load_remembering(Some("[profile a]\nregion = x\n"), None)
            .unwrap();
        let now = ProfileFiles::load_remembering_at(
            dir.0.path().join("config"),
            dir.0.path().join("credentials"),
            Some(&dir.0.path().join("cache")),
            SystemTime::now(),
        )
        .unwrap();
        now.profile("a").get("region");
        now.remember();
        assert_eq!(
            std::fs::read_dir(dir.0.path().join("cache"))
                .unwrap()
                .count(),
            0
        );
    }

    /// The AWS SDKs' shared conformance suite for the profile files
    /// (`test-data/profile-parser-tests.json` of the `aws-runtime` crate, vendored under
    /// `tests/data/`, Apache-2.0): every case, through the files on disk and this module.
    #[test]
    fn the_sdks_profile_parser_conformance_suite_passes() {
        let suite: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/profile-parser-tests.json"))
                .unwrap();
        let cases = suite["tests"].as_array().unwrap();
        assert_eq!(cases.len(), 65, "the suite has 65 cases");
        let mut failures = Vec::new();
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let config = case["input"]["configFile"].as_str();
            let credentials = case["input"]["credentialsFile"].as_str();
            let dir = Dir::new();
            let loaded = dir.load_remembering(config, credentials);
            let output = &case["output"];
            let outcome = match (&loaded, output.get("errorContaining")) {
                (Err(e), Some(needle)) => {
                    let needle = needle.as_str().unwrap();
                    if e.to_string().contains(needle) {
                        Ok(())
                    } else {
                        Err(format!("error `{e}` lacks `{needle}`"))
                    }
                }
                (Err(e), None) => Err(format!("refused: {e}")),
                (Ok(_), Some(needle)) => {
                    Err(format!("accepted; expected an error with `{needle}`"))
                }
                (Ok(files), None) => {
                    let input = [config.unwrap_or(""), credentials.unwrap_or("")].concat();
                    // Cold (parsed, and remembered), then warm: the same answers from the
                    // record, without a parse.
                    check_sections(files, &output["config"], &input, false).and_then(|()| {
                        // As a run asks whether its profiles exist.
                        for name in output["config"]["profiles"]
                            .as_object()
                            .into_iter()
                            .flatten()
                        {
                            files.profile(name.0).exists();
                        }
                        files.remember();
                        let warm = dir.load_remembering(config, credentials).unwrap();
                        if warm.record.is_none() {
                            return Err("nothing was remembered".into());
                        }
                        check_sections(&warm, &output["config"], &input, true)?;
                        match warm.full.get() {
                            None => Ok(()),
                            Some(_) => Err("the warm run parsed the files".into()),
                        }
                    })
                }
            };
            if let Err(why) = outcome {
                failures.push(format!("{name}: {why}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// Compares what was loaded with a suite case's expected profiles and sso-sessions: the
    /// same names, the same values, and no property beyond the expected ones (any property the
    /// parser could invent is named by a `key =` somewhere in the input, so those are probed).
    ///
    /// `warm`: the files are answered from the record, which knows the profiles a run asked
    /// for and not the list of them, nor sso-sessions: only the expected profiles are asked.
    fn check_sections(
        files: &ProfileFiles,
        expected: &serde_json::Value,
        input: &str,
        warm: bool,
    ) -> std::result::Result<(), String> {
        let probes: Vec<String> = input
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, _)| k.trim_matches([' ', '\t']).to_ascii_lowercase())
            .collect();
        let check = |kind: &str,
                     names: Vec<String>,
                     expected: Option<&serde_json::Map<String, serde_json::Value>>,
                     get: &dyn Fn(&str, &str) -> Option<String>|
         -> std::result::Result<(), String> {
            let empty = serde_json::Map::new();
            let expected = expected.unwrap_or(&empty);
            let mut want: Vec<String> = expected.keys().cloned().collect();
            want.sort();
            if names != want {
                return Err(format!("{kind} {names:?}, expected {want:?}"));
            }
            for (section, props) in expected {
                let props = props.as_object().unwrap();
                for (k, v) in props {
                    let got = get(section, k);
                    if got.as_deref() != v.as_str() {
                        return Err(format!("[{section}] {k} = {got:?}, expected {v}"));
                    }
                }
                for probe in &probes {
                    if !props.contains_key(probe) {
                        if let Some(extra) = get(section, probe) {
                            return Err(format!("[{section}] has unexpected {probe} = {extra:?}"));
                        }
                    }
                }
            }
            Ok(())
        };
        if warm {
            let profiles = expected["profiles"].as_object();
            let mut names: Vec<String> = profiles
                .into_iter()
                .flatten()
                .map(|(n, _)| n.clone())
                .collect();
            names.sort();
            if let Some(missing) = names.iter().find(|n| !files.profile(n).exists()) {
                return Err(format!("warm: [{missing}] does not exist"));
            }
            // A secret is not in the record: read from the files, as a cache miss does.
            return check("profiles (warm)", names, profiles, &|p, k| {
                let profile = files.profile(p);
                match remembered::SECRET_KEYS.iter().find(|s| **s == k) {
                    Some(secret) if profile.has(k) => {
                        profile.secret(secret).map(|s| s.read().unwrap())
                    }
                    _ => profile.get_raw(k).map(String::from),
                }
            });
        }
        check(
            "profiles",
            files.profile_names(),
            expected["profiles"].as_object(),
            &|p, k| files.profile(p).get_raw(k).map(String::from),
        )?;
        check(
            "sso-sessions",
            files.sso_session_names(),
            expected.get("sso_sessions").and_then(|s| s.as_object()),
            &|s, k| files.sso_session_get(s, k).map(String::from),
        )
    }
}
