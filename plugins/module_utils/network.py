# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A stack's network: VPC, subnets, internet gateway, route tables, and the private subnet's
default route through the bastion (the NAT instance). Used by livestream.aws.network,
livestream.aws.nat_route and livestream.aws.stack_provision."""

from __future__ import annotations

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.livestream.aws.plugins.module_utils.aws import only_one
from ansible_collections.livestream.aws.plugins.module_utils.aws import wait_for
from ansible_collections.livestream.aws.plugins.module_utils.naming import named_filters
from ansible_collections.livestream.aws.plugins.module_utils.naming import resource_name
from ansible_collections.livestream.aws.plugins.module_utils.naming import stack_filters
from ansible_collections.livestream.aws.plugins.module_utils.naming import stack_tags
from ansible_collections.livestream.aws.plugins.module_utils.naming import tag_specifications
from ansible_collections.livestream.aws.plugins.module_utils.naming import tags_of

DEFAULT_ROUTE = "0.0.0.0/0"


class Network:
    def __init__(self, ec2, changes, name):
        self.module = changes.module
        self.ec2 = ec2
        self.changes = changes
        self.name = name

    def named(self, resources, what):
        """The resources whose Name tag says they are the stack's ``what``."""
        wanted = resource_name(self.name, what)
        return [r for r in resources if tags_of(r).get("Name") == wanted]

    def one(self, resources, kind, what, id_key):
        return only_one(self.module, self.named(resources, what), id_key,
                        f"{kind}s named {resource_name(self.name, what)!r} in stack {self.name!r}")

    def tags(self, what):
        return stack_tags(self.name, resource_name=resource_name(self.name, what))

    def vpc(self, cidr):
        vpcs = self.ec2.describe_vpcs(Filters=stack_filters(self.name), aws_retry=True)["Vpcs"]
        vpc = only_one(self.module, vpcs, "VpcId", f"VPCs of stack {self.name!r}")
        if vpc is not None:
            if vpc["CidrBlock"] != cidr:
                self.module.fail_json(
                    msg=f"VPC {vpc['VpcId']} of stack {self.name!r} has the block {vpc['CidrBlock']}, not {cidr}: "
                    "a VPC's block cannot change (tear the stack down to change it)"
                )
            return vpc, False
        self.changes.record(f"create VPC {resource_name(self.name, 'vpc')} {cidr}", "vpc", "absent", cidr)
        if self.changes.check_mode:
            return {"VpcId": None, "CidrBlock": cidr}, True
        vpc = self.ec2.create_vpc(
            CidrBlock=cidr, TagSpecifications=tag_specifications("vpc", self.tags("vpc")), aws_retry=True
        )["Vpc"]
        return vpc, True

    def subnet(self, existing, tier, vpc_id, cidr, zone):
        """The tier's subnet, found or created (not waited for: see ensure_network)."""
        subnet = self.one(existing, "subnet", tier, "SubnetId")
        if subnet is not None and subnet["CidrBlock"] != cidr:
            self.module.fail_json(
                msg=f"subnet {subnet['SubnetId']} ({resource_name(self.name, tier)}) has the block {subnet['CidrBlock']}, "
                f"not {cidr}: a subnet's block cannot change (tear the stack down to change it)"
            )
        if subnet is not None:
            return subnet, False
        self.changes.record(f"create subnet {resource_name(self.name, tier)} {cidr}", f"{tier} subnet", "absent", cidr)
        if self.changes.check_mode:
            return {"SubnetId": None, "CidrBlock": cidr, "AvailabilityZone": zone, "MapPublicIpOnLaunch": False}, True
        params = dict(VpcId=vpc_id, CidrBlock=cidr, TagSpecifications=tag_specifications("subnet", self.tags(tier)))
        if zone:
            params["AvailabilityZone"] = zone
        return self.ec2.create_subnet(aws_retry=True, **params)["Subnet"], True

    def public_addresses(self, subnet):
        """Instances launched in the public subnet get a public address."""
        if subnet.get("MapPublicIpOnLaunch"):
            return
        self.changes.record(
            f"give instances launched in {resource_name(self.name, 'public')} a public address",
            "public subnet map_public_ip_on_launch", False, True,
        )
        if not self.changes.check_mode:
            self.ec2.modify_subnet_attribute(SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": True}, aws_retry=True)
        subnet["MapPublicIpOnLaunch"] = True

    def internet_gateway(self, existing):
        """The stack's internet gateway, found or created (attached by ``attach``)."""
        igw = self.one(existing, "internet gateway", "igw", "InternetGatewayId")
        if igw is not None:
            return igw
        self.changes.record(f"create internet gateway {resource_name(self.name, 'igw')}", "internet gateway", "absent", "present")
        if self.changes.check_mode:
            return {"InternetGatewayId": None}
        return self.ec2.create_internet_gateway(
            TagSpecifications=tag_specifications("internet-gateway", self.tags("igw")), aws_retry=True
        )["InternetGateway"]

    def attach(self, igw, vpc_id):
        attached = [a["VpcId"] for a in igw.get("Attachments", []) if a.get("State") in ("attached", "available", "attaching")]
        if vpc_id in attached:
            return
        self.changes.record(
            f"attach internet gateway {resource_name(self.name, 'igw')} to the VPC",
            "internet gateway attached to", attached, [vpc_id],
        )
        if not self.changes.check_mode:
            for other in attached:
                self.ec2.detach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"], VpcId=other, aws_retry=True)
            self.ec2.attach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"], VpcId=vpc_id, aws_retry=True)

    def route_table(self, existing, tier, vpc_id):
        """The tier's route table, found or created (its routes and subnet: ``routes``)."""
        table = self.one(existing, "route table", tier, "RouteTableId")
        if table is not None:
            return table
        self.changes.record(f"create route table {resource_name(self.name, tier)}", f"{tier} route table", "absent", "present")
        if self.changes.check_mode:
            return {"RouteTableId": None, "Routes": [], "Associations": []}
        return self.ec2.create_route_table(
            VpcId=vpc_id, TagSpecifications=tag_specifications("route-table", self.tags(tier)), aws_retry=True
        )["RouteTable"]

    def routes(self, table, tier, subnet_id, internet_gateway=None):
        """The default route to the internet gateway (the public tier) and the table's subnet."""
        what = resource_name(self.name, tier)
        table_id = table["RouteTableId"]
        if internet_gateway is not None:
            gateway_id = internet_gateway["InternetGatewayId"]
            routes = {r.get("DestinationCidrBlock"): r for r in table.get("Routes", [])}
            current = routes.get(DEFAULT_ROUTE, {})
            if not current or current.get("GatewayId") != gateway_id or current.get("State") == "blackhole":
                self.changes.record(
                    f"route {DEFAULT_ROUTE} in {what} to the internet gateway",
                    f"{tier} route {DEFAULT_ROUTE}", current.get("GatewayId"), gateway_id,
                )
                if not self.changes.check_mode:
                    action = self.ec2.replace_route if current else self.ec2.create_route
                    action(RouteTableId=table_id, DestinationCidrBlock=DEFAULT_ROUTE, GatewayId=gateway_id, aws_retry=True)
        if table_id is None or subnet_id not in [a.get("SubnetId") for a in table.get("Associations", [])]:
            self.changes.record(f"associate route table {what} with subnet {what}", f"{tier} route table subnets", [], [subnet_id])
            if not self.changes.check_mode:
                self.ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet_id, aws_retry=True)
        return table_id


