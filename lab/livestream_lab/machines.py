"""EC2 instances as systemd-nspawn machines: systemd as PID 1, sshd, the stack's key.

Each machine boots from an overlay on the cached image of its AMI's Debian release, with
the private addresses the API assigned, on the bridge of its subnet. It runs under a supervisor process (this
module's ``supervise``) that puts it in its own cgroup (the host has no systemd to do
it), restarts it when it asks to reboot (nspawn exits with 133) and re-attaches its
interfaces to their bridges after every boot.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import image
from .config import CGROUP_HIERARCHIES, LabConfig
from .stack import Instance, Stack
from .system import alive, kill, run, spawn, wait_for

REBOOT_EXIT_CODE = 133


def machine_dir(lab: LabConfig, instance: Instance) -> Path:
    return lab.state_dir / "machines" / instance.id


def hostname(instance: Instance) -> str:
    return instance.name if instance.name and len(instance.name) <= 63 else instance.id


def spec(lab: LabConfig, stack: Stack, index: int, instance: Instance) -> dict:
    base = machine_dir(lab, instance)
    interfaces = []
    for number, interface in enumerate(instance.interfaces):
        subnet_index = next(i for i, subnet in enumerate(stack.subnets) if subnet.id == interface.subnet_id)
        interfaces.append({
            "host": lab.machine_veth(index, number),
            "container": f"eth{number}",
            "bridge": lab.bridge(subnet_index),
        })
    return {
        "name": hostname(instance),
        "root": str(base / "root"),
        "interfaces": interfaces,
        "cgroups": [str(path) for path in lab.cgroup_dirs(instance.id)],
        "pid_file": str(base / "nspawn.pid"),
    }


def prepare(lab: LabConfig, stack: Stack, instance: Instance) -> None:
    """Mount the machine's root and write what cloud-init would: name, addresses, key."""
    base = machine_dir(lab, instance)
    root, upper, work = base / "root", base / "upper", base / "work"
    for path in (root, upper, work):
        path.mkdir(parents=True, exist_ok=True)
    if run("mountpoint", "-q", root, check=False).returncode != 0:
        # the image of the release the instance's AMI is (built now if it is not cached yet)
        lower = image.build(image.suite_of(instance.image_name))
        run("mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={upper},workdir={work}", root)

    name = hostname(instance)
    (root / "etc/hostname").write_text(name + "\n")
    (root / "etc/hosts").write_text(
        f"127.0.0.1 localhost\n127.0.1.1 {name}\n::1 localhost ip6-localhost ip6-loopback\n")
    if not list((root / "etc/ssh").glob("ssh_host_*_key")):
        run("ssh-keygen", "-q", "-A", "-f", root)
    # the VPC resolver, as DHCP would hand it out
    resolv = root / "etc/resolv.conf"
    if resolv.is_symlink():
        resolv.unlink()
    resolv.write_text(f"nameserver {stack.resolver_address}\nsearch ec2.internal\n")

    network_dir = root / "etc/systemd/network"
    network_dir.mkdir(parents=True, exist_ok=True)
    for number, interface in enumerate(instance.interfaces):
        subnet = stack.subnet(interface.subnet_id)
        lines = ["[Match]", f"Name=eth{number}", "", "[Network]",
                 f"Address={interface.address}/{subnet.cidr.prefixlen}",
                 # without it systemd-networkd-wait-online hangs after a reboot
                 "IPv6AcceptRA=no", "LinkLocalAddressing=no"]
        if number == 0:
            lines.append(f"Gateway={subnet.router_address}")
        (network_dir / f"10-eth{number}.network").write_text("\n".join(lines) + "\n")

    # the lab's internet for apt is a caching proxy; the backend reaches it only via NAT
    (root / "etc/apt/apt.conf.d/01livestream-lab-proxy").write_text(
        f'Acquire::http::Proxy "{lab.apt_proxy_url}";\n')

    key = stack.public_keys.get(instance.key_name or "", "")
    if key:
        ssh_dir = root / "home/admin/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(key + "\n")
        os.chmod(ssh_dir / "authorized_keys", 0o600)
        uid_gid = _admin_ids(root)
        for path in (ssh_dir, ssh_dir / "authorized_keys"):
            os.chown(path, *uid_gid)

    # certbot and curl on the machines trust the lab's ACME server, as they would trust
    # Let's Encrypt's: its TLS CA joins the system store
    acme_ca = lab.state_dir / "acme" / "tls-ca.pem"
    if acme_ca.exists():
        target = root / "usr/local/share/ca-certificates/livestream-lab-acme.crt"
        if not target.exists() or target.read_bytes() != acme_ca.read_bytes():
            target.write_bytes(acme_ca.read_bytes())
            run("chroot", root, "update-ca-certificates", check=False)


def _admin_ids(root: Path) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == "admin":
            return int(fields[2]), int(fields[3])
    raise LookupError("the image has no admin user")


def start(lab: LabConfig, stack: Stack, index: int, instance: Instance) -> None:
    base = machine_dir(lab, instance)
    supervisor_pid = base / "supervisor.pid"
    if supervisor_pid.exists() and alive(int(supervisor_pid.read_text() or 0)):
        return
    machine = spec(lab, stack, index, instance)
    (base / "machine.json").write_text(json.dumps(machine, indent=2))
    for path in machine["cgroups"]:
        Path(path).mkdir(parents=True, exist_ok=True)
    pid = spawn([sys.executable, "-m", "livestream_lab.machines", str(base / "machine.json")],
                str(lab.state_dir), base / "console.log")
    supervisor_pid.write_text(str(pid))


