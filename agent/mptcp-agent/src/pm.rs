// SPDX-License-Identifier: MIT OR Apache-2.0
//! `mptcp_pm` adapter: kernel capabilities, endpoints, limits and events from the
//! `mptcp-genl` crate, and the `net.mptcp.*` sysctls, as core types and [`Event`]s.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use futures::StreamExt;
use mptcp_agent_core::{
    EndpointFlags, Event, KernelCaps, KernelEndpoint, Limits, MptcpEvent, MptcpEventKind, OpError,
    OpErrorKind,
};
use mptcp_genl::{Capabilities, Cmd, EventKind, PmEvent, PmHandle};
use tokio::sync::mpsc::Sender;

use crate::error::{Context, Result};

pub const SYSCTL_DIR: &str = "/proc/sys/net/mptcp";

/// What the core needs to know about the kernel. Fullmesh came with 5.15 (together with
/// the events group and, in 5.14, `checksum_enabled`); there is no direct probe for a flag
/// bit, so it is inferred from those.
pub fn caps_of(c: &Capabilities) -> KernelCaps {
    KernelCaps {
        set_flags: c.supports(Cmd::SetFlags),
        events: c.has_events(),
        fullmesh: c.has_events() && c.has_sysctl("checksum_enabled"),
        ids_run_out: c.generation() == mptcp_genl::KernelGeneration::Mainline510,
        // Probed separately (a round trip in a namespace of its own): see `probe_laminar`.
        laminar: false,
        laminar_probe: "not probed".to_string(),
        sysctls: c.sysctls.clone(),
        description: c.generation().to_string(),
    }
}

/// Whether the kernel knows the laminar endpoint flag (Linux 6.18), and how that was found.
pub async fn probe_laminar() -> mptcp_genl::FlagProbe {
    let probe = || mptcp_genl::probe_endpoint_flag(mptcp_genl::EndpointFlags::LAMINAR, (6, 18));
    match tokio::task::spawn_blocking(probe).await {
        Ok(p) => p,
        Err(e) => mptcp_genl::FlagProbe::ByVersion {
            why: format!("probe task failed: {e}"),
            release: String::new(),
            known: None,
        },
    }
}

/// The core's endpoint flags carry the kernel's bit values (`MPTCP_PM_ADDR_FLAG_*`), as
/// `mptcp-genl`'s do: the two convert bit for bit, here only.
pub fn flags_of(f: mptcp_genl::EndpointFlags) -> EndpointFlags {
    EndpointFlags(f.bits())
}

pub fn flags_to(f: EndpointFlags) -> mptcp_genl::EndpointFlags {
    mptcp_genl::EndpointFlags::from_bits_retain(f.0)
}

pub fn endpoint_of(e: &mptcp_genl::Endpoint) -> KernelEndpoint {
    KernelEndpoint {
        id: e.id,
        addr: e.addr,
        port: e.port,
        flags: flags_of(e.flags),
        ifindex: e.ifindex,
    }
}

pub fn endpoint_to(e: &KernelEndpoint) -> mptcp_genl::Endpoint {
    let mut ep = mptcp_genl::Endpoint::new(e.addr, flags_to(e.flags));
    ep.id = e.id;
    ep.port = e.port;
    ep.ifindex = e.ifindex;
    ep
}

pub fn event_of(e: &PmEvent) -> MptcpEvent {
    MptcpEvent {
        kind: match e.kind {
            EventKind::Created => MptcpEventKind::Created,
            EventKind::Established => MptcpEventKind::Established,
            EventKind::Closed => MptcpEventKind::Closed,
            EventKind::SubEstablished => MptcpEventKind::SubflowEstablished,
            EventKind::SubClosed => MptcpEventKind::SubflowClosed,
            EventKind::SubPriority => MptcpEventKind::SubflowPriority,
            _ => MptcpEventKind::Other,
        },
        token: e.token,
        saddr: e.saddr,
        daddr: e.daddr,
        sport: e.sport,
        dport: e.dport,
        loc_id: e.loc_id,
        ifindex: e.ifindex,
        error: e.error.map(u32::from),
        backup: e.backup,
    }
}

pub async fn endpoints(pm: &PmHandle) -> Result<Vec<KernelEndpoint>> {
    Ok(pm
        .endpoints()
        .await
        .context("dumping MPTCP endpoints")?
        .iter()
        .map(endpoint_of)
        .collect())
}

/// The MPTCP limits; a limit the kernel leaves out is 0.
pub async fn limits(pm: &PmHandle) -> Result<Limits, mptcp_genl::Error> {
    let l = pm.limits().await?;
    Ok(Limits {
        subflows: l.subflows.unwrap_or(0),
        add_addr_accepted: l.add_addr_accepted.unwrap_or(0),
    })
}

