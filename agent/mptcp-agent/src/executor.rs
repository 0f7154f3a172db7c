// SPDX-License-Identifier: MIT OR Apache-2.0
//! Carries out the core's [`Op`]s: endpoints and limits through `mptcp-genl`, routes and
//! rules through rtnetlink, sysctls through `/proc/sys`. Every op reports its own result;
//! a failure never stops the ops after it.

use std::path::PathBuf;

use mptcp_agent_core::{Op, OpError, OpErrorKind};
use mptcp_genl::{EndpointKey, Limits, PmHandle};

use crate::{pm, rtnl};

pub struct Executor {
    pub pm: PmHandle,
    pub rt: rtnl::Handle,
    pub sysctl_dir: PathBuf,
}

/// The kind of a path-manager failure, for the core's decisions.
fn genl_kind(e: &mptcp_genl::Error) -> OpErrorKind {
    use mptcp_genl::Error as E;
    match e {
        E::Kernel { .. } => OpErrorKind::Rejected,
        E::FamilyNotFound | E::Unsupported { .. } | E::NoEventsGroup => OpErrorKind::Unsupported,
        E::Timeout { .. } => OpErrorKind::Timeout,
        E::Decode(_) => OpErrorKind::Malformed,
        E::InvalidRequest(_) => OpErrorKind::Invalid,
        // Io, ConnectionClosed, EventsLost, and kinds the crate adds later.
        _ => OpErrorKind::Io,
    }
}

fn genl(e: mptcp_genl::Error) -> OpError {
    OpError::new(genl_kind(&e), e.errno(), e.to_string())
}

impl Executor {
    pub async fn apply(&self, op: &Op) -> Result<(), OpError> {
        match op {
            Op::SetSysctl { name, value } => pm::write_sysctl(&self.sysctl_dir, name, value),
            Op::SetLimits(l) => self
                .pm
                .set_limits(Limits {
                    subflows: Some(l.subflows),
                    add_addr_accepted: Some(l.add_addr_accepted),
                })
                .await
                .map_err(genl),
            Op::DelEndpoint(e) => self.pm.del_endpoint(e.id).await.map_err(genl),
            Op::SetEndpointFlags { endpoint, flags } => self
                .pm
                .set_endpoint_flags(
                    EndpointKey::Addr {
                        addr: endpoint.addr,
                        port: endpoint.port,
                    },
                    pm::flags_to(*flags),
                )
                .await
                .map_err(genl),
            Op::AddEndpoint(e) => self
                .pm
                .add_endpoint(&pm::endpoint_to(e))
                .await
                .map_err(genl),
            Op::ReaddEndpoint(e) => {
                // The delete may find it already gone; the add is what opens subflows, so
                // its failure is the one the core decides on.
                let del = self.pm.del_endpoint(e.id).await;
                match self.pm.add_endpoint(&pm::endpoint_to(e)).await {
                    Ok(()) => Ok(()),
                    Err(add) => {
                        let message = match del {
                            Ok(()) => format!("deleted, but adding again failed: {add}"),
                            Err(del) => format!("delete failed ({del}), add failed ({add})"),
                        };
                        Err(OpError::new(genl_kind(&add), add.errno(), message))
                    }
                }
            }
            Op::ResetNeighbours { ifindex, family } => {
                rtnl::reset_neighbours(&self.rt, *ifindex, *family).await
            }
            Op::AddRoute(r) => rtnl::add_route(&self.rt, r).await,
            Op::DelRoute(r) => rtnl::del_route(&self.rt, r).await,
            Op::AddRule(r) => rtnl::add_rule(&self.rt, r).await,
            Op::DelRule(r) => rtnl::del_rule(&self.rt, r).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use mptcp_genl::Cmd;

    use super::*;

    #[test]
    fn genl_failures_keep_errno_kind_and_words() {
        let e = mptcp_genl::Error::Kernel {
            command: Cmd::AddAddr,
            errno: libc::EINVAL,
            message: Some("too many addresses or duplicate one".into()),
        };
        let text = e.to_string();
        let got = genl(e);
        assert!(got.is_rejected_with(libc::EINVAL), "{got:?}");
        assert_eq!(got.message, text);
        let t = genl(mptcp_genl::Error::Timeout {
            command: Cmd::GetAddr,
            seconds: 5,
        });
        assert_eq!((t.kind, t.errno), (OpErrorKind::Timeout, None));
        let u = genl(mptcp_genl::Error::Unsupported {
            command: Cmd::SetFlags,
        });
        assert_eq!(u.kind, OpErrorKind::Unsupported);
        let io = genl(std::io::Error::from_raw_os_error(libc::ENOBUFS).into());
        assert_eq!((io.kind, io.errno), (OpErrorKind::Io, Some(libc::ENOBUFS)));
    }
}
