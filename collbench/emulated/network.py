"""An emulated cluster's network: one network namespace per node, a veth link per NIC on one bridge (the
switch), and a token-bucket rate limit (``tc ... tbf``) on both ends of every link as the node's NIC. A slow link
between two nodes (``ClusterSpec.slow_links``) replaces the tbf on each of its NICs' egress (inside the node) by an
htb tree: the NIC rate for everything, a child class at the link's rate for traffic to the other node.

Every object it creates carries the name tag of this process (``cb<pid hex>``), so clean-up removes exactly
what this process made and never touches another interface; a tag whose process is gone marks a leftover of
a run that was killed before it could clean up. Addresses come from one private /24 (one /26 per rail) and
live only inside the namespaces: the bridge has no address, so nothing can be routed off the machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

#: the /24 every emulated address comes from (inside the namespaces only)
SUBNET_PREFIX = "10.213.7"
#: at most 4 rails (NICs per node), each a /26 with at most 62 nodes
MAX_RAILS, MAX_NODES = 4, 62
TAG_PREFIX = "cb"
NETNS_DIR = Path("/etc/netns")
#: tbf needs a bucket of at least one MTU-sized burst; 256 KiB keeps short messages from being rate-limited
#: below the link rate at 0.1-1 Gb/s, and a latency bound drops nothing that waits less than this
TBF_BURST, TBF_LATENCY = "256kb", "200ms"
#: htb's classes take the same burst; a fixed quantum (one jumbo-ish frame) keeps htb from warning at low rates
HTB_QUANTUM = "60000"


class EmulationError(Exception):
    """The emulated cluster cannot be made or used here (no root, no iproute2, leftovers, a failed command)."""


@dataclass(frozen=True)
class ClusterSpec:
    """What to emulate: nodes, NICs per node and their rate; ``slow`` maps (node, nic) to a speed factor,
    ``slow_links`` (node a, node b, nic) with a < b to the factor of the traffic between a and b on that NIC."""

    nodes: int
    nic_gbps: float
    nics_per_node: int = 1
    slow: dict[tuple[int, int], float] = field(default_factory=dict)
    slow_links: dict[tuple[int, int, int], float] = field(default_factory=dict)

    def rate_gbps(self, node: int, nic: int) -> float:
        return self.nic_gbps * self.slow.get((node, nic), 1.0)

    def slow_peers(self, node: int, nic: int) -> dict[int, float]:
        """The nodes that ``node`` reaches through a slow link on ``nic``: peer -> factor of the NIC rate."""
        out = {}
        for (a, b, r), factor in self.slow_links.items():
            if r == nic and node in (a, b):
                out[b if node == a else a] = factor
        return out

    def validate(self) -> None:
        """One clear error for values that cannot be emulated, before anything is created."""
        if not 1 <= self.nodes <= MAX_NODES:
            raise EmulationError(f"--nodes must be between 1 and {MAX_NODES}, got {self.nodes}")
        if not 1 <= self.nics_per_node <= MAX_RAILS:
            raise EmulationError(f"--nics-per-node must be between 1 and {MAX_RAILS}, got {self.nics_per_node}")
        if not (self.nic_gbps > 0 and self.nic_gbps <= 100):  # also rejects nan
            raise EmulationError(f"--nic-gbps must be > 0 and <= 100, got {self.nic_gbps}")
        for (node, nic), factor in self.slow.items():
            if not 0 <= node < self.nodes:
                raise EmulationError(f"--slow-nic: node {node} does not exist (nodes 0-{self.nodes - 1})")
            if not 0 <= nic < self.nics_per_node:
                raise EmulationError(f"--slow-nic: NIC {nic} does not exist (NICs 0-{self.nics_per_node - 1})")
            if not 0 < factor <= 1:
                raise EmulationError(f"--slow-nic: the factor must be in (0, 1], got {factor}")
        for (a, b, nic), factor in self.slow_links.items():
            for node in (a, b):
                if not 0 <= node < self.nodes:
                    raise EmulationError(f"--slow-link: node {node} does not exist (nodes 0-{self.nodes - 1})")
            if a == b:
                raise EmulationError(f"--slow-link: a link joins two different nodes, got {a}-{b}")
            if not 0 <= nic < self.nics_per_node:
                raise EmulationError(f"--slow-link: NIC {nic} does not exist (NICs 0-{self.nics_per_node - 1})")
            if not 0 < factor <= 1:  # also rejects nan
                raise EmulationError(f"--slow-link: the factor must be in (0, 1], got {factor}")


def node_name(i: int) -> str:
    """The host name of emulated node ``i`` (what collbench counts nodes by)."""
    return f"node{i}"


def address(node: int, nic: int = 0) -> str:
    """Node ``node``'s address on rail ``nic``: 10.213.7.(64 nic + node + 1), one /26 per rail."""
    return f"{SUBNET_PREFIX}.{64 * nic + node + 1}"


