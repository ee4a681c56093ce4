#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: security_groups
version_added: 0.1.0
short_description: The least-privilege security groups of a livestream stack
description:
  - Makes sure a stack has one security group per role and the frontend's second group,
    C(origin), each letting in exactly what is listed below and nothing else (rules found that
    are not listed are revoked).
  - C(bastion) - SSH (22/tcp) from O(admin_cidrs); all traffic from the private subnet,
    because the bastion is its NAT instance.
  - C(frontend) - HTTP (80/tcp) from anywhere, HTTPS (443/tcp) from anywhere unless O(cdn) says
    otherwise; RTMP (1935/tcp) from the C(backend) group; RTMPS (O(ingest_port), 1936/tcp by
    default) from O(ingest_cidrs); SSH from the C(bastion) group.
  - C(origin) - HTTPS from CloudFront with O(cdn=cloudfront), nothing otherwise.
  - C(backend) - SSH from the C(bastion) group.
  - Outbound rules are left as AWS makes them (all traffic allowed).
  - Groups are tagged C(Stack=<name>), C(Role=<role>) (not C(origin)) and C(Name=<name>-<group>) when
    they are created and found again by those tags, all with one call.
  - Use M(livestream.aws.stack_teardown) to remove them.
options:
  vpc_id:
    description:
      - The stack's VPC, as returned by M(livestream.aws.network).
      - May be null in check mode only, when the VPC does not exist yet; every group is then
        reported as to be created.
    type: str
  private_subnet_cidr:
    description:
      - The private subnet's block; its hosts use the bastion as their NAT.
    type: str
    default: 10.0.2.0/24
author:
  - livestream.aws maintainers (@livestream-aws)
extends_documentation_fragment:
  - livestream.aws.stack.name
  - livestream.aws.stack.access
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Security groups of the stack "live", SSH from one office
  livestream.aws.security_groups:
    name: live
    vpc_id: "{{ live_network.vpc.vpc_id }}"
    admin_cidrs: [203.0.113.0/28]
  register: live_groups

- name: The same, encoders publishing over RTMPS from anywhere (their stream keys are the guard)
  livestream.aws.security_groups:
    name: live
    vpc_id: "{{ live_network.vpc.vpc_id }}"
    admin_cidrs: [203.0.113.0/28]
    ingest_cidrs: [0.0.0.0/0]

- name: A throwaway demo stack that anyone may SSH into (explicit opt-in)
  livestream.aws.security_groups:
    name: demo
    vpc_id: "{{ demo_network.vpc.vpc_id }}"
    admin_cidrs: [0.0.0.0/0]
    allow_ssh_from_anywhere: true
"""

RETURN = r"""
groups:
  description: The security group IDs by role, and C(origin) (null in check mode for a group not created yet).
  returned: success
  type: dict
  sample: {"bastion": "sg-0123", "frontend": "sg-4567", "backend": "sg-89ab", "origin": "sg-cdef"}
actions:
  description: What was changed (in check mode, what would be), one line each.
  returned: always
  type: list
  elements: str
  sample: ["create security group live-bastion", "allow tcp 22 from 203.0.113.0/28 into live-bastion"]
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.livestream.aws.plugins.module_utils import options
from ansible_collections.livestream.aws.plugins.module_utils.aws import client
from ansible_collections.livestream.aws.plugins.module_utils.changes import Changes
from ansible_collections.livestream.aws.plugins.module_utils.security_groups import ensure_security_groups
from ansible_collections.livestream.aws.plugins.module_utils.validation import access_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import check_mode_only_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import fail_on_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import parse_cidr
from ansible_collections.livestream.aws.plugins.module_utils.validation import stack_errors


def main():
    module = AnsibleAWSModule(
        argument_spec=options.argument_spec(
            options.NAME,
            options.ACCESS,
            vpc_id=dict(type="str"),
            private_subnet_cidr=dict(type="str", default="10.0.2.0/24"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    errors = stack_errors(params["name"]) + access_errors(params)
    parse_cidr("private subnet CIDR", params["private_subnet_cidr"], errors)
    errors += check_mode_only_errors(module, "vpc_id")
    fail_on_errors(module, errors)

    changes = Changes(module)
    group_ids = ensure_security_groups(
        client(module, "ec2"),
        changes,
        params["name"],
        vpc_id=params["vpc_id"],
        private_subnet_cidr=params["private_subnet_cidr"],
        access=params,
    )
    changes.exit_json(groups=group_ids)


if __name__ == "__main__":
    main()
