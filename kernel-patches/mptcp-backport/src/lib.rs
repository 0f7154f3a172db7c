// SPDX-License-Identifier: MIT OR Apache-2.0
//! Carry the Linux 5.15 MPTCP stack onto 5.10 BSP kernels: plan the commit series from a
//! linux-stable clone, export it as full patches with provenance, apply it to a BSP tree
//! with conflict analysis, and verify the result (features, kernel config, compile).
//!
//! Upstream kernel code is never part of this crate: patch bodies come from the user's clone.

pub mod apply;
#[cfg(feature = "bench")]
pub mod bench;
pub mod error;
pub mod export;
pub mod git;
pub mod history;
pub mod manifest;
pub mod plan;
pub mod probe;
pub mod sha256;
#[cfg(feature = "bench")]
pub mod synth;
pub mod transplant;
pub mod verify;

pub use error::{Error, Result};
