// SPDX-License-Identifier: MIT OR Apache-2.0
//! The client verbs of `mptcp-agent`: `status`, `reload`, `resync`, `monitor` talk to the
//! running agent over the system bus (`$DBUS_SYSTEM_BUS_ADDRESS` or the default socket);
//! `check-config` and `--version` work without it. Documented in docs/cli.md.
//!
//! Exit status of `status`, `reload`, `resync` and `monitor`: 0 done; 1 the agent refused
//! (config rejected, apply rolled back, resync failed); 3 the agent is not reachable (no
//! system bus, or it is not running); 4 access denied (`reload` and `resync` need root or
//! group mptcp-admin); 5 (`status` only) shown, and a configured link is refused or degraded.
//! `check-config`: 0 valid; 1 invalid (positions on stderr); 2 usage error; 3 unreadable
//! (missing, not a regular file, too large, not UTF-8); 4 unsafe ownership or permissions.
//!
//! By concern: `bus` (calls to the agent, errors to exit status; `reload`, `resync`),
//! `status`, `monitor`, `local` (`check-config`, `--version`), `text` (columns, wrapping).

mod bus;
mod local;
mod monitor;
mod status;
mod text;

pub(crate) use bus::{agent, timed, Failure};
pub use bus::{bus_failure_message, reload, resync};
pub use local::{check_config, version};
pub use monitor::monitor;
pub use status::status;
pub use text::{wrap, WIDTH};

pub const EXIT_REFUSED: u8 = 1;
pub const EXIT_UNREACHABLE: u8 = 3;
pub const EXIT_DENIED: u8 = 4;

/// Print a line; false when stdout is gone (`mptcp-agent monitor | head`), which ends
/// the output quietly instead of panicking.
pub(crate) fn say(text: &str) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .is_ok()
}

pub(crate) fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("mptcp-agent: starting the tokio runtime: {e}");
            None
        }
    }
}
