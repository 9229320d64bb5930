//! Where credentials go once obtained: the environment changes a command gets (computed once),
//! then either exec'd into, printed as shell text for eval, or served to the command from a
//! local endpoint that renews them while mfa-exec supervises it (`child`), or kept from the
//! command altogether behind a local signing `proxy`; or, for `console`,
//! a sign-in URL opened in a browser.

pub(crate) mod browser;
pub(crate) mod child;
pub(crate) mod environment;
pub(crate) mod exec;
pub(crate) mod proxy;
pub(crate) mod server;
pub(crate) mod shell;
