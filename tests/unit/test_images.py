"""The AMI catalogue (module_utils/images.py): the newest image of a family, from its publisher
only. The EC2 client is a stand-in that answers describe_images as EC2 would."""

from __future__ import annotations

import fnmatch

from ansible_collections.livestream.aws.plugins.module_utils.images import (
    AMI_FAMILIES, find_image, image_search_description)

DEBIAN = AMI_FAMILIES["debian12"]["owner"]
CANONICAL = AMI_FAMILIES["ubuntu2404"]["owner"]


class EC2:
    """describe_images over ``images``, with EC2's filters and owners (not our code)."""

    def __init__(self, *images):
        self.images = list(images)
        self.asked = []

    def describe_images(self, Owners, Filters, aws_retry):
        self.asked.append((Owners, Filters))
        wanted = {f["Name"]: f["Values"] for f in Filters}
        found = [
            image for image in self.images
            if image["OwnerId"] in Owners
            and any(fnmatch.fnmatch(image["Name"], pattern) for pattern in wanted["name"])
            and image["Architecture"] in wanted["architecture"] and image["State"] in wanted["state"]
        ]
        # what a copy from another account could look like if the owner filter were lost
        return {"Images": found + [image for image in self.images if image.get("sneaks_in")]}


def image(name, owner=DEBIAN, architecture="x86_64", state="available", **extra):
    return dict(ImageId=f"ami-{abs(hash(name)) % 10 ** 8}", Name=name, OwnerId=owner, Architecture=architecture,
                State=state, **extra)


def test_the_newest_by_name_of_the_family_and_architecture():
    ec2 = EC2(
        image("debian-12-amd64-20240101-1600"),
        image("debian-12-amd64-20241201-1948"),
        image("debian-12-arm64-20251201-1948", architecture="arm64"),
        image("debian-13-amd64-20251201-1948"),
        image("debian-12-amd64-20251231-0000", state="pending"),
    )
    assert find_image(ec2, "debian12")["Name"] == "debian-12-amd64-20241201-1948"
    assert find_image(ec2, "debian12", "arm64")["Name"] == "debian-12-arm64-20251201-1948"
    assert ec2.asked[0][0] == [DEBIAN]
    # Debian 13 from the same publisher, its own name pattern
    assert find_image(ec2, "debian13")["Name"] == "debian-13-amd64-20251201-1948"
    assert find_image(ec2, "debian13", "arm64") is None


def test_an_image_of_another_account_is_never_chosen():
    ec2 = EC2(image("debian-12-amd64-20241201-1948"),
              image("debian-12-amd64-20991231-0000", owner="111122223333", sneaks_in=True))
    assert find_image(ec2, "debian12")["OwnerId"] == DEBIAN


def test_no_image_is_none():
    assert find_image(EC2(image("debian-12-amd64-20241201-1948")), "ubuntu2404") is None


def test_ubuntu_spells_the_architecture_its_own_way():
    ec2 = EC2(image("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250115", owner=CANONICAL))
    assert find_image(ec2, "ubuntu2404") is not None
    assert image_search_description("ubuntu2404") == (
        f"ubuntu2404 AMI named 'ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*' for x86_64 owned by {CANONICAL}")
    assert image_search_description("debian12", "arm64") == f"debian12 AMI named 'debian-12-arm64-*' for arm64 owned by {DEBIAN}"
