//! The AWS shared config and credentials files, read by the AWS SDK's own parser.
//!
//! mfa-exec must never disagree with the AWS CLI about what a profile says: a hand-written
//! parser once read `[profile prod]# production` as no header at all, so prod's `role_arn`
//! landed in the profile above it. So the files are parsed by `aws_config::profile::load`
//! (the parser every AWS SDK checks against the shared conformance suite, run here as a test),
//! and this module only adds what the SDK leaves to its callers:
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

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::task::{Context as TaskContext, Poll, Waker};

use anyhow::{anyhow, bail, Result};
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_runtime::env_config::property::PropertiesKey;
use aws_runtime::env_config::section::{EnvConfigSections, Profile as SdkProfile};
use aws_types::os_shim_internal::{Env as SdkEnv, Fs as SdkFs};

use crate::files::{self, Links};

/// Larger than any real profile file (thousands of profiles fit in a few MB), small enough to
/// read and parse in well under a second.
pub(crate) const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// The two AWS profile files name a profile's section differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// `[default]`, `[profile NAME]` (also accept `[profile default]`).
    Config,
    /// `[NAME]`.
    Credentials,
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
    if is_profile_name(name) {
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
    sections: EnvConfigSections,
    /// The text of each file, for the per-file views below (parsed only when asked for: the
    /// run path needs the merged view alone).
    config_text: Option<String>,
    credentials_text: Option<String>,
    config_only: OnceCell<EnvConfigSections>,
    credentials_only: OnceCell<EnvConfigSections>,
}

/// One profile as the AWS CLI sees it: the credentials file's keys win over the config file's.
#[derive(Clone, Copy)]
pub(crate) struct Profile<'a> {
    pub(crate) name: &'a str,
    inner: Option<&'a SdkProfile>,
    files: &'a ProfileFiles,
}

impl<'a> Profile<'a> {
    /// A property with a non-empty value (`region =` with nothing after it counts as unset).
    pub(crate) fn get(&self, key: &str) -> Option<&'a str> {
        self.get_raw(key).filter(|v| !v.is_empty())
    }

    /// A property exactly as the SDK parsed it, empty values included.
    pub(crate) fn get_raw(&self, key: &str) -> Option<&'a str> {
        self.inner?.get(key)
    }

    /// Whether either file has a (valid) section for this profile.
    pub(crate) fn exists(&self) -> bool {
        self.inner.is_some()
    }

    /// A non-empty property as the credentials file alone has it (`keys add
    /// --from-credentials-file` moves exactly those).
    pub(crate) fn get_in_credentials_file(&self, key: &str) -> Option<&'a str> {
        let files = self.files;
        let only = files.credentials_only.get_or_init(|| {
            parse_one(
                EnvConfigFileKind::Credentials,
                &files.credentials_path,
                &files.credentials_text,
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
                parse_one(
                    EnvConfigFileKind::Config,
                    &files.config_path,
                    &files.config_text,
                )
            })
            .get_profile(self.name)
            .is_some()
    }
}

impl ProfileFiles {
    /// Reads and parses both files; a missing file is an empty one, as for every AWS SDK.
    pub(crate) fn load(config_path: PathBuf, credentials_path: PathBuf) -> Result<ProfileFiles> {
        let config_text = read_bounded(&config_path)?;
        let credentials_text = read_bounded(&credentials_path)?;
        let sections = parse(&[
            (EnvConfigFileKind::Config, &config_path, &config_text),
            (
                EnvConfigFileKind::Credentials,
                &credentials_path,
                &credentials_text,
            ),
        ])?;
        Ok(ProfileFiles {
            config_path,
            credentials_path,
            sections,
            config_text,
            credentials_text,
            config_only: OnceCell::new(),
            credentials_only: OnceCell::new(),
        })
    }

    pub(crate) fn profile<'a>(&'a self, name: &'a str) -> Profile<'a> {
        Profile {
            name,
            inner: self.sections.get_profile(name),
            files: self,
        }
    }

    /// Whether either file exists (a first-time user has neither).
    pub(crate) fn any_file_exists(&self) -> bool {
        self.config_text.is_some() || self.credentials_text.is_some()
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
        let files = [
            (
                FileKind::Config,
                FileKind::Credentials,
                &self.config_text,
                &self.config_path,
            ),
            (
                FileKind::Credentials,
                FileKind::Config,
                &self.credentials_text,
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
        let key = PropertiesKey::builder()
            .section_key("services")
            .section_name(section)
            .property_name(service)
            .sub_property_name(key)
            .build()
            .ok()?;
        self.sections
            .other_sections()
            .get(&key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Every profile name in either file, sorted, for completion and messages.
    pub(crate) fn profile_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.sections.profiles().map(String::from).collect();
        names.sort();
        names
    }

    /// The names of the `[sso-session NAME]` sections, sorted.
    #[cfg(test)]
    fn sso_session_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.sections.sso_sessions().map(String::from).collect();
        names.sort();
        names
    }

    #[cfg(test)]
    fn sso_session_get(&self, session: &str, key: &str) -> Option<&str> {
        self.sections.sso_session(session)?.get(key)
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

/// The SDKs' rule for profile names: `[A-Za-z0-9_\-/.%@:\+]+`.
fn is_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-/.%@:+".contains(c))
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
/// UTF-8 file of sane size, in bounded time (a FIFO is opened without blocking).
fn read_bounded(path: &Path) -> Result<Option<String>> {
    let refused = |e: files::Refused| {
        anyhow!("{e}; point AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE at a profile file, or unset them")
    };
    let Some((file, _)) =
        files::open_regular(path, Links::Follow, MAX_FILE_SIZE).map_err(refused)?
    else {
        return Ok(None);
    };
    let bytes = files::read_bounded(file, path, MAX_FILE_SIZE).map_err(refused)?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Some(text)),
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
    }

    fn files(config: &str, credentials: &str) -> ProfileFiles {
        Dir::new().load(Some(config), Some(credentials)).unwrap()
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
            let loaded = Dir::new().load(config, credentials);
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
                (Ok(files), None) => check_sections(
                    files,
                    &output["config"],
                    &[config.unwrap_or(""), credentials.unwrap_or("")].concat(),
                ),
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
    fn check_sections(
        files: &ProfileFiles,
        expected: &serde_json::Value,
        input: &str,
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
