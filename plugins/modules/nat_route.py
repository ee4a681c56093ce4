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
  network_interface_id:
    description:
      - The bastion's primary network interface, as returned by M(livestream.aws.instances).
      - May be null in check mode only, when the bastion does not exist yet.
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

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.livestream.aws.plugins.module_utils import options
from ansible_collections.livestream.aws.plugins.module_utils.aws import client
from ansible_collections.livestream.aws.plugins.module_utils.changes import Changes
from ansible_collections.livestream.aws.plugins.module_utils.network import ensure_nat_route
from ansible_collections.livestream.aws.plugins.module_utils.validation import check_mode_only_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import fail_on_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import stack_errors


def main():
    module = AnsibleAWSModule(
        argument_spec=options.argument_spec(options.NAME, network_interface_id=dict(type="str")),
        supports_check_mode=True,
    )
    name, interface_id = module.params["name"], module.params["network_interface_id"]
    fail_on_errors(module, stack_errors(name) + check_mode_only_errors(module, "network_interface_id"))

    changes = Changes(module)
    route_table_id = ensure_nat_route(client(module, "ec2"), changes, name, interface_id=interface_id)
    changes.exit_json(route_table_id=route_table_id)


if __name__ == "__main__":
    main()
