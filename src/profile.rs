//! The AWS shared config and credentials files, read synchronously.
//!
//! aws-config has its own parser, but it is async and comes with the SDK's loader; mfa-exec
//! must resolve a profile on the cache-hit path without starting a runtime (that path is a
//! read-check-exec measured in milliseconds), and it needs keys the SDK ignores (`mfa_serial`,
//! `mfa_process`). So this is a small parser of the documented format: `[default]`,
//! `[profile NAME]`, `[services NAME]` in the config file, `[NAME]` in the credentials file,
//! `#`/`;` comments, indented sub-properties (`sts =` / `  endpoint_url = …`) and
//! continuation lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The properties of one section; sub-property blocks are kept under `"parent.child"`.
pub(crate) type Properties = BTreeMap<String, String>;

#[derive(Debug, Default)]
pub(crate) struct ProfileFiles {
    pub(crate) config_path: PathBuf,
    pub(crate) credentials_path: PathBuf,
    /// `[default]`/`[profile x]` sections of the config file, by profile name.
    config: BTreeMap<String, Properties>,
    /// `[services x]` sections of the config file.
    services: BTreeMap<String, Properties>,
    /// `[x]` sections of the credentials file.
    credentials: BTreeMap<String, Properties>,
}

/// One profile as the AWS CLI sees it: the credentials file's keys win over the config file's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Profile<'a> {
    pub(crate) name: &'a str,
    config: Option<&'a Properties>,
    credentials: Option<&'a Properties>,
}

impl<'a> Profile<'a> {
    pub(crate) fn get(&self, key: &str) -> Option<&'a str> {
        self.credentials
            .and_then(|p| p.get(key))
            .or_else(|| self.config.and_then(|p| p.get(key)))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A key as the credentials file alone has it (`keys add --from-credentials-file`).
    pub(crate) fn get_in_credentials_file(&self, key: &str) -> Option<&'a str> {
        self.credentials
            .and_then(|p| p.get(key))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Whether the config file has a section for this profile.
    pub(crate) fn in_config_file(&self) -> bool {
        self.config.is_some()
    }

    /// Whether either file has a section for this profile.
    pub(crate) fn exists(&self) -> bool {
        self.config.is_some() || self.credentials.is_some()
    }
}

impl ProfileFiles {
    /// Reads both files; a missing file is an empty one, as for every AWS SDK.
    pub(crate) fn load(config_path: PathBuf, credentials_path: PathBuf) -> Result<ProfileFiles> {
        let mut files = ProfileFiles {
            config_path,
            credentials_path,
            ..ProfileFiles::default()
        };
        if let Some(text) = read_optional(&files.config_path)? {
            for (header, props) in parse(&text) {
                let header = header.trim();
                if header == "default" {
                    // `[profile default]` wins over `[default]` when both are present.
                    files.config.entry("default".into()).or_insert(props);
                } else if let Some(name) = header.strip_prefix("profile ") {
                    files.config.insert(name.trim().to_string(), props);
                } else if let Some(name) = header.strip_prefix("services ") {
                    files.services.insert(name.trim().to_string(), props);
                }
                // Other sections (sso-session, plain `[name]`) are not profiles.
            }
        }
        if let Some(text) = read_optional(&files.credentials_path)? {
            for (header, props) in parse(&text) {
                files.credentials.insert(header.trim().to_string(), props);
            }
        }
        Ok(files)
    }

    pub(crate) fn profile<'a>(&'a self, name: &'a str) -> Profile<'a> {
        Profile {
            name,
            config: self.config.get(name),
            credentials: self.credentials.get(name),
        }
    }

    /// A `[services NAME]` section's sub-property, e.g. `("dev", "sts", "endpoint_url")`.
    pub(crate) fn service_property(&self, section: &str, service: &str, key: &str) -> Option<&str> {
        self.services
            .get(section)?
            .get(&format!("{service}.{key}"))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Every profile name in either file, sorted, for completion and messages.
    pub(crate) fn profile_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .config
            .keys()
            .chain(self.credentials.keys())
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Splits a profile file into `(section header, properties)`, in file order. A section that
/// appears twice is merged, later keys winning, as in the SDKs.
fn parse(text: &str) -> Vec<(String, Properties)> {
    let mut sections: Vec<(String, Properties)> = Vec::new();
    // The key whose value an indented line continues or, for an empty value, nests under.
    let mut last_key: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indented = line.starts_with([' ', '\t']);
        if !indented && trimmed.starts_with('[') {
            let header = strip_comment(trimmed);
            let Some(header) = header.strip_prefix('[').and_then(|h| h.strip_suffix(']')) else {
                last_key = None;
                continue;
            };
            let header = header.trim().to_string();
            if !sections.iter().any(|(h, _)| *h == header) {
                sections.push((header.clone(), Properties::new()));
            }
            // Move the (possibly existing) section to the back so new keys land in it.
            let idx = sections.iter().position(|(h, _)| *h == header).unwrap_or(0);
            let section = sections.remove(idx);
            sections.push(section);
            last_key = None;
            continue;
        }
        let Some((_, props)) = sections.last_mut() else {
            continue; // properties before any section are ignored
        };
        if indented {
            if let Some(parent) = &last_key {
                let parent_value = props.get(parent).cloned().unwrap_or_default();
                if parent_value.is_empty() || parent.contains('.') {
                    // A sub-property: `sts =` then `  endpoint_url = …`.
                    if let Some((k, v)) = trimmed.split_once('=') {
                        let base = parent.split('.').next().unwrap_or(parent);
                        props.insert(
                            format!("{base}.{}", k.trim().to_ascii_lowercase()),
                            v.trim().to_string(),
                        );
                        continue;
                    }
                } else {
                    // A continuation of the previous value.
                    let joined = format!("{parent_value}\n{trimmed}");
                    props.insert(parent.clone(), joined);
                    continue;
                }
            }
        }
        if let Some((k, v)) = trimmed.split_once('=') {
            let key = k.trim().to_ascii_lowercase();
            props.insert(key.clone(), strip_comment(v.trim()).to_string());
            last_key = Some(key);
        }
    }
    sections
}

/// Removes an inline ` #comment` or ` ;comment`: only when preceded by white space, so a `#`
/// inside a value (a URL fragment, a secret) is kept.
fn strip_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    for i in 1..bytes.len() {
        if (bytes[i] == b'#' || bytes[i] == b';') && bytes[i - 1].is_ascii_whitespace() {
            return value[..i].trim_end();
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(config: &str, credentials: &str) -> ProfileFiles {
        let dir = std::env::temp_dir().join(format!(
            "mfa-exec-profile-test-{}-{}",
            std::process::id(),
            config.len() * 31 + credentials.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(dir.join("credentials"), credentials).unwrap();
        let f = ProfileFiles::load(dir.join("config"), dir.join("credentials")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        f
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
}
