"""site.yml's hand-over from provisioning to configuration, against moto."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from livestream_testing import ROOT, outside_the_checkout
from provisioning import PROVISION, census, instances_by_role, route53, stack_vars

SITE = ROOT / "playbooks" / "site.yml"


def inventory_for(tmp_path, stack):
    path = tmp_path / f"{stack}.livestream.yml"
    path.write_text(f"plugin: livestream.aws.stack\nstack_name: {stack}\n")
    return path


def test_site_refuses_an_inventory_that_looks_for_another_stack_before_making_anything(aws, ansible, tmp_path, ec2):
    """Provisioning "live" with an inventory that reads "other" would make a stack the run
    then cannot configure: it stops first, saying which setting to change."""
    result = ansible.playbook(SITE, inventory=inventory_for(tmp_path, "other"), extra_vars=stack_vars(tmp_path, "live"))

    assert result.returncode != 0
    (message,) = result.failure_messages()
    assert "looks for stack other but this run's settings name live" in message
    assert "LIVESTREAM_STACK=live" in message
    assert not any(census(ec2, "live").values())


def test_site_refuses_an_inventory_that_is_not_the_stack_plugin(aws, ansible, tmp_path, ec2):
    result = ansible.playbook(SITE, extra_vars=stack_vars(tmp_path, "live"))  # localhost only

    assert result.returncode != 0
    (message,) = result.failure_messages()
    assert "The inventory is not a livestream.aws.stack configuration: run with -i inventory/aws.livestream.yml" in message
    assert not any(census(ec2, "live").values())


@pytest.mark.parametrize("playbook", ["configure.yml", "rotate_key.yml"])
def test_configure_and_rotate_key_refuse_an_inventory_without_the_stack(aws, ansible, tmp_path, playbook):
    """configure.yml or rotate_key.yml on a stack not provisioned (or another one) would
    configure no host and end green: each says so instead, rotate_key before it writes a new key
    (which no machine would get)."""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    result = ansible.playbook(ROOT / "playbooks" / playbook, inventory=inventory_for(tmp_path, "live"),
                              extra_vars=stack_vars(tmp_path, "live", livestream_credentials_dir=str(credentials),
                                                    livestream_rotate_stream="studio"))

    assert result.returncode != 0
    handover = result.task("The inventory holds one machine of each role of the stack")
    messages = [item["msg"] for item in handover["results"] if item.get("failed")]
    assert len(messages) == 3  # bastion, frontend, backend
    assert "no bastion of stack live: provision it first" in messages[0]
    assert not (credentials / "stream-key-studio").exists()


def test_configure_refuses_a_missing_ca_bundle_for_its_final_check_before_anything(aws, ansible, tmp_path):
    """livestream_verify_ca_path names a file that is not there: said first, naming the
    variable, not as the final check's requests failing after the whole configuration."""
    missing = tmp_path / "no-such-ca.pem"
    result = ansible.playbook(ROOT / "playbooks" / "configure.yml", inventory=inventory_for(tmp_path, "live"),
                              extra_vars=stack_vars(tmp_path, "live", livestream_verify_ca_path=str(missing)))

    assert result.returncode != 0
    (message,) = result.failure_messages()
    assert message.startswith(f"livestream_verify_ca_path: {missing} is not a file on this machine")
    with pytest.raises(KeyError):
        result.task("The inventory holds one machine of each role of the stack")


def test_livestream_stack_names_the_stack_for_playbook_and_inventory(aws, ansible, tmp_path, ec2):
    """One setting, LIVESTREAM_STACK, names the stack for provisioning and for the shipped
    inventory configuration."""
    ansible.env["LIVESTREAM_STACK"] = "demo"
    settings = stack_vars(tmp_path, "demo")
    del settings["livestream_stack_name"]

    result = ansible.playbook(PROVISION, extra_vars=settings)

    assert result.returncode == 0, result.failure_messages()
    assert len(census(ec2, "demo")["instance"]) == 3
    listed = subprocess.run(
        ["ansible-inventory", "-i", str(ROOT / "inventory" / "aws.livestream.yml"), "--list"],
        env=ansible.env, capture_output=True, text=True, check=True,
    )
    groups = json.loads(listed.stdout)
    assert sorted(groups["stack_demo"]["hosts"]) == ["demo-backend", "demo-bastion", "demo-frontend"]


