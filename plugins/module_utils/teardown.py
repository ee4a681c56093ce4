# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Removing a stack: everything tagged with its name, in the order AWS requires, and the DNS
records and hosted zone that point at it, never what is someone else's. Used by
livestream.aws.stack_teardown."""

from __future__ import annotations

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.livestream.aws.plugins.module_utils.aws import wait_for
from ansible_collections.livestream.aws.plugins.module_utils.naming import describe_stack
from ansible_collections.livestream.aws.plugins.module_utils.naming import STACK_TAG
from ansible_collections.livestream.aws.plugins.module_utils.naming import tags_of
from ansible_collections.livestream.aws.plugins.module_utils.publishing import find_hosted_zone
from ansible_collections.livestream.aws.plugins.module_utils.publishing import find_record
from ansible_collections.livestream.aws.plugins.module_utils.publishing import RECORD_TAG
from ansible_collections.livestream.aws.plugins.module_utils.publishing import ZONE_TAG
from ansible_collections.livestream.aws.plugins.module_utils.security_groups import group_references
from ansible_collections.livestream.aws.plugins.module_utils.validation import normalize_dns_name

# Just after instances terminate, AWS may still hold their interfaces for a while and refuse
# to delete the groups and subnets they were in: the EC2 client retries those, with backoff.
STILL_IN_USE = ["DependencyViolation", "InvalidGroup.InUse", "ResourceInUse"]

# what a teardown that fails half-way leaves (Changes)
TEARDOWN_LEFT = "what it had not removed yet is still there. Fix the cause and run it again to remove the rest."

# each removal as its action says it ({id}, then {named}: " (<Name tag>)" or nothing)
ACTIONS = {
    "dns_record": "delete A record {id}{named}",
    "hosted_zone": "delete hosted zone {id}{named}",
    "elastic_ip": "release Elastic IP {id}{named}",
    "instance": "terminate instance {id}{named}",
    "route_table": "delete route table {id}{named}",
    "security_group_rules": "revoke the rules of security group {id}{named} that name groups",
    "security_group": "delete security group {id}{named}",
    "internet_gateway": "delete internet gateway {id}{named}",
    "subnet": "delete subnet {id}{named}",
    "vpc": "delete VPC {id}{named}",
    "key_pair": "delete key pair {id}{named}",
}


def name_of(resource):
    return tags_of(resource).get("Name")


def records_of(stack, domain=None, zone_name=None):
    """(domain, zone name) of each A record that may point at the stack: the one given (if
    any), and those provisioning noted on the stack's Elastic IPs; normalized, each once."""
    found = []
    if domain:
        found.append((normalize_dns_name(domain), normalize_dns_name(zone_name)))
    for address in stack["addresses"]:
        tags = tags_of(address)
        if tags.get(RECORD_TAG) and tags.get(ZONE_TAG):
            found.append((normalize_dns_name(tags[RECORD_TAG]), normalize_dns_name(tags[ZONE_TAG])))
    return list(dict.fromkeys(found))


def stack_addresses(stack):
    """Every public address of the stack: its Elastic IPs and its instances' public IPs."""
    addresses = {address["PublicIp"] for address in stack["addresses"]}
    return addresses | {instance["PublicIpAddress"] for instance in stack["instances"] if instance.get("PublicIpAddress")}


