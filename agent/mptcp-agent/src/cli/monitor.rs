// SPDX-License-Identifier: MIT OR Apache-2.0
//! `monitor`: the agent's signals as lines or JSON, across agent restarts.

use std::{collections::BTreeMap, process::ExitCode};

use futures::StreamExt;
use serde::Serialize;
use zbus::{fdo::DBusProxy, Connection};

use super::{
    bus::{bus_failure_message, Failure},
    runtime, say,
    text::{or_dash, yes},
};
use crate::{
    service::{self, Agent1Proxy, EndpointInfo, LinkInfo},
    walltime::{now_usec, utc},
};

#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum MonitorEvent {
    EndpointChanged {
        change: String,
        endpoint: EndpointInfo,
    },
    SubflowEvent {
        kind: String,
        token: u32,
        local_address: String,
        local_port: u16,
        remote_address: String,
        remote_port: u16,
        ifindex: u32,
        error: u32,
        backup: bool,
    },
    ConfigRejected {
        path: String,
        stage: String,
        reason: String,
    },
    ConfigApplied {
        path: String,
        digest: String,
        source: String,
    },
    LinkChanged {
        link: LinkInfo,
    },
    BlackholeDetected {
        count: u64,
        detections: u64,
        timeout_s: i64,
    },
    AgentStarted,
    AgentStopped,
}

impl std::fmt::Display for MonitorEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MonitorEvent::EndpointChanged {
                change,
                endpoint: e,
            } => {
                write!(f, "endpoint {change}: id {} {}", e.id, e.address)?;
                if e.port != 0 {
                    write!(f, " port {}", e.port)?;
                }
                write!(f, " {}", e.flags.join(" "))?;
                if !e.interface.is_empty() {
                    write!(f, " dev {}", e.interface)?;
                }
                Ok(())
            }
            MonitorEvent::SubflowEvent {
                kind,
                token,
                local_address,
                local_port,
                remote_address,
                remote_port,
                ifindex,
                error,
                backup,
            } => {
                write!(
                    f,
                    "subflow {kind}: token {token:08x} {local_address}:{local_port} -> {remote_address}:{remote_port} ifindex {ifindex}"
                )?;
                if *error != 0 {
                    write!(f, " error {error}")?;
                }
                if *backup {
                    f.write_str(" backup")?;
                }
                Ok(())
            }
            MonitorEvent::ConfigRejected {
                path,
                stage,
                reason,
            } => {
                // The reason names the file itself when it has a position.
                let reason = reason.replace('\n', " | ");
                if reason.starts_with(path.as_str()) {
                    write!(f, "config rejected ({stage}): {reason}")
                } else {
                    write!(f, "config rejected ({stage}): {path}: {reason}")
                }
            }
            MonitorEvent::ConfigApplied {
                path,
                digest,
                source,
            } => {
                write!(f, "config applied: {path} ({digest}, source {source})")
            }
            MonitorEvent::LinkChanged { link: l } => write!(
                f,
                "link {}: {} (carrier {}, rule {}, applied {}){}",
                l.name,
                l.state,
                yes(l.carrier),
                or_dash(&l.rule),
                yes(l.policy_applied),
                if l.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", l.detail)
                }
            ),
            MonitorEvent::BlackholeDetected {
                count,
                detections,
                timeout_s,
            } => write!(
                f,
                "MPTCP blackhole detected (MPTcpExtBlackhole {count}, {detections} since the agent started): new \
                 outgoing MPTCP connections are plain TCP for net.mptcp.blackhole_timeout = {timeout_s} s or longer"
            ),
            MonitorEvent::AgentStarted => f.write_str("agent started"),
            MonitorEvent::AgentStopped => f.write_str("agent stopped"),
        }
    }
}

/// Print one event; false when stdout is gone.
fn emit(json: bool, ev: &MonitorEvent) -> bool {
    let now = now_usec();
    if json {
        let mut v = serde_json::to_value(ev).unwrap_or(serde_json::Value::Null);
        if let serde_json::Value::Object(m) = &mut v {
            m.insert("time".into(), serde_json::Value::String(utc(now)));
        }
        say(&v.to_string())
    } else {
        say(&format!("{} {ev}", utc(now)))
    }
}

