// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the soak looks at and does in the lab: subflows, links, routing, endpoints, processes.

use super::*;

/// The live connection's subflows, kept up to date from the observer's events.
pub(super) struct Subflows {
    pub(super) token: u32,
    pub(super) cursor: usize,
    pub(super) live: BTreeSet<(IpAddr, u16)>,
    pub(super) closed: bool,
}

impl Subflows {
    pub(super) fn new(token: u32) -> Self {
        Subflows {
            token,
            cursor: 0,
            live: BTreeSet::new(),
            closed: false,
        }
    }

    pub(super) fn update(&mut self, sess: &Session) {
        for (_, e) in sess.obs.events_from(&mut self.cursor) {
            if e.token != Some(self.token) {
                continue;
            }
            let key = match (e.saddr, e.sport) {
                (Some(a), Some(p)) => (a, p),
                _ => continue,
            };
            match e.kind {
                EventKind::Established | EventKind::SubEstablished => {
                    self.live.insert(key);
                }
                EventKind::SubClosed => {
                    self.live.remove(&key);
                }
                EventKind::Closed => {
                    self.live.clear();
                    self.closed = true;
                }
                _ => {}
            }
        }
    }

    /// Live subflows from the uplink's configured IPv4 address.
    pub(super) fn count_from(&self, u: &Uplink) -> usize {
        let a = IpAddr::from(u.addr4);
        self.live.iter().filter(|(s, _)| *s == a).count()
    }
}

/// Wait (bounded) until the live connection has a subflow from `u`'s configured address.
pub(super) fn wait_subflow(
    sess: &Session,
    sf: &mut Subflows,
    u: &Uplink,
    bound: Duration,
) -> Option<f64> {
    let t0 = Instant::now();
    loop {
        sf.update(sess);
        if sf.count_from(u) > 0 {
            return Some(ms(t0.elapsed()));
        }
        if t0.elapsed() >= bound || sf.closed {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub(super) fn other_addr(u: &Uplink) -> Ipv4Addr {
    let o = u.addr4.octets();
    Ipv4Addr::new(o[0], o[1], o[2], o[3].wrapping_add(1))
}

pub(super) fn set_link(sess: &Session, u: &Uplink, kind: FlapKind, up: bool) -> Result<(), String> {
    let r = match kind {
        FlapKind::Carrier => sess.lab.carrier(&u.name, up),
        FlapKind::Admin => sess.lab.link(&u.name, up),
        FlapKind::Nmcli => sess.lab.connection(&u.name, up),
        FlapKind::Address => {
            // A runtime change of the applied connection: NM swaps the address only.
            let addr = if up { u.addr4 } else { other_addr(u) };
            sess.lab
                .nmcli(&[
                    "device",
                    "modify",
                    &u.name,
                    "ipv4.addresses",
                    &format!("{addr}/24"),
                ])
                .map(drop)
        }
    };
    r.map_err(|e| {
        format!(
            "{kind:?} {} {}: {e}",
            u.name,
            if up { "up" } else { "down" }
        )
    })
}

/// Normalised routing state: rules and routes of every table but `local`.
pub(super) fn routing(sess: &Session) -> BTreeMap<String, Vec<String>> {
    let mut m = BTreeMap::new();
    for (key, args) in [
        ("rules4", vec!["-4", "rule", "show"]),
        ("rules6", vec!["-6", "rule", "show"]),
        ("routes4", vec!["-4", "route", "show", "table", "all"]),
        ("routes6", vec!["-6", "route", "show", "table", "all"]),
    ] {
        let text = sess.lab.dev_ip(&args).unwrap_or_else(|e| e.to_string());
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| {
                !l.contains("table local")
                    && !l.starts_with("fe80")
                    && !l.starts_with("multicast")
                    && !l.starts_with("local ")
            })
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        lines.sort();
        m.insert(key.to_string(), lines);
    }
    m
}

pub(super) fn routing_diff(
    a: &BTreeMap<String, Vec<String>>,
    b: &BTreeMap<String, Vec<String>>,
) -> String {
    let mut out = String::new();
    for (k, va) in a {
        let vb = b.get(k).cloned().unwrap_or_default();
        let sa: BTreeSet<&String> = va.iter().collect();
        let sb: BTreeSet<&String> = vb.iter().collect();
        for gone in sa.difference(&sb) {
            let _ = write!(out, "{k}: missing '{gone}'; ");
        }
        for extra in sb.difference(&sa) {
            let _ = write!(out, "{k}: extra '{extra}'; ");
        }
    }
    out
}

/// The endpoints the config asks for: every uplink's v4 and v6 address, `subflow`.
pub(super) fn endpoints_exact(eps: &[Ep], uplinks: &[Uplink]) -> Result<(), String> {
    const SUBFLOW: u32 = 1 << 1;
    const SIGNAL_BACKUP_FULLMESH: u32 = 1 | (1 << 2) | (1 << 3);
    let want: BTreeSet<IpAddr> = uplinks
        .iter()
        .flat_map(|u| [IpAddr::from(u.addr4), IpAddr::from(u.addr6)])
        .collect();
    let have: BTreeSet<IpAddr> = eps.iter().map(|e| e.addr).collect();
    let mut problems = Vec::new();
    if have != want || eps.len() != want.len() {
        problems.push(format!("addresses {have:?} (want {want:?}, one each)"));
    }
    for e in eps {
        if e.flags & SUBFLOW == 0 || e.flags & SIGNAL_BACKUP_FULLMESH != 0 {
            problems.push(format!(
                "{} has flags {:#x} (want subflow)",
                e.addr, e.flags
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

pub(super) fn ss_lines(sess: &Session, filter: &[&str]) -> Vec<String> {
    let mut args = vec!["-tnH"];
    args.extend_from_slice(filter);
    sess.lab
        .exec(Node::Device, "ss", &args)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .filter(|l| !l.trim().is_empty())
        .collect()
}

pub(super) fn kill9(pid: u32) {
    if let Ok(p) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::SIGKILL);
    }
}

pub(super) fn wait_gone(sess: &Session, name: &str) -> bool {
    mptcp_lab::wait_for(Duration::from_secs(5), || {
        sess.lab.pid(name).is_none().then_some(())
    })
    .is_some()
}
