//! The profile files' sections read in one pass, exactly as the AWS SDK's parser reads them, for
//! the files where that can be told line by line; every other file goes to the SDK's parser.
//!
//! The SDK's parser (aws-runtime's `env_config`) stays the source of truth, but it is slow for
//! what `list` and a first run do with 10,000 profiles: it keeps every section in a hash map of
//! its header's text, then copies each into a second map with every property name lowercased
//! into a new `String` and SipHashed, and each lookup lowercases and SipHashes again (16,900
//! instructions a profile to parse, 570 a lookup). Here a pass over the lines copies names and
//! values into one buffer, and a lookup compares a profile's few names in place.
//!
//! What is read here is only what reads the same whichever order the SDK's hash maps take:
//!
//! - headers `[default]`, `[profile NAME]` and `[sso-session NAME]` in the config file and
//!   `[NAME]` in the credentials file, written with one space, NAME a valid name (comments
//!   after them cut as the SDK cuts them), each at most once a file: the SDK merges repeated
//!   or differently spaced headers of one section in its hash map's order;
//! - property lines whose name is valid (the SDK drops the others with a warning), their
//!   continuation lines and sub-properties as the SDK joins them.
//!
//! Anything else (a `[services NAME]` section, a header the SDK ignores, a line it refuses)
//! makes [`read`] decline, and the SDK parses the files instead, with its own warnings and
//! errors. `tests` compares the two on the SDK's conformance suite and on generated files.

use std::collections::HashMap;
use std::ops::Range;

use fnv::FnvBuildHasher;

use super::{is_identifier, FileKind};

/// The SDK's whitespace around names, values and lines (`WHITESPACE` in aws-runtime's
/// `parse.rs`).
const WHITESPACE: [char; 2] = [' ', '\t'];
const COMMENT: [char; 2] = ['#', ';'];

/// Both files' sections, as the SDK would merge them.
#[derive(Default)]
pub(super) struct Sections {
    profiles: HashMap<Box<str>, Entry, FnvBuildHasher>,
    sso_sessions: HashMap<Box<str>, Entry, FnvBuildHasher>,
    props: Vec<Prop>,
    /// Every property's name (lowercased) and value, one after the other.
    text: String,
}

/// A profile's or sso-session's properties: a range of [`Sections::props`] from each file.
#[derive(Default)]
struct Entry {
    /// The config file's section, then the credentials file's (whose properties win).
    parts: [Option<Range<u32>>; 2],
    /// The lengths of its property names, a bit each (see [`length_bit`]): most keys a run
    /// asks for are in no section, and a name of another length is not the key in any case.
    lengths: u64,
}

/// A name's length as a bit of [`Entry::lengths`] (63 and longer share the last).
fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

struct Prop {
    name: Range<u32>,
    value: Range<u32>,
}

/// One section as both files have it.
#[derive(Clone, Copy)]
pub(super) struct Section<'a> {
    sections: &'a Sections,
    entry: &'a Entry,
}

impl<'a> Section<'a> {
    /// A property as the SDK's `Profile::get` finds it: the name ASCII-lowercased, the
    /// credentials file's value over the config file's.
    #[inline]
    pub(super) fn get(&self, key: &str) -> Option<&'a str> {
        if self.entry.lengths & length_bit(key.len()) == 0 {
            return None;
        }
        // Names are kept lowercased: a key with an upper-case letter matches none as it is.
        match self.find(key) {
            None if key.bytes().any(|b| b.is_ascii_uppercase()) => {
                self.find(&key.to_ascii_lowercase())
            }
            found => found,
        }
    }

    fn find(&self, key: &str) -> Option<&'a str> {
        let s = self.sections;
        let (bytes, key) = (s.text.as_bytes(), key.as_bytes());
        self.entry.parts.iter().rev().flatten().find_map(|part| {
            s.props[part.start as usize..part.end as usize]
                .iter()
                .find(|p| {
                    p.name.len() == key.len()
                        && &bytes[p.name.start as usize..p.name.end as usize] == key
                })
                .map(|p| s.at(&p.value))
        })
    }

    /// Every property, merged as the SDK merges them (for the tests' comparison with it).
    #[cfg(test)]
    pub(super) fn properties(&self) -> HashMap<String, String> {
        let s = self.sections;
        let mut all = HashMap::new();
        for part in self.entry.parts.iter().flatten() {
            for p in &s.props[part.start as usize..part.end as usize] {
                all.insert(s.at(&p.name).to_string(), s.at(&p.value).to_string());
            }
        }
        all
    }
}

