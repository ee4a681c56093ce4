"""The collection as users get it: built into a tarball, installed offline, documented."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from conftest import observer
from livestream_testing import ROOT, outside_the_checkout

GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
MODULES = sorted(p.stem for p in (ROOT / "plugins/modules").glob("*.py") if p.stem != "__init__")
INVENTORY_PLUGINS = sorted(p.stem for p in (ROOT / "plugins/inventory").glob("*.py") if p.stem != "__init__")
FILTERS = sorted(p.stem for p in (ROOT / "plugins/filter").glob("*.py") if p.stem != "__init__")
ROLES = sorted(p.parent.parent.name for p in (ROOT / "roles").glob("*/meta/argument_specs.yml"))


def run(*command: str, env: dict | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    assert proc.returncode == 0, f"{' '.join(command)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run("ansible-galaxy", "collection", "build", "--output-path", str(out), str(ROOT))
    (path,) = out.glob("livestream-aws-*.tar.gz")
    return path


@pytest.fixture(scope="module")
def installed(tarball, tmp_path_factory) -> dict:
    """The tarball installed offline into an empty path; the env that sees only that copy."""
    path = tmp_path_factory.mktemp("collections")
    env = outside_the_checkout({**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(path)})  # not the working tree's link
    run("ansible-galaxy", "collection", "install", "--offline", "--no-deps", "-p", str(path), str(tarball), env=env)
    assert (path / "ansible_collections/livestream/aws/MANIFEST.json").is_file()
    return env


def test_tarball_is_named_after_the_version(tarball):
    assert tarball.name == f"livestream-aws-{GALAXY['version']}.tar.gz"


def test_tarball_ships_the_collection_and_nothing_of_the_workshop(tarball):
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    for needed in ("MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml", "plugins/modules/stack_info.py"):
        assert needed in names
    tops = {name.split("/")[0] for name in names}
    # what a user installs, and nothing else: no venv, checkout link, sanity copy, lab or tests
    assert tops <= {"MANIFEST.json", "FILES.json", "README.md", "requirements.txt", "meta", "plugins", "roles",
                    "playbooks", "inventory", "docs", "changelogs", "prometheus"}, tops
    # the alert rules a user's Prometheus loads
    assert "prometheus/livestream.rules.yml" in names


def test_offline_install_lists_every_plugin(installed):
    listed = json.loads(run("ansible-doc", "-t", "module", "-l", "livestream.aws", "-j", env=installed))
    assert sorted(name.split(".")[-1] for name in listed) == MODULES
    if INVENTORY_PLUGINS:
        listed = json.loads(run("ansible-doc", "-t", "inventory", "-l", "livestream.aws", "-j", env=installed))
        assert sorted(name.split(".")[-1] for name in listed) == INVENTORY_PLUGINS


def test_offline_install_runs_a_module(installed, aws, tmp_path):
    """The installed copy works on its own: stack_info answers from the AWS API."""
    out = run(
        "ansible", "localhost", "-m", "livestream.aws.stack_info", "-a", "name=live",
        "-e", f"ansible_python_interpreter={os.sys.executable}",
        env={**installed, **aws.environment(), "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"},
        cwd=tmp_path,
    )
    assert '"resource_count": 0' in out


def test_the_readmes_commands_deploy_and_tear_down_outside_a_checkout(installed, aws, tmp_path):
    """The README's way with the installed tarball: the shipped inventory configuration copied
    next to one's playbooks, LIVESTREAM_STACK naming the stack, the playbooks by their
    collection names, no ansible.cfg. Against the lab's API (no machines behind it) site.yml
    provisions, prints the new zone's name servers and stops where the domain must resolve
    before the certificate (nothing delegates the test zone); teardown removes it all."""
    collection = Path(installed["ANSIBLE_COLLECTIONS_PATH"].split(":")[0]) / "ansible_collections" / "livestream" / "aws"
    work = tmp_path / "deploy"
    work.mkdir()
    shutil.copy(collection / "inventory" / "aws.livestream.yml", work)
    key = tmp_path / "id_ed25519"
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    env = {name: value for name, value in installed.items() if name != "ANSIBLE_CONFIG"}
    env.update(aws.environment(), HOME=str(tmp_path / "home"), LIVESTREAM_STACK="demo")
    settings = ["-e", "livestream_hosted_zone=example.test", "-e", "livestream_create_hosted_zone=true",
                "-e", '{"livestream_admin_cidrs": ["203.0.113.7/32"]}', "-e", f"livestream_ssh_public_key_file={key}.pub"]

    site = subprocess.run(["ansible-playbook", "-i", "aws.livestream.yml", "livestream.aws.site", *settings,
                           "-e", "livestream_dns_wait_seconds=0"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False)

    assert site.returncode != 0
    assert "hosted zone example.test is served by: " in site.stdout, site.stdout[-3000:]
    assert "livestream_domain demo.example.test does not resolve to the frontend's address" in site.stdout
    ec2 = observer(aws, "ec2")
    tagged = [{"Name": "tag:Stack", "Values": ["demo"]}, {"Name": "instance-state-name", "Values": ["running"]}]
    assert len([i for r in ec2.describe_instances(Filters=tagged)["Reservations"] for i in r["Instances"]]) == 3

    down = subprocess.run(["ansible-playbook", "-i", "aws.livestream.yml", "livestream.aws.teardown", *settings],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False)

    assert down.returncode == 0, down.stdout[-3000:]
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:Stack", "Values": ["demo"]}])["Vpcs"] == []


@pytest.mark.parametrize(
    "kind,name",
    [("module", m) for m in MODULES] + [("inventory", p) for p in INVENTORY_PLUGINS] + [("filter", f) for f in FILTERS]
    + [("role", r) for r in ROLES],
)
def test_every_plugin_documentation_renders(kind, name):
    doc = json.loads(run("ansible-doc", "-t", kind, "-j", f"livestream.aws.{name}"))
    entry = doc[f"livestream.aws.{name}"]
    if kind == "role":
        assert entry["entry_points"]["main"]["short_description"]
        assert entry["entry_points"]["main"]["options"]
        return
    assert entry["doc"]["short_description"]
    if kind in ("module", "filter"):
        assert entry["examples"].strip()
        assert entry["return"]
