# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A stack's key pair and its three instances. Used by livestream.aws.instances and
livestream.aws.stack_provision."""

from __future__ import annotations

import hashlib
import re

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.livestream.aws.plugins.module_utils.aws import only_one
from ansible_collections.livestream.aws.plugins.module_utils.aws import wait_for
from ansible_collections.livestream.aws.plugins.module_utils.images import AMI_FAMILY_TAG
from ansible_collections.livestream.aws.plugins.module_utils.naming import LIVE_INSTANCE_STATES
from ansible_collections.livestream.aws.plugins.module_utils.naming import resource_name
from ansible_collections.livestream.aws.plugins.module_utils.naming import ROLE_TAG
from ansible_collections.livestream.aws.plugins.module_utils.naming import ROLES
from ansible_collections.livestream.aws.plugins.module_utils.security_groups import groups_of
from ansible_collections.livestream.aws.plugins.module_utils.naming import stack_filters
from ansible_collections.livestream.aws.plugins.module_utils.naming import stack_tags
from ansible_collections.livestream.aws.plugins.module_utils.naming import tag_specifications
from ansible_collections.livestream.aws.plugins.module_utils.naming import tags_of

INSTANCE_TYPES = {"bastion": "t3.micro", "frontend": "t3.small", "backend": "t3.small"}
# Where each role lives and what sets it apart.
PLACEMENT = {
    "bastion": {"tier": "public", "public_address": True, "source_dest_check": False},
    "frontend": {"tier": "public", "public_address": True, "source_dest_check": True},
    "backend": {"tier": "private", "public_address": False, "source_dest_check": True},
}


# the burstable families (t2, t3, t3a, t4g, ...): the only ones with a CPU credit option
BURSTABLE = re.compile(r"t\d[a-z]*\.")


def burstable(instance_type):
    return bool(BURSTABLE.match(instance_type or ""))


def key_body(key):
    """Type and base64 of a public key: the comment does not make it another key."""
    return " ".join(str(key or "").split()[:2])


def client_token(name, role, launch, replaces=None):
    """Same stack, role and launch settings: same token, so AWS launches at most one
    instance for a request that is retried after an interruption. A stack rebuilt on new
    subnets gets new tokens. AWS answers a token with its first launch for at least a day,
    a terminated instance included: the launch that replaces the instance ``replaces``
    gets a token of its own (derived from it, so that it too is launched at most once)."""
    digest = hashlib.sha256(repr((sorted(launch.items()), replaces)).encode()).hexdigest()[:16]
    return f"{name}-{role}-{digest}"


# a token whose instance is gone: launch anew (a bound, in case AWS keeps answering so)
GONE_STATES = ("shutting-down", "terminated")
RELAUNCHES = 10


def instance_facts(instance):
    interfaces = sorted(instance.get("NetworkInterfaces", []), key=lambda i: i.get("Attachment", {}).get("DeviceIndex", 0))
    return {
        "instance_id": instance.get("InstanceId"),
        "state": instance.get("State", {}).get("Name"),
        "private_ip_address": instance.get("PrivateIpAddress"),
        "public_ip_address": instance.get("PublicIpAddress") or None,
        "network_interface_id": interfaces[0]["NetworkInterfaceId"] if interfaces else None,
        "subnet_id": instance.get("SubnetId"),
        "instance_type": instance.get("InstanceType"),
        "image_id": instance.get("ImageId"),
    }


class Instances:
    """The settings are the options of livestream.aws.instances of the same names."""

    def __init__(self, ec2, changes, name, *, image_id, root_device_name, ami_family, subnet_ids, security_group_ids,
                 instance_types, root_volume_size, cpu_credits, ssh_public_key):
        self.module = changes.module
        self.ec2 = ec2
        self.params = dict(
            image_id=image_id, root_device_name=root_device_name, ami_family=ami_family, subnet_ids=subnet_ids,
            security_group_ids=security_group_ids, instance_types=instance_types, root_volume_size=root_volume_size,
            cpu_credits=cpu_credits, ssh_public_key=ssh_public_key,
        )
        self.name = name
        self.key_name = resource_name(self.name, "key")
        self.changes = changes
        self.launched_as_nat = []

    def key_pair(self):
        wanted = key_body(self.params["ssh_public_key"])
        found = self.ec2.describe_key_pairs(
            Filters=[{"Name": "key-name", "Values": [self.key_name]}], IncludePublicKey=True, aws_retry=True
        )["KeyPairs"]
        if found and key_body(found[0].get("PublicKey")) == wanted:
            return
        if found:
            self.changes.record(
                f"replace key pair {self.key_name} (another public key)", "key pair", key_body(found[0].get("PublicKey")), wanted
            )
        else:
            self.changes.record(f"import key pair {self.key_name}", "key pair", "absent", wanted)
        if self.changes.check_mode:
            return
        if found:
            self.ec2.delete_key_pair(KeyName=self.key_name, aws_retry=True)
        self.ec2.import_key_pair(
            KeyName=self.key_name,
            PublicKeyMaterial=self.params["ssh_public_key"].strip().encode(),
            TagSpecifications=tag_specifications("key-pair", stack_tags(self.name, resource_name=self.key_name)),
            aws_retry=True,
        )

    def find(self):
        reservations = self.ec2.describe_instances(
            Filters=stack_filters(self.name, {"instance-state-name": LIVE_INSTANCE_STATES}), aws_retry=True
        )["Reservations"]
        by_role = {role: [] for role in ROLES}
        for reservation in reservations:
            for instance in reservation["Instances"]:
                role = tags_of(instance).get(ROLE_TAG)
                if role in by_role:
                    by_role[role].append(instance)
        by_role = {role: only_one(self.module, found, "InstanceId", f"{role} instances of stack {self.name!r}",
                                  fix="terminate the extra ones and run again")
                   for role, found in by_role.items()}
        return {role: instance for role, instance in by_role.items() if instance is not None}

    def launch(self, role):
        place = PLACEMENT[role]
        instance_type = self.params["instance_types"][role]
        what = resource_name(self.name, role)
        self.changes.record(f"launch {what} ({instance_type})", f"{role} instance", "absent", instance_type)
        if self.changes.check_mode:
            return {"InstanceType": instance_type, "ImageId": self.params["image_id"], "State": {"Name": "pending"}}
        subnet_id = self.params["subnet_ids"][place["tier"]]
        group_ids = groups_of(role, self.params["security_group_ids"])
        launch = dict(
            image=self.params["image_id"], type=instance_type, subnet=subnet_id, group=group_ids[0],
            key=self.key_name, volume=self.params["root_volume_size"],
        )
        tags = stack_tags(self.name, role=role, resource_name=what, extra={AMI_FAMILY_TAG: self.params["ami_family"]})
        replaces = None
        for _attempt in range(RELAUNCHES):
            instance = self._run(role, instance_type, subnet_id, group_ids, tags, client_token(self.name, role, launch, replaces))
            if instance.get("State", {}).get("Name") not in GONE_STATES:
                break
            replaces = instance["InstanceId"]  # the token's first launch, terminated since
        else:
            self.module.fail_json(msg=f"AWS answered {RELAUNCHES} launches of {what} with terminated instances")
        if not place["source_dest_check"]:
            # a NAT instance forwards packets that are neither from nor to itself; turned off
            # once it runs (its ID known to EC2 by then), so the other launches need not wait
            self.launched_as_nat.append(instance["InstanceId"])
        return instance

    def finish_launches(self):
        """What a launch cannot set and a new ID must be known for: the NAT instance's
        source/destination check (put_right puts it right if a run stops before this)."""
        for instance_id in self.launched_as_nat:
            self.ec2.modify_instance_attribute(InstanceId=instance_id, SourceDestCheck={"Value": False}, aws_retry=True)

    def _run(self, role, instance_type, subnet_id, group_ids, tags, token):
        place = PLACEMENT[role]
        what = resource_name(self.name, role)
        # EC2 refuses a credit option for a type that has none (InstanceCreditSpecification.NotSupported)
        credits = {"CreditSpecification": {"CpuCredits": self.params["cpu_credits"]}} if burstable(instance_type) else {}
        return self.ec2.run_instances(
            **credits,
            ImageId=self.params["image_id"],
            InstanceType=instance_type,
            KeyName=self.key_name,
            MinCount=1,
            MaxCount=1,
            ClientToken=token,
            NetworkInterfaces=[{
                "DeviceIndex": 0,
                "SubnetId": subnet_id,
                "Groups": group_ids,
                "AssociatePublicIpAddress": place["public_address"],
                "DeleteOnTermination": True,
            }],
            MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
            BlockDeviceMappings=[{
                "DeviceName": self.params["root_device_name"],
                "Ebs": {
                    "VolumeType": "gp3",
                    "VolumeSize": self.params["root_volume_size"],
                    "Encrypted": True,
                    "DeleteOnTermination": True,
                },
            }],
            # every resource the launch makes carries the stack's tag: a deployer's policy
            # can then scope every later call to resources tagged Stack (docs/iam)
            TagSpecifications=tag_specifications("instance", tags)
            + tag_specifications("volume", stack_tags(self.name, resource_name=f"{what}-root"))
            + tag_specifications("network-interface", stack_tags(self.name, resource_name=f"{what}-eth0")),
            aws_retry=True,
        )["Instances"][0]

    def put_right(self, role, instance):
        """Bring an existing instance back to what the stack needs; True if it must be waited for."""
        what = resource_name(self.name, role)
        instance_id = instance["InstanceId"]
        state = instance["State"]["Name"]
        if state in ("stopped", "stopping"):
            self.changes.record(f"start {what} ({state})", f"{role} state", state, "running")
            if not self.changes.check_mode:
                if state == "stopping":
                    wait_for(self.ec2, "instance_stopped", InstanceIds=[instance_id])
                self.ec2.start_instances(InstanceIds=[instance_id], aws_retry=True)
        wanted_check = PLACEMENT[role]["source_dest_check"]
        if instance.get("SourceDestCheck", True) != wanted_check:
            self.changes.record(
                f"turn the source/destination check of {what} {'on' if wanted_check else 'off'}",
                f"{role} source_dest_check", instance.get("SourceDestCheck", True), wanted_check,
            )
            if not self.changes.check_mode:
                self.ec2.modify_instance_attribute(InstanceId=instance_id, SourceDestCheck={"Value": wanted_check}, aws_retry=True)
        # the groups are the primary interface's (launched with both, or the frontend of a
        # stack from before the origin group, which gets it here)
        wanted_groups = groups_of(role, self.params["security_group_ids"])
        interface = (instance.get("NetworkInterfaces") or [{}])[0]
        groups = [group["GroupId"] for group in interface.get("Groups", [])]
        if interface and sorted(groups) != sorted(wanted_groups) and all(wanted_groups):
            self.changes.record(f"put {what} in the security groups {', '.join(wanted_groups)}",
                                f"{role} security groups", groups, wanted_groups)
            if not self.changes.check_mode:
                self.ec2.modify_network_interface_attribute(
                    NetworkInterfaceId=interface["NetworkInterfaceId"], Groups=wanted_groups, aws_retry=True)
        tokens = instance.get("MetadataOptions", {}).get("HttpTokens")
        if tokens != "required":
            self.changes.record(f"require IMDSv2 tokens on {what}", f"{role} http_tokens", tokens, "required")
            if not self.changes.check_mode:
                self.ec2.modify_instance_metadata_options(
                    InstanceId=instance_id, HttpTokens="required", HttpEndpoint="enabled", aws_retry=True
                )
        return state != "running"

    def put_credits_right(self, instances):
        """The credit option of the stack's burstable instances (one call to read them all, one
        to change those that differ): set at launch, but changeable by anyone since."""
        wanted = self.params["cpu_credits"]
        ids = {instance["InstanceId"]: role for role, instance in instances.items()
               if instance.get("InstanceId") and burstable(instance.get("InstanceType"))}
        if not ids:
            return
        found = {spec["InstanceId"]: spec.get("CpuCredits") for spec in self.ec2.describe_instance_credit_specifications(
            InstanceIds=sorted(ids), aws_retry=True)["InstanceCreditSpecifications"]}
        wrong = sorted(instance_id for instance_id in ids if found.get(instance_id) != wanted)
        for instance_id in wrong:
            role = ids[instance_id]
            self.changes.record(f"set the CPU credits of {resource_name(self.name, role)} to {wanted}",
                                f"{role} cpu_credits", found.get(instance_id), wanted)
        if not wrong or self.changes.check_mode:
            return
        refused = self.ec2.modify_instance_credit_specification(
            InstanceCreditSpecifications=[{"InstanceId": instance_id, "CpuCredits": wanted} for instance_id in wrong],
            aws_retry=True,
        ).get("UnsuccessfulInstanceCreditSpecifications", [])
        if refused:
            self.module.fail_json(msg="AWS refused the CPU credit option (cpu_credits, livestream_cpu_credits) " + "; ".join(
                f"{wanted!r} for {resource_name(self.name, ids[item['InstanceId']])}: "
                f"{item.get('Error', {}).get('Code')}: {item.get('Error', {}).get('Message')}" for item in refused))


def instance_type_options():
    """The argument spec of the instance_types option (one type per role, with its default)."""
    return {role: dict(type="str", default=default) for role, default in INSTANCE_TYPES.items()}


def ensure_instances(ec2, changes, name, *, wait_timeout=600, **settings):
    """Import the key pair and make the three instances run; return the key name and the
    instances by role (IDs null in check mode for what would be launched). ``settings``:
    those of ``Instances``."""
    stack = Instances(ec2, changes, name, **settings)
    step = f"the key pair {stack.key_name}"
    try:
        stack.key_pair()
        step = f"the instances of stack {name!r}"
        instances = stack.find()
        to_wait = [instances[role]["InstanceId"] for role in instances if stack.put_right(role, instances[role])]
        for role in ROLES:
            if role not in instances:
                instances[role] = stack.launch(role)
                to_wait.append(instances[role].get("InstanceId"))
        to_wait = [instance_id for instance_id in to_wait if instance_id]
        if to_wait and not changes.check_mode:
            wait_for(ec2, "instance_running", max_attempts=max(1, wait_timeout // 5), InstanceIds=to_wait)
            stack.finish_launches()
            # addresses (the public one above all) are only final once the instance runs
            instances = stack.find()
        stack.put_credits_right(instances)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, botocore.exceptions.WaiterError) as e:
        changes.module.fail_json_aws(e, msg=f"Failed to make {step}")
    return stack.key_name, {role: instance_facts(instances.get(role, {})) for role in ROLES}
