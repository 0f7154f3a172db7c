// SPDX-License-Identifier: MIT OR Apache-2.0
//! Reading `connection.mptcp-flags` defaults out of NetworkManager's own config files.
//!
//! NetworkManager has no D-Bus property for its global connection defaults, and the
//! default for `connection.mptcp-flags` decides whether NetworkManager ≥ 1.40 manages
//! MPTCP endpoints itself (it does unless told otherwise). This module applies
//! NetworkManager.conf(5)'s rules for `[connection*]` sections: sections within one file
//! top to bottom with `[connection]` last, later files first, `match-device` and
//! `stop-match`. The adapter reads the files; this is pure.

use crate::{glob::Pattern, model::DeviceType};

/// One `[connection*]` or `[device*]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnSection {
    /// A `[device*]` section (else `[connection*]`).
    pub device: bool,
    /// `FILE [SECTION]`, for messages.
    pub origin: String,
    pub match_device: Option<String>,
    pub stop_match: bool,
    /// Raw value of `connection.mptcp-flags`, if the section sets it.
    pub mptcp_flags: Option<String>,
    /// Raw value of `carrier-wait-timeout` (`[device*]` sections).
    pub carrier_wait: Option<String>,
}

/// NetworkManager's `carrier-wait-timeout` when no `[device*]` section sets it. It is also
/// how long an activated device may lack carrier before NetworkManager takes it down.
pub const CARRIER_WAIT_DEFAULT_MS: u64 = 6_000;

/// Sections of all files, highest priority first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NmConf {
    pub sections: Vec<ConnSection>,
}

/// The global default NetworkManager would use for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalFlags {
    /// Parsed value; 0 when the text is not a number (NetworkManager then ignores it
    /// and falls back to its built-in default).
    pub value: u32,
    pub raw: String,
    pub origin: String,
}

impl NmConf {
    /// Build from file contents in NetworkManager's load order (first loaded first).
    pub fn from_files(files: &[(String, String)]) -> NmConf {
        let mut sections = Vec::new();
        for (path, text) in files.iter().rev() {
            let mut in_file = parse_sections(path, text);
            // `[connection]` itself is considered last within its file.
            let (named, plain): (Vec<_>, Vec<_>) = in_file.drain(..).partition(|s| s.1);
            sections.extend(named.into_iter().map(|s| s.0));
            sections.extend(plain.into_iter().map(|s| s.0));
        }
        NmConf { sections }
    }

    /// `connection.mptcp-flags` for a device, as NetworkManager would look it up.
    pub fn mptcp_flags_for(
        &self,
        ifname: &str,
        device_type: Option<DeviceType>,
    ) -> Option<GlobalFlags> {
        for s in self.sections.iter().filter(|s| !s.device) {
            let matches = match &s.match_device {
                None => true,
                Some(spec) => device_spec_matches(spec, ifname, device_type),
            };
            if !matches {
                continue;
            }
            if let Some(raw) = &s.mptcp_flags {
                return Some(GlobalFlags {
                    value: parse_c_integer(raw).unwrap_or(0),
                    raw: raw.clone(),
                    origin: s.origin.clone(),
                });
            }
            if s.stop_match {
                return None;
            }
        }
        None
    }
}

impl NmConf {
    /// `carrier-wait-timeout` for a device (ms), as NetworkManager would look it up.
    pub fn carrier_wait_ms(&self, ifname: &str, device_type: Option<DeviceType>) -> u64 {
        for s in self.sections.iter().filter(|s| s.device) {
            let matches = match &s.match_device {
                None => true,
                Some(spec) => device_spec_matches(spec, ifname, device_type),
            };
            if !matches {
                continue;
            }
            if let Some(v) = s.carrier_wait.as_deref().and_then(parse_c_integer) {
                return u64::from(v);
            }
            if s.stop_match {
                break;
            }
        }
        CARRIER_WAIT_DEFAULT_MS
    }
}

