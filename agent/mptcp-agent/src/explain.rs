// SPDX-License-Identifier: MIT OR Apache-2.0
//! `mptcp-agent explain [IFACE]`: why each link has or lacks an endpoint, and the one thing
//! to change. Asks the running agent (D-Bus `Explain`); without one, reads the kernel (and
//! NetworkManager, when it is on the bus) the way `check-config --diff` does and reasons
//! with the config file, as the agent would. The reasoning itself is
//! [`mptcp_agent_core::explain`]; this module fetches and prints.

use std::{path::Path, process::ExitCode};

use serde_json::Value;

use crate::cli::{self, Failure, WIDTH};

/// Exit status when IFACE is not a link of this device.
pub const EXIT_NO_LINK: u8 = 1;

pub fn explain(interface: Option<&str>, json: bool, config: &Path) -> ExitCode {
    let Some(rt) = cli::runtime() else {
        return ExitCode::FAILURE;
    };
    let asked = rt.block_on(cli::timed("explain", async {
        let (_conn, proxy) = cli::agent().await?;
        proxy
            .explain(interface.unwrap_or_default().to_string())
            .await
            .map_err(Failure::from_agent)
    }));
    let (source, text) = match asked {
        Ok(text) => ("agent", text),
        // No agent (or no bus): the kernel alone, with the config file.
        Err(f) if f.code == cli::EXIT_UNREACHABLE => {
            match rt.block_on(without_agent(interface, config)) {
                Ok(text) => ("kernel", text),
                Err(e) => {
                    return Failure {
                        code: cli::EXIT_UNREACHABLE,
                        message: format!("{}; without the agent: {e}", f.message),
                    }
                    .exit()
                }
            }
        }
        Err(f) => return f.exit(),
    };
    let mut v: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return Failure::unreachable(format!("the agent's answer: {e}")).exit(),
    };
    v["source"] = Value::from(source);
    if let Some(name) = interface {
        if v["links"].as_array().map_or(true, |l| l.is_empty()) {
            eprintln!("mptcp-agent: {name}: no such link (see `mptcp-agent explain`)");
            return ExitCode::from(EXIT_NO_LINK);
        }
    }
    let out = if json {
        serde_json::to_string_pretty(&v).unwrap_or_default()
    } else {
        render(&v)
    };
    cli::say(out.trim_end());
    ExitCode::SUCCESS
}

/// What the agent would answer, from the kernel, NetworkManager and the config file.
async fn without_agent(interface: Option<&str>, config: &Path) -> Result<String, String> {
    let (cfg, note) = match crate::ota::load(config) {
        Ok(l) => (l.config, None),
        Err(e) => (
            crate::ota::built_in().config,
            Some(format!("{e}; the built-in default config is used instead")),
        ),
    };
    let start = std::time::Instant::now();
    let clock = move || {
        mptcp_agent_core::Millis(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX))
    };
    let obs = crate::preview::observe(&cfg, &clock).await?;
    let e = mptcp_agent_core::explain(&cfg, &obs, clock(), interface);
    let mut v = serde_json::to_value(&e).map_err(|e| e.to_string())?;
    if let Some(n) = note {
        if let Some(host) = v["host"].as_array_mut() {
            host.push(serde_json::json!({"topic": "config", "text": n}));
        }
    }
    serde_json::to_string(&v).map_err(|e| e.to_string())
}

/// Width of the topic column.
const TOPIC: usize = 16;

fn facts(out: &mut String, facts: &Value, indent: &str) {
    let pad = " ".repeat(indent.len() + TOPIC);
    for f in facts.as_array().into_iter().flatten() {
        let topic = f["topic"].as_str().unwrap_or_default();
        let text = f["text"].as_str().unwrap_or_default();
        out.push_str(&cli::wrap(
            text,
            &format!("{indent}{topic:<width$}", width = TOPIC),
            &pad,
            WIDTH,
        ));
    }
}

/// A shell command on lines of its own: split after `&&` (where a pasted line continues),
/// never inside a word.
pub fn command_lines(cmd: &str, indent: &str) -> String {
    let parts: Vec<&str> = cmd.split(" && ").collect();
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        out.push_str(indent);
        out.push_str(p);
        if i + 1 < parts.len() {
            out.push_str(" &&");
        }
        out.push('\n');
    }
    out
}

