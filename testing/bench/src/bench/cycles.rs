// SPDX-License-Identifier: MIT OR Apache-2.0
//! Carrier cycles with one live connection: carrier back → subflow re-established on that
//! uplink, after cuts shorter and longer than NetworkManager's carrier-wait, and flaps of the
//! uplink that carries the initial subflow. Also what each cycle costs beyond the cut's own
//! subflow: extra subflow closes on either uplink, and endpoint churn (the add–delete–add
//! seen when NetworkManager re-activates a device through IP_CHECK).

use mptcp_genl::PmEvent;

use super::*;

/// After carrier back (or the join, if later), how long a cycle keeps watching: long enough
/// for NetworkManager's re-activation after a long cut to be over, and any churn with it.
const SETTLE: Duration = Duration::from_secs(3);

/// One class of carrier cycles.
pub struct Cycles<'u> {
    /// Metric and fact prefix, e.g. `cb_short`.
    pub prefix: &'static str,
    /// The uplink whose carrier is cut.
    pub cut: &'u Uplink,
    /// The other uplink: none of its subflows may close.
    pub other: &'u Uplink,
    /// How long the carrier stays off.
    pub length: Duration,
}

/// Closes of `token`'s subflows from `saddr` at or after `t0`, beyond the cut's own: every
/// close except one of a subflow already open at `t0`. `events` must start no later than
/// the connection.
pub fn extra_closes(
    events: &[(Instant, PmEvent)],
    token: u32,
    saddr: IpAddr,
    t0: Instant,
) -> usize {
    let mut open: Vec<Option<u16>> = Vec::new();
    let mut extra = 0;
    let mine = events
        .iter()
        .filter(|(_, e)| e.token == Some(token) && e.saddr == Some(saddr));
    for (t, e) in mine {
        match e.kind {
            // CREATED and ESTABLISHED carry the initial subflow.
            EventKind::Created | EventKind::Established | EventKind::SubEstablished
                if *t < t0 && !open.contains(&e.sport) =>
            {
                open.push(e.sport)
            }
            EventKind::SubClosed if *t < t0 => open.retain(|p| *p != e.sport),
            EventKind::SubClosed => match open.iter().position(|p| *p == e.sport) {
                Some(i) => {
                    open.remove(i);
                }
                None => extra += 1,
            },
            _ => {}
        }
    }
    extra
}

/// Closes of `token`'s subflows from `saddr` at or after `t0` (on the uplink that was not
/// cut, every one is extra).
pub fn closes_since(
    events: &[(Instant, PmEvent)],
    token: u32,
    saddr: IpAddr,
    t0: Instant,
) -> usize {
    events
        .iter()
        .filter(|(t, e)| *t >= t0 && is_sub_closed(e, token, saddr))
        .count()
}

/// Changes of `addr`'s presence in the endpoint table beyond one withdrawal and one add.
/// `tables` starts with the table in force at the cycle's start.
pub fn extra_endpoint_changes(tables: &[(Instant, Vec<Ep>)], addr: IpAddr) -> usize {
    let present: Vec<bool> = tables
        .iter()
        .map(|(_, eps)| eps.iter().any(|e| e.addr == addr))
        .collect();
    let changes = present.windows(2).filter(|w| w[0] != w[1]).count();
    changes.saturating_sub(2)
}