class Teardown:
    """Each removal recorded in ``changes`` (before its calls) and, once made, in ``removed``
    (kind, id, name); what is found but left in place, with why, in ``kept``."""

    def __init__(self, ec2, route53, changes, name):
        self.module = changes.module
        self.ec2 = ec2
        self.route53 = route53
        self.changes = changes
        self.name = name
        self.removed = []
        self.kept = []

    def record(self, kind, resource_id, name):
        named = f" ({name})" if name else ""
        self.changes.record(ACTIONS[kind].format(id=resource_id, named=named), f"{kind} {resource_id}", name or "present", "absent")

    def remove(self, kind, resource_id, name, *calls):
        """Make the calls that remove one resource (unless in check mode), reporting it."""
        self.record(kind, resource_id, name)
        if not self.changes.check_mode:
            for call, params in calls:
                call(aws_retry=True, **params)
        self.removed.append({"kind": kind, "id": resource_id, "name": name})

    def dns(self, domain, zone_name, addresses):
        """Delete the A record ``domain`` if it points at the stack's ``addresses`` only, then
        the zone if the stack made it and it holds nothing else. Return the addresses a record
        still points at."""
        route53 = self.route53
        zone_id = find_hosted_zone(self.module, route53, zone_name)
        if zone_id is None:
            return set()
        record = find_record(route53, zone_id, domain)
        removed_records = 0
        values = sorted(r["Value"] for r in (record or {}).get("ResourceRecords", []))
        if record is not None:
            if values and set(values) <= addresses:
                removed_records = 1
                self.remove("dns_record", domain, None, (route53.change_resource_record_sets, dict(
                    HostedZoneId=zone_id,
                    ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]},
                )))
            else:
                self.kept.append(f"A record {domain}: it points at {', '.join(values)}, not at the stack only")
        tags = tags_of(route53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id, aws_retry=True)["ResourceTagSet"])
        still_pointed_at = set() if removed_records else set(values) & addresses
        if tags.get(STACK_TAG) != self.name:
            return still_pointed_at
        zone = route53.get_hosted_zone(Id=zone_id, aws_retry=True)["HostedZone"]
        # a new zone holds its SOA and NS records; anything more belongs to someone (the count
        # is read after the record went, except in check mode, where it did not go)
        others = zone.get("ResourceRecordSetCount", 0) - 2 - (removed_records if self.changes.check_mode else 0)
        if others > 0:
            self.kept.append(f"hosted zone {zone_name}: it holds {others} other record(s)")
            return still_pointed_at
        self.remove("hosted_zone", zone_id, zone_name, (route53.delete_hosted_zone, dict(Id=zone_id)))
        return still_pointed_at

    def addresses(self, addresses, pointed_at):
        ec2 = self.ec2
        for address in addresses:
            if address["PublicIp"] in pointed_at:
                # released, it could go to anyone, and the record would serve them the domain
                self.kept.append(f"Elastic IP {address['PublicIp']}: a DNS record still points at it")
                continue
            calls = [(ec2.release_address, dict(AllocationId=address["AllocationId"]))]
            if address.get("AssociationId"):
                calls.insert(0, (ec2.disassociate_address, dict(AssociationId=address["AssociationId"])))
            self.remove("elastic_ip", address["AllocationId"], name_of(address), *calls)

    def instances(self, instances, wait_timeout):
        """Terminate them all at once, and wait until they are gone."""
        for instance in instances:
            self.record("instance", instance["InstanceId"], name_of(instance))
        instance_ids = [instance["InstanceId"] for instance in instances]
        if instance_ids and not self.changes.check_mode:
            self.ec2.terminate_instances(InstanceIds=instance_ids, aws_retry=True)
            wait_for(self.ec2, "instance_terminated", max_attempts=max(1, wait_timeout // 5), InstanceIds=instance_ids)
        self.removed.extend({"kind": "instance", "id": instance["InstanceId"], "name": name_of(instance)} for instance in instances)

    def route_tables(self, tables):
        for table in tables:
            calls = [
                (self.ec2.disassociate_route_table, dict(AssociationId=association["RouteTableAssociationId"]))
                for association in table.get("Associations", []) if not association.get("Main")
            ]
            calls.append((self.ec2.delete_route_table, dict(RouteTableId=table["RouteTableId"])))
            self.remove("route_table", table["RouteTableId"], name_of(table), *calls)

    def security_groups(self, groups):
        """The rules by which the groups name each other first: AWS refuses to delete a group
        that another group's rule names."""
        for group in groups:
            references = group_references(group)
            if references:
                self.remove("security_group_rules", group["GroupId"], name_of(group), (
                    self.ec2.revoke_security_group_ingress, dict(GroupId=group["GroupId"], IpPermissions=references)
                ))
        for group in groups:
            self.remove("security_group", group["GroupId"], name_of(group),
                        (self.ec2.delete_security_group, dict(GroupId=group["GroupId"])))

    def internet_gateways(self, gateways):
        for igw in gateways:
            igw_id = igw["InternetGatewayId"]
            calls = [(self.ec2.detach_internet_gateway, dict(InternetGatewayId=igw_id, VpcId=attachment["VpcId"]))
                     for attachment in igw.get("Attachments", [])]
            calls.append((self.ec2.delete_internet_gateway, dict(InternetGatewayId=igw_id)))
            self.remove("internet_gateway", igw_id, name_of(igw), *calls)


def ensure_stack_removed(ec2, route53, changes, name, *, domain=None, zone_name=None, wait_timeout=900):
    """Remove every resource of the stack, in the order AWS requires: the DNS records that
    point at it alone and the zone it made, Elastic IPs no record points at, instances, route
    tables, security groups, internet gateway, subnets, VPC, key pairs. ``ec2``: a client
    that retries STILL_IN_USE. Return what was removed and what was kept (see Teardown)."""
    teardown = Teardown(ec2, route53, changes, name)
    step = f"find the resources of stack {name!r}"
    try:
        stack = describe_stack(ec2, name)
        addresses = stack_addresses(stack)
        pointed_at = set()
        for record_domain, record_zone in records_of(stack, domain, zone_name):
            step = f"remove the DNS record {record_domain} of stack {name!r}"
            pointed_at |= teardown.dns(record_domain, record_zone, addresses)
        step = f"release the Elastic IPs of stack {name!r}"
        teardown.addresses(stack["addresses"], pointed_at)
        step = f"terminate the instances of stack {name!r}"
        teardown.instances(stack["instances"], wait_timeout)
        step = f"delete the route tables of stack {name!r}"
        teardown.route_tables(stack["route_tables"])
        step = f"delete the security groups of stack {name!r}"
        teardown.security_groups(stack["security_groups"])
        step = f"delete the internet gateway of stack {name!r}"
        teardown.internet_gateways(stack["internet_gateways"])
        step = f"delete the subnets and the VPC of stack {name!r}"
        for subnet in stack["subnets"]:
            teardown.remove("subnet", subnet["SubnetId"], name_of(subnet), (ec2.delete_subnet, dict(SubnetId=subnet["SubnetId"])))
        for vpc in stack["vpcs"]:
            teardown.remove("vpc", vpc["VpcId"], name_of(vpc), (ec2.delete_vpc, dict(VpcId=vpc["VpcId"])))
        step = f"delete the key pairs of stack {name!r}"
        for key in stack["key_pairs"]:
            teardown.remove("key_pair", key["KeyName"], name_of(key), (ec2.delete_key_pair, dict(KeyName=key["KeyName"])))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, botocore.exceptions.WaiterError) as e:
        changes.module.fail_json_aws(e, msg=f"Failed to {step}", removed=teardown.removed)
    return teardown.removed, teardown.kept
