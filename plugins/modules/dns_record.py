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
  - When O(address) is an Elastic IP of the account, it gets the tags C(DnsRecord) and C(DnsZone),
    naming the record and its zone, so that M(livestream.aws.stack_teardown) finds the record from
    the stack alone and never releases an address a record still points at.
  - The domain is checked against the zone before any API call.
options:
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
  - livestream.aws.stack.name
  - livestream.aws.stack.dns
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
name_servers:
  description:
    - When this run made the hosted zone (O(create_hosted_zone)), its name servers, which its parent
      zone (the domain's registrar) must delegate to before the name resolves; otherwise an empty list.
  returned: success
  type: list
  elements: str
  sample: ["ns-1234.awsdns-26.org", "ns-567.awsdns-06.net"]
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

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.livestream.aws.plugins.module_utils import options
from ansible_collections.livestream.aws.plugins.module_utils.aws import client
from ansible_collections.livestream.aws.plugins.module_utils.changes import Changes
from ansible_collections.livestream.aws.plugins.module_utils.publishing import ensure_dns_record
from ansible_collections.livestream.aws.plugins.module_utils.publishing import ensure_record_tags
from ansible_collections.livestream.aws.plugins.module_utils.validation import check_mode_only_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import domain_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import fail_on_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import normalize_dns_name
from ansible_collections.livestream.aws.plugins.module_utils.validation import parse_cidr
from ansible_collections.livestream.aws.plugins.module_utils.validation import stack_errors


def main():
    module = AnsibleAWSModule(
        argument_spec=options.argument_spec(
            options.NAME,
            options.DNS,
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
    errors += check_mode_only_errors(module, "address")
    fail_on_errors(module, errors)
    domain = normalize_dns_name(params["domain"])

    changes = Changes(module)
    zone_name = normalize_dns_name(params["hosted_zone"])
    route53 = client(module, "route53")
    zone_id, servers = ensure_dns_record(
        route53, changes, name, domain=domain, zone_name=zone_name, address=address,
        create_hosted_zone=params["create_hosted_zone"], ttl=params["ttl"], wait=params["wait"],
    )
    ensure_record_tags(client(module, "ec2"), changes, name, public_ip=address, domain=domain, zone_name=zone_name)
    changes.exit_json(fqdn=domain, hosted_zone_id=zone_id, address=address, name_servers=servers)


if __name__ == "__main__":
    main()