impl Sections {
    pub(super) fn profile(&self, name: &str) -> Option<Section<'_>> {
        self.section(&self.profiles, name)
    }

    #[cfg(test)]
    pub(super) fn sso_session(&self, name: &str) -> Option<Section<'_>> {
        self.section(&self.sso_sessions, name)
    }

    fn section<'a>(
        &'a self,
        map: &'a HashMap<Box<str>, Entry, FnvBuildHasher>,
        name: &str,
    ) -> Option<Section<'a>> {
        map.get(name).map(|entry| Section {
            sections: self,
            entry,
        })
    }

    pub(super) fn profiles(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(|k| &**k)
    }

    #[cfg(test)]
    pub(super) fn sso_sessions(&self) -> impl Iterator<Item = &str> {
        self.sso_sessions.keys().map(|k| &**k)
    }

    fn at(&self, range: &Range<u32>) -> &str {
        &self.text[range.start as usize..range.end as usize]
    }

    /// Appends `text` to the buffer, `lowercase`d if asked; where it landed.
    fn keep(&mut self, text: &str, lowercase: bool) -> Range<u32> {
        let start = self.text.len();
        self.text.push_str(text);
        if lowercase {
            self.text[start..].make_ascii_lowercase();
        }
        start as u32..self.text.len() as u32
    }
}

