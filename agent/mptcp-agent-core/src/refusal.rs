// SPDX-License-Identifier: MIT OR Apache-2.0
//! Why the agent leaves a link alone: someone else manages MPTCP endpoints there. Typed, so
//! that decisions (which refusals to report, which to advise on) never look at text.
//!
//! Each refusal has a short reason (its `Display`), ONE line of advice that works as written
//! on the device, and a longer explanation for `mptcp-agent explain`.

use std::fmt;

/// NetworkManager's config file the layers install with the agent (conf/networkmanager/).
pub const NM_AGENT_CONF: &str = "/etc/NetworkManager/conf.d/90-mptcp-agent.conf";

/// Where NetworkManager's `connection.mptcp-flags` for a device came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum NmFlagsSource {
    /// Set in the connection profile applied to the device.
    Profile,
    /// Set by a NetworkManager config file (global default of connection.mptcp-flags).
    Global { file: String },
    /// NetworkManager's built-in default: no file sets it, or `ignored_word` (from `file`)
    /// is not a number and NetworkManager ignores it.
    BuiltIn { ignored: Option<(String, String)> },
}

/// One kind of refusal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refusal {
    /// mptcpd runs in this network namespace and manages every interface.
    Mptcpd { pid: u32 },
    /// NetworkManager's own MPTCP handling is on for this device.
    NetworkManager {
        /// NetworkManager's version, or None when it is not known yet.
        version: Option<String>,
        interface: String,
        /// The connection profile applied to the device, when there is one.
        profile: Option<String>,
        /// The effective `connection.mptcp-flags`.
        flags: u32,
        source: NmFlagsSource,
    },
}

