//! `mfa-exec history`: the runs the history recorded (see [`crate::history`]), newest last,
//! as a table for people or one JSON array for scripts, narrowed by `--since` and `-p`.
//! Every value shown was written by mfa-exec, but names come from what users typed: the
//! table escapes them as any outside text.

use std::process::ExitCode;

use anyhow::{bail, Result};
use serde_json::{json, Map, Value};

use super::print_stdout;
use crate::clock::rfc3339;
use crate::history::read::{self, Entry};
use crate::history::{unix_ms, RequestRecord, RunRecord};
use crate::settings::env::Env;
use crate::terminal::{safe, say, warn};

pub(super) fn run(
    since: Option<&str>,
    profile: Option<&str>,
    json: bool,
    env: &Env,
) -> Result<ExitCode> {
    // Checked before anything is read, by the one rule every command uses.
    if let Some(name) = profile {
        crate::profile::check_name(name, "--profile")?;
    }
    let cutoff = since.map(since_ms).transpose()?;
    let Some(history) = env.history_kept() else {
        bail!("no home directory to find the history in: set HOME or XDG_STATE_HOME");
    };
    let read =
        read::read(&history).map_err(|why| anyhow::anyhow!("cannot read the history: {why}"))?;
    if read.damaged > 0 {
        warn(&format!(
            "skipped {} damaged line{} of {}",
            read.damaged,
            if read.damaged == 1 { "" } else { "s" },
            history.path().display()
        ));
    }
    let entries: Vec<&Entry> = read
        .entries
        .iter()
        .filter(|e| cutoff.is_none_or(|c| e.start_ms() >= c))
        .filter(|e| {
            profile.is_none_or(|p| e.run.as_ref().and_then(|r| r.profile.as_deref()) == Some(p))
        })
        .collect();
    if json {
        let array: Vec<Value> = entries.iter().map(|e| entry_json(e)).collect();
        print_stdout(&format!("{}\n", serde_json::to_string_pretty(&array)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        say(&format!(
            "no runs {}in {}",
            if since.is_some() || profile.is_some() {
                "that match "
            } else {
                ""
            },
            history.path().display()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    print_stdout(&table(&entries))?;
    Ok(ExitCode::SUCCESS)
}

/// `--since`: a duration back from now (humantime: `1h`, `2d 3h`), or an RFC 3339 time.
fn since_ms(text: &str) -> Result<u64> {
    let now = unix_ms(std::time::SystemTime::now());
    if let Ok(back) = humantime::parse_duration(text) {
        return Ok(now.saturating_sub(u64::try_from(back.as_millis()).unwrap_or(u64::MAX)));
    }
    if let Some(at) = rfc3339_ms(text) {
        return Ok(at);
    }
    bail!(
        "--since '{}' is neither a duration (1h, 30m, 2d) nor an RFC 3339 time (2026-12-07T09:00:00Z)",
        safe(text)
    )
}

/// An RFC 3339 time in Unix milliseconds. The SDK's parser takes UTC (`Z`) only; an offset
/// (`+01:00`) is taken off here first.
fn rfc3339_ms(text: &str) -> Option<u64> {
    use aws_sdk_sts::primitives::{DateTime, DateTimeFormat};
    let (utc, offset_s) = match text.len().checked_sub(6).map(|i| text.split_at(i)) {
        Some((time, offset))
            if offset.len() == 6 && matches!(&offset[..1], "+" | "-") && &offset[3..4] == ":" =>
        {
            let hours: i64 = offset[1..3].parse().ok()?;
            let minutes: i64 = offset[4..6].parse().ok()?;
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            (format!("{time}Z"), sign * (hours * 3600 + minutes * 60))
        }
        _ => (text.to_string(), 0),
    };
    let at = DateTime::from_str(&utc, DateTimeFormat::DateTime).ok()?;
    let ms = at.to_millis().ok()? - offset_s * 1000;
    u64::try_from(ms).ok()
}

/// A run as `--json` shows it: its record's fields, `start` in RFC 3339, `ended` (false for
/// requests whose run has no record yet) and its requests.
fn entry_json(entry: &Entry) -> Value {
    let mut object = match &entry.run {
        Some(run) => match serde_json::to_value(run) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        },
        None => {
            let mut map = Map::new();
            map.insert("id".into(), json!(entry.id));
            map
        }
    };
    object.insert("start".into(), json!(rfc3339(entry.start_ms() / 1000)));
    object.insert("ended".into(), json!(entry.run.is_some()));
    let requests: Vec<Value> = entry
        .requests
        .iter()
        .map(|r| {
            let mut value = serde_json::to_value(r).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut value {
                map.insert("time".into(), json!(rfc3339(r.time_ms / 1000)));
            }
            value
        })
        .collect();
    object.insert("requests".into(), Value::Array(requests));
    Value::Object(object)
}

const HEADER: [&str; 8] = [
    "TIME",
    "PROFILE",
    "ACTED AS",
    "MODE",
    "CREDENTIALS",
    "COMMAND",
    "STATUS",
    "DURATION",
];

/// The table: one row a run, its proxied requests indented below it.
fn table(entries: &[&Entry]) -> String {
    let offset = local_offset();
    let rows: Vec<[String; 8]> = entries
        .iter()
        .map(|e| match &e.run {
            Some(run) => run_row(run, offset),
            None => [
                local_time(e.start_ms(), offset),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "running or killed".into(),
                "-".into(),
            ],
        })
        .collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    push_row(&mut out, &HEADER.map(String::from), &widths);
    for (entry, row) in entries.iter().zip(&rows) {
        push_row(&mut out, row, &widths);
        for request in &entry.requests {
            out.push_str(&request_row(request, offset));
            out.push('\n');
        }
    }
    out
}

fn push_row(out: &mut String, row: &[String; 8], widths: &[usize; 8]) {
    let last = row.len() - 1;
    for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
        out.push_str(cell);
        if i < last {
            let pad = width.saturating_sub(cell.chars().count()) + 2;
            out.extend(std::iter::repeat_n(' ', pad));
        }
    }
    out.push('\n');
}

fn run_row(run: &RunRecord, offset: time::UtcOffset) -> [String; 8] {
    let status = match run.signal {
        Some(sig) => match nix::sys::signal::Signal::try_from(sig) {
            Ok(signal) => format!("{} ({})", run.status, signal.as_str()),
            Err(_) => format!("{} (signal {sig})", run.status),
        },
        None => run.status.to_string(),
    };
    [
        local_time(run.start_ms, offset),
        safe(run.profile.as_deref().unwrap_or("-")).into_owned(),
        short_arn(run.arn.as_deref().unwrap_or("-")),
        run.mode.name().into(),
        run.credentials.map_or("-", |g| g.name()).into(),
        safe(run.command.as_deref().unwrap_or("-")).into_owned(),
        status,
        duration(run.duration_ms),
    ]
}

fn request_row(request: &RequestRecord, offset: time::UtcOffset) -> String {
    let mut row = format!(
        "  {}  {} {}  {}  {} in, {} out",
        local_time(request.time_ms, offset),
        safe(&request.service),
        safe(&request.operation),
        request.status,
        bytes(request.bytes_in),
        bytes(request.bytes_out),
    );
    if let Some(why) = &request.refused {
        row.push_str(&format!("  refused: {}", safe(why)));
    }
    row
}

/// An ARN without what a reader knows: `arn:aws:iam::123456789012:role/s3-reader` is
/// `123456789012:role/s3-reader`; another partition stays (`aws-cn:123…:role/x`).
fn short_arn(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let shown = match parts[..] {
        ["arn", "aws", _service, "", account, resource] => format!("{account}:{resource}"),
        ["arn", partition, _service, "", account, resource] => {
            format!("{partition}:{account}:{resource}")
        }
        _ => arn.to_string(),
    };
    safe(&shown).into_owned()
}

/// This machine's offset from UTC now (UTC when it cannot be told).
fn local_offset() -> time::UtcOffset {
    time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC)
}

/// `2026-12-07 13:04:05` in local time.
fn local_time(ms: u64, offset: time::UtcOffset) -> String {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(i64::try_from(ms / 1000).unwrap_or(0))
    else {
        return "-".into();
    };
    let at = at.to_offset(offset);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// `850ms`, `12.3s`, `4m05s`, `2h03m`.
fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", n as f64 / 1_048_576.0),
        _ => format!("{:.1} GiB", n as f64 / 1_073_741_824.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxied_requests_are_shown_under_their_run_and_in_its_json() {
        let text = concat!(
            r#"{"type":"request","run":"7-1000","time_ms":2000,"service":"s3","operation":"PutObject","status":200,"bytes_in":1536,"bytes_out":0}"#,
            "\n",
            r#"{"type":"request","run":"7-1000","time_ms":3000,"service":"sts","operation":"GetCallerIdentity","status":403,"bytes_in":0,"bytes_out":300,"refused":"the signature does not verify"}"#,
            "\n",
            r#"{"type":"run","id":"7-1000","start_ms":1000,"profile":"prod","arn":"arn:aws:iam::123456789012:role/s3-writer","mode":"proxy","credentials":"cache","command":"aws","status":0,"duration_ms":2500}"#,
            "\n",
        );
        let read = read::parse(text.as_bytes());
        let entries: Vec<&Entry> = read.entries.iter().collect();
        let table = table(&entries);
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 4, "{table}");
        assert!(rows[1].contains("123456789012:role/s3-writer"), "{table}");
        assert!(rows[1].contains("proxy"), "{table}");
        assert!(
            rows[2].starts_with("  ") && rows[2].contains("s3 PutObject  200  1.5 KiB in, 0 B out"),
            "{table}"
        );
        assert!(
            rows[3].contains("403") && rows[3].ends_with("refused: the signature does not verify"),
            "{table}"
        );
        let json = entry_json(entries[0]);
        assert_eq!(json["mode"], "proxy");
        assert_eq!(json["ended"], true);
        assert_eq!(json["requests"][0]["operation"], "PutObject");
        assert_eq!(
            json["requests"][1]["refused"],
            "the signature does not verify"
        );
        assert_eq!(json["requests"][0]["time"], "1970-01-01T00:00:02Z");
    }

    #[test]
    fn arns_are_shortened_to_account_and_resource() {
        assert_eq!(
            short_arn("arn:aws:iam::123456789012:role/s3-reader"),
            "123456789012:role/s3-reader"
        );
        assert_eq!(
            short_arn("arn:aws-cn:iam::123456789012:mfa/alice"),
            "aws-cn:123456789012:mfa/alice"
        );
        assert_eq!(short_arn("GAHT12345678"), "GAHT12345678");
    }

    #[test]
    fn durations_and_sizes_read_as_people_say_them() {
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(12_340), "12.3s");
        assert_eq!(duration(245_000), "4m05s");
        assert_eq!(duration(7_380_000), "2h03m");
        assert_eq!(bytes(7), "7 B");
        assert_eq!(bytes(1536), "1.5 KiB");
    }

    #[test]
    fn since_takes_a_duration_or_an_rfc3339_time_and_nothing_else() {
        let now = unix_ms(std::time::SystemTime::now());
        let hour_ago = since_ms("1h").unwrap();
        assert!(now - hour_ago >= 3_600_000 && now - hour_ago < 3_660_000);
        assert_eq!(since_ms("2026-12-07T09:00:00Z").unwrap(), 1_796_634_000_000);
        assert_eq!(
            since_ms("2026-12-07T10:00:00+01:00").unwrap(),
            1_796_634_000_000
        );
        assert_eq!(
            since_ms("2026-12-07T04:30:00-04:30").unwrap(),
            1_796_634_000_000
        );
        assert!(since_ms("yesterday").is_err());
        assert!(since_ms("2026-12-07T10:00:00+xx:00").is_err());
    }
}
