"""The internet's services, in the root namespace, and the VPC's resolver.

- apt-cacher-ng: the machines' way to the Debian archive (a package registry; nothing
  else is reachable through it: ForceManaged).
- pebble + pebble-challtestsrv: Let's Encrypt and the public DNS it validates against.
- dnsmasq in the router namespace: AmazonProvidedDNS at the VPC's base address + 2.
- a block in /etc/hosts: the root namespace's tools resolve the lab's names too.

All listen on lab addresses only (the transit address or the VPC resolver address).
"""

from __future__ import annotations

import fcntl
import json
import socket
import ssl
import urllib.request
from pathlib import Path

from . import config
from .config import LabConfig
from .stack import Stack
from .system import alive, run, spawn, wait_for

HOSTS_FILE = Path("/etc/hosts")
LETS_ENCRYPT_CERTIFICATE_SECONDS = 90 * 24 * 3600


def _running(pid_file: Path) -> bool:
    return pid_file.exists() and alive(int(pid_file.read_text().strip() or 0))


def _wait_serving(pid: int, log: Path, address: str, port: int, what: str) -> None:
    def serving():
        if not alive(pid):
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} exited at start:\n{tail}")
        return _listening(address, port)

    wait_for(serving, 20, f"{what} on {address}:{port}")


def _listening(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


# -- apt proxy ----------------------------------------------------------------------

def apt_proxy(lab: LabConfig) -> None:
    home = lab.state_dir / "apt-cacher-ng"
    pid_file = home / "pid"
    if _running(pid_file):
        return
    cache = config.CACHE_ROOT / "apt"  # outlives the lab: the next bring-up is faster
    for path in (home, cache, home / "log"):
        path.mkdir(parents=True, exist_ok=True)
    (home / "acng.conf").write_text("\n".join([
        f"CacheDir: {cache}",
        f"LogDir: {home / 'log'}",
        "SupportDir: /usr/lib/apt-cacher-ng",
        f"BindAddress: {lab.internet_address}",
        f"Port: {config.APT_PROXY_PORT}",
        "Remap-debrep: file:deb_mirror*.gz /debian ; http://deb.debian.org/debian",
        "Remap-secdeb: security.debian.org deb.debian.org/debian-security /debian-security ; "
        "http://deb.debian.org/debian-security",
        # only the Debian archive, never an arbitrary host a machine names
        "ForceManaged: 1",
        "ExThreshold: 4",
        "PassThroughPattern: ^$",
        "",
    ]))
    pid = spawn(["/usr/sbin/apt-cacher-ng", "-c", home, "ForeGround=1", f"PidFile={home / 'acng.pid'}"],
                str(lab.state_dir), home / "run.log")
    pid_file.write_text(str(pid))
    _wait_serving(pid, home / "run.log", str(lab.internet_address), config.APT_PROXY_PORT, "apt-cacher-ng")


# -- ACME -----------------------------------------------------------------------------

def acme(lab: LabConfig) -> None:
    """pebble behind a throwaway TLS CA; its issuing root saved where clients find it."""
    home = lab.state_dir / "acme"
    home.mkdir(parents=True, exist_ok=True)
    address = str(lab.internet_address)
    if not (home / "tls-ca.pem").exists():
        _tls_ca(home, address)
    dns_pid = home / "challtestsrv.pid"
    if not _running(dns_pid):
        pid = spawn(["pebble-challtestsrv", "-dns01", f"{address}:{config.PUBLIC_DNS_PORT}",
                     "-management", f"{address}:{config.PUBLIC_DNS_MANAGEMENT_PORT}",
                     "-http01", "", "-https01", "", "-tlsalpn01", "",
                     # a name the lab does not know must not resolve to anything
                     "-defaultIPv4", "", "-defaultIPv6", ""],
                    str(lab.state_dir), home / "challtestsrv.log")
        dns_pid.write_text(str(pid))
        _wait_serving(pid, home / "challtestsrv.log", address, config.PUBLIC_DNS_MANAGEMENT_PORT, "pebble-challtestsrv")
    pebble_pid = home / "pebble.pid"
    if not _running(pebble_pid):
        (home / "pebble.json").write_text(json.dumps({"pebble": {
            "listenAddress": f"{address}:{config.ACME_PORT}",
            "managementListenAddress": f"{address}:{config.ACME_MANAGEMENT_PORT}",
            "certificate": str(home / "tls-cert.pem"), "privateKey": str(home / "tls-key.pem"),
            "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
            # Let's Encrypt's lifetime (pebble's own is 5 years, which a TLS scanner
            # checking Mozilla's profiles rightly flags)
            "certificateValidityPeriod": LETS_ENCRYPT_CERTIFICATE_SECONDS,
        }}, indent=2))
        pid = spawn(["pebble", "-config", home / "pebble.json", "-dnsserver", f"{address}:{config.PUBLIC_DNS_PORT}"],
                    str(lab.state_dir), home / "pebble.log",
                    env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"})
        pebble_pid.write_text(str(pid))
        _wait_serving(pid, home / "pebble.log", address, config.ACME_MANAGEMENT_PORT, "pebble")
        # pebble makes a new issuing root at every start: clients must trust this one
        context = ssl.create_default_context(cafile=str(home / "tls-ca.pem"))
        url = f"https://{address}:{config.ACME_MANAGEMENT_PORT}/roots/0"
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            lab.ca_cert.write_bytes(response.read())


def _tls_ca(home: Path, address: str) -> None:
    ca_key, ca, key, csr = (home / name for name in ("tls-ca.key", "tls-ca.pem", "tls-key.pem", "tls.csr"))
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365",
        "-subj", "/CN=livestream lab ACME TLS CA", "-keyout", ca_key, "-out", ca)
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=acme.livestream.test",
        "-keyout", key, "-out", csr)
    (home / "ext.cnf").write_text(f"subjectAltName=IP:{address},DNS:acme.livestream.test\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "365",
        "-extfile", home / "ext.cnf", "-out", home / "tls-cert.pem")


