"""What the suites that run on a lab (tests/lab, tests/e2e) share: the host check, the
host snapshot, ssh to machines, the inventory plugin's view of the stack."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from livestream_lab import config, lab as lab_flow, streams as lab_streams


# the stack tests/lab runs its lab under (tests/e2e has its own, so both can run at once)
STACK = "labtest"
# the streams the roles configure without livestream_streams, their keys generated on the
# controller: the test pattern, and the stream an encoder publishes over RTMPS
STREAM = "test"
INGEST_STREAM = "studio"


def require_lab_host():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    missing = [tool for tool in ("systemd-nspawn", "debootstrap", "pebble", "dnsmasq", "apt-cacher-ng", "iptables")
               if not shutil.which(tool) and not Path("/usr/sbin", tool).exists()]
    if missing:
        pytest.fail(f"missing lab tools {missing}: run `make setup-lab`")


def _lines(*command: str) -> set[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return {line.strip() for line in result.stdout.splitlines() if line.strip()}


def _hosts_outside_lab_blocks() -> set[str]:
    """/etc/hosts without the blocks labs keep there (a lab running beside this one changes its
    own, e.g. its CDN's names, at any moment): what no lab may touch."""
    kept, inside = set(), False
    for line in Path("/etc/hosts").read_text(encoding="utf-8").splitlines():
        if line.startswith("# BEGIN livestream-lab "):
            inside = True
        elif line.startswith("# END livestream-lab "):
            inside = False
        elif not inside:
            kept.add(line)
    return kept


def snapshot() -> dict[str, set[str]]:
    """The host state `make lab-down` must give back: links, namespaces, routes, mounts,
    cgroups, processes, firewall rules, sysctls, /etc/hosts."""
    cgroups = set()
    for hierarchy in config.CGROUP_HIERARCHIES:
        root = config.CGROUP_ROOT / hierarchy
        cgroups |= {str(path) for path in root.iterdir() if path.is_dir()} if root.exists() else set()
    processes = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            if cmdline:
                processes.add(f"{entry.name} {cmdline}")
    sysctls = set()
    for key in ("net/ipv4/ip_forward", "net/ipv4/conf/all/forwarding", "net/ipv4/conf/all/rp_filter",
                "net/ipv6/conf/all/disable_ipv6", "net/bridge/bridge-nf-call-iptables"):
        path = Path("/proc/sys") / key
        if path.exists():
            sysctls.add(f"{key}={path.read_text().strip()}")
    return {
        "links": {line.split(":")[1].strip().split("@")[0] for line in _lines("ip", "-o", "link", "show")},
        "netns": {line.split()[0] for line in _lines("ip", "netns", "list")},
        "routes": _lines("ip", "-4", "route", "show", "table", "all"),
        "rules": _lines("ip", "-4", "rule", "show"),
        "mounts": {line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()},
        "cgroups": cgroups,
        "processes": processes,
        # counters change all the time; the rules are what matters
        "iptables": {re.sub(r"\[\d+:\d+\]", "", line) for line in _lines("iptables-save") if not line.startswith("#")},
        "nft": _lines("nft", "list", "ruleset"),
        "sysctls": sysctls,
        "hosts": _lines("cat", "/etc/hosts"),
        "hosts_outside_labs": _hosts_outside_lab_blocks(),
        "state": {str(path) for path in config.STATE_ROOT.glob("*")} if config.STATE_ROOT.exists() else set(),
    }


def lab_identifiers(settings: config.LabConfig, summary: dict | None) -> list[str]:
    """Strings that only this lab's traces contain."""
    marks = [f"ls{settings.tag}", settings.netns, settings.gateway_netns, str(settings.state_dir),
             settings.cgroup_name, f"livestream-lab:{settings.stack}", f"livestream-lab {settings.stack}",
             settings.domain, f"{settings.internet_address}/", f"{settings.outsider_address}/"]
    if summary:
        marks += [f"{summary[key]} " for key in ("frontend_address", "bastion_address")]
        marks.append(summary["vpc_cidr"].split(".0.0/")[0] + ".")
    return marks


def ssh(lab_config, host: str, command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a command on a lab machine the way an admin would: ssh, backend through the bastion."""
    # logs hold binary files too (wtmp, the journal's own): bytes that are not UTF-8 are replaced
    result = subprocess.run(["ssh", "-F", str(lab_config.ssh_config), host, command],
                            capture_output=True, text=True, errors="replace", timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"ssh {host} {command!r} failed ({result.returncode}): {result.stderr}")
    return result


def inventory_hosts(lab_config) -> dict[str, dict[str, str]]:
    """role -> {name, address (how Ansible reaches it), private, public (None without one)},
    from the inventory plugin's view of the stack."""
    def inventory(*arguments: str) -> dict:
        result = subprocess.run(["ansible-inventory", "-i", str(lab_flow.inventory_path(lab_config)), *arguments],
                                capture_output=True, text=True, check=True, timeout=120)
        return json.loads(result.stdout)

    groups = inventory("--list")
    hosts = {}
    for role in ("bastion", "frontend", "backend"):
        name = groups[role]["hosts"][0]
        variables = inventory("--host", name)
        hosts[role] = {"name": name, "address": variables["ansible_host"],
                       "private": variables["ec2_private_ip_address"], "public": variables.get("ec2_public_ip_address")}
    return hosts


def machine_names(lab_config) -> dict[str, str]:
    """role -> machine name, from the inventory plugin's view of the stack."""
    return {role: host["name"] for role, host in inventory_hosts(lab_config).items()}


@contextlib.contextmanager
def service_lab(stack: str, keep: bool = False):
    """A lab under `stack` with the service configured by site.yml (its summary, lab.json),
    taken down at the end unless `keep`; one left over by an interrupted run is removed first."""
    require_lab_host()
    settings = config.load(stack)
    # while developing: LIVESTREAM_REUSE_LAB=1 brings up (again, idempotently) the lab that is
    # there, running site.yml on it, and leaves it up at the end
    reuse = os.environ.get("LIVESTREAM_REUSE_LAB") == "1"
    keep = keep or reuse
    if not reuse:
        lab_flow.down(settings)
    try:
        yield lab_flow.up(settings)
    finally:
        if not keep:
            lab_flow.down(settings)


def stream_key(lab_config, stream: str = STREAM) -> str:
    """The publish key of a default stream ("test" or "studio"), where site.yml generated it
    on the controller (the file the role livestream.aws.streams names for the lab's settings)."""
    return lab_streams.key_file(lab_config, stream).read_text().strip()


def aws_environment(lab_config) -> dict[str, str]:
    """The lab API's endpoint and credentials, from the aws.env the lab writes for shells."""
    lines = (lab_config.state_dir / "aws.env").read_text().splitlines()
    return dict(line.removeprefix("export ").split("=", 1) for line in lines if "=" in line)
