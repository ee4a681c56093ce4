#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: nat_route
version_added: 0.1.0
short_description: Route a livestream stack's private subnet through its NAT instance
description:
  - Points the default route (V(0.0.0.0/0)) of the stack's private route table,
    C(<name>-private) as made by M(livestream.aws.network), at the bastion's network
    interface, so the private subnet reaches the internet through the bastion, which is
    the stack's NAT instance.
  - A route through an interface (rather than an instance) is what AWS keeps when an instance
    is stopped and started again.
  - A route that points elsewhere, or a black hole left by a terminated bastion, is replaced.
    Other routes are left alone.
options:
  name:
    description:
      - The stack name, as in the C(Stack) tag of its resources.
    required: true
    type: str
    aliases: [stack_name]
  network_interface_id:
    description:
      - The bastion's primary network interface, as returned by M(livestream.aws.instances).
      - May be null in check mode only, when the bastion does not exist yet.
    type: str
author:
  - livestream.aws maintainers (@livestream-aws)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The private subnet goes out through the bastion
  livestream.aws.nat_route:
    name: live
    network_interface_id: "{{ live_instances.instances.bastion.network_interface_id }}"
"""

RETURN = r"""
route_table_id:
  description: The private route table (null in check mode when it does not exist yet).
  returned: success
  type: str
  sample: rtb-0123456789abcdef0
actions:
  description: What was changed (in check mode, what would be), one line each.
  returned: always
  type: list
  elements: str
  sample: ["route 0.0.0.0/0 in live-private to eni-0123456789abcdef0"]
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.livestream.aws.plugins.module_utils.stack import Changes
from ansible_collections.livestream.aws.plugins.module_utils.stack import named_filters
from ansible_collections.livestream.aws.plugins.module_utils.stack import resource_name
from ansible_collections.livestream.aws.plugins.module_utils.validation import fail_on_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import stack_errors

DEFAULT_ROUTE = "0.0.0.0/0"


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["stack_name"]),
            network_interface_id=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    name, interface_id = module.params["name"], module.params["network_interface_id"]
    errors = stack_errors(name)
    if not interface_id and not module.check_mode:
        errors.append("network_interface_id is required (it may only be left out in check mode)")
    fail_on_errors(module, errors)

    ec2 = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
    changes = Changes(module)
    table_name = resource_name(name, "private")
    try:
        tables = ec2.describe_route_tables(Filters=named_filters(name, "private"), aws_retry=True)["RouteTables"]
        if len(tables) > 1:
            module.fail_json(msg=f"stack {name!r} has {len(tables)} route tables named {table_name!r}: {[t['RouteTableId'] for t in tables]}")
        if not tables and not module.check_mode:
            module.fail_json(msg=f"route table {table_name!r} of stack {name!r} not found: make the network first (livestream.aws.network)")
        table = tables[0] if tables else {"RouteTableId": None, "Routes": []}
        current = next((r for r in table.get("Routes", []) if r.get("DestinationCidrBlock") == DEFAULT_ROUTE), None)
        if current is None or current.get("NetworkInterfaceId") != interface_id or current.get("State") == "blackhole":
            changes.record(
                f"route {DEFAULT_ROUTE} in {table_name} to {interface_id or 'the bastion'}",
                f"{table_name} {DEFAULT_ROUTE}",
                (current or {}).get("NetworkInterfaceId") or (current or {}).get("GatewayId") or (current or {}).get("InstanceId"),
                interface_id,
            )
            if not module.check_mode:
                action = ec2.replace_route if current else ec2.create_route
                action(
                    RouteTableId=table["RouteTableId"],
                    DestinationCidrBlock=DEFAULT_ROUTE,
                    NetworkInterfaceId=interface_id,
                    aws_retry=True,
                )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to route the private subnet of stack {name!r} through {interface_id}")

    module.exit_json(changed=changes.changed, actions=changes.actions, diff=changes.diff(), route_table_id=table["RouteTableId"])


if __name__ == "__main__":
    main()
