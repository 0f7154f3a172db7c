// SPDX-License-Identifier: MIT OR Apache-2.0
//! The I/O-free core of mptcp-agent.
//!
//! Adapters turn what they see (rtnetlink, `mptcp_pm` events, NetworkManager over D-Bus,
//! config reloads, the results of their own ops) into [`Event`]s. [`Observed::apply`]
//! folds each event into the observed state; [`plan()`] compares it with the [`Config`]
//! and returns the [`Op`]s that bring the kernel where the config wants it, each with the
//! reason. Nothing in this crate reads a clock, a file or a socket, so every rule is
//! unit-tested without a kernel.

pub mod blackhole;
pub mod config;
pub mod event;
pub mod explain;
pub mod glob;
pub mod ids;
pub mod model;
pub mod nmconf;
pub mod op;
pub mod plan;
pub mod refusal;
pub mod state;
pub mod time;

pub use blackhole::Blackhole;
pub use config::{load as load_config, CarrierLoss, Config, ConfigError, LinkPolicy, LinkRule};
pub use event::{Event, KernelSnapshot};
pub use explain::{explain, Explanation, Fact, LinkExplanation, EXPLAIN_SCHEMA};
pub use ids::IdAllocator;
pub use model::*;
pub use op::{Op, OpError, OpErrorKind};
pub use plan::{
    assess, flags_as_asked, plan, Control, Diagnostic, LinkAssessment, Plan, RoutePath, Step, Want,
};
pub use refusal::{NmFlagsSource, Refusal};
pub use state::{NmObserved, NmPresent, Observed};
pub use time::Millis;

#[cfg(test)]
mod tests;
