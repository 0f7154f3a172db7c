// SPDX-License-Identifier: MIT OR Apache-2.0
//! The agent's own D-Bus API on the system bus: `io.github.meta_mptcp.Agent1` at
//! `/io/github/meta_mptcp/Agent1`. Read-only properties mirror what the daemon sees and
//! does (links, endpoints, limits, kernel capabilities, config); `Reload` and `Resync`
//! ask the daemon loop to act; signals report endpoint changes, subflow events and
//! config outcomes. docs/dbus-api.md describes every member; conf/dbus/ holds the
//! introspection XML and the bus policy.
//!
//! The daemon loop never waits for D-Bus: it publishes a [`Snapshot`] through a watch
//! channel and the publisher task turns differences into PropertiesChanged and
//! EndpointChanged signals.

mod snapshot;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use mptcp_agent_core::{MptcpEvent, MptcpEventKind};
use tokio::sync::{mpsc, oneshot, watch};
use zbus::{
    fdo::{DBusProxy, RequestNameFlags, RequestNameReply},
    interface,
    message::Header,
    object_server::SignalContext,
    Connection, DBusError,
};

pub use snapshot::*;

pub const BUS_NAME: &str = "io.github.meta_mptcp.Agent1";
pub const OBJECT_PATH: &str = "/io/github/meta_mptcp/Agent1";
pub const INTERFACE: &str = "io.github.meta_mptcp.Agent1";
/// Members of this group may call the mutating methods, like root.
pub const ADMIN_GROUP: &str = "mptcp-admin";

// ---------------------------------------------------------------------------------------
// Errors

/// Errors of the Agent1 methods, as D-Bus error names `io.github.meta_mptcp.Agent1.Error.*`.
#[derive(Debug, DBusError)]
#[zbus(prefix = "io.github.meta_mptcp.Agent1.Error")]
pub enum AgentError {
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The caller is neither root nor a member of group mptcp-admin.
    AccessDenied(String),
    /// The config file was not accepted (unreadable, unsafe ownership or permissions, or
    /// invalid: the message names line and column). The running config stays.
    ConfigRejected(String),
    /// A kernel operation failed while applying the new config; every change made for it
    /// was undone and the previous config stays.
    ApplyFailed(String),
    /// Reading the kernel state again failed.
    ResyncFailed(String),
    /// The daemon is shutting down.
    Unavailable(String),
}

// ---------------------------------------------------------------------------------------
// Daemon ↔ service

/// What a D-Bus caller asks the daemon loop to do. The reply carries the outcome.
pub enum Request {
    /// Re-read, check and apply the config file; replies with the digest in force.
    Reload(oneshot::Sender<Result<String, AgentError>>),
    /// Re-read the kernel state, retry failed operations now, reconcile; replies with a
    /// one-line summary.
    Resync(oneshot::Sender<Result<String, AgentError>>),
    /// Explain every link (or the one named; "" = all); replies with the JSON of
    /// [`mptcp_agent_core::Explanation`].
    Explain(String, oneshot::Sender<Result<String, AgentError>>),
}

/// Config outcomes the daemon reports as signals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Applied {
        path: String,
        digest: String,
        source: String,
    },
    Rejected {
        path: String,
        stage: String,
        reason: String,
    },
}

/// Subflow events waiting for their signal; beyond this they are dropped (as the kernel
/// drops events a slow reader does not take).
const SUBFLOW_QUEUE: usize = 256;

/// The daemon's end: publish snapshots, notices and subflow events, receive requests.
pub struct ServiceHandle {
    snapshot: watch::Sender<Snapshot>,
    notices: mpsc::UnboundedSender<Notice>,
    subflows: mpsc::Sender<MptcpEvent>,
    requests: Option<mpsc::Receiver<Request>>,
}

impl ServiceHandle {
    pub fn publish(&self, snap: Snapshot) {
        self.snapshot.send_if_modified(|cur| {
            if *cur == snap {
                false
            } else {
                *cur = snap;
                true
            }
        });
    }

    pub fn notice(&self, n: Notice) {
        let _ = self.notices.send(n);
    }

