# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Everything checked before a stack gets its first resource: every input (with the rules of
validation.py), the region, the credentials, the AMI, the availability zone and the
instance types it offers, and the hosted zone. Used by livestream.aws.stack_validate and
livestream.aws.stack_provision."""

from __future__ import annotations

try:
    import botocore
    import botocore.session
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.livestream.aws.plugins.module_utils import options
from ansible_collections.livestream.aws.plugins.module_utils.images import AMI_FAMILIES
from ansible_collections.livestream.aws.plugins.module_utils.images import find_image
from ansible_collections.livestream.aws.plugins.module_utils.images import image_search_description
from ansible_collections.livestream.aws.plugins.module_utils.publishing import find_hosted_zone
from ansible_collections.livestream.aws.plugins.module_utils.validation import access_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import domain_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import fail_on_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import network_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import normalize_dns_name
from ansible_collections.livestream.aws.plugins.module_utils.validation import ssh_public_key_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import stack_errors


def stack_input_options():
    """The argument spec of a whole stack's inputs (livestream.aws.stack_validate's options)."""
    return options.argument_spec(
        options.NAME, options.NETWORK, options.AVAILABILITY_ZONE, options.ACCESS, options.DNS, options.AMI,
        options.SSH_KEY, options.INSTANCES,
    )


def region_errors(region):
    """The region is one AWS has (botocore's own list, read offline): an unknown one would
    otherwise end in an endpoint error that does not name it. (No region at all stops the
    module earlier, when it makes its client: aws.client.)"""
    session = botocore.session.get_session()
    known = {r for partition in session.get_available_partitions()
             for r in session.get_available_regions("ec2", partition_name=partition)}
    if region not in known:
        return [f"region {region!r} is not an AWS region (region, livestream_region, AWS_REGION or AWS_DEFAULT_REGION)"]
    return []


def placement(module, ec2, architecture):
    """The availability zone for both subnets: the one asked for, else the first (by name)
    that offers every role's instance type; every type known, of the AMI's architecture,
    and offered there. Fails naming each bad value and its option. Two calls when all is
    well (the types, their offerings); more only to explain what is not."""
    wanted = module.params["availability_zone"]
    types = module.params["instance_types"]
    region = module.region
    unique = sorted(set(types.values()))
    try:
        described = {t["InstanceType"]: t for t in ec2.describe_instance_types(InstanceTypes=unique, aws_retry=True)["InstanceTypes"]}
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] != "InvalidInstanceType":
            raise
        described = {}
        for instance_type in unique:  # which of them is unknown
            try:
                described.update({t["InstanceType"]: t for t in ec2.describe_instance_types(
                    InstanceTypes=[instance_type], aws_retry=True)["InstanceTypes"]})
            except botocore.exceptions.ClientError as inner:
                if inner.response["Error"]["Code"] != "InvalidInstanceType":
                    raise
    errors = []
    for role, instance_type in sorted(types.items()):
        option = f"instance_types.{role}, livestream_instance_types"
        if instance_type not in described:
            errors.append(f"instance type {instance_type!r} of the {role} ({option}) is not an EC2 instance type")
            continue
        supported = described[instance_type].get("ProcessorInfo", {}).get("SupportedArchitectures", [])
        if architecture not in supported:
            errors.append(f"instance type {instance_type!r} of the {role} ({option}) runs {'/'.join(supported)}, "
                          f"not the AMI's {architecture} (architecture, livestream_architecture)")

    offerings = ec2.describe_instance_type_offerings(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": unique}],
        aws_retry=True)["InstanceTypeOfferings"] if not errors else []
    offered = {}
    for offering in offerings:
        offered.setdefault(offering["Location"], set()).add(offering["InstanceType"])
    everything = sorted(zone for zone, there in offered.items() if set(unique) <= there)
    if wanted and wanted not in offered:
        zones = sorted(z["ZoneName"] for z in ec2.describe_availability_zones(
            Filters=[{"Name": "region-name", "Values": [region]}], aws_retry=True)["AvailabilityZones"])
        if wanted not in zones:
            errors.append(f"availability zone {wanted!r} (availability_zone, livestream_availability_zone) is not in "
                          f"region {region}: its zones are {', '.join(zones)}")
    fail_on_errors(module, errors)
    if wanted:
        fail_on_errors(module, [
            f"availability zone {wanted!r} (livestream_availability_zone) does not offer the instance type "
            f"{types[role]!r} of the {role} (livestream_instance_types); zones that offer every type: "
            f"{', '.join(everything) or 'none'}"
            for role in sorted(types) if types[role] not in offered.get(wanted, set())
        ])
        return wanted
    if not everything:
        module.fail_json(msg=f"no availability zone of region {region} offers every instance type "
                         f"{', '.join(f'{t!r} ({r})' for r, t in sorted(types.items()))} (livestream_instance_types)")
    return everything[0]


def preflight(module, ec2, route53):
    """Fail, naming the problem, unless the stack can be built; return the AMI to boot and
    the availability zone to put it in."""
    params = module.params
    name = params["name"]
    fail_on_errors(
        module,
        stack_errors(name)
        + region_errors(module.region)
        + network_errors(params["vpc_cidr"], params["public_subnet_cidr"], params["private_subnet_cidr"])
        + access_errors(params)
        + domain_errors(params["domain"], params["hosted_zone"])
        + ssh_public_key_errors(params["ssh_public_key"]),
    )

    family, architecture = params["ami_family"], params["architecture"]
    wanted = image_search_description(family, architecture)
    try:
        image = find_image(ec2, family, architecture)
    except botocore.exceptions.NoCredentialsError as e:
        module.fail_json_aws(
            e, msg=f"No AWS credentials for stack {name!r}: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to look up the {wanted} for stack {name!r}")
    if image is None:
        module.fail_json(msg=f"No {wanted} found in region {module.region}")
    try:
        zone = placement(module, ec2, architecture)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to look up the availability zones and instance types for stack {name!r}")

    zone_name = normalize_dns_name(params["hosted_zone"])
    if not params["create_hosted_zone"]:
        try:
            zone_id = find_hosted_zone(module, route53, zone_name)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"Failed to look up the hosted zone {zone_name!r} for stack {name!r}")
        if zone_id is None:
            module.fail_json(
                msg=f"hosted zone {zone_name!r} for domain {params['domain']!r} not found: create it, "
                "or let the stack create it (create_hosted_zone / livestream_create_hosted_zone)"
            )

    image = dict(
        image_id=image["ImageId"],
        name=image["Name"],
        owner_id=image["OwnerId"],
        root_device_name=image.get("RootDeviceName", "/dev/xvda"),
        family=family,
        login_user=AMI_FAMILIES[family]["login_user"],
    )
    return image, zone
