// SPDX-License-Identifier: MIT OR Apache-2.0
//! The exchange with the running agent: connecting, call errors and the exit status each
//! maps to, and the verbs that only call it (`reload`, `resync`).

use std::{process::ExitCode, time::Duration};

use zbus::{fdo::DBusProxy, Connection};

use super::{runtime, say, EXIT_DENIED, EXIT_REFUSED, EXIT_UNREACHABLE};
use crate::service::{self, Agent1Proxy, AgentError};

/// Bound on every call to the agent.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed exchange with the agent, with the exit status it maps to.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn unreachable(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_UNREACHABLE,
            message: message.into(),
        }
    }

    /// D-Bus errors: access denied (by the bus policy or by the agent) → 4; the agent's
    /// own errors → 1; anything else (no bus, agent gone) → 3.
    pub(super) fn from_call(e: zbus::Error) -> Failure {
        match &e {
            zbus::Error::MethodError(name, msg, _) => {
                let name = name.as_str();
                let message = match msg {
                    Some(m) => format!("{m} ({name})"),
                    None => name.to_string(),
                };
                let code = if name.ends_with(".AccessDenied") {
                    EXIT_DENIED
                } else if name.starts_with(service::INTERFACE) {
                    EXIT_REFUSED
                } else {
                    EXIT_UNREACHABLE
                };
                Failure { code, message }
            }
            zbus::Error::FDO(fdo) => {
                let code = if matches!(**fdo, zbus::fdo::Error::AccessDenied(_)) {
                    EXIT_DENIED
                } else {
                    EXIT_UNREACHABLE
                };
                Failure {
                    code,
                    message: fdo.to_string(),
                }
            }
            _ => Failure::unreachable(e.to_string()),
        }
    }

    fn from_fdo(e: zbus::fdo::Error) -> Failure {
        Failure::from_call(zbus::Error::FDO(Box::new(e)))
    }

    pub(crate) fn from_agent(e: AgentError) -> Failure {
        let (code, message) = match e {
            AgentError::ZBus(e) => return Failure::from_call(e),
            AgentError::AccessDenied(m) => (EXIT_DENIED, format!("access denied: {m}")),
            AgentError::ConfigRejected(m) => (EXIT_REFUSED, format!("config rejected: {m}")),
            AgentError::ApplyFailed(m) => (EXIT_REFUSED, format!("config not applied: {m}")),
            AgentError::ResyncFailed(m) => (EXIT_REFUSED, format!("resync failed: {m}")),
            AgentError::Unavailable(m) => (EXIT_UNREACHABLE, m),
        };
        Failure { code, message }
    }

    pub(crate) fn exit(self) -> ExitCode {
        eprintln!("mptcp-agent: {}", self.message);
        ExitCode::from(self.code)
    }
}

pub(crate) async fn timed<T>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Ok(r) => r,
        Err(_) => Err(Failure::unreachable(format!(
            "{what}: no answer within {}s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

/// The system bus socket zbus tries: `$DBUS_SYSTEM_BUS_ADDRESS`, else the default.
pub fn system_bus_address() -> (String, bool) {
    match std::env::var("DBUS_SYSTEM_BUS_ADDRESS") {
        Ok(a) if !a.is_empty() => (a, true),
        _ => (
            "unix:path=/var/run/dbus/system_bus_socket".to_string(),
            false,
        ),
    }
}

/// "cannot reach the system bus at ADDRESS (error)" and what to check.
pub fn bus_failure_message(e: &zbus::Error) -> String {
    let (address, from_env) = system_bus_address();
    let hint = if from_env {
        "(from DBUS_SYSTEM_BUS_ADDRESS); is that bus running?"
    } else {
        "(the default); is dbus running? Set DBUS_SYSTEM_BUS_ADDRESS=unix:path=SOCKET for another bus"
    };
    format!("cannot reach the system bus at {address} {hint} ({e})")
}

/// Connect to the system bus and make sure the agent is there.
pub(crate) async fn agent() -> Result<(Connection, Agent1Proxy<'static>), Failure> {
    let conn = Connection::system()
        .await
        .map_err(|e| Failure::unreachable(bus_failure_message(&e)))?;
    let dbus = DBusProxy::new(&conn).await.map_err(Failure::from_call)?;
    let name = zbus::names::BusName::try_from(service::BUS_NAME)
        .map_err(|e| Failure::unreachable(e.to_string()))?;
    if !dbus.name_has_owner(name).await.map_err(Failure::from_fdo)? {
        return Err(Failure::unreachable(format!(
            "the agent is not running (nobody owns {} on the system bus)",
            service::BUS_NAME
        )));
    }
    let proxy = Agent1Proxy::new(&conn).await.map_err(Failure::from_call)?;
    Ok((conn, proxy))
}

pub fn reload() -> ExitCode {
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    let r = rt.block_on(timed("reload", async {
        let (_conn, proxy) = agent().await?;
        proxy.reload().await.map_err(Failure::from_agent)
    }));
    match r {
        Ok(digest) => {
            say(&format!("config applied ({digest})"));
            ExitCode::SUCCESS
        }
        Err(f) => f.exit(),
    }
}

pub fn resync() -> ExitCode {
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    let r = rt.block_on(timed("resync", async {
        let (_conn, proxy) = agent().await?;
        proxy.resync().await.map_err(Failure::from_agent)
    }));
    match r {
        Ok(summary) => {
            say(&format!("resynced: {summary}"));
            ExitCode::SUCCESS
        }
        Err(f) => f.exit(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_errors_map_to_exit_codes() {
        use zbus::{message::Message, names::OwnedErrorName};
        let msg = Message::method("/x", "Y").unwrap().build(&()).unwrap();
        let err = |name: &str| {
            zbus::Error::MethodError(
                OwnedErrorName::try_from(name.to_string()).unwrap(),
                Some("m".into()),
                msg.clone(),
            )
        };
        assert_eq!(
            Failure::from_call(err("org.freedesktop.DBus.Error.AccessDenied")).code,
            EXIT_DENIED
        );
        assert_eq!(
            Failure::from_call(err("io.github.meta_mptcp.Agent1.Error.AccessDenied")).code,
            EXIT_DENIED
        );
        assert_eq!(
            Failure::from_call(err("io.github.meta_mptcp.Agent1.Error.ConfigRejected")).code,
            EXIT_REFUSED
        );
        assert_eq!(
            Failure::from_call(err("org.freedesktop.DBus.Error.ServiceUnknown")).code,
            EXIT_UNREACHABLE
        );
    }
}
