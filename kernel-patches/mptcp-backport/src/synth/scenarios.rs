// SPDX-License-Identifier: MIT OR Apache-2.0
//! The optional scenarios: a core prerequisite outside the path set, renames, a revert pair,
//! a subject-only duplicate, a stable-only extra and an extra outside the range.

use super::*;

/// Mainline scenarios: prerequisite outside the path set, renames, a revert pair, a commit
/// whose subject is duplicated in the base, and the commit behind the BSP conflict.
pub(super) fn scenarios_mainline(s: &mut Synth, facts: &mut Facts) -> Result<()> {
    let a = "Scenario <scenario@example.org>";
    // Core prerequisite: adds helper lines to tcp.c; the MPTCP user changes the line right
    // after them, so its context needs the helper.
    let prereq_subject = "tcp: export the synthetic helper for mptcp".to_string();
    let m = s.commit(
        "master",
        a,
        &format!("{prereq_subject}\n\nCore-only: never touches net/mptcp.\n"),
        &[Change::Insert {
            path: "net/ipv4/tcp.c".into(),
            line: PREREQ_LINE,
            lines: vec!["void tcp_synth_helper(void)".into(), "{".into(), "}".into()],
        }],
    )?;
    facts.prereq = s.sha(m)?;
    facts.prereq_subject = prereq_subject;
    let m = s.commit(
        "master",
        a,
        "mptcp: use the synthetic tcp helper\n",
        &[
            edit("net/mptcp/protocol.c", 151, "uses tcp_synth_helper"),
            edit(
                "net/ipv4/tcp.c",
                PREREQ_LINE + 3,
                "EXPORT_SYMBOL(tcp_synth_helper);",
            ),
        ],
    )?;
    facts.prereq_user = s.sha(m)?;
    facts.touching += 1;

    // Renames: inside the path set, and into it from outside.
    s.commit(
        "master",
        a,
        "mptcp: rename pm_old.c to pm_new.c\n",
        &[Change::Rename {
            from: "net/mptcp/pm_old.c".into(),
            to: "net/mptcp/pm_new.c".into(),
        }],
    )?;
    s.commit(
        "master",
        a,
        "mptcp: touch the renamed pm_new.c\n",
        &[edit("net/mptcp/pm_new.c", 5, "after rename")],
    )?;
    s.commit(
        "master",
        a,
        "selftests: mptcp: move helper.sh into the mptcp directory\n",
        &[Change::Rename {
            from: "tools/testing/selftests/net/helper.sh".into(),
            to: "tools/testing/selftests/net/mptcp/helper.sh".into(),
        }],
    )?;
    facts.rename = ("net/mptcp/pm_old.c".into(), "net/mptcp/pm_new.c".into());
    facts.touching += 3;

    // Revert pair.
    let m = s.commit(
        "master",
        a,
        "mptcp: experimental tweak\n",
        &[edit("net/mptcp/options.c", 152, "tweak")],
    )?;
    let original = s.sha(m)?;
    let before = "/* net/mptcp/options.c line 152 */".to_string();
    let m = s.commit(
        "master",
        a,
        &format!("Revert \"mptcp: experimental tweak\"\n\nThis reverts commit {original}.\n"),
        &[Change::Edit {
            path: "net/mptcp/options.c".into(),
            line: 152,
            text: before,
        }],
    )?;
    facts.revert_pair = (original, s.sha(m)?);
    facts.touching += 2;

    // A subject the base will also have (with a different change).
    let subject = "mptcp: fix a thing the base fixed differently".to_string();
    let m = s.commit(
        "master",
        a,
        &format!("{subject}\n"),
        &[edit("net/mptcp/subflow.c", 153, "subject dup")],
    )?;
    facts.subject_dup = s.sha(m)?;
    facts.subject_dup_subject = subject;
    facts.touching += 1;

    // The commit that will hit the BSP's vendor change.
    let m = s.commit(
        "master",
        a,
        "mptcp: ctrl tweak\n",
        &[edit("net/mptcp/ctrl.c", CTRL_LINE, "ctrl tweak")],
    )?;
    facts.ctrl_commit = s.sha(m)?;
    facts.ctrl_file = "net/mptcp/ctrl.c".into();
    facts.ctrl_line = CTRL_LINE + 1;
    facts.touching += 1;
    facts.range_commits += 9;
    Ok(())
}

/// 5.15.y scenario: a core commit outside the path set citing a (fake) upstream id, and
/// an MPTCP commit of the same kind.
pub(super) fn scenarios_target_stable(
    s: &mut Synth,
    facts: &mut Facts,
    rng: &mut Rng,
) -> Result<()> {
    let up = fake_id(rng);
    let m = s.commit(
        "linux-5.15.y",
        "Scenario <scenario@example.org>",
        &format!("tcp: stable-only helper\n\ncommit {up} upstream.\n\nOutside the path set.\n"),
        &[edit("net/core/sock.c", CORE_TARGET.1 + 2, "stable helper")],
    )?;
    facts.stable_extra = s.sha(m)?;
    facts.stable_extra_upstream = up;
    s.commit(
        "linux-5.15.y",
        "Scenario <scenario@example.org>",
        "mptcp: stable scenario change\n",
        &[edit(
            "net/mptcp/pm_netlink.c",
            MPTCP_TARGET_STABLE.1 + 3,
            "stable scenario",
        )],
    )?;
    facts.touching += 1;
    Ok(())
}
