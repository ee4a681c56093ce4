"""One region: with only a profile whose region is not the default (no AWS_REGION, no
AWS_DEFAULT_REGION, no livestream_region), provisioning, the inventory and teardown all
work in the profile's region, as a deployer with `aws configure` would run them."""

from __future__ import annotations

from conftest import observer
from provisioning import COMPLETE, PROVISION, TEARDOWN, Inventory, census, counts, stack_vars

REGION = "eu-west-1"


def test_the_playbooks_and_the_inventory_use_the_profiles_region(aws, ansible, tmp_path, monkeypatch):
    # the test's own view of the account, made before the environment names the profile
    in_region, in_default = observer(aws, "ec2", REGION), observer(aws, "ec2", "us-east-1")
    (tmp_path / "config").write_text(f"[profile streaming]\nregion = {REGION}\n")
    (tmp_path / "credentials").write_text("[streaming]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    environment = {"AWS_PROFILE": "streaming", "AWS_CONFIG_FILE": str(tmp_path / "config"),
                   "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials")}
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
        ansible.env.pop(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
        ansible.env[name] = value
    stack = stack_vars(tmp_path, livestream_availability_zone=None)

    created = ansible.playbook(PROVISION, extra_vars=stack)
    assert created.returncode == 0, created.stdout[-3000:]
    assert created.task("Remember the stack for the plays that follow")["ansible_facts"][
        "livestream_provisioned"]["region"] == REGION
    assert counts(in_region, "live") == COMPLETE
    assert not any(census(in_default, "live").values())

    hosts = Inventory(tmp_path).list({"stack_name": "live"})["_meta"]["hostvars"]
    assert len(hosts) == 3 and {host["ec2_placement"]["region"] for host in hosts.values()} == {REGION}

    removed = ansible.playbook(TEARDOWN, extra_vars=stack)
    assert removed.returncode == 0, removed.stdout[-3000:]
    assert not any(census(in_region, "live").values())
