# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Every rule a stack's inputs must follow, in one place.

The modules check their own inputs with these functions before their first API call, and
``livestream.aws.stack_validate`` checks all of them at once before a playbook creates
anything. Each function returns a list of messages (empty when the input is good); each
message names the bad value.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.livestream.aws.plugins.module_utils.naming import stack_name_error

# AWS accepts VPC and subnet blocks between /16 and /28.
LARGEST_PREFIX = 16
SMALLEST_PREFIX = 28

DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# what EC2's ImportKeyPair takes, and the OpenSSH types it refuses
SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa")
EC2_REFUSED_KEY_TYPES = ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")


def parse_cidr(what, value, errors):
    """An IPv4 network from ``value``, or None with the reason appended to ``errors``."""
    text = str(value or "")
    if "/" not in text:
        hint = f" (did you mean {text}/32?)" if _is_ipv4_address(text) else ""
        errors.append(f"{what} {value!r} is not a CIDR block{hint}")
        return None
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        errors.append(f"{what} {value!r} is not a CIDR block")
        return None
    if network.version != 4:
        errors.append(f"{what} {value!r} is IPv6: only IPv4 CIDR blocks are supported")
        return None
    if str(network) != text:
        errors.append(f"{what} {value!r} has host bits set (did you mean {network}?)")
        return None
    return network


def _is_ipv4_address(text):
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def network_errors(vpc_cidr, public_subnet_cidr, private_subnet_cidr):
    """The VPC block is usable and holds both subnets, which do not overlap."""
    errors = []
    vpc = parse_cidr("VPC CIDR", vpc_cidr, errors)
    subnets = {
        "public subnet CIDR": parse_cidr("public subnet CIDR", public_subnet_cidr, errors),
        "private subnet CIDR": parse_cidr("private subnet CIDR", private_subnet_cidr, errors),
    }
    for what, network in [("VPC CIDR", vpc)] + list(subnets.items()):
        if network is not None and not LARGEST_PREFIX <= network.prefixlen <= SMALLEST_PREFIX:
            errors.append(
                f"{what} {str(network)!r} has a /{network.prefixlen} prefix: AWS accepts /{LARGEST_PREFIX} to /{SMALLEST_PREFIX}"
            )
    if vpc is not None:
        for what, network in subnets.items():
            if network is not None and not network.subnet_of(vpc):
                errors.append(f"{what} {str(network)!r} is outside the VPC CIDR {str(vpc)!r}")
    public, private = subnets.values()
    if public is not None and private is not None and public.overlaps(private):
        errors.append(f"public subnet CIDR {str(public)!r} overlaps private subnet CIDR {str(private)!r}")
    return errors


# the frontend's other ports: SSH, HTTP, HTTPS, RTMP from the backend, the metrics the backend and
# the bastion push (security_groups.METRICS_PUSH_PORT)
FRONTEND_PORTS = {22: "SSH", 80: "HTTP", 443: "HTTPS", 1935: "RTMP from the backend", 9101: "metrics push"}


def ingest_cidrs(params):
    """Who may publish over RTMPS: ingest_cidrs when given, else the admin CIDRs."""
    return params["admin_cidrs"] if params.get("ingest_cidrs") is None else params["ingest_cidrs"]


def access_errors(params):
    """SSH to the bastion is open to the admin CIDRs only, and to the world only on request;
    RTMPS ingest to the ingest CIDRs (anyone, when said explicitly), on a port of its own."""
    errors = []
    if not params["admin_cidrs"]:
        errors.append(
            "admin CIDRs are empty: nobody could reach the bastion over SSH; give the addresses "
            "you administer from, e.g. ['203.0.113.7/32']"
        )
    for cidr in params["admin_cidrs"] or []:
        network = parse_cidr("admin CIDR", cidr, errors)
        if network is not None and network.prefixlen == 0 and not params["allow_ssh_from_anywhere"]:
            errors.append(
                f"admin CIDR {cidr!r} opens SSH to the whole internet: list your own addresses, "
                "or opt in explicitly with allow_ssh_from_anywhere (livestream_allow_ssh_from_anywhere)"
            )
    for cidr in params.get("ingest_cidrs") or []:
        parse_cidr("ingest CIDR (livestream_ingest_cidrs)", cidr, errors)
    port = params.get("ingest_port", 1936)
    if not 1 <= port <= 65535:
        errors.append(f"ingest port {port} (livestream_ingest_port) is not a TCP port (1-65535)")
    elif port in FRONTEND_PORTS:
        errors.append(
            f"ingest port {port} (livestream_ingest_port) is the frontend's {FRONTEND_PORTS[port]} port: "
            "give RTMPS a port of its own (default 1936)"
        )
    return errors


