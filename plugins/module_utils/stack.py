# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What every livestream.aws module shares: how a stack is named, tagged and found."""

from __future__ import annotations

import functools
import random
import re
import time

try:
    import botocore.config
    import botocore.exceptions
    import botocore.loaders
    import botocore.waiter
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_specifications
from ansible_collections.amazon.aws.plugins.module_utils.transformation import boto3_resource_to_ansible_dict

STACK_TAG = "Stack"
ROLE_TAG = "Role"
ROLES = ("bastion", "frontend", "backend")

# A stack name becomes part of resource names, tags and (in the lab) interface names.
STACK_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")

# Which AMIs a family means: the publisher's account (so a look-alike image from another
# account is never picked), the name pattern ({arch} is the publisher's spelling of the
# architecture), and the user the image lets in over SSH.
AMI_FAMILIES = {
    "debian12": {"owner": "136693071363", "name": "debian-12-{arch}-*", "login_user": "admin"},
    "ubuntu2404": {
        "owner": "099720109477",
        "name": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch}-server-*",
        "login_user": "ubuntu",
    },
}
AMI_ARCHITECTURES = {"x86_64": "amd64", "arm64": "arm64"}

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


CONNECTION_RETRIES = 4


def retry_connection_errors(call):
    """``call``, tried again (up to CONNECTION_RETRIES times, from a quarter second up, with
    jitter) when the connection fails or times out, as botocore would have: the collection's
    clients have botocore's own retries off (``client``), so every way they call AWS (the
    client's calls, paginators, waiters) goes through this."""
    @functools.wraps(call)
    def retried(*args, **kwargs):
        for attempt in range(CONNECTION_RETRIES):
            try:
                return call(*args, **kwargs)
            except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError):
                time.sleep(random.uniform(0, 0.25 * 2 ** attempt))
        return call(*args, **kwargs)
    return retried


@retry_connection_errors
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


def find_image(ec2, family, architecture="x86_64"):
    """The newest available AMI of ``family`` published by its owner, or None.

    Newest by name: publishers put the build date in the name, and creation dates are
    not reliable everywhere (moto stamps every image with its own start time).
    """
    spec = AMI_FAMILIES[family]
    pattern = spec["name"].format(arch=AMI_ARCHITECTURES.get(architecture, architecture))
    images = ec2.describe_images(
        Owners=[spec["owner"]],
        Filters=[
            {"Name": "name", "Values": [pattern]},
            {"Name": "architecture", "Values": [architecture]},
            {"Name": "state", "Values": ["available"]},
        ],
        aws_retry=True,
    )["Images"]
    # describe_images honours Owners, but the owner check is the point: make it explicit
    images = [image for image in images if image.get("OwnerId") == spec["owner"]]
    if not images:
        return None
    return max(images, key=lambda image: image["Name"])


def image_search_description(family, architecture="x86_64"):
    spec = AMI_FAMILIES[family]
    pattern = spec["name"].format(arch=AMI_ARCHITECTURES.get(architecture, architecture))
    return f"{family} AMI named {pattern!r} for {architecture} owned by {spec['owner']}"


# AWS is eventually consistent: for a while after a create call returns, other calls may
# not know the new ID yet (EC2 documents it). Every call and waiter retries these, as it
# retries throttling.
EVENTUALLY_CONSISTENT = [
    "InvalidVpcID.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidInternetGatewayID.NotFound",
    "InvalidRouteTableID.NotFound",
    "InvalidAssociationID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidAllocationID.NotFound",
    "InvalidInstanceID.NotFound",
    "InvalidNetworkInterfaceID.NotFound",
    "InvalidKeyPair.NotFound",
    "NoSuchHostedZone",
]
THROTTLED = ["RequestLimitExceeded", "Throttling", "ThrottlingException", "PriorRequestNotComplete"]


