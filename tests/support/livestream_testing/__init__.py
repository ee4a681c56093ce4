"""What the test suites and the benchmarks share besides the probes: running playbooks
as a user would (playbook), the lab's machines, ssh and inventory as the suites see them
(lab), the service fixtures of the suites that run it (service), and the stand-in servers
the probes' own unit tests measure (probe_servers).

Installed in editable mode into the checkout's virtualenv (`make setup`, scripts/venv):
``ROOT`` is the checkout it is installed from (the lab's, livestream_lab.config.REPOSITORY)."""

from livestream_lab.config import REPOSITORY

ROOT = REPOSITORY
