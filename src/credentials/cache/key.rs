//! Which file an entry lives in, and what `cache list` calls it.
//!
//! Two runs may share credentials only when everything STS would be asked is the same: the
//! source's access key id, the MFA device, the role, its external id, a configured session
//! name, the duration. The caller names those parts; here they are hashed into the file name,
//! so that a directory listing (a backup, `ls` over someone's shoulder) shows which kind of
//! entry a file is and nothing of the account, user or role behind it. The hash is also what
//! keeps entries made by an older mfa-exec usable after an upgrade, so it must not change.
//! What a person reads — the profile, its source, the role — is a separate label, stored
//! inside the private file.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    /// GetSessionToken with MFA.
    Session,
    /// AssumeRole (from an MFA session, or directly with a code).
    Role,
}

impl Kind {
    /// The word in file names and in `cache list` (and, by serde, in the entry's JSON).
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::Role => "role",
        }
    }
}

/// Which entry, and what `cache list` shows of it.
pub(crate) struct EntryKey {
    /// `KIND-HASH`: the entry is `STEM.json`, its lock `STEM.lock`.
    pub(super) file_stem: String,
    pub(super) kind: Kind,
    pub(super) profile: String,
    pub(super) source_profile: Option<String>,
    pub(super) role_arn: Option<String>,
    pub(super) scope: Option<String>,
}

/// How `cache list` names an entry: the profile it is for (for an MFA session, the source
/// profile whose user it belongs to), that profile's source, and the role.
pub(crate) struct Label {
    pub(crate) profile: String,
    pub(crate) source_profile: Option<String>,
    pub(crate) role_arn: Option<String>,
    /// A role session's session policies and tags (`read-only; tags team=x`), when it has any.
    pub(crate) scope: Option<String>,
}

impl EntryKey {
    /// The entry for what `parts` says decides the credentials (hashed: the file name shows
    /// nothing of them), shown in `cache list` as `label`.
    pub(crate) fn new(kind: Kind, label: Label, parts: &[&str]) -> EntryKey {
        EntryKey::new_sharing(kind, label, parts, None)
    }