def _mbit(gbps: float) -> str:
    return f"{gbps * 1e3:.6g}mbit"


def _htb_commands(nic_gbps: float, peers: dict[int, float], nics: int) -> list[list[str]]:
    """tc commands (without ``-n NS`` and ``dev DEV``, which go after the first two words) for a NIC's egress at
    ``nic_gbps`` whose traffic to each peer runs at its factor of that rate: root 1:, parent 1:1 and default 1:10
    at the NIC rate, 1:(11 + i) per peer, a u32 filter on every address of the peer (whatever rail it answers on,
    what leaves this NIC is this rail's traffic)."""
    def cls(classid: str, parent: str, gbps: float) -> list[str]:
        rate = _mbit(gbps)
        return ["class", "add", "parent", parent, "classid", classid, "htb", "rate", rate, "ceil", rate,
                "burst", TBF_BURST, "cburst", TBF_BURST, "quantum", HTB_QUANTUM]  # fmt: skip

    cmds = [["qdisc", "add", "root", "handle", "1:", "htb", "default", "10"],
            cls("1:1", "1:", nic_gbps), cls("1:10", "1:1", nic_gbps)]  # fmt: skip
    for i, (peer, factor) in enumerate(sorted(peers.items())):
        classid = f"1:{11 + i}"
        cmds.append(cls(classid, "1:1", nic_gbps * factor))
        for r in range(nics):
            cmds.append(["filter", "add", "parent", "1:", "protocol", "ip", "prio", "1", "u32", "match", "ip", "dst",
                         f"{address(peer, r)}/32", "flowid", classid])  # fmt: skip
    return cmds


