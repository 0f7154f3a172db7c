# SPDX-License-Identifier: MIT OR Apache-2.0
"""Runtime checks of mptcp-agent on a booted image (testimage; kas/ enables them):
the service runs, it owns its D-Bus name, and the MPTCP endpoints follow the configured
uplinks. The endpoint check installs a config naming the uplink the image has, the way an
OTA update would (check-config, then reload), and puts the original back afterwards."""

import time

from oeqa.core.decorator.depends import OETestDepends
from oeqa.runtime.case import OERuntimeTestCase
from oeqa.runtime.decorator.package import OEHasPackage

BUS_NAME = "io.github.meta_mptcp.Agent1"
CONFIG = "/etc/mptcp-agent/agent.toml"
SAVED = "/tmp/oeqa-mptcp-agent.toml"
WAIT_S = 30


# The same checks on systemd and SysV-init images: the service commands differ.
SYSTEMD = {"active": "systemctl is-active mptcp-agent.service",
           "log": "journalctl -u mptcp-agent.service --no-pager -n 50",
           "reload": "systemctl reload mptcp-agent.service"}
SYSV = {"active": "/etc/init.d/mptcp-agent status",
        "log": "tail -n 50 /var/log/mptcp-agent.log",
        "reload": "/etc/init.d/mptcp-agent reload"}


class MptcpAgentTest(OERuntimeTestCase):

    def service(self, what):
        status, _ = self.target.run("test -d /run/systemd/system")
        return (SYSTEMD if status == 0 else SYSV)[what]

    def run_ok(self, cmd, timeout=60):
        status, output = self.target.run(cmd, timeout=timeout)
        self.assertEqual(status, 0, msg="'%s' failed (%d):\n%s" % (cmd, status, output))
        return output

    @OEHasPackage(["mptcp-agent"])
    def test_service_active(self):
        status, output = self.target.run(self.service("active"))
        if status != 0:
            _, log = self.target.run(self.service("log"))
            self.fail("mptcp-agent is not running (%s):\n%s" % (output.strip(), log))

    @OETestDepends(["mptcp_agent.MptcpAgentTest.test_service_active"])
    def test_dbus_name_owned(self):
        status, _ = self.target.run("command -v busctl")
        if status != 0:
            # SysV images: dbus-send (from dbus, which the agent needs) asks the bus instead.
            self.run_ok("dbus-send --system --print-reply --dest=org.freedesktop.DBus / "
                        "org.freedesktop.DBus.GetNameOwner string:%s" % BUS_NAME)
            self.run_ok("dbus-send --system --print-reply --dest=%s /io/github/meta_mptcp/Agent1 "
                        "org.freedesktop.DBus.Introspectable.Introspect" % BUS_NAME)
            return
        output = self.run_ok("busctl --system --no-pager status %s" % BUS_NAME)
        self.assertIn("mptcp-agent", output, msg="the owner of %s is not mptcp-agent:\n%s" % (BUS_NAME, output))
        self.run_ok("busctl --system --no-pager introspect %s /io/github/meta_mptcp/Agent1" % BUS_NAME)

    def uplink(self):
        """(interface, IPv4 address) of the image's default route: the uplink to configure."""
        route = self.run_ok("ip -4 route show default").split()
        self.assertIn("dev", route, msg="the image has no IPv4 default route: %s" % route)
        iface = route[route.index("dev") + 1]
        addrs = self.run_ok("ip -4 -o addr show dev %s scope global" % iface).split()
        self.assertIn("inet", addrs, msg="%s has no global IPv4 address" % iface)
        return iface, addrs[addrs.index("inet") + 1].split("/")[0]

    @OETestDepends(["mptcp_agent.MptcpAgentTest.test_dbus_name_owned"])
    def test_endpoints_follow_configured_uplinks(self):
        self.assertEqual(self.run_ok("cat /proc/sys/net/mptcp/enabled").strip(), "1",
                         msg="MPTCP is disabled (net.mptcp.enabled)")
        iface, addr = self.uplink()
        config = "\n".join([
            "schema_version = 1",
            "[networkmanager]",
            "follow = false",
            "[[link]]",
            'name = "oeqa uplink"',
            'interfaces = ["%s"]' % iface,
            "manage = true",
            'flags = ["subflow"]',
            "",
        ])
        self.run_ok("cp %s %s" % (CONFIG, SAVED))
        try:
            self.run_ok("cat > %s.new <<'EOF'\n%sEOF" % (CONFIG, config))
            self.run_ok("mptcp-agent check-config %s.new" % CONFIG)
            self.run_ok("mv %s.new %s && %s" % (CONFIG, CONFIG, self.service("reload")))
            deadline = time.time() + WAIT_S
            endpoints = ""
            while time.time() < deadline:
                endpoints = self.run_ok("ip mptcp endpoint show")
                if any(line.split()[:1] == [addr] for line in endpoints.splitlines()):
                    break
                time.sleep(1)
            else:
                self.fail("no MPTCP endpoint for the configured uplink %s (%s) after %d s:\n%s"
                          % (iface, addr, WAIT_S, endpoints))
            self.assertNotIn("dev lo", endpoints, msg="an endpoint on lo, which is no uplink:\n%s" % endpoints)
        finally:
            self.target.run("mv %s %s && %s" % (SAVED, CONFIG, self.service("reload")))
