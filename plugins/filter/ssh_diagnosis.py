# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The livestream.aws.ssh_diagnosis filter: from ssh's own words when a connection failed,
which hop failed (this machine to the bastion, the bastion to a private host, the login on
the host) and its likely causes, naming the settings that fix them."""

from __future__ import annotations

import re
import shlex

DOCUMENTATION = r"""
name: ssh_diagnosis
author: livestream.aws contributors
version_added: "0.1.0"
short_description: Which ssh hop to a stack's host failed, and the likely causes
description:
  - Given the message of a failed connection (C(ansible_failed_result.msg) of
    M(ansible.builtin.wait_for_connection)) and how the host is reached (its address and the ssh
    options the M(livestream.aws.stack) inventory plugin gave it), says which hop failed (this
    machine to the bastion, the bastion to the host, or the login on the host) and the likely
    causes, naming the variables that fix them.
  - Also says whether waiting longer may help (an instance still booting) or not (a key that does
    not match, a host key that changed).
options:
  _input:
    description: The failure message, with ssh's own error text in it.
    type: str
    required: true
  host:
    description: The inventory name of the host.
    type: str
    required: true
  address:
    description: The address ssh connects to (C(ansible_host)).
    type: str
    required: true
  ssh_args:
    description:
      - The host's C(ansible_ssh_common_args), from which the bastion hop (its C(ProxyCommand)), the
        host key alias and the known hosts file are read.
    type: str
    default: ""
  key_file:
    description: The private key ssh offers (C(ansible_ssh_private_key_file)), if one is set.
    type: str
    default: ""
  public_key_file:
    description: The public key the instances were given (C(livestream_ssh_public_key_file)).
    type: str
    default: ""
  admin_cidrs:
    description: The CIDRs the bastion admits ssh from (C(livestream_admin_cidrs)).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Wait for ssh
  block:
    - name: Wait a minute for ssh
      ansible.builtin.wait_for_connection:
        timeout: 60
  rescue:
    - name: Say which hop failed and why
      ansible.builtin.fail:
        msg: >-
          {{ (ansible_failed_result.msg | livestream.aws.ssh_diagnosis(host=inventory_hostname, address=ansible_host,
              ssh_args=ansible_ssh_common_args | default(''))).message }}
"""

RETURN = r"""
_value:
  description: What failed and why.
  type: dict
  contains:
    hop:
      description: C(bastion) (this machine to the bastion), C(through the bastion) (the bastion to the host), C(login) or C(unknown).
      type: str
    message:
      description: The host, the hop, ssh's words and the likely causes, each with what to set.
      type: str
    may_be_booting:
      description: Whether the host may still be booting (waiting longer may help).
      type: bool
"""


def _option(args, name):
    """The value of ssh option ``name`` (``-o Name=value``) in a split argument list."""
    for arg in args:
        if arg.lower().startswith(name.lower() + "="):
            return arg.split("=", 1)[1]
    return None


def _hop_of(ssh_args):
    """The bastion's address from the ProxyCommand, or None for a host reached directly."""
    try:
        args = shlex.split(ssh_args or "")
    except ValueError:
        return None, []
    proxy = _option(args, "ProxyCommand")
    if not proxy:
        return None, args
    destination = shlex.split(proxy)[-1]
    return destination.rsplit("@", 1)[-1], args