def check_host() -> None:
    """Root (or CAP_NET_ADMIN via root) and iproute2's ip/tc/unshare are needed; say which is missing."""
    missing = [tool for tool in ("ip", "tc", "unshare") if shutil.which(tool) is None]
    if missing:
        raise EmulationError(f"collbench emulate needs {' and '.join(missing)} (iproute2, util-linux): not found")
    if os.geteuid() != 0:
        raise EmulationError("collbench emulate needs root: it creates network namespaces, links and qdiscs")


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise EmulationError(f"{' '.join(cmd)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tags_in_use() -> dict[str, set[str]]:
    """Every collbench tag found in namespaces and links: tag -> object names."""
    found: dict[str, set[str]] = {}
    for line in _run(["ip", "netns", "list"]).splitlines():
        name = line.split()[0] if line.strip() else ""
        m = re.fullmatch(rf"collbench-({TAG_PREFIX}[0-9a-f]+)-node\d+", name)
        if m:
            found.setdefault(m.group(1), set()).add(f"netns {name}")
    for line in _run(["ip", "-o", "link", "show"]).splitlines():
        m = re.match(rf"\d+: ({TAG_PREFIX}[0-9a-f]+)(?:br|n)\d+\S*?[:@]", line)
        if m:
            found.setdefault(m.group(1), set()).add(f"link {line.split(':')[1].strip().split('@')[0]}")
    return found


def leftovers() -> dict[str, set[str]]:
    """Objects of earlier emulations whose process is gone (tag -> names)."""
    return {tag: names for tag, names in _tags_in_use().items() if not _pid_alive(int(tag[len(TAG_PREFIX):], 16))}


def refuse_leftovers() -> None:
    """Raise when an earlier emulation left objects behind, saying how to remove them."""
    stale = leftovers()
    if stale:
        names = ", ".join(sorted(n for ns in stale.values() for n in ns)[:6])
        raise EmulationError(f"leftovers of an earlier emulation ({names}); remove them with "
                             "'collbench emulate --clean' (it deletes only collbench's own, of dead runs)")


def remove_leftovers() -> list[str]:
    """Delete the namespaces, links and hosts files of emulations whose process is gone; return what went."""
    removed = []
    for tag, names in leftovers().items():
        for name in sorted(names):
            kind, obj = name.split(" ", 1)
            cmd = ["ip", "netns", "del", obj] if kind == "netns" else ["ip", "link", "del", obj]
            subprocess.run(cmd, capture_output=True, timeout=30)
            removed.append(name)
        for d in NETNS_DIR.glob(f"collbench-{tag}-node*"):
            shutil.rmtree(d, ignore_errors=True)
    return removed


class EmulatedNetwork:
    """The namespaces and links of one emulated cluster, removed again by :meth:`close` (idempotent).

    Use as a context manager; :meth:`close` is also safe to call from a signal handler's path and after a
    partial :meth:`create` (it deletes whatever exists of what this object made).
    """

    def __init__(self, spec: ClusterSpec, tag: str | None = None) -> None:
        spec.validate()
        self.spec = spec
        self.tag = tag or f"{TAG_PREFIX}{os.getpid():x}"
        self._created: list[tuple[str, str]] = []  # ("netns" | "link" | "dir", name), in creation order
        self._closed = False

    def netns(self, node: int) -> str:
        return f"collbench-{self.tag}-node{node}"

    def bridge(self) -> str:
        """The switch every NIC is plugged into (one L2 segment: ranks on different rails still reach each other)."""
        return f"{self.tag}br0"

    def host_side(self, node: int, nic: int) -> str:
        """The root-namespace end of node ``node``'s NIC ``nic`` (on the bridge)."""
        return f"{self.tag}n{node}r{nic}"

    @staticmethod
    def nic(nic: int) -> str:
        """The interface name of NIC ``nic`` inside a node."""
        return f"eth{nic}"

    def create(self) -> None:
        """Make the bridge, namespaces, links, addresses, qdiscs and hosts files; raise on leftovers."""
        check_host()
        refuse_leftovers()
        s = self.spec
        self._do(["ip", "link", "add", self.bridge(), "type", "bridge"], ("link", self.bridge()))
        self._do(["ip", "link", "set", self.bridge(), "up"])
        hosts = "127.0.0.1 localhost\n" + "".join(f"{address(i)} {node_name(i)}\n" for i in range(s.nodes))
        for i in range(s.nodes):
            ns = self.netns(i)
            self._do(["ip", "netns", "add", ns], ("netns", ns))
            folder = NETNS_DIR / ns
            folder.mkdir(parents=True, exist_ok=False)
            self._created.append(("dir", str(folder)))
            (folder / "hosts").write_text(hosts)
            self._do(["ip", "-n", ns, "link", "set", "lo", "up"])
            if s.nics_per_node > 1:  # each NIC answers ARP for its own address only, so traffic to an address
                for key in ("arp_ignore=1", "arp_announce=2"):  # enters through that address's NIC
                    self._do(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv4.conf.all.{key}"])
            for r in range(s.nics_per_node):
                outer, inner = self.host_side(i, r), self.nic(r)
                self._do(["ip", "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns],
                         ("link", outer))  # fmt: skip
                self._do(["ip", "link", "set", outer, "master", self.bridge(), "up"])
                self._do(["ip", "-n", ns, "addr", "add", f"{address(i, r)}/26", "dev", inner])
                self._do(["ip", "-n", ns, "link", "set", inner, "up"])
                rate = _mbit(s.rate_gbps(i, r))
                tbf = ["root", "tbf", "rate", rate, "burst", TBF_BURST, "latency", TBF_LATENCY]
                peers = s.slow_peers(i, r)
                if peers:  # the node's egress, slower towards the peers of its slow links
                    for cmd in _htb_commands(s.rate_gbps(i, r), peers, s.nics_per_node):
                        self._do(["tc", "-n", ns, *cmd[:2], "dev", inner, *cmd[2:]])
                else:
                    self._do(["tc", "-n", ns, "qdisc", "add", "dev", inner, *tbf])  # the node's egress
                self._do(["tc", "qdisc", "add", "dev", outer, *tbf])  # the node's ingress
                if s.nics_per_node > 1:  # traffic from a rail's address leaves by that rail's NIC
                    table = str(100 + r)
                    self._do(["ip", "-n", ns, "rule", "add", "from", address(i, r), "table", table])
                    self._do(["ip", "-n", ns, "route", "add", f"{SUBNET_PREFIX}.0/24", "dev", inner, "table", table])

    def _do(self, cmd: list[str], created: tuple[str, str] | None = None) -> None:
        _run(cmd)
        if created is not None:
            self._created.append(created)

    def set_link(self, node: int, up: bool) -> None:
        """Take every NIC of ``node`` down (a fault) or up again."""
        for r in range(self.spec.nics_per_node):
            _run(["ip", "link", "set", self.host_side(node, r), "up" if up else "down"])

    def pids(self) -> list[int]:
        """Processes running inside this cluster's namespaces."""
        out: list[int] = []
        for kind, name in self._created:
            if kind == "netns":
                proc = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, timeout=30)
                out += [int(p) for p in proc.stdout.split() if p.isdigit()]
        return out

    def close(self) -> None:
        """Kill what runs inside, then delete the namespaces (their veth ends go with them), the bridge and
        the hosts files, newest first. Safe to call twice and after a partial create."""
        if self._closed:
            return
        self._closed = True
        for pid in self.pids():
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        for kind, name in reversed(self._created):
            if kind == "netns":
                subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
            elif kind == "link":
                subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=30)
            else:
                shutil.rmtree(name, ignore_errors=True)
        self._created.clear()

    def __enter__(self) -> EmulatedNetwork:
        try:
            self.create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