def ensure_network(ec2, changes, name, *, vpc_cidr, public_subnet_cidr, private_subnet_cidr, availability_zone=None,
                   while_subnets_settle=None, route_tables=None):
    """Make the stack's network what it should be; return its IDs (null in check mode for what
    would be created). ``while_subnets_settle(vpc_id)`` makes what else needs only the VPC (the
    security groups) in the subnets' level, before the wait for them. ``route_tables``, a dict,
    receives the two tables by tier as found or made (for ensure_nat_route, in the same run)."""
    network = Network(ec2, changes, name)
    # Made level by level, what depends on nothing first: a new ID may be unknown to other
    # calls for a moment after its create call (EC2's eventual consistency), so each level
    # waits for the one before it once, not each resource for its predecessor in turn.
    step = f"the VPC of stack {name!r}"
    try:
        vpc, vpc_is_new = network.vpc(vpc_cidr)
        vpc_id = vpc["VpcId"]
        # a VPC made just now holds nothing yet: no need to look
        in_vpc = stack_filters(name, {"vpc-id": vpc_id})
        step = f"the internet gateway of stack {name!r}"
        existing = [] if vpc_is_new else ec2.describe_internet_gateways(Filters=stack_filters(name), aws_retry=True)["InternetGateways"]
        igw = network.internet_gateway(existing)
        if vpc_is_new and vpc_id:
            wait_for(ec2, "vpc_available", VpcIds=[vpc_id])
        step = f"the subnets of stack {name!r}"
        existing = [] if vpc_is_new else ec2.describe_subnets(Filters=in_vpc, aws_retry=True)["Subnets"]
        public, public_is_new = network.subnet(existing, "public", vpc_id, public_subnet_cidr, availability_zone)
        zone = availability_zone or public.get("AvailabilityZone")
        private, private_is_new = network.subnet(existing, "private", vpc_id, private_subnet_cidr, zone)
        step = f"the route tables of stack {name!r}"
        existing = [] if vpc_is_new else ec2.describe_route_tables(Filters=in_vpc, aws_retry=True)["RouteTables"]
        tables = {tier: network.route_table(existing, tier, vpc_id) for tier in ("public", "private")}
        if route_tables is not None:
            route_tables.update(tables)
        step = f"the internet gateway of stack {name!r}"
        network.attach(igw, vpc_id)
        if while_subnets_settle:
            while_subnets_settle(vpc_id)
        step = f"the subnets of stack {name!r}"
        new_subnets = [s["SubnetId"] for s, new in ((public, public_is_new), (private, private_is_new)) if new and s["SubnetId"]]
        if new_subnets:
            wait_for(ec2, "subnet_available", SubnetIds=new_subnets)
        network.public_addresses(public)
        step = f"the route tables of stack {name!r}"
        route_tables = {
            "public": network.routes(tables["public"], "public", public["SubnetId"], igw),
            "private": network.routes(tables["private"], "private", private["SubnetId"]),
        }
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, botocore.exceptions.WaiterError) as e:
        changes.module.fail_json_aws(e, msg=f"Failed to make {step}")

    def subnet_facts(subnet):
        return {
            "subnet_id": subnet["SubnetId"],
            "cidr_block": subnet["CidrBlock"],
            "availability_zone": subnet.get("AvailabilityZone"),
        }

    return dict(
        vpc={"vpc_id": vpc_id, "cidr_block": vpc["CidrBlock"]},
        subnets={"public": subnet_facts(public), "private": subnet_facts(private)},
        internet_gateway_id=igw["InternetGatewayId"],
        route_tables=route_tables,
    )