/// `(section, is_named_section)` for every `[connection*]` and `[device*]` section of a
/// file.
fn parse_sections(path: &str, text: &str) -> Vec<(ConnSection, bool)> {
    let mut out: Vec<(ConnSection, bool)> = Vec::new();
    let mut current: Option<usize> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            let device = name.starts_with("device");
            current = if name.starts_with("connection") || device {
                out.push((
                    ConnSection {
                        device,
                        origin: format!("{path} [{name}]"),
                        match_device: None,
                        stop_match: false,
                        mptcp_flags: None,
                        carrier_wait: None,
                    },
                    name != "connection" && name != "device",
                ));
                Some(out.len() - 1)
            } else {
                None
            };
            continue;
        }
        let Some(idx) = current else { continue };
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim().to_string());
        let s = &mut out[idx].0;
        match key {
            "match-device" => s.match_device = Some(value),
            "stop-match" => s.stop_match = matches!(value.as_str(), "1" | "yes" | "true" | "on"),
            "connection.mptcp-flags" if !s.device => s.mptcp_flags = Some(value),
            "carrier-wait-timeout" if s.device => s.carrier_wait = Some(value),
            _ => {}
        }
    }
    out
}

/// `strtoll(s, NULL, 0)` for the whole string: "0x22", "042", "34". Negative and
/// out-of-range values are rejected, as NetworkManager does.
pub fn parse_c_integer(s: &str) -> Option<u32> {
    let s = s.trim();
    let v = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()?
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()?
    } else {
        s.parse::<u64>().ok()?
    };
    u32::try_from(v).ok()
}

