# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
name: stack
version_added: 0.1.0
short_description: The hosts of a livestream stack, grouped by role, reachable through its bastion
description:
  - Finds the running and pending EC2 instances tagged C(Stack=<stack_name>) in the configured
    region(s) and adds them to the inventory. Stopped and terminated instances are left out.
  - Each host is put in the group named after its C(Role) tag (V(bastion), V(frontend) or
    V(backend)) and in the group C(stack_<stack_name>) (hyphens become underscores), so two
    stacks read from two configuration files stay apart.
  - The inventory host name is the instance's C(Name) tag (for example C(live-frontend)); an
    instance without one is called C(<stack_name>-<role>). When several instances share a name,
    each one gets its instance id appended (C(live-frontend-i-0abc...)).
  - C(ansible_host) is always an IP address, never a DNS name, so that ssh does not depend on
    name resolution.
  - The bastion is reached at its public IP (with O(use_private_addresses=true), its private IP).
  - Every other host is reached at its private IP through the bastion, even a host with a public
    or Elastic IP. The stack's security groups let SSH in from the bastion's group, and AWS matches
    such a rule against the private addresses of the group's members only, so a connection from
    the bastion to a public address (which leaves through the internet gateway and comes back from
    the bastion's public address) would be refused. Such a host gets C(ansible_ssh_common_args)
    with an ssh C(ProxyCommand) that connects to the bastion with the bastion's user, port and
    key (see O(bastion_user), O(bastion_port), O(bastion_private_key_file)). A C(ProxyCommand)
    is used rather than C(ProxyJump) because C(ProxyJump) cannot pass a key file or ssh options
    to the hop.
  - When the stack has no usable bastion (or with O(jump_through_bastion=false)), a host with a
    public address is reached directly at it, and one without is an error (or, with
    O(jump_through_bastion=false), reached directly at its private IP).
  - C(ansible_user) follows the instance's image, looked up in one call for all instances.
    An image whose name starts with C(debian-) is Debian, one whose name contains C(ubuntu) is
    Ubuntu. For an image named otherwise, the C(AmiFamily) tag that the provisioning
    modules put on the instance decides (V(debian13) and V(debian12) are Debian, V(ubuntu2404) is Ubuntu). The
    user per family comes from O(users), and O(default_user) covers everything else.
  - The configuration file must end in C(livestream.yml) or C(livestream.yaml), for
    example C(inventory/aws.livestream.yml).
notes:
  - A stack with no running or pending instances (before provisioning, after teardown) is one
    warning line and empty C(bastion), C(frontend) and C(backend) groups, not an error.
  - When the plugin cannot look for the stack at all (its configuration, credentials, region or
    the AWS API), it says why in one warning line and sets C(livestream_inventory_error) on
    C(all) with that message, rather than failing (which would have every other enabled
    inventory plugin try this file and report its own failures); the collection's playbooks
    stop on it before they do anything. Every play also sees C(livestream_inventory_stack), the
    stack the inventory looks for.
  - The variables this plugin sets are inventory host variables. They win over
    C(group_vars/) files, and lose to C(host_vars/) files, play variables and extra variables
    (C(-e)). To change them for every host, set the matching option (O(users), O(default_user),
    O(ssh_private_key_file), ...) or use O(compose), which is applied after them.
  - Besides the variables above, every host carries its instance description in amazon.aws's
    snake_case form, each key prefixed with C(ec2_) (C(ec2_instance_id), C(ec2_private_ip_address),
    C(ec2_tags), C(ec2_placement.region), ...) for use in O(compose), O(groups) and O(keyed_groups),
    and C(livestream_host_stack),
    C(livestream_host_role) and C(livestream_host_os_family) (V(debian), V(ubuntu) or empty).
    A host reached through the bastion also gets C(livestream_host_bastion), the bastion's
    inventory host name.
  - With O(cache=true), the instances and images read from AWS are kept by the cache plugin
    and a later run within O(cache_timeout) makes no AWS call; C(--flush-cache) and the
    C(refresh_inventory) meta task read AWS again.
author:
  - livestream.aws maintainers (@livestream-aws)
extends_documentation_fragment:
  - inventory_cache
  - constructed
  - amazon.aws.boto3
  - amazon.aws.common.plugins
  - amazon.aws.region.plugins
  - amazon.aws.assume_role.plugins
options:
  plugin:
    description:
      - Marks the file as a configuration for this plugin.
    required: true
    type: str
    choices: [livestream.aws.stack]
  stack_name:
    description:
      - The stack to list, as in the C(Stack) tag of its instances.
      - May be a template, for example C({{ lookup('ansible.builtin.env', 'LIVESTREAM_STACK', default='live') }}).
    required: true
    type: str
  regions:
    description:
      - The regions to look for the stack's instances in.
      - When empty, the one region set by O(region), C(AWS_REGION), C(AWS_DEFAULT_REGION) or the
        profile is used. Unlike M(amazon.aws.aws_ec2), this plugin does not scan every region.
    type: list
    elements: str
    default: []
  use_private_addresses:
    description:
      - Use the private IP as C(ansible_host) for every host, the bastion included.
      - For a controller inside the VPC (or connected to it, for example by a VPN) that the
        bastion's security group lets in.
      - Hosts are still reached through the bastion (by its private IP)
        unless O(jump_through_bastion=false).
    type: bool
    default: false
  jump_through_bastion:
    description:
      - Reach every host but the bastion through the stack's bastion.
      - Set to V(false) when the controller can reach every host itself (for example from
        inside the VPC, with security groups that let it in).
    type: bool
    default: true
  users:
    description:
      - The login user for each image family.
      - Keys are V(debian) and V(ubuntu); a key given here replaces only that family's default.
    type: dict
    default:
      debian: admin
      ubuntu: ubuntu
  default_user:
    description:
      - The login user for instances whose image family is unknown.
      - When not set, such hosts get no C(ansible_user) and ssh's own default applies.
    type: str
  ssh_private_key_file:
    description:
      - The private key to log in to every host with (C(ansible_ssh_private_key_file)).
    type: path
  bastion_user:
    description:
      - The login user on the bastion, for the bastion itself and for the hop to private hosts.
      - Defaults to the bastion's own user from its image family.
    type: str
  bastion_port:
    description:
      - The ssh port of the bastion, for the bastion itself and for the hop to private hosts.
    type: int
    default: 22
  bastion_private_key_file:
    description:
      - The private key to log in to the bastion with, for the bastion itself and for the hop.
      - Defaults to O(ssh_private_key_file).
    type: path
  bastion_ssh_args:
    description:
      - Extra arguments for the ssh command that hops through the bastion.
      - Ansible's C(host_key_checking) setting does not reach that command.
    type: list
    elements: str
    default: []
  known_hosts_file:
    description:
      - The known-hosts file of the stack's hosts, for every connection and for the hop
        through the bastion (C(UserKnownHostsFile)); its directory is made if missing.
      - Each host's key is kept under the instance's ID (C(HostKeyAlias)), not its address, so
        that an instance re-created by provisioning (a new ID, a new key) is a new entry, not a
        changed key, while a changed key for the same instance is refused as ssh refuses it.
      - Defaults to C(~/.livestream.aws/<stack>/known_hosts), beside the stream keys.
      - Set to an empty string to leave host keys to your own ssh configuration.
      - C(~) is expanded.
    type: str
  host_key_checking:
    description:
      - What ssh does with a host whose key is not in O(known_hosts_file) yet
        (C(StrictHostKeyChecking)).
      - V(accept-new) (a new instance's key is taken on first sight, never a prompt; a changed
        one is refused) or V(yes) (only keys already in the file, which you put there).
      - Ansible's own C(host_key_checking=false) comes first on ssh's command line and wins.
    type: str
    choices: [accept-new, "yes"]
    default: accept-new
"""

EXAMPLES = r"""
# inventory/aws.livestream.yml: the stack "live" in the region from the AWS environment
plugin: livestream.aws.stack
stack_name: live

---
# Another stack, in a named region, with its own key, and a group of the Ubuntu hosts
plugin: livestream.aws.stack
stack_name: "{{ lookup('ansible.builtin.env', 'LIVESTREAM_STACK', default='staging') }}"
regions:
  - eu-west-1
ssh_private_key_file: ~/.ssh/livestream-staging.pem
groups:
  ubuntu: livestream_host_os_family == 'ubuntu'
keyed_groups:
  - key: ec2_instance_type
    prefix: type

---
# From inside the VPC: private addresses, an API endpoint, a cache
plugin: livestream.aws.stack
stack_name: live
endpoint_url: http://127.0.0.1:5000
use_private_addresses: true
bastion_port: 2222
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/livestream-inventory
cache_timeout: 600
compose:
  # compose runs last: it overrides what the plugin set
  ansible_user: "'admin'"
"""

import json
import os
import shlex

try:
    import botocore
except ImportError:
    pass  # the inventory base reports the missing SDK

from ansible.errors import AnsibleError
from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.amazon.aws.plugins.plugin_utils.inventory import AWSInventoryBase

from ansible_collections.livestream.aws.plugins.module_utils.aws import paginate
from ansible_collections.livestream.aws.plugins.module_utils.images import AMI_FAMILY_TAG
from ansible_collections.livestream.aws.plugins.module_utils.naming import ROLE_TAG
from ansible_collections.livestream.aws.plugins.module_utils.naming import ROLES
from ansible_collections.livestream.aws.plugins.module_utils.naming import stack_filters
from ansible_collections.livestream.aws.plugins.module_utils.naming import stack_name_error

# Stopped instances cannot be reached, terminating ones are on their way out.
REACHABLE_STATES = ["pending", "running"]
EC2_PREFIX = "ec2_"
# the documented default of the users option, kept when the option names only some families
DEFAULT_USERS = {"debian": "admin", "ubuntu": "ubuntu"}
# The cached data's layout: a cache written by another layout is read from AWS again.
CACHE_FORMAT = 1


def _json_safe(data):
    """Datetimes as ISO strings, so fresh and cached results give the same host variables."""
    return json.loads(json.dumps(data, default=lambda value: value.isoformat()))


def os_family(image_name, ami_family_tag=None):
    """debian, ubuntu or None, from an AMI name, else from the instance's AmiFamily tag."""
    name = (image_name or "").lower()
    if name.startswith("debian-"):
        return "debian"
    if "ubuntu" in name:
        return "ubuntu"
    tag = (ami_family_tag or "").lower()
    return next((family for family in ("debian", "ubuntu") if tag.startswith(family)), None)


def direct_address(private_ip, public_ip, use_private_addresses):
    """Where a host is reached unless it is reached through the bastion: at its public
    address, or at its private one when it has none or the controller is inside the VPC."""
    return private_ip if use_private_addresses or not public_ip else public_ip


def pick_bastion(bastions):
    """The one of ``bastions`` (name, state, launch time) to reach the others through: a
    running one before a pending one, then the first launched; None when there is none."""
    ranked = [(state != "running", launch_time, name) for name, state, launch_time in bastions]
    return min(ranked)[2] if ranked else None


def through_bastion(stack, host, public, bastion, bastion_public, use_private_addresses):
    """Whether ``host`` (not the bastion, with a public address or not) is reached through
    ``bastion`` (None: the stack has none) rather than directly; an AnsibleError when it can
    be reached neither way. A bastion is of use when the controller can reach it: at its
    public address, or at its private one from inside the VPC."""
    usable = bastion and (bastion_public or use_private_addresses)
    if public and not usable:
        return False  # nothing to hop through: straight to its public address
    if not bastion:
        raise AnsibleError(
            f"host {host!r} of stack {stack!r} has no public address and the stack has no running "
            "bastion to reach it through; set jump_through_bastion: false if the controller can "
            "reach the private subnet itself"
        )
    if not usable:
        raise AnsibleError(
            f"host {host!r} of stack {stack!r} must be reached through bastion {bastion!r}, which "
            "has no public address; set use_private_addresses: true if the controller is inside the VPC"
        )
    return True


def _ssh_config_literal(value):
    # ssh expands %-tokens in ProxyCommand: a literal % must be doubled
    return value.replace("%", "%%")


def host_key_args(instance_id, known_hosts_file, checking):
    """ssh options that check ``instance_id``'s host key against ``known_hosts_file``, kept
    under the instance's ID (none when there is no file: the user's ssh configuration)."""
    if not known_hosts_file:
        return []
    return ["-o", f"HostKeyAlias={instance_id}", "-o", f"UserKnownHostsFile={known_hosts_file}",
            "-o", f"StrictHostKeyChecking={checking}"]


def proxy_command_args(user, address, port, key_file=None, extra_args=()):
    """ssh arguments that reach a host through the bastion at ``address``.

    A ProxyCommand rather than ProxyJump: ``-J`` cannot pass a key or options to the hop.
    Ansible splits ``ansible_ssh_common_args`` with shlex, and ssh runs the ProxyCommand
    through the shell, hence one level of quoting for each.
    """
    # not -q: when the bastion cannot reach the host, its "channel 0: open failed: ..." is what
    # says which hop failed (livestream.aws.ssh_diagnosis reads it)
    hop = ["ssh", "-W", "%h:%p", "-p", str(port)]
    if key_file:
        hop += ["-i", _ssh_config_literal(key_file), "-o", "IdentitiesOnly=yes"]
    hop += [_ssh_config_literal(arg) for arg in extra_args]
    destination = f"{user}@{address}" if user else address
    hop.append(_ssh_config_literal(destination))
    return "-o " + shlex.quote("ProxyCommand=" + shlex.join(hop))


class InventoryModule(AWSInventoryBase):
    NAME = "livestream.aws.stack"
    INVENTORY_FILE_SUFFIXES = ("livestream.yml", "livestream.yaml")

    class TemplatedOptions(AWSInventoryBase.TemplatedOptions):
        TEMPLATABLE_OPTIONS = AWSInventoryBase.TemplatedOptions.TEMPLATABLE_OPTIONS + ("stack_name",)

        def get(self, *args):
            # amazon.aws templates every list item with disable_lookups=, which ansible-core
            # 2.19 reports as deprecated on each run (regions is a list): template only templates
            value = self.original_options.get(*args)
            if not value or not self.templar or args[0] not in self.TEMPLATABLE_OPTIONS:
                return value
            if isinstance(value, dict):
                return {key: self._template(item) for key, item in value.items()}
            if isinstance(value, list):
                return [self._template(item) for item in value]
            return self._template(value)

        def _template(self, value):
            return self.templar.template(value) if self.templar.is_template(value) else value

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache=cache)

        stack = self.get_option("stack_name")
        try:
            error = stack_name_error(stack, "stack_name")
            if error:
                raise AnsibleError(error)
            regions = self.get_option("regions") or [self.region]
            if not all(regions):
                raise AnsibleError(
                    f"no region to look for stack {stack!r} in: set the regions or region option, or AWS_REGION"
                )

            query = {"format": CACHE_FORMAT, "stack": stack, "regions": regions}
            found, data = self.get_cached_result(path, cache)
            if not found or {key: data.get(key) for key in query} != query:
                data = dict(query, **self._query(stack, regions))
                # a stale entry for another stack must not survive under this path's key
                cache = False
        except AnsibleError as e:
            # This file is ours (its plugin: line says so), so no other inventory plugin should
            # try it and report a page of its own failures: one line here, and the playbooks
            # stop on livestream_inventory_error with it before they do anything.
            self._populate_failed(stack, e.message)
            return
        self._populate(stack, regions, data)
        self.update_cached_result(path, cache, data)

    def _populate_failed(self, stack, message):
        self._announce(stack)
        self.inventory.set_variable("all", "livestream_inventory_error", message)
        self.display.warning(f"livestream.aws.stack: {message}")

    def _announce(self, stack):
        # which stack this inventory holds, for every play (localhost included): site.yml
        # checks it against the stack it is about to provision; and the role groups, empty or not
        self.inventory.set_variable("all", "livestream_inventory_stack", stack)
        for role in ROLES:
            self.inventory.add_group(role)

    def _client(self, region):
        return self.client("ec2", region=region, retry_decorator=AWSRetry.jittered_backoff())

    def _query(self, stack, regions):
        """The stack's reachable instances and the names of their images, JSON-safe."""
        instances = []
        images = {}
        for region in regions:
            ec2 = self._client(region)
            found = []
            try:
                filters = stack_filters(stack, {"instance-state-name": REACHABLE_STATES})
                for reservation in paginate(ec2, "describe_instances", "Reservations", Filters=filters):
                    found.extend(reservation["Instances"])
                image_ids = sorted({instance["ImageId"] for instance in found})
                if image_ids:
                    # a filter, unlike ImageIds=, does not fail on a deregistered image
                    described = ec2.describe_images(
                        Filters=[{"Name": "image-id", "Values": image_ids}], aws_retry=True
                    )["Images"]
                    images.update({image["ImageId"]: image.get("Name", "") for image in described})
            except botocore.exceptions.NoCredentialsError as e:
                self.fail_aws(
                    f"No AWS credentials to look up stack {stack!r} in {region}: set access_key and "
                    "secret_key or profile in the inventory file, or the standard AWS_* environment",
                    exception=e,
                )
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                self.fail_aws(f"Unable to describe the instances of stack {stack!r} in {region}", exception=e)
            instances.extend(found)
        instances.sort(key=lambda instance: instance["InstanceId"])
        return _json_safe({"instances": instances, "images": images})

    def _host_names(self, stack, instances):
        """Inventory name of each instance id: its Name tag, made unique when needed."""
        wanted = {}
        for instance in instances:
            tags = boto3_tag_list_to_ansible_dict(instance.get("Tags", []))
            role = tags.get(ROLE_TAG)
            default = f"{stack}-{role}" if role else instance["InstanceId"]
            wanted[instance["InstanceId"]] = tags.get("Name") or default
        taken = list(wanted.values())
        return {
            instance_id: name if taken.count(name) == 1 else f"{name}-{instance_id}"
            for instance_id, name in wanted.items()
        }

    def _login_user(self, family):
        users = dict(DEFAULT_USERS, **(self.get_option("users") or {}))
        return users.get(family) or self.get_option("default_user")

    def _describe_hosts(self, stack, data):
        """Host name -> variables from AWS and the login variables, before constructed."""
        names = self._host_names(stack, data["instances"])
        private_mode = self.get_option("use_private_addresses")
        key_file = self.get_option("ssh_private_key_file")
        hosts = {}
        for instance in data["instances"]:
            tags = boto3_tag_list_to_ansible_dict(instance.get("Tags", []))
            described = dict(camel_dict_to_snake_dict(instance, ignore_list=["Tags"]), tags=tags)
            described.setdefault("placement", {})
            described["placement"]["region"] = described["placement"].get("availability_zone", "")[:-1]
            # prefixed: "tags" is a reserved name, and Ansible may reserve more of these one day
            variables = {f"{EC2_PREFIX}{key}": value for key, value in described.items()}
            family = os_family(data["images"].get(instance["ImageId"]), tags.get(AMI_FAMILY_TAG))
            public = instance.get("PublicIpAddress")
            variables.update(
                livestream_host_stack=stack,
                livestream_host_role=tags.get(ROLE_TAG, ""),
                livestream_host_os_family=family or "",
                ansible_host=direct_address(instance.get("PrivateIpAddress"), public, private_mode),
            )
            user = self._login_user(family)
            if user:
                variables["ansible_user"] = user
            if key_file:
                variables["ansible_ssh_private_key_file"] = key_file
            hosts[names[instance["InstanceId"]]] = (variables, bool(public))
        return hosts

    def _pick_bastion(self, hosts):
        return pick_bastion([
            (name, variables["ec2_state"]["name"], variables["ec2_launch_time"])
            for name, (variables, _public) in hosts.items()
            if variables["livestream_host_role"] == "bastion"
        ])

    def _known_hosts_file(self, stack):
        """The stack's known-hosts file, its directory made (private) when missing; None: none."""
        path = self.get_option("known_hosts_file")
        if path == "":
            return None
        path = os.path.expanduser(path or f"~/.livestream.aws/{stack}/known_hosts")
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        return path

    def _set_host_keys(self, stack, hosts):
        """Every host's key checked against the stack's file, under the instance's ID."""
        known_hosts = self._known_hosts_file(stack)
        checking = self.get_option("host_key_checking")
        for variables, _public in hosts.values():
            args = host_key_args(variables["ec2_instance_id"], known_hosts, checking)
            if args:
                variables["ansible_ssh_common_args"] = shlex.join(args)
        return known_hosts, checking

    def _set_bastion_access(self, stack, hosts):
        """Bastion login options, and the ProxyCommand for every other host."""
        known_hosts, checking = self._set_host_keys(stack, hosts)
        bastion = self._pick_bastion(hosts)
        port = self.get_option("bastion_port")
        key_file = self.get_option("bastion_private_key_file") or self.get_option("ssh_private_key_file")
        bastion_vars, bastion_public = hosts[bastion] if bastion else ({}, False)
        if bastion:
            if self.get_option("bastion_user"):
                bastion_vars["ansible_user"] = self.get_option("bastion_user")
            if port != 22:
                bastion_vars["ansible_port"] = port
            if key_file:
                bastion_vars["ansible_ssh_private_key_file"] = key_file
        if not self.get_option("jump_through_bastion"):
            return
        for name, (variables, public) in hosts.items():
            if name == bastion or not through_bastion(
                    stack, name, public, bastion, bastion_public, self.get_option("use_private_addresses")):
                continue
            # behind the bastion, a host is reached at its private address (see the description)
            variables["ansible_host"] = variables["ec2_private_ip_address"]
            hop_args = host_key_args(bastion_vars["ec2_instance_id"], known_hosts, checking)
            variables["ansible_ssh_common_args"] = " ".join(filter(None, [
                variables.get("ansible_ssh_common_args"),
                proxy_command_args(
                    bastion_vars.get("ansible_user"),
                    bastion_vars["ansible_host"],
                    port,
                    key_file,
                    hop_args + list(self.get_option("bastion_ssh_args")),
                ),
            ]))
            variables["livestream_host_bastion"] = bastion

    def _populate(self, stack, regions, data):
        self._announce(stack)
        if not data["instances"]:
            # before provisioning (or after teardown) this is normal: one line, not an error
            # that every other inventory plugin would then report on too
            self.display.warning(
                f"livestream.aws.stack: stack {stack!r} has no running or pending instances in "
                f"{', '.join(regions)} (yet: provisioning makes them)"
            )
            return
        hosts = self._describe_hosts(stack, data)
        self._set_bastion_access(stack, hosts)

        stack_group = self.inventory.add_group("stack_" + stack.replace("-", "_"))
        strict = self.get_option("strict")
        for name, (variables, _public) in sorted(hosts.items()):
            self.inventory.add_host(name, group=stack_group)
            if variables["livestream_host_role"] in ROLES:
                self.inventory.add_child(self.inventory.add_group(variables["livestream_host_role"]), name)
            for key, value in variables.items():
                self.inventory.set_variable(name, key, value)
            self._set_composite_vars(self.get_option("compose"), variables, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), variables, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, name, strict=strict)
