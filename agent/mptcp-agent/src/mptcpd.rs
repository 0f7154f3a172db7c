// SPDX-License-Identifier: MIT OR Apache-2.0
//! Is mptcpd running in this network namespace? It manages endpoints and limits on every
//! interface, so the agent stays out of its way while it runs.

use std::path::Path;

/// pid of an mptcpd process in the same network namespace as this process. A process
/// whose namespace cannot be read for want of permission (another user's, without
/// CAP_SYS_PTRACE) counts as the same namespace: on a device, that is where it would be.
/// One that is exiting (its namespace link is already gone) does not count.
pub fn find(proc_root: &Path) -> Option<u32> {
    let own_ns = std::fs::read_link(proc_root.join("self/ns/net")).ok();
    let entries = std::fs::read_dir(proc_root).ok()?;
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        if comm.trim_end() != "mptcpd" {
            continue;
        }
        match (std::fs::read_link(entry.path().join("ns/net")), &own_ns) {
            (Ok(ns), Some(own)) if ns != *own => continue,
            (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => continue,
            _ => return Some(pid),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn fake_proc(procs: &[(u32, &str, &str)], own_ns: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("self/ns")).unwrap();
        symlink(own_ns, dir.path().join("self/ns/net")).unwrap();
        for (pid, comm, ns) in procs {
            let p = dir.path().join(pid.to_string());
            std::fs::create_dir_all(p.join("ns")).unwrap();
            std::fs::write(p.join("comm"), format!("{comm}\n")).unwrap();
            symlink(ns, p.join("ns/net")).unwrap();
        }
        dir
    }

    #[test]
    fn finds_mptcpd_in_own_namespace_only() {
        let d = fake_proc(
            &[(10, "sshd", "net:[1]"), (11, "mptcpd", "net:[2]")],
            "net:[1]",
        );
        assert_eq!(find(d.path()), None);
        let d = fake_proc(
            &[(10, "sshd", "net:[1]"), (12, "mptcpd", "net:[1]")],
            "net:[1]",
        );
        assert_eq!(find(d.path()), Some(12));
    }

    #[test]
    fn an_exiting_mptcpd_does_not_count() {
        // Seen while another lab stopped its mptcpd: a zombie's ns link is gone (ENOENT).
        let d = fake_proc(&[(12, "mptcpd", "net:[1]")], "net:[1]");
        std::fs::remove_file(d.path().join("12/ns/net")).unwrap();
        assert_eq!(find(d.path()), None);
    }
}
