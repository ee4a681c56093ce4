"""The bastion, converged on a lab machine: the private subnet's way out, and the only
way in to it."""

import json
import subprocess
from pathlib import Path

LAB = Path("/var/lib/livestream-lab/molecule")
testinfra_hosts = [f"ssh://molecule-bastion?ssh_config={LAB / 'ssh_config'}"]


def lab_settings():
    return json.loads((LAB / "group_vars" / "all.json").read_text())


def test_forwards_packets(host):
    assert host.sysctl("net.ipv4.ip_forward") == 1


def test_masquerades_the_private_subnet_only(host):
    with host.sudo():
        ruleset = host.check_output("nft list ruleset")
    assert "masquerade" in ruleset
    assert lab_settings()["livestream_private_subnet_cidr"] in ruleset


def test_sshd_takes_keys_only(host):
    with host.sudo():
        effective = host.check_output("sshd -T")
    assert "passwordauthentication no" in effective
    assert "allowagentforwarding no" in effective


def test_the_backend_reaches_the_apt_proxy_through_the_bastion():
    """The outcome that matters: from the backend (reached through the bastion), apt works."""
    result = subprocess.run(
        # the image's boot-time update (as on a new instance) may still hold apt's lists
        # lock, retrying its way out: out of the way first, as an admin would
        ["ssh", "-F", str(LAB / "ssh_config"), "molecule-backend",
         "sudo systemctl stop apt-daily.service apt-daily-upgrade.service && "
         "sudo apt-get -q -o Acquire::Retries=0 -o Acquire::http::Timeout=10 update"],
        capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Failed to fetch" not in result.stdout + result.stderr


def test_the_role_waited_for_the_dpkg_lock_and_installed_its_packages(host):
    # prepare.yml held the lock (as unattended-upgrades does on a new instance) while
    # converge started: the role waited for it instead of failing
    with host.sudo():
        holder = host.check_output("journalctl -u molecule-apt-lock --no-pager -o cat")
        released = host.check_output("journalctl -u molecule-apt-lock --no-pager -o short-unix -g released")
        installed = host.check_output(
            "date -d \"$(grep -m1 ' install nftables:' /var/log/dpkg.log | cut -d' ' -f1,2)\" +%s")
    assert "holding the dpkg lock" in holder and "released the dpkg lock" in holder
    # dpkg installed nftables only once the stand-in had let go of the lock (dpkg's log
    # counts in whole seconds)
    assert int(installed) >= int(float(released.split()[0]))
    assert host.package("nftables").is_installed
