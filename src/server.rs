//! Placeholder until issue 5.
use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::cache::Cache;
use crate::settings::Settings;

pub(crate) fn run(
    _settings: &Settings,
    _cache: Option<&Cache>,
    _argv: &[OsString],
) -> Result<ExitCode> {
    bail!("--server is not available yet")
}
