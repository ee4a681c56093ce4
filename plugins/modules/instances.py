#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: instances
version_added: 0.1.0
short_description: The SSH key pair and the three instances of a livestream stack
description:
  - Imports the SSH public key as the key pair C(<name>-key), and makes sure the stack has
    exactly one running instance per role.
  - C(bastion) in the public subnet with a public address and the source/destination check
    off (it is the NAT instance of the private subnet); C(frontend) in the public subnet;
    C(backend) in the private subnet without a public address.
  - Every instance requires IMDSv2 tokens and boots from an encrypted gp3 root volume that
    goes with it. It is tagged C(Stack=<name>), C(Role=<role>), C(Name=<name>-<role>) and
    C(AmiFamily=<family>) by the call that creates it.
  - Instances are found by their C(Stack) and C(Role) tags, all with one call, and created
    with a client token derived from the stack, the role and the launch settings, so neither
    a second run nor a run after an interrupted one makes a second instance of a role.
  - An existing instance is kept as it is, except that a stopped one is started, and the
    bastion's source/destination check and the IMDSv2 requirement are put right. To move
    an instance to another image or type, terminate it and run again.
  - When the key pair exists with another public key, it is replaced; instances already
    running keep the key they were launched with.
  - Use M(livestream.aws.stack_teardown) to remove them.
options:
  name:
    description:
      - The stack name, as in the C(Stack) tag of its resources.
    required: true
    type: str
    aliases: [stack_name]
  image_id:
    description:
      - The AMI to launch, as found by M(livestream.aws.stack_validate).
    required: true
    type: str
  root_device_name:
    description:
      - The device name of the AMI's root volume.
    type: str
    default: /dev/xvda
  ami_family:
    description:
      - The AMI family of O(image_id), recorded in the C(AmiFamily) tag for the inventory.
    type: str
    choices: [debian12, ubuntu2404]
    default: debian12
  subnet_ids:
    description:
      - The stack's subnets, as returned by M(livestream.aws.network).
      - Their values may be null in check mode only, when the subnets do not exist yet.
    type: dict
    required: true
    suboptions:
      public:
        description: The public subnet.
        type: str
      private:
        description: The private subnet.
        type: str
  security_group_ids:
    description:
      - The stack's security groups by role, as returned by M(livestream.aws.security_groups).
      - Their values may be null in check mode only, when the groups do not exist yet.
    type: dict
    required: true
    suboptions:
      bastion:
        description: The bastion's group.
        type: str
      frontend:
        description: The frontend's group.
        type: str
      backend:
        description: The backend's group.
        type: str
  instance_types:
    description:
      - The instance type of each role. Roles not given keep their default.
    type: dict
    default: {}
    suboptions:
      bastion:
        description: The bastion's instance type.
        type: str
        default: t3.micro
      frontend:
        description: The frontend's instance type.
        type: str
        default: t3.small
      backend:
        description: The backend's instance type.
        type: str
        default: t3.small
  root_volume_size:
    description:
      - The size of each root volume, in GiB.
    type: int
    default: 10
  ssh_public_key:
    description:
      - The OpenSSH public key (the text of a C(.pub) file) the instances trust.
    type: str
    required: true
  wait_timeout:
    description:
      - How many seconds to wait for new or started instances to run.
    type: int
    default: 600
author:
  - livestream.aws maintainers (@livestream-aws)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The instances of the stack "live"
  livestream.aws.instances:
    name: live
    image_id: "{{ stack_inputs.image.image_id }}"
    root_device_name: "{{ stack_inputs.image.root_device_name }}"
    subnet_ids:
      public: "{{ live_network.subnets.public.subnet_id }}"
      private: "{{ live_network.subnets.private.subnet_id }}"
    security_group_ids: "{{ live_groups.groups }}"
    instance_types:
      backend: c6i.large
    ssh_public_key: "{{ lookup('ansible.builtin.file', '~/.ssh/id_ed25519.pub') }}"
  register: live_instances

