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
author:
  - livestream.aws maintainers (@livestream-aws)
extends_documentation_fragment:
  - livestream.aws.stack.name
  - livestream.aws.stack.network
  - livestream.aws.stack.availability_zone
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

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.livestream.aws.plugins.module_utils import options
from ansible_collections.livestream.aws.plugins.module_utils.aws import client
from ansible_collections.livestream.aws.plugins.module_utils.changes import Changes
from ansible_collections.livestream.aws.plugins.module_utils.network import ensure_network
from ansible_collections.livestream.aws.plugins.module_utils.validation import fail_on_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import network_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import stack_errors


def main():
    module = AnsibleAWSModule(
        argument_spec=options.argument_spec(options.NAME, options.NETWORK, options.AVAILABILITY_ZONE),
        supports_check_mode=True,
    )
    params = module.params
    fail_on_errors(
        module,
        stack_errors(params["name"])
        + network_errors(params["vpc_cidr"], params["public_subnet_cidr"], params["private_subnet_cidr"]),
    )
    changes = Changes(module)
    result = ensure_network(
        client(module, "ec2"),
        changes,
        params["name"],
        vpc_cidr=params["vpc_cidr"],
        public_subnet_cidr=params["public_subnet_cidr"],
        private_subnet_cidr=params["private_subnet_cidr"],
        availability_zone=params["availability_zone"],
    )
    changes.exit_json(**result)


if __name__ == "__main__":
    main()