/// Forward path-manager events until the socket fails. Lost events (ENOBUFS) cannot be
/// recovered; a fresh endpoint dump keeps at least the endpoint view right.
pub async fn forward_events<T: From<Event>>(pm: PmHandle, tx: Sender<T>) -> Result<()> {
    let mut stream = pm
        .subscribe_events()
        .context("subscribing to mptcp_pm_events")?;
    if let Err(e) = stream.set_receive_buffer(1 << 20) {
        log::debug!("mptcp_pm_events: could not enlarge the receive buffer: {e}");
    }
    while let Some(item) = stream.next().await {
        match item {
            Ok(ev) => {
                log::debug!("mptcp event: {ev}");
                if tx.send(Event::Mptcp(event_of(&ev)).into()).await.is_err() {
                    return Ok(());
                }
            }
            Err(mptcp_genl::Error::EventsLost) => {
                log::warn!("mptcp_pm_events: the kernel dropped events (receive buffer full); re-reading endpoints");
                if let Ok(eps) = endpoints(&pm).await {
                    if tx.send(Event::Endpoints(eps).into()).await.is_err() {
                        return Ok(());
                    }
                }
            }
            Err(e) => return Err(e).context("reading mptcp_pm_events"),
        }
    }
    Ok(())
}

/// Current values of the named sysctls (those that can be read).
pub fn read_sysctls(dir: &Path, names: &BTreeSet<String>) -> BTreeMap<String, String> {
    names
        .iter()
        .filter_map(|n| {
            let v = std::fs::read_to_string(dir.join(n)).ok()?;
            Some((n.clone(), v.trim().to_string()))
        })
        .collect()
}

/// Write one sysctl; the name was validated by the config and checked against the kernel.
/// A missing file is a setting this kernel lacks; any other OS error is the kernel's
/// answer to the value.
pub fn write_sysctl(dir: &Path, name: &str, value: &str) -> Result<(), OpError> {
    if name.contains('/') || name.starts_with('.') {
        return Err(OpError::new(
            OpErrorKind::Invalid,
            None,
            format!("refusing sysctl name {name:?}"),
        ));
    }
    std::fs::write(dir.join(name), format!("{value}\n")).map_err(|e| {
        let errno = e.raw_os_error();
        let kind = match errno {
            Some(libc::ENOENT) => OpErrorKind::Unsupported,
            Some(_) => OpErrorKind::Rejected,
            None => OpErrorKind::Io,
        };
        OpError::new(
            kind,
            errno,
            format!("writing {}/{name}: {e}", dir.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_conversion_roundtrip() {
        let k = KernelEndpoint {
            id: 7,
            addr: "10.2.0.2".parse().unwrap(),
            port: None,
            flags: EndpointFlags::SUBFLOW.union(EndpointFlags::BACKUP),
            ifindex: Some(3),
        };
        assert_eq!(endpoint_of(&endpoint_to(&k)), k);
    }

    #[test]
    fn core_and_genl_flags_are_the_same_bits() {
        use mptcp_genl::EndpointFlags as G;
        for (core, genl) in [
            (EndpointFlags::SIGNAL, G::SIGNAL),
            (EndpointFlags::SUBFLOW, G::SUBFLOW),
            (EndpointFlags::BACKUP, G::BACKUP),
            (EndpointFlags::FULLMESH, G::FULLMESH),
            (EndpointFlags::IMPLICIT, G::IMPLICIT),
            (EndpointFlags::LAMINAR, G::LAMINAR),
        ] {
            assert_eq!(flags_to(core), genl, "{core}");
            assert_eq!(flags_of(genl), core, "{core}");
        }
    }

    #[test]
    fn event_conversion_keeps_what_the_core_uses() {
        let mut e = PmEvent::new(EventKind::SubClosed);
        e.token = Some(9);
        e.saddr = Some("10.2.0.2".parse().unwrap());
        e.error = Some(104);
        let m = event_of(&e);
        assert_eq!(m.kind, MptcpEventKind::SubflowClosed);
        assert_eq!(m.error, Some(104));
        assert_eq!(m.token, Some(9));
        assert_eq!(
            event_of(&PmEvent::new(EventKind::Announced)).kind,
            MptcpEventKind::Other
        );
    }

    #[test]
    fn sysctls_read_and_write() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("enabled"), "1\n").unwrap();
        let names: BTreeSet<String> = ["enabled".to_string(), "missing".to_string()].into();
        let got = read_sysctls(dir.path(), &names);
        assert_eq!(got.get("enabled").map(String::as_str), Some("1"));
        assert!(!got.contains_key("missing"));
        write_sysctl(dir.path(), "enabled", "0").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("enabled")).unwrap(),
            "0\n"
        );
        let refused = write_sysctl(dir.path(), "../x", "1").unwrap_err();
        assert_eq!((refused.kind, refused.errno), (OpErrorKind::Invalid, None));
        // /proc/sys has no file for a setting the kernel lacks; here the whole dir is absent.
        let missing = write_sysctl(&dir.path().join("absent"), "enabled", "1").unwrap_err();
        assert_eq!(
            (missing.kind, missing.errno),
            (OpErrorKind::Unsupported, Some(libc::ENOENT))
        );
        assert!(missing.message.starts_with("writing "), "{missing}");
    }
}