    /// A subflow event from the daemon's event stream, for the `SubflowEvent` signal.
    pub fn subflow(&self, ev: &MptcpEvent) {
        if subflow_kind(ev.kind).is_some() {
            let _ = self.subflows.try_send(ev.clone());
        }
    }

    /// The D-Bus methods' requests, for the daemon's channel (the first call takes them).
    pub fn take_requests(&mut self) -> Option<mpsc::Receiver<Request>> {
        self.requests.take()
    }
}

/// The `kind` of a `SubflowEvent` signal; `None` for events that are not about a subflow.
fn subflow_kind(kind: MptcpEventKind) -> Option<&'static str> {
    match kind {
        MptcpEventKind::SubflowEstablished => Some("sf_established"),
        MptcpEventKind::SubflowClosed => Some("sf_closed"),
        MptcpEventKind::SubflowPriority => Some("sf_priority"),
        MptcpEventKind::Created
        | MptcpEventKind::Established
        | MptcpEventKind::Closed
        | MptcpEventKind::Other => None,
    }
}

// ---------------------------------------------------------------------------------------
// The interface

pub struct Agent1 {
    snap: Arc<Mutex<Snapshot>>,
    requests: mpsc::Sender<Request>,
    admin_group: String,
}

impl Agent1 {
    fn with<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T {
        match self.snap.lock() {
            Ok(s) => f(&s),
            Err(p) => f(&p.into_inner()),
        }
    }

    async fn authorize(&self, conn: &Connection, hdr: &Header<'_>) -> Result<(), AgentError> {
        let sender = hdr
            .sender()
            .ok_or_else(|| AgentError::AccessDenied("the call has no sender".into()))?;
        let dbus = DBusProxy::new(conn).await?;
        let uid = dbus
            .get_connection_unix_user(sender.clone().into())
            .await
            .map_err(|e| AgentError::AccessDenied(format!("cannot tell who {sender} is: {e}")))?;
        if is_admin(uid, &self.admin_group) {
            Ok(())
        } else {
            Err(AgentError::AccessDenied(format!(
                "uid {uid} is neither root nor a member of group {}",
                self.admin_group
            )))
        }
    }

    async fn ask(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<String, AgentError>>) -> Request,
    ) -> Result<String, AgentError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(make(tx))
            .await
            .map_err(|_| AgentError::Unavailable("the agent is shutting down".into()))?;
        rx.await
            .map_err(|_| AgentError::Unavailable("the agent is shutting down".into()))?
    }
}

/// root, or a member (primary or supplementary) of `group` in the user database.
pub fn is_admin(uid: u32, group: &str) -> bool {
    if uid == 0 {
        return true;
    }
    let Ok(Some(g)) = nix::unistd::Group::from_name(group) else {
        return false;
    };
    let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
        return false;
    };
    if user.gid == g.gid || g.mem.contains(&user.name) {
        return true;
    }
    let Ok(name) = std::ffi::CString::new(user.name) else {
        return false;
    };
    nix::unistd::getgrouplist(&name, user.gid).is_ok_and(|gs| gs.contains(&g.gid))
}

