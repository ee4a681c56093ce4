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

# the provisioning playbooks' own default, so that `make lab` and `site.yml` agree
DEFAULT_STACK = "live"
# The collection's stack name rule (plugins/module_utils/naming.py), which the lab does not
# import (the collection is not on the lab's path: only Ansible's collection loader finds
# it, from ANSIBLE_COLLECTIONS_PATH or a playbook's adjacent collections/);
# tests/unit/test_naming.py proves the two take exactly the same names.
STACK_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")


def stack_name_error(name: str | None, option: str = "--stack, LIVESTREAM_STACK") -> str | None:
    """Why ``name`` is not a usable stack name (given as ``option``), or None."""
    if not STACK_PATTERN.match(name or ""):
        return (f"stack name {name!r} ({option}) is not valid: use 2 to 32 lowercase letters, digits and "
                "hyphens, starting with a letter and not ending with a hyphen")
    if name.startswith("sg-"):
        return f"stack name {name!r} ({option}) must not start with 'sg-': AWS refuses such security group names"
    return None


STATE_ROOT = Path(os.environ.get("LIVESTREAM_LAB_STATE", "/var/lib/livestream-lab"))
CACHE_ROOT = Path(os.environ.get("LIVESTREAM_LAB_CACHE", "/var/cache/livestream-lab"))
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_HIERARCHIES = ("systemd", "unified")

# Carrier-grade NAT space is never routed on the internet and rarely used on hosts: a /28
# per lab from it links the root namespace ("the internet") to the lab's internet gateway
# (a /29) and the gateway to the VPC router (a /30).
TRANSIT_BLOCK = ipaddress.ip_network("100.64.0.0/10")
TRANSIT_PREFIX = 28
# The instances' public and Elastic IPs: a /24 per lab from the block reserved for
# benchmarking networks (RFC 2544), assigned only inside the lab's namespaces. moto's own
# choices (54.214.x, a real AWS block, and 127.x, loopback) are never handed out.
PUBLIC_BLOCK = ipaddress.ip_network("198.18.0.0/15")
PUBLIC_PREFIX = 24
# what a lab API serves when no lab owns it (tests/api): the block's last /24, which no lab picks
STANDALONE_PUBLIC_BLOCK = list(PUBLIC_BLOCK.subnets(new_prefix=PUBLIC_PREFIX))[-1]
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
        error = stack_name_error(self.stack)
        if error:
            raise ValueError(error)

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
        """The VPC router's namespace."""
        return f"ls{self.tag}-router"

    @property
    def gateway_netns(self) -> str:
        """The internet gateway's namespace, between the VPC router and the internet."""
        return f"ls{self.tag}-igw"

    def bridge(self, subnet_index: int) -> str:
        return f"ls{self.tag}b{subnet_index}"

    def router_leg(self, subnet_index: int) -> tuple[str, str]:
        """(bridge side, router side) of the veth that puts the router on a subnet."""
        return f"ls{self.tag}r{subnet_index}", f"ls{self.tag}s{subnet_index}"

    @property
    def transit_links(self) -> tuple[str, str]:
        """(root side, gateway side) of the veth between "the internet" and the internet gateway."""
        return f"ls{self.tag}t0", f"ls{self.tag}t1"

    @property
    def gateway_links(self) -> tuple[str, str]:
        """(gateway side, router side) of the veth between the internet gateway and the VPC router."""
        return f"ls{self.tag}g0", f"ls{self.tag}g1"

    def machine_veth(self, machine_index: int, interface_index: int) -> str:
        return f"ls{self.tag}m{machine_index}i{interface_index}"

    @property
    def edge_netns(self) -> str:
        """The CDN edge's namespace (CloudFront's point of presence), on the internet."""
        return f"ls{self.tag}-edge"

    @property
    def edge_links(self) -> tuple[str, str]:
        """(root side, edge side) of the veth between "the internet" and the CDN edge."""
        return f"ls{self.tag}e0", f"ls{self.tag}e1"

    # -- addresses -------------------------------------------------------------------
    @property
    def transit_network(self) -> ipaddress.IPv4Network:
        """This lab's /28 of the transit block: both links below."""
        size = 2 ** (32 - TRANSIT_PREFIX)
        slots = TRANSIT_BLOCK.num_addresses // size
        base = int(TRANSIT_BLOCK.network_address) + (self.number % slots) * size
        return ipaddress.ip_network(f"{ipaddress.ip_address(base)}/{TRANSIT_PREFIX}")

    @property
    def internet_network(self) -> ipaddress.IPv4Network:
        """The link between the root namespace and the internet gateway."""
        return next(self.transit_network.subnets(new_prefix=29))

    @property
    def internet_address(self) -> ipaddress.IPv4Address:
        """The root namespace's address: the controller, the apt proxy and the ACME server.
        The lab's admin CIDR is this address alone."""
        return self.internet_network.network_address + 1

    @property
    def outsider_address(self) -> ipaddress.IPv4Address:
        """Another host on the internet, outside the admin CIDRs (what the bastion refuses)."""
        return self.internet_network.network_address + 2

    @property
    def gateway_internet_address(self) -> ipaddress.IPv4Address:
        """The internet gateway on the internet's side: where the public block is routed."""
        return self.internet_network.broadcast_address - 1

    @property
    def gateway_network(self) -> ipaddress.IPv4Network:
        """The link between the internet gateway and the VPC router."""
        return list(self.transit_network.subnets(new_prefix=30))[2]

    @property
    def gateway_vpc_address(self) -> ipaddress.IPv4Address:
        """The internet gateway on the VPC's side: where a route to igw-... leads."""
        return self.gateway_network.network_address + 1

    @property
    def router_gateway_address(self) -> ipaddress.IPv4Address:
        return self.gateway_network.network_address + 2

    @property
    def edge_network(self) -> ipaddress.IPv4Network:
        """The link between the root namespace and the CDN edge: the transit /28's last /30."""
        return list(self.transit_network.subnets(new_prefix=30))[3]

    @property
    def edge_link_address(self) -> ipaddress.IPv4Address:
        """The internet's side of the edge link: the edge's way to the lab's public addresses."""
        return self.edge_network.network_address + 1

    def default_public_block(self, offset: int = 0) -> ipaddress.IPv4Network:
        """The /24 of the public block this lab's API hands out, from the stack name."""
        blocks = list(PUBLIC_BLOCK.subnets(new_prefix=PUBLIC_PREFIX))[:-1]  # the last is the standalone API's
        return blocks[(self.number + offset) % len(blocks)]

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


# CloudFront's edge addresses: the last 16 addresses of the lab's public block (the lab API's
# managed prefix list com.amazonaws.global.cloudfront.origin-facing holds them; the API never
# hands them out as public or Elastic IPs)
EDGE_PREFIX = 28


def edge_block(public_block) -> ipaddress.IPv4Network:
    """The CDN edge's addresses in ``public_block`` (the lab's /24): its top /28."""
    return list(ipaddress.ip_network(public_block).subnets(new_prefix=EDGE_PREFIX))[-1]


def edge_address(public_block) -> ipaddress.IPv4Address:
    """The address the lab's one CDN edge serves viewers on and reaches origins from."""
    return edge_block(public_block).network_address + 1


def load(stack: str | None = None) -> LabConfig:
    return LabConfig(stack or os.environ.get("LIVESTREAM_STACK") or DEFAULT_STACK)
