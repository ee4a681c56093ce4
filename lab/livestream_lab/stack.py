"""What the lab's AWS API says the stack is: the facts the lab realizes.

The lab never decides an address, a route or a firewall rule itself: subnets, route
tables, instances, their private addresses and security groups, the key pair and the DNS
records all come from the API.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import boto3
import botocore.exceptions

from . import strict

STACK_TAG = "Stack"
LIVE_STATES = ["pending", "running"]


@dataclass
class Interface:
    eni: str
    subnet_id: str
    address: ipaddress.IPv4Address
    groups: list[str] = field(default_factory=list)
    # the public or Elastic IP the internet gateway maps to ``address``, if any
    public_address: ipaddress.IPv4Address | None = None
    # EC2's source/destination check: the interface drops what is neither from nor to ``address``
    source_dest_check: bool = True


@dataclass
class Permission:
    """One rule of a security group in one direction, with every peer as IPv4 CIDRs: a
    rule naming another group stands for the addresses of the stack's interfaces in it."""
    protocol: str  # "-1" (all), "tcp", "udp", "icmp" or a protocol number
    from_port: int | None
    to_port: int | None
    peers: list[str]


@dataclass
class SecurityGroup:
    id: str
    ingress: list[Permission]
    egress: list[Permission]


@dataclass
class Instance:
    id: str
    name: str
    role: str
    key_name: str | None
    interfaces: list[Interface]
    # the name of the AMI it was launched from (the lab boots the image of its release)
    image_name: str = ""

    @property
    def private_address(self) -> ipaddress.IPv4Address:
        return self.interfaces[0].address

    @property
    def public_address(self) -> ipaddress.IPv4Address | None:
        return self.interfaces[0].public_address


@dataclass
class Subnet:
    id: str
    cidr: ipaddress.IPv4Network
    routes: list[dict]
    public: bool

    @property
    def router_address(self) -> ipaddress.IPv4Address:
        """AWS's VPC router answers on the subnet's first host address."""
        return self.cidr.network_address + 1


@dataclass
class Stack:
    name: str
    vpc_cidr: ipaddress.IPv4Network
    subnets: list[Subnet]
    instances: list[Instance]
    public_keys: dict[str, str]
    records: dict[str, list[str]] = field(default_factory=dict)
    security_groups: dict[str, SecurityGroup] = field(default_factory=dict)

    @property
    def resolver_address(self) -> ipaddress.IPv4Address:
        """AmazonProvidedDNS: the VPC's base address plus two."""
        return self.vpc_cidr.network_address + 2

    def public_to_private(self) -> dict[ipaddress.IPv4Address, ipaddress.IPv4Address]:
        """What the internet gateway translates: each public address to its private one."""
        return {interface.public_address: interface.address for instance in self.instances
                for interface in instance.interfaces if interface.public_address}

    def subnet(self, subnet_id: str) -> Subnet:
        return next(subnet for subnet in self.subnets if subnet.id == subnet_id)

    def by_role(self, role: str) -> Instance:
        return next(instance for instance in self.instances if instance.role == role)

    def address_of_eni(self, eni: str) -> ipaddress.IPv4Address | None:
        for instance in self.instances:
            for interface in instance.interfaces:
                if interface.eni == eni:
                    return interface.address
        return None

    def address_of_instance(self, instance_id: str) -> ipaddress.IPv4Address | None:
        for instance in self.instances:
            if instance.id == instance_id:
                return instance.private_address
        return None


def _tags(resource: dict) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}


def clients(aws_env: dict[str, str]):
    """boto3 clients of the lab's own seat at the API named by the standard AWS environment:
    AWS's side of things, which strict mode never refuses (see livestream_lab.strict)."""
    session = boto3.session.Session(
        aws_access_key_id=strict.LAB_ACCESS_KEY_ID, aws_secret_access_key=aws_env["AWS_SECRET_ACCESS_KEY"],
        region_name=aws_env["AWS_DEFAULT_REGION"])
    endpoint = aws_env["AWS_ENDPOINT_URL"]
    return session.client("ec2", endpoint_url=endpoint), session.client("route53", endpoint_url=endpoint)


