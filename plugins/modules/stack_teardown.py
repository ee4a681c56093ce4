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
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict

from ansible_collections.livestream.aws.plugins.module_utils import options
from ansible_collections.livestream.aws.plugins.module_utils.stack import STACK_TAG
from ansible_collections.livestream.aws.plugins.module_utils.stack import client
from ansible_collections.livestream.aws.plugins.module_utils.stack import describe_stack
from ansible_collections.livestream.aws.plugins.module_utils.publishing import find_a_record
from ansible_collections.livestream.aws.plugins.module_utils.publishing import find_hosted_zone
from ansible_collections.livestream.aws.plugins.module_utils.publishing import RECORD_TAG
from ansible_collections.livestream.aws.plugins.module_utils.publishing import ZONE_TAG
from ansible_collections.livestream.aws.plugins.module_utils.stack import wait_for
from ansible_collections.livestream.aws.plugins.module_utils.validation import domain_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import fail_on_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import normalize_dns_name
from ansible_collections.livestream.aws.plugins.module_utils.validation import stack_errors

# Just after instances terminate, AWS may still hold their interfaces for a while and refuse
# to delete the groups and subnets they were in: retry those, with backoff.
STILL_IN_USE = ["DependencyViolation", "InvalidGroup.InUse", "ResourceInUse"]


class Teardown:
    def __init__(self, module, ec2):
        self.module = module
        self.ec2 = ec2
        self.removed = []
        self.kept = []

    def remove(self, kind, resource_id, name, *calls):
        """Make the calls that remove one resource (unless in check mode), then record it."""
        if not self.module.check_mode:
            for call, params in calls:
                call(aws_retry=True, **params)
        self.removed.append({"kind": kind, "id": resource_id, "name": name})


def name_of(resource):
    return resource.get("tags", {}).get("Name")


def to_boto3_permission(permission):
    """A snake_cased rule back as the API takes it, keeping only the group references.

    The description goes along: AWS ignores it when matching, moto does not."""
    pairs = []
    for pair in permission.get("user_id_group_pairs", []):
        pairs.append({"GroupId": pair["group_id"]})
        if pair.get("description"):
            pairs[-1]["Description"] = pair["description"]
    boto = {"IpProtocol": permission["ip_protocol"], "UserIdGroupPairs": pairs}
    if "from_port" in permission:
        boto.update(FromPort=permission["from_port"], ToPort=permission["to_port"])
    return boto


def records_of(module, stack):
    """(domain, zone name) of each A record that may point at the stack: the one given to
    the module, and those provisioning noted on the stack's Elastic IPs."""
    found = []
    if module.params["domain"]:
        found.append((normalize_dns_name(module.params["domain"]), normalize_dns_name(module.params["hosted_zone"])))
    for address in stack["addresses"]:
        tags = address.get("tags", {})
        if tags.get(RECORD_TAG) and tags.get(ZONE_TAG):
            found.append((normalize_dns_name(tags[RECORD_TAG]), normalize_dns_name(tags[ZONE_TAG])))
    return list(dict.fromkeys(found))


