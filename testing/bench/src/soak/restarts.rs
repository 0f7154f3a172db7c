// SPDX-License-Identifier: MIT OR Apache-2.0
//! One soak session: settling, churn, and the agent and NetworkManager restart rounds.

use super::*;

pub(super) struct Soak<'s, 'a> {
    pub(super) sess: &'s Session<'a>,
    pub(super) args: &'s SoakArgs,
    pub(super) live: Live,
    pub(super) sf: Subflows,
    pub(super) uplinks: Vec<Uplink>,
}

impl Soak<'_, '_> {
    pub(super) fn wait_all_subflows(&mut self, bound: Duration) -> bool {
        let end = Instant::now() + bound;
        let ups = self.uplinks.clone();
        ups.iter().all(|u| {
            let left = end.saturating_duration_since(Instant::now());
            wait_subflow(self.sess, &mut self.sf, u, left).is_some()
        })
    }

    /// Quiet state before a restart: every endpoint in place, a subflow on every uplink.
    pub(super) fn settle(&mut self) -> Result<(), String> {
        self.sess.ensure_steady()?;
        if !self.wait_all_subflows(Duration::from_millis(self.args.recover_ms)) {
            return Err(format!(
                "not every uplink has a subflow: {:?}",
                self.sf.live
            ));
        }
        // Let join retries and late events drain.
        std::thread::sleep(Duration::from_millis(300));
        self.sf.update(self.sess);
        Ok(())
    }

    /// Events of the live connection (subflows opened or closed) in a window.
    pub(super) fn churn(&self, from: Instant, to: Instant) -> Vec<String> {
        self.sess
            .obs
            .events_between(from, to)
            .iter()
            .filter(|(_, e)| {
                e.token == Some(self.live.token)
                    && matches!(
                        e.kind,
                        EventKind::SubEstablished | EventKind::SubClosed | EventKind::Closed
                    )
            })
            .map(|(_, e)| format!("{e}"))
            .collect()
    }

    /// Agent SIGKILL + restart twice: once with nothing changed (healthy subflows must stay
    /// untouched), once with the flapped uplink's carrier cut while it was dead (it must
    /// withdraw that endpoint within the bound after its restart).
    pub(super) fn agent_round(&mut self) -> Vec<Restart> {
        let mut out = Vec::new();
        let sess = self.sess;
        let bound = Duration::from_millis(self.args.resync_ms);
        // 1: nothing changed.
        let r = (|| -> Result<Restart, String> {
            self.settle()?;
            let eps = sess.obs.endpoints();
            let pid = sess.manager_pid().ok_or("agent not running")?;
            kill9(pid);
            if !wait_gone(sess, "agent") {
                return Err("agent still alive 5 s after SIGKILL".into());
            }
            let t0 = Instant::now();
            sess.start_manager()?;
            let forked = sys::mtime_instant(&sess.lab.dir().join("pids/agent.pid")).unwrap_or(t0);
            // Re-synced: READY=1 (sent after its first reconciliation).
            let ready = sess
                .notify
                .as_ref()
                .and_then(|n| n.wait_ready(forked, Duration::from_secs(5)))
                .map(|t| ms(t.saturating_duration_since(forked)));
            sleep_until(forked + Duration::from_secs(2));
            let churn = self.churn(forked, Instant::now());
            let eps_after = sess.obs.endpoints();
            let same = eps == eps_after;
            let alive = sess.manager_pid().is_some();
            let in_time = ready.is_some_and(|r| r <= bound.as_secs_f64() * 1000.0);
            Ok(Restart {
                what: "agent SIGKILL + restart, nothing changed".into(),
                healthy_untouched: churn.is_empty() && same && alive && in_time,
                resync_ms: ready,
                detail: format!(
                    "READY=1 {} after the fork; subflow events in the 2 s after restart: {churn:?}; endpoints {}; agent {}",
                    fmt_opt(ready),
                    if same {
                        "unchanged".to_string()
                    } else {
                        format!("changed {eps:?} -> {eps_after:?}")
                    },
                    if alive { "running" } else { "DIED" }
                ),
            })
        })();
        out.push(
            r.unwrap_or_else(|e| failed_restart("agent SIGKILL + restart, nothing changed", e)),
        );
        // 2: carrier cut while the agent was dead.
        let r = (|| -> Result<Restart, String> {
            self.settle()?;
            let flap = sess.flap.clone();
            let pid = sess.manager_pid().ok_or("agent not running")?;
            kill9(pid);
            if !wait_gone(sess, "agent") {
                return Err("agent still alive 5 s after SIGKILL".into());
            }
            sess.lab
                .carrier(&flap.name, false)
                .map_err(|e| e.to_string())?;
            std::thread::sleep(Duration::from_millis(300));
            let t_before = Instant::now();
            sess.start_manager()?;
            let forked =
                sys::mtime_instant(&sess.lab.dir().join("pids/agent.pid")).unwrap_or(t_before);
            let withdrawn = sess
                .obs
                .wait_endpoints(forked, Duration::from_secs(5), sess.flap_withdrawn())
                .map(|t| ms(t.saturating_duration_since(forked)));
            let steady4 = IpAddr::from(sess.steady.addr4);
            let steady_closed: Vec<String> = sess
                .obs
                .events_between(forked, Instant::now())
                .iter()
                .filter(|(_, e)| {
                    e.token == Some(self.live.token)
                        && e.kind == EventKind::SubClosed
                        && e.saddr == Some(steady4)
                })
                .map(|(_, e)| format!("{e}"))
                .collect();
            sess.lab
                .carrier(&flap.name, true)
                .map_err(|e| e.to_string())?;
            let back = wait_subflow(
                sess,
                &mut self.sf,
                &flap,
                Duration::from_millis(self.args.recover_ms),
            );
            let ok_bound = withdrawn.is_some_and(|w| w <= bound.as_secs_f64() * 1000.0);
            Ok(Restart {
                what: format!("agent SIGKILL, {} carrier cut while it was down, restart", flap.name),
                healthy_untouched: steady_closed.is_empty() && back.is_some() && ok_bound,
                resync_ms: withdrawn,
                detail: format!(
                    "restart → {} endpoint withdrawn: {}; {} subflows closed: {steady_closed:?}; carrier back → subflow back: {}",
                    flap.name,
                    withdrawn.map_or("never within 5 s".into(), |w| format!("{w:.1} ms")),
                    sess.steady.name,
                    back.map_or("never".into(), |b| format!("{b:.1} ms"))
                ),
            })
        })();
        out.push(r.unwrap_or_else(|e| {
            failed_restart("agent SIGKILL + carrier cut while down + restart", e)
        }));
        out
    }

