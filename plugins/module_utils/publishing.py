# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What makes a stack reachable by name: the frontend's Elastic IP and its Route 53 record.
Used by livestream.aws.frontend_address, livestream.aws.dns_record, livestream.aws.stack_provision
and livestream.aws.stack_teardown."""

from __future__ import annotations

import uuid

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.livestream.aws.plugins.module_utils.aws import only_one
from ansible_collections.livestream.aws.plugins.module_utils.aws import wait_for
from ansible_collections.livestream.aws.plugins.module_utils.naming import named_filters
from ansible_collections.livestream.aws.plugins.module_utils.naming import resource_name
from ansible_collections.livestream.aws.plugins.module_utils.naming import STACK_TAG
from ansible_collections.livestream.aws.plugins.module_utils.naming import stack_tags
from ansible_collections.livestream.aws.plugins.module_utils.naming import tag_specifications
from ansible_collections.livestream.aws.plugins.module_utils.naming import tags_of


def frontend_address(ec2, changes, name):
    """The stack's Elastic IP, found or allocated (PublicIp, AllocationId, ...; the IDs null in
    check mode for a new one). Allocated before the frontend runs, it is known to EC2 by the
    time it is associated."""
    eip_name = resource_name(name, "frontend-eip")
    try:
        found = ec2.describe_addresses(Filters=named_filters(name, "frontend-eip"), aws_retry=True)["Addresses"]
        found = only_one(changes.module, found, "PublicIp", f"Elastic IPs named {eip_name!r} in stack {name!r}")
        if found is not None:
            return found
        changes.record(f"allocate Elastic IP {eip_name}", "Elastic IP", "absent", "present")
        if changes.check_mode:
            return {"PublicIp": None, "AllocationId": None}
        return ec2.allocate_address(
            Domain="vpc",
            TagSpecifications=tag_specifications("elastic-ip", stack_tags(name, resource_name=eip_name)),
            aws_retry=True,
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        changes.module.fail_json_aws(e, msg=f"Failed to allocate the Elastic IP {eip_name} of stack {name!r}")


def ensure_frontend_address(ec2, changes, name, *, instance_id, address=None):
    """The stack's Elastic IP (``address``, else found or allocated) associated with the
    frontend, as described (PublicIp, AllocationId, Tags; the IDs null in check mode for a new one)."""
    eip_name = resource_name(name, "frontend-eip")
    address = address or frontend_address(ec2, changes, name)
    try:
        if (address.get("InstanceId") or None) != instance_id or not instance_id:
            changes.record(
                f"associate {eip_name} with {instance_id or 'the frontend'}",
                f"{eip_name} instance",
                address.get("InstanceId") or None,
                instance_id,
            )
            if not changes.check_mode:
                ec2.associate_address(
                    AllocationId=address["AllocationId"], InstanceId=instance_id, AllowReassociation=True, aws_retry=True
                )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        changes.module.fail_json_aws(e, msg=f"Failed to give the frontend of stack {name!r} its Elastic IP {eip_name}")

    return address


# Tags on the Elastic IP that name the A record pointing at it: how teardown finds the
# record from the stack alone, and never releases an address a record still points at.
RECORD_TAG = "DnsRecord"
ZONE_TAG = "DnsZone"


def ensure_record_tags(ec2, changes, name, *, public_ip, domain, zone_name, address=None):
    """Tag the Elastic IP ``public_ip`` of the stack with the A record ``domain`` in the zone
    ``zone_name`` that points at it (``address``: the address as described already, if it was)."""
    wanted = {RECORD_TAG: domain, ZONE_TAG: zone_name}
    try:
        if address is not None:
            found = [address] if address.get("AllocationId") else []
        else:
            found = ec2.describe_addresses(PublicIps=[public_ip], aws_retry=True)["Addresses"] if public_ip else []
        current = {key: value for key, value in tags_of(found[0]).items() if key in wanted} if found else {}
        if current != wanted:
            changes.record(f"note on Elastic IP {public_ip or resource_name(name, 'frontend-eip')} that {domain} points at it",
                           "Elastic IP record tags", current, wanted)
            if not changes.check_mode and found:
                ec2.create_tags(Resources=[found[0]["AllocationId"]],
                                Tags=[{"Key": key, "Value": value} for key, value in wanted.items()], aws_retry=True)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        changes.module.fail_json_aws(e, msg=f"Failed to note the A record {domain} on the Elastic IP {public_ip} of stack {name!r}")


def find_hosted_zone(module, route53, zone_name):
    """The ID of the public hosted zone called ``zone_name``, or None; two of that name is an error."""
    zones = route53.list_hosted_zones_by_name(DNSName=zone_name, MaxItems="10", aws_retry=True)["HostedZones"]
    zones = [
        zone for zone in zones
        if zone["Name"].rstrip(".").lower() == zone_name and not zone.get("Config", {}).get("PrivateZone")
    ]
    zone = only_one(module, zones, "Id", f"public hosted zones named {zone_name!r}")
    return zone["Id"].split("/")[-1] if zone else None


def find_record(route53, zone_id, record_name, record_type="A"):
    """The record set ``record_name`` of ``record_type`` in the zone, or None."""
    wanted = record_name.rstrip(".").lower()
    records = route53.list_resource_record_sets(
        HostedZoneId=zone_id, StartRecordName=wanted, StartRecordType=record_type, MaxItems="1", aws_retry=True
    )["ResourceRecordSets"]
    for record in records:
        if record["Name"].rstrip(".").lower() == wanted and record["Type"] == record_type:
            return record
    return None


def change_records(route53, zone_id, name, changes, what, wait=True):
    """One batch of record changes (``changes``: Route 53's Changes list), applied together,
    then (``wait``) waited for until Route 53 has them everywhere."""
    change = route53.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Comment": f"livestream stack {name}: {what}", "Changes": changes},
        aws_retry=True,
    )["ChangeInfo"]
    if wait and change.get("Status") != "INSYNC":
        wait_for(route53, "resource_record_sets_changed", delay=10, Id=change["Id"])


def ensure_dns_record(route53, changes, name, *, domain, zone_name, address, create_hosted_zone=False, ttl=300, wait=True):
    """Point the A record ``domain`` at ``address`` (and make the zone, if asked); return the
    zone's ID and, when this run made the zone, its name servers (what the zone's parent, the
    domain's registrar, must delegate to before the domain resolves anywhere; empty otherwise).
    ``domain`` and ``zone_name`` are normalized (lower case, no trailing dot)."""
    module = changes.module
    servers = []
    step = f"the hosted zone {zone_name}"
    try:
        zone_id = find_hosted_zone(module, route53, zone_name)
        if zone_id is None:
            if not create_hosted_zone:
                module.fail_json(
                    msg=f"hosted zone {zone_name!r} for {domain!r} (stack {name!r}) not found: create it, "
                    "or let the stack create it (create_hosted_zone / livestream_create_hosted_zone)"
                )
            changes.record(f"create hosted zone {zone_name}", "hosted zone", "absent", zone_name)
            if not changes.check_mode:
                made = route53.create_hosted_zone(
                    Name=zone_name,
                    CallerReference=f"livestream-{name}-{uuid.uuid4()}",
                    HostedZoneConfig={"Comment": f"livestream stack {name}", "PrivateZone": False},
                    aws_retry=True,
                )
                zone_id = made["HostedZone"]["Id"].split("/")[-1]
                servers = sorted(made.get("DelegationSet", {}).get("NameServers", []))
                # the tag is how teardown knows the zone is the stack's to delete
                route53.change_tags_for_resource(
                    ResourceType="hostedzone",
                    ResourceId=zone_id,
                    AddTags=[{"Key": STACK_TAG, "Value": name}, {"Key": "Name", "Value": resource_name(name, "zone")}],
                    aws_retry=True,
                )
        step = f"the A record {domain}"
        record = find_record(route53, zone_id, domain) if zone_id else None
        current = sorted(r["Value"] for r in (record or {}).get("ResourceRecords", []))
        if current != [address] or (record or {}).get("TTL") != ttl:
            changes.record(f"point {domain} at {address or 'the frontend address'}", f"{domain} A", current, [address])
            if not changes.check_mode:
                change_records(route53, zone_id, name, [{
                    "Action": "UPSERT",
                    "ResourceRecordSet": {"Name": domain, "Type": "A", "TTL": ttl, "ResourceRecords": [{"Value": address}]},
                }], "the frontend", wait=wait)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, botocore.exceptions.WaiterError) as e:
        module.fail_json_aws(e, msg=f"Failed to publish {domain} of stack {name!r}: {step}")

    return zone_id, servers


def remove_a_record(route53, changes, name, *, zone_id, domain, address):
    """Delete the A record ``domain`` if it points at ``address`` alone (the stack's), else leave it."""
    record = find_record(route53, zone_id, domain) if zone_id and address else None
    if not record or [value["Value"] for value in record.get("ResourceRecords", [])] != [address]:
        return
    changes.record(f"delete A record {domain} (it pointed at {address})", f"{domain} A", [address], "absent")
    if changes.check_mode:
        return
    try:
        change_records(route53, zone_id, name, [{"Action": "DELETE", "ResourceRecordSet": record}], "a name no longer used")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, botocore.exceptions.WaiterError) as e:
        changes.module.fail_json_aws(e, msg=f"Failed to delete the A record {domain} of stack {name!r}")