/// Where the section being read goes.
#[derive(Clone, PartialEq, Eq)]
enum Target<'t> {
    Profile(&'t str),
    SsoSession(&'t str),
    /// `[default]` in the config file, which a `[profile default]` there overrides whole.
    UnprefixedDefault,
}

/// Both files' sections, or None when either has anything [`Sections`] does not read as the
/// SDK does (see the module's header). Either text may be absent (no file).
pub(super) fn read(config: Option<&str>, credentials: Option<&str>) -> Option<Sections> {
    // Sized for the common file: a few properties a section, some 30 bytes each.
    let size = config.map_or(0, str::len) + credentials.map_or(0, str::len);
    let mut sections = Sections {
        props: Vec::with_capacity(size / 32),
        text: String::with_capacity(size),
        ..Sections::default()
    };
    for (text, kind) in [
        (config, FileKind::Config),
        (credentials, FileKind::Credentials),
    ] {
        if let Some(text) = text {
            FileReader::new(&mut sections, kind).read(text)?;
        }
    }
    sections.props.shrink_to_fit();
    Some(sections)
}

/// One file's pass.
struct FileReader<'s, 't> {
    sections: &'s mut Sections,
    kind: FileKind,
    /// The section being read and where its properties start in `sections.props`.
    current: Option<(Target<'t>, u32)>,
    /// The property that a continuation line extends, and whether its lines are
    /// sub-properties (its value on its own line was empty).
    property: Option<(usize, bool)>,
    /// A `[default]` read in the config file, kept until the file is read (a `[profile
    /// default]` anywhere in it overrides it).
    unprefixed_default: Option<Range<u32>>,
    prefixed_default: bool,
}

impl<'s, 't> FileReader<'s, 't> {
    fn new(sections: &'s mut Sections, kind: FileKind) -> Self {
        FileReader {
            sections,
            kind,
            current: None,
            property: None,
            unprefixed_default: None,
            prefixed_default: false,
        }
    }

    /// The SDK's line loop (`Parser::parse_profile`): blank and comment lines skipped, then a
    /// header, a continuation (leading space or tab) or a property.
    fn read(mut self, text: &'t str) -> Option<()> {
        for line in text.lines() {
            if trim(line).is_empty() || line.starts_with(COMMENT) {
                continue;
            }
            if line.starts_with('[') {
                self.header(line)?;
            } else if line.starts_with(WHITESPACE) {
                self.continuation(line)?;
            } else {
                self.property(line)?;
            }
        }
        self.close();
        if let Some(range) = self.unprefixed_default.take() {
            if !self.prefixed_default {
                self.store(&Target::Profile("default"), range);
            }
        }
        Some(())
    }

    fn header(&mut self, line: &'t str) -> Option<()> {
        self.close();
        let inside = prepare_line(line, false)
            .strip_prefix('[')?
            .strip_suffix(']')?;
        let target = match self.kind {
            FileKind::Config if inside == "default" => Target::UnprefixedDefault,
            FileKind::Config => match inside.split_once(' ') {
                Some(("profile", name)) if is_identifier(name) => Target::Profile(name),
                Some(("sso-session", name)) if is_identifier(name) => Target::SsoSession(name),
                _ => return None,
            },
            FileKind::Credentials if is_identifier(inside) => Target::Profile(inside),
            FileKind::Credentials => return None,
        };
        // A second section of the same name in one file: the SDK's merge, left to it.
        let seen = match target {
            Target::Profile(name) => self.part_of(&self.sections.profiles, name),
            Target::SsoSession(name) => self.part_of(&self.sections.sso_sessions, name),
            Target::UnprefixedDefault => self.unprefixed_default.is_some(),
        };
        if seen {
            return None;
        }
        if self.kind == FileKind::Config && target == Target::Profile("default") {
            self.prefixed_default = true;
        }
        self.current = Some((target, self.sections.props.len() as u32));
        Some(())
    }

    /// Whether this file had a section `name` in `map` already.
    fn part_of(&self, map: &HashMap<Box<str>, Entry, FnvBuildHasher>, name: &str) -> bool {
        map.get(name)
            .is_some_and(|entry| entry.parts[self.kind as usize].is_some())
    }

    /// Ends the section being read: its properties go to its entry.
    fn close(&mut self) {
        self.property = None;
        if let Some((target, start)) = self.current.take() {
            let range = start..self.sections.props.len() as u32;
            match target {
                Target::UnprefixedDefault => self.unprefixed_default = Some(range),
                target => self.store(&target, range),
            }
        }
    }

    /// Gives a section's properties to its entry (the file has no other section of its name).
    fn store(&mut self, target: &Target<'t>, range: Range<u32>) {
        let lengths = self.sections.props[range.start as usize..range.end as usize]
            .iter()
            .fold(0, |bits, p| bits | length_bit(p.name.len()));
        let (map, name) = match *target {
            Target::Profile(name) => (&mut self.sections.profiles, name),
            Target::SsoSession(name) => (&mut self.sections.sso_sessions, name),
            Target::UnprefixedDefault => unreachable!("kept until the file is read"),
        };
        // The other file's section of the same name, or a new entry (one lookup when it is
        // there, as for most profiles of the credentials file; the name copied only when not).
        let entry = match map.get_mut(name) {
            Some(entry) => entry,
            None => map.entry(name.into()).or_default(),
        };
        entry.parts[self.kind as usize] = Some(range);
        entry.lengths |= lengths;
    }

    /// `name = value`: the SDK's `parse_property_line`. A name seen before in the section
    /// takes the new value, as the SDK's map insert does.
    fn property(&mut self, line: &'t str) -> Option<()> {
        let (_, start) = self.current.as_ref()?;
        let start = *start as usize;
        let (name, value) = property_line(line)?;
        if !is_identifier(name) {
            return None;
        }
        let lowercase = name.bytes().any(|b| b.is_ascii_uppercase());
        let s = &mut *self.sections;
        let existing = s.props[start..].iter().position(|p| {
            p.name.len() == name.len()
                && s.text.as_bytes()[p.name.start as usize..p.name.end as usize]
                    .eq_ignore_ascii_case(name.as_bytes())
        });
        // The value is kept last, so that a continuation line extends it in place.
        let index = match existing {
            Some(i) => {
                s.props[start + i].value = s.keep(value, false);
                start + i
            }
            None => {
                let name = s.keep(name, lowercase);
                let value = s.keep(value, false);
                s.props.push(Prop { name, value });
                s.props.len() - 1
            }
        };
        self.property = Some((index, value.is_empty()));
        Some(())
    }

    /// A line starting with a space or tab continues the property above it: the SDK appends
    /// a newline and the line trimmed (its comments kept). Under a property whose value was
    /// empty, each such line must itself read as `name = value` (a sub-property).
    fn continuation(&mut self, line: &str) -> Option<()> {
        self.current.as_ref()?;
        let (index, sub) = self.property?;
        if sub && !trim(line).is_empty() {
            property_line(line)?;
        }
        let s = &mut *self.sections;
        // The property's value is the last text kept (a header or property line would have
        // ended it).
        debug_assert_eq!(s.props[index].value.end as usize, s.text.len());
        s.text.push('\n');
        s.text.push_str(trim(line));
        s.props[index].value.end = s.text.len() as u32;
        Some(())
    }
}

/// The SDK's `parse_property_line`: the line without its comment, split at its first `=`,
/// both sides trimmed; None where the SDK refuses it (no `=`, no name).
fn property_line(line: &str) -> Option<(&str, &str)> {
    let (name, value) = prepare_line(line, true).split_once('=')?;
    let name = trim(name);
    (!name.is_empty()).then(|| (name, trim(value)))
}

/// The SDK's `prepare_line`: trimmed, and cut at the first `#` or `;` (for a property line,
/// only one right after a whitespace character, Unicode's included: `s#ecret` is a value),
/// trimmed again. (The SDK walks the characters; `#` and `;` are ASCII, which no byte of a
/// multi-byte character can be, so a byte search finds them, and only there is the character
/// before looked at.)
fn prepare_line(line: &str, comments_need_whitespace: bool) -> &str {
    let line = trim(line);
    let end = memchr::memchr2_iter(b'#', b';', line.as_bytes())
        .find(|&i| {
            !comments_need_whitespace
                || line[..i]
                    .chars()
                    .next_back()
                    .is_some_and(char::is_whitespace)
        })
        .unwrap_or(line.len());
    trim(&line[..end])
}

/// `trim_matches(WHITESPACE)`, by bytes (both are ASCII).
fn trim(text: &str) -> &str {
    let bytes = text.as_bytes();
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    &text[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_runtime::env_config::file::EnvConfigFileKind;
    use aws_runtime::env_config::property::Property;
    use aws_runtime::env_config::section::{EnvConfigSections, Profile as SdkProfile};
    use std::path::Path;

    /// The SDK's parse of the same texts, as `super::parse` makes it for a run.
    fn sdk(config: Option<&str>, credentials: Option<&str>) -> anyhow::Result<EnvConfigSections> {
        let (config, credentials) = (config.map(String::from), credentials.map(String::from));
        super::super::parse(&[
            (EnvConfigFileKind::Config, Path::new("/config"), &config),
            (
                EnvConfigFileKind::Credentials,
                Path::new("/credentials"),
                &credentials,
            ),
        ])
    }

    /// Whether [`read`] took the files; when it did, it must have read exactly what the SDK
    /// reads: the same profiles, each equal to the SDK's whole (its every property), and the
    /// same sso-sessions with the same values (probed by every name a line of the input has).
    fn same_as_the_sdk(config: Option<&str>, credentials: Option<&str>) -> Result<bool, String> {
        let Some(own) = read(config, credentials) else {
            return Ok(false);
        };
        let theirs = sdk(config, credentials)
            .map_err(|e| format!("read here, but the SDK refuses it: {e}"))?;
        let sorted = |names: Vec<&str>| {
            let mut names: Vec<String> = names.into_iter().map(String::from).collect();
            names.sort();
            names
        };
        let (ours, sdks) = (
            sorted(own.profiles().collect()),
            sorted(theirs.profiles().collect()),
        );
        if ours != sdks {
            return Err(format!("profiles {ours:?}, the SDK's {sdks:?}"));
        }
        // Every name a line has, as a run asks for it and in upper case.
        let probes: Vec<String> = [config, credentials]
            .into_iter()
            .flatten()
            .flat_map(str::lines)
            .filter_map(|l| l.split_once('='))
            .flat_map(|(k, _)| {
                let k = k.trim_matches(WHITESPACE).to_ascii_lowercase();
                [k.to_ascii_uppercase(), k]
            })
            .collect();
        for name in &ours {
            let (mine, sdk) = (
                own.profile(name).unwrap(),
                theirs.get_profile(name).unwrap(),
            );
            same_values(
                &format!("[{name}]"),
                &probes,
                |k| mine.get(k),
                |k| sdk.get(k),
            )?;
            let properties = mine.properties();
            let as_sdk = SdkProfile::new(
                name.clone(),
                properties
                    .into_iter()
                    .map(|(k, v)| (k.clone(), Property::new(k, v)))
                    .collect(),
            );
            if &as_sdk != sdk {
                return Err(format!("[{name}] {as_sdk:?}, the SDK's {sdk:?}"));
            }
        }
        let (ours, sdks) = (
            sorted(own.sso_sessions().collect()),
            sorted(theirs.sso_sessions().collect()),
        );
        if ours != sdks {
            return Err(format!("sso-sessions {ours:?}, the SDK's {sdks:?}"));
        }
        for name in &ours {
            let (mine, sdk) = (
                own.sso_session(name).unwrap(),
                theirs.sso_session(name).unwrap(),
            );
            same_values(
                &format!("[sso-session {name}]"),
                &probes,
                |k| mine.get(k),
                |k| sdk.get(k),
            )?;
        }
        Ok(true)
    }

    /// Whether a section has the same value for each of `names` here as in the SDK's parse.
    fn same_values<'a>(
        section: &str,
        names: &[String],
        ours: impl Fn(&str) -> Option<&'a str>,
        sdks: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<(), String> {
        match names.iter().find(|n| ours(n) != sdks(n)) {
            Some(n) => Err(format!(
                "{section} {n} = {:?}, the SDK's {:?}",
                ours(n),
                sdks(n)
            )),
            None => Ok(()),
        }
    }

    #[test]
    fn the_sdks_conformance_suite_reads_the_same_here_or_is_left_to_the_sdk() {
        let suite: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/profile-parser-tests.json"))
                .unwrap();
        let mut read_here = Vec::new();
        for case in suite["tests"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let config = case["input"]["configFile"].as_str();
            let credentials = case["input"]["credentialsFile"].as_str();
            match same_as_the_sdk(config, credentials) {
                Ok(true) => read_here.push(name),
                Ok(false) => {}
                Err(why) => panic!("{name}: {why}"),
            }
        }
        // Most of the suite is ordinary files, read here; the rest (its error cases, ignored
        // sections, services) goes to the SDK.
        eprintln!("SUITE {}", read_here.len());
        assert!(read_here.len() >= 30, "read here: {read_here:?}");
    }

    #[test]
    fn an_ordinary_generated_config_is_read_here() {
        let mut config = String::from("[default]\nregion = us-east-1\n\n");
        for i in 0..50 {
            config.push_str(&format!(
                "# team {i}\n[profile team-{i}]\nrole_arn = arn:aws:iam::123456789012:role/team-{i}\nsource_profile = default\nregion = eu-west-1\n\n"
            ));
        }
        config.push_str("[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n");
        let credentials = "[default]\r\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\r\naws_secret_access_key = s#cret ; rotated\r\n";
        assert_eq!(same_as_the_sdk(Some(&config), Some(credentials)), Ok(true));
        let own = read(Some(&config), Some(credentials)).unwrap();
        assert_eq!(own.profiles().count(), 51);
        let default = own.profile("default").unwrap();
        assert_eq!(default.get("REGION"), Some("us-east-1"));
        assert_eq!(default.get("aws_secret_access_key"), Some("s#cret"));
    }

    #[test]
    fn what_only_the_sdks_merge_decides_is_left_to_it() {
        for (config, credentials) in [
            // A section twice in one file, or written two ways: the SDK merges them in the
            // order of its hash map.
            ("[profile a]\nx = 1\n[profile a]\nx = 2\n", ""),
            ("[profile a]\nx = 1\n[profile  a]\nx = 2\n", ""),
            ("", "[a]\nx = 1\n[ a]\nx = 2\n"),
            // Sections it ignores (with a warning) or keeps elsewhere.
            ("[a]\nx = 1\n", ""),
            ("", "[profile a]\nx = 1\n"),
            (
                "[services s]\nsts =\n  endpoint_url = http://localhost\n",
                "",
            ),
            // A name it drops, a line it refuses.
            ("[profile a]\nké = 1\n", ""),
            ("[profile a]\nno equals\n", ""),
            ("x = 1\n[profile a]\n", ""),
        ] {
            assert!(
                read(Some(config), Some(credentials)).is_none(),
                "read here: {config:?} {credentials:?}"
            );
        }
    }

    /// Section headers and the lines under them as people write them, most of which this
    /// module reads; files of them and the SDK's parse must agree wherever it does.
    const CONFIG_HEADERS: &[&str] = &[
        "[default]",
        "[default]\t",
        "[profile default]",
        "[profile a]",
        "[profile b] # the other one",
        "[profile c]; x",
        "[profile d]#x",
        "[profile e]",
        "[profile f]",
        "[sso-session s]",
        "[sso-session t] # corp",
    ];
    const CREDENTIALS_HEADERS: &[&str] = &[
        "[default]",
        "[a]",
        "[b] # the other one",
        "[c];x",
        "[d]",
        "[e]",
        "[f]",
    ];
    const LINES: &[&str] = &[
        "region = us-east-1",
        "Region=eu-west-1",
        "REGION\t=\tus-west-2\t",
        "role_arn = arn:aws:iam::1:role/x # c",
        "role_arn = arn#x",
        "role_arn = arn ;x",
        "role_arn = x\u{a0}# after a no-break space",
        "role_arn = é # non-ASCII",
        "source_profile = a",
        "mfa_serial = arn:aws:iam::1:mfa/me",
        "a.b-c/d%e@f:g+h = 1",
        "x = y = z",
        "empty =",
        "s3 =",
        "  max_concurrent_requests = 10",
        "\tmax = 1",
        "  no equals",
        "  # a comment, kept in a value",
        "# c",
        "; c",
        "",
        "   ",
        "\t",
        "v = a\rb",
    ];
    /// What the SDK alone reads (or refuses).
    const LEFT_TO_THE_SDK: &[&str] = &[
        "[profile  a]",
        "[profile\ta]",
        "[ profile a ]",
        "[services x]",
        "[Profile a]",
        "[profile a b]",
        "[profile a",
        "  [profile a]",
        "[profile é]",
        "[profile ]",
        "[]",
        "kéy = v",
        "key",
        "= v",
        "[profile a]]",
    ];

    /// A file (or none): a few lines before any section, then sections of a header and lines;
    /// one line in twenty is one the SDK alone reads.
    fn file(
        headers: &'static [&'static str],
    ) -> impl proptest::strategy::Strategy<Value = Option<String>> {
        use proptest::prelude::*;
        use proptest::sample::select;
        let odd = |pool: &'static [&'static str]| prop_oneof![19 => select(pool), 1 => select(LEFT_TO_THE_SDK)];
        let section = (odd(headers), proptest::collection::vec(odd(LINES), 0..6))
            .prop_map(|(header, lines)| [vec![header], lines].concat());
        proptest::option::weighted(
            0.9,
            (
                proptest::collection::vec(select(&["# c", "", "  "][..]), 0..2),
                proptest::collection::vec(section, 0..4),
                select(&["\n", "\r\n"][..]),
            )
                .prop_map(|(before, sections, end)| [before, sections.concat()].concat().join(end)),
        )
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// Generated pairs of files: wherever this module reads them, it reads what the SDK
        /// reads.
        #[test]
        fn generated_files_read_the_same_here_as_by_the_sdk(
            config in file(CONFIG_HEADERS),
            credentials in file(CREDENTIALS_HEADERS),
        ) {
            let outcome = same_as_the_sdk(config.as_deref(), credentials.as_deref());
            if outcome == Ok(true) { eprintln!("ACCEPTED {}", config.as_deref().map_or(0, |c| c.lines().count())); } else { eprintln!("DECLINED"); }
            proptest::prop_assert!(outcome.is_ok(), "{:?}", outcome);
        }
    }
}
