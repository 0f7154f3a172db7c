// SPDX-License-Identifier: MIT OR Apache-2.0
//! Test support for meta-mptcp: throwaway network namespaces, root-test prerequisites
//! that skip loudly (or fail, where CI requires them), and the NetworkManager lab.

pub mod netns;
pub mod prereq;
