#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: stack_teardown
version_added: 0.1.0
short_description: Remove every resource of a livestream stack, in dependency order
description:
  - Finds every EC2 resource tagged C(Stack=<name>) (as M(livestream.aws.stack_info) does) and
    removes it in the order AWS requires, reporting each one removed.
  - The order is - the DNS records (the one named by O(domain) and O(hosted_zone), and those
    provisioning noted on the stack's Elastic IPs in the tags C(DnsRecord) and C(DnsZone);
    each only if it points at addresses of the stack alone), their hosted zones (only if the
    stack created one and it holds no other records), Elastic IPs (never one that a record
    still points at, since released it could go to anyone, who would then serve the domain),
    instances (waiting until they are terminated), route
    tables, the rules by which the stack's security groups refer to each other, the groups,
    the internet gateway (detached first), subnets, the VPC, key pairs.
  - Resources of other stacks, and untagged ones, are never touched.
  - In check mode, reports what would be removed and removes nothing. Running it on a stack
    that is gone changes nothing.
  - A run that fails half-way says what it had begun to remove (also in RV(actions) and
    RV(removed)); run it again to remove the rest.
options:
  domain:
    description:
      - A DNS name of the stack, whose A record goes too. Requires O(hosted_zone).
      - Not needed for the record provisioning made, which the stack's Elastic IP names.
    type: str
  hosted_zone:
    description:
      - The hosted zone that holds O(domain).
    type: str
  wait_timeout:
    description:
      - How many seconds to wait for the instances to be terminated.
    type: int
    default: 900
author:
  - livestream.aws maintainers (@livestream-aws)
extends_documentation_fragment:
  - livestream.aws.stack.name
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: What would go?
  livestream.aws.stack_teardown:
    name: live
    domain: live.example.com
    hosted_zone: example.com
  check_mode: true
  register: doomed

- name: Remove the stack "live"
  livestream.aws.stack_teardown:
    name: live
    domain: live.example.com
    hosted_zone: example.com
  register: teardown

- name: Say what went
  ansible.builtin.debug:
    msg: "{{ teardown.removed | map(attribute='kind') | zip(teardown.removed | map(attribute='id')) }}"
"""

RETURN = r"""
removed:
  description: What was removed (in check mode, what would be), in the order of removal.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: The kind of resource.
      type: str
      sample: instance
    id:
      description: Its ID (for a DNS record, its name).
      type: str
      sample: i-0123456789abcdef0
    name:
      description: Its C(Name) tag, if any.
      type: str
      sample: live-frontend
  sample: [{"kind": "instance", "id": "i-0123", "name": "live-frontend"}, {"kind": "vpc", "id": "vpc-0123", "name": "live-vpc"}]
kept:
  description: What was found but left in place, and why.
  returned: always
  type: list
  elements: str
  sample: ["A record live.example.com: it points at 192.0.2.1, not at the stack"]
actions:
  description: What was removed (in check mode, what would be), one line each, in order.
  returned: always
  type: list
  elements: str
  sample: ["terminate instance i-0123 (live-frontend)", "delete VPC vpc-0123 (live-vpc)"]
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.livestream.aws.plugins.module_utils import options
from ansible_collections.livestream.aws.plugins.module_utils.aws import client
from ansible_collections.livestream.aws.plugins.module_utils.changes import Changes
from ansible_collections.livestream.aws.plugins.module_utils.teardown import ensure_stack_removed
from ansible_collections.livestream.aws.plugins.module_utils.teardown import STILL_IN_USE
from ansible_collections.livestream.aws.plugins.module_utils.teardown import TEARDOWN_LEFT
from ansible_collections.livestream.aws.plugins.module_utils.validation import domain_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import fail_on_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import stack_errors


def main():
    module = AnsibleAWSModule(
        argument_spec=options.argument_spec(
            options.NAME,
            domain=dict(type="str"),
            hosted_zone=dict(type="str"),
            wait_timeout=dict(type="int", default=900),
        ),
        required_together=[("domain", "hosted_zone")],
        supports_check_mode=True,
    )
    params = module.params
    name = params["name"]
    errors = stack_errors(name)
    if params["domain"]:
        errors += domain_errors(params["domain"], params["hosted_zone"])
    fail_on_errors(module, errors)

    changes = Changes(module, left=TEARDOWN_LEFT)
    removed, kept = ensure_stack_removed(
        client(module, "ec2", catch_extra_error_codes=STILL_IN_USE), client(module, "route53"), changes, name,
        domain=params["domain"], zone_name=params["hosted_zone"], wait_timeout=params["wait_timeout"],
    )
    changes.exit_json(removed=removed, kept=kept)


if __name__ == "__main__":
    main()