def clone_of_this_checkout(tmp_path) -> Path:
    """What `git clone` of this working tree gives: its tracked and new files, links as links."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout
    clone = tmp_path / "clone"
    subprocess.run(["rsync", "-a", "--from0", "--ignore-missing-args", "--files-from=-", f"{ROOT}/", f"{clone}/"],
                   input=files, check=True)
    return clone


def test_site_yml_runs_from_the_top_of_a_clone(aws, ansible, tmp_path, ec2):
    """`ansible-playbook site.yml` in a clone, with nothing else set up (no ANSIBLE_CONFIG,
    no collections path, no -i): the clone's ansible.cfg names the inventory plugin's
    configuration and the clone is importable as livestream.aws. It gets as far as the
    settings check (which uses the collection's filter), whose typo message proves both."""
    clone = clone_of_this_checkout(tmp_path)
    env = outside_the_checkout({key: value for key, value in ansible.env.items()
                                if key not in ("ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_STDOUT_CALLBACK")})
    env["HOME"] = str(tmp_path / "home")  # no ~/.ansible/collections with another copy
    settings = stack_vars(tmp_path, "live")
    settings["livestream_admin_cidr"] = settings.pop("livestream_admin_cidrs")

    run = subprocess.run(["ansible-playbook", "site.yml", "-e", json.dumps(settings)], cwd=clone, env=env,
                         capture_output=True, text=True, timeout=300, check=False)

    assert run.returncode != 0
    assert "unknown variable livestream_admin_cidr (did you mean livestream_admin_cidrs?)" in run.stdout, run.stdout
    assert "not a livestream.aws.stack configuration" not in run.stdout
    assert not any(census(ec2, "live").values())


def test_site_stops_on_an_inventory_that_cannot_ask_aws_naming_why(aws, ansible, tmp_path, ec2):
    """Without credentials the inventory says so in one line and site.yml stops on it,
    rather than going on to provision a stack it could not find afterwards."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        ansible.env.pop(name)
    ansible.env.update({"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                        "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true"})

    result = ansible.playbook(SITE, inventory=inventory_for(tmp_path, "live"), extra_vars=stack_vars(tmp_path, "live"))

    assert result.returncode != 0
    (message,) = result.failure_messages()
    assert message.startswith("The inventory could not look for the stack: No AWS credentials to look up stack 'live'")
    # one line from the inventory (and Ansible's own, that only localhost is left), no
    # other inventory plugin's failures to parse the file
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len([line for line in warnings if "livestream.aws.stack:" in line]) == 1, warnings
    assert "Failed to parse" not in result.stderr, result.stderr
    assert not any(census(ec2, "live").values())


def test_site_prints_a_new_zones_name_servers_and_stops_before_the_certificate_until_it_is_delegated(
        aws, ansible, tmp_path, ec2):
    """A hosted zone provisioning makes resolves nowhere until its parent delegates to it: the
    run prints its name servers, then waits (here not at all) for the domain to resolve to the
    frontend before configuring anything, and stops saying what to do, naming them."""
    settings = {**stack_vars(tmp_path, "live"), "livestream_dns_wait_seconds": 0}

    result = ansible.playbook(SITE, inventory=inventory_for(tmp_path, "live"), extra_vars=settings)

    assert result.returncode != 0
    servers = route53(aws).get_hosted_zone(Id=result.task("Remember the stack for the plays that follow")
                                           ["ansible_facts"]["livestream_provisioned"]["hosted_zone_id"])
    servers = sorted(servers["DelegationSet"]["NameServers"])
    assert servers
    printed = result.task("The hosted zone's name servers (its parent must delegate to them)")["msg"]
    assert printed[0] == f"hosted zone example.test is served by: {' '.join(servers)}"
    (message,) = result.failure_messages()
    frontend = instances_by_role(ec2, "live")["frontend"]["PublicIpAddress"]
    assert message.startswith(f"livestream_domain live.example.test does not resolve to the frontend's address {frontend}")
    assert f"set its NS records to {', '.join(servers)}, then run again" in message
    # nothing was configured: the run stopped before the first machine was waited for
    assert "Wait 40 seconds for ssh (the private hosts through the bastion)" not in result.stdout