def waiter(client, waiter_name, delay, max_attempts):
    """botocore's own waiter ``waiter_name`` for the client's service, which also waits
    through a new ID not known yet and through throttling, instead of failing at once
    (``vpc_available`` fails on the InvalidVpcID.NotFound a new VPC may give)."""
    service = client.meta.service_model
    loader = botocore.loaders.create_loader()
    config = loader.load_service_model(service.service_name, "waiters-2", service.api_version)
    camel = "".join(word.capitalize() for word in waiter_name.split("_"))
    spec = dict(config["waiters"][camel], delay=delay, maxAttempts=max_attempts)
    known = {(a.get("matcher"), a.get("expected")) for a in spec["acceptors"]}
    spec["acceptors"] = spec["acceptors"] + [
        {"matcher": "error", "expected": code, "state": "retry"}
        for code in EVENTUALLY_CONSISTENT + THROTTLED if ("error", code) not in known
    ]
    model = botocore.waiter.WaiterModel({"version": 2, "waiters": {camel: spec}})
    return botocore.waiter.create_waiter_with_client(camel, model, client)


def wait_for(client, waiter_name, delay=5, max_attempts=120, **params):
    """Wait with botocore's waiter (see ``waiter``), checking at once, then after 0.25 s and
    twice as long each time up to ``delay``: a resource that is there at once costs one call,
    one there after a moment (a new ID known a second after its create call) a moment, and
    one that takes minutes is asked every ``delay`` seconds, for delay × max_attempts at most."""
    check = waiter(client, waiter_name, 1, 1)  # one check per call: the pauses are ours
    deadline = time.monotonic() + delay * max_attempts
    pause = 0.25
    while True:
        try:
            retry_connection_errors(check.wait)(**params)
            return
        except botocore.exceptions.WaiterError as e:
            # a failure state ends the wait at once; "not yet" waits on, until the deadline
            if "Max attempts exceeded" not in str(e) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, delay)


NO_REGION = "no region: set region (livestream_region), AWS_REGION, AWS_DEFAULT_REGION or the profile's region"


def client(module, service, **retry):
    """A client for ``service`` whose calls made with ``aws_retry=True`` back off and retry
    on throttling and on an ID that is not known yet (``retry`` goes to
    AWSRetry.jittered_backoff, e.g. catch_extra_error_codes)."""
    if not module.region:
        module.fail_json(msg=NO_REGION)
    codes = EVENTUALLY_CONSISTENT + THROTTLED + list(retry.pop("catch_extra_error_codes", []))
    # From a quarter second up: a new ID is usually known within a second or two. botocore's
    # own retries (legacy mode: up to 4, from a random second up) would come first and
    # double every throttled call's wait: they are off, and a connection error is retried
    # here instead. Waiters wait through throttling themselves (``waiter``). A user's
    # aws_config still overrides this.
    throttled_or_unknown = AWSRetry.jittered_backoff(
        retries=12, delay=0.25, max_delay=15, catch_extra_error_codes=codes, **retry)
    return module.client(
        service,
        retry_decorator=lambda call: retry_connection_errors(throttled_or_unknown(call)),
        config=botocore.config.Config(retries={"total_max_attempts": 1}),
    )


class Changes:
    """What a module did (or, in check mode, would do), in words a user can read."""

    def __init__(self, module):
        self.module = module
        self.actions = []
        self.before = {}
        self.after = {}
        # a failure half-way says what this run made before it (fail_json_aws ends here too)
        fail = module.fail_json

        def fail_json(**result):
            if self.actions and not module.check_mode:
                result["msg"] = (
                    f"{result.get('msg', '')}. Before it stopped this run began: {'; '.join(self.actions)} "
                    "(the last may not have happened); what it made is still there. Fix the cause and run "
                    "it again (it carries on from what exists), or run teardown to remove the stack."
                )
                result.setdefault("actions", self.actions)
            fail(**result)

        module.fail_json = fail_json

    def record(self, action, what=None, before=None, after=None):
        """Note one change; ``what`` with ``before``/``after`` feeds the diff (--diff)."""
        self.actions.append(action)
        what = what or action
        self.before.setdefault(what, before)
        self.after[what] = after if after is not None else action

    def diff(self):
        return {"before": self.before, "after": self.after}

    def exit_json(self, **result):
        """End the module with what changed, its diff, and the module's own results."""
        self.module.exit_json(changed=self.changed, actions=self.actions, diff=self.diff(), **result)

    @property
    def check_mode(self):
        return self.module.check_mode

    @property
    def changed(self):
        return bool(self.actions)
