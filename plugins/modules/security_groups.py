#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: security_groups
version_added: 0.1.0
short_description: The three least-privilege security groups of a livestream stack
description:
  - Makes sure a stack has one security group per role, each letting in exactly what is
    listed below and nothing else (rules found that are not listed are revoked).
  - C(bastion) - SSH (22/tcp) from O(admin_cidrs); all traffic from the private subnet,
    because the bastion is its NAT instance.
  - C(frontend) - HTTP and HTTPS (80, 443/tcp) from anywhere; RTMP (1935/tcp) from the
    C(backend) group; SSH from the C(bastion) group.
  - C(backend) - SSH from the C(bastion) group.
  - Outbound rules are left as AWS makes them (all traffic allowed).
  - Groups are tagged C(Stack=<name>), C(Role=<role>) and C(Name=<name>-<role>) when they are
    created and found again by those tags, all three with one call.
  - Use M(livestream.aws.stack_teardown) to remove them.
options:
  name:
    description:
      - The stack name, as in the C(Stack) tag of its resources.
    required: true
    type: str
    aliases: [stack_name]
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
  admin_cidrs:
    description:
      - The IPv4 blocks allowed to reach the bastion over SSH. At least one.
      - V(0.0.0.0/0) is refused unless O(allow_ssh_from_anywhere=true).
    type: list
    elements: str
    required: true
  allow_ssh_from_anywhere:
    description:
      - Accept an admin CIDR that opens SSH to the whole internet.
    type: bool
    default: false
author:
  - livestream.aws maintainers (@livestream-aws)
extends_documentation_fragment:
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

- name: A throwaway demo stack that anyone may SSH into (explicit opt-in)
  livestream.aws.security_groups:
    name: demo
    vpc_id: "{{ demo_network.vpc.vpc_id }}"
    admin_cidrs: [0.0.0.0/0]
    allow_ssh_from_anywhere: true
"""

RETURN = r"""
groups:
  description: The security group IDs by role (null in check mode for a group not created yet).
  returned: success
  type: dict
  sample: {"bastion": "sg-0123", "frontend": "sg-4567", "backend": "sg-89ab"}
actions:
  description: What was changed (in check mode, what would be), one line each.
  returned: always
  type: list
  elements: str
  sample: ["create security group live-bastion", "allow tcp 22 from 203.0.113.0/28 into live-bastion"]
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.livestream.aws.plugins.module_utils.stack import ROLES
from ansible_collections.livestream.aws.plugins.module_utils.stack import Changes
from ansible_collections.livestream.aws.plugins.module_utils.stack import resource_name
from ansible_collections.livestream.aws.plugins.module_utils.stack import stack_filters
from ansible_collections.livestream.aws.plugins.module_utils.stack import stack_tags
from ansible_collections.livestream.aws.plugins.module_utils.stack import tag_specifications
from ansible_collections.livestream.aws.plugins.module_utils.stack import tags_of
from ansible_collections.livestream.aws.plugins.module_utils.validation import admin_access_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import fail_on_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import parse_cidr
from ansible_collections.livestream.aws.plugins.module_utils.validation import stack_errors

ANYWHERE = "0.0.0.0/0"
DESCRIPTIONS = {
    "bastion": "SSH jump host and NAT instance",
    "frontend": "nginx-rtmp HLS frontend",
    "backend": "ffmpeg backend",
}


def wanted_rules(admin_cidrs, private_subnet_cidr, group_ids):
    """Ingress rules by role: (protocol, from port, to port, source kind, source, why)."""
    rules = {
        "bastion": [("tcp", 22, 22, "cidr", cidr, "SSH from an admin network") for cidr in admin_cidrs]
        + [("-1", None, None, "cidr", private_subnet_cidr, "NAT for the private subnet")],
        "frontend": [
            ("tcp", 80, 80, "cidr", ANYWHERE, "HTTP for viewers and ACME"),
            ("tcp", 443, 443, "cidr", ANYWHERE, "HTTPS for viewers"),
            ("tcp", 1935, 1935, "group", group_ids["backend"], "RTMP from the backend"),
            ("tcp", 22, 22, "group", group_ids["bastion"], "SSH through the bastion"),
        ],
        "backend": [("tcp", 22, 22, "group", group_ids["bastion"], "SSH through the bastion")],
    }
    return {role: {rule[:5]: rule[5] for rule in role_rules} for role, role_rules in rules.items()}


def current_rules(group):
    """The group's ingress rules, each with its description (kept for revoking: AWS ignores
    it when matching a rule, moto does not)."""
    rules = {}
    sources = (("IpRanges", "cidr", "CidrIp"), ("UserIdGroupPairs", "group", "GroupId"),
               ("Ipv6Ranges", "cidr6", "CidrIpv6"), ("PrefixListIds", "prefix", "PrefixListId"))
    for permission in group.get("IpPermissions", []):
        protocol = permission["IpProtocol"]
        ports = (permission.get("FromPort"), permission.get("ToPort")) if protocol != "-1" else (None, None)
        for list_key, kind, key in sources:
            for entry in permission.get(list_key, []):
                rules[(protocol, *ports, kind, entry[key])] = entry.get("Description")
    return rules


