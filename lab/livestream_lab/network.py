"""The VPC on Linux: a bridge per subnet, a router namespace programmed from the route
tables the API holds, an internet gateway namespace, and the root namespace as the internet.

    root ns ("the internet": controller, apt proxy, ACME), 100.64.x.y/29
       | routes each public address of the stack (198.18.x.y) to the gateway, nothing else
    gateway netns (the internet gateway): 1:1 NAT between each public address and its
       | instance's private address; only public addresses enter, only instances that
       | have one leave
    router netns (the VPC router): a leg x.x.x.1 on every subnet bridge, the VPC
       | resolver on x.x.0.2, per-subnet policy routing from the subnet's route table
    subnet bridges (root ns, no address) -- machines' veths

As on AWS, the internet reaches the VPC only at public addresses: the root namespace has
no route to any private one (the VPC block is unreachable from it) and the gateway drops
whatever from the internet is not addressed to a public address. An instance without a
public address has no way out unless its route table sends it through a NAT: the private
subnets send 0.0.0.0/0 where their route table says (the bastion's interface), and the
gateway lets out only the private addresses it translates. Traffic from one instance to
another's public address goes through the gateway and comes back from the sender's
public address (hairpin), so a security group rule naming a group matches it no more than
it would on AWS.

Security groups are enforced where AWS enforces them, at each instance's interface: the
subnet bridges hand IPv4 frames to the root namespace's iptables (br_netfilter), and a
chain per machine port holds its groups' rules, stateful like AWS's (conntrack). A frame
between two machines of one subnet never meets the router, so filtering on the router
alone would not do. A rule naming a group stands for its members' private addresses; a
CIDR rule meets the source as the instance sees it, after the gateway's NAT; a rule naming
a prefix list (CloudFront's origin-facing list) stands for the list's entries.
Before the groups, EC2's source/destination check: a port whose interface has it on
passes only frames from and to the interface's own address, so the bastion forwards for
the private subnet only once its check is off, as a NAT instance on AWS.

The CDN edge (livestream_lab.edge) is another host of the internet, in a namespace of its
own beside the root namespace; `apply_security_groups` lets its realiser follow a group
changed between `up`s.
"""

from __future__ import annotations

import ipaddress
import shutil
from pathlib import Path

from .config import LabConfig
from .stack import Permission, Stack, Subnet
from .system import link_exists, output, run

# route table ids in the router namespace: one per subnet, from this base, and the one
# for what arrives from the internet gateway (the gateway's own route table: local only)
TABLE_BASE = 100
GATEWAY_TABLE = TABLE_BASE + 99
RULE_PREF_BASE = 1000


def comment(lab: LabConfig) -> str:
    return f"livestream-lab:{lab.stack}"


def _namespace(ns: str) -> None:
    if ns not in output("ip", "netns", "list").split():
        run("ip", "netns", "add", ns)
    run("ip", "link", "set", "lo", "up", netns=ns)
    for key, value in (("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.rp_filter", "0"),
                       ("net.ipv4.conf.default.rp_filter", "0"),
                       # the router hands packets back out of a leg: no redirects, as in AWS
                       ("net.ipv4.conf.all.send_redirects", "0"),
                       ("net.ipv4.conf.default.send_redirects", "0")):
        run("sysctl", "-qw", f"{key}={value}", netns=ns)


def _link(near: str, near_ns: str | None, far: str, far_ns: str) -> None:
    """A veth pair with one end in ``near_ns`` (None: the root namespace), the other in ``far_ns``."""
    exists = run("ip", "link", "show", near, netns=near_ns, check=False).returncode == 0 if near_ns \
        else link_exists(near)
    if not exists:
        run("ip", "link", "add", near, "type", "veth", "peer", "name", far)
        run("ip", "link", "set", far, "netns", far_ns)
        if near_ns:
            run("ip", "link", "set", near, "netns", near_ns)