# -- DNS ------------------------------------------------------------------------------

def dns(lab: LabConfig, stack: Stack) -> None:
    """Serve the API's records: in the VPC (dnsmasq), to pebble (challtestsrv), to the host.
    Called by `up` and again by the CDN edge's realiser whenever the records change."""
    home = lab.state_dir / "dns"
    home.mkdir(parents=True, exist_ok=True)
    hosts = "".join(f"{address} {name}\n" for name, addresses in sorted(stack.records.items()) for address in addresses)
    records = home / "records"
    before = records.read_text() if records.exists() else ""
    changed = before != hosts
    gone = {line.split()[1] for line in before.splitlines() if line.strip()} - set(stack.records)
    records.write_text(hosts)
    records.chmod(0o644)

    pid_file = home / "dnsmasq.pid"
    if not _running(pid_file):
        (home / "dnsmasq.conf").write_text("\n".join([
            f"listen-address={stack.resolver_address}", "bind-interfaces", "port=53",
            # no upstream: what the lab does not hold is not resolved (nothing leaks out)
            "no-resolv", "no-hosts", "no-poll", f"addn-hosts={records}",
            "domain-needed", "bogus-priv", f"pid-file={pid_file}", "",
        ]))
        spawn(["dnsmasq", "--keep-in-foreground", f"--conf-file={home / 'dnsmasq.conf'}"],
              str(lab.state_dir), home / "dnsmasq.log", netns=lab.netns)
        wait_for(pid_file.exists, 10, "dnsmasq")
    elif changed:
        run("kill", "-HUP", pid_file.read_text().strip())

    management = f"http://{lab.internet_address}:{config.PUBLIC_DNS_MANAGEMENT_PORT}"
    for name, addresses in stack.records.items():
        body = json.dumps({"host": name + ".", "addresses": addresses}).encode()
        urllib.request.urlopen(urllib.request.Request(f"{management}/add-a", data=body), timeout=5).read()
    # a record deleted (or an A record turned into an alias elsewhere) no longer resolves
    for name in sorted(gone):
        body = json.dumps({"host": name + "."}).encode()
        urllib.request.urlopen(urllib.request.Request(f"{management}/clear-a", data=body), timeout=5).read()

    _hosts_block(lab, stack)


def _hosts_markers(lab: LabConfig) -> tuple[str, str]:
    return f"# BEGIN livestream-lab {lab.stack}", f"# END livestream-lab {lab.stack}"


def _hosts_block(lab: LabConfig, stack: Stack) -> None:
    begin, end = _hosts_markers(lab)
    lines = [f"{address} {name}" for name, addresses in sorted(stack.records.items())
             for address in addresses if not name.endswith(".ec2.internal")]
    _rewrite_hosts(lab, [begin, *lines, end])


def _rewrite_hosts(lab: LabConfig, block: list[str]) -> None:
    begin, end = _hosts_markers(lab)
    config.STATE_ROOT.mkdir(parents=True, exist_ok=True)
    # labs of other stacks rewrite their blocks too (make test runs two at once): one at a time,
    # or one's read-modify-write would drop another's block
    with open(config.STATE_ROOT / ".hosts.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        kept, inside = [], False
        for line in HOSTS_FILE.read_text().splitlines():
            if line == begin:
                inside = True
            elif line == end:
                inside = False
            elif not inside:
                kept.append(line)
        # written in place: /etc/hosts may be a bind mount that a rename would not replace
        HOSTS_FILE.write_text("\n".join(kept + block) + "\n")


def remove_hosts_block(lab: LabConfig) -> None:
    if HOSTS_FILE.exists() and _hosts_markers(lab)[0] in HOSTS_FILE.read_text():
        _rewrite_hosts(lab, [])
