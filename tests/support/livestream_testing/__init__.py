"""What the test suites and the benchmarks share besides the probes: running playbooks
as a user would (playbook), the lab's machines, ssh and inventory as the suites see them
(lab), the service fixtures of the suites that run it (service), and the stand-in servers
the probes' own unit tests measure (probe_servers).

Installed in editable mode into the checkout's virtualenv (`make setup`, scripts/venv):
``ROOT`` is the checkout it is installed from (the lab's, livestream_lab.config.REPOSITORY)."""

import sys
from pathlib import Path

from livestream_lab.config import REPOSITORY

ROOT = REPOSITORY


def outside_the_checkout(env: dict[str, str]) -> dict[str, str]:
    """``env`` with Ansible seeing collections as a user's Ansible does, not this checkout:
    .venv puts the checkout's ``collections/`` on Python's path (scripts/venv), and Ansible
    also looks for collections there, after the configured ones, which would let a test of an
    installed tarball or of a clone's own link pass on the checkout instead. Here Ansible
    looks only where it is told (``env``'s ANSIBLE_COLLECTIONS_PATH, a playbook's adjacent
    ``collections/``) and in the collections the ``ansible`` package bundles."""
    bundled = [path for path in sys.path
               if (Path(path) / "ansible_collections" / "amazon" / "aws").is_dir()
               and Path(path).resolve() != (ROOT / "collections").resolve()]
    configured = [part for part in env.get("ANSIBLE_COLLECTIONS_PATH", "").split(":") if part]
    return {**env, "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
            "ANSIBLE_COLLECTIONS_PATH": ":".join(configured + bundled[:1])}
