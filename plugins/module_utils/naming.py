# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""How a stack and its resources are named and tagged, and so found: the tags are the only
record of what belongs to a stack."""

from __future__ import annotations

import re

from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_specifications

from ansible_collections.livestream.aws.plugins.module_utils.aws import paginate

STACK_TAG = "Stack"
ROLE_TAG = "Role"
ROLES = ("bastion", "frontend", "backend")

# A stack name becomes part of resource names, tags and (in the lab) interface names.
STACK_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")

# Instances in these states still belong to the stack; terminated ones are history.
LIVE_INSTANCE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]


def stack_name_error(name, option="name, livestream_stack_name"):
    """Return why ``name`` is not a usable stack name, or None when it is; the message names
    ``option``, where the name was given."""
    if not STACK_NAME_PATTERN.match(name or ""):
        return (
            f"stack name {name!r} ({option}) is not valid: use 2 to 32 lowercase letters, "
            "digits and hyphens, starting with a letter and not ending with a hyphen"
        )
    if name.startswith("sg-"):
        # the security groups are called <stack>-<role>, and AWS refuses group names like IDs
        return f"stack name {name!r} ({option}) must not start with 'sg-': AWS refuses such security group names"
    return None


def stack_filters(name, extra=None):
    """EC2 Describe* filters that select the resources tagged ``Stack=<name>``."""
    filters = [{"Name": f"tag:{STACK_TAG}", "Values": [name]}]
    for key, values in (extra or {}).items():
        filters.append({"Name": key, "Values": values if isinstance(values, list) else [values]})
    return filters


def stack_tags(name, role=None, resource_name=None, extra=None):
    """The tags a stack resource carries: Stack, Role (for instances), Name, plus extras."""
    tags = dict(extra or {})
    tags[STACK_TAG] = name
    if role:
        tags[ROLE_TAG] = role
    if resource_name:
        tags["Name"] = resource_name
    return tags


def resource_name(name, what):
    """The Name tag of a stack resource: ``<stack>-<what>``; it is also how modules find it."""
    return f"{name}-{what}"


def named_filters(name, what):
    """Filters for the one resource of the stack called ``<stack>-<what>``."""
    return stack_filters(name, {"tag:Name": resource_name(name, what)})


def tag_specifications(resource_type, tags):
    """Tags applied by the create call itself, so an interrupted run never leaves an
    untagged (and so unfindable) resource behind."""
    return boto3_tag_specifications(tags, [resource_type])


def tags_of(resource):
    """Tags of a boto3 resource (list form) as a dict."""
    return boto3_tag_list_to_ansible_dict(resource.get("Tags", []))


def describe_stack(ec2, name):
    """Every EC2 resource tagged ``Stack=<name>``, grouped by kind, as boto3 describes them.

    ``ec2`` is a client from ``aws.client``: each call below is retried with backoff on
    throttling by the client's decorator, each listing by ``paginate``.
    """
    filters = stack_filters(name)
    instances = [
        instance
        for reservation in paginate(
            ec2,
            "describe_instances",
            "Reservations",
            Filters=stack_filters(name, {"instance-state-name": LIVE_INSTANCE_STATES}),
        )
        for instance in reservation["Instances"]
    ]
    return {
        "vpcs": paginate(ec2, "describe_vpcs", "Vpcs", Filters=filters),
        "subnets": paginate(ec2, "describe_subnets", "Subnets", Filters=filters),
        "internet_gateways": paginate(ec2, "describe_internet_gateways", "InternetGateways", Filters=filters),
        "route_tables": paginate(ec2, "describe_route_tables", "RouteTables", Filters=filters),
        "security_groups": paginate(ec2, "describe_security_groups", "SecurityGroups", Filters=filters),
        "instances": instances,
        # describe_addresses and describe_key_pairs do not paginate
        "addresses": ec2.describe_addresses(Filters=filters, aws_retry=True)["Addresses"],
        "key_pairs": ec2.describe_key_pairs(Filters=filters, aws_retry=True)["KeyPairs"],
    }
