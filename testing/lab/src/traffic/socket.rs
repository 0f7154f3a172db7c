// SPDX-License-Identifier: MIT OR Apache-2.0
//! Raw `IPPROTO_MPTCP` sockets with no socket option set (5.10 rejects some), and the
//! deadline- and stop-aware reads and writes of one transfer.

use super::*;

pub(super) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub(super) fn new_socket(addr: &SocketAddr, proto: Proto) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let protocol = match proto {
        Proto::Mptcp => IPPROTO_MPTCP,
        Proto::Tcp => 0,
    };
    // SAFETY: plain syscall; the fd is owned from here on.
    let fd = cvt(unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, protocol) })
        .map_err(|e| {
            if proto == Proto::Mptcp && e.raw_os_error() == Some(libc::EPROTONOSUPPORT) {
                io::Error::new(
                    e.kind(),
                    "MPTCP sockets not supported (kernel without MPTCP or net.mptcp.enabled=0)",
                )
            } else {
                e
            }
        })?;
    // SAFETY: fd was just returned by socket() and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(super) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a valid fd; O_NONBLOCK is a file status flag, not a socket option.
    unsafe {
        let flags = cvt(libc::fcntl(fd, libc::F_GETFL))?;
        cvt(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK))?;
    }
    Ok(())
}

pub(super) fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Wait for `events` on `fd` for at most `timeout`; returns the revents (0 on timeout).
pub(super) fn poll_fd(
    fd: RawFd,
    events: libc::c_short,
    timeout: Duration,
) -> io::Result<libc::c_short> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    loop {
        // SAFETY: one valid pollfd.
        match cvt(unsafe { libc::poll(&mut pfd, 1, ms) }) {
            Ok(0) => return Ok(0),
            Ok(_) => return Ok(pfd.revents),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Non-blocking connect bounded by `timeout`.
pub fn connect(addr: &SocketAddr, proto: Proto, timeout: Duration) -> io::Result<TcpStream> {
    let fd = new_socket(addr, proto)?;
    set_nonblocking(fd.as_raw_fd())?;
    let (sa, len) = sockaddr(addr);
    // SAFETY: sa/len describe a valid sockaddr for this family.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            &sa as *const _ as *const libc::sockaddr,
            len,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect to {addr} timed out"),
                ));
            }
            let rev = poll_fd(fd.as_raw_fd(), libc::POLLOUT, left)?;
            if rev != 0 {
                break;
            }
        }
    }
    let stream = TcpStream::from(fd);
    // Connected iff it has a peer; otherwise the first read reports why (ECONNREFUSED...).
    if stream.peer_addr().is_err() {
        let mut b = [0u8; 1];
        return Err(match (&stream).read(&mut b) {
            Err(e) => e,
            Ok(_) => io::Error::new(
                io::ErrorKind::NotConnected,
                format!("connect to {addr} failed"),
            ),
        });
    }
    Ok(stream)
}

/// A non-blocking listening socket (no SO_REUSEADDR: that would be a socket option).
pub fn listen(addr: &SocketAddr, proto: Proto) -> io::Result<TcpListener> {
    let fd = new_socket(addr, proto)?;
    let (sa, len) = sockaddr(addr);
    // SAFETY: valid fd and sockaddr.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sa as *const _ as *const libc::sockaddr,
            len,
        )
    })
    .map_err(|e| io::Error::new(e.kind(), format!("bind {addr}: {e}")))?;
    // SAFETY: valid fd.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), 128) })?;
    set_nonblocking(fd.as_raw_fd())?;
    Ok(TcpListener::from(fd))
}

// ---------------------------------------------------------------------------------------------
// Transfer engine

pub(super) struct Ctx<'a> {
    pub(super) stream: &'a TcpStream,
    pub(super) deadline: Instant,
    pub(super) limits: Limits,
    pub(super) stop: Option<&'a AtomicBool>,
}

impl Ctx<'_> {
    /// Stop flag and overall deadline.
    pub(super) fn check_deadline(&self, what: &str) -> Result<(), String> {
        if self
            .stop
            .map(|s| s.load(Ordering::Relaxed))
            .unwrap_or(false)
        {
            return Err(format!("stopped while {what}"));
        }
        if Instant::now() >= self.deadline {
            return Err(format!(
                "timed out after {:?} while {what}",
                self.limits.timeout
            ));
        }
        Ok(())
    }

    /// Stop flag, deadline, and no-progress limit.
    pub(super) fn check(&self, meter: &Meter, what: &str) -> Result<(), String> {
        self.check_deadline(what)?;
        let idle = Instant::now().saturating_duration_since(meter.last_progress);
        if idle >= self.limits.stall_abort {
            return Err(format!(
                "no progress for {:.1} s while {what}",
                idle.as_secs_f64()
            ));
        }
        Ok(())
    }

    /// Write all of `buf`, bounded by the deadline (no metering: control messages).
    pub(super) fn write_all(&self, buf: &[u8], what: &str) -> Result<(), String> {
        let mut off = 0;
        while off < buf.len() {
            match (&*self.stream).write(&buf[off..]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(libc::POLLOUT, what)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{what}: {e}")),
            }
        }
        Ok(())
    }

    /// Read exactly `buf.len()` bytes; `Ok(false)` on a clean EOF before the first byte.
    pub(super) fn read_exact(&self, buf: &mut [u8], what: &str) -> Result<bool, String> {
        let mut off = 0;
        while off < buf.len() {
            match (&*self.stream).read(&mut buf[off..]) {
                Ok(0) if off == 0 => return Ok(false),
                Ok(0) => {
                    return Err(format!(
                        "{what}: connection closed after {off} of {} bytes",
                        buf.len()
                    ))
                }
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(libc::POLLIN, what)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{what}: {e}")),
            }
        }
        Ok(true)
    }

    pub(super) fn wait(&self, events: libc::c_short, what: &str) -> Result<(), String> {
        self.check_deadline(what)?;
        let left = self.deadline.saturating_duration_since(Instant::now());
        poll_fd(self.stream.as_raw_fd(), events, left.min(POLL_SLICE))
            .map_err(|e| format!("{what}: poll: {e}"))?;
        Ok(())
    }
}
