// SPDX-License-Identifier: MIT OR Apache-2.0
//! The server: accept connections and serve each transfer on its own thread.

use super::*;

/// What a server reports while it runs.
#[derive(Debug, Clone)]
pub enum ServerEvent {
    Listening(SocketAddr),
    Interval {
        conn: u64,
        role: Role,
        interval: Interval,
    },
    Finished {
        conn: u64,
        transfer: Transfer,
    },
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: Vec<SocketAddr>,
    pub proto: Proto,
    /// Per-connection limits.
    pub limits: Limits,
}

/// Listening sockets plus the accept loop; each connection runs in its own thread.
#[derive(Debug)]
pub struct Server {
    listeners: Vec<TcpListener>,
    cfg: ServerConfig,
    next_conn: AtomicU64,
}

impl Server {
    pub fn bind(cfg: ServerConfig) -> io::Result<Server> {
        if cfg.listen.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no listen address",
            ));
        }
        let listeners = cfg
            .listen
            .iter()
            .map(|a| listen(a, cfg.proto))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Server {
            listeners,
            cfg,
            next_conn: AtomicU64::new(0),
        })
    }

    /// Actual addresses (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Accept and serve until `stop` is set, or until `max_conns` connections have been
    /// served (then it waits for them). Returns the finished transfers' success count.
    pub fn serve(
        &self,
        stop: &AtomicBool,
        max_conns: Option<u64>,
        sink: Arc<dyn Fn(ServerEvent) + Send + Sync>,
    ) -> io::Result<Vec<bool>> {
        for a in self.local_addrs() {
            sink(ServerEvent::Listening(a));
        }
        let results = std::sync::Mutex::new(Vec::new());
        let mut accepted = 0u64;
        std::thread::scope(|s| -> io::Result<()> {
            let mut pfds: Vec<libc::pollfd> = self
                .listeners
                .iter()
                .map(|l| libc::pollfd {
                    fd: l.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            while !stop.load(Ordering::Relaxed) && max_conns.map(|m| accepted < m).unwrap_or(true) {
                // SAFETY: pfds is a valid array of pollfd.
                let r = unsafe {
                    libc::poll(
                        pfds.as_mut_ptr(),
                        pfds.len() as libc::nfds_t,
                        POLL_SLICE.as_millis() as i32,
                    )
                };
                if r < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(e);
                }
                for l in &self.listeners {
                    match l.accept() {
                        Ok((stream, _)) => {
                            accepted += 1;
                            let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
                            let sink = Arc::clone(&sink);
                            let results = &results;
                            let limits = self.cfg.limits;
                            s.spawn(move || {
                                let t = serve_conn(stream, limits, Some(stop), conn, &sink);
                                if let Ok(mut r) = results.lock() {
                                    r.push(t.ok());
                                }
                                sink(ServerEvent::Finished { conn, transfer: t });
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        // A connection that died in the backlog: not the listener's fault.
                        Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok(())
        })?;
        Ok(results.into_inner().unwrap_or_default())
    }
}

pub(super) fn serve_conn(
    stream: TcpStream,
    limits: Limits,
    stop: Option<&AtomicBool>,
    conn: u64,
    sink: &Arc<dyn Fn(ServerEvent) + Send + Sync>,
) -> Transfer {
    let mut t = Transfer::new(Role::Receiver, Direction::Upload);
    t.local = stream.local_addr().ok();
    t.peer = stream.peer_addr().ok();
    if let Err(e) = stream.set_nonblocking(true) {
        t.error = Some(format!("set non-blocking: {e}"));
        return t;
    }
    let ctx = Ctx {
        stream: &stream,
        deadline: deadline_from(&limits),
        limits,
        stop,
    };
    let mut hb = [0u8; HEADER_LEN];
    let hdr_ctx = Ctx {
        deadline: ctx.deadline.min(Instant::now() + Duration::from_secs(10)),
        ..ctx
    };
    let hdr = match hdr_ctx
        .read_exact(&mut hb, "reading the header")
        .and_then(|got| {
            if got {
                Header::decode(&hb)
            } else {
                Err("closed before sending a header".into())
            }
        }) {
        Ok(h) => h,
        Err(e) => {
            t.error = Some(e);
            return t;
        }
    };
    let role = match hdr.direction {
        Direction::Upload => Role::Receiver,
        Direction::Download => Role::Sender,
    };
    t.role = role;
    t.direction = hdr.direction;
    let mut emit = |iv: &Interval| {
        sink(ServerEvent::Interval {
            conn,
            role,
            interval: *iv,
        })
    };
    exchange(&ctx, &hdr, role, &mut t, &mut emit);
    t
}
