"""The livestream.aws.stack inventory plugin against a real moto server, run through
ansible-inventory (and once through ansible over ssh) the way a user would."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from livestream_testing import ROOT
from provisioning import Inventory, plain

DEBIAN_AMI = "ami-0deb12a0000000002"
UBUNTU_AMI = "ami-0ub2404a000000001"
ZONE = "us-east-1a"


def _tags(stack, role, name=None):
    tags = {"Stack": stack, "Role": role, "Name": name or f"{stack}-{role}"}
    return [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def build_stack(ec2, stack, images=None, cidr="10.0", roles=("bastion", "frontend", "backend")):
    """A provisioned stack as the provisioning modules leave it: bastion with a public IP,
    frontend with an Elastic IP, backend in the private subnet. Returns instances by role."""
    images = {"bastion": DEBIAN_AMI, "frontend": DEBIAN_AMI, "backend": DEBIAN_AMI, **(images or {})}
    vpc = ec2.create_vpc(CidrBlock=f"{cidr}.0.0/16")["Vpc"]["VpcId"]
    # a zone that offers the instance type (the lab's API refuses a launch where it is not, as AWS does)
    public = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{cidr}.1.0/24", AvailabilityZone=ZONE)["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{cidr}.2.0/24", AvailabilityZone=ZONE)["Subnet"]["SubnetId"]
    ec2.modify_subnet_attribute(SubnetId=public, MapPublicIpOnLaunch={"Value": True})
    instances = {}
    for role in roles:
        instance = ec2.run_instances(
            ImageId=images[role], MinCount=1, MaxCount=1,
            SubnetId=private if role == "backend" else public,
            TagSpecifications=_tags(stack, role),
        )["Instances"][0]
        instances[role] = instance
    if "frontend" in instances:
        address = ec2.allocate_address(Domain="vpc")
        ec2.associate_address(AllocationId=address["AllocationId"], InstanceId=instances["frontend"]["InstanceId"])
        instances["frontend"]["ElasticIp"] = address["PublicIp"]
    return instances


@pytest.fixture
def inventory(aws, tmp_path):
    return Inventory(tmp_path)


def hosts_of(listing, group):
    return sorted(listing.get(group, {}).get("hosts", []))


def ssh_options(host_vars):
    """The -o options of a host's ssh command line, by name (ProxyCommand as ssh and the
    shell will split it)."""
    words = shlex.split(host_vars.get("ansible_ssh_common_args", ""))
    assert words[::2] == ["-o"] * (len(words) // 2) and len(words) % 2 == 0, words
    return dict(word.split("=", 1) for word in words[1::2])


def proxy_command(host_vars):
    """The ssh command that hops through the bastion, as ssh and the shell will split it."""
    return shlex.split(ssh_options(host_vars)["ProxyCommand"])


def option(command, flag):
    return command[command.index(flag) + 1]


def test_provisioned_stack_is_grouped_by_role_and_reachable(ec2, inventory):
    live = build_stack(ec2, "live")

    listing = inventory.list({"stack_name": "live"})

    assert hosts_of(listing, "bastion") == ["live-bastion"]
    assert hosts_of(listing, "frontend") == ["live-frontend"]
    assert hosts_of(listing, "backend") == ["live-backend"]
    assert hosts_of(listing, "stack_live") == ["live-backend", "live-bastion", "live-frontend"]
    hostvars = listing["_meta"]["hostvars"]
    # the bastion at its public address; every host behind it at its private address, the
    # frontend too (its group lets SSH in from the bastion's group, which AWS matches
    # against private addresses only: to the Elastic IP, the hop would be refused)
    assert hostvars["live-bastion"]["ansible_host"] == live["bastion"]["PublicIpAddress"]
    assert hostvars["live-frontend"]["ansible_host"] == live["frontend"]["PrivateIpAddress"]
    assert hostvars["live-frontend"]["ec2_public_ip_address"] == live["frontend"]["ElasticIp"]
    assert hostvars["live-backend"]["ansible_host"] == live["backend"]["PrivateIpAddress"]
    assert {name: v["ansible_user"] for name, v in hostvars.items()} == dict.fromkeys(hostvars, "admin")
    assert "ProxyCommand" not in ssh_options(hostvars["live-bastion"])
    # every other host through the bastion: the security groups let SSH in from it only,
    # also on the frontend, which has a public address
    for role in ("frontend", "backend"):
        assert proxy_command(hostvars[f"live-{role}"])[-1] == f"admin@{live['bastion']['PublicIpAddress']}"
    backend = hostvars["live-backend"]
    assert backend["livestream_host_role"] == "backend" and backend["livestream_host_stack"] == "live"
    assert backend["livestream_host_bastion"] == "live-bastion"
    assert backend["ec2_instance_id"] == live["backend"]["InstanceId"]
    assert backend["ec2_tags"]["Role"] == "backend"
    assert backend["ec2_placement"]["region"] == "us-east-1"


def test_graph_shows_the_stack_and_its_roles(ec2, inventory):
    build_stack(ec2, "live")

    proc = inventory.run("-i", str(inventory.write({"stack_name": "live"})), "--graph", "stack_live")

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["@stack_live:", "|--live-backend", "|--live-bastion", "|--live-frontend"]


def test_hop_through_bastion_carries_its_user_port_and_key(ec2, inventory, tmp_path):
    live = build_stack(ec2, "live", images={"backend": UBUNTU_AMI})
    # a space and a % in the key's path must survive ssh's and the shell's parsing
    bastion_key = str(tmp_path / "bastion keys" / "jump%1.pem")

    listing = inventory.list({
        "stack_name": "live",
        "ssh_private_key_file": "/keys/hosts.pem",
        "bastion_user": "jumper",
        "bastion_port": 2222,
        "bastion_private_key_file": bastion_key,
        "bastion_ssh_args": ["-o", "ConnectTimeout=7"],
    })

    hostvars = listing["_meta"]["hostvars"]
    backend = hostvars["live-backend"]
    assert backend["ansible_user"] == "ubuntu"  # its own image's user, not the bastion's
    assert backend["ansible_ssh_private_key_file"] == "/keys/hosts.pem"
    hop = proxy_command(backend)
    assert hop[:3] == ["ssh", "-W", "%h:%p"] and "-q" not in hop  # the hop's errors say which hop failed
    assert hop[-1] == f"jumper@{live['bastion']['PublicIpAddress']}"
    assert option(hop, "-p") == "2222"
    assert option(hop, "-i").replace("%%", "%") == bastion_key
    assert "ConnectTimeout=7" in hop
    # the bastion itself is reached the same way as the hop reaches it
    bastion = hostvars["live-bastion"]
    assert (bastion["ansible_user"], bastion["ansible_port"]) == ("jumper", 2222)
    assert bastion["ansible_ssh_private_key_file"] == bastion_key
    assert "ansible_port" not in hostvars["live-frontend"]


def test_ansible_hands_the_hop_command_to_ssh_intact(ec2, inventory, tmp_path):
    """ansible -> ssh -> shell -> hop: a stand-in `ssh` on PATH records the hop's argv
    and exits, so nothing is contacted (the addresses are moto's, not real hosts)."""
    live = build_stack(ec2, "live")
    record = tmp_path / "hop-argv.json"
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "ssh").write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\nsys.exit(255)\n"
    )
    (fake_bin / "ssh").chmod(0o755)
    key = tmp_path / "my keys" / "jump%1.pem"
    config = inventory.write({"stack_name": "live", "bastion_port": 2200, "bastion_private_key_file": str(key)})

    proc = subprocess.run(
        ["ansible", "live-backend", "-i", str(config), "-m", "ansible.builtin.ping",
         "-e", f"ansible_ssh_executable={shutil.which('ssh')}", "-e", "ansible_ssh_retries=0"],
        cwd=tmp_path, env={**inventory.env, "PATH": f"{fake_bin}:{os.environ['PATH']}",
                           "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "cp")},
        capture_output=True, text=True, timeout=120, check=False,
    )

    assert "UNREACHABLE" in proc.stdout, proc.stdout + proc.stderr
    known_hosts = tmp_path / ".livestream.aws" / "live" / "known_hosts"  # HOME is the test's
    assert json.loads(record.read_text()) == [
        "-W", f"{live['backend']['PrivateIpAddress']}:22", "-p", "2200",
        "-i", str(key), "-o", "IdentitiesOnly=yes",
        "-o", f"HostKeyAlias={live['bastion']['InstanceId']}", "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "StrictHostKeyChecking=accept-new", f"admin@{live['bastion']['PublicIpAddress']}",
    ]


def test_host_keys_are_kept_per_stack_under_each_instance_id(ec2, inventory, tmp_path):
    """A first connection never prompts (accept-new), a re-created instance is a new entry (its
    new ID), and the keys live in the stack's own file, whose directory the plugin makes."""
    live = build_stack(ec2, "live")

    hostvars = inventory.list({"stack_name": "live"})["_meta"]["hostvars"]

    known_hosts = tmp_path / ".livestream.aws" / "live" / "known_hosts"
    assert oct(known_hosts.parent.stat().st_mode & 0o777) == "0o700"
    for role in ("bastion", "frontend", "backend"):
        options = ssh_options(hostvars[f"live-{role}"])
        assert options["HostKeyAlias"] == live[role]["InstanceId"], role
        assert (options["UserKnownHostsFile"], options["StrictHostKeyChecking"]) == (str(known_hosts), "accept-new")
    hop = proxy_command(hostvars["live-backend"])
    assert f"HostKeyAlias={live['bastion']['InstanceId']}" in hop and f"UserKnownHostsFile={known_hosts}" in hop

    strict = inventory.list({"stack_name": "live", "known_hosts_file": str(tmp_path / "mine"), "host_key_checking": "yes"})
    assert ssh_options(strict["_meta"]["hostvars"]["live-bastion"])["StrictHostKeyChecking"] == "yes"
    assert ssh_options(strict["_meta"]["hostvars"]["live-bastion"])["UserKnownHostsFile"] == str(tmp_path / "mine")
    own = inventory.list({"stack_name": "live", "known_hosts_file": ""})["_meta"]["hostvars"]
    assert "HostKeyAlias" not in ssh_options(own["live-bastion"]) and "HostKeyAlias" not in proxy_command(own["live-backend"])


def test_private_address_mode_uses_private_ips_and_still_hops_to_the_private_subnet(ec2, inventory):
    live = build_stack(ec2, "live")

    listing = inventory.list({"stack_name": "live", "use_private_addresses": True})

    hostvars = listing["_meta"]["hostvars"]
    for role in ("bastion", "frontend", "backend"):
        assert hostvars[f"live-{role}"]["ansible_host"] == live[role]["PrivateIpAddress"]
    for role in ("frontend", "backend"):
        assert proxy_command(hostvars[f"live-{role}"])[-1] == f"admin@{live['bastion']['PrivateIpAddress']}"


def test_no_hop_when_the_controller_routes_to_the_private_subnet(ec2, inventory):
    build_stack(ec2, "live", roles=("frontend", "backend"))

    listing = inventory.list({"stack_name": "live", "use_private_addresses": True, "jump_through_bastion": False})

    assert "ProxyCommand" not in ssh_options(listing["_meta"]["hostvars"]["live-backend"])
    assert "ProxyCommand" not in ssh_options(listing["_meta"]["hostvars"]["live-frontend"])


def test_two_stacks_in_one_account_are_kept_apart(ec2, inventory):
    build_stack(ec2, "live")
    staging = build_stack(ec2, "staging-2", cidr="10.1")
    live_config = inventory.write({"stack_name": "live"}, "live.livestream.yml")
    staging_config = inventory.write({"stack_name": "staging-2"}, "staging.livestream.yml")

    staging_only = inventory.list(staging_config)
    both = inventory.list(live_config, "-i", str(staging_config))

    assert sorted(staging_only["_meta"]["hostvars"]) == ["staging-2-backend", "staging-2-bastion", "staging-2-frontend"]
    assert hosts_of(both, "stack_live") == ["live-backend", "live-bastion", "live-frontend"]
    assert hosts_of(both, "stack_staging_2") == ["staging-2-backend", "staging-2-bastion", "staging-2-frontend"]
    # each private host hops through its own stack's bastion
    hop = proxy_command(both["_meta"]["hostvars"]["staging-2-backend"])
    assert hop[-1] == f"admin@{staging['bastion']['PublicIpAddress']}"


def test_stopped_and_terminated_instances_are_left_out(ec2, inventory):
    live = build_stack(ec2, "live")
    ec2.stop_instances(InstanceIds=[live["frontend"]["InstanceId"]])
    ec2.terminate_instances(InstanceIds=[live["backend"]["InstanceId"]])

    listing = inventory.list({"stack_name": "live"})

    assert sorted(listing["_meta"]["hostvars"]) == ["live-bastion"]


def test_instances_sharing_a_name_get_distinct_host_names(ec2, inventory):
    live = build_stack(ec2, "live")
    subnet = live["frontend"]["SubnetId"]
    second = ec2.run_instances(ImageId=DEBIAN_AMI, MinCount=1, MaxCount=1, SubnetId=subnet,
                               TagSpecifications=_tags("live", "frontend"))["Instances"][0]

    listing = inventory.list({"stack_name": "live"})

    assert hosts_of(listing, "frontend") == sorted(
        [f"live-frontend-{live['frontend']['InstanceId']}", f"live-frontend-{second['InstanceId']}"]
    )


def test_hosts_are_found_in_every_configured_region(aws, ec2, inventory):
    import boto3

    build_stack(ec2, "live", roles=("bastion",))
    west = boto3.client("ec2", endpoint_url=aws.url, region_name="us-west-2")
    west_instance = west.run_instances(ImageId=DEBIAN_AMI, MinCount=1, MaxCount=1,
                                       TagSpecifications=_tags("live", "frontend"))["Instances"][0]

    east_only = inventory.list({"stack_name": "live"})
    config = inventory.write({"stack_name": "live", "regions": ["us-east-1", "{{ 'us-west-' ~ 2 }}"]})
    proc = inventory.run("-i", str(config), "--list")
    both = plain(json.loads(proc.stdout))

    assert sorted(east_only["_meta"]["hostvars"]) == ["live-bastion"]
    assert "DEPRECATION" not in proc.stderr, proc.stderr
    assert hosts_of(both, "frontend") == ["live-frontend"]
    frontend = both["_meta"]["hostvars"]["live-frontend"]
    assert frontend["ec2_instance_id"] == west_instance["InstanceId"]
    assert frontend["ec2_placement"]["region"] == "us-west-2"


def test_constructed_options_add_variables_and_groups(ec2, inventory):
    build_stack(ec2, "live", images={"frontend": UBUNTU_AMI})

    listing = inventory.list({
        "stack_name": "live",
        "compose": {"ansible_user": "'deploy' if livestream_host_role == 'frontend' else ansible_user",
                    "stream_origin": "ec2_private_ip_address"},
        "groups": {"ubuntu_hosts": "livestream_host_os_family == 'ubuntu'"},
        "keyed_groups": [{"key": "ec2_instance_type", "prefix": "type"}],
        "strict": True,
    })

    hostvars = listing["_meta"]["hostvars"]
    assert hostvars["live-frontend"]["ansible_user"] == "deploy"
    assert hostvars["live-backend"]["ansible_user"] == "admin"
    assert hostvars["live-backend"]["stream_origin"] == hostvars["live-backend"]["ansible_host"]
    assert hosts_of(listing, "ubuntu_hosts") == ["live-frontend"]
    instance_type = hostvars["live-frontend"]["ec2_instance_type"].replace(".", "_")
    assert hosts_of(listing, f"type_{instance_type}") == ["live-backend", "live-bastion", "live-frontend"]


def test_user_follows_the_image_family_then_the_tag_then_the_default(ec2, inventory):
    live = build_stack(ec2, "live", images={"frontend": UBUNTU_AMI, "bastion": "ami-0fake00000000000bad"})
    golden = ec2.create_image(InstanceId=live["frontend"]["InstanceId"], Name="golden-20250101")["ImageId"]
    ec2.terminate_instances(InstanceIds=[live["backend"]["InstanceId"]])
    backend = ec2.run_instances(ImageId=golden, MinCount=1, MaxCount=1, SubnetId=live["backend"]["SubnetId"],
                                TagSpecifications=_tags("live", "backend"))["Instances"][0]
    config = {"stack_name": "live", "users": {"ubuntu": "ops"}, "default_user": "root"}

    unknown = inventory.list(config)["_meta"]["hostvars"]
    ec2.create_tags(Resources=[backend["InstanceId"]], Tags=[{"Key": "AmiFamily", "Value": "ubuntu2404"}])
    tagged = inventory.list(config)["_meta"]["hostvars"]

    # the impostor image is named like Debian: the name decides the login, not the owner
    assert unknown["live-bastion"]["ansible_user"] == "admin"
    assert unknown["live-frontend"]["ansible_user"] == "ops"
    assert unknown["live-backend"]["ansible_user"] == "root"
    assert tagged["live-backend"]["ansible_user"] == "ops"
    assert tagged["live-backend"]["livestream_host_os_family"] == "ubuntu"


def test_cached_inventory_makes_no_api_call(aws, ec2, inventory, tmp_path):
    build_stack(ec2, "live")
    config = {"stack_name": "live", "cache": True, "cache_plugin": "ansible.builtin.jsonfile",
              "cache_connection": str(tmp_path / "cache"), "cache_timeout": 600}
    first = inventory.list(config)
    ec2.terminate_instances(InstanceIds=[first["_meta"]["hostvars"]["live-backend"]["ec2_instance_id"]])

    aws.start_recording()
    cached = inventory.list(config)
    cached_calls = aws.stop_recording()
    aws.start_recording()
    flushed = inventory.list(config, "--flush-cache")
    flushed_calls = aws.stop_recording()

    assert cached_calls == []
    assert cached["_meta"]["hostvars"] == first["_meta"]["hostvars"]
    # --flush-cache reads AWS again and sees the change
    assert len(flushed_calls) == 2  # one DescribeInstances, one DescribeImages
    assert sorted(flushed["_meta"]["hostvars"]) == ["live-bastion", "live-frontend"]


def test_cache_of_another_stack_is_not_reused(ec2, inventory, tmp_path):
    build_stack(ec2, "live")
    build_stack(ec2, "other", cidr="10.1")
    config = {"cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "cache")}
    inventory.list({"stack_name": "live", **config})

    listing = inventory.list({"stack_name": "other", **config})

    assert hosts_of(listing, "stack_other") == ["other-backend", "other-bastion", "other-frontend"]
    assert "stack_live" not in listing


def test_example_config_reads_the_stack_from_the_environment(ec2, inventory):
    build_stack(ec2, "demo")

    proc = inventory.run("-i", str(ROOT / "inventory" / "aws.livestream.yml"), "--graph",
                         env={"LIVESTREAM_STACK": "demo", "ANSIBLE_INVENTORY_ENABLED": "ansible.builtin.auto"})

    assert proc.returncode == 0, proc.stderr
    assert "@stack_demo:" in proc.stdout and "|--demo-backend" in proc.stdout


def test_stack_without_instances_is_one_line_and_empty_groups(ec2, inventory):
    """Before provisioning (site.yml's first read of the inventory) this is normal: one
    warning line, not the error every other inventory plugin would then report on too."""
    build_stack(ec2, "live")

    config = inventory.write({"stack_name": "empty", "regions": ["us-east-1", "eu-west-1"]})
    every_parser = "livestream.aws.stack, ansible.builtin.yaml, ansible.builtin.ini, ansible.builtin.auto"
    proc = inventory.run("-i", str(config), "--list", "--export", env={"ANSIBLE_INVENTORY_ENABLED": every_parser})

    assert proc.returncode == 0, proc.stderr
    said = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(said) == 1, said
    assert "stack 'empty' has no running or pending instances in us-east-1, eu-west-1" in said[0]
    listing = plain(json.loads(proc.stdout))
    assert all(not listing.get(role, {}).get("hosts") for role in ("bastion", "frontend", "backend"))
    # which stack it looks for, for every play (site.yml checks it before provisioning)
    assert listing["all"]["vars"]["livestream_inventory_stack"] == "empty"


def test_private_host_without_bastion_is_an_error_naming_it(ec2, inventory):
    build_stack(ec2, "live", roles=("frontend", "backend"))

    message = inventory.error({"stack_name": "live"})

    assert "host 'live-backend' of stack 'live' has no public address" in message
    assert "no running bastion" in message


def test_public_host_without_bastion_is_reached_directly(ec2, inventory):
    live = build_stack(ec2, "live", roles=("frontend",))

    hostvars = inventory.list({"stack_name": "live"})["_meta"]["hostvars"]

    assert hostvars["live-frontend"]["ansible_host"] == live["frontend"]["ElasticIp"]
    assert "ProxyCommand" not in ssh_options(hostvars["live-frontend"])


def test_missing_credentials_is_a_clear_error(ec2, inventory, tmp_path):
    build_stack(ec2, "live")
    no_credentials = {
        "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
        # else boto3 asks the instance metadata service, an address outside the lab
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    env = {key: value for key, value in inventory.env.items() if key not in no_credentials}
    env.update({key: value for key, value in no_credentials.items() if value})
    inventory.env = env

    message = inventory.unreadable({"stack_name": "live"})

    assert "No AWS credentials to look up stack 'live' in us-east-1" in message


def test_bad_stack_name_is_refused(aws, inventory):
    message = inventory.unreadable({"stack_name": "Live_Stream"})

    assert "stack name 'Live_Stream' (stack_name) is not valid" in message


def test_playbook_finds_hosts_provisioned_earlier_in_the_same_run(aws, inventory, ansible, tmp_path):
    """site.yml's shape: the stack does not exist when the run starts (the plugin fails,
    Ansible goes on with localhost), provisioning creates it, refresh_inventory finds it."""
    provision = tmp_path / "provision.py"
    provision.write_text(
        "import sys, boto3\n"
        f"sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(ROOT / 'tests')!r}]\n"
        "from test_inventory import build_stack\n"
        f"build_stack(boto3.client('ec2', endpoint_url={aws.url!r}), 'live')\n"
    )
    plays = [
        {"name": "Provision", "hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "Create the stack", "ansible.builtin.command": f"{sys.executable} {provision}",
             "changed_when": True},
            {"name": "Find its hosts", "ansible.builtin.meta": "refresh_inventory"},
        ]},
        {"name": "Configure", "hosts": "backend", "gather_facts": False, "tasks": [
            {"name": "Address", "ansible.builtin.debug": {"var": "ansible_host"}},
        ]},
    ]

    result = ansible.playbook(plays, inventory=inventory.write({"stack_name": "live"}))

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.task("Address", host="live-backend")["ansible_host"].startswith("10.0.2.")
