//! Byte-preserving edits of the AWS profile files (`~/.aws/config`, `~/.aws/credentials`).
//!
//! `device add` writes `mfa_serial` into a profile and `device remove` takes it out again;
//! `keys add --from-credentials-file` removes the long-term keys it moved to the keyring. These
//! files are hand-written by their owners (comments, ordering, alignment, CRLF from a Windows
//! editor, a file without a final newline), so an edit must touch exactly the lines it is about
//! and keep every other byte: a parse-and-reserialise round trip would not.
//!
//! Sections are found the way the AWS SDKs find them: a header is a line whose first
//! non-blank character is `[`; its name is what lies between `[` and the first `]`, trimmed, and
//! anything after the `]` (`[profile x]# comment`) is ignored. In the config file a profile is
//! `[default]` or `[profile NAME]`; `[profile default]` is accepted too and, as in the SDKs, wins
//! over `[default]` when both exist. In the credentials file a profile is `[NAME]`. A section
//! that appears twice is one profile (the SDKs merge them, later keys winning).
//!
//! Writing goes through [`files::locked::edit`]: an edit holds a lock from its read to its
//! write (two `device add`s finishing at once both keep their line), follows a dotfiles link
//! to the file it points to and replaces that one (the link stays a link), and keeps the mode,
//! owner and group; a new file is 0600 in a directory created 0700.

use std::path::Path;

use anyhow::{bail, Result};

use super::{check_name, FileKind, MAX_FILE_SIZE};
use crate::files;

/// Sets `key = value` in the profile's section, replacing the existing line when there is one,
/// appending the line at the end of the section's last property otherwise, and creating the
/// section at the end of the file when there is none (a file that does not exist yet is created
/// 0600 in a directory created 0700). Every other byte of the file is kept (comments, order,
/// spacing, CRLF, other profiles, no trailing newline). Written atomically (temp file in the same
/// directory, fsync, rename); a symlink is followed and its target replaced, keeping the
/// target's mode (see the module header).
pub(crate) fn set_key(
    path: &Path,
    kind: FileKind,
    profile: &str,
    key: &str,
    value: &str,
) -> Result<()> {
    check_name(profile, "the profile")?;
    check_key(key)?;
    if key.contains(['=', ' ', '\t', '[', '#', ';']) {
        bail!(
            "cannot write the key {key:?} into {}: not a valid key name",
            path.display()
        );
    }
    if value.contains(['\n', '\r']) {
        bail!(
            "cannot write {key} into {}: the value spans lines",
            path.display()
        );
    }
    files::locked::edit(path, MAX_FILE_SIZE, None, |bytes| {
        let existed = bytes.is_some();
        let original = text(path, bytes)?.unwrap_or_default();
        let edited = with_key_set(&original, kind, profile, key, value);
        Ok((edited != original || !existed).then(|| edited.into_bytes()))
    })
}

/// Whether [`set_key`] and [`remove_keys`] could write `path` now (see
/// [`files::locked::check_writable`]): asked before work that only the edit completes.
pub(crate) fn check_writable(path: &Path) -> Result<()> {
    files::locked::check_writable(path)
}

/// Removes the lines of these keys (and their continuation lines) from the profile's section.
/// When `drop_emptied_section` is true and the section has no property left (comments inside it
/// count as content: keep the section then), its header line goes too. Every other byte is kept;
/// atomic as above. Returns how many key lines were removed (0: file unchanged, not rewritten).
pub(crate) fn remove_keys(
    path: &Path,
    kind: FileKind,
    profile: &str,
    keys: &[&str],
    drop_emptied_section: bool,
) -> Result<usize> {
    check_name(profile, "the profile")?;
    let mut removed = 0;
    files::locked::edit(path, MAX_FILE_SIZE, None, |bytes| {
        let Some(original) = text(path, bytes)? else {
            removed = 0;
            return Ok(None);
        };
        let (edited, n) = with_keys_removed(&original, kind, profile, keys, drop_emptied_section);
        removed = n;
        Ok((n > 0).then(|| edited.into_bytes()))
    })?;
    Ok(removed)
}

/// What [`replace_access_key`] found in the profile.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Swapped {
    /// The old key was there and is replaced. `was_mode`: the file let group or others read
    /// it (this mode) and is now at most 0600, since it holds the new secret.
    Done { was_mode: Option<u32> },
    /// The new key is there already (a rotation finished by a later run).
    Already,
    /// Neither: someone changed the keys meanwhile; the file is left as it is.
    Other(Option<String>),
}

