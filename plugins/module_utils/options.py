# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The argument spec of the options several modules share, one group per fragment of
plugins/doc_fragments/stack.py (livestream.aws.stack.<group>): change both together."""

from __future__ import annotations

import copy

from ansible_collections.livestream.aws.plugins.module_utils.images import AMI_FAMILIES, DEFAULT_AMI_FAMILY
from ansible_collections.livestream.aws.plugins.module_utils.instances import instance_type_options

NAME = dict(
    name=dict(type="str", required=True, aliases=["stack_name"]),
)

NETWORK = dict(
    vpc_cidr=dict(type="str", default="10.0.0.0/16"),
    public_subnet_cidr=dict(type="str", default="10.0.1.0/24"),
    private_subnet_cidr=dict(type="str", default="10.0.2.0/24"),
)

AVAILABILITY_ZONE = dict(
    availability_zone=dict(type="str"),
)

ACCESS = dict(
    admin_cidrs=dict(type="list", elements="str", required=True),
    allow_ssh_from_anywhere=dict(type="bool", default=False),
    ingest_cidrs=dict(type="list", elements="str"),
    ingest_port=dict(type="int", default=1936),
    cdn=dict(type="str", choices=["none", "cloudfront"], default="none"),
)

DNS = dict(
    domain=dict(type="str", required=True),
    hosted_zone=dict(type="str", required=True),
    create_hosted_zone=dict(type="bool", default=False),
)

AMI = dict(
    ami_family=dict(type="str", choices=list(AMI_FAMILIES), default=DEFAULT_AMI_FAMILY),
    architecture=dict(type="str", choices=["x86_64", "arm64"], default="x86_64"),
)

SSH_KEY = dict(
    ssh_public_key=dict(type="str", required=True, no_log=False),
)

INSTANCES = dict(
    instance_types=dict(type="dict", default={}, options=instance_type_options()),
    root_volume_size=dict(type="int", default=10),
    cpu_credits=dict(type="str", choices=["standard", "unlimited"], default="unlimited"),
    wait_timeout=dict(type="int", default=600),
)


def argument_spec(*groups, **options):
    """One argument spec from shared groups plus a module's own options (copies, so that no
    module can change what another one gets)."""
    spec = {}
    for group in groups:
        spec.update(copy.deepcopy(group))
    spec.update(options)
    return spec
