// SPDX-License-Identifier: MIT OR Apache-2.0
//! What this kernel's `mptcp_pm` family offers, from the nlctrl CTRL_CMD_GETFAMILY reply
//! plus the `net.mptcp.*` sysctls present.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::Path,
};

use netlink_attr::Attrs;
use netlink_packet_generic::constants::{
    CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_ATTR_HDRSIZE, CTRL_ATTR_MAXATTR,
    CTRL_ATTR_MCAST_GROUPS, CTRL_ATTR_MCAST_GRP_ID, CTRL_ATTR_MCAST_GRP_NAME, CTRL_ATTR_OPS,
    CTRL_ATTR_OP_FLAGS, CTRL_ATTR_OP_ID, CTRL_ATTR_VERSION,
};

use crate::{uapi::*, Cmd, Error, Result};

/// Kernel generations as far as the path-manager API is concerned. Derived from the
/// commands, groups and sysctls the kernel offers, not from its version string, so a 5.10
/// BSP kernel with the 5.15 MPTCP backport is classified by what it can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KernelGeneration {
    /// 5.6–5.11 (the stock 5.10 BSP): endpoints and limits only. No SET_FLAGS, no
    /// `mptcp_pm_events` group; the only sysctl is `net.mptcp.enabled` (5.11 adds
    /// `add_addr_timeout`). Backup can only be changed by deleting and re-adding the endpoint.
    Mainline510,
    /// 5.12–5.18, or 5.10 with our 5.15 backport: SET_FLAGS and the events group, but no
    /// userspace path-manager commands and no `pm_type` sysctl.
    Events512,
    /// 5.19 and later (6.x): also the userspace PM commands ANNOUNCE / REMOVE /
    /// SUBFLOW_CREATE / SUBFLOW_DESTROY and the `pm_type` sysctl.
    UserspacePm519,
}

impl fmt::Display for KernelGeneration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KernelGeneration::Mainline510 => "5.10 (endpoints and limits only)",
            KernelGeneration::Events512 => "5.12-5.18 or 5.10+backport (set_flags, events)",
            KernelGeneration::UserspacePm519 => "5.19+ (set_flags, events, userspace PM)",
        })
    }
}

/// The capabilities of the `mptcp_pm` family in one network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Dynamic generic netlink family id.
    pub family_id: u16,
    /// Family version (`MPTCP_PM_VER`, 1 on every kernel so far).
    pub version: u32,
    /// User header size (0 for mptcp_pm).
    pub hdr_size: u32,
    /// Highest top-level attribute number the family accepts.
    pub max_attr: u32,
    /// Command number → `GENL_*` op flags (admin perm, do, dump) for every op offered.
    pub ops: BTreeMap<u32, u32>,
    /// Multicast group name → group id.
    pub mcast_groups: BTreeMap<String, u32>,
    /// Names of the files under `/proc/sys/net/mptcp` (e.g. `enabled`, `pm_type`).
    pub sysctls: BTreeSet<String>,
}

impl Capabilities {
    /// Whether the family offers this command.
    pub fn supports(&self, cmd: Cmd) -> bool {
        self.ops.contains_key(&u32::from(cmd.number()))
    }

    /// The offered commands (unknown numbers as [`Cmd::Other`]).
    pub fn commands(&self) -> Vec<Cmd> {
        self.ops
            .keys()
            .filter_map(|n| u8::try_from(*n).ok())
            .map(Cmd::from_number)
            .collect()
    }

    /// Whether the command needs CAP_NET_ADMIN (in the namespace's user namespace or the
    /// initial one). `None` when the command is not offered.
    pub fn needs_admin(&self, cmd: Cmd) -> Option<bool> {
        self.ops
            .get(&u32::from(cmd.number()))
            .map(|f| f & (GENL_ADMIN_PERM | GENL_UNS_ADMIN_PERM) != 0)
    }