def named_dir(lab: LabConfig, name: str) -> Path:
    """The state directory of the machine whose host name is ``name``."""
    for spec_path in sorted((lab.state_dir / "machines").glob("*/machine.json")):
        if json.loads(spec_path.read_text())["name"] == name:
            return spec_path.parent
    raise LookupError(f"{lab.stack}: no machine called {name}")


def leader_pid(lab: LabConfig, name: str) -> int:
    """The host's PID of the machine's init (PID 1 inside): nsenter's target for its namespaces."""
    pid_file = named_dir(lab, name) / "nspawn.pid"
    nspawn = pid_file.read_text().strip() if pid_file.exists() else ""
    try:
        children = Path(f"/proc/{nspawn}/task/{nspawn}/children").read_text().split()
    except OSError:
        children = []
    if not nspawn or not children:
        raise LookupError(f"{lab.stack}: machine {name} is not running")
    return int(children[0])


def in_network_of(lab: LabConfig, name: str, argv: list[str]) -> list[str]:
    """``argv`` run from the host inside the machine's network namespace only: the machine's
    addresses and loopback, the host's files, processes and CPU accounting."""
    return ["nsenter", f"--target={leader_pid(lab, name)}", "--net", "--", *argv]


def unit_cgroup(lab: LabConfig, name: str, unit: str) -> Path:
    """The cgroup (unified hierarchy) of the machine's systemd unit ``unit``, e.g.
    ``nginx.service`` or ``livestream-stream@test.service`` (under its template's slice):
    the machine's systemd makes it under the machine's own cgroup, where the host reads
    the unit's CPU time and processes without entering the machine."""
    top = lab.cgroup_dirs(named_dir(lab, name).name)[CGROUP_HIERARCHIES.index("unified")]
    found = sorted(top.rglob(unit), key=lambda path: len(path.parts))
    if not found:
        raise LookupError(f"{lab.stack}: no unit {unit} running on {name}")
    return found[0]


def unit_pids(lab: LabConfig, name: str, unit: str) -> list[int]:
    """The host's PIDs of the unit's processes now."""
    return [int(pid) for pid in (unit_cgroup(lab, name, unit) / "cgroup.procs").read_text().split()]


def wait_booted(lab: LabConfig, instance: Instance, timeout: float = 120) -> None:
    """Until sshd answers on the machine's address, asked from inside the machine: the lab
    has no seat in the VPC that the security groups would have to let in."""
    probe = ["bash", "-c", f"exec 3<>/dev/tcp/{instance.private_address}/22"]

    def answers():
        try:
            command = in_network_of(lab, hostname(instance), probe)
        except LookupError:
            return False  # not started yet, or between two boots
        return run(*command, check=False).returncode == 0

    wait_for(answers, timeout, f"sshd on {instance.name} ({instance.private_address})")


def remove_cgroups(lab: LabConfig) -> None:
    """Depth first: the machines' systemd made cgroups of its own under ours.

    A machine whose nspawn had to be killed leaves its processes behind (they live in a
    PID namespace of their own): whatever is still in the lab's cgroups is killed first.
    """
    for top in lab.cgroup_dirs():
        if not top.exists():
            continue
        for procs in top.rglob("cgroup.procs"):
            for pid in procs.read_text().split():
                kill(int(pid), signal.SIGKILL)
        for directory in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            _rmdir(directory)
        _rmdir(top)


def _rmdir(directory: Path) -> None:
    for _attempt in range(50):
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)


def unmount(lab: LabConfig) -> None:
    machines = lab.state_dir / "machines"
    for line in Path("/proc/mounts").read_text().splitlines():
        mount_point = line.split()[1]
        if mount_point.startswith(str(machines) + "/"):
            run("umount", "-l", mount_point, check=False)


# -- the supervisor: runs detached, one per machine ------------------------------------------

def supervise(spec_path: Path) -> int:
    machine = json.loads(spec_path.read_text())
    for path in machine["cgroups"]:
        (Path(path) / "cgroup.procs").write_text(str(os.getpid()))
    command = ["systemd-nspawn", "--boot", "--register=no", "--keep-unit", "--quiet",
               f"--machine={machine['name']}", f"--hostname={machine['name']}",
               f"--directory={machine['root']}", "--resolv-conf=off", "--timezone=off",
               "--link-journal=no", "--console=read-only"]
    command += [f"--network-veth-extra={item['host']}:{item['container']}" for item in machine["interfaces"]]
    nspawn: subprocess.Popen | None = None
    stopping = False

    def terminate(*_):
        nonlocal stopping
        stopping = True
        if nspawn and nspawn.poll() is None:
            # nspawn turns SIGTERM into an orderly shutdown of the machine's systemd
            nspawn.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    while not stopping:
        nspawn = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        Path(machine["pid_file"]).write_text(str(nspawn.pid))
        for item in machine["interfaces"]:
            _attach(item["host"], item["bridge"], nspawn)
        code = nspawn.wait()
        if code != REBOOT_EXIT_CODE:
            return 0 if stopping else code
    return 0


def _attach(link: str, bridge: str, nspawn: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and nspawn.poll() is None:
        if subprocess.run(["ip", "link", "set", link, "master", bridge, "up"],
                          stderr=subprocess.DEVNULL, check=False).returncode == 0:
            return
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(supervise(Path(sys.argv[1])))
