"""The lab: the livestream.aws service on one Linux machine, with real parts for AWS.

moto stands in for the AWS API, systemd-nspawn machines for the instances, Linux
bridges and a router namespace for the VPC, pebble for Let's Encrypt.
"""

import sys
from pathlib import Path

# A checkout is the collection livestream.aws through its committed link
# collections/ansible_collections/livestream/aws: the lab uses the collection's own rules
# (the stack name's) from there, however it is started (python -m livestream_lab with
# PYTHONPATH=lab, or the processes it spawns with the same path).
COLLECTIONS = str(Path(__file__).resolve().parents[2] / "collections")
if COLLECTIONS not in sys.path:
    sys.path.append(COLLECTIONS)