def ssh_diagnosis(msg, host, address, ssh_args="", key_file="", public_key_file="", admin_cidrs=()):
    text = str(msg or "")
    bastion, args = _hop_of(ssh_args)
    alias = _option(args, "HostKeyAlias") or address
    known_hosts = _option(args, "UserKnownHostsFile") or "~/.ssh/known_hosts"
    first_hop = bastion or address  # the address this machine connects to
    # ssh's own words: what follows Ansible's "Failed to connect to the host via ssh:"
    said = " ".join(line.strip() for line in text.split("via ssh:", 1)[-1].splitlines() if line.strip())
    cidrs = ", ".join(admin_cidrs) if admin_cidrs else "none given to this run"

    def result(hop, what, causes, may_be_booting):
        lines = [f"{host}: {what}. ssh said: {said}", "Likely causes:"] + [f"- {cause}" for cause in causes]
        return {"hop": hop, "message": "\n".join(lines), "may_be_booting": may_be_booting}

    offered = f"the private key ssh offers ({key_file})" if key_file else "the keys ssh offers (agent, ~/.ssh/id_*)"
    wrong_key = [
        f"{offered} is not the private half of the public key the instances were given "
        f"(livestream_ssh_public_key_file: {public_key_file or 'its default ~/.ssh/id_ed25519.pub'}): point the "
        "inventory's ssh_private_key_file (or ansible_ssh_private_key_file) at it, or add it to ssh-agent",
        "the key pair was replaced after the instance was launched (an instance keeps the key it was launched "
        "with): terminate the instance and provision again, or use the old key",
    ]
    denied = re.search(r"(\S+)@(\S+?): Permission denied", text)
    if denied:
        at_bastion = bool(bastion) and denied.group(2) == bastion
        where = f"the bastion {bastion}" if at_bastion else f"{address}"
        return result("login", f"the login on {where} was refused (as {denied.group(1)})", wrong_key + [
            f"the login user {denied.group(1)} is not the image's (the inventory's users or default_user option)",
        ], False)
    host_key = re.search(r"Host key for (\S+) has changed|No \S+ host key is known for (\S+)", text)
    if host_key or "Host key verification failed" in text:
        name = next((g for g in host_key.groups() if g), alias) if host_key else alias
        whose = "the bastion's" if bastion and name != alias else f"{host}'s"
        return result("login", f"{whose} host key ({name}) is not the one kept in {known_hosts}", [
            f"the file holds another key for {name} (each instance's key is kept under its instance ID, so a "
            "re-created instance gets an entry of its own): if you know why the key changed, remove the old one "
            f"(ssh-keygen -R {name} -f {known_hosts}) and run again; if you do not, someone may be in the path",
            "the inventory's host_key_checking is 'yes' and the key was never put in the file: use accept-new, "
            f"or add the instance's key (from its console output) under {name}",
        ], False)
    if re.search(r"channel \d+: open failed|stdio forwarding failed", text):
        reason = re.search(r"open failed: (?:connect failed: )?([^\r\n]+)", text)
        return result("through the bastion", f"the bastion {bastion} could not reach {address}:22"
                      f"{' (' + reason.group(1).strip() + ')' if reason else ''}", [
                          f"{host} is still booting, or is not running (livestream.aws.stack_info shows its state)",
                          f"{host}'s security group does not allow ssh from the bastion's group: provisioning makes "
                          "that rule and removes any other, so run livestream.aws.provision again",
                      ], True)
    connect = re.search(r"connect to host (\S+) port (\d+): ([^\r\n]+)", text)
    if connect:
        target, reason = connect.group(1), connect.group(3).strip()
        what = f"this machine could not reach {'the bastion ' if bastion else ''}{target}:{connect.group(2)} ({reason})"
        if "refused" in reason.lower():
            return result("bastion" if bastion else "direct", what, [
                f"{target} answers but nothing listens on port 22 yet: the instance is still booting",
                "the port is not 22 (the inventory's bastion_port option, or ansible_port)",
            ], True)
        return result("bastion" if bastion else "direct", what, [
            f"this machine's public address is not in livestream_admin_cidrs ({cidrs}): the bastion's security group "
            "lets ssh in from those only. The address AWS sees is what https://checkip.amazonaws.com shows; "
            "set livestream_admin_cidrs to it as a /32 and run livestream.aws.provision again",
            "the instance is still booting, or stopped (livestream.aws.stack_info shows its state)",
            "a firewall or proxy on this side does not let ssh (port 22) out",
        ], True)
    # OpenSSH 9.8 and later (Debian 13's) refuse an address for a while after logins failed
    # from it (sshd's PerSourcePenalties): ssh then meets a connection closed before sshd's
    # greeting (what failed on the way there is matched above). A private host's logins all
    # come from the bastion's address ("UNKNOWN port": the connection through it was closed).
    if re.search(r"kex_exchange_identification: (?:Connection closed by remote host|read: Connection reset)", text):
        behind = bool(bastion) and "UNKNOWN port" in text
        where = address if behind or not bastion else f"the bastion {bastion}"
        source = "the bastion's address, which every login to a private host comes from" if behind \
            else "this machine's address"
        return result("login", f"the login on {where} was refused before it began (sshd closed the connection "
                      "ahead of its greeting)", [
                          f"logins failed from {source}, and sshd (OpenSSH 9.8 and later: Debian 13's) refuses it "
                          "for a while after (PerSourcePenalties): most likely a key that does not match, tried "
                          "again while waiting, which waiting makes worse: " + wrong_key[0],
                          wrong_key[1],
                      ], False)
    return result("unknown", f"ssh to {address}{' through the bastion ' + bastion if bastion else ''} failed", [
        "the instance is still booting, or stopped (livestream.aws.stack_info shows its state)",
        "see ssh's words above; ansible-playbook -vvvv shows the whole exchange",
    ], True)


class FilterModule:
    def filters(self):
        return {"ssh_diagnosis": ssh_diagnosis}
