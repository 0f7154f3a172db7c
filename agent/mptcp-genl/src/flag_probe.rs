// SPDX-License-Identifier: MIT OR Apache-2.0
//! Does this kernel know an endpoint flag? Asked by a round trip in a throwaway network
//! namespace, with the kernel version as the last resort.
//!
//! Until "mptcp: pm: ignore unknown endpoint flags" (upstream 0ace3297a730, Linux 6.19, and
//! its stable backports, e.g. 6.18.y) the kernel stored every flag bit it was sent and
//! dumped it back, known or not: an endpoint dump cannot tell there, and the family's
//! netlink policy describes the flags attribute as a plain u32 without a mask, so the
//! policy dump (CTRL_CMD_GETPOLICY) cannot either. Since that change the kernel drops the
//! bits it does not know. So: add an endpoint with the flag and an unknown bit (bit 7),
//! read it back. Unknown bit dropped → the kernel masks, and whether it kept the flag is
//! the answer. Unknown bit kept → the round trip cannot tell, and the kernel version
//! decides. The unknown bit is bit 7: the kernel stores endpoint flags in a u8, so any
//! higher bit is lost by every kernel, masking or not. The endpoint lives in a network namespace of its own (`unshare(CLONE_NEWNET)`
//! on a thread of its own), so the running path manager never sees it and, on kernels
//! that never reuse endpoint ids (5.10), no id of the real namespace is spent.

use std::{fmt, net::IpAddr};

use crate::{Endpoint, EndpointFlags, Error, PmHandle, Result};

/// A bit no kernel defines (6.19's mask is bits 0-5), to see whether the kernel drops
/// unknown bits. Within the low 8 bits: kernels keep endpoint flags in a u8, so a higher
/// bit is cut off by the storage on every kernel and would look "dropped" (measured on
/// 5.10, where bit 31 vanished and the unknown-to-5.10 laminar bit stayed).
const PROBE_UNKNOWN_BIT: u32 = 1 << 7;
/// TEST-NET-1: never a real address.
const PROBE_ADDR: [u8; 4] = [192, 0, 2, 1];

/// How the answer was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagProbe {
    /// The kernel drops unknown bits and kept this one: it knows the flag.
    Kept,
    /// The kernel drops unknown bits and dropped this one too: it does not know the flag.
    Dropped,
    /// The round trip cannot tell (the kernel keeps unknown bits, or the probe could not
    /// run: the reason); the kernel release decides: `Some(known)` from
    /// `/proc/sys/kernel/osrelease`, `None` when unreadable.
    ByVersion {
        why: String,
        release: String,
        known: Option<bool>,
    },
}

impl FlagProbe {
    /// Whether the flag may be sent.
    pub fn known(&self) -> bool {
        match self {
            FlagProbe::Kept => true,
            FlagProbe::Dropped => false,
            FlagProbe::ByVersion { known, .. } => known.unwrap_or(false),
        }
    }
}

impl fmt::Display for FlagProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagProbe::Kept => f.write_str(
                "endpoint round trip: the kernel kept the flag and dropped an unknown bit",
            ),
            FlagProbe::Dropped => {
                f.write_str("endpoint round trip: the kernel dropped the flag like an unknown bit")
            }
            FlagProbe::ByVersion {
                why,
                release,
                known,
            } => write!(
                f,
                "kernel release {release:?}{} ({why})",
                match known {
                    Some(true) => " is new enough",
                    Some(false) => " is too old",
                    None => " cannot be read",
                }
            ),
        }
    }
}

/// `major.minor` of a release string ("6.18.44-fc-v1272" → (6, 18)).
pub fn release_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Probe whether the kernel knows `flag`, which came with Linux `since` (major, minor).
/// Blocks for the round trip (a thread and a few netlink messages, milliseconds).
pub fn probe_endpoint_flag(flag: EndpointFlags, since: (u32, u32)) -> FlagProbe {
    let by_version = |why: String| {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let known = release_version(&release).map(|v| v >= since);
        FlagProbe::ByVersion {
            why,
            release,
            known,
        }
    };
    let round_trip = std::thread::spawn(move || round_trip(flag))
        .join()
        .unwrap_or_else(|_| Err(Error::decode("the probe thread panicked")));
    match round_trip {
        Ok(got) if got.bits() & PROBE_UNKNOWN_BIT != 0 => by_version(
            "the kernel keeps unknown endpoint flags, so a round trip cannot tell".into(),
        ),
        Ok(got) if got.contains(flag) => FlagProbe::Kept,
        Ok(_) => FlagProbe::Dropped,
        Err(e) => by_version(format!("endpoint round trip not possible: {e}")),
    }
}

/// Runs on a thread of its own: that thread moves to a new network namespace.
fn round_trip(flag: EndpointFlags) -> Result<EndpointFlags> {
    // SAFETY: unshare(2) affects only the calling thread, which is this one and ends
    // after the probe.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(Error::Io(std::io::Error::last_os_error()));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Io)?;
    rt.block_on(async {
        let pm = PmHandle::connect().await?;
        let mut ep = Endpoint::new(
            IpAddr::from(PROBE_ADDR),
            flag | EndpointFlags::from_bits_retain(PROBE_UNKNOWN_BIT),
        );
        ep.id = 1;
        pm.add_endpoint(&ep).await?;
        let back = pm.endpoints().await?;
        back.iter()
            .find(|e| e.addr == ep.addr)
            .map(|e| e.flags)
            .ok_or_else(|| Error::decode("the probe endpoint is not in the dump"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_versions() {
        assert_eq!(release_version("6.18.44-fc-v1272"), Some((6, 18)));
        assert_eq!(release_version("5.10.223-bsp"), Some((5, 10)));
        assert_eq!(release_version("6.1.0-41-amd64\n"), Some((6, 1)));
        assert_eq!(release_version("garbage"), None);
    }

    #[test]
    fn by_version_decides_only_when_readable() {
        let p = |known| FlagProbe::ByVersion {
            why: "w".into(),
            release: "r".into(),
            known,
        };
        assert!(p(Some(true)).known());
        assert!(!p(Some(false)).known());
        assert!(!p(None).known(), "unknown release: never send the flag");
        assert!(FlagProbe::Kept.known());
        assert!(!FlagProbe::Dropped.known());
    }
}
