# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What every livestream.aws module shares: how a stack is named, tagged and found."""

from __future__ import annotations

import re

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.amazon.aws.plugins.module_utils.transformation import boto3_resource_to_ansible_dict

STACK_TAG = "Stack"
ROLE_TAG = "Role"
ROLES = ("bastion", "frontend", "backend")

# A stack name becomes part of resource names, tags and (in the lab) interface names.
STACK_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")

# Instances in these states still belong to the stack; terminated ones are history.
LIVE_INSTANCE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]


def stack_name_error(name):
    """Return why ``name`` is not a usable stack name, or None when it is."""
    if not STACK_NAME_PATTERN.match(name or ""):
        return (
            f"stack name {name!r} is not valid: use 2 to 32 lowercase letters, digits and "
            "hyphens, starting with a letter and not ending with a hyphen"
        )
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


@AWSRetry.jittered_backoff()
def _paginate(client, operation, key, **params):
    # paginators bypass the client's retry decorator: retry the whole listing instead
    paginator = client.get_paginator(operation)
    return paginator.paginate(**params).build_full_result()[key]


def _to_ansible(resource):
    """boto3 CamelCase to snake_case, with tags as a plain dict (as amazon.aws returns them)."""
    return boto3_resource_to_ansible_dict(resource, force_tags=True)


def describe_stack(ec2, name):
    """Every EC2 resource tagged ``Stack=<name>``, grouped by kind, snake_cased.

    ``ec2`` is a client from ``module.client("ec2", retry_decorator=...)``: each call
    below is retried with backoff on throttling by the client's decorator.
    """
    filters = stack_filters(name)
    instances = [
        instance
        for reservation in _paginate(
            ec2,
            "describe_instances",
            "Reservations",
            Filters=stack_filters(name, {"instance-state-name": LIVE_INSTANCE_STATES}),
        )
        for instance in reservation["Instances"]
    ]
    resources = {
        "vpcs": _paginate(ec2, "describe_vpcs", "Vpcs", Filters=filters),
        "subnets": _paginate(ec2, "describe_subnets", "Subnets", Filters=filters),
        "internet_gateways": _paginate(
            ec2, "describe_internet_gateways", "InternetGateways", Filters=filters
        ),
        "route_tables": _paginate(ec2, "describe_route_tables", "RouteTables", Filters=filters),
        "security_groups": _paginate(
            ec2, "describe_security_groups", "SecurityGroups", Filters=filters
        ),
        "instances": instances,
        # describe_addresses and describe_key_pairs do not paginate
        "addresses": ec2.describe_addresses(Filters=filters, aws_retry=True)["Addresses"],
        "key_pairs": ec2.describe_key_pairs(Filters=filters, aws_retry=True)["KeyPairs"],
    }
    return {kind: [_to_ansible(item) for item in items] for kind, items in resources.items()}


def tags_of(resource):
    """Tags of a boto3 resource (list form) as a dict."""
    return boto3_tag_list_to_ansible_dict(resource.get("Tags", []))
