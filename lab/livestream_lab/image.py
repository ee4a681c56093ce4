"""The machines' base image: Debian 12 debootstrapped once, configured like a cloud image.

The image is cached outside the checkout, keyed by a hash of its recipe, so fresh clones
(CI) reuse it and a change to the recipe builds a new one. Machines boot from an overlay
on top of it: the image itself is never written to after the build.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from . import config

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "python3", "iproute2",
    "ca-certificates", "debian-archive-keyring",
    # as in Debian's cloud images: security updates installed unattended
    "unattended-upgrades",
)
# What a Debian cloud image does on first boot, done once at build time instead.
# The per-machine parts (addresses, key, apt proxy, host keys) are written by machines.py.
CONFIGURE = r"""
set -eu
useradd --create-home --shell /bin/bash --groups sudo admin
echo 'admin ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-cloud-init-users
chmod 0440 /etc/sudoers.d/90-cloud-init-users
printf 'PasswordAuthentication no\n' > /etc/ssh/sshd_config.d/50-cloud-image.conf
rm -f /etc/ssh/ssh_host_*
: > /etc/machine-id
rm -f /etc/apt/sources.list
cat > /etc/apt/sources.list.d/debian.sources <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# as a published AMI is: the point release and the security updates out when it was built
# (debootstrap takes the suite alone); unattended-upgrades then finds only what came later
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Options::=--force-confold upgrade
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' > /etc/hosts
systemctl enable systemd-networkd
# Debian's cloud images update the package lists and run unattended-upgrades soon after
# a new instance boots, holding apt's locks while the first playbook wants them. Here
# it is soon after every boot (not at a random time), so that the roles meet it.
printf 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n' \
  > /etc/apt/apt.conf.d/20auto-upgrades
for timer in apt-daily apt-daily-upgrade; do
  mkdir -p /etc/systemd/system/$timer.timer.d
  printf '[Timer]\nOnBootSec=5s\nRandomizedDelaySec=0\n' > /etc/systemd/system/$timer.timer.d/10-lab-after-boot.conf
done
systemctl enable apt-daily.timer apt-daily-upgrade.timer
# timers that would reach for the network at random times during a test
systemctl mask e2scrub_all.timer fstrim.timer dpkg-db-backup.timer
apt-get clean
rm -rf /var/lib/apt/lists/*
"""


def recipe() -> dict:
    return {"suite": SUITE, "mirror": MIRROR, "packages": PACKAGES, "configure": CONFIGURE}


def recipe_hash() -> str:
    return hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:12]


def images_dir() -> Path:
    return config.CACHE_ROOT / "images"


def image_path() -> Path:
    """The root file system machines boot from (may not exist yet)."""
    return images_dir() / recipe_hash() / "rootfs"


def build(rebuild: bool = False, destination: Path | None = None, log=print) -> Path:
    """Build the image unless it is cached; return its root file system.

    ``destination`` builds elsewhere (the benchmark times a build from nothing without
    throwing the cache away).
    """
    target = destination or image_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "w") as lock:
        # two labs brought up at once build the image once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "etc" / "os-release").exists() and not rebuild:
            return target
        if f"lowerdir={target}," in Path("/proc/mounts").read_text():
            raise RuntimeError(f"machines of a running lab boot from {target}: take the lab down before rebuilding")
        scratch = target.with_name(target.name + ".partial")
        shutil.rmtree(scratch, ignore_errors=True)
        started = time.monotonic()
        log(f"building the Debian 12 image in {target} (once; about a minute)")
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
             str(scratch), MIRROR],
            check=True, stdout=subprocess.DEVNULL,
        )
        subprocess.run(["chroot", str(scratch), "/bin/bash", "-c", CONFIGURE], check=True,
                       stdout=subprocess.DEVNULL, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"})
        (scratch.parent / "recipe.json").write_text(json.dumps(recipe(), indent=2))
        if target.exists():
            old = target.with_name(target.name + ".old")
            os.rename(target, old)
            shutil.rmtree(old)
        os.rename(scratch, target)
        log(f"image built in {time.monotonic() - started:.0f}s")
        return target
