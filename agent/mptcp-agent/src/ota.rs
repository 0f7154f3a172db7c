// SPDX-License-Identifier: MIT OR Apache-2.0
//! The config lifecycle for OTA updates: which config is in force, never how it gets into
//! the kernel (that is the daemon's loop, the one place that executes operations).
//!
//! - **Triggers** ([`watch`]): the config file replaced (atomic rename) or rewritten in
//!   place (an inotify watch on its directory, debounced); SIGHUP and the D-Bus `Reload`
//!   method come in the daemon's loop too.
//! - **Check first** ([`store`]): ownership, permissions and size on the opened file, then
//!   the core's parser and validator (positions as line and column). A rejected file
//!   changes nothing.
//! - **One transaction**: the daemon applies a checked config as a mode of its reconcile
//!   step; when a kernel operation fails, it undoes the earlier ones and the previous
//!   config stays in force ([`Lifecycle::finished`] reports either end).
//! - **Last good**: every applied config is saved to `STATE_DIR/last-good.toml`. At start,
//!   an unusable config file means the last good one runs, or the built-in default (the
//!   shipped conf/agent.toml) when there is none; the reason is logged and shown on D-Bus.
//! - **sd_notify**: READY=1 after the first reconciliation, RELOADING=1 … READY=1 around
//!   each reload.

mod lifecycle;
mod store;
pub mod watch;

pub use lifecycle::{Checked, Lifecycle, Options, Outcome};
pub use store::{built_in, default_state_dir, digest, load, Loaded};
#[cfg(test)]
pub(crate) use store::{save_last_good, BUILT_IN, LAST_GOOD_FILE};

#[cfg(test)]
mod bad_input;
#[cfg(test)]
pub(crate) mod tests;
