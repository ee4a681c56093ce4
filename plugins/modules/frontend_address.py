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
  instance_id:
    description:
      - The frontend instance, as returned by M(livestream.aws.instances).
      - May be null in check mode only, when the frontend does not exist yet.
    type: str
author:
  - livestream.aws maintainers (@livestream-aws)
extends_documentation_fragment:
  - livestream.aws.stack.name
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

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.livestream.aws.plugins.module_utils import options
from ansible_collections.livestream.aws.plugins.module_utils.aws import client
from ansible_collections.livestream.aws.plugins.module_utils.changes import Changes
from ansible_collections.livestream.aws.plugins.module_utils.publishing import ensure_frontend_address
from ansible_collections.livestream.aws.plugins.module_utils.validation import check_mode_only_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import fail_on_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import stack_errors


def main():
    module = AnsibleAWSModule(
        argument_spec=options.argument_spec(options.NAME, instance_id=dict(type="str")),
        supports_check_mode=True,
    )
    name, instance_id = module.params["name"], module.params["instance_id"]
    fail_on_errors(module, stack_errors(name) + check_mode_only_errors(module, "instance_id"))

    changes = Changes(module)
    address = ensure_frontend_address(client(module, "ec2"), changes, name, instance_id=instance_id)
    changes.exit_json(public_ip=address["PublicIp"], allocation_id=address["AllocationId"])


if __name__ == "__main__":
    main()