impl Session<'_> {
    /// `n` carrier cycles of one class with one live connection (a new one if it is lost).
    /// Per cycle: carrier back → `SF_ESTABLISHED` from the cut uplink's address ("n/a" when the
    /// old subflow lived through the cut and none was opened); summed over
    /// the cycles: extra subflow closes, extra endpoint changes, connections lost.
    pub fn carrier_cycles(
        &self,
        k: &Cycles<'_>,
        n: usize,
        r: &mut ContenderResult,
    ) -> Result<(), String> {
        let p = k.prefix;
        let (closes, churn, lost) = (
            format!("{p}_extra_closes"),
            format!("{p}_endpoint_churn"),
            format!("{p}_connections_lost"),
        );
        // Zero is a result: the rows show it as such, not as a blank.
        for f in [&closes, &churn, &lost] {
            r.add_fact(f, 0.0);
        }
        let cut4 = IpAddr::from(k.cut.addr4);
        let cut6 = IpAddr::from(k.cut.addr6);
        let other4 = IpAddr::from(k.other.addr4);
        self.ensure_steady()?;
        let mut since = Instant::now();
        let mut live = self.live()?;
        for i in 0..n {
            self.ensure_steady()?;
            if live.holder.error().is_some() {
                since = Instant::now();
                live = self.live()?;
            }
            let token = live.token;
            let t0 = Instant::now();
            self.lab
                .carrier(&k.cut.name, false)
                .map_err(|e| e.to_string())?;
            sleep_until(t0 + k.length);
            let t1 = Instant::now();
            self.lab
                .carrier(&k.cut.name, true)
                .map_err(|e| e.to_string())?;
            let back = self
                .obs
                .wait_event(t1, self.timeout, |e| is_sub_established(e, token, cut4))
                .map(|(t, _)| t);
            let end = back.unwrap_or(t1).max(t1) + SETTLE;
            sleep_until(end);
            let evs = self.obs.events_between(since, end);
            let extra = extra_closes(&evs, token, cut4, t0) + closes_since(&evs, token, other4, t0);
            let tables = self.obs.endpoints_between(t0, end);
            let changes =
                extra_endpoint_changes(&tables, cut4) + extra_endpoint_changes(&tables, cut6);
            let gone = evs
                .iter()
                .any(|(t, e)| *t >= t0 && e.kind == EventKind::Closed && e.token == Some(token))
                || live.holder.error().is_some();
            let old_closed = evs
                .iter()
                .any(|(t, e)| *t >= t0 && is_sub_closed(e, token, cut4));
            let note = match (back, gone, old_closed) {
                (_, true, _) => Some("live connection lost".to_string()),
                (None, false, false) => Some("old subflow kept, no new join".to_string()),
                _ if extra > 0 || changes > 0 => Some(format!(
                    "{extra} extra subflow close(s), {changes} extra endpoint change(s)"
                )),
                _ => None,
            };
            // A subflow that lived through the cut was never lost: nothing to re-establish.
            let value = match (back, gone, old_closed) {
                (None, false, false) => Value::NotApplicable,
                _ => Value::from_opt(back.map(|t| since_ms(t, t1))),
            };
            r.push(&format!("{p}_subflow_ms"), i, value, note);
            r.add_fact(&closes, extra as f64);
            r.add_fact(&churn, changes as f64);
            if gone {
                r.add_fact(&lost, 1.0);
            }
        }
        r.add_fact(&format!("{p}_cycles"), n as f64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const TOKEN: u32 = 7;

    fn ev(kind: EventKind, saddr: [u8; 4], sport: u16) -> PmEvent {
        let mut e = PmEvent::new(kind);
        e.token = Some(TOKEN);
        e.saddr = Some(IpAddr::from(Ipv4Addr::from(saddr)));
        e.sport = Some(sport);
        e
    }

    const WWAN: [u8; 4] = [10, 2, 0, 2];
    const WLAN: [u8; 4] = [10, 1, 0, 2];

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn the_cuts_own_close_is_not_extra_even_when_it_comes_late() {
        let t = Instant::now();
        let wwan = IpAddr::from(Ipv4Addr::from(WWAN));
        let evs = vec![
            (at(t, 0), ev(EventKind::Created, WLAN, 40000)),
            (at(t, 1), ev(EventKind::Established, WLAN, 40000)),
            (at(t, 5), ev(EventKind::SubEstablished, WWAN, 50000)),
            // The cut at 100; the old subflow's close lingers past carrier back.
            (at(t, 1900), ev(EventKind::SubEstablished, WWAN, 50001)),
            (at(t, 2500), ev(EventKind::SubClosed, WWAN, 50000)),
        ];
        assert_eq!(extra_closes(&evs, TOKEN, wwan, at(t, 100)), 0);
    }

    #[test]
    fn add_delete_add_closes_the_new_subflow_once() {
        let t = Instant::now();
        let wwan = IpAddr::from(Ipv4Addr::from(WWAN));
        let evs = vec![
            (at(t, 5), ev(EventKind::SubEstablished, WWAN, 50000)),
            (at(t, 150), ev(EventKind::SubClosed, WWAN, 50000)),
            (at(t, 7600), ev(EventKind::SubEstablished, WWAN, 50001)),
            (at(t, 7650), ev(EventKind::SubClosed, WWAN, 50001)),
            (at(t, 7740), ev(EventKind::SubEstablished, WWAN, 50002)),
        ];
        assert_eq!(extra_closes(&evs, TOKEN, wwan, at(t, 100)), 1);
        // A failed join (closed, never established) is extra too.
        let mut evs = evs;
        evs.push((at(t, 9000), ev(EventKind::SubClosed, WWAN, 50003)));
        assert_eq!(extra_closes(&evs, TOKEN, wwan, at(t, 100)), 2);
    }

    #[test]
    fn closes_before_the_cut_and_of_other_connections_do_not_count() {
        let t = Instant::now();
        let wlan = IpAddr::from(Ipv4Addr::from(WLAN));
        let mut other = ev(EventKind::SubClosed, WLAN, 40001);
        other.token = Some(TOKEN + 1);
        let evs = vec![
            (at(t, 0), ev(EventKind::Created, WLAN, 40000)),
            (at(t, 10), ev(EventKind::SubEstablished, WLAN, 40002)),
            (at(t, 20), ev(EventKind::SubClosed, WLAN, 40002)),
            (at(t, 200), other),
        ];
        assert_eq!(extra_closes(&evs, TOKEN, wlan, at(t, 100)), 0);
        assert_eq!(closes_since(&evs, TOKEN, wlan, at(t, 100)), 0);
        // The initial subflow closing during a cut: the cut's own on the cut uplink, extra
        // on the other one.
        let mut evs = evs;
        evs.push((at(t, 300), ev(EventKind::SubClosed, WLAN, 40000)));
        assert_eq!(extra_closes(&evs, TOKEN, wlan, at(t, 100)), 0);
        assert_eq!(closes_since(&evs, TOKEN, wlan, at(t, 100)), 1);
    }

    fn table(t: Instant, ms: u64, addrs: &[[u8; 4]]) -> (Instant, Vec<Ep>) {
        let eps = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| Ep {
                id: i as u8 + 1,
                addr: IpAddr::from(Ipv4Addr::from(*a)),
                flags: 0,
                ifindex: None,
            })
            .collect();
        (at(t, ms), eps)
    }

    #[test]
    fn one_withdrawal_and_one_add_is_no_churn() {
        let t = Instant::now();
        let wwan = IpAddr::from(Ipv4Addr::from(WWAN));
        let once = [
            table(t, 0, &[WLAN, WWAN]),
            table(t, 20, &[WLAN]),
            table(t, 1004, &[WLAN, WWAN]),
        ];
        assert_eq!(extra_endpoint_changes(&once, wwan), 0);
        // Never withdrawn: nothing to count either.
        assert_eq!(extra_endpoint_changes(&once[..1], wwan), 0);
        // A change of the other uplink's endpoint is not this one's churn.
        let other = [table(t, 0, &[WLAN, WWAN]), table(t, 5, &[WWAN])];
        assert_eq!(extra_endpoint_changes(&other, wwan), 0);
    }

    #[test]
    fn add_delete_add_on_ip_check_is_two_extra_changes() {
        let t = Instant::now();
        let wwan = IpAddr::from(Ipv4Addr::from(WWAN));
        let churn = [
            table(t, 0, &[WLAN, WWAN]),
            table(t, 20, &[WLAN]),
            table(t, 7504, &[WLAN, WWAN]),
            table(t, 7560, &[WLAN]),
            table(t, 7640, &[WLAN, WWAN]),
        ];
        assert_eq!(extra_endpoint_changes(&churn, wwan), 2);
    }
}
