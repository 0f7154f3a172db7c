// SPDX-License-Identifier: MIT OR Apache-2.0
//! A live MPTCP connection that trickles data (a counter stream, 64 bytes every 20 ms),
//! so the subflow events of one connection can be timed without a saturated queue in
//! front of every SYN. The server checks that the counters arrive in order: data that is
//! lost, duplicated or reordered across subflow churn is an error.

use std::{
    collections::BTreeMap,
    io::{self, Read, Write},
    net::{SocketAddr, TcpStream},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use mptcp_lab::traffic::{self, Proto};

const TICK: Duration = Duration::from_millis(20);
const COUNTERS_PER_TICK: u64 = 8;

/// What the server knows about one connection (by the client's address as it sees it).
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub bytes: u64,
    pub last_data: Option<Instant>,
    pub error: Option<String>,
    pub closed: bool,
}

/// The receiving end, in the server namespace; stops when dropped.
pub struct HolderServer {
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<BTreeMap<u64, Received>>>,
    thread: Option<JoinHandle<io::Result<io::Result<()>>>>,
}

fn poll_in(fd: i32, ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(r > 0)
}

impl HolderServer {
    pub fn start(ns: &str, addr: SocketAddr) -> io::Result<HolderServer> {
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(BTreeMap::new()));
        let (st, cs) = (Arc::clone(&stop), Arc::clone(&conns));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = mptcp_lab::netns::run_in_netns(ns, move || -> io::Result<()> {
            let listener = match traffic::listen(&addr, Proto::Mptcp) {
                Ok(l) => {
                    let _ = ready_tx.send(Ok(()));
                    l
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return Err(e);
                }
            };
            use std::os::fd::AsRawFd;
            let mut next = 0u64;
            std::thread::scope(|s| -> io::Result<()> {
                while !st.load(Ordering::Relaxed) {
                    if !poll_in(listener.as_raw_fd(), 100)? {
                        continue;
                    }
                    let stream = match listener.accept() {
                        Ok((s, _)) => s,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        Err(e) => return Err(e),
                    };
                    let id = next;
                    next += 1;
                    let (st2, cs2) = (&st, &cs);
                    s.spawn(move || serve(stream, id, st2, cs2));
                }
                Ok(())
            })
        })?;
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(io::Error::other(format!("holder server: {e}"))),
            Err(_) => return Err(io::Error::other("holder server did not start")),
        }
        Ok(HolderServer {
            stop,
            conns,
            thread: Some(thread),
        })
    }

    /// The most recent connection's state (connections are numbered in accept order).
    pub fn latest(&self) -> Option<Received> {
        self.conns
            .lock()
            .ok()
            .and_then(|c| c.values().next_back().cloned())
    }
}

impl Drop for HolderServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut s: TcpStream, id: u64, stop: &AtomicBool, conns: &Mutex<BTreeMap<u64, Received>>) {
    use std::os::fd::AsRawFd;
    let update = |f: &mut dyn FnMut(&mut Received)| {
        if let Ok(mut c) = conns.lock() {
            f(c.entry(id).or_default());
        }
    };
    update(&mut |_| {});
    let _ = s.set_nonblocking(true);
    let mut expect = 0u64;
    let mut partial: Vec<u8> = Vec::with_capacity(8);
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match poll_in(s.as_raw_fd(), 100) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) => {
                update(&mut |r| r.error = Some(format!("poll: {e}")));
                return;
            }
        }
        let n = match s.read(&mut buf) {
            Ok(0) => {
                update(&mut |r| r.closed = true);
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                update(&mut |r| r.error = Some(format!("read: {e}")));
                return;
            }
        };
        let mut bad = None;
        for &b in &buf[..n] {
            partial.push(b);
            if partial.len() == 8 {
                let mut w = [0u8; 8];
                w.copy_from_slice(&partial);
                partial.clear();
                let got = u64::from_be_bytes(w);
                if got != expect && bad.is_none() {
                    bad = Some(format!("counter {got} where {expect} was due"));
                }
                expect = got.wrapping_add(1);
            }
        }
        let now = Instant::now();
        update(&mut |r| {
            r.bytes += n as u64;
            r.last_data = Some(now);
            if r.error.is_none() {
                r.error = bad.clone();
            }
        });
    }
}

/// The sending end, in the device namespace; closes when dropped.
pub struct Holder {
    pub local: SocketAddr,
    stop: Arc<AtomicBool>,
    error: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Holder {
    /// Connect (MPTCP) from namespace `ns` and start trickling.
    pub fn connect(ns: &str, server: SocketAddr) -> io::Result<Holder> {
        let stop = Arc::new(AtomicBool::new(false));
        let error = Arc::new(Mutex::new(None));
        let (st, er) = (Arc::clone(&stop), Arc::clone(&error));
        let (tx, rx) = mpsc::channel();
        let thread = mptcp_lab::netns::run_in_netns(ns, move || {
            let stream = match traffic::connect(&server, Proto::Mptcp, Duration::from_secs(5))
                .and_then(|s| s.local_addr().map(|a| (s, a)))
            {
                Ok((s, a)) => {
                    let _ = tx.send(Ok(a));
                    s
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            trickle(stream, &st, &er);
        })?;
        let local = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => return Err(io::Error::other(format!("holder connect: {e}"))),
            Err(_) => return Err(io::Error::other("holder connect: no answer in 10 s")),
        };
        Ok(Holder {
            local,
            stop,
            error,
            thread: Some(thread),
        })
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn trickle(mut s: TcpStream, stop: &AtomicBool, error: &Mutex<Option<String>>) {
    let mut counter = 0u64;
    // Bytes of the current batch not yet written (a short write keeps the stream aligned).
    let mut pending: Vec<u8> = Vec::new();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if pending.is_empty() {
            for _ in 0..COUNTERS_PER_TICK {
                pending.extend_from_slice(&counter.to_be_bytes());
                counter += 1;
            }
        }
        match s.write(&pending) {
            Ok(n) => {
                pending.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                if let Ok(mut er) = error.lock() {
                    *er = Some(format!("write: {e}"));
                }
                return;
            }
        }
        next += TICK;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
}