def up(lab: LabConfig, stack: Stack) -> None:
    ns, gateway = lab.netns, lab.gateway_netns
    _namespace(ns)
    _namespace(gateway)
    run("ip", "addr", "replace", f"{stack.resolver_address}/32", "dev", "lo", netns=ns)

    # the internet (root namespace) <-> the internet gateway
    root_side, gateway_side = lab.transit_links
    _link(root_side, None, gateway_side, gateway)
    prefix = lab.internet_network.prefixlen
    for address in (lab.internet_address, lab.outsider_address):
        run("ip", "addr", "replace", f"{address}/{prefix}", "dev", root_side)
    run("ip", "link", "set", root_side, "up")
    run("ip", "addr", "replace", f"{lab.gateway_internet_address}/{prefix}", "dev", gateway_side, netns=gateway)
    run("ip", "link", "set", gateway_side, "up", netns=gateway)
    # the internet gateway <-> the VPC router
    gateway_leg, router_leg = lab.gateway_links
    _link(gateway_leg, gateway, router_leg, ns)
    prefix = lab.gateway_network.prefixlen
    run("ip", "addr", "replace", f"{lab.gateway_vpc_address}/{prefix}", "dev", gateway_leg, netns=gateway)
    run("ip", "link", "set", gateway_leg, "up", netns=gateway)
    run("ip", "addr", "replace", f"{lab.router_gateway_address}/{prefix}", "dev", router_leg, netns=ns)
    run("ip", "link", "set", router_leg, "up", netns=ns)

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
    _program_gateway(lab, stack)
    _root_routes(lab, stack)
    _security_groups(lab, stack)


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
    # what the gateway hands in goes to the subnet its (private) destination is in
    table = str(GATEWAY_TABLE)
    run("ip", "-4", "route", "flush", "table", table, netns=ns, check=False)
    for index, subnet in enumerate(stack.subnets):
        run("ip", "-4", "route", "replace", str(subnet.cidr), "dev", lab.router_leg(index)[1], "table", table, netns=ns)
    run("ip", "-4", "rule", "add", "pref", str(RULE_PREF_BASE + 99), "iif", lab.gateway_links[1], "lookup", table,
        netns=ns)


def _program_gateway(lab: LabConfig, stack: Stack) -> None:
    """The internet gateway: 1:1 NAT for every instance with a public address, in both
    directions and for hairpin traffic; nothing else crosses it. Rewritten whole on every
    run, so that it follows the API's addresses (an Elastic IP moved, an instance gone)."""
    ns = lab.gateway_netns
    vpc_leg = lab.gateway_links[0]
    run("ip", "-4", "route", "replace", str(stack.vpc_cidr), "via", str(lab.router_gateway_address), "dev", vpc_leg,
        netns=ns)
    translated = stack.public_to_private()
    nat = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
           ":POSTROUTING ACCEPT [0:0]"]
    for public, private in sorted(translated.items()):
        nat.append(f"-A PREROUTING -d {public}/32 -j DNAT --to-destination {private}")
        nat.append(f"-A POSTROUTING -s {private}/32 -j SNAT --to-source {public}")
    nat.append("COMMIT")
    rules = ["*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
             "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
             "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
             # in: only what was addressed to a public address (translated above)
             f"-A FORWARD -m conntrack --ctstate DNAT -o {vpc_leg} -j ACCEPT"]
    # out (and hairpin): only from an instance that has a public address to translate to
    rules += [f"-A FORWARD -i {vpc_leg} -s {private}/32 -j ACCEPT" for private in sorted(translated.values())]
    rules.append("COMMIT")
    run("iptables-restore", stdin_text="\n".join(nat + rules) + "\n", netns=ns)


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
            routes.append([destination, "via", str(lab.gateway_vpc_address), "dev", lab.gateway_links[1]])
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
    # The internet reaches the lab's public addresses through the gateway; the VPC's
    # private addresses are unreachable from it, and must not fall through to the host's
    # default route either.
    run("ip", "route", "replace", "unreachable", str(stack.vpc_cidr))
    link, gateway = lab.transit_links[0], str(lab.gateway_internet_address)
    wanted = {f"{public}" for public in stack.public_to_private()}
    for line in output("ip", "-4", "route", "show", "dev", link).splitlines():
        words = line.split()
        if "via" in words and words[words.index("via") + 1] == gateway and words[0] not in wanted:
            run("ip", "-4", "route", "del", words[0], "dev", link, check=False)
    for public in sorted(wanted):
        run("ip", "-4", "route", "replace", public, "via", gateway, "dev", link, "src", str(lab.internet_address))


