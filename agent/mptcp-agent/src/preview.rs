// SPDX-License-Identifier: MIT OR Apache-2.0
//! `check-config --diff`: what applying a config would change on this device now. Reads
//! what the daemon reads at start (kernel links, addresses, routes, rules, MPTCP endpoints,
//! limits, sysctls; NetworkManager's devices and config; mptcpd), then plans the way a
//! reload does, round after round, with every operation assumed to succeed. Nothing is
//! written anywhere.

use std::{collections::BTreeSet, path::Path, time::Duration};

use mptcp_agent_core::{plan, Config, Diagnostic, Event, Millis, Observed, Step};
use mptcp_genl::PmHandle;
use tokio::{sync::mpsc, time::Instant};

use crate::{mptcpd, nm, pm, rtnl};

/// Plan rounds: policy routes and rules first, then the endpoints that need them.
const MAX_ROUNDS: usize = 6;
/// How long to wait for NetworkManager's devices.
const NM_WAIT: Duration = Duration::from_secs(5);

/// The result: steps in the order the agent would take them.
pub struct Preview {
    pub steps: Vec<Step>,
    pub diagnostics: BTreeSet<Diagnostic>,
    /// "networkmanager" or "kernel-only".
    pub mode: &'static str,
    /// Inputs that were still missing (the preview is then incomplete).
    pub missing: Vec<&'static str>,
}

/// Read this device's state as the daemon does at start.
pub async fn observe(cfg: &Config, clock: &dyn Fn() -> Millis) -> Result<Observed, String> {
    let mut obs = Observed::new();
    let pm_handle = PmHandle::connect()
        .await
        .map_err(|e| format!("the kernel's MPTCP path manager: {e}"))?;
    let caps = pm::caps_of(pm_handle.capabilities());
    obs.apply(
        &Event::Sysctls(pm::read_sysctls(Path::new(pm::SYSCTL_DIR), &caps.sysctls)),
        clock(),
    );
    obs.apply(&Event::Capabilities(caps), clock());
    if let Ok(l) = pm::limits(&pm_handle).await {
        obs.apply(&Event::Limits(l), clock());
    }
    let eps = pm::endpoints(&pm_handle).await.map_err(|e| e.to_string())?;
    obs.apply(&Event::Endpoints(eps), clock());
    let (handle, _messages) = rtnl::connect().map_err(|e| e.to_string())?;
    let snap = rtnl::dump(&handle).await.map_err(|e| e.to_string())?;
    obs.apply(&Event::KernelSnapshot(snap), clock());
    obs.apply(&Event::Mptcpd(mptcpd::find(Path::new("/proc"))), clock());

    if !cfg.networkmanager.follow {
        obs.apply(&Event::NmGone, clock());
        return Ok(obs);
    }
    let conn = match tokio::time::timeout(NM_WAIT, zbus::Connection::system()).await {
        Ok(Ok(c)) => c,
        // No bus: the daemon would run in kernel-only mode too.
        _ => {
            obs.apply(&Event::NmGone, clock());
            return Ok(obs);
        }
    };
    obs.apply(
        &Event::NmConfFiles(nm::read_conf_files(&cfg.networkmanager.conf_paths)),
        clock(),
    );
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
    let watcher = tokio::spawn(async move {
        let _ = nm::watch(conn, tx, None).await;
    });
    let deadline = Instant::now() + NM_WAIT;
    while !obs.ready() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => obs.apply(&ev, clock()),
            _ => break,
        }
    }
    // Take what is queued with the devices (IP configs come in bursts).
    while let Ok(ev) = rx.try_recv() {
        obs.apply(&ev, clock());
    }
    watcher.abort();
    Ok(obs)
}

/// What applying `cfg` would do now.
pub async fn preview(cfg: &Config) -> Result<Preview, String> {
    let start = std::time::Instant::now();
    let clock = move || Millis(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
    let mut obs = observe(cfg, &clock).await?;
    let missing = obs.waiting_for();
    let mode = match &obs.nm {
        mptcp_agent_core::NmObserved::Present(_) => "networkmanager",
        _ => "kernel-only",
    };
    let mut steps: Vec<Step> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut diagnostics = BTreeSet::new();
    for _ in 0..MAX_ROUNDS {
        let p = plan(cfg, &obs, clock());
        diagnostics.extend(p.diagnostics);
        let fresh: Vec<Step> = p
            .steps
            .into_iter()
            .filter(|s| seen.insert(s.op.clone()))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for s in fresh {
            obs.apply(
                &Event::OpDone {
                    op: s.op.clone(),
                    error: None,
                },
                clock(),
            );
            steps.push(s);
        }
    }
    Ok(Preview {
        steps,
        diagnostics,
        mode,
        missing,
    })
}
