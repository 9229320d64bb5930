//! Reading the history back for `mfa-exec history`: every line parsed on its own, so a line
//! cut short (a full disk) or damaged costs that line only, and the runs with their proxied
//! requests grouped under them, oldest first. Only the `history` command reads; a run never
//! does.

use std::collections::HashMap;

use super::{History, Line, RequestRecord, RunRecord};

/// A run and the requests the proxy handled for it. `run` is None for requests whose run has
/// no record: it is still running, or was killed before it could write one.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) id: String,
    pub(crate) run: Option<RunRecord>,
    pub(crate) requests: Vec<RequestRecord>,
}

impl Entry {
    /// When it started: the run's start, else its first request.
    pub(crate) fn start_ms(&self) -> u64 {
        self.run.as_ref().map_or_else(
            || self.requests.first().map_or(0, |r| r.time_ms),
            |r| r.start_ms,
        )
    }
}

/// What the history holds, oldest first, and how many lines could not be read.
pub(crate) struct Read {
    pub(crate) entries: Vec<Entry>,
    pub(crate) damaged: usize,
}

/// The whole history (it is bounded); an absent one is empty. Err: why it cannot be read.
pub(crate) fn read(history: &History) -> Result<Read, String> {
    // Twice the bound: a file found larger than that was not made by mfa-exec's appends.
    let max = history.max.saturating_mul(2).max(1 << 20);
    let bytes = match crate::files::read_private(&history.path(), max) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => Vec::new(),
        Err(why) => return Err(why),
    };
    Ok(parse(&bytes))
}

pub(crate) fn parse(bytes: &[u8]) -> Read {
    let mut entries: Vec<Entry> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut damaged = 0;
    for line in bytes.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (id, run, request) = match serde_json::from_slice::<Line>(line) {
            Ok(Line::Run(run)) => (run.id.clone(), Some(run), None),
            Ok(Line::Request(request)) => (request.run.clone(), None, Some(request)),
            Ok(Line::Unknown) => continue,
            Err(_) => {
                damaged += 1;
                continue;
            }
        };
        let at = *by_id.entry(id.clone()).or_insert_with(|| {
            entries.push(Entry {
                id,
                run: None,
                requests: Vec::new(),
            });
            entries.len() - 1
        });
        let entry = &mut entries[at];
        if let Some(run) = run {
            entry.run = Some(run);
        }
        entry.requests.extend(request);
    }
    // A run's line is written when it ends, after its requests and after runs that started
    // later and ended sooner: ordered by start, as a user reads them.
    entries.sort_by_key(Entry::start_ms);
    Read { entries, damaged }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_ordered_by_start_with_their_requests_and_damaged_lines_are_counted() {
        let text = concat!(
            r#"{"type":"request","run":"2-200","time_ms":210,"service":"sts","operation":"GetCallerIdentity","status":200,"bytes_in":0,"bytes_out":400}"#,
            "\n",
            r#"{"type":"run","id":"1-100","start_ms":100,"profile":"a","arn":null,"mode":"exec","credentials":"cache","command":"true","status":0,"duration_ms":5}"#,
            "\n",
            "{\"type\":\"run\",\"id\":\"cut sh\n",
            r#"{"type":"from-a-later-version"}"#,
            "\n",
            r#"{"type":"run","id":"2-200","start_ms":200,"profile":"b","arn":"arn:aws:iam::1:role/r","mode":"proxy","credentials":"code","command":"aws","status":7,"duration_ms":50}"#,
            "\n",
            r#"{"type":"request","run":"3-300","time_ms":310,"service":"s3","operation":"PutObject","status":200,"bytes_in":5,"bytes_out":0}"#,
            "\n",
        );
        let read = parse(text.as_bytes());
        assert_eq!(read.damaged, 1);
        let ids: Vec<&str> = read.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1-100", "2-200", "3-300"]);
        assert_eq!(read.entries[1].requests.len(), 1);
        assert_eq!(read.entries[1].run.as_ref().unwrap().status, 7);
        // Still running, or killed: its requests without a run.
        assert!(read.entries[2].run.is_none());
        assert_eq!(read.entries[2].start_ms(), 310);
    }
}