/// MPTCP connection state on the device, as the agent sees and manages it. Properties are
/// readable by everyone; Reload and Resync need root or group mptcp-admin.
#[interface(
    name = "io.github.meta_mptcp.Agent1",
    proxy(
        default_service = "io.github.meta_mptcp.Agent1",
        default_path = "/io/github/meta_mptcp/Agent1",
        gen_blocking = false
    )
)]
impl Agent1 {
    /// Re-read the config file, check it and apply it as one transaction. Returns the
    /// digest of the config in force.
    async fn reload(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, AgentError> {
        self.authorize(conn, &hdr).await?;
        self.ask(Request::Reload).await
    }

    /// Re-read links, addresses, routes, rules, endpoints, limits and sysctls from the
    /// kernel (and NetworkManager's devices), retry failed operations now and reconcile.
    /// Returns a one-line summary.
    async fn resync(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, AgentError> {
        self.authorize(conn, &hdr).await?;
        self.ask(Request::Resync).await
    }

    /// Why each link (or only `interface`; "" = every link) has or lacks its endpoints and
    /// the one thing to change, as JSON (the layout of `mptcp-agent explain --json`,
    /// docs/cli.md). Read-only: everyone may call it.
    async fn explain(&self, interface: String) -> Result<String, AgentError> {
        self.ask(|reply| Request::Explain(interface, reply)).await
    }

    /// An endpoint appeared ("added"), went away ("removed") or changed flags ("changed").
    #[zbus(signal)]
    async fn endpoint_changed(
        ctxt: &SignalContext<'_>,
        change: &str,
        endpoint: EndpointInfo,
    ) -> zbus::Result<()>;

    /// A subflow event from the kernel's path manager: kind is "sf_established",
    /// "sf_closed" or "sf_priority"; error is the subflow's sk_err (0 = none).
    #[zbus(signal)]
    #[allow(clippy::too_many_arguments)]
    async fn subflow_event(
        ctxt: &SignalContext<'_>,
        kind: &str,
        token: u32,
        local_address: &str,
        local_port: u16,
        remote_address: &str,
        remote_port: u16,
        ifindex: u32,
        error: u32,
        backup: bool,
    ) -> zbus::Result<()>;

    /// The kernel's MPTCP blackhole detection fired (its counter rose): new outgoing MPTCP
    /// connections are plain TCP for timeout_s seconds (net.mptcp.blackhole_timeout) or
    /// longer. count is the kernel's counter, detections those since the agent started.
    #[zbus(signal)]
    async fn blackhole_detected(
        ctxt: &SignalContext<'_>,
        count: u64,
        detections: u64,
        timeout_s: i64,
    ) -> zbus::Result<()>;

    /// A config was refused: stage "check" (unreadable, unsafe permissions, invalid) or
    /// "apply" (a kernel operation failed and everything was rolled back).
    #[zbus(signal)]
    async fn config_rejected(
        ctxt: &SignalContext<'_>,
        path: &str,
        stage: &str,
        reason: &str,
    ) -> zbus::Result<()>;

    /// A config was applied; source is "file", "last-good" or "built-in".
    #[zbus(signal)]
    async fn config_applied(
        ctxt: &SignalContext<'_>,
        path: &str,
        digest: &str,
        source: &str,
    ) -> zbus::Result<()>;

    /// Version of the running agent.
    #[zbus(property(emits_changed_signal = "const"))]
    async fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }

    /// The first reconciliation is done.
    #[zbus(property)]
    async fn ready(&self) -> bool {
        self.with(|s| s.ready)
    }

    /// "networkmanager", "kernel-only" or "starting".
    #[zbus(property)]
    async fn mode(&self) -> String {
        self.with(|s| s.mode.clone())
    }

    /// Every interface but loopback: (name, ifindex, state, carrier, device_type, metered,
    /// rule, policy, policy_applied, nm_state, detail). See docs/dbus-api.md.
    #[zbus(property)]
    async fn links(&self) -> Vec<LinkInfo> {
        self.with(|s| s.links.clone())
    }

    /// Links left alone because someone else manages MPTCP there: (interface, kind,
    /// advice). See docs/dbus-api.md.
    #[zbus(property)]
    async fn refusals(&self) -> Vec<RefusalInfo> {
        self.with(|s| s.refusals.clone())
    }

    /// The kernel's MPTCP endpoints: (id, address, port, flags, interface, ifindex).
    #[zbus(property)]
    async fn endpoints(&self) -> Vec<EndpointInfo> {
        self.with(|s| s.endpoints.clone())
    }

    /// The kernel's path-manager limits: (subflows, add_addr_accepted).
    #[zbus(property)]
    async fn limits(&self) -> LimitsInfo {
        self.with(|s| s.limits)
    }

    /// What this kernel's MPTCP offers: (generation, set_flags, events, fullmesh, sysctls).
    #[zbus(property)]
    async fn kernel_capabilities(&self) -> KernelCapsInfo {
        self.with(|s| s.caps.clone())
    }

    /// The kernel's MPTCP blackhole detection: available, count, detections since the
    /// agent started, when last seen, net.mptcp.blackhole_timeout, whether MPTCP is off now.
    #[zbus(property)]
    async fn blackhole(&self) -> BlackholeInfo {
        self.with(|s| s.blackhole.clone())
    }

    /// Warnings in force (coexistence, missing kernel features, unroutable uplinks).
    #[zbus(property)]
    async fn diagnostics(&self) -> Vec<String> {
        self.with(|s| s.diagnostics.clone())
    }

    /// Per link: (name, state, endpoint_flags, endpoints, subflows_up, readds,
    /// backoff_episodes, withdrawals, last_change). See docs/metrics.md.
    #[zbus(property)]
    async fn link_counters(&self) -> Vec<LinkCountersInfo> {
        self.with(|s| s.link_counters.clone())
    }

    /// The kernel's MPTcpExt counters of the agent's network namespace, by name, as read on
    /// the metrics interval; names this kernel lacks are absent.
    #[zbus(property)]
    async fn kernel_counters(&self) -> std::collections::HashMap<String, u64> {
        self.with(|s| s.kernel_counters.clone().into_iter().collect())
    }

    /// The config file the agent reads.
    #[zbus(property)]
    async fn config_path(&self) -> String {
        self.with(|s| s.config.path.clone())
    }

    /// The config schema_version this agent reads.
    #[zbus(property)]
    async fn config_schema_version(&self) -> u32 {
        self.with(|s| s.config.schema_version)
    }

    /// "fnv1a64:" and 16 hex digits of the running config's text: tells which file is in force.
    #[zbus(property)]
    async fn config_digest(&self) -> String {
        self.with(|s| s.config.digest.clone())
    }

    /// "file", "last-good" or "built-in".
    #[zbus(property)]
    async fn config_source(&self) -> String {
        self.with(|s| s.config.source.name().to_string())
    }

    /// The config file does not exist now (then `ConfigSource` says what runs instead:
    /// the last good config or the built-in default).
    #[zbus(property)]
    async fn config_file_missing(&self) -> bool {
        let path = self.with(|s| s.config.path.clone());
        // Typed: only "not found" counts; an unreadable file is not missing.
        matches!(
            std::fs::symlink_metadata(&path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound
        )
    }

    /// The config file was rejected and the last good (or built-in) config runs instead.
    #[zbus(property)]
    async fn last_known_good_in_use(&self) -> bool {
        self.with(|s| s.config.source != ConfigSource::File)
    }

    /// Why the last config was rejected; "" after a successful apply.
    #[zbus(property)]
    async fn config_last_error(&self) -> String {
        self.with(|s| s.config.last_error.clone())
    }

    /// When the running config was applied, in microseconds since the Unix epoch.
    #[zbus(property)]
    async fn config_applied_at(&self) -> u64 {
        self.with(|s| s.config.applied_at)
    }
}

/// Bound on connecting to the system bus at start.
const BUS_TIMEOUT: Duration = Duration::from_secs(5);

/// Serve the interface on the system bus (`$DBUS_SYSTEM_BUS_ADDRESS` or the default
/// socket) and own the well-known name. The returned handle is the daemon's end.
pub async fn start(initial: Snapshot) -> zbus::Result<ServiceHandle> {
    let conn = Connection::system().await?;
    serve(conn, initial, ADMIN_GROUP).await
}

/// [`start`], or `None` with the reason logged: without a system bus the agent runs
/// without its D-Bus API.
pub async fn start_or_none(initial: Snapshot) -> Option<ServiceHandle> {
    match tokio::time::timeout(BUS_TIMEOUT, start(initial)).await {
        Ok(Ok(s)) => {
            log::info!("D-Bus: serving {BUS_NAME} on the system bus");
            Some(s)
        }
        Ok(Err(e)) => {
            log::warn!(
                "D-Bus: not serving {BUS_NAME} ({e}); status and reload over D-Bus unavailable"
            );
            None
        }
        Err(_) => {
            log::warn!(
                "D-Bus: the system bus did not answer within {}s; running without the D-Bus API",
                BUS_TIMEOUT.as_secs()
            );
            None
        }
    }
}

/// Serve on an existing connection (tests use private buses).
pub async fn serve(
    conn: Connection,
    initial: Snapshot,
    admin_group: &str,
) -> zbus::Result<ServiceHandle> {
    let snap = Arc::new(Mutex::new(initial.clone()));
    let (req_tx, req_rx) = mpsc::channel(16);
    let iface = Agent1 {
        snap: snap.clone(),
        requests: req_tx,
        admin_group: admin_group.to_string(),
    };
    conn.object_server().at(OBJECT_PATH, iface).await?;
    own_name(&conn).await?;
    let (snap_tx, snap_rx) = watch::channel(initial);
    let (notice_tx, notice_rx) = mpsc::unbounded_channel();
    let (subflow_tx, subflow_rx) = mpsc::channel(SUBFLOW_QUEUE);
    tokio::spawn(publisher(conn.clone(), snap, snap_rx, notice_rx));
    tokio::spawn(subflow_signals(conn, subflow_rx));
    Ok(ServiceHandle {
        snapshot: snap_tx,
        notices: notice_tx,
        subflows: subflow_tx,
        requests: Some(req_rx),
    })
}

/// How long a name held by someone else is asked for again: dbus-daemon frees a dead
/// predecessor's name only once it reads the hangup, which a restart right after a crash or
/// SIGKILL can beat by a few milliseconds.
const NAME_WAIT: Duration = Duration::from_secs(2);

/// Own [`BUS_NAME`], waiting up to [`NAME_WAIT`] for a previous owner's name to be freed.
async fn own_name(conn: &Connection) -> zbus::Result<()> {
    let end = tokio::time::Instant::now() + NAME_WAIT;
    loop {
        // zbus reports the bus's EXISTS reply as `Error::NameTaken`.
        let held = match conn
            .request_name_with_flags(BUS_NAME, RequestNameFlags::DoNotQueue.into())
            .await
        {
            Ok(RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner) => return Ok(()),
            Ok(other) => format!("{other:?}"),
            Err(zbus::Error::NameTaken) => "Exists".to_string(),
            Err(e) => return Err(e),
        };
        if tokio::time::Instant::now() >= end {
            return Err(zbus::Error::Failure(format!(
                "{BUS_NAME} is owned by another process ({held} for {} s); is another mptcp-agent running?",
                NAME_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Turn snapshot changes into PropertiesChanged and EndpointChanged, notices into signals.
async fn publisher(
    conn: Connection,
    shared: Arc<Mutex<Snapshot>>,
    mut snaps: watch::Receiver<Snapshot>,
    mut notices: mpsc::UnboundedReceiver<Notice>,
) {
    let iface = match conn
        .object_server()
        .interface::<_, Agent1>(OBJECT_PATH)
        .await
    {
        Ok(i) => i,
        Err(e) => {
            log::warn!("D-Bus: {e}");
            return;
        }
    };
    let ctxt = iface.signal_context().clone();
    loop {
        tokio::select! {
            changed = snaps.changed() => {
                if changed.is_err() {
                    return;
                }
                let new = snaps.borrow_and_update().clone();
                let old = {
                    let mut guard = match shared.lock() {
                        Ok(g) => g,
                        Err(p) => p.into_inner(),
                    };
                    std::mem::replace(&mut *guard, new.clone())
                };
                if let Err(e) = emit_changes(&iface, &ctxt, &old, &new).await {
                    log::debug!("D-Bus: emitting changes: {e}");
                }
            }
            n = notices.recv() => {
                let Some(n) = n else { return };
                let r = match &n {
                    Notice::Applied { path, digest, source } => Agent1::config_applied(&ctxt, path, digest, source).await,
                    Notice::Rejected { path, stage, reason } => Agent1::config_rejected(&ctxt, path, stage, reason).await,
                };
                if let Err(e) = r {
                    log::debug!("D-Bus: emitting {n:?}: {e}");
                }
            }
        }
    }
}

async fn emit_changes(
    iface: &zbus::object_server::InterfaceRef<Agent1>,
    ctxt: &SignalContext<'_>,
    old: &Snapshot,
    new: &Snapshot,
) -> zbus::Result<()> {
    for (change, ep) in endpoint_changes(&old.endpoints, &new.endpoints) {
        Agent1::endpoint_changed(ctxt, change, ep).await?;
    }
    let i = iface.get().await;
    if old.ready != new.ready {
        i.ready_changed(ctxt).await?;
    }
    if old.mode != new.mode {
        i.mode_changed(ctxt).await?;
    }
    if old.links != new.links {
        i.links_changed(ctxt).await?;
    }
    if old.refusals != new.refusals {
        i.refusals_changed(ctxt).await?;
    }
    if old.endpoints != new.endpoints {
        i.endpoints_changed(ctxt).await?;
    }
    if old.limits != new.limits {
        i.limits_changed(ctxt).await?;
    }
    if old.caps != new.caps {
        i.kernel_capabilities_changed(ctxt).await?;
    }
    if old.blackhole != new.blackhole {
        i.blackhole_changed(ctxt).await?;
    }
    if new.blackhole.detections > old.blackhole.detections {
        let b = &new.blackhole;
        Agent1::blackhole_detected(ctxt, b.count, b.detections, b.timeout_s).await?;
    }
    if old.diagnostics != new.diagnostics {
        i.diagnostics_changed(ctxt).await?;
    }
    if old.link_counters != new.link_counters {
        i.link_counters_changed(ctxt).await?;
    }
    if old.kernel_counters != new.kernel_counters {
        i.kernel_counters_changed(ctxt).await?;
    }
    let (o, n) = (&old.config, &new.config);
    if o.path != n.path {
        i.config_path_changed(ctxt).await?;
    }
    if o.schema_version != n.schema_version {
        i.config_schema_version_changed(ctxt).await?;
    }
    if o.digest != n.digest {
        i.config_digest_changed(ctxt).await?;
    }
    if o.source != n.source {
        i.config_source_changed(ctxt).await?;
        i.last_known_good_in_use_changed(ctxt).await?;
    }
    if o.last_error != n.last_error {
        i.config_last_error_changed(ctxt).await?;
        // A missing file shows up as a rejection (and goes with the next apply).
        i.config_file_missing_changed(ctxt).await?;
    }
    if o.applied_at != n.applied_at {
        i.config_applied_at_changed(ctxt).await?;
    }
    Ok(())
}

/// The kernel's subflow events (taken from the daemon's one event stream) as
/// `SubflowEvent` signals.
async fn subflow_signals(conn: Connection, mut events: mpsc::Receiver<MptcpEvent>) {
    let ctxt = match SignalContext::new(&conn, OBJECT_PATH) {
        Ok(c) => c,
        Err(e) => {
            log::warn!("D-Bus: {e}");
            return;
        }
    };
    while let Some(ev) = events.recv().await {
        let Some(kind) = subflow_kind(ev.kind) else {
            continue;
        };
        let addr = |a: Option<std::net::IpAddr>| a.map(|a| a.to_string()).unwrap_or_default();
        let r = Agent1::subflow_event(
            &ctxt,
            kind,
            ev.token.unwrap_or(0),
            &addr(ev.saddr),
            ev.sport.unwrap_or(0),
            &addr(ev.daddr),
            ev.dport.unwrap_or(0),
            ev.ifindex.unwrap_or(0),
            ev.error.unwrap_or(0),
            ev.backup.unwrap_or(false),
        )
        .await;
        if let Err(e) = r {
            log::debug!("D-Bus: SubflowEvent: {e}");
        }
    }
}

/// The interface's introspection XML as served (for the checked-in copy and its test).
#[cfg(test)]
pub fn introspection_xml() -> String {
    use zbus::object_server::Interface;
    let (tx, _rx) = mpsc::channel(1);
    let iface = Agent1 {
        snap: Arc::new(Mutex::new(Snapshot::default())),
        requests: tx,
        admin_group: ADMIN_GROUP.to_string(),
    };
    let mut out = String::new();
    iface.introspect_to_writer(&mut out, 1);
    out
}

#[cfg(test)]
mod tests;