    /// Id of the `mptcp_pm_events` multicast group (5.12+).
    pub fn events_group(&self) -> Option<u32> {
        self.mcast_groups.get(MPTCP_PM_EV_GRP_NAME).copied()
    }

    /// Whether path-manager events can be subscribed to.
    pub fn has_events(&self) -> bool {
        self.events_group().is_some()
    }

    /// Whether `/proc/sys/net/mptcp/NAME` exists.
    pub fn has_sysctl(&self, name: &str) -> bool {
        self.sysctls.contains(name)
    }

    /// Classify the kernel; see [`KernelGeneration`].
    pub fn generation(&self) -> KernelGeneration {
        let userspace_pm = [
            Cmd::Announce,
            Cmd::Remove,
            Cmd::SubflowCreate,
            Cmd::SubflowDestroy,
        ]
        .iter()
        .all(|c| self.supports(*c));
        if userspace_pm {
            KernelGeneration::UserspacePm519
        } else if self.supports(Cmd::SetFlags) && self.has_events() {
            KernelGeneration::Events512
        } else {
            KernelGeneration::Mainline510
        }
    }

    /// Parse the attributes of a CTRL_CMD_GETFAMILY reply. `sysctls` is filled separately.
    pub(crate) fn decode_family(buf: &[u8]) -> Result<Capabilities> {
        let mut name = None;
        let mut family_id = None;
        let mut caps = Capabilities {
            family_id: 0,
            version: 0,
            hdr_size: 0,
            max_attr: 0,
            ops: BTreeMap::new(),
            mcast_groups: BTreeMap::new(),
            sysctls: BTreeSet::new(),
        };
        for a in Attrs::new(buf, "GETFAMILY reply") {
            let a = a?;
            match a.kind {
                CTRL_ATTR_FAMILY_ID => family_id = Some(a.u16()?),
                CTRL_ATTR_FAMILY_NAME => name = Some(a.c_string()?),
                CTRL_ATTR_VERSION => caps.version = a.u32()?,
                CTRL_ATTR_HDRSIZE => caps.hdr_size = a.u32()?,
                CTRL_ATTR_MAXATTR => caps.max_attr = a.u32()?,
                CTRL_ATTR_OPS => {
                    for op in Attrs::new(a.value, "family ops") {
                        let (mut id, mut flags) = (None, 0);
                        for oa in Attrs::new(op?.value, "family op") {
                            let oa = oa?;
                            match oa.kind {
                                CTRL_ATTR_OP_ID => id = Some(oa.u32()?),
                                CTRL_ATTR_OP_FLAGS => flags = oa.u32()?,
                                _ => {}
                            }
                        }
                        let id = id.ok_or_else(|| Error::decode("family op without id"))?;
                        caps.ops.insert(id, flags);
                    }
                }
                CTRL_ATTR_MCAST_GROUPS => {
                    for grp in Attrs::new(a.value, "family mcast groups") {
                        let (mut gname, mut gid) = (None, None);
                        for ga in Attrs::new(grp?.value, "family mcast group") {
                            let ga = ga?;
                            match ga.kind {
                                CTRL_ATTR_MCAST_GRP_NAME => gname = Some(ga.c_string()?),
                                CTRL_ATTR_MCAST_GRP_ID => gid = Some(ga.u32()?),
                                _ => {}
                            }
                        }
                        match (gname, gid) {
                            (Some(n), Some(i)) => {
                                caps.mcast_groups.insert(n, i);
                            }
                            _ => return Err(Error::decode("multicast group without name or id")),
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(n) = name {
            if n != MPTCP_PM_NAME {
                return Err(Error::decode(format!(
                    "GETFAMILY answered for family {n:?}"
                )));
            }
        }
        caps.family_id =
            family_id.ok_or_else(|| Error::decode("GETFAMILY reply without family id"))?;
        Ok(caps)
    }
}

/// Names of the `net.mptcp.*` sysctls of the calling thread's network namespace.
pub(crate) fn read_sysctl_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}
