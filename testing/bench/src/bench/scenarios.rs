// SPDX-License-Identifier: MIT OR Apache-2.0
//! The measured scenarios of one session: manager start, carrier loss, reset after a join,
//! flaps, throughput across a cut, and a link-event storm.

use super::*;

impl Session<'_> {
    /// Manager started (forked) → endpoints on every uplink. The manager is stopped, the
    /// endpoints flushed, and the manager started again for every repetition.
    pub fn start_rep(&self, rep: usize, r: &mut ContenderResult) -> Result<(), String> {
        self.stop_manager()?;
        self.lab
            .dev_ip(&["mptcp", "endpoint", "flush"])
            .map_err(|e| e.to_string())?;
        self.obs
            .wait_endpoints(Instant::now(), Duration::from_secs(2), |e| e.is_empty())
            .ok_or("endpoints still there after flush")?;
        let pid_file = self.pid_file();
        let pred = self.all_present();
        let value = std::thread::scope(|sc| -> Result<(Value, Option<Value>), String> {
            let starter = sc.spawn(|| self.start_manager());
            let end = Instant::now() + Duration::from_secs(30);
            let forked = loop {
                if let Some(t) = sys::mtime_instant(&pid_file) {
                    break Some(t);
                }
                if Instant::now() > end || starter.is_finished() && !pid_file.exists() {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            let v = forked.map(|t0| {
                let eps = Value::from_opt(
                    self.obs
                        .wait_endpoints(t0, self.timeout, &pred)
                        .map(|t| since_ms(t, t0)),
                );
                let ready = self.notify.as_ref().map(|n| {
                    Value::from_opt(n.wait_ready(t0, self.timeout).map(|t| since_ms(t, t0)))
                });
                (eps, ready)
            });
            let started = starter
                .join()
                .map_err(|_| "manager start thread panicked".to_string())?;
            started?;
            v.ok_or_else(|| "the lab recorded no pid for the manager".into())
        })?;
        r.push("start_endpoints_ms", rep, value.0, None);
        if let Some(ready) = value.1 {
            r.push("start_ready_ms", rep, ready, None);
        }
        Ok(())
    }

    /// Carrier cut from the far side of the flapped uplink with a live connection: time to
    /// the endpoint withdrawal; the cut lasts until 1 s after that (or the time limit);
    /// then carrier back: time to the endpoint's return and to the new join.
    pub fn carrier_rep(&self, rep: usize, r: &mut ContenderResult) -> Result<(), String> {
        self.ensure_steady()?;
        let live = self.live()?;
        if !live.joined {
            r.add_fact("live_connection_without_join", 1.0);
        }
        let flap4 = IpAddr::from(self.flap.addr4);
        let t0 = Instant::now();
        self.lab
            .carrier(&self.flap.name, false)
            .map_err(|e| e.to_string())?;
        let withdrawn = self
            .obs
            .wait_endpoints(t0, self.timeout, self.flap_withdrawn());
        r.push(
            "carrier_withdraw_ms",
            rep,
            Value::from_opt(withdrawn.map(|t| since_ms(t, t0))),
            None,
        );
        if withdrawn.is_some() {
            std::thread::sleep(Duration::from_secs(1));
        }
        let t1 = Instant::now();
        self.lab
            .carrier(&self.flap.name, true)
            .map_err(|e| e.to_string())?;
        let back = if withdrawn.is_some() {
            Value::from_opt(
                self.obs
                    .wait_endpoints(t1, self.timeout, self.flap_present())
                    .map(|t| since_ms(t, t1)),
            )
        } else {
            Value::NotApplicable
        };
        r.push(
            "carrier_back_endpoint_ms",
            rep,
            back,
            withdrawn.is_none().then(|| "never withdrawn".to_string()),
        );
        let sf = self
            .obs
            .wait_event(t1, self.timeout, |e| {
                is_sub_established(e, live.token, flap4)
            })
            .map(|(t, _)| since_ms(t, t1));
        let failed_joins = self.join_failures(live.token, t1);
        let note = match (sf, withdrawn) {
            (None, None) => Some("old subflow kept, no new join".to_string()),
            _ if !failed_joins.is_empty() => Some(failed_joins),
            _ => None,
        };
        r.push("carrier_back_subflow_ms", rep, Value::from_opt(sf), note);
        self.note_collateral(r, &live, t0);
        Ok(())
    }

    /// `ss -K` on the server for the flapped uplink's subflow of a live connection → a new
    /// join from that uplink.
    pub fn reset_rep(&self, rep: usize, r: &mut ContenderResult) -> Result<(), String> {
        self.ensure_steady()?;
        let live = self.live()?;
        if !live.joined {
            r.add_fact("live_connection_without_join", 1.0);
            r.push(
                "reset_reestablish_ms",
                rep,
                Value::NotApplicable,
                Some("the live connection never joined over the flapped uplink".into()),
            );
            return Ok(());
        }
        // A subflow that lives on for a while and is then reset, as in the field. A join
        // reset the moment it is up is what a middlebox that kills joins does, and a
        // manager is right to back off from that (the agent does, for 1 s of life).
        if let Some(t) = live.joined_at {
            sleep_until(t + RESET_AFTER_JOIN);
        }
        let flap4 = IpAddr::from(self.flap.addr4);
        let seen = self.flap.seen4.to_string();
        let sport = format!(":{HOLDER_PORT}");
        let t0 = Instant::now();
        self.lab
            .kill_subflows(&["dst", &seen, "and", "sport", "=", &sport])
            .map_err(|e| e.to_string())?;
        if self
            .obs
            .wait_event(t0, Duration::from_secs(2), |e| {
                is_sub_closed(e, live.token, flap4)
            })
            .is_none()
        {
            return Err("ss -K did not close the subflow".into());
        }
        let re = self
            .obs
            .wait_event(t0, self.timeout, |e| {
                is_sub_established(e, live.token, flap4)
            })
            .map(|(t, _)| since_ms(t, t0));
        let failed = self.join_failures(live.token, t0);
        // The first SF_CLOSED is the reset itself.
        let retries = failed.matches("SF_CLOSED").count().saturating_sub(1);
        let note = (retries > 0).then(|| format!("{retries} failed re-join(s): {failed}"));
        r.push("reset_reestablish_ms", rep, Value::from_opt(re), note);
        self.note_collateral(r, &live, t0);
        Ok(())
    }

    /// `nmcli connection down/up` of the flapped uplink, `n` times, with one live
    /// connection: does the join come back after each `up`?
    pub fn flaps(&self, n: usize, r: &mut ContenderResult) -> Result<(), String> {
        self.ensure_steady()?;
        let mut live = self.live()?;
        let mut live_since = Instant::now();
        let flap4 = IpAddr::from(self.flap.addr4);
        for i in 0..n {
            if live.holder.error().is_some() {
                self.note_collateral(r, &live, live_since);
                live = self.live()?;
                live_since = Instant::now();
            }
            let t_down = Instant::now();
            self.lab
                .connection(&self.flap.name, false)
                .map_err(|e| e.to_string())?;
            let gone =
                self.obs
                    .wait_endpoints(t_down, Duration::from_secs(5), self.flap_withdrawn());
            if gone.is_none() {
                r.add_fact("flap_endpoint_not_withdrawn", 1.0);
            }
            std::thread::sleep(Duration::from_millis(300));
            let t_up = Instant::now();
            self.lab
                .connection(&self.flap.name, true)
                .map_err(|e| e.to_string())?;
            let join = self
                .obs
                .wait_event(t_up, self.timeout, |e| {
                    is_sub_established(e, live.token, flap4)
                })
                .map(|(t, _)| since_ms(t, t_up));
            let errs = self.join_failures(live.token, t_up);
            let note = match (join, errs.is_empty()) {
                (None, true) => Some("no join".to_string()),
                (_, false) => Some(errs),
                (Some(_), true) => None,
            };
            r.push("flap_join_ms", i, Value::from_opt(join), note);
            if (i + 1) % 10 == 0 {
                log(format!("  {}: {} of {n} flaps", self.c.id(), i + 1));
            }
        }
        self.note_collateral(r, &live, live_since);
        Ok(())
    }

    /// Upload over both uplinks; the flapped uplink's carrier is cut from `cut_start_s` to
    /// `cut_end_s`. The receiver's per-second figures make the timeline.
    pub fn throughput_rep(&self, rep: usize, r: &mut ContenderResult) -> Result<(), String> {
        self.ensure_steady()?;
        let p = &self.s.params;
        let already = self.traffic_srv.finished().len();
        let t_start = Instant::now();
        let client = self
            .lab
            .spawn_traffic_client(ClientConfig::upload_for(
                self.lab.server_sockaddr(false, TRAFFIC_PORT),
                p.throughput_seconds,
            ))
            .map_err(|e| e.to_string())?;
        sleep_until(t_start + Duration::from_secs(p.cut_start_s));
        let t_cut = Instant::now();
        let cut = self.lab.carrier(&self.flap.name, false);
        sleep_until(t_start + Duration::from_secs(p.cut_end_s));
        let t_back = Instant::now();
        let back = self.lab.carrier(&self.flap.name, true);
        cut.and(back).map_err(|e| e.to_string())?;
        let sender = client
            .join()
            .map_err(|_| "traffic client panicked".to_string())?
            .map_err(|e| e.to_string())?;
        let finished = self
            .traffic_srv
            .wait_finished(already + 1, Duration::from_secs(60))
            .ok_or("the server saw no finished transfer")?;
        let recv = finished[already..]
            .iter()
            .rev()
            .find(|t| t.role == Role::Receiver)
            .ok_or("no receiver-side transfer")?
            .clone();
        let mbps: Vec<f64> = recv
            .intervals
            .iter()
            .filter(|iv| iv.end - iv.start >= 0.5)
            .map(|iv| (iv.mbps() * 1000.0).round() / 1000.0)
            .collect();
        let cut_start_s = t_cut.duration_since(t_start).as_secs_f64();
        let cut_end_s = t_back.duration_since(t_start).as_secs_f64();
        let m = window_metrics(&mbps, cut_start_s, cut_end_s);
        r.push("throughput_before_mbps", rep, m.before, None);
        r.push("throughput_during_mbps", rep, m.during, None);
        r.push("throughput_after_mbps", rep, m.after, None);
        r.push("throughput_recovery_s", rep, m.recovery, None);
        let error = sender.error.clone().or(recv.error.clone());
        r.timelines.push(Timeline {
            rep,
            mbps,
            cut_start_s,
            cut_end_s,
            ok: error.is_none(),
            error,
        });
        Ok(())
    }

    /// Resident memory of the manager (NetworkManager, mptcpd or the agent) idle, steady,
    /// with its endpoints in place: every contender in the same run, so the figures sit side
    /// by side.
    pub fn idle_memory(&self, r: &mut ContenderResult) -> Result<(), String> {
        self.ensure_steady()?;
        let pid = self.manager_pid().ok_or("manager not running")?;
        std::thread::sleep(Duration::from_secs(2));
        let (idle, _) = sys::rss_kib(pid).ok_or("no /proc status for the manager")?;
        let (anon, file) = sys::rss_split_kib(pid).ok_or("no /proc status for the manager")?;
        r.push("rss_idle_kib", 0, Value::Num(idle as f64), None);
        r.push("rss_idle_anon_kib", 0, Value::Num(anon as f64), None);
        r.push("rss_idle_file_kib", 0, Value::Num(file as f64), None);
        Ok(())
    }

    /// Resident memory of the agent under a storm of `events` link events (the flapped
    /// uplink's carrier toggled from the far side), after [`Self::idle_memory`].
    pub fn storm(&self, events: usize, r: &mut ContenderResult) -> Result<(), String> {
        self.ensure_steady()?;
        let pid = self.manager_pid().ok_or("manager not running")?;
        std::thread::sleep(Duration::from_secs(2));
        let (idle, _) = sys::rss_kib(pid).ok_or("no /proc status for the manager")?;

        // One `ip -batch` of far-side carrier toggles. The kernel's linkwatch coalesces
        // toggles that come faster than it runs, so batches are repeated until the device
        // namespace has seen `events` link messages for the uplink (bounded in time).
        let batch = self.lab.dir().join("storm.batch");
        let mut text = String::new();
        for _ in 0..1000 {
            text.push_str(&format!("link set {} down\n", self.flap.peer_if));
            text.push_str(&format!("link set {} up\n", self.flap.peer_if));
        }
        std::fs::write(&batch, text).map_err(|e| e.to_string())?;

        let mut mon = Command::new("ip")
            .args(["-n", self.lab.dev_ns(), "-o", "monitor", "link"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("ip monitor: {e}"))?;
        let seen = Arc::new(AtomicU64::new(0));
        let counter = {
            let seen = Arc::clone(&seen);
            let out = mon.stdout.take().ok_or("ip monitor: no stdout")?;
            // `3: wwan0@if5: <...>` for a veth, `3: wwan0: <...>` otherwise.
            let (name, veth) = (
                format!(": {}:", self.flap.name),
                format!(": {}@", self.flap.name),
            );
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if line.contains(&name) || line.contains(&veth) {
                        seen.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        let cpu0 = sys::cpu_ms(pid);
        let t0 = Instant::now();
        let mut peak = idle;
        let mut toggles = 0usize;
        let limit = t0 + Duration::from_secs(300);
        let status: Result<(), String> = loop {
            if seen.load(Ordering::Relaxed) >= events as u64 {
                break Ok(());
            }
            if Instant::now() >= limit {
                break Err(format!(
                    "only {} link events after 300 s",
                    seen.load(Ordering::Relaxed)
                ));
            }
            let mut storm = match Command::new("ip")
                .args(["-n", &self.flap.peer_ns, "-batch"])
                .arg(&batch)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(c) => c,
                Err(e) => break Err(format!("ip -batch: {e}")),
            };
            let st = loop {
                if let Some((rss, _)) = sys::rss_kib(pid) {
                    peak = peak.max(rss);
                }
                match storm.try_wait() {
                    Ok(Some(st)) => break Ok(st),
                    Ok(None) if Instant::now() < limit => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Ok(None) => {
                        let _ = storm.kill();
                        let _ = storm.wait();
                        break Err("ip -batch still running after 300 s".to_string());
                    }
                    Err(e) => break Err(e.to_string()),
                }
            };
            match st {
                Ok(st) if st.success() => toggles += 2000,
                Ok(st) => break Err(format!("ip -batch failed: {st}")),
                Err(e) => break Err(e),
            }
        };
        let t_end = Instant::now();
        // Right again = present and staying so for 500 ms (not one of the storm's last flips).
        let reconverge = self
            .obs
            .wait_endpoints_stable(
                t_end,
                self.timeout,
                Duration::from_millis(500),
                self.flap_present(),
            )
            .map(|t| since_ms(t, t_end));
        // Let the tail of the storm drain before reading the figures.
        let settle = t_end + Duration::from_secs(2);
        while Instant::now() < settle {
            if let Some((rss, _)) = sys::rss_kib(pid) {
                peak = peak.max(rss);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let cpu1 = sys::cpu_ms(pid);
        let after = sys::rss_kib(pid);
        let _ = mon.kill();
        let _ = mon.wait();
        let _ = counter.join();
        status?;
        let (after, hwm) = after.ok_or("the manager died during the storm")?;
        r.push("rss_peak_storm_kib", 0, Value::Num(peak as f64), None);
        r.push("rss_after_storm_kib", 0, Value::Num(after as f64), None);
        if let (Some(a), Some(b)) = (cpu0, cpu1) {
            r.push("storm_cpu_ms", 0, Value::Num(b - a), None);
        }
        r.push("storm_reconverge_ms", 0, Value::from_opt(reconverge), None);
        r.add_fact("storm_far_side_toggles", toggles as f64);
        r.add_fact(
            "storm_link_events_seen_in_device_ns",
            seen.load(Ordering::Relaxed) as f64,
        );
        r.add_fact("storm_seconds", ms(t_end - t0) / 1000.0);
        r.add_fact("rss_hwm_kib", hwm as f64);
        Ok(())
    }

    /// Copy the lab's logs (NM, mptcpd, the agent) into the results.
    pub fn save_logs(&self, dir: &Path) {
        let _ = std::fs::create_dir_all(dir);
        if let Ok(rd) = std::fs::read_dir(self.lab.dir().join("log")) {
            for e in rd.flatten() {
                let _ = std::fs::copy(e.path(), dir.join(e.file_name()));
            }
        }
        let _ = std::fs::write(
            dir.join("endpoints-at-end.txt"),
            format!("{:#?}\n", self.obs.endpoints()),
        );
    }
}
