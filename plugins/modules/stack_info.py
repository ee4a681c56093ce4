#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: stack_info
version_added: 0.1.0
short_description: Report every AWS resource of a livestream stack
description:
  - Finds every EC2 resource tagged C(Stack=<name>) in one region and returns it, grouped
    by kind (VPCs, subnets, internet gateways, route tables, security groups, instances,
    Elastic IPs and key pairs). Terminated instances are left out.
  - Read-only; safe in check mode.
author:
  - livestream.aws maintainers (@livestream-aws)
extends_documentation_fragment:
  - livestream.aws.stack.name
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: What does the stack "live" hold?
  livestream.aws.stack_info:
    name: live
    region: eu-west-1
  register: live_stack

- name: Against the lab's AWS API (or any other endpoint)
  livestream.aws.stack_info:
    name: live
    endpoint_url: http://127.0.0.1:5000
  register: lab_stack

- name: Show the instances' private addresses by role
  ansible.builtin.debug:
    msg: "{{ live_stack.stack.instances | items2dict(key_name='tags', value_name='private_ip_address') }}"
"""

RETURN = r"""
stack:
  description: The stack's resources, grouped by kind, in amazon.aws's snake_case form with C(tags) as a dict.
  returned: always
  type: dict
  contains:
    name:
      description: The stack name.
      type: str
      sample: live
    vpcs:
      description: VPCs of the stack.
      type: list
      elements: dict
      sample: [{"vpc_id": "vpc-0123", "cidr_block": "10.0.0.0/16", "tags": {"Stack": "live"}}]
    subnets:
      description: Subnets of the stack.
      type: list
      elements: dict
    internet_gateways:
      description: Internet gateways of the stack.
      type: list
      elements: dict
    route_tables:
      description: Route tables of the stack.
      type: list
      elements: dict
    security_groups:
      description: Security groups of the stack.
      type: list
      elements: dict
    instances:
      description: Instances of the stack that are not terminated.
      type: list
      elements: dict
    addresses:
      description: Elastic IPs of the stack.
      type: list
      elements: dict
    key_pairs:
      description: Key pairs of the stack.
      type: list
      elements: dict
resource_count:
  description: How many resources the stack holds in all.
  returned: always
  type: int
  sample: 12
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.transformation import boto3_resource_to_ansible_dict

from ansible_collections.livestream.aws.plugins.module_utils import options
from ansible_collections.livestream.aws.plugins.module_utils.aws import client
from ansible_collections.livestream.aws.plugins.module_utils.naming import describe_stack
from ansible_collections.livestream.aws.plugins.module_utils.naming import stack_name_error


def main():
    module = AnsibleAWSModule(
        argument_spec=options.argument_spec(options.NAME),
        supports_check_mode=True,
    )
    name = module.params["name"]
    error = stack_name_error(name)
    if error:
        module.fail_json(msg=error)

    ec2 = client(module, "ec2")
    try:
        # snake_case, with tags as a plain dict, as amazon.aws's modules return resources
        resources = {kind: [boto3_resource_to_ansible_dict(item, force_tags=True) for item in items]
                     for kind, items in describe_stack(ec2, name).items()}
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to describe the resources of stack {name!r}")

    module.exit_json(
        changed=False,
        stack=dict(name=name, **resources),
        resource_count=sum(len(items) for items in resources.values()),
    )


if __name__ == "__main__":
    main()