def _sg_chain(lab: LabConfig) -> str:
    return f"ls{lab.tag}-sg"


def _match(permission: Permission, peer: str, direction: str) -> list[str]:
    """iptables match arguments for one peer of a rule (direction: "-s" in, "-d" out)."""
    protocol = {"6": "tcp", "17": "udp", "1": "icmp"}.get(permission.protocol, permission.protocol)
    words = [direction, peer]
    if protocol in ("-1", "all"):
        return words
    words += ["-p", protocol]
    low, high = permission.from_port, permission.to_port
    if protocol in ("tcp", "udp") and low not in (None, -1):
        words += ["--dport", f"{low}:{high}" if high not in (None, low) else str(low)]
    elif protocol == "icmp" and low not in (None, -1):
        words += ["--icmp-type", f"{low}/{high}" if high not in (None, -1) else str(low)]
    return words


def security_group_rules(lab: LabConfig, stack: Stack) -> list[str]:
    """iptables-restore lines: one chain that every frame crossing a subnet bridge goes
    through, and for each machine port an egress chain (RETURN = allowed) and an ingress
    chain (ACCEPT = allowed). A new connection between two machines must pass the sender's
    egress and the receiver's ingress rules; answers pass as established."""
    main = _sg_chain(lab)
    chains, rules = [main], []
    # EC2's source/destination check, before anything: an interface with it on sends only
    # from its own address and takes only what is addressed to it, established or not (a
    # NAT instance works only once the check is off)
    for index, instance in enumerate(stack.instances):
        for number, interface in enumerate(instance.interfaces):
            if interface.source_dest_check:
                port = lab.machine_veth(index, number)
                rules += [f"-A {main} -m physdev --physdev-is-bridged --physdev-in {port} ! -s {interface.address} -j DROP",
                          f"-A {main} -m physdev --physdev-is-bridged --physdev-out {port} ! -d {interface.address} -j DROP"]
    rules.append(f"-A {main} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT")
    # nothing passes for being the lab's: what the router forwards keeps its sources and
    # meets the groups' rules (the lab probes its machines from inside them)
    for index, instance in enumerate(stack.instances):
        for number, interface in enumerate(instance.interfaces):
            port = lab.machine_veth(index, number)
            groups = [stack.security_groups[g] for g in interface.groups if g in stack.security_groups]
            chains += [f"{port}-out", f"{port}-in"]
            rules.append(f"-A {main} -m physdev --physdev-is-bridged --physdev-in {port} -j {port}-out")
            rules.append(f"-A {main} -m physdev --physdev-is-bridged --physdev-out {port} -j {port}-in")
            for group in groups:
                for permission in group.egress:
                    rules += [f"-A {port}-out {' '.join(_match(permission, peer, '-d'))} -j RETURN" for peer in permission.peers]
                for permission in group.ingress:
                    rules += [f"-A {port}-in {' '.join(_match(permission, peer, '-s'))} -j ACCEPT" for peer in permission.peers]
            rules += [f"-A {port}-out -j DROP", f"-A {port}-in -j DROP"]
    # passed the sender's egress rules, and the receiver is the router: on its way
    rules.append(f"-A {main} -j ACCEPT")
    return ["*filter"] + [f":{chain} - [0:0]" for chain in chains] + rules + ["COMMIT"]


# where this lab hooks into the root namespace's own chains
HOOKED_CHAINS = (("filter", "FORWARD"), ("raw", "PREROUTING"))


def our_rules(lab: LabConfig, table: str, chain: str) -> list[str]:
    """This lab's rules in one of the root namespace's chains, as `iptables -S` prints them."""
    return [line for line in output("iptables", "-w", "-t", table, "-S", chain).splitlines()
            if f'--comment "{comment(lab)}"' in line or f"--comment {comment(lab)}" in line]


