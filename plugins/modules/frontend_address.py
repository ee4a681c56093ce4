#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: frontend_address
version_added: 0.1.0
short_description: The Elastic IP of a livestream stack's frontend
description:
  - Makes sure the stack has one Elastic IP, tagged C(Stack=<name>) and
    C(Name=<name>-frontend-eip) by the call that allocates it, and that it is associated
    with the frontend instance. The address is what the stack's DNS name points at, so it
    outlives the instance; a new frontend gets the same address.
  - The address is found by its tags with one call; a second run, or a run after an
    interrupted one, allocates nothing new.
  - Use M(livestream.aws.stack_teardown) to release it.
options:
  name:
    description:
      - The stack name, as in the C(Stack) tag of its resources.
    required: true
    type: str
    aliases: [stack_name]
  instance_id:
    description:
      - The frontend instance, as returned by M(livestream.aws.instances).
      - May be null in check mode only, when the frontend does not exist yet.
    type: str
author:
  - livestream.aws maintainers (@livestream-aws)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The frontend's public address
  livestream.aws.frontend_address:
    name: live
    instance_id: "{{ live_instances.instances.frontend.instance_id }}"
  register: live_address
"""

RETURN = r"""
public_ip:
  description: The Elastic IP (null in check mode before it is allocated).
  returned: success
  type: str
  sample: 198.51.100.7
allocation_id:
  description: Its allocation ID (null in check mode before it is allocated).
  returned: success
  type: str
  sample: eipalloc-0123456789abcdef0
actions:
  description: What was changed (in check mode, what would be), one line each.
  returned: always
  type: list
  elements: str
  sample: ["allocate Elastic IP live-frontend-eip", "associate live-frontend-eip with i-0123456789abcdef0"]
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
from ansible_collections.livestream.aws.plugins.module_utils.stack import stack_tags
from ansible_collections.livestream.aws.plugins.module_utils.stack import tag_specifications
from ansible_collections.livestream.aws.plugins.module_utils.validation import fail_on_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import stack_errors


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["stack_name"]),
            instance_id=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    name, instance_id = module.params["name"], module.params["instance_id"]
    errors = stack_errors(name)
    if not instance_id and not module.check_mode:
        errors.append("instance_id is required (it may only be left out in check mode)")
    fail_on_errors(module, errors)

    ec2 = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
    changes = Changes(module)
    eip_name = resource_name(name, "frontend-eip")
    try:
        found = ec2.describe_addresses(Filters=named_filters(name, "frontend-eip"), aws_retry=True)["Addresses"]
        if len(found) > 1:
            module.fail_json(msg=f"stack {name!r} has {len(found)} Elastic IPs named {eip_name!r}: {[a['PublicIp'] for a in found]}")
        if found:
            address = found[0]
        else:
            changes.record(f"allocate Elastic IP {eip_name}", "Elastic IP", "absent", "present")
            address = {"PublicIp": None, "AllocationId": None}
            if not module.check_mode:
                address = ec2.allocate_address(
                    Domain="vpc",
                    TagSpecifications=tag_specifications("elastic-ip", stack_tags(name, resource_name=eip_name)),
                    aws_retry=True,
                )
        if (address.get("InstanceId") or None) != instance_id or not instance_id:
            changes.record(
                f"associate {eip_name} with {instance_id or 'the frontend'}",
                f"{eip_name} instance",
                address.get("InstanceId") or None,
                instance_id,
            )
            if not module.check_mode:
                ec2.associate_address(
                    AllocationId=address["AllocationId"], InstanceId=instance_id, AllowReassociation=True, aws_retry=True
                )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to give the frontend of stack {name!r} its Elastic IP {eip_name}")

    module.exit_json(
        changed=changes.changed,
        actions=changes.actions,
        diff=changes.diff(),
        public_ip=address["PublicIp"],
        allocation_id=address["AllocationId"],
    )


if __name__ == "__main__":
    main()
