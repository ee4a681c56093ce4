"""livestream.aws.ssh_diagnosis on what ssh says when it fails, as captured on the lab's
stack (the messages of ansible.builtin.wait_for_connection, ssh's words in them verbatim)."""

from __future__ import annotations

import shlex

import pytest

from ansible_collections.livestream.aws.plugins.filter.ssh_diagnosis import ssh_diagnosis

BASTION, BACKEND = "198.18.136.2", "10.166.2.4"
KNOWN_HOSTS = "/home/me/.livestream.aws/live/known_hosts"
HOP = ("ssh -W %h:%p -p 22 -i /home/me/.ssh/id_ed25519 -o IdentitiesOnly=yes -o HostKeyAlias=i-79c4d0fed9ba8912a "
       f"-o UserKnownHostsFile={KNOWN_HOSTS} -o StrictHostKeyChecking=accept-new admin@{BASTION}")
BACKEND_ARGS = (f"-o HostKeyAlias=i-c413a00be4ec43738 -o UserKnownHostsFile={KNOWN_HOSTS} "
                f"-o StrictHostKeyChecking=accept-new -o {shlex.quote('ProxyCommand=' + HOP)}")
BASTION_ARGS = f"-o HostKeyAlias=i-79c4d0fed9ba8912a -o UserKnownHostsFile={KNOWN_HOSTS} -o StrictHostKeyChecking=accept-new"
PREFIX = "timed out waiting for ping module test: Failed to connect to the host via ssh: "


def bastion(msg, **settings):
    return ssh_diagnosis(PREFIX + msg, "live-bastion", BASTION, ssh_args=BASTION_ARGS, **settings)


def backend(msg, **settings):
    return ssh_diagnosis(PREFIX + msg, "live-backend", BACKEND, ssh_args=BACKEND_ARGS, **settings)


def test_a_timeout_to_the_bastion_points_at_the_admin_cidrs_and_may_be_a_boot():
    found = bastion(f"ssh: connect to host {BASTION} port 22: Connection timed out", admin_cidrs=["203.0.113.7/32"])

    assert found["hop"] == "direct" and found["may_be_booting"]
    assert found["message"].startswith(f"live-bastion: this machine could not reach {BASTION}:22 (Connection timed out)."
                                       f" ssh said: ssh: connect to host {BASTION} port 22: Connection timed out")
    assert "livestream_admin_cidrs (203.0.113.7/32)" in found["message"]


def test_a_timeout_on_the_hop_of_a_private_host_names_the_bastion():
    found = backend(f"ssh: connect to host {BASTION} port 22: Connection timed out\r\n"
                    "kex_exchange_identification: Connection closed by remote host\r\n"
                    "Connection closed by UNKNOWN port 65535")

    assert found["hop"] == "bastion"
    assert f"this machine could not reach the bastion {BASTION}:22" in found["message"]
    assert "livestream_admin_cidrs (none given to this run)" in found["message"]


def test_the_bastion_that_cannot_reach_the_host_points_at_its_security_group():
    found = backend("channel 0: open failed: connect failed: No route to host\r\nstdio forwarding failed\r\n"
                    "kex_exchange_identification: Connection closed by remote host\r\n"
                    "Connection closed by UNKNOWN port 65535")

    assert found["hop"] == "through the bastion" and found["may_be_booting"]
    assert found["message"].startswith(f"live-backend: the bastion {BASTION} could not reach {BACKEND}:22 "
                                       "(No route to host)")
    assert "security group does not allow ssh from the bastion's group" in found["message"]


@pytest.mark.parametrize("at,host", [("backend", BACKEND), ("bastion", BASTION)])
def test_a_refused_key_cannot_be_mended_by_waiting_and_names_the_key_settings(at, host):
    found = backend(f"admin@{host}: Permission denied (publickey).", key_file="/home/me/.ssh/other",
                    public_key_file="~/.ssh/id_ed25519.pub")

    assert found["hop"] == "login" and not found["may_be_booting"]
    where = "the bastion " + BASTION if at == "bastion" else BACKEND
    assert found["message"].startswith(f"live-backend: the login on {where} was refused (as admin)")
    assert "the private key ssh offers (/home/me/.ssh/other)" in found["message"]
    assert "livestream_ssh_public_key_file: ~/.ssh/id_ed25519.pub" in found["message"]


@pytest.mark.parametrize("alias,whose", [("i-c413a00be4ec43738", "live-backend's"), ("i-79c4d0fed9ba8912a", "the bastion's")])
def test_a_changed_host_key_says_whose_and_how_to_forget_it(alias, whose):
    found = backend(f"Host key for {alias} has changed and you have requested strict checking.\r\n"
                    "Host key verification failed.")

    assert found["hop"] == "login" and not found["may_be_booting"]
    assert found["message"].startswith(f"live-backend: {whose} host key ({alias}) is not the one kept in {KNOWN_HOSTS}")
    assert f"ssh-keygen -R {alias} -f {KNOWN_HOSTS}" in found["message"]


@pytest.mark.parametrize("closed", ["kex_exchange_identification: Connection closed by remote host\r\n"
                                    "Connection closed by UNKNOWN port 65535",
                                    "kex_exchange_identification: read: Connection reset by peer\r\n"
                                    "Connection reset by UNKNOWN port 65535"])
def test_a_host_that_closes_before_its_greeting_after_failed_logins_names_the_key_and_stops_the_wait(closed):
    """Debian 13's sshd (OpenSSH 10) after a few logins with the wrong key from the bastion's
    address, as the lab's backend answered the wait's retries."""
    found = backend(closed, key_file="/home/me/.ssh/other", public_key_file="/home/me/.ssh/id_ed25519.pub")

    assert found["hop"] == "login" and not found["may_be_booting"]
    assert found["message"].startswith(f"live-backend: the login on {BACKEND} was refused before it began")
    assert "PerSourcePenalties" in found["message"] and "the bastion's address" in found["message"]
    assert "the private key ssh offers (/home/me/.ssh/other) is not the private half" in found["message"]
    assert "livestream_ssh_public_key_file: /home/me/.ssh/id_ed25519.pub" in found["message"]


def test_the_bastion_closing_before_its_greeting_is_this_machines_penalty():
    found = bastion(f"kex_exchange_identification: Connection closed by remote host\r\nConnection closed by {BASTION} port 22")

    assert found["message"].startswith(f"live-bastion: the login on {BASTION} was refused before it began")
    assert "this machine's address" in found["message"]


def test_refused_connections_mean_sshd_is_not_up_yet():
    found = bastion(f"ssh: connect to host {BASTION} port 22: Connection refused")

    assert found["may_be_booting"]
    assert "nothing listens on port 22 yet" in found["message"]


def test_words_it_does_not_know_are_passed_on():
    found = bastion("mux_client_request_session: read from master failed: Broken pipe")

    assert found["hop"] == "unknown" and found["may_be_booting"]
    assert "ssh said: mux_client_request_session: read from master failed: Broken pipe" in found["message"]