impl Refusal {
    /// Stable name of the kind, for JSON, D-Bus and tests: "mptcpd",
    /// "networkmanager-profile", "networkmanager-global", "networkmanager-default".
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::Mptcpd { .. } => "mptcpd",
            Refusal::NetworkManager { source, .. } => match source {
                NmFlagsSource::Profile => "networkmanager-profile",
                NmFlagsSource::Global { .. } => "networkmanager-global",
                NmFlagsSource::BuiltIn { .. } => "networkmanager-default",
            },
        }
    }

    /// Every kind, in the order `kind()` names them (docs and tests).
    pub const KINDS: [&'static str; 4] = [
        "mptcpd",
        "networkmanager-profile",
        "networkmanager-global",
        "networkmanager-default",
    ];

    pub fn is_mptcpd(&self) -> bool {
        matches!(self, Refusal::Mptcpd { .. })
    }

    /// The one command that lifts the refusal, as it is to be run on the device. The agent
    /// notices the change by itself (no restart, no down/up).
    pub fn advice(&self) -> String {
        match self {
            Refusal::Mptcpd { .. } => "systemctl disable --now mptcp.service".to_string(),
            Refusal::NetworkManager {
                interface, profile, ..
            } => match profile {
                // The profile's setting wins over every global default, and NetworkManager
                // takes it with a reapply: no down/up, no restart.
                Some(p) => format!(
                    "nmcli connection modify {} connection.mptcp-flags disabled && nmcli device reapply {}",
                    shell_quote(p),
                    shell_quote(interface)
                ),
                None => format!(
                    "install {NM_AGENT_CONF} (shipped with mptcp-agent) and restart NetworkManager"
                ),
            },
        }
    }

    /// The long explanation (`mptcp-agent explain`), one sentence per entry.
    pub fn explanation(&self) -> Vec<String> {
        match self {
            Refusal::Mptcpd { pid } => vec![
                format!(
                    "mptcpd (pid {pid}) runs in this network namespace; it manages MPTCP endpoints and limits on \
                     every interface, and two managers would undo each other's work."
                ),
                "While it runs the agent touches no endpoint and no limit; it starts by itself within 5 s of \
                 mptcpd's exit."
                    .to_string(),
                "Stop and disable it (`systemctl disable --now mptcp.service`), or leave it out of the image."
                    .to_string(),
            ],
            Refusal::NetworkManager {
                version,
                interface,
                profile,
                flags,
                source,
            } => {
                let nm = match version {
                    Some(v) => format!("NetworkManager {v}"),
                    None => "NetworkManager (version not known yet)".to_string(),
                };
                let mut out = vec![format!(
                    "{nm} handles MPTCP endpoints itself on {interface} (connection.mptcp-flags={flags:#x}): it adds \
                     its own and deletes endpoints it did not add, so the agent's would not last."
                )];
                out.push(match source {
                    NmFlagsSource::Profile => format!(
                        "The value is set in the connection profile '{}' applied to the device.",
                        profile.as_deref().unwrap_or("?")
                    ),
                    NmFlagsSource::Global { file } => format!(
                        "The profile leaves it at \"default\" (0) and {file} sets the global default to {flags:#x}."
                    ),
                    NmFlagsSource::BuiltIn { ignored: None } => format!(
                        "Neither the profile nor any NetworkManager config file sets it, so NetworkManager's built-in \
                         default applies; the agent's packages install {NM_AGENT_CONF}, which turns it off for every \
                         device, and it is missing (or shadowed) here."
                    ),
                    NmFlagsSource::BuiltIn {
                        ignored: Some((file, raw)),
                    } => format!(
                        "{file} sets it to {raw:?}, which is not a number: NetworkManager ignores the line and uses \
                         its built-in default. Config files need the number (0x1), only nmcli takes the word \
                         \"disabled\"."
                    ),
                });
                match profile {
                    Some(p) => out.push(format!(
                        "For this device, the command below sets connection.mptcp-flags to \"disabled\" in profile \
                         '{p}': the profile's value wins over every global default, and the reapply takes it without \
                         taking the link down; the agent sees the change and takes {interface} over within a few \
                         seconds."
                    )),
                    None => out.push(
                        "The device has no applied connection profile now; once it has one, the profile's \
                         connection.mptcp-flags can be set to \"disabled\"."
                            .to_string(),
                    ),
                }
                out.push(format!(
                    "For every device: {NM_AGENT_CONF} with \"[connection-mptcp-agent]\" and \
                     \"connection.mptcp-flags=0x1\" (as the layers install it); NetworkManager reads it when it \
                     starts (a config reload or a reapply does not change devices already activated)."
                ));
                out
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Mptcpd { pid } => {
                write!(
                    f,
                    "mptcpd (pid {pid}) manages MPTCP endpoints on every interface"
                )
            }
            Refusal::NetworkManager {
                version,
                profile,
                flags,
                source,
                ..
            } => {
                let nm = match version {
                    Some(v) => format!("NetworkManager {v}"),
                    None => "NetworkManager".to_string(),
                };
                let from = match source {
                    NmFlagsSource::Profile => {
                        format!(
                            "set in connection profile '{}'",
                            profile.as_deref().unwrap_or("?")
                        )
                    }
                    NmFlagsSource::Global { file } => format!("set in {file}"),
                    NmFlagsSource::BuiltIn { ignored: None } => {
                        "NetworkManager's built-in default".to_string()
                    }
                    NmFlagsSource::BuiltIn {
                        ignored: Some((file, raw)),
                    } => format!(
                        "NetworkManager's built-in default: {file} sets {raw:?}, which is not a number"
                    ),
                };
                write!(
                    f,
                    "{nm} manages MPTCP endpoints here (connection.mptcp-flags={flags:#x}, {from})"
                )
            }
        }
    }
}

/// `s` as one shell word: bare when it is plain, else in single quotes.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@+=,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_words() {
        assert_eq!(shell_quote("uplink-wwan0"), "uplink-wwan0");
        assert_eq!(shell_quote("Wired connection 1"), "'Wired connection 1'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn advice_is_one_short_line() {
        let r = Refusal::NetworkManager {
            version: Some("1.42.4".into()),
            interface: "wwan0".into(),
            profile: Some("Wired connection 1".into()),
            flags: 0x22,
            source: NmFlagsSource::BuiltIn { ignored: None },
        };
        let a = r.advice();
        assert_eq!(
            a,
            "nmcli connection modify 'Wired connection 1' connection.mptcp-flags disabled && nmcli device reapply wwan0"
        );
        assert!(!a.contains('\n'));
        let none = Refusal::NetworkManager {
            version: None,
            interface: "wwan0".into(),
            profile: None,
            flags: 0x22,
            source: NmFlagsSource::BuiltIn { ignored: None },
        };
        assert!(
            none.advice().contains("90-mptcp-agent.conf"),
            "{}",
            none.advice()
        );
        assert!(none.advice().len() <= 120);
        assert_eq!(
            Refusal::Mptcpd { pid: 7 }.advice(),
            "systemctl disable --now mptcp.service"
        );
    }
}
