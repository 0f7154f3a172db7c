// SPDX-License-Identifier: MIT OR Apache-2.0
//! Test support for meta-mptcp: throwaway network namespaces, root-test prerequisites
//! that skip loudly (or fail, where CI requires them), the NetworkManager lab
//! ([`Lab`], driving `testing/lab/lab.sh`) and an MPTCP traffic generator that works on every
//! kernel ([`traffic`], also the `mptcp-traffic` binary).

pub mod lab;
pub mod netns;
pub mod prereq;
pub mod stall;
pub mod support;
pub mod traffic;

pub use lab::{wait_for, Lab, LabOptions, Node, TrafficServer, Uplink};
