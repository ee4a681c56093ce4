"""The VPC on Linux: a bridge per subnet, a router namespace programmed from the route
tables the API holds, and the root namespace as the internet.

    root ns ("the internet": controller, apt proxy, ACME)
       | transit veth (100.64.x.y/30)
    router netns: leg x.x.x.1 on every subnet bridge, VPC resolver on x.x.0.2
       | per-subnet policy routing from the subnet's route table
    subnet bridges (root ns, no address) -- machines' veths

The root namespace gets routes to the public subnets (those whose route table sends
0.0.0.0/0 to an internet gateway) and nothing else: the rest of the VPC is unreachable
from it, as from the internet. Private subnets send 0.0.0.0/0 where their route table
says (the bastion's interface): the router forwards and nothing NATs, so the backend
reaches the outside only if the bastion forwards and masquerades.
"""

from __future__ import annotations

import ipaddress

from .config import LabConfig
from .stack import Stack, Subnet
from .system import link_exists, output, run

# route table ids in the router namespace: one per subnet, from this base
TABLE_BASE = 100
RULE_PREF_BASE = 1000


def comment(lab: LabConfig) -> str:
    return f"livestream-lab:{lab.stack}"


def up(lab: LabConfig, stack: Stack) -> None:
    ns = lab.netns
    if lab.netns not in output("ip", "netns", "list").split():
        run("ip", "netns", "add", ns)
    run("ip", "link", "set", "lo", "up", netns=ns)
    for key, value in (("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.rp_filter", "0"),
                       ("net.ipv4.conf.default.rp_filter", "0"),
                       # the router hands packets back out of a leg: no redirects, as in AWS
                       ("net.ipv4.conf.all.send_redirects", "0"),
                       ("net.ipv4.conf.default.send_redirects", "0")):
        run("sysctl", "-qw", f"{key}={value}", netns=ns)
    run("ip", "addr", "replace", f"{stack.resolver_address}/32", "dev", "lo", netns=ns)

    root_side, router_side = lab.transit_links
    if not link_exists(root_side):
        run("ip", "link", "add", root_side, "type", "veth", "peer", "name", router_side)
        run("ip", "link", "set", router_side, "netns", ns)
    prefix = lab.transit_network.prefixlen
    run("ip", "addr", "replace", f"{lab.internet_address}/{prefix}", "dev", root_side)
    run("ip", "link", "set", root_side, "up")
    run("ip", "addr", "replace", f"{lab.router_transit_address}/{prefix}", "dev", router_side, netns=ns)
    run("ip", "link", "set", router_side, "up", netns=ns)

    for index, subnet in enumerate(stack.subnets):
        bridge = lab.bridge(index)
        if not link_exists(bridge):
            run("ip", "link", "add", bridge, "type", "bridge")
        # a bridge in the root namespace must not become a way around the router
        run("sysctl", "-qw", f"net.ipv6.conf.{bridge}.disable_ipv6=1", check=False)
        run("ip", "link", "set", bridge, "up")
        bridge_side, leg = lab.router_leg(index)
        if not link_exists(bridge_side):
            run("ip", "link", "add", bridge_side, "type", "veth", "peer", "name", leg)
            run("ip", "link", "set", leg, "netns", ns)
        run("ip", "link", "set", bridge_side, "master", bridge, "up")
        run("ip", "addr", "replace", f"{subnet.router_address}/{subnet.cidr.prefixlen}", "dev", leg, netns=ns)
        run("ip", "link", "set", leg, "up", netns=ns)

    _program_router(lab, stack)
    _root_routes(lab, stack)
    _host_firewall(lab, stack)