    /// NetworkManager SIGKILL; a carrier cut while it is gone (the agent must go on in
    /// kernel-only mode); NetworkManager back (nothing of the live connection may change);
    /// then `nmcli connection down` right away, which the agent must follow within the bound.
    pub(super) fn nm_round(&mut self) -> Restart {
        let sess = self.sess;
        let bound = Duration::from_millis(self.args.resync_ms);
        let r = (|| -> Result<Restart, String> {
            self.settle()?;
            let flap = sess.flap.clone();
            sess.lab.nm_kill().map_err(|e| e.to_string())?;
            // Without NetworkManager: a cut must still withdraw, carrier back restore.
            let t_cut = Instant::now();
            sess.lab
                .carrier(&flap.name, false)
                .map_err(|e| e.to_string())?;
            let no_nm_withdraw = sess
                .obs
                .wait_endpoints(t_cut, Duration::from_secs(5), sess.flap_withdrawn())
                .map(|t| ms(t - t_cut));
            std::thread::sleep(Duration::from_millis(300));
            sess.lab
                .carrier(&flap.name, true)
                .map_err(|e| e.to_string())?;
            let no_nm_back = wait_subflow(
                sess,
                &mut self.sf,
                &flap,
                Duration::from_millis(self.args.recover_ms),
            );
            self.settle()?;
            let eps = sess.obs.endpoints();
            let t_start = Instant::now();
            sess.lab.nm_start().map_err(|e| e.to_string())?;
            let t_ready = Instant::now();
            std::thread::sleep(Duration::from_secs(1));
            let churn = self.churn(t_start, Instant::now());
            let eps_after = sess.obs.endpoints();
            // Re-synced with NetworkManager: it follows a deactivation right away.
            let t_down = Instant::now();
            sess.lab
                .connection(&flap.name, false)
                .map_err(|e| e.to_string())?;
            let follow = sess
                .obs
                .wait_endpoints(t_down, Duration::from_secs(5), sess.flap_withdrawn())
                .map(|t| ms(t - t_down));
            sess.lab
                .connection(&flap.name, true)
                .map_err(|e| e.to_string())?;
            let back = wait_subflow(
                sess,
                &mut self.sf,
                &flap,
                Duration::from_millis(self.args.recover_ms),
            );
            let within = |v: Option<f64>| v.is_some_and(|w| w <= bound.as_secs_f64() * 1000.0);
            let untouched = churn.is_empty() && eps == eps_after;
            Ok(Restart {
                what: "NetworkManager SIGKILL + restart".into(),
                healthy_untouched: untouched && within(no_nm_withdraw) && no_nm_back.is_some() && within(follow) && back.is_some(),
                resync_ms: follow,
                detail: format!(
                    "without NM: carrier cut → withdrawn {}, back → subflow {}; NM start took {:.0} ms; \
                     live-connection events while NM came back: {churn:?}; endpoints {}; \
                     then nmcli down → withdrawn {}; up → subflow {}",
                    fmt_opt(no_nm_withdraw),
                    fmt_opt(no_nm_back),
                    ms(t_ready - t_start),
                    if eps == eps_after { "unchanged".to_string() } else { format!("changed {eps:?} -> {eps_after:?}") },
                    fmt_opt(follow),
                    fmt_opt(back)
                ),
            })
        })();
        r.unwrap_or_else(|e| failed_restart("NetworkManager SIGKILL + restart", e))
    }
}
