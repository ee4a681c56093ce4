#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: network
version_added: 0.1.0
short_description: The network of a livestream stack (VPC, subnets, internet gateway, route tables)
description:
  - Makes sure a stack has its network, and reports it.
  - One VPC; a public subnet (instances there get a public address) and a private subnet, both in
    one availability zone; an internet gateway attached to the VPC; a public route table
    (V(0.0.0.0/0) to the internet gateway) for the public subnet and a private route table for
    the private subnet.
  - The private route table's default route goes through the bastion, which does not exist yet
    when the network is made; M(livestream.aws.nat_route) adds it. This module leaves the routes
    it does not manage alone.
  - Every resource is tagged C(Stack=<name>) and C(Name=<name>-<what>) when it is created, and
    found again by those tags, so a second run (or a run after an interrupted one) changes
    nothing that is already right. Each kind is looked up with one call.
  - A VPC's or a subnet's block cannot change; a stack whose existing blocks differ from the
    ones asked for fails with both named, and nothing is changed.
  - Use M(livestream.aws.stack_teardown) to remove the network.
options:
  name:
    description:
      - The stack name, as in the C(Stack) tag of its resources.
    required: true
    type: str
    aliases: [stack_name]
  vpc_cidr:
    description:
      - The VPC's IPv4 block, V(/16) to V(/28).
    type: str
    default: 10.0.0.0/16
  public_subnet_cidr:
    description:
      - The public subnet's block; inside O(vpc_cidr), apart from O(private_subnet_cidr).
    type: str
    default: 10.0.1.0/24
  private_subnet_cidr:
    description:
      - The private subnet's block; inside O(vpc_cidr), apart from O(public_subnet_cidr).
    type: str
    default: 10.0.2.0/24
  availability_zone:
    description:
      - The availability zone of both subnets.
      - When not set, AWS picks one for the public subnet and the private subnet goes to the same one.
    type: str
author:
  - livestream.aws maintainers (@livestream-aws)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The network of the stack "live", with the default blocks
  livestream.aws.network:
    name: live
  register: live_network

- name: Other blocks, in a chosen zone
  livestream.aws.network:
    name: staging
    vpc_cidr: 10.20.0.0/16
    public_subnet_cidr: 10.20.0.0/24
    private_subnet_cidr: 10.20.128.0/20
    availability_zone: eu-west-1b
"""

RETURN = r"""
vpc:
  description: The stack's VPC. In check mode, when it does not exist yet, C(vpc_id) is null.
  returned: success
  type: dict
  contains:
    vpc_id:
      description: The VPC ID.
      type: str
      sample: vpc-0123456789abcdef0
    cidr_block:
      description: Its IPv4 block.
      type: str
      sample: 10.0.0.0/16
subnets:
  description: The public and the private subnet, by tier.
  returned: success
  type: dict
  contains:
    public:
      description: The public subnet (C(subnet_id), C(cidr_block), C(availability_zone)).
      type: dict
      sample: {"subnet_id": "subnet-0123", "cidr_block": "10.0.1.0/24", "availability_zone": "us-east-1a"}
    private:
      description: The private subnet (C(subnet_id), C(cidr_block), C(availability_zone)).
      type: dict
internet_gateway_id:
  description: The internet gateway's ID.
  returned: success
  type: str
  sample: igw-0123456789abcdef0
route_tables:
  description: The route tables' IDs, by tier.
  returned: success
  type: dict
  sample: {"public": "rtb-0123", "private": "rtb-4567"}
actions:
  description: What was changed (in check mode, what would be), one line each.
  returned: always
  type: list
  elements: str
  sample: ["create VPC live-vpc 10.0.0.0/16", "create subnet live-public 10.0.1.0/24"]
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.livestream.aws.plugins.module_utils.stack import Changes
from ansible_collections.livestream.aws.plugins.module_utils.stack import resource_name
from ansible_collections.livestream.aws.plugins.module_utils.stack import stack_filters
from ansible_collections.livestream.aws.plugins.module_utils.stack import stack_tags
from ansible_collections.livestream.aws.plugins.module_utils.stack import tag_specifications
from ansible_collections.livestream.aws.plugins.module_utils.stack import tags_of
from ansible_collections.livestream.aws.plugins.module_utils.stack import wait_for
from ansible_collections.livestream.aws.plugins.module_utils.validation import fail_on_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import network_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import stack_errors