def ensure_nat_route(ec2, changes, name, *, interface_id, table=None):
    """Point the private route table's default route at the bastion's interface; return the
    table's ID. ``table``: the private table as ensure_network found or made it in this run
    (else it is looked up)."""
    module = changes.module
    table_name = resource_name(name, "private")
    try:
        tables = [table] if table else ec2.describe_route_tables(
            Filters=named_filters(name, "private"), aws_retry=True)["RouteTables"]
        table = only_one(module, tables, "RouteTableId", f"route tables named {table_name!r} in stack {name!r}")
        if table is None and not changes.check_mode:
            module.fail_json(msg=f"route table {table_name!r} of stack {name!r} not found: make the network first (livestream.aws.network)")
        table = table or {"RouteTableId": None, "Routes": []}
        current = next((r for r in table.get("Routes", []) if r.get("DestinationCidrBlock") == DEFAULT_ROUTE), None)
        if current is None or current.get("NetworkInterfaceId") != interface_id or current.get("State") == "blackhole":
            changes.record(
                f"route {DEFAULT_ROUTE} in {table_name} to {interface_id or 'the bastion'}",
                f"{table_name} {DEFAULT_ROUTE}",
                (current or {}).get("NetworkInterfaceId") or (current or {}).get("GatewayId") or (current or {}).get("InstanceId"),
                interface_id,
            )
            if not changes.check_mode:
                action = ec2.replace_route if current else ec2.create_route
                action(
                    RouteTableId=table["RouteTableId"],
                    DestinationCidrBlock=DEFAULT_ROUTE,
                    NetworkInterfaceId=interface_id,
                    aws_retry=True,
                )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to route the private subnet of stack {name!r} through {interface_id}")
    return table["RouteTableId"]
