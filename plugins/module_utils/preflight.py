# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Everything checked before a stack gets its first resource: every input (with the rules of
validation.py), the credentials, the AMI and the hosted zone. Used by
livestream.aws.stack_validate and livestream.aws.stack."""

from __future__ import annotations

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.livestream.aws.plugins.module_utils import options
from ansible_collections.livestream.aws.plugins.module_utils.publishing import find_hosted_zone
from ansible_collections.livestream.aws.plugins.module_utils.stack import AMI_FAMILIES
from ansible_collections.livestream.aws.plugins.module_utils.stack import find_image
from ansible_collections.livestream.aws.plugins.module_utils.stack import image_search_description
from ansible_collections.livestream.aws.plugins.module_utils.validation import admin_access_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import domain_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import fail_on_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import network_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import normalize_dns_name
from ansible_collections.livestream.aws.plugins.module_utils.validation import ssh_public_key_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import stack_errors


def stack_input_options():
    """The argument spec of a whole stack's inputs (livestream.aws.stack_validate's options)."""
    return options.argument_spec(options.NAME, options.NETWORK, options.ACCESS, options.DNS, options.AMI, options.SSH_KEY)


def preflight(module, ec2, route53):
    """Fail, naming the problem, unless the stack can be built; return the AMI to boot."""
    params = module.params
    name = params["name"]
    fail_on_errors(
        module,
        stack_errors(name)
        + network_errors(params["vpc_cidr"], params["public_subnet_cidr"], params["private_subnet_cidr"])
        + admin_access_errors(params["admin_cidrs"], params["allow_ssh_from_anywhere"])
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

    return dict(
        image_id=image["ImageId"],
        name=image["Name"],
        owner_id=image["OwnerId"],
        root_device_name=image.get("RootDeviceName", "/dev/xvda"),
        family=family,
        login_user=AMI_FAMILIES[family]["login_user"],
    )