TIERS = ("public", "private")
DEFAULT_ROUTE = "0.0.0.0/0"


class Network:
    def __init__(self, module, ec2):
        self.module = module
        self.ec2 = ec2
        self.name = module.params["name"]
        self.changes = Changes(module)

    def named(self, resources, what):
        """The resources whose Name tag says they are the stack's ``what``."""
        wanted = resource_name(self.name, what)
        return [r for r in resources if tags_of(r).get("Name") == wanted]

    def one(self, resources, kind, what, id_key):
        found = self.named(resources, what)
        if len(found) > 1:
            ids = [r[id_key] for r in found]
            self.module.fail_json(msg=f"stack {self.name!r} has {len(found)} {kind}s named {resource_name(self.name, what)!r}: {ids}")
        return found[0] if found else None

    def tags(self, what):
        return stack_tags(self.name, resource_name=resource_name(self.name, what))

    def vpc(self, cidr):
        vpcs = self.ec2.describe_vpcs(Filters=stack_filters(self.name), aws_retry=True)["Vpcs"]
        if len(vpcs) > 1:
            self.module.fail_json(msg=f"stack {self.name!r} has {len(vpcs)} VPCs: {[v['VpcId'] for v in vpcs]}")
        if vpcs:
            vpc = vpcs[0]
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
        wait_for(self.ec2, "vpc_available", delay=2, VpcIds=[vpc["VpcId"]])
        return vpc, True

    def subnet(self, existing, tier, vpc_id, cidr, zone):
        subnet = self.one(existing, "subnet", tier, "SubnetId")
        if subnet is not None and subnet["CidrBlock"] != cidr:
            self.module.fail_json(
                msg=f"subnet {subnet['SubnetId']} ({resource_name(self.name, tier)}) has the block {subnet['CidrBlock']}, "
                f"not {cidr}: a subnet's block cannot change (tear the stack down to change it)"
            )
        if subnet is None:
            self.changes.record(f"create subnet {resource_name(self.name, tier)} {cidr}", f"{tier} subnet", "absent", cidr)
            if self.changes.check_mode:
                return {"SubnetId": None, "CidrBlock": cidr, "AvailabilityZone": zone, "MapPublicIpOnLaunch": tier == "public"}
            params = dict(VpcId=vpc_id, CidrBlock=cidr, TagSpecifications=tag_specifications("subnet", self.tags(tier)))
            if zone:
                params["AvailabilityZone"] = zone
            subnet = self.ec2.create_subnet(aws_retry=True, **params)["Subnet"]
            wait_for(self.ec2, "subnet_available", delay=2, SubnetIds=[subnet["SubnetId"]])
        if tier == "public" and not subnet.get("MapPublicIpOnLaunch"):
            self.changes.record(
                f"give instances launched in {resource_name(self.name, tier)} a public address",
                f"{tier} subnet map_public_ip_on_launch", False, True,
            )
            if not self.changes.check_mode:
                self.ec2.modify_subnet_attribute(
                    SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": True}, aws_retry=True
                )
            subnet["MapPublicIpOnLaunch"] = True
        return subnet

    def internet_gateway(self, existing, vpc_id):
        igw = self.one(existing, "internet gateway", "igw", "InternetGatewayId")
        if igw is None:
            self.changes.record(f"create internet gateway {resource_name(self.name, 'igw')}", "internet gateway", "absent", "present")
            if self.changes.check_mode:
                return {"InternetGatewayId": None}
            igw = self.ec2.create_internet_gateway(
                TagSpecifications=tag_specifications("internet-gateway", self.tags("igw")), aws_retry=True
            )["InternetGateway"]
        attached = [a["VpcId"] for a in igw.get("Attachments", []) if a.get("State") in ("attached", "available", "attaching")]
        if vpc_id not in attached:
            self.changes.record(
                f"attach internet gateway {resource_name(self.name, 'igw')} to the VPC",
                "internet gateway attached to", attached, [vpc_id],
            )
            if not self.changes.check_mode:
                for other in attached:
                    self.ec2.detach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"], VpcId=other, aws_retry=True)
                self.ec2.attach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"], VpcId=vpc_id, aws_retry=True)
        return igw

    def route_table(self, existing, tier, vpc_id, subnet_id, internet_gateway=None):
        table = self.one(existing, "route table", tier, "RouteTableId")
        what = resource_name(self.name, tier)
        if table is None:
            self.changes.record(f"create route table {what}", f"{tier} route table", "absent", "present")
            if self.changes.check_mode:
                table = {"RouteTableId": None, "Routes": [], "Associations": []}
            else:
                table = self.ec2.create_route_table(
                    VpcId=vpc_id, TagSpecifications=tag_specifications("route-table", self.tags(tier)), aws_retry=True
                )["RouteTable"]
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


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["stack_name"]),
            vpc_cidr=dict(type="str", default="10.0.0.0/16"),
            public_subnet_cidr=dict(type="str", default="10.0.1.0/24"),
            private_subnet_cidr=dict(type="str", default="10.0.2.0/24"),
            availability_zone=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    name = params["name"]
    cidrs = {"public": params["public_subnet_cidr"], "private": params["private_subnet_cidr"]}
    fail_on_errors(module, stack_errors(name) + network_errors(params["vpc_cidr"], cidrs["public"], cidrs["private"]))

    network = Network(module, module.client("ec2", retry_decorator=AWSRetry.jittered_backoff()))
    ec2 = network.ec2
    step = f"the VPC of stack {name!r}"
    try:
        vpc, vpc_is_new = network.vpc(params["vpc_cidr"])
        vpc_id = vpc["VpcId"]
        # a VPC made just now holds nothing yet: no need to look
        in_vpc = stack_filters(name, {"vpc-id": vpc_id})
        step = f"the subnets of stack {name!r}"
        existing = [] if vpc_is_new else ec2.describe_subnets(Filters=in_vpc, aws_retry=True)["Subnets"]
        public = network.subnet(existing, "public", vpc_id, cidrs["public"], params["availability_zone"])
        zone = params["availability_zone"] or public.get("AvailabilityZone")
        private = network.subnet(existing, "private", vpc_id, cidrs["private"], zone)
        step = f"the internet gateway of stack {name!r}"
        existing = [] if vpc_is_new else ec2.describe_internet_gateways(Filters=stack_filters(name), aws_retry=True)["InternetGateways"]
        igw = network.internet_gateway(existing, vpc_id)
        step = f"the route tables of stack {name!r}"
        existing = [] if vpc_is_new else ec2.describe_route_tables(Filters=in_vpc, aws_retry=True)["RouteTables"]
        route_tables = {
            "public": network.route_table(existing, "public", vpc_id, public["SubnetId"], igw),
            "private": network.route_table(existing, "private", vpc_id, private["SubnetId"]),
        }
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, botocore.exceptions.WaiterError) as e:
        module.fail_json_aws(e, msg=f"Failed to make {step}")

    def subnet_facts(subnet):
        return {
            "subnet_id": subnet["SubnetId"],
            "cidr_block": subnet["CidrBlock"],
            "availability_zone": subnet.get("AvailabilityZone"),
        }

    result = dict(
        vpc={"vpc_id": vpc_id, "cidr_block": vpc["CidrBlock"]},
        subnets={"public": subnet_facts(public), "private": subnet_facts(private)},
        internet_gateway_id=igw["InternetGatewayId"],
        route_tables=route_tables,
    )
    module.exit_json(changed=network.changes.changed, actions=network.changes.actions, diff=network.changes.diff(), **result)


if __name__ == "__main__":
    main()
