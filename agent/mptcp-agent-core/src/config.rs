// SPDX-License-Identifier: MIT OR Apache-2.0
//! The agent's configuration: TOML text → [`RawConfig`] (the TOML tree read against the
//! schema: unknown keys and wrong types refused, every value with its position) →
//! [`validate`] → [`Config`] (plain, checked values that `plan()` uses). Both steps report
//! every problem they find, as line and column, so an OTA hook can show exactly what is
//! wrong.

/// The `schema_version` this agent reads.
pub const SCHEMA_VERSION: i64 = 1;

/// Where NetworkManager reads its configuration, in its load order (later files win).
/// Directories contribute their `*.conf` files sorted by name.
pub const DEFAULT_NM_CONF_PATHS: [&str; 5] = [
    "/usr/lib/NetworkManager/conf.d",
    "/run/NetworkManager/conf.d",
    "/etc/NetworkManager/NetworkManager.conf",
    "/etc/NetworkManager/conf.d",
    "/var/lib/NetworkManager/NetworkManager-intern.conf",
];

mod checked;
mod issue;
mod parse;
mod raw;
mod validate;

pub use checked::*;
pub use issue::{position, ConfigError, Issue};
pub use parse::{load, parse, parse_all};
pub use raw::*;
pub use validate::{sysctl_since, validate, SysctlKind, SYSCTLS};

#[cfg(test)]
mod tests;
