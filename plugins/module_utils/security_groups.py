# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A stack's least-privilege security groups (one per role, and the frontend's "origin"), their
ingress rules reconciled. Used by
livestream.aws.security_groups and livestream.aws.stack_provision; the rules that name other
groups, also by livestream.aws.stack_teardown."""

from __future__ import annotations

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.livestream.aws.plugins.module_utils.aws import only_one
from ansible_collections.livestream.aws.plugins.module_utils.cdn import ORIGIN_FACING_PREFIX_LIST
from ansible_collections.livestream.aws.plugins.module_utils.naming import resource_name
from ansible_collections.livestream.aws.plugins.module_utils.naming import ROLES
from ansible_collections.livestream.aws.plugins.module_utils.naming import stack_filters
from ansible_collections.livestream.aws.plugins.module_utils.naming import stack_tags
from ansible_collections.livestream.aws.plugins.module_utils.naming import tag_specifications
from ansible_collections.livestream.aws.plugins.module_utils.naming import tags_of
from ansible_collections.livestream.aws.plugins.module_utils.validation import ingest_cidrs

ANYWHERE = "0.0.0.0/0"
# The frontend's port the backend and the bastion push their metrics to over the VPC (the roles'
# frontend_metrics_push_port, livestream.aws.metrics): they take no connection for them.
METRICS_PUSH_PORT = 9101
# The groups of a stack: one per role, and the frontend's second, "origin": HTTPS from the
# CDN's edges when there is a CDN (empty otherwise). Apart because AWS counts a rule naming a
# prefix list as the list's size (CloudFront's origin-facing list: 55) toward a group's 60
# inbound rules: in the frontend's own group it would leave room for two ingest CIDRs.
GROUPS = ROLES + ("origin",)
DESCRIPTIONS = {
    "bastion": "SSH jump host and NAT instance",
    "frontend": "nginx-rtmp HLS frontend",
    "backend": "ffmpeg backend",
    "origin": "HTTPS from the CDN to the frontend",
}


def origin_facing_prefix_list(ec2):
    """The ID of the AWS-managed prefix list of the addresses CloudFront reaches origins from."""
    found = ec2.describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": [ORIGIN_FACING_PREFIX_LIST]}], aws_retry=True
    )["PrefixLists"]
    if not found:
        raise LookupError(f"the region has no managed prefix list {ORIGIN_FACING_PREFIX_LIST}")
    return found[0]["PrefixListId"]


def groups_of(role, group_ids):
    """The IDs of the groups an instance of ``role`` is in (the frontend: its own and origin)."""
    return [group_ids[role]] + ([group_ids["origin"]] if role == "frontend" and group_ids.get("origin") else [])


def wanted_rules(access, private_subnet_cidr, group_ids, cdn_prefix_list=None):
    """Ingress rules by group: (protocol, from port, to port, source kind, source, why).
    ``access``: the ACCESS options (admin_cidrs, ingest_cidrs, ingest_port). With a CDN
    (``cdn_prefix_list``: the ID of its origin-facing prefix list), HTTPS reaches the frontend
    from the CDN alone; HTTP stays open to all, for Let's Encrypt's HTTP-01 validation."""
    admin_cidrs, port = access["admin_cidrs"], access["ingest_port"]
    https = [] if cdn_prefix_list else [("tcp", 443, 443, "cidr", ANYWHERE, "HTTPS for viewers")]
    rules = {
        "bastion": [("tcp", 22, 22, "cidr", cidr, "SSH from an admin network") for cidr in admin_cidrs]
        + [("-1", None, None, "cidr", private_subnet_cidr, "NAT for the private subnet")],
        "origin": [("tcp", 443, 443, "prefix", cdn_prefix_list, "HTTPS from the CDN")] if cdn_prefix_list else [],
        "frontend": [
            ("tcp", 80, 80, "cidr", ANYWHERE, "HTTP for viewers and ACME"),
        ] + https + [
            ("tcp", 1935, 1935, "group", group_ids["backend"], "RTMP from the backend"),
            ("tcp", METRICS_PUSH_PORT, METRICS_PUSH_PORT, "group", group_ids["backend"], "Metrics pushed by the backend"),
            ("tcp", METRICS_PUSH_PORT, METRICS_PUSH_PORT, "group", group_ids["bastion"], "Metrics pushed by the bastion"),
        ] + [
            ("tcp", port, port, "cidr", cidr, "RTMPS from encoders") for cidr in ingest_cidrs(access)
        ] + [
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
    """A rule (as ``wanted_rules`` and ``current_rules`` key them) as the API takes it."""
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


def group_references(group):
    """The group's ingress rules that name a group, as the API takes them: they must go
    before a group they name can be deleted."""
    return [to_permission(rule, description) for rule, description in current_rules(group).items() if rule[3] == "group"]


def rule_changes(wanted, current):
    """What brings ``current`` rules to ``wanted`` (both as ``current_rules`` returns them):
    the rules to add, and those to revoke (sorted, for a stable report)."""
    missing = [rule for rule in wanted if rule not in current]
    extra = sorted(set(current) - set(wanted), key=str)
    return missing, extra


def describe_rule(rule, names):
    protocol, from_port, _to_port, kind, source = rule
    what = "all traffic" if protocol == "-1" else f"{protocol} {from_port}"
    if kind == "group":
        source = names.get(source, source) or "a group to be created"
    return f"{what} from {source}"


class SecurityGroups:
    """The stack's three groups, in two steps: ``make`` (find them, create those missing) and
    ``rules`` (their ingress, which names the groups themselves). A group made just now may be
    unknown to other calls for a moment (EC2's eventual consistency): provisioning makes them
    while the subnets settle, so that their IDs are known by the time the rules name them."""

    def __init__(self, ec2, changes, name, *, private_subnet_cidr, access):
        self.module = changes.module
        self.ec2 = ec2
        self.changes = changes
        self.name = name
        self.private_subnet_cidr = private_subnet_cidr
        self.access = access
        self.names = {group: resource_name(name, group) for group in GROUPS}
        self.vpc_id = None
        self.groups = {}

    def make(self, vpc_id):
        self.vpc_id = vpc_id
        module, ec2, name = self.module, self.ec2, self.name
        try:
            found = []
            if vpc_id:
                found = ec2.describe_security_groups(Filters=stack_filters(name, {"vpc-id": vpc_id}), aws_retry=True)["SecurityGroups"]
            for role in GROUPS:
                mine = only_one(module, [g for g in found if tags_of(g).get("Name") == self.names[role]], "GroupId",
                                f"security groups named {self.names[role]!r} in stack {name!r}")
                if mine is not None:
                    self.groups[role] = mine
                    continue
                self.changes.record(f"create security group {self.names[role]}", f"{role} group", "absent", "present")
                if self.changes.check_mode:
                    self.groups[role] = {"GroupId": None, "IpPermissions": []}
                    continue
                self.groups[role] = {
                    "GroupId": ec2.create_security_group(
                        GroupName=self.names[role],
                        Description=f"livestream {name} {role}: {DESCRIPTIONS[role]}",
                        VpcId=vpc_id,
                        TagSpecifications=tag_specifications(
                            "security-group", stack_tags(name, role=role if role in ROLES else None,
                                                         resource_name=self.names[role])
                        ),
                        aws_retry=True,
                    )["GroupId"],
                    "IpPermissions": [],
                }
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"Failed to make the security groups of stack {name!r} in {vpc_id}")

    def rules(self):
        """Bring every group's ingress in line; return the group IDs by role (null in check
        mode for a group that would be created)."""
        ec2, groups = self.ec2, self.groups
        group_ids = {role: group["GroupId"] for role, group in groups.items()}
        names_by_id = {group_id: self.names[role] for role, group_id in group_ids.items() if group_id}
        try:
            prefix_list = origin_facing_prefix_list(ec2) if self.access.get("cdn", "none") != "none" else None
            for role, rules in wanted_rules(self.access, self.private_subnet_cidr, group_ids, prefix_list).items():
                current = current_rules(groups[role])
                missing, extra = rule_changes(rules, current)
                if not missing and not extra:
                    continue
                self.changes.record(
                    "; ".join(
                        [f"allow {describe_rule(r, names_by_id)} into {self.names[role]}" for r in missing]
                        + [f"revoke {describe_rule(r, names_by_id)} from {self.names[role]}" for r in extra]
                    ),
                    f"{role} ingress",
                    sorted(describe_rule(r, names_by_id) for r in current),
                    sorted(describe_rule(r, names_by_id) for r in rules),
                )
                if self.changes.check_mode:
                    continue
                if extra:
                    ec2.revoke_security_group_ingress(
                        GroupId=group_ids[role], IpPermissions=[to_permission(r, current[r]) for r in extra], aws_retry=True
                    )
                if missing:
                    ec2.authorize_security_group_ingress(
                        GroupId=group_ids[role], IpPermissions=[to_permission(r, rules[r]) for r in missing], aws_retry=True
                    )
        except LookupError as e:
            self.module.fail_json(msg=f"Failed to let the CDN reach the frontend of stack {self.name!r}: {e}")
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.module.fail_json_aws(e, msg=f"Failed to make the security groups of stack {self.name!r} in {self.vpc_id}")
        return group_ids


def ensure_security_groups(ec2, changes, name, *, vpc_id, private_subnet_cidr, access):
    """Make the stack's groups and their rules what they should be; return their IDs by group
    (null in check mode for a group that would be created). ``access``: the ACCESS options."""
    groups = SecurityGroups(ec2, changes, name, private_subnet_cidr=private_subnet_cidr, access=access)
    groups.make(vpc_id)
    return groups.rules()