- name: The bastion's network interface, for the private subnet's default route
  ansible.builtin.debug:
    msg: "{{ live_instances.instances.bastion.network_interface_id }}"
"""

RETURN = r"""
instances:
  description: The instance of each role (values null in check mode for one not created yet).
  returned: success
  type: dict
  contains:
    bastion:
      description: The bastion.
      type: dict
      sample:
        instance_id: i-0123456789abcdef0
        state: running
        private_ip_address: 10.0.1.10
        public_ip_address: 54.1.2.3
        network_interface_id: eni-0123456789abcdef0
        subnet_id: subnet-0123
        instance_type: t3.micro
        image_id: ami-0123
    frontend:
      description: The frontend, same keys as C(bastion).
      type: dict
    backend:
      description: The backend, same keys as C(bastion); C(public_ip_address) is null.
      type: dict
key_name:
  description: The name of the key pair the instances are launched with.
  returned: success
  type: str
  sample: live-key
actions:
  description: What was changed (in check mode, what would be), one line each.
  returned: always
  type: list
  elements: str
  sample: ["import key pair live-key", "launch live-bastion (t3.micro)"]
"""

import hashlib

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.livestream.aws.plugins.module_utils.stack import AMI_FAMILIES
from ansible_collections.livestream.aws.plugins.module_utils.stack import LIVE_INSTANCE_STATES
from ansible_collections.livestream.aws.plugins.module_utils.stack import ROLE_TAG
from ansible_collections.livestream.aws.plugins.module_utils.stack import ROLES
from ansible_collections.livestream.aws.plugins.module_utils.stack import Changes
from ansible_collections.livestream.aws.plugins.module_utils.stack import resource_name
from ansible_collections.livestream.aws.plugins.module_utils.stack import stack_filters
from ansible_collections.livestream.aws.plugins.module_utils.stack import stack_tags
from ansible_collections.livestream.aws.plugins.module_utils.stack import tag_specifications
from ansible_collections.livestream.aws.plugins.module_utils.stack import tags_of
from ansible_collections.livestream.aws.plugins.module_utils.stack import wait_for
from ansible_collections.livestream.aws.plugins.module_utils.validation import fail_on_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import ssh_public_key_errors
from ansible_collections.livestream.aws.plugins.module_utils.validation import stack_errors

AMI_FAMILY_TAG = "AmiFamily"
# Where each role lives and what sets it apart.
PLACEMENT = {
    "bastion": {"tier": "public", "public_address": True, "source_dest_check": False},
    "frontend": {"tier": "public", "public_address": True, "source_dest_check": True},
    "backend": {"tier": "private", "public_address": False, "source_dest_check": True},
}


def key_body(key):
    """Type and base64 of a public key: the comment does not make it another key."""
    return " ".join(str(key or "").split()[:2])


def client_token(name, role, launch):
    """Same stack, role and launch settings: same token, so AWS launches at most one
    instance for a request that is retried after an interruption. A stack rebuilt on new
    subnets gets new tokens (AWS remembers old ones after termination)."""
    digest = hashlib.sha256(repr(sorted(launch.items())).encode()).hexdigest()[:16]
    return f"{name}-{role}-{digest}"


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
    def __init__(self, module, ec2):
        self.module = module
        self.ec2 = ec2
        self.params = module.params
        self.name = module.params["name"]
        self.key_name = resource_name(self.name, "key")
        self.changes = Changes(module)

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
        for role, found in by_role.items():
            if len(found) > 1:
                self.module.fail_json(
                    msg=f"stack {self.name!r} has {len(found)} {role} instances: {[i['InstanceId'] for i in found]}; "
                    "terminate the extra ones and run again"
                )
        return {role: found[0] for role, found in by_role.items() if found}

    def launch(self, role):
        place = PLACEMENT[role]
        instance_type = self.params["instance_types"][role]
        what = resource_name(self.name, role)
        self.changes.record(f"launch {what} ({instance_type})", f"{role} instance", "absent", instance_type)
        if self.changes.check_mode:
            return {"InstanceType": instance_type, "ImageId": self.params["image_id"], "State": {"Name": "pending"}}
        subnet_id = self.params["subnet_ids"][place["tier"]]
        group_id = self.params["security_group_ids"][role]
        launch = dict(
            image=self.params["image_id"], type=instance_type, subnet=subnet_id, group=group_id,
            key=self.key_name, volume=self.params["root_volume_size"],
        )
        tags = stack_tags(self.name, role=role, resource_name=what, extra={AMI_FAMILY_TAG: self.params["ami_family"]})
        instance = self.ec2.run_instances(
            ImageId=self.params["image_id"],
            InstanceType=instance_type,
            KeyName=self.key_name,
            MinCount=1,
            MaxCount=1,
            ClientToken=client_token(self.name, role, launch),
            NetworkInterfaces=[{
                "DeviceIndex": 0,
                "SubnetId": subnet_id,
                "Groups": [group_id],
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
            TagSpecifications=tag_specifications("instance", tags)
            + tag_specifications("volume", stack_tags(self.name, resource_name=f"{what}-root")),
            aws_retry=True,
        )["Instances"][0]
        if not place["source_dest_check"]:
            # a NAT instance forwards packets that are neither from nor to itself
            self.ec2.modify_instance_attribute(
                InstanceId=instance["InstanceId"], SourceDestCheck={"Value": False}, aws_retry=True
            )
        return instance

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
        tokens = instance.get("MetadataOptions", {}).get("HttpTokens")
        if tokens != "required":
            self.changes.record(f"require IMDSv2 tokens on {what}", f"{role} http_tokens", tokens, "required")
            if not self.changes.check_mode:
                self.ec2.modify_instance_metadata_options(
                    InstanceId=instance_id, HttpTokens="required", HttpEndpoint="enabled", aws_retry=True
                )
        return state != "running"


def main():
    role_types = {role: dict(type="str", default=default) for role, default in
                  (("bastion", "t3.micro"), ("frontend", "t3.small"), ("backend", "t3.small"))}
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["stack_name"]),
            image_id=dict(type="str", required=True),
            root_device_name=dict(type="str", default="/dev/xvda"),
            ami_family=dict(type="str", choices=list(AMI_FAMILIES), default="debian12"),
            subnet_ids=dict(type="dict", required=True, options=dict(public=dict(type="str"), private=dict(type="str"))),
            security_group_ids=dict(
                type="dict", required=True, options={role: dict(type="str") for role in ROLES}
            ),
            instance_types=dict(type="dict", default={}, options=role_types),
            root_volume_size=dict(type="int", default=10),
            ssh_public_key=dict(type="str", required=True, no_log=False),
            wait_timeout=dict(type="int", default=600),
        ),
        supports_check_mode=True,
    )
    params = module.params
    name = params["name"]
    errors = stack_errors(name) + ssh_public_key_errors(params["ssh_public_key"])
    if not module.check_mode:
        missing = [f"subnet_ids.{k}" for k, v in params["subnet_ids"].items() if not v]
        missing += [f"security_group_ids.{k}" for k, v in params["security_group_ids"].items() if not v]
        if missing:
            errors.append(f"{', '.join(missing)} required (they may only be left out in check mode)")
    fail_on_errors(module, errors)

    stack = Instances(module, module.client("ec2", retry_decorator=AWSRetry.jittered_backoff()))
    ec2 = stack.ec2
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
        if to_wait and not module.check_mode:
            wait_for(ec2, "instance_running", max_attempts=max(1, params["wait_timeout"] // 5), InstanceIds=to_wait)
            # addresses (the public one above all) are only final once the instance runs
            instances = stack.find()
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, botocore.exceptions.WaiterError) as e:
        module.fail_json_aws(e, msg=f"Failed to make {step}")

    module.exit_json(
        changed=stack.changes.changed,
        actions=stack.changes.actions,
        diff=stack.changes.diff(),
        key_name=stack.key_name,
        instances={role: instance_facts(instances.get(role, {})) for role in ROLES},
    )


if __name__ == "__main__":
    main()
