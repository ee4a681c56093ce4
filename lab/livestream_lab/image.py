"""The machines' base images: Debian 12 and 13, each debootstrapped once, configured like a
cloud image; a machine boots the one of the release its AMI is (its name, as Debian names its
AMIs: debian-12-..., debian-13-...).

The images are cached outside the checkout, keyed by a hash of their recipe, so fresh clones
(CI) reuse them and a change to a recipe builds a new one. Machines boot from an overlay
on top of one: an image itself is never written to after the build.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from . import config

# Debian's releases the lab has images of: the AMI name's release number -> the suite
SUITES = {"12": "bookworm", "13": "trixie"}
# the collection's default family's (DEFAULT_AMI_FAMILY, plugins/module_utils/images.py: a unit test keeps them in line)
DEFAULT_SUITE = "trixie"
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
suite=$1
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
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $suite-security
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


def by_preference() -> list[str]:
    """Every release the lab has an image of, the default's first."""
    return sorted(SUITES.values(), key=lambda suite: suite != DEFAULT_SUITE)


def recipe(suite: str = DEFAULT_SUITE) -> dict:
    return {"suite": suite, "mirror": MIRROR, "packages": PACKAGES, "configure": CONFIGURE}


def recipe_hash(suite: str = DEFAULT_SUITE) -> str:
    return hashlib.sha256(json.dumps(recipe(suite), sort_keys=True).encode()).hexdigest()[:12]


def images_dir() -> Path:
    return config.CACHE_ROOT / "images"


def image_path(suite: str = DEFAULT_SUITE) -> Path:
    """The root file system machines of ``suite`` boot from (may not exist yet)."""
    return images_dir() / recipe_hash(suite) / "rootfs"


def suite_of(image_name: str) -> str:
    """The suite of the Debian release an AMI is, from its name (Debian's own: debian-13-amd64-...).
    An AMI of anything else has no image here: the lab does not pretend to run it."""
    match = re.match(r"debian-(\d+)-", image_name)
    if not match or match.group(1) not in SUITES:
        known = ", ".join(f"debian-{number}-*" for number in SUITES)
        raise LookupError(f"the lab has no image for the AMI {image_name!r}: it boots Debian's ({known}) only")
    return SUITES[match.group(1)]


def build(suite: str = DEFAULT_SUITE, rebuild: bool = False, destination: Path | None = None, log=print) -> Path:
    """Build ``suite``'s image unless it is cached; return its root file system.

    ``destination`` builds elsewhere (the benchmark times a build from nothing without
    throwing the cache away).
    """
    target = destination or image_path(suite)
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
        log(f"building the Debian {suite} image in {target} (once; about a minute)")
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", suite,
             str(scratch), MIRROR],
            check=True, stdout=subprocess.DEVNULL,
        )
        subprocess.run(["chroot", str(scratch), "/bin/bash", "-c", CONFIGURE, "configure", suite], check=True,
                       stdout=subprocess.DEVNULL, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"})
        (scratch.parent / "recipe.json").write_text(json.dumps(recipe(suite), indent=2))
        if target.exists():
            old = target.with_name(target.name + ".old")
            os.rename(target, old)
            shutil.rmtree(old)
        os.rename(scratch, target)
        log(f"image built in {time.monotonic() - started:.0f}s")
        return target
