// SPDX-License-Identifier: MIT OR Apache-2.0
//! sd_notify(3) without libsystemd: one datagram to `$NOTIFY_SOCKET` per state change
//! (READY=1, RELOADING=1, STATUS=...). Outside systemd the variable is unset and nothing
//! is sent.

use std::{
    io,
    os::unix::net::{SocketAddr, UnixDatagram},
    time::Duration,
};

/// Where systemd listens, if it does.
#[derive(Debug, Clone)]
pub struct Notifier {
    socket: Option<String>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`.
    pub fn from_env() -> Notifier {
        Notifier {
            socket: std::env::var("NOTIFY_SOCKET")
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }

    /// Send `state` (newline-separated `KEY=VALUE` lines). Errors are logged, never fatal:
    /// a lost notification costs a start timeout, not the network.
    pub fn send(&self, state: &str) {
        let Some(socket) = &self.socket else { return };
        if let Err(e) = send_to(socket, state) {
            log::warn!("sd_notify to {socket}: {e}");
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// `RELOADING=1` with the CLOCK_MONOTONIC timestamp systemd 253+ wants with it.
    pub fn reloading(&self) {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
    }
}

fn monotonic_usec() -> u128 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(Duration::from)
        .unwrap_or_default();
    ts.as_micros()
}

/// Send one datagram; a leading `@` names an abstract socket. Never blocks: a listener
/// that does not read (its queue full) loses the message instead of stalling the agent.
pub fn send_to(socket: &str, state: &str) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    sock.set_nonblocking(true)?;
    let addr = match socket.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes())?
        }
        None => SocketAddr::from_pathname(socket)?,
    };
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_reach_path_and_abstract_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            socket: Some(path.to_string_lossy().into_owned()),
        };
        n.ready("2 uplinks");
        n.reloading();
        let mut buf = [0u8; 256];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=2 uplinks");
        let len = rx.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..len]).unwrap();
        assert!(text.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{text}");
        assert!(
            text["RELOADING=1\nMONOTONIC_USEC=".len()..]
                .parse::<u64>()
                .unwrap()
                > 0
        );

        use std::os::linux::net::SocketAddrExt;
        let name = format!("mptcp-agent-test-{}", std::process::id());
        let abs =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        send_to(&format!("@{name}"), "READY=1").unwrap();
        let len = abs.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");

        // A listener that never reads: the send fails at once instead of blocking.
        let full = dir.path().join("full");
        let _never_read = UnixDatagram::bind(&full).unwrap();
        let full = full.to_string_lossy().into_owned();
        let t0 = std::time::Instant::now();
        let mut failed = false;
        for _ in 0..10_000 {
            if send_to(&full, "READY=1").is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "a full queue must make the send fail");
        assert!(t0.elapsed() < std::time::Duration::from_secs(5));

        // Unset: silently nothing.
        Notifier { socket: None }.ready("x");
        assert!(send_to(&dir.path().join("absent").to_string_lossy(), "READY=1").is_err());
    }
}
