"""Everything a lab is called and where it lives, derived from the stack name.

Two labs on one host must not collide with each other or with the host, so every name
(interfaces, namespace, cgroups, state directory) and every address block the lab picks
comes from a short hash of the stack name.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_STACK = "live"
# the provisioning playbooks' own default, so that `make lab` and `site.yml` agree
STACK_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")

STATE_ROOT = Path(os.environ.get("LIVESTREAM_LAB_STATE", "/var/lib/livestream-lab"))
CACHE_ROOT = Path(os.environ.get("LIVESTREAM_LAB_CACHE", "/var/cache/livestream-lab"))
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_HIERARCHIES = ("systemd", "unified")

# Carrier-grade NAT space is never routed on the internet and rarely used on hosts: a /30
# per lab from it links the root namespace ("the internet") to the lab's router.
TRANSIT_BLOCK = ipaddress.ip_network("100.64.0.0/10")
APT_PROXY_PORT = 3142
ACME_PORT = 14000
ACME_MANAGEMENT_PORT = 15000
PUBLIC_DNS_PORT = 8053
PUBLIC_DNS_MANAGEMENT_PORT = 8055

REPOSITORY = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LabConfig:
    stack: str

    def __post_init__(self):
        if not STACK_PATTERN.match(self.stack):
            raise ValueError(
                f"stack name {self.stack!r} is not valid: use 2 to 32 lowercase letters, digits and hyphens"
            )

    @property
    def tag(self) -> str:
        """Four hex digits that name this lab's kernel objects (interface names are <= 15 chars)."""
        return hashlib.sha256(self.stack.encode()).hexdigest()[:4]

    @property
    def number(self) -> int:
        return int(self.tag, 16)

    # -- where things live -----------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / self.stack

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def ssh_key(self) -> Path:
        return self.state_dir / "id_ed25519"

    @property
    def ssh_config(self) -> Path:
        return self.state_dir / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.state_dir / "known_hosts"

    @property
    def ca_cert(self) -> Path:
        """The CA a client trusts to reach the frontend over HTTPS (pebble's issuing root)."""
        return self.state_dir / "acme" / "issuer-root.pem"

    @property
    def cgroup_name(self) -> str:
        return f"livestream-lab-{self.stack}"

    def cgroup_dirs(self, machine: str | None = None) -> list[Path]:
        parts = [self.cgroup_name] + ([machine] if machine else [])
        return [CGROUP_ROOT.joinpath(hierarchy, *parts) for hierarchy in CGROUP_HIERARCHIES]

    # -- kernel object names ---------------------------------------------------------
    @property
    def netns(self) -> str:
        return f"ls{self.tag}-router"

    def bridge(self, subnet_index: int) -> str:
        return f"ls{self.tag}b{subnet_index}"

    def router_leg(self, subnet_index: int) -> tuple[str, str]:
        """(bridge side, router side) of the veth that puts the router on a subnet."""
        return f"ls{self.tag}r{subnet_index}", f"ls{self.tag}s{subnet_index}"

    @property
    def transit_links(self) -> tuple[str, str]:
        """(root side, router side) of the veth between "the internet" and the router."""
        return f"ls{self.tag}t0", f"ls{self.tag}t1"

    def machine_veth(self, machine_index: int, interface_index: int) -> str:
        return f"ls{self.tag}m{machine_index}i{interface_index}"

    # -- addresses -------------------------------------------------------------------
    @property
    def transit_network(self) -> ipaddress.IPv4Network:
        slots = TRANSIT_BLOCK.num_addresses // 4
        base = int(TRANSIT_BLOCK.network_address) + (self.number % slots) * 4
        return ipaddress.ip_network(f"{ipaddress.ip_address(base)}/30")

    @property
    def internet_address(self) -> ipaddress.IPv4Address:
        """The root namespace's address: the apt proxy and the ACME server listen here."""
        return self.transit_network.network_address + 1

    @property
    def router_transit_address(self) -> ipaddress.IPv4Address:
        return self.transit_network.network_address + 2

    def default_vpc_cidr(self, offset: int = 0) -> ipaddress.IPv4Network:
        """10.X.0.0/16 with X from the stack name, clear of 10.0/16 (AWS's default, often taken)."""
        second = 16 + (self.number + offset) % 224
        return ipaddress.ip_network(f"10.{second}.0.0/16")

    @property
    def domain(self) -> str:
        # .test is reserved (RFC 2606): the name can never leak to a real resolver's answer
        return f"{self.stack}.livestream.test"

    @property
    def hosted_zone(self) -> str:
        return "livestream.test"

    @property
    def acme_directory(self) -> str:
        return f"https://{self.internet_address}:{ACME_PORT}/dir"

    @property
    def apt_proxy_url(self) -> str:
        return f"http://{self.internet_address}:{APT_PROXY_PORT}"


def load(stack: str | None = None) -> LabConfig:
    return LabConfig(stack or os.environ.get("LIVESTREAM_STACK") or DEFAULT_STACK)