def conntrack_zone(lab: LabConfig, subnet_index: int) -> int:
    """Each subnet bridge tracks connections in a zone of its own: a connection from the
    private subnet to the public one crosses two bridges, and with one shared entry the
    first bridge to see an RST would end it before the second one let the RST through."""
    return 1 + (lab.number * 8 + subnet_index) % 65534


def _security_groups(lab: LabConfig, stack: Stack) -> None:
    """Enforce the API's security groups on the machines' ports; rewritten whole on every
    run, so that `up` follows rules changed in the API. Also lets the subnet bridges switch
    when the host's FORWARD policy is DROP (Docker).

    As on AWS, a change never opens the ports while it is made: the chains are replaced in
    one iptables-restore transaction (the kernel swaps them at once), and the bridges' hooks
    into the root namespace's chains stay in place. `up` and the CDN edge's realiser may
    both apply the groups at the same time; either writes a whole set."""
    if not Path("/proc/sys/net/bridge").exists() and shutil.which("modprobe"):
        run("modprobe", "br_netfilter")  # a module on Debian's kernel, built in on others
    for index in range(len(stack.subnets)):
        run("ip", "link", "set", lab.bridge(index), "type", "bridge", "nf_call_iptables", "1")
    rules = security_group_rules(lab, stack)
    run("iptables-restore", "-w", "--noflush", stdin_text="\n".join(rules) + "\n")
    # the ports' chains of machines the stack no longer has: unreferenced since the restore
    _remove_chains(lab, keep={line[1:].split()[0] for line in rules if line.startswith(":")})
    for index in range(len(stack.subnets)):
        bridge, mark = lab.bridge(index), ["-m", "comment", "--comment", comment(lab)]
        ensure_rule("raw", "PREROUTING", ["-i", bridge, *mark, "-j", "CT", "--zone", str(conntrack_zone(lab, index))])
        ensure_rule("filter", "FORWARD", ["-i", bridge, "-o", bridge, *mark, "-j", _sg_chain(lab)])


def ensure_rule(table: str, chain: str, rule: list[str]) -> None:
    """``rule`` at the head of one of the root namespace's chains, unless it is there already."""
    if run("iptables", "-w", "-t", table, "-C", chain, *rule, check=False).returncode != 0:
        run("iptables", "-w", "-t", table, "-I", chain, *rule)


def apply_security_groups(lab: LabConfig, stack: Stack) -> None:
    """The API's security groups enforced again, between `up`s (the CDN edge's realiser
    calls it when a group changed: CloudFront's prefix list in the frontend's rules)."""
    _security_groups(lab, stack)


def _remove_hooks(lab: LabConfig) -> None:
    for table, chain in HOOKED_CHAINS:
        for line in our_rules(lab, table, chain):
            run("iptables", "-w", "-t", table, *line.replace("-A", "-D", 1).replace('"', "").split(), check=False)


def _remove_chains(lab: LabConfig, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """The lab's chains in the root namespace, but those in ``keep``."""
    chains = [line.split()[1] for line in output("iptables", "-w", "-S").splitlines()
              if line.startswith(f"-N ls{lab.tag}") and line.split()[1] not in keep]
    for chain in chains:
        run("iptables", "-w", "-F", chain, check=False)
    for chain in chains:
        run("iptables", "-w", "-X", chain, check=False)


def down(lab: LabConfig) -> None:
    """Remove every kernel object of the lab, found by name: works after a partial up."""
    prefix = f"ls{lab.tag}"
    _remove_hooks(lab)
    _remove_chains(lab)
    namespaces = output("ip", "netns", "list").split()
    for ns in (lab.netns, lab.gateway_netns):
        if ns in namespaces:
            run("ip", "netns", "del", ns)
    for line in output("ip", "-o", "link", "show").splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(prefix):
            run("ip", "link", "del", name, check=False)


def remove_root_route(vpc_cidr: str) -> None:
    run("ip", "route", "del", "unreachable", vpc_cidr, check=False)
