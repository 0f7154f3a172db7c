// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the reconcile step needs from the kernel, and what its transaction mode adds: the
//! inverse of every operation, so that a config whose operations fail is undone as a whole.

use std::collections::{BTreeMap, BTreeSet};

use mptcp_agent_core::{Config, KernelEndpoint, KernelSnapshot, Limits, Observed, Op, OpError};

use crate::{error::Error, executor::Executor, pm, rtnl};

/// Everything the daemon's loop does with the kernel and reads from it after the start;
/// the executor in the daemon, a fake in tests.
#[allow(async_fn_in_trait)]
pub trait Kernel {
    async fn apply(&self, op: &Op) -> Result<(), OpError>;
    /// A fresh dump of the links, addresses, routes and rules.
    async fn snapshot(&self) -> Result<KernelSnapshot, Error>;
    /// A fresh endpoint dump.
    async fn endpoints(&self) -> Result<Vec<KernelEndpoint>, Error>;
    async fn limits(&self) -> Result<Limits, mptcp_genl::Error>;
    fn sysctls(&self, names: &BTreeSet<String>) -> BTreeMap<String, String>;
}

impl Kernel for Executor {
    async fn apply(&self, op: &Op) -> Result<(), OpError> {
        Executor::apply(self, op).await
    }

    async fn snapshot(&self) -> Result<KernelSnapshot, Error> {
        rtnl::dump(&self.rt).await
    }

    async fn endpoints(&self) -> Result<Vec<KernelEndpoint>, Error> {
        pm::endpoints(&self.pm).await
    }

    async fn limits(&self) -> Result<Limits, mptcp_genl::Error> {
        pm::limits(&self.pm).await
    }

    fn sysctls(&self, names: &BTreeSet<String>) -> BTreeMap<String, String> {
        pm::read_sysctls(&self.sysctl_dir, names)
    }
}

/// A borrowed kernel is a kernel (tests keep theirs to look at it afterwards).
impl<K: Kernel> Kernel for &K {
    async fn apply(&self, op: &Op) -> Result<(), OpError> {
        (**self).apply(op).await
    }

    async fn snapshot(&self) -> Result<KernelSnapshot, Error> {
        (**self).snapshot().await
    }

    async fn endpoints(&self) -> Result<Vec<KernelEndpoint>, Error> {
        (**self).endpoints().await
    }

    async fn limits(&self) -> Result<Limits, mptcp_genl::Error> {
        (**self).limits().await
    }

    fn sysctls(&self, names: &BTreeSet<String>) -> BTreeMap<String, String> {
        (**self).sysctls(names)
    }
}

/// A committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Kernel operations carried out.
    pub ops: usize,
    /// The agent had not read the kernel yet: the config takes effect at the first
    /// reconciliation.
    pub deferred: bool,
}

/// A rolled-back transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    pub op: String,
    pub error: String,
    /// Operations undone.
    pub undone: usize,
    /// Inverse operations that failed too (the kernel may differ from before).
    pub undo_errors: Vec<String>,
}

impl std::fmt::Display for RolledBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` failed: {}; {} earlier change(s) undone",
            self.op, self.error, self.undone
        )?;
        if !self.undo_errors.is_empty() {
            write!(f, "; undoing failed too: {}", self.undo_errors.join("; "))?;
        }
        Ok(())
    }
}

/// The reconcile step in transaction mode: the config to go back to and what undoes the
/// operations carried out so far.
pub(super) struct Txn {
    pub old: Config,
    /// Operations the old config wanted too (they were failing before): their failure
    /// does not count against the new config.
    pub before: BTreeSet<Op>,
    /// Inverses of the operations carried out, in order.
    pub undo: Vec<Op>,
    pub ops: usize,
}

/// The operation that restores what `op` changes, from the state before it.
pub fn inverse(op: &Op, obs: &Observed) -> Option<Op> {
    Some(match op {
        Op::SetSysctl { name, .. } => Op::SetSysctl {
            name: name.clone(),
            value: obs.sysctls.get(name)?.clone(),
        },
        Op::SetLimits(_) => Op::SetLimits(obs.limits?),
        Op::DelEndpoint(e) => {
            let mut e = e.clone();
            e.flags = e.flags.without(mptcp_agent_core::EndpointFlags::IMPLICIT);
            Op::AddEndpoint(e)
        }
        Op::SetEndpointFlags { endpoint, flags } => Op::SetEndpointFlags {
            endpoint: KernelEndpoint {
                flags: *flags,
                ..endpoint.clone()
            },
            flags: endpoint.flags,
        },
        Op::AddEndpoint(e) => Op::DelEndpoint(e.clone()),
        Op::ReaddEndpoint(e) => match obs.endpoints.as_ref().and_then(|m| m.get(&e.id)) {
            Some(old) => Op::ReaddEndpoint(old.clone()),
            None => Op::DelEndpoint(e.clone()),
        },
        // Only entries the kernel would have had to probe again anyway.
        Op::ResetNeighbours { .. } => return None,
        Op::AddRoute(r) => Op::DelRoute(r.clone()),
        Op::DelRoute(r) => Op::AddRoute(r.clone()),
        Op::AddRule(r) => Op::DelRule(r.clone()),
        Op::DelRule(r) => Op::AddRule(r.clone()),
    })
}
