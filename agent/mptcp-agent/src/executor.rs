// SPDX-License-Identifier: MIT OR Apache-2.0
//! Carries out the core's [`Op`]s: endpoints and limits through `mptcp-genl`, routes and
//! rules through rtnetlink, sysctls through `/proc/sys`. Every op reports its own result;
//! a failure never stops the ops after it.

use std::path::PathBuf;

use mptcp_agent_core::Op;
use mptcp_genl::{EndpointKey, Limits, PmHandle};

use crate::{pm, rtnl};

pub struct Executor {
    pub pm: PmHandle,
    pub rt: rtnetlink::Handle,
    pub sysctl_dir: PathBuf,
}

fn genl(e: mptcp_genl::Error) -> String {
    e.to_string()
}

impl Executor {
    pub async fn apply(&self, op: &Op) -> Result<(), String> {
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
                    mptcp_genl::EndpointFlags::from_bits_retain(flags.0),
                )
                .await
                .map_err(genl),
            Op::AddEndpoint(e) => self
                .pm
                .add_endpoint(&pm::endpoint_to(e))
                .await
                .map_err(genl),
            Op::ReaddEndpoint(e) => {
                // The delete may find it already gone; the add is what opens subflows.
                let del = self.pm.del_endpoint(e.id).await;
                match self.pm.add_endpoint(&pm::endpoint_to(e)).await {
                    Ok(()) => Ok(()),
                    Err(add) => Err(match del {
                        Ok(()) => format!("deleted, but adding again failed: {add}"),
                        Err(del) => format!("delete failed ({del}), add failed ({add})"),
                    }),
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