def domain_errors(domain, hosted_zone):
    """Both names are DNS names, and the domain lies in the hosted zone."""
    errors = []
    names = {}
    for what, value in (("domain", domain), ("hosted zone", hosted_zone)):
        name = normalize_dns_name(value)
        labels = name.split(".")
        if len(name) > 253 or len(labels) < 2 or not all(DNS_LABEL.match(label) for label in labels):
            errors.append(f"{what} {value!r} is not a valid DNS name")
        else:
            names[what] = name
    if len(names) == 2:
        name, zone = names["domain"], names["hosted zone"]
        if name != zone and not name.endswith("." + zone):
            errors.append(f"domain {domain!r} is not inside the hosted zone {hosted_zone!r}")
    return errors


# CloudFront's values: a region name; a header value of printable ASCII without spaces here
REGION_NAME = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")
ORIGIN_SECRET = re.compile(r"^[A-Za-z0-9._+/=-]{32,256}$")
CDN_KINDS = ("none", "cloudfront")
# below half a second, requests per viewer and nginx-rtmp's millisecond timestamps decide more than the
# encoder (roles/streams checks the same bound)
MIN_FRAGMENT_SECONDS = 0.5


def cdn_errors(params):
    """The CDN's settings: a known kind; with CloudFront, a secret for the origin header long
    and plain enough (never shown in the message), a region for Origin Shield, whole-second
    fragments and a wait that is a duration."""
    errors = []
    kind = params.get("cdn", "cloudfront")
    if kind not in CDN_KINDS:
        errors.append(f"CDN {kind!r} (livestream_cdn) is not one of {', '.join(CDN_KINDS)}")
        return errors
    if kind == "none" or params.get("state", "present") == "absent":
        return errors
    if not ORIGIN_SECRET.match(str(params.get("origin_secret") or "")):
        errors.append("the origin secret (origin_secret, livestream_cdn_origin_secret) must be 32 to 256 letters, "
                      "digits or ._+/=- (CloudFront sends it as a header value, the frontend compares it)")
    region = params.get("origin_shield_region") or ""
    if region and not REGION_NAME.match(region):
        errors.append(f"Origin Shield region {region!r} (origin_shield_region, livestream_cdn_origin_shield_region) "
                      "is not a region name such as eu-west-1")
    if float(params.get("fragment_seconds") or 0) < MIN_FRAGMENT_SECONDS:
        errors.append(f"fragment length {params.get('fragment_seconds')!r} (fragment_seconds, "
                      f"livestream_hls_fragment_seconds) must be {MIN_FRAGMENT_SECONDS} s or more")
    if int(params.get("wait_timeout") or 0) < 0:
        errors.append(f"wait timeout {params.get('wait_timeout')!r} (wait_timeout, livestream_cdn_wait_seconds) "
                      "is negative")
    return errors


def normalize_dns_name(value):
    """Lower case, no trailing dot: how names are compared."""
    return str(value or "").strip().rstrip(".").lower()


def ssh_public_key_errors(key):
    """One OpenSSH public key line (what ``ssh-keygen`` writes to ``*.pub``) of a type EC2
    imports: RSA or ED25519 (EC2 refuses ECDSA keys)."""
    parts = str(key or "").split()
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES + EC2_REFUSED_KEY_TYPES \
            or not re.match(r"^[A-Za-z0-9+/]+={0,2}$", parts[1]):
        shown = str(key or "")[:40]
        return [f"SSH public key {shown!r} (ssh_public_key, livestream_ssh_public_key_file) is not an OpenSSH "
                "public key (expected e.g. 'ssh-ed25519 AAAA...')"]
    if parts[0] in EC2_REFUSED_KEY_TYPES:
        return [f"SSH public key of type {parts[0]!r} (ssh_public_key, livestream_ssh_public_key_file): EC2 imports "
                "RSA and ED25519 keys only; make one with ssh-keygen -t ed25519"]
    return []


def stack_errors(name):
    error = stack_name_error(name)
    return [error] if error else []


def check_mode_only_errors(module, *options):
    """Options that may be left out in check mode only (they name a resource an earlier step
    creates), and that are missing outside it."""
    if module.check_mode:
        return []
    return [f"{option} is required (it may only be left out in check mode)" for option in options if not module.params[option]]


def fail_on_errors(module, errors):
    """Stop the module, before any API call, with every problem found."""
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)