def remove_dns(module, teardown, route53, name, domain, zone_name, stack_addresses):
    """Delete the A record ``domain`` if it points at the stack only, then the zone if the
    stack made it and it holds nothing else. Return the addresses a record still points at."""
    zone_id = find_hosted_zone(module, route53, zone_name)
    if zone_id is None:
        return set()
    record = find_a_record(route53, zone_id, domain)
    removed_records = 0
    values = sorted(r["Value"] for r in (record or {}).get("ResourceRecords", []))
    if record is not None:
        if values and set(values) <= stack_addresses:
            removed_records = 1
            teardown.remove("dns_record", domain, None, (route53.change_resource_record_sets, dict(
                HostedZoneId=zone_id,
                ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]},
            )))
        else:
            teardown.kept.append(f"A record {domain}: it points at {', '.join(values)}, not at the stack only")
    tags = boto3_tag_list_to_ansible_dict(
        route53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id, aws_retry=True)["ResourceTagSet"].get("Tags", [])
    )
    still_pointed_at = set() if removed_records else set(values) & stack_addresses
    if tags.get(STACK_TAG) != name:
        return still_pointed_at
    zone = route53.get_hosted_zone(Id=zone_id, aws_retry=True)["HostedZone"]
    # a new zone holds its SOA and NS records; anything more belongs to someone (the count
    # is read after the record went, except in check mode, where it did not go)
    others = zone.get("ResourceRecordSetCount", 0) - 2 - (removed_records if module.check_mode else 0)
    if others > 0:
        teardown.kept.append(f"hosted zone {zone_name}: it holds {others} other record(s)")
        return still_pointed_at
    teardown.remove("hosted_zone", zone_id, zone_name, (route53.delete_hosted_zone, dict(Id=zone_id)))
    return still_pointed_at


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

    ec2 = client(module, "ec2", catch_extra_error_codes=STILL_IN_USE)
    teardown = Teardown(module, ec2)
    step = f"find the resources of stack {name!r}"
    try:
        stack = describe_stack(ec2, name)
        addresses = {a["public_ip"] for a in stack["addresses"]}
        addresses |= {i["public_ip_address"] for i in stack["instances"] if i.get("public_ip_address")}
        pointed_at = set()
        route53 = client(module, "route53")
        for domain, zone_name in records_of(module, stack):
            step = f"remove the DNS record {domain} of stack {name!r}"
            pointed_at |= remove_dns(module, teardown, route53, name, domain, zone_name, addresses)

        step = f"release the Elastic IPs of stack {name!r}"
        for address in stack["addresses"]:
            if address["public_ip"] in pointed_at:
                # released, it could go to anyone, and the record would serve them the domain
                teardown.kept.append(f"Elastic IP {address['public_ip']}: a DNS record still points at it")
                continue
            calls = [(ec2.release_address, dict(AllocationId=address["allocation_id"]))]
            if address.get("association_id"):
                calls.insert(0, (ec2.disassociate_address, dict(AssociationId=address["association_id"])))
            teardown.remove("elastic_ip", address["allocation_id"], name_of(address), *calls)

        step = f"terminate the instances of stack {name!r}"
        instance_ids = [i["instance_id"] for i in stack["instances"]]
        if instance_ids and not module.check_mode:
            ec2.terminate_instances(InstanceIds=instance_ids, aws_retry=True)
            wait_for(ec2, "instance_terminated", max_attempts=max(1, params["wait_timeout"] // 5), InstanceIds=instance_ids)
        for instance in stack["instances"]:
            teardown.remove("instance", instance["instance_id"], name_of(instance))

        step = f"delete the route tables of stack {name!r}"
        for table in stack["route_tables"]:
            calls = [
                (ec2.disassociate_route_table, dict(AssociationId=a["route_table_association_id"]))
                for a in table.get("associations", []) if not a.get("main")
            ]
            calls.append((ec2.delete_route_table, dict(RouteTableId=table["route_table_id"])))
            teardown.remove("route_table", table["route_table_id"], name_of(table), *calls)

        step = f"delete the security groups of stack {name!r}"
        for group in stack["security_groups"]:
            references = [to_boto3_permission(p) for p in group.get("ip_permissions", []) if p.get("user_id_group_pairs")]
            if references:
                teardown.remove("security_group_rules", group["group_id"], name_of(group), (
                    ec2.revoke_security_group_ingress, dict(GroupId=group["group_id"], IpPermissions=references)
                ))
        for group in stack["security_groups"]:
            teardown.remove("security_group", group["group_id"], name_of(group),
                            (ec2.delete_security_group, dict(GroupId=group["group_id"])))

        step = f"delete the internet gateway of stack {name!r}"
        for igw in stack["internet_gateways"]:
            calls = [
                (ec2.detach_internet_gateway, dict(InternetGatewayId=igw["internet_gateway_id"], VpcId=a["vpc_id"]))
                for a in igw.get("attachments", [])
            ]
            calls.append((ec2.delete_internet_gateway, dict(InternetGatewayId=igw["internet_gateway_id"])))
            teardown.remove("internet_gateway", igw["internet_gateway_id"], name_of(igw), *calls)

        step = f"delete the subnets and the VPC of stack {name!r}"
        for subnet in stack["subnets"]:
            teardown.remove("subnet", subnet["subnet_id"], name_of(subnet), (ec2.delete_subnet, dict(SubnetId=subnet["subnet_id"])))
        for vpc in stack["vpcs"]:
            teardown.remove("vpc", vpc["vpc_id"], name_of(vpc), (ec2.delete_vpc, dict(VpcId=vpc["vpc_id"])))

        step = f"delete the key pairs of stack {name!r}"
        for key in stack["key_pairs"]:
            teardown.remove("key_pair", key["key_name"], name_of(key), (ec2.delete_key_pair, dict(KeyName=key["key_name"])))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, botocore.exceptions.WaiterError) as e:
        module.fail_json_aws(e, msg=f"Failed to {step}", removed=teardown.removed)

    module.exit_json(
        changed=bool(teardown.removed),
        removed=teardown.removed,
        kept=teardown.kept,
        diff={
            "before": {"resources": [f"{r['kind']} {r['id']}" for r in teardown.removed]},
            "after": {"resources": []},
        },
    )


if __name__ == "__main__":
    main()