/// Replaces the profile's `aws_access_key_id` (when it is `old_id`) and
/// `aws_secret_access_key` in one edit, keeping every other byte (`keys rotate`). Checked and
/// written under the file's lock, so a key written by hand meanwhile is never overwritten.
/// A file that group or others may read (0644, say) is left at most 0600: the new secret is
/// never written where the old one was readable by others (the caller says so).
pub(crate) fn replace_access_key(
    path: &Path,
    profile: &str,
    old_id: &str,
    new_id: &str,
    new_secret: &str,
) -> Result<Swapped> {
    check_name(profile, "the profile")?;
    if [new_id, new_secret]
        .iter()
        .any(|v| v.contains(['\n', '\r']) || v.trim() != *v)
    {
        bail!("IAM answered with an access key that cannot be written into a profile file");
    }
    let kind = FileKind::Credentials;
    // The mode the edit would keep, without group and other bits when it has any.
    let was_mode = std::fs::metadata(files::locked::resolve(path)?)
        .ok()
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
        .filter(|mode| mode & 0o077 != 0);
    let private = was_mode.map(|mode| mode & !0o077);
    let mut outcome = Swapped::Other(None);
    files::locked::edit(path, MAX_FILE_SIZE, private, |bytes| {
        let original = text(path, bytes)?.unwrap_or_default();
        let now = current_value(&original, kind, profile, "aws_access_key_id");
        outcome = match now.as_deref() {
            Some(id) if id == new_id => Swapped::Already,
            Some(id) if id == old_id => Swapped::Done { was_mode },
            other => Swapped::Other(other.map(String::from)),
        };
        if !matches!(outcome, Swapped::Done { .. }) {
            return Ok(None);
        }
        let edited = with_key_set(&original, kind, profile, "aws_access_key_id", new_id);
        let edited = with_key_set(&edited, kind, profile, "aws_secret_access_key", new_secret);
        Ok(Some(edited.into_bytes()))
    })?;
    Ok(outcome)
}

/// The value of `key` in the profile as the SDKs read it (the last one wins), trimmed.
fn current_value(original: &str, kind: FileKind, profile: &str, key: &str) -> Option<String> {
    let lines = split_lines(original);
    let mut found = None;
    for section in profile_sections(&lines, kind, profile) {
        for (start, _) in key_ranges(&lines, section, key) {
            let text = lines[start].text;
            let value = text.split_once('=').map_or("", |(_, v)| v);
            found = Some(value.trim().to_string());
        }
    }
    found
}

/// A key mfa-exec writes is one of its own names; this keeps a line from being split.
fn check_key(key: &str) -> Result<()> {
    if key.trim().is_empty() || key.trim() != key || key.contains(['\n', '\r', ']', '[', '=']) {
        bail!("key {key:?} cannot be written into an AWS profile file");
    }
    Ok(())
}

/// One line of the file with its terminator (`\n`, `\r\n`, or none for a last line without one).
#[derive(Debug, Clone)]
struct Line<'a> {
    text: &'a str,
    eol: &'a str,
}

impl Line<'_> {
    fn trimmed(&self) -> &str {
        self.text.trim()
    }

    fn is_blank(&self) -> bool {
        self.trimmed().is_empty()
    }

    fn is_comment(&self) -> bool {
        self.trimmed().starts_with(['#', ';'])
    }

    fn is_indented(&self) -> bool {
        self.text.starts_with([' ', '\t'])
    }

    /// The section name of a header line (`[profile x] # c` → `profile x`).
    fn header(&self) -> Option<&str> {
        if self.is_indented() {
            return None;
        }
        let rest = self.trimmed().strip_prefix('[')?;
        let end = rest.find(']')?;
        Some(rest[..end].trim())
    }

    /// The key of a property line, as written (`Mfa_Serial = x` → `Mfa_Serial`).
    fn key(&self) -> Option<&str> {
        if self.is_indented() || self.is_blank() || self.is_comment() || self.header().is_some() {
            return None;
        }
        let (key, _) = self.text.split_once('=')?;
        Some(key.trim())
    }

    /// An indented, non-comment line after a property: a continuation of its value or one of
    /// its sub-properties (`sts =` / `  endpoint_url = …`). Either way it belongs to the key.
    fn continues(&self) -> bool {
        self.is_indented() && !self.is_blank() && !self.is_comment()
    }
}