/// The text form, within 80 columns (but for a command line longer than that).
pub fn render(v: &Value) -> String {
    let mut out = String::new();
    let source = match v["source"].as_str() {
        Some("agent") => "as the running agent sees it",
        _ => "no agent running: from the kernel and the config file",
    };
    out.push_str(&cli::wrap(
        &format!("mptcp-agent explain ({source})"),
        "",
        "  ",
        WIDTH,
    ));
    facts(&mut out, &v["host"], "");
    for l in v["links"].as_array().into_iter().flatten() {
        out.push('\n');
        let name = l["name"].as_str().unwrap_or_default();
        let state = l["state"].as_str().unwrap_or_default();
        let summary = l["summary"].as_str().unwrap_or_default();
        out.push_str(&cli::wrap(
            &format!("{name} ({state}): {summary}"),
            "",
            "  ",
            WIDTH,
        ));
        facts(&mut out, &l["facts"], "  ");
        if let Some(change) = l["change"].as_str() {
            if l["refusal"].is_string() {
                // A command to paste: whole words, split where the shell continues.
                out.push_str("  to change:\n");
                out.push_str(&command_lines(change, "    "));
            } else {
                out.push_str(&cli::wrap(
                    change,
                    &format!("  {:<width$}", "to change:", width = TOPIC),
                    &" ".repeat(2 + TOPIC),
                    WIDTH,
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mptcp_agent_core::{NmFlagsSource, Refusal};

    #[test]
    fn commands_split_where_the_shell_continues() {
        let r = Refusal::NetworkManager {
            version: Some("1.42.4".into()),
            interface: "wwan0".into(),
            profile: Some("uplink-wwan0".into()),
            flags: 0x22,
            source: NmFlagsSource::BuiltIn { ignored: None },
        };
        let text = command_lines(&r.advice(), "    ");
        assert_eq!(
            text,
            "    nmcli connection modify uplink-wwan0 connection.mptcp-flags disabled &&\n    nmcli device reapply wwan0\n"
        );
        for l in text.lines() {
            assert!(l.chars().count() <= WIDTH, "{l}");
        }
    }

    #[test]
    fn render_fits_80_columns() {
        let v = serde_json::json!({
            "schema": 1,
            "source": "agent",
            "host": [{"topic": "kernel", "text": "MPTCP 6.18 (full); flags changed in place (set_flags) yes, subflow events yes, fullmesh yes"}],
            "links": [{
                "name": "wwan0", "ifindex": 3, "state": "refused",
                "summary": "left alone: NetworkManager 1.42.4 manages MPTCP endpoints here (connection.mptcp-flags=0x22, NetworkManager's built-in default)",
                "refusal": "networkmanager-default",
                "facts": [{"topic": "coexistence", "text": "NetworkManager 1.42.4 handles MPTCP endpoints itself on wwan0 (connection.mptcp-flags=0x22): it adds its own and deletes endpoints it did not add, so the agent's would not last."}],
                "change": "nmcli connection modify uplink-wwan0 connection.mptcp-flags disabled && nmcli device reapply wwan0"
            }, {
                "name": "wlan0", "ifindex": 2, "state": "down",
                "summary": "no endpoint: IPv4: no carrier",
                "refusal": null,
                "facts": [{"topic": "carrier", "text": "no carrier (cable, radio or modem has no link)"}],
                "change": "restore its carrier (cable, radio signal, modem registration)"
            }]
        });
        let text = render(&v);
        for l in text.lines() {
            assert!(
                l.chars().count() <= WIDTH,
                "{l:?} is wider than {WIDTH}\n{text}"
            );
        }
        assert!(
            text.contains("\nwwan0 (refused): left alone: NetworkManager 1.42.4"),
            "{text}"
        );
        assert!(
            text.contains("  to change:\n    nmcli connection modify uplink-wwan0"),
            "{text}"
        );
        assert!(
            text.contains("  coexistence     NetworkManager 1.42.4 handles"),
            "{text}"
        );
        assert!(
            text.contains("  to change:      restore its carrier"),
            "{text}"
        );
    }
}