/// Print the agent's events until SIGINT/SIGTERM. Keeps listening across agent restarts.
pub fn monitor(json: bool) -> ExitCode {
    use tokio::signal::unix::{signal, SignalKind};
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    let r: Result<(), Failure> = rt.block_on(async {
        let conn = Connection::system()
            .await
            .map_err(|e| Failure::unreachable(bus_failure_message(&e)))?;
        let proxy = Agent1Proxy::builder(&conn)
            .cache_properties(zbus::CacheProperties::No)
            .build()
            .await
            .map_err(Failure::from_call)?;
        let dbus = DBusProxy::new(&conn).await.map_err(Failure::from_call)?;
        let mut owners = dbus
            .receive_name_owner_changed_with_args(&[(0, service::BUS_NAME)])
            .await
            .map_err(Failure::from_call)?;
        let mut eps = proxy.receive_endpoint_changed().await.map_err(Failure::from_call)?;
        let mut subflows = proxy.receive_subflow_event().await.map_err(Failure::from_call)?;
        let mut rejected = proxy.receive_config_rejected().await.map_err(Failure::from_call)?;
        let mut applied = proxy.receive_config_applied().await.map_err(Failure::from_call)?;
        let mut blackholes = proxy.receive_blackhole_detected().await.map_err(Failure::from_call)?;
        let mut props = zbus::fdo::PropertiesProxy::builder(&conn)
            .destination(service::BUS_NAME)
            .and_then(|b| b.path(service::OBJECT_PATH))
            .map_err(Failure::from_call)?
            .build()
            .await
            .map_err(Failure::from_call)?
            .receive_properties_changed()
            .await
            .map_err(Failure::from_call)?;
        let mut sigint = signal(SignalKind::interrupt()).map_err(|e| Failure::unreachable(e.to_string()))?;
        let mut sigterm = signal(SignalKind::terminate()).map_err(|e| Failure::unreachable(e.to_string()))?;
        // Link states as last seen, to print only changes.
        let mut links: BTreeMap<String, LinkInfo> = match proxy.links().await {
            Ok(l) => l.into_iter().map(|l| (l.name.clone(), l)).collect(),
            Err(_) => {
                eprintln!("mptcp-agent: the agent is not running now; waiting for it");
                BTreeMap::new()
            }
        };
        let mut open = true;
        while open {
            tokio::select! {
                Some(s) = eps.next() => if let Ok(a) = s.args() {
                    open &= emit(json, &MonitorEvent::EndpointChanged { change: a.change.to_string(), endpoint: a.endpoint.clone() });
                },
                Some(s) = subflows.next() => if let Ok(a) = s.args() {
                    open &= emit(json, &MonitorEvent::SubflowEvent {
                        kind: a.kind.to_string(),
                        token: a.token,
                        local_address: a.local_address.to_string(),
                        local_port: a.local_port,
                        remote_address: a.remote_address.to_string(),
                        remote_port: a.remote_port,
                        ifindex: a.ifindex,
                        error: a.error,
                        backup: a.backup,
                    });
                },
                Some(s) = rejected.next() => if let Ok(a) = s.args() {
                    open &= emit(json, &MonitorEvent::ConfigRejected { path: a.path.to_string(), stage: a.stage.to_string(), reason: a.reason.to_string() });
                },
                Some(s) = applied.next() => if let Ok(a) = s.args() {
                    open &= emit(json, &MonitorEvent::ConfigApplied { path: a.path.to_string(), digest: a.digest.to_string(), source: a.source.to_string() });
                },
                Some(s) = blackholes.next() => if let Ok(a) = s.args() {
                    open &= emit(json, &MonitorEvent::BlackholeDetected { count: a.count, detections: a.detections, timeout_s: a.timeout_s });
                },
                Some(s) = props.next() => if let Ok(a) = s.args() {
                    if let Some(v) = a.changed_properties().get("Links") {
                        let new: Vec<LinkInfo> = v.try_to_owned().ok().and_then(|o| Vec::<LinkInfo>::try_from(o).ok()).unwrap_or_default();
                        for l in new {
                            if links.get(&l.name) != Some(&l) {
                                open &= emit(json, &MonitorEvent::LinkChanged { link: l.clone() });
                                links.insert(l.name.clone(), l);
                            }
                        }
                    }
                },
                Some(s) = owners.next() => if let Ok(a) = s.args() {
                    open &= emit(json, if a.new_owner().is_some() { &MonitorEvent::AgentStarted } else { &MonitorEvent::AgentStopped });
                },
                _ = sigint.recv() => return Ok(()),
                _ = sigterm.recv() => return Ok(()),
            }
        }
        Ok(())
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.exit(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_lines() {
        let ev = MonitorEvent::SubflowEvent {
            kind: "sf_closed".into(),
            token: 0xabc,
            local_address: "10.2.0.2".into(),
            local_port: 40000,
            remote_address: "10.9.0.2".into(),
            remote_port: 5000,
            ifindex: 3,
            error: 104,
            backup: false,
        };
        assert_eq!(
            ev.to_string(),
            "subflow sf_closed: token 00000abc 10.2.0.2:40000 -> 10.9.0.2:5000 ifindex 3 error 104"
        );
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["event"], "subflow_event");
        let ev = MonitorEvent::ConfigRejected {
            path: "/x".into(),
            stage: "check".into(),
            reason: "a\nb".into(),
        };
        assert_eq!(ev.to_string(), "config rejected (check): /x: a | b");
        let ev = MonitorEvent::ConfigRejected {
            path: "/x".into(),
            stage: "check".into(),
            reason: "/x:3:1: bad".into(),
        };
        assert_eq!(ev.to_string(), "config rejected (check): /x:3:1: bad");
    }
}