fn split_lines(text: &str) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (line, tail) = match rest.find('\n') {
            Some(i) => (&rest[..=i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (body, eol) = if let Some(body) = line.strip_suffix("\r\n") {
            (body, "\r\n")
        } else if let Some(body) = line.strip_suffix('\n') {
            (body, "\n")
        } else {
            (line, "")
        };
        lines.push(Line { text: body, eol });
        rest = tail;
    }
    lines
}

/// Joins lines back; a line that lost its place as the last one gets the file's terminator, and
/// a file that did not end with a newline still does not.
fn join(lines: &[Line<'_>], ended_with_newline: bool, eol: &str) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        out.push_str(line.text);
        let last = i + 1 == lines.len();
        if !line.eol.is_empty() {
            out.push_str(line.eol);
        } else if !last {
            out.push_str(eol);
        }
    }
    if !ended_with_newline {
        if let Some(stripped) = out.strip_suffix("\r\n").or_else(|| out.strip_suffix('\n')) {
            out.truncate(stripped.len());
        }
    }
    out
}

/// The terminator new lines get: the file's own (CRLF when its first line has one).
fn file_eol(lines: &[Line<'_>]) -> &'static str {
    match lines.iter().find(|l| !l.eol.is_empty()) {
        Some(l) if l.eol == "\r\n" => "\r\n",
        _ => "\n",
    }
}

/// A section: the index of its header line and the end (exclusive) of its lines.
#[derive(Debug, Clone, Copy)]
struct Section {
    header: usize,
    end: usize,
}

/// The sections the SDKs would read this profile from, in file order.
fn profile_sections(lines: &[Line<'_>], kind: FileKind, profile: &str) -> Vec<Section> {
    let mut all: Vec<(usize, &str)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(name) = line.header() {
            all.push((i, name));
        }
    }
    let section = |k: usize| Section {
        header: all[k].0,
        end: all.get(k + 1).map_or(lines.len(), |(i, _)| *i),
    };
    let pick = |wanted: &dyn Fn(&str) -> bool| -> Vec<Section> {
        (0..all.len())
            .filter(|&k| wanted(all[k].1))
            .map(section)
            .collect()
    };
    match kind {
        FileKind::Credentials => pick(&|name| name == profile),
        FileKind::Config => {
            let prefixed = |name: &str| {
                name.strip_prefix("profile")
                    .filter(|rest| rest.starts_with([' ', '\t']))
                    .is_some_and(|rest| rest.trim() == profile)
            };
            let found = pick(&prefixed);
            if profile == "default" && found.is_empty() {
                pick(&|name| name == "default")
            } else {
                found
            }
        }
    }
}

/// The line ranges `[start, end)` of the properties named `key` within a section, each with
/// its continuation lines.
fn key_ranges(lines: &[Line<'_>], section: Section, key: &str) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut i = section.header + 1;
    while i < section.end {
        if lines[i].key().is_some_and(|k| k.eq_ignore_ascii_case(key)) {
            let mut end = i + 1;
            while end < section.end && lines[end].continues() {
                end += 1;
            }
            ranges.push((i, end));
            i = end;
        } else {
            i += 1;
        }
    }
    ranges
}

fn with_key_set(original: &str, kind: FileKind, profile: &str, key: &str, value: &str) -> String {
    let lines = split_lines(original);
    let eol = file_eol(&lines);
    let ended_with_newline = original.is_empty() || original.ends_with('\n');
    let new_line = format!("{key} = {value}");
    let sections = profile_sections(&lines, kind, profile);

    // The SDKs merge a repeated section with later keys winning: replace the key wherever it
    // is, so no stale copy of it survives the merge.
    let mut replaced: Vec<(usize, usize, String)> = Vec::new();
    for section in &sections {
        for (start, end) in key_ranges(&lines, *section, key) {
            let text = lines[start].text;
            let eq = text.find('=').unwrap_or(text.len());
            let after = &text[eq + 1..];
            let spacing = &after[..after.len() - after.trim_start().len()];
            replaced.push((start, end, format!("{}{spacing}{value}", &text[..=eq])));
        }
    }
    let mut owned: Vec<(String, String)>;
    if !replaced.is_empty() {
        owned = Vec::with_capacity(lines.len());
        let mut i = 0;
        while i < lines.len() {
            if let Some((_, end, text)) = replaced.iter().find(|(s, _, _)| *s == i) {
                // The replaced line keeps its own terminator (the last continuation line's).
                owned.push((text.clone(), lines[end - 1].eol.to_string()));
                i = *end;
            } else {
                owned.push((lines[i].text.to_string(), lines[i].eol.to_string()));
                i += 1;
            }
        }
    } else {
        owned = lines
            .iter()
            .map(|l| (l.text.to_string(), l.eol.to_string()))
            .collect();
        match sections.last() {
            Some(section) => {
                // After the section's last property (and its continuation lines), or right
                // after the header when it has none: comments and blank lines that close the
                // section stay where they are.
                let mut at = section.header + 1;
                for (i, line) in lines.iter().enumerate().take(section.end).skip(at) {
                    if line.key().is_some() || (line.continues() && at == i) {
                        at = i + 1;
                    }
                }
                owned.insert(at, (new_line, eol.to_string()));
            }
            None => {
                owned.push((format!("[{}]", kind.section(profile)), eol.to_string()));
                owned.push((new_line, eol.to_string()));
            }
        }
    }
    let view: Vec<Line<'_>> = owned
        .iter()
        .map(|(t, e)| Line { text: t, eol: e })
        .collect();
    join(&view, ended_with_newline, eol)
}

fn with_keys_removed(
    original: &str,
    kind: FileKind,
    profile: &str,
    keys: &[&str],
    drop_emptied_section: bool,
) -> (String, usize) {
    let lines = split_lines(original);
    let eol = file_eol(&lines);
    let ended_with_newline = original.is_empty() || original.ends_with('\n');
    let sections = profile_sections(&lines, kind, profile);
    let mut gone = vec![false; lines.len()];
    let mut removed = 0;
    for section in &sections {
        for key in keys {
            for (start, end) in key_ranges(&lines, *section, key) {
                gone[start..end].fill(true);
                removed += 1;
            }
        }
    }
    if removed == 0 {
        return (original.to_string(), 0);
    }
    if drop_emptied_section {
        for section in &sections {
            let body = section.header + 1..section.end;
            let empty = body.clone().all(|i| gone[i] || lines[i].is_blank());
            let touched = body.clone().any(|i| gone[i]);
            if empty && touched {
                // The header and the blank lines that were the rest of the section.
                gone[section.header..section.end].fill(true);
            }
        }
    }
    let kept: Vec<Line<'_>> = lines
        .iter()
        .zip(&gone)
        .filter(|(_, g)| !**g)
        .map(|(l, _)| l.clone())
        .collect();
    (join(&kept, ended_with_newline, eol), removed)
}

/// The file's text; it must be UTF-8 to be edited byte for byte.
fn text(path: &Path, bytes: Option<Vec<u8>>) -> Result<Option<String>> {
    bytes
        .map(|b| {
            String::from_utf8(b).map_err(|_| {
                anyhow::anyhow!("{} is not UTF-8 text; not editing it", path.display())
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    const CONFIG: &str = "# my AWS config
[default]
region = eu-west-1   ; home

[profile alice]# work account
  # indented comment
output=json
s3 =
  max_concurrent_requests = 20

# between sections
[profile bob]
mfa_serial = arn:aws:iam::111111111111:mfa/bob
region = us-east-1
";

    fn set(text: &str, kind: FileKind, profile: &str, key: &str, value: &str) -> String {
        with_key_set(text, kind, profile, key, value)
    }

    fn remove(
        text: &str,
        kind: FileKind,
        profile: &str,
        keys: &[&str],
        drop: bool,
    ) -> (String, usize) {
        with_keys_removed(text, kind, profile, keys, drop)
    }

    #[test]
    fn setting_a_key_in_an_existing_section_adds_one_line_after_its_last_property() {
        let out = set(
            CONFIG,
            FileKind::Config,
            "alice",
            "mfa_serial",
            "arn:aws:iam::1:mfa/a",
        );
        let expected = CONFIG.replace(
            "  max_concurrent_requests = 20\n",
            "  max_concurrent_requests = 20\nmfa_serial = arn:aws:iam::1:mfa/a\n",
        );
        assert_eq!(out, expected);
        let (back, n) = remove(&out, FileKind::Config, "alice", &["mfa_serial"], true);
        assert_eq!(n, 1);
        assert_eq!(
            back, CONFIG,
            "set then remove restores the file byte for byte"
        );
    }

    #[test]
    fn a_created_section_round_trips_byte_for_byte() {
        for original in [
            CONFIG,
            "",
            "[default]\nregion = x",
            "[default]\r\nregion = x\r\n",
        ] {
            let out = set(original, FileKind::Config, "carol", "mfa_serial", "arn:x");
            assert!(out.contains("[profile carol]"), "{out:?}");
            assert_eq!(out.matches("mfa_serial = arn:x").count(), 1);
            let (back, n) = remove(&out, FileKind::Config, "carol", &["mfa_serial"], true);
            assert_eq!(n, 1);
            assert_eq!(back, original);
        }
        assert_eq!(
            set("", FileKind::Credentials, "k", "aws_access_key_id", "AKIA"),
            "[k]\naws_access_key_id = AKIA\n"
        );
        assert_eq!(
            set("", FileKind::Config, "default", "region", "r"),
            "[default]\nregion = r\n"
        );
    }

    #[test]
    fn other_profiles_with_the_same_key_are_untouched() {
        let out = set(CONFIG, FileKind::Config, "bob", "mfa_serial", "arn:new");
        assert_eq!(
            out,
            CONFIG.replace(
                "mfa_serial = arn:aws:iam::111111111111:mfa/bob",
                "mfa_serial = arn:new"
            )
        );
        let (out, n) = remove(CONFIG, FileKind::Config, "alice", &["mfa_serial"], true);
        assert_eq!((out.as_str(), n), (CONFIG, 0));
        let (out, n) = remove(CONFIG, FileKind::Config, "bob", &["MFA_SERIAL"], true);
        assert_eq!(n, 1);
        assert_eq!(
            out,
            CONFIG.replace("mfa_serial = arn:aws:iam::111111111111:mfa/bob\n", "")
        );
    }

    #[test]
    fn crlf_indentation_and_a_missing_final_newline_are_kept() {
        let text = "[profile a]\r\n  # note\r\n    region = x\r\nx = 1";
        let out = set(text, FileKind::Config, "a", "mfa_serial", "s");
        assert_eq!(
            out,
            "[profile a]\r\n  # note\r\n    region = x\r\nx = 1\r\nmfa_serial = s"
        );
        assert_eq!(
            remove(&out, FileKind::Config, "a", &["mfa_serial"], true).0,
            text
        );
        // Replacing keeps the spacing the owner chose.
        let out = set(
            "[p]\nkey   =old ; c\n",
            FileKind::Credentials,
            "p",
            "key",
            "new",
        );
        assert_eq!(out, "[p]\nkey   =new\n");
        let out = set(
            "[p]\r\nkey=old\r\n",
            FileKind::Credentials,
            "p",
            "key",
            "new",
        );
        assert_eq!(out, "[p]\r\nkey=new\r\n");
    }

    #[test]
    fn headers_are_recognised_as_the_sdks_do() {
        // `[profile x]# comment`, `[ profile   x ] ; c`, a tab after `profile`.
        for header in ["[profile x]# c", "[ profile   x ] ; c", "[profile\tx]"] {
            let text = format!("[profile y]\na = 1\n{header}\nb = 2\n");
            let out = set(&text, FileKind::Config, "x", "k", "v");
            assert_eq!(
                out,
                format!("[profile y]\na = 1\n{header}\nb = 2\nk = v\n"),
                "{header}"
            );
        }
        // `[x]` is not a config-file profile, `[profile x]` is not a credentials-file one.
        let out = set("[x]\na = 1\n", FileKind::Config, "x", "k", "v");
        assert_eq!(out, "[x]\na = 1\n[profile x]\nk = v\n");
        let out = set("[profile x]\na = 1\n", FileKind::Credentials, "x", "k", "v");
        assert_eq!(out, "[profile x]\na = 1\n[x]\nk = v\n");
        // `[profile default]` wins over `[default]`.
        let out = set(
            "[default]\na=1\n[profile default]\nb=2\n",
            FileKind::Config,
            "default",
            "k",
            "v",
        );
        assert_eq!(out, "[default]\na=1\n[profile default]\nb=2\nk = v\n");
    }

    #[test]
    fn removal_takes_continuation_lines_and_keeps_commented_sections() {
        let text =
            "[a]\naws_access_key_id = AKIA\naws_secret_access_key = s\n  continued\n[b]\nx = 1\n";
        let keys = ["aws_access_key_id", "aws_secret_access_key"];
        let (out, n) = remove(text, FileKind::Credentials, "a", &keys, true);
        assert_eq!((out.as_str(), n), ("[b]\nx = 1\n", 2));
        let (out, _) = remove(text, FileKind::Credentials, "a", &keys, false);
        assert_eq!(out, "[a]\n[b]\nx = 1\n");
        let text = "[a]\n# keep me\naws_access_key_id = AKIA\n\n[b]\n";
        let (out, n) = remove(text, FileKind::Credentials, "a", &keys, true);
        assert_eq!((out.as_str(), n), ("[a]\n# keep me\n\n[b]\n", 1));
        // A section emptied down to blank lines goes with them.
        let text = "[a]\naws_access_key_id = AKIA\n\n[b]\n";
        assert_eq!(
            remove(text, FileKind::Credentials, "a", &keys, true).0,
            "[b]\n"
        );
    }

    #[test]
    fn a_repeated_section_is_one_profile() {
        let text = "[profile a]\nmfa_serial = old\n[profile b]\n[profile a]\nmfa_serial = older\n";
        let out = set(text, FileKind::Config, "a", "mfa_serial", "new");
        assert_eq!(
            out,
            "[profile a]\nmfa_serial = new\n[profile b]\n[profile a]\nmfa_serial = new\n"
        );
        let (out, n) = remove(&out, FileKind::Config, "a", &["mfa_serial"], true);
        assert_eq!((out.as_str(), n), ("[profile b]\n", 2));
    }

    #[test]
    fn bad_names_and_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        assert!(set_key(&path, FileKind::Config, "a]b", "k", "v").is_err());
        assert!(set_key(&path, FileKind::Config, "a", "k = x", "v").is_err());
        assert!(set_key(&path, FileKind::Config, "a", "k", "v\n[profile evil]").is_err());
        assert!(!path.exists(), "nothing written for refused input");
    }

    #[test]
    fn a_rotated_key_replaces_both_values_in_place_and_only_the_expected_old_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        let text = "[bob]\r\naws_access_key_id = AKIABOB\r\n\r\n[alice]\r\n\
                    aws_access_key_id=AKIAOLD\r\n# note\r\naws_secret_access_key   =   old/secret\r\n\
                    output = json";
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let swap = |old: &str| replace_access_key(&path, "alice", old, "AKIANEW", "new+secret");
        // Another key than the one expected: the file is left alone.
        assert_eq!(
            swap("AKIAOTHER").unwrap(),
            Swapped::Other(Some("AKIAOLD".into()))
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        assert_eq!(swap("AKIAOLD").unwrap(), Swapped::Done { was_mode: None });
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            text.replace("AKIAOLD", "AKIANEW")
                .replace("old/secret", "new+secret")
        );
        // Done already (a rotation finished by a later run): nothing to write.
        assert_eq!(swap("AKIAOLD").unwrap(), Swapped::Already);
        // A file others could read: the new secret leaves it 0600 (setuid-like bits kept).
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            replace_access_key(&path, "alice", "AKIANEW", "AKIANEWER", "s2").unwrap(),
            Swapped::Done {
                was_mode: Some(0o644)
            }
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        assert_eq!(
            replace_access_key(&path, "carol", "AKIAOLD", "AKIANEW", "s").unwrap(),
            Swapped::Other(None)
        );
        assert!(replace_access_key(&path, "alice", "AKIANEW", "AKIAX", "two\nlines").is_err());
    }

    #[test]
    fn files_are_written_atomically_keeping_mode_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let aws = dir.path().join("new/.aws");
        let path = aws.join("config");
        set_key(&path, FileKind::Config, "a", "mfa_serial", "arn:x").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&aws), 0o700);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "[profile a]\nmfa_serial = arn:x\n"
        );

        // An existing file keeps its mode; a symlink stays a link to the edited target.
        let real = dir.path().join("dotfiles-config");
        fs::write(&real, "[profile a]\nregion = x\n").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        set_key(&link, FileKind::Config, "a", "mfa_serial", "arn:y").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            fs::read_to_string(&real).unwrap(),
            "[profile a]\nregion = x\nmfa_serial = arn:y\n"
        );
        assert_eq!(mode(&real), 0o640);
        assert_eq!(
            remove_keys(&link, FileKind::Config, "a", &["mfa_serial"], true).unwrap(),
            1
        );
        assert_eq!(
            fs::read_to_string(&real).unwrap(),
            "[profile a]\nregion = x\n"
        );
        // Nothing to remove: the file is not rewritten, a missing file is not created.
        assert_eq!(
            remove_keys(&link, FileKind::Config, "a", &["mfa_serial"], true).unwrap(),
            0
        );
        let missing = dir.path().join("missing");
        assert_eq!(
            remove_keys(&missing, FileKind::Config, "a", &["x"], true).unwrap(),
            0
        );
        assert!(!missing.exists());
        let leftovers = fs::read_dir(dir.path()).unwrap().filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")
        });
        assert_eq!(leftovers.count(), 0);
    }
}
