#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: dns_record
version_added: 0.1.0
short_description: The DNS name of a livestream stack's frontend, in Route 53
description:
  - Makes sure the A record O(domain) in the public hosted zone O(hosted_zone) points at
    O(address) (the frontend's Elastic IP) and nothing else, and waits until Route 53 has
    applied a change.
  - The hosted zone must exist, unless O(create_hosted_zone=true); a zone created here is
    tagged C(Stack=<name>), and M(livestream.aws.stack_teardown) deletes it once it holds
    no other records.
  - Other records of the zone are left alone.
  - The domain is checked against the zone before any API call.
options:
  name:
    description:
      - The stack name, as in the C(Stack) tag of its resources.
    required: true
    type: str
    aliases: [stack_name]
  domain:
    description:
      - The name to publish, inside O(hosted_zone) (the zone's apex is allowed).
    required: true
    type: str
  hosted_zone:
    description:
      - The public hosted zone's name.
    required: true
    type: str
  create_hosted_zone:
    description:
      - Create the hosted zone when there is none of that name.
      - The zone's name servers must then be delegated to by its parent before the name resolves
        on the internet.
    type: bool
    default: false
  address:
    description:
      - The IPv4 address the name points at.
      - May be null in check mode only, when the address is not allocated yet.
    type: str
  ttl:
    description:
      - The record's time to live, in seconds.
    type: int
    default: 300
  wait:
    description:
      - Wait until Route 53 reports the change as applied.
    type: bool
    default: true
author:
  - livestream.aws maintainers (@livestream-aws)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: live.example.com points at the frontend
  livestream.aws.dns_record:
    name: live
    domain: live.example.com
    hosted_zone: example.com
    address: "{{ live_address.public_ip }}"

- name: A stack with a zone of its own
  livestream.aws.dns_record:
    name: demo
    domain: demo.example.net
    hosted_zone: demo.example.net
    create_hosted_zone: true
    address: "{{ demo_address.public_ip }}"
"""

RETURN = r"""
fqdn:
  description: The published name, without the trailing dot.
  returned: success
  type: str
  sample: live.example.com
hosted_zone_id:
  description: The hosted zone's ID (null in check mode when it would be created).
  returned: success
  type: str
  sample: Z0123456789ABCDEFGHIJ
address:
  description: The address the name points at.
  returned: success
  type: str
  sample: 198.51.100.7
actions:
  description: What was changed (in check mode, what would be), one line each.
  returned: always
  type: list
  elements: str
  sample: ["point live.example.com at 198.51.100.7"]
"""

import uuid

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.livestream.aws.plugins.module_utils.stack import Changes
from ansible_collections.livestream.aws.plugins.module_utils.stack import find_hosted_zone
from ansible_collections.livestream.aws.plugins.module_utils.stack import find_a_record
from ansible_collections.livestream.aws.plugins.module_utils.stack import resource_name
from ansible_collections.livestream.aws.plugins.module_utils.stack import wait_for
from ansible_collections.livestream.aws.plugins.module_utils.validation import domain_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import fail_on_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import normalize_dns_name
from ansible_collections.livestream.aws.plugins.module_utils.validation import parse_cidr
from ansible_collections.livestream.aws.plugins.module_utils.validation import stack_errors


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["stack_name"]),
            domain=dict(type="str", required=True),
            hosted_zone=dict(type="str", required=True),
            create_hosted_zone=dict(type="bool", default=False),
            address=dict(type="str"),
            ttl=dict(type="int", default=300),
            wait=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    name, address = params["name"], params["address"]
    errors = stack_errors(name) + domain_errors(params["domain"], params["hosted_zone"])
    if address:
        parse_cidr("address", f"{address}/32", errors)
    elif not module.check_mode:
        errors.append("address is required (it may only be left out in check mode)")
    fail_on_errors(module, errors)
    domain, zone_name = normalize_dns_name(params["domain"]), normalize_dns_name(params["hosted_zone"])

    route53 = module.client("route53", retry_decorator=AWSRetry.jittered_backoff())
    changes = Changes(module)
    step = f"the hosted zone {zone_name}"
    try:
        zone_id = find_hosted_zone(module, route53, zone_name)
        if zone_id is None:
            if not params["create_hosted_zone"]:
                module.fail_json(
                    msg=f"hosted zone {zone_name!r} for {domain!r} (stack {name!r}) not found: create it, "
                    "or let the stack create it (create_hosted_zone / livestream_create_hosted_zone)"
                )
            changes.record(f"create hosted zone {zone_name}", "hosted zone", "absent", zone_name)
            if not module.check_mode:
                zone_id = route53.create_hosted_zone(
                    Name=zone_name,
                    CallerReference=f"livestream-{name}-{uuid.uuid4()}",
                    HostedZoneConfig={"Comment": f"livestream stack {name}", "PrivateZone": False},
                    aws_retry=True,
                )["HostedZone"]["Id"].split("/")[-1]
                # the tag is how teardown knows the zone is the stack's to delete
                route53.change_tags_for_resource(
                    ResourceType="hostedzone",
                    ResourceId=zone_id,
                    AddTags=[{"Key": "Stack", "Value": name}, {"Key": "Name", "Value": resource_name(name, "zone")}],
                    aws_retry=True,
                )
        step = f"the A record {domain}"
        record = find_a_record(route53, zone_id, domain) if zone_id else None
        current = sorted(r["Value"] for r in (record or {}).get("ResourceRecords", []))
        if current != [address] or (record or {}).get("TTL") != params["ttl"]:
            changes.record(f"point {domain} at {address or 'the frontend address'}", f"{domain} A", current, [address])
            if not module.check_mode:
                change = route53.change_resource_record_sets(
                    HostedZoneId=zone_id,
                    ChangeBatch={
                        "Comment": f"livestream stack {name}: the frontend",
                        "Changes": [{
                            "Action": "UPSERT",
                            "ResourceRecordSet": {
                                "Name": domain,
                                "Type": "A",
                                "TTL": params["ttl"],
                                "ResourceRecords": [{"Value": address}],
                            },
                        }],
                    },
                    aws_retry=True,
                )["ChangeInfo"]
                if params["wait"] and change.get("Status") != "INSYNC":
                    wait_for(route53, "resource_record_sets_changed", delay=10, Id=change["Id"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, botocore.exceptions.WaiterError) as e:
        module.fail_json_aws(e, msg=f"Failed to publish {domain} of stack {name!r}: {step}")

    module.exit_json(
        changed=changes.changed, actions=changes.actions, diff=changes.diff(), fqdn=domain, hosted_zone_id=zone_id, address=address
    )


if __name__ == "__main__":
    main()