    /// [`EntryKey::new`], for one of many keys made in a row (`list`'s) with `first`: hashing
    /// on from the last key's first block when this one starts with the same.
    pub(crate) fn new_sharing(
        kind: Kind,
        label: Label,
        parts: &[&str],
        first: Option<&mut FirstBlock>,
    ) -> EntryKey {
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        let mut message = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        for p in parts {
            message.extend_from_slice(p.as_bytes());
            message.push(0);
        }
        let hasher = match first {
            Some(first) => first.hash(&message),
            None => Sha256::new_with_prefix(&message),
        };
        // `KIND-` and the first 16 bytes of the digest in hex, written directly: `list` makes
        // a key for each of thousands of profiles.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut file_stem = String::with_capacity(kind.name().len() + 33);
        file_stem.push_str(kind.name());
        file_stem.push('-');
        for b in &hasher.finalize()[..16] {
            file_stem.push(char::from(HEX[usize::from(b >> 4)]));
            file_stem.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        EntryKey {
            file_stem,
            kind,
            profile: label.profile,
            source_profile: label.source_profile,
            role_arn: label.role_arn,
            scope: label.scope,
        }
    }

    /// The entry's file name in the cache directory.
    pub(super) fn entry_file(&self) -> String {
        format!("{}.json", self.file_stem)
    }

    /// The name of the file whose `flock` serialises the entry's miss path.
    pub(super) fn lock_file(&self) -> String {
        format!("{}.lock", self.file_stem)
    }
}

/// SHA-256's state after the first 64-byte block of the last key made with it. The role keys
/// of one source share that block (`role`, the source's key id, the MFA serial, the start of an
/// ARN), and `list` makes one for each of thousands of profiles: starting from the kept state
/// saves one of each key's two compressions. The digest is the same either way (the state after
/// a block depends on that block alone). A single run makes its key or two without it.
#[derive(Default)]
pub(crate) struct FirstBlock(Option<([u8; 64], Sha256)>);

impl FirstBlock {
    /// SHA-256 of `message`, its first block taken from the last call's when the two share it.
    fn hash(&mut self, message: &[u8]) -> Sha256 {
        let Some((block, rest)) = message.split_first_chunk::<64>() else {
            return Sha256::new_with_prefix(message);
        };
        let mut hasher = match &self.0 {
            Some((seen, after)) if seen == block => after.clone(),
            _ => {
                let after = Sha256::new_with_prefix(block);
                self.0 = Some((*block, after.clone()));
                after
            }
        };
        hasher.update(rest);
        hasher
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
    const ALICE_MFA: &str = "arn:aws:iam::123456789012:mfa/alice";
    const ADMIN_ROLE: &str = "arn:aws:iam::210987654321:role/admin";

    fn label(profile: &str) -> Label {
        Label {
            profile: profile.into(),
            source_profile: None,
            role_arn: None,
            scope: None,
        }
    }

    fn session(parts: &[&str]) -> EntryKey {
        EntryKey::new(Kind::Session, label("alice"), parts)
    }

    #[test]
    fn a_first_block_shared_with_the_last_key_hashes_as_a_fresh_hash_would() {
        let fresh = |m: &[u8]| Sha256::digest(m).to_vec();
        let mut first = FirstBlock::default();
        let mut shared = |m: &[u8]| first.hash(m).finalize().to_vec();
        let a = [[b'a'; 64].as_slice(), b"one role"].concat();
        let b = [
            [b'a'; 64].as_slice(),
            b"another role, longer than a block: ".as_slice(),
            &[b'x'; 70],
        ]
        .concat();
        let c = [[b'c'; 64].as_slice(), b"one role"].concat();
        for m in [
            &a,
            &b,
            &a,
            &c,
            &b,
            &a[..64].to_vec(),
            &a[..10].to_vec(),
            &Vec::new(),
        ] {
            assert_eq!(shared(m), fresh(m), "{} bytes", m.len());
        }
    }

    #[test]
    fn the_same_request_finds_the_same_file_in_every_run_and_every_version() {
        let parts = ["session", ALICE_KEY_ID, ALICE_MFA, "43200"];
        assert_eq!(session(&parts).file_stem, session(&parts).file_stem);
        // Pinned: a different hash would orphan every entry users already have, and make the
        // next run of each ask for a code.
        assert_eq!(
            session(&parts).entry_file(),
            "session-fc79226851ee39dc190569ceedf92c85.json"
        );
    }

    #[test]
    fn anything_sts_would_be_asked_differently_is_another_entry() {
        let base = ["role", ALICE_KEY_ID, ALICE_MFA, ADMIN_ROLE, "", "", ""];
        let stem = |parts: &[&str]| EntryKey::new(Kind::Role, label("admin"), parts).file_stem;
        let variants: [[&str; 7]; 6] = [
            ["role", "AKIAOTHERKEY", ALICE_MFA, ADMIN_ROLE, "", "", ""],
            [
                "role",
                ALICE_KEY_ID,
                "arn:aws:iam::123456789012:mfa/bob",
                ADMIN_ROLE,
                "",
                "",
                "",
            ],
            [
                "role",
                ALICE_KEY_ID,
                ALICE_MFA,
                "arn:aws:iam::210987654321:role/ro",
                "",
                "",
                "",
            ],
            [
                "role",
                ALICE_KEY_ID,
                ALICE_MFA,
                ADMIN_ROLE,
                "ext-42",
                "",
                "",
            ],
            [
                "role",
                ALICE_KEY_ID,
                ALICE_MFA,
                ADMIN_ROLE,
                "",
                "alice-laptop",
                "",
            ],
            ["role", ALICE_KEY_ID, ALICE_MFA, ADMIN_ROLE, "", "", "900"],
        ];
        let mut seen = vec![stem(&base)];
        for parts in &variants {
            let s = stem(parts);
            assert!(
                !seen.contains(&s),
                "{parts:?} shares a file with another request"
            );
            seen.push(s);
        }
    }

    #[test]
    fn where_one_part_ends_and_the_next_begins_matters() {
        assert_ne!(
            session(&["ab", "c"]).file_stem,
            session(&["a", "bc"]).file_stem
        );
        assert_ne!(session(&["a", ""]).file_stem, session(&["a"]).file_stem);
    }

    #[test]
    fn the_label_is_for_people_only_two_profiles_asking_the_same_share_credentials() {
        let parts = ["session", ALICE_KEY_ID, ALICE_MFA, "43200"];
        let from_alice = EntryKey::new(Kind::Session, label("alice"), &parts);
        let from_work = EntryKey::new(Kind::Session, label("work"), &parts);
        assert_eq!(from_alice.file_stem, from_work.file_stem);
        assert_eq!(from_work.profile, "work");
    }

    #[test]
    fn a_file_name_says_the_kind_and_nothing_of_the_account_user_or_role() {
        let key = EntryKey::new(
            Kind::Role,
            Label {
                profile: "prod-admin".into(),
                source_profile: Some("alice".into()),
                role_arn: Some(ADMIN_ROLE.into()),
                scope: None,
            },
            &[
                "role",
                ALICE_KEY_ID,
                ALICE_MFA,
                ADMIN_ROLE,
                "ext-42",
                "",
                "",
            ],
        );
        let name = key.entry_file();
        let hash = name
            .strip_prefix("role-")
            .and_then(|n| n.strip_suffix(".json"))
            .unwrap_or_else(|| panic!("{name}"));
        assert_eq!(hash.len(), 32);
        assert!(hash
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        for revealing in [
            "AKIA",
            "123456789012",
            "210987654321",
            "alice",
            "admin",
            "ext-42",
        ] {
            assert!(!name.contains(revealing), "{name} shows {revealing}");
        }
        assert_eq!(key.lock_file(), name.replace(".json", ".lock"));
    }

    #[test]
    fn sessions_and_roles_never_share_a_file_even_from_the_same_parts() {
        let parts = ["x"];
        let session = EntryKey::new(Kind::Session, label("p"), &parts);
        let role = EntryKey::new(Kind::Role, label("p"), &parts);
        assert!(session.entry_file().starts_with("session-"));
        assert!(role.entry_file().starts_with("role-"));
        assert_ne!(session.entry_file(), role.entry_file());
    }
}
