# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The AMI catalogue: which images an AMI family means, how the newest one is chosen, and the
tag that tells which family an instance was launched from."""

from __future__ import annotations

# Which AMIs a family means: the publisher's account (so a look-alike image from another
# account is never picked), the name pattern ({arch} is the publisher's spelling of the
# architecture), and the user the image lets in over SSH.
AMI_FAMILIES = {
    "debian12": {"owner": "136693071363", "name": "debian-12-{arch}-*", "login_user": "admin"},
    "debian13": {"owner": "136693071363", "name": "debian-13-{arch}-*", "login_user": "admin"},
    "ubuntu2404": {
        "owner": "099720109477",
        "name": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch}-server-*",
        "login_user": "ubuntu",
    },
}
# What new stacks run: Debian's stable release
DEFAULT_AMI_FAMILY = "debian13"
AMI_ARCHITECTURES = {"x86_64": "amd64", "arm64": "arm64"}

# Put on each instance at launch (debian13, debian12, ubuntu2404): the inventory reads it to pick
# the login user when the image's name does not tell.
AMI_FAMILY_TAG = "AmiFamily"


def name_pattern(family, architecture="x86_64"):
    """The name pattern of ``family``'s images for ``architecture``, as describe_images takes it."""
    return AMI_FAMILIES[family]["name"].format(arch=AMI_ARCHITECTURES.get(architecture, architecture))


def find_image(ec2, family, architecture="x86_64"):
    """The newest available AMI of ``family`` published by its owner, or None.

    Newest by name: publishers put the build date in the name, and creation dates are
    not reliable everywhere (moto stamps every image with its own start time).
    """
    owner = AMI_FAMILIES[family]["owner"]
    images = ec2.describe_images(
        Owners=[owner],
        Filters=[
            {"Name": "name", "Values": [name_pattern(family, architecture)]},
            {"Name": "architecture", "Values": [architecture]},
            {"Name": "state", "Values": ["available"]},
        ],
        aws_retry=True,
    )["Images"]
    # describe_images honours Owners, but the owner check is the point: make it explicit
    images = [image for image in images if image.get("OwnerId") == owner]
    if not images:
        return None
    return max(images, key=lambda image: image["Name"])


def image_search_description(family, architecture="x86_64"):
    """What ``find_image`` looks for, in words (for messages)."""
    return (f"{family} AMI named {name_pattern(family, architecture)!r} for {architecture} "
            f"owned by {AMI_FAMILIES[family]['owner']}")