def _program_router(lab: LabConfig, stack: Stack) -> None:
    ns = lab.netns
    # rules and tables are rewritten whole on every run: `up` is idempotent and follows
    # the API when a route table changed
    for line in output("ip", "-4", "rule", "show", netns=ns).splitlines():
        pref = int(line.split(":", 1)[0])
        if RULE_PREF_BASE <= pref < RULE_PREF_BASE + 100:
            run("ip", "-4", "rule", "del", "pref", str(pref), netns=ns)
    for index, subnet in enumerate(stack.subnets):
        table = str(TABLE_BASE + index)
        run("ip", "-4", "route", "flush", "table", table, netns=ns, check=False)
        for route in _routes(lab, stack, subnet):
            run("ip", "-4", "route", "replace", *route, "table", table, netns=ns)
        leg = lab.router_leg(index)[1]
        run("ip", "-4", "rule", "add", "pref", str(RULE_PREF_BASE + index), "iif", leg, "lookup", table, netns=ns)

    # Only answers and public subnets cross from the internet into the VPC.
    root_leg = lab.transit_links[1]
    rules = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
             "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
             f"-A FORWARD ! -i {root_leg} -j ACCEPT"]
    for index, subnet in enumerate(stack.subnets):
        if subnet.public:
            rules.append(f"-A FORWARD -i {root_leg} -o {lab.router_leg(index)[1]} -j ACCEPT")
    rules.append("COMMIT")
    run("iptables-restore", stdin_text="\n".join(rules) + "\n", netns=ns)


def _routes(lab: LabConfig, stack: Stack, subnet: Subnet) -> list[list[str]]:
    """The subnet's route table as `ip route` arguments, most specific first."""
    routes = []
    for route in sorted(subnet.routes, key=lambda r: -ipaddress.ip_network(r.get("DestinationCidrBlock", "0.0.0.0/0")).prefixlen):
        destination = route.get("DestinationCidrBlock")
        if not destination or route.get("State", "active") != "active":
            continue
        if route.get("GatewayId") == "local":
            # VPC traffic goes straight to the subnet it belongs to, never through a NAT
            for index, other in enumerate(stack.subnets):
                routes.append([str(other.cidr), "dev", lab.router_leg(index)[1]])
        elif route.get("GatewayId", "").startswith("igw-"):
            routes.append([destination, "via", str(lab.internet_address)])
        else:
            target = None
            if route.get("NetworkInterfaceId"):
                target = stack.address_of_eni(route["NetworkInterfaceId"])
            elif route.get("InstanceId"):
                target = stack.address_of_instance(route["InstanceId"])
            if target is None:
                routes.append(["blackhole", destination])
            else:
                index = next(i for i, other in enumerate(stack.subnets) if target in other.cidr)
                routes.append([destination, "via", str(target), "dev", lab.router_leg(index)[1]])
    return routes


def _root_routes(lab: LabConfig, stack: Stack) -> None:
    # Anything of the VPC that is not a public subnet is unreachable from the internet,
    # and must not fall through to the host's default route either.
    run("ip", "route", "replace", "unreachable", str(stack.vpc_cidr))
    for subnet in stack.subnets:
        if subnet.public:
            run("ip", "route", "replace", str(subnet.cidr), "via", str(lab.router_transit_address))


def _host_firewall(lab: LabConfig, stack: Stack) -> None:
    """Let the subnet bridges switch even when the host's FORWARD policy is DROP (Docker)."""
    existing = output("iptables", "-w", "-S", "FORWARD")
    for index in range(len(stack.subnets)):
        bridge = lab.bridge(index)
        rule = ["FORWARD", "-i", bridge, "-o", bridge, "-m", "comment", "--comment", comment(lab), "-j", "ACCEPT"]
        if f"-i {bridge} -o {bridge}" not in existing:
            run("iptables", "-w", "-I", *rule)


def down(lab: LabConfig) -> None:
    """Remove every kernel object of the lab, found by name: works after a partial up."""
    prefix = f"ls{lab.tag}"
    for line in output("iptables", "-w", "-S").splitlines():
        if f'--comment "{comment(lab)}"' in line or f"--comment {comment(lab)}" in line:
            run("iptables", "-w", *line.replace("-A", "-D", 1).replace('"', "").split(), check=False)
    if lab.netns in output("ip", "netns", "list").split():
        run("ip", "netns", "del", lab.netns)
    for line in output("ip", "-o", "link", "show").splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(prefix):
            run("ip", "link", "del", name, check=False)


def remove_root_route(vpc_cidr: str) -> None:
    run("ip", "route", "del", "unreachable", vpc_cidr, check=False)