def cloudfront_client(aws_env: dict[str, str]):
    """CloudFront (a global service, signed in us-east-1) at the lab's own seat, as ``clients``."""
    session = boto3.session.Session(
        aws_access_key_id=strict.LAB_ACCESS_KEY_ID, aws_secret_access_key=aws_env["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1")
    return session.client("cloudfront", endpoint_url=aws_env["AWS_ENDPOINT_URL"])


def distribution_domains(aws_env: dict[str, str]) -> list[str]:
    """The domain names (dXXXX.cloudfront.net) of every distribution the API holds."""
    cloudfront = cloudfront_client(aws_env)
    names = []
    for page in cloudfront.get_paginator("list_distributions").paginate():
        names += [item["DomainName"].lower() for item in page.get("DistributionList", {}).get("Items", [])]
    return names


def describe(name: str, aws_env: dict[str, str], delegations: dict[str, list[str]] | None = None,
             edge: ipaddress.IPv4Address | None = None) -> Stack:
    """The stack as the API holds it; ``delegations`` (zone -> the name servers its parent
    delegates to, as a registrar holds them) says which hosted zones the public DNS serves;
    ``edge`` (the lab's CDN edge address) makes the distributions' names and the Route 53
    aliases to them resolve there."""
    ec2, route53 = clients(aws_env)
    stack_filter = [{"Name": f"tag:{STACK_TAG}", "Values": [name]}]
    vpcs = ec2.describe_vpcs(Filters=stack_filter)["Vpcs"]
    if len(vpcs) != 1:
        raise LookupError(f"the lab's AWS API holds {len(vpcs)} VPCs tagged {STACK_TAG}={name}, expected one")
    vpc = vpcs[0]
    vpc_filter = [{"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
    route_tables = ec2.describe_route_tables(Filters=vpc_filter)["RouteTables"]
    main_table = next((table for table in route_tables
                       if any(assoc.get("Main") for assoc in table.get("Associations", []))), None)

    def table_of(subnet_id):
        for table in route_tables:
            if any(assoc.get("SubnetId") == subnet_id for assoc in table.get("Associations", [])):
                return table
        return main_table

    subnets = []
    for raw in sorted(ec2.describe_subnets(Filters=vpc_filter)["Subnets"],
                      key=lambda item: ipaddress.ip_network(item["CidrBlock"])):
        routes = (table_of(raw["SubnetId"]) or {}).get("Routes", [])
        public = any(route.get("GatewayId", "").startswith("igw-") for route in routes)
        subnets.append(Subnet(raw["SubnetId"], ipaddress.ip_network(raw["CidrBlock"]), routes, public))

    instances = []
    reservations = ec2.describe_instances(
        Filters=stack_filter + [{"Name": "instance-state-name", "Values": LIVE_STATES}])["Reservations"]
    raws = [item for reservation in reservations for item in reservation["Instances"]]
    image_ids = sorted({raw["ImageId"] for raw in raws if raw.get("ImageId")})
    image_names = {image["ImageId"]: image.get("Name", "")
                   for image in ec2.describe_images(ImageIds=image_ids)["Images"]} if image_ids else {}
    for raw in raws:
        tags = _tags(raw)
        interfaces = [
            Interface(eni["NetworkInterfaceId"], eni["SubnetId"], ipaddress.ip_address(eni["PrivateIpAddress"]),
                      [group["GroupId"] for group in eni.get("Groups", [])], _public_address(eni),
                      eni.get("SourceDestCheck", True))
            for eni in sorted(raw.get("NetworkInterfaces", []), key=lambda e: e.get("Attachment", {}).get("DeviceIndex", 0))
        ]
        instances.append(Instance(raw["InstanceId"], tags.get("Name", raw["InstanceId"]), tags.get("Role", ""),
                                  raw.get("KeyName"), interfaces, image_names.get(raw.get("ImageId", ""), "")))
    instances.sort(key=lambda item: item.private_address)

    key_names = sorted({instance.key_name for instance in instances if instance.key_name})
    public_keys = {}
    if key_names:
        for pair in ec2.describe_key_pairs(KeyNames=key_names, IncludePublicKey=True)["KeyPairs"]:
            public_keys[pair["KeyName"]] = pair.get("PublicKey", "").strip()

    stack = Stack(name, ipaddress.ip_network(vpc["CidrBlock"]), subnets, instances, public_keys)
    edges = {domain: str(edge) for domain in distribution_domains(aws_env)} if edge else {}
    stack.records = dns_records(stack, route53, delegations or {}, edges)
    stack.security_groups = security_groups(stack, ec2.describe_security_groups(Filters=vpc_filter)["SecurityGroups"],
                                            prefix_lists=lambda list_id: prefix_list_entries(ec2, list_id))
    return stack


def _public_address(eni: dict) -> ipaddress.IPv4Address | None:
    """The interface's public IP: an Elastic IP once one is associated (AWS then gives the
    auto-assigned one back), else the one assigned at launch."""
    public = eni.get("Association", {}).get("PublicIp")
    return ipaddress.ip_address(public) if public else None


def prefix_list_entries(ec2, list_id: str) -> list[str]:
    """The IPv4 CIDRs of a (managed or customer) prefix list, as the API holds them; a list
    the API does not know lets nothing in (the rule then names nobody)."""
    entries = []
    try:
        for page in ec2.get_paginator("get_managed_prefix_list_entries").paginate(PrefixListId=list_id):
            entries += [entry["Cidr"] for entry in page.get("Entries", []) if ":" not in entry["Cidr"]]
    except botocore.exceptions.ClientError:
        return []
    return entries


def security_groups(stack: Stack, raw_groups: list[dict], prefix_lists=None) -> dict[str, SecurityGroup]:
    """The VPC's security groups as the lab enforces them. An interface without a group is
    in the VPC's default group, as in AWS. A rule naming a prefix list
    (``PrefixListIds``, e.g. CloudFront's origin-facing list) stands for the list's entries,
    read from the API (``prefix_lists``: list ID -> CIDRs). IPv6 ranges are left out: the
    lab's network is IPv4 only."""
    default = next((group["GroupId"] for group in raw_groups if group.get("GroupName") == "default"), None)
    interfaces = [interface for instance in stack.instances for interface in instance.interfaces]
    for interface in interfaces:
        if not interface.groups and default:
            interface.groups = [default]

    def members(group_id: str) -> list[str]:
        return [f"{interface.address}/32" for interface in interfaces if group_id in interface.groups]

    def permissions(raw: list[dict]) -> list[Permission]:
        result = []
        for permission in raw:
            peers = [item["CidrIp"] for item in permission.get("IpRanges", [])]
            peers += [peer for pair in permission.get("UserIdGroupPairs", []) for peer in members(pair["GroupId"])]
            if prefix_lists:
                peers += [cidr for item in permission.get("PrefixListIds", []) for cidr in prefix_lists(item["PrefixListId"])]
            result.append(Permission(str(permission.get("IpProtocol", "-1")).lower(), permission.get("FromPort"),
                                     permission.get("ToPort"), peers))
        return result

    return {group["GroupId"]: SecurityGroup(group["GroupId"], permissions(group.get("IpPermissions", [])),
                                            permissions(group.get("IpPermissionsEgress", [])))
            for group in raw_groups}


def delegated_zones(route53, delegations: dict[str, list[str]]) -> list[dict]:
    """The public hosted zones the internet resolves: those whose parent delegates to the
    name servers Route 53 gave them. A zone nobody delegated to (just created, or created
    anew with other name servers) answers only when asked directly, as on AWS: no resolver
    finds it, and no ACME server validates a name in it."""
    served = []
    for zone in route53.list_hosted_zones()["HostedZones"]:
        if zone.get("Config", {}).get("PrivateZone"):
            continue
        wanted = sorted(delegations.get(zone["Name"].rstrip("."), []))
        servers = sorted(route53.get_hosted_zone(Id=zone["Id"]).get("DelegationSet", {}).get("NameServers", []))
        if wanted and wanted == servers:
            served.append(zone)
    return served


def dns_records(stack: Stack, route53, delegations: dict[str, list[str]],
                edges: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Name -> addresses: the Route 53 A records of the delegated zones as they are (the
    domain to the frontend's Elastic IP, which the lab's gateway translates as AWS's does),
    plus each instance's private DNS name. Records that point at an address that is not the
    stack's are left out, so a lab name never leads out of the lab.
    ``edges`` (a distribution's domain name -> the CDN edge's address) are CloudFront's own
    names, and an alias A record to one of them (AliasTarget) resolves there too, as Route 53
    answers an alias with its target's addresses; an alias to anything else resolves nowhere.
    """
    edges = edges or {}
    lab_address = {str(address) for pair in stack.public_to_private().items() for address in pair}
    lab_address |= {str(interface.address) for instance in stack.instances for interface in instance.interfaces}
    lab_address |= set(edges.values())
    records: dict[str, list[str]] = {name: [address] for name, address in edges.items()}
    for zone in delegated_zones(route53, delegations):
        paginator = route53.get_paginator("list_resource_record_sets")
        for page in paginator.paginate(HostedZoneId=zone["Id"]):
            for record in page["ResourceRecordSets"]:
                if record["Type"] != "A":
                    continue
                values = [item["Value"] for item in record.get("ResourceRecords", []) if item["Value"] in lab_address]
                target = record.get("AliasTarget", {}).get("DNSName", "").rstrip(".").lower()
                if target in edges:
                    values.append(edges[target])
                if values:
                    records[record["Name"].rstrip(".")] = sorted(set(values))
    for instance in stack.instances:
        octets = str(instance.private_address).replace(".", "-")
        records.setdefault(f"ip-{octets}.ec2.internal", [str(instance.private_address)])
    return records