def to_permission(rule, description=None):
    protocol, from_port, to_port, kind, source = rule
    permission = {"IpProtocol": protocol}
    if protocol != "-1":
        permission.update(FromPort=from_port, ToPort=to_port)
    entry_key, list_key = {
        "cidr": ("CidrIp", "IpRanges"),
        "group": ("GroupId", "UserIdGroupPairs"),
        "cidr6": ("CidrIpv6", "Ipv6Ranges"),
        "prefix": ("PrefixListId", "PrefixListIds"),
    }[kind]
    entry = {entry_key: source}
    if description:
        entry["Description"] = description
    permission[list_key] = [entry]
    return permission


def describe_rule(rule, names):
    protocol, from_port, _to_port, kind, source = rule
    what = "all traffic" if protocol == "-1" else f"{protocol} {from_port}"
    if kind == "group":
        source = names.get(source, source) or "a group to be created"
    return f"{what} from {source}"


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["stack_name"]),
            vpc_id=dict(type="str"),
            private_subnet_cidr=dict(type="str", default="10.0.2.0/24"),
            admin_cidrs=dict(type="list", elements="str", required=True),
            allow_ssh_from_anywhere=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    name, vpc_id = params["name"], params["vpc_id"]
    errors = stack_errors(name) + admin_access_errors(params["admin_cidrs"], params["allow_ssh_from_anywhere"])
    parse_cidr("private subnet CIDR", params["private_subnet_cidr"], errors)
    if not vpc_id and not module.check_mode:
        errors.append("vpc_id is required (it may only be left out in check mode)")
    fail_on_errors(module, errors)

    ec2 = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
    changes = Changes(module)
    group_names = {role: resource_name(name, role) for role in ROLES}
    try:
        found = []
        if vpc_id:
            found = ec2.describe_security_groups(Filters=stack_filters(name, {"vpc-id": vpc_id}), aws_retry=True)["SecurityGroups"]
        groups = {}
        for role in ROLES:
            mine = [g for g in found if tags_of(g).get("Name") == group_names[role]]
            if len(mine) > 1:
                module.fail_json(msg=f"stack {name!r} has {len(mine)} security groups named {group_names[role]!r}: {[g['GroupId'] for g in mine]}")
            if mine:
                groups[role] = mine[0]
                continue
            changes.record(f"create security group {group_names[role]}", f"{role} group", "absent", "present")
            if module.check_mode:
                groups[role] = {"GroupId": None, "IpPermissions": []}
                continue
            groups[role] = {
                "GroupId": ec2.create_security_group(
                    GroupName=group_names[role],
                    Description=f"livestream {name} {role}: {DESCRIPTIONS[role]}",
                    VpcId=vpc_id,
                    TagSpecifications=tag_specifications(
                        "security-group", stack_tags(name, role=role, resource_name=group_names[role])
                    ),
                    aws_retry=True,
                )["GroupId"],
                "IpPermissions": [],
            }

        group_ids = {role: group["GroupId"] for role, group in groups.items()}
        names_by_id = {group_id: group_names[role] for role, group_id in group_ids.items() if group_id}
        for role, rules in wanted_rules(params["admin_cidrs"], params["private_subnet_cidr"], group_ids).items():
            current = current_rules(groups[role])
            missing = [rule for rule in rules if rule not in current]
            extra = sorted(set(current) - set(rules), key=str)
            if not missing and not extra:
                continue
            changes.record(
                "; ".join(
                    [f"allow {describe_rule(r, names_by_id)} into {group_names[role]}" for r in missing]
                    + [f"revoke {describe_rule(r, names_by_id)} from {group_names[role]}" for r in extra]
                ),
                f"{role} ingress",
                sorted(describe_rule(r, names_by_id) for r in current),
                sorted(describe_rule(r, names_by_id) for r in rules),
            )
            if module.check_mode:
                continue
            if extra:
                ec2.revoke_security_group_ingress(
                    GroupId=group_ids[role], IpPermissions=[to_permission(r, current[r]) for r in extra], aws_retry=True
                )
            if missing:
                ec2.authorize_security_group_ingress(
                    GroupId=group_ids[role], IpPermissions=[to_permission(r, rules[r]) for r in missing], aws_retry=True
                )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to make the security groups of stack {name!r} in {vpc_id}")

    module.exit_json(changed=changes.changed, actions=changes.actions, diff=changes.diff(), groups=group_ids)


if __name__ == "__main__":
    main()