/// NetworkManager device spec (`match-device=`): comma/semicolon separated entries;
/// `except:` entries exclude. Entries this agent cannot evaluate (mac:, driver:, …) are
/// taken to match: for coexistence, assuming NetworkManager's setting applies is the
/// careful reading.
pub fn device_spec_matches(spec: &str, ifname: &str, device_type: Option<DeviceType>) -> bool {
    let mut positive_seen = false;
    let mut positive_match = false;
    for entry in spec
        .split([',', ';'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let (except, body) = match entry.strip_prefix("except:") {
            Some(b) => (true, b),
            None => (false, entry),
        };
        let hit = entry_matches(body, ifname, device_type);
        if except {
            if hit {
                return false;
            }
        } else {
            positive_seen = true;
            positive_match |= hit;
        }
    }
    // Only except: entries → everything else matches.
    !positive_seen || positive_match
}

fn entry_matches(entry: &str, ifname: &str, device_type: Option<DeviceType>) -> bool {
    if entry == "*" {
        return true;
    }
    if let Some(name) = entry.strip_prefix("interface-name:") {
        if let Some(exact) = name.strip_prefix('=') {
            return exact == ifname;
        }
        let name = name.strip_prefix('~').unwrap_or(name);
        return Pattern::new(name)
            .map(|p| p.matches(ifname))
            .unwrap_or(true);
    }
    if let Some(t) = entry.strip_prefix("type:") {
        return match device_type {
            Some(dt) => nm_type_name_matches(t, dt),
            None => true,
        };
    }
    true
}

/// NetworkManager's type descriptions differ from the config names in a few places.
fn nm_type_name_matches(nm_name: &str, t: DeviceType) -> bool {
    match nm_name {
        "gsm" | "cdma" | "modem" => t == DeviceType::Modem,
        "802-3-ethernet" | "ethernet" => t == DeviceType::Ethernet,
        "802-11-wireless" | "wifi" => t == DeviceType::Wifi,
        other => t.name() == other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(files: &[(&str, &str)]) -> NmConf {
        let owned: Vec<(String, String)> = files
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect();
        NmConf::from_files(&owned)
    }

    #[test]
    fn c_integers() {
        assert_eq!(parse_c_integer("0x1"), Some(1));
        assert_eq!(parse_c_integer("0x22"), Some(0x22));
        assert_eq!(parse_c_integer("34"), Some(34));
        assert_eq!(parse_c_integer("010"), Some(8));
        assert_eq!(parse_c_integer("0"), Some(0));
        assert_eq!(parse_c_integer("disabled"), None);
        assert_eq!(parse_c_integer("-1"), None);
    }

    #[test]
    fn carrier_wait_per_device() {
        let c = conf(&[
            (
                "/etc/NetworkManager/NetworkManager.conf",
                "[device]\ncarrier-wait-timeout=0x1f4\n[device-lab]\nmatch-device=interface-name:wwan0\n\
                 carrier-wait-timeout=2000\n[connection-x]\ncarrier-wait-timeout=9\nconnection.mptcp-flags=0x1\n",
            ),
            (
                "/etc/NetworkManager/conf.d/90-wl.conf",
                "[device-wl]\nmatch-device=interface-name:wlan*\nstop-match=yes\n",
            ),
        ]);
        assert_eq!(c.carrier_wait_ms("wwan0", None), 2000);
        // wlan0 matches a stop-match section without the key: the default. `[device]` is
        // considered last within its file.
        assert_eq!(c.carrier_wait_ms("wlan0", None), CARRIER_WAIT_DEFAULT_MS);
        assert_eq!(c.carrier_wait_ms("eth0", None), 500);
        assert_eq!(
            conf(&[]).carrier_wait_ms("eth0", None),
            CARRIER_WAIT_DEFAULT_MS
        );
        // A [device] key does not leak into the connection defaults, nor the other way.
        assert_eq!(c.mptcp_flags_for("wwan0", None).map(|g| g.value), Some(1));
    }

    #[test]
    fn unset_gives_none() {
        let c = conf(&[(
            "/etc/NetworkManager/NetworkManager.conf",
            "[main]\nplugins=keyfile\n",
        )]);
        assert_eq!(c.mptcp_flags_for("wwan0", None), None);
    }

    #[test]
    fn later_files_win_and_word_is_not_a_number() {
        let c = conf(&[
            (
                "/usr/lib/NetworkManager/conf.d/10-a.conf",
                "[connection]\nconnection.mptcp-flags=0x22\n",
            ),
            (
                "/etc/NetworkManager/conf.d/50-mptcp.conf",
                "[connection-mptcp]\nconnection.mptcp-flags=disabled\n",
            ),
        ]);
        let g = c.mptcp_flags_for("wwan0", None).unwrap();
        assert_eq!(g.value, 0, "the word is ignored by NetworkManager");
        assert_eq!(g.raw, "disabled");
        assert!(g.origin.contains("50-mptcp.conf [connection-mptcp]"));
    }

    #[test]
    fn connection_section_is_last_within_a_file() {
        let c = conf(&[(
            "/etc/NetworkManager/NetworkManager.conf",
            "[connection]\nconnection.mptcp-flags=0x22\n[connection-wwan]\nmatch-device=interface-name:wwan*\nconnection.mptcp-flags=0x1\n",
        )]);
        assert_eq!(c.mptcp_flags_for("wwan0", None).unwrap().value, 1);
        assert_eq!(c.mptcp_flags_for("wlan0", None).unwrap().value, 0x22);
    }

    #[test]
    fn stop_match_ends_the_search() {
        let c = conf(&[(
            "/etc/NetworkManager/NetworkManager.conf",
            "[connection-x]\nmatch-device=interface-name:wlan0\nstop-match=yes\n[connection]\nconnection.mptcp-flags=1\n",
        )]);
        assert_eq!(c.mptcp_flags_for("wlan0", None), None);
        assert_eq!(c.mptcp_flags_for("wwan0", None).unwrap().value, 1);
    }

    #[test]
    fn device_specs() {
        assert!(device_spec_matches("interface-name:wlan0", "wlan0", None));
        assert!(!device_spec_matches("interface-name:wlan0", "wwan0", None));
        assert!(device_spec_matches("interface-name:w*", "wwan0", None));
        assert!(device_spec_matches("interface-name:=w*", "w*", None));
        assert!(!device_spec_matches(
            "except:interface-name:wwan0",
            "wwan0",
            None
        ));
        assert!(device_spec_matches(
            "except:interface-name:wwan0",
            "wlan0",
            None
        ));
        assert!(device_spec_matches(
            "type:wifi;interface-name:eth0",
            "wlan0",
            Some(DeviceType::Wifi)
        ));
        assert!(!device_spec_matches(
            "type:wifi",
            "wwan0",
            Some(DeviceType::Modem)
        ));
        assert!(device_spec_matches(
            "type:gsm",
            "wwan0",
            Some(DeviceType::Modem)
        ));
        assert!(
            device_spec_matches("mac:00:11:22:33:44:55", "eth0", None),
            "unknown specs match"
        );
    }
}
