"""What the roles leave running must run clean on every release the collection claims: no
warning from nginx -t, certbot or ffmpeg (a deprecation warned of on one Debian release is
an error on the next). The same checks run on the default release (tests/e2e/test_platform.py)
and on the other one (molecule's verifier)."""

from __future__ import annotations

import re

# per role of machine: what to read (run as root) and what in it is a warning
CHECKS = {
    "frontend": {
        # nginx's own warnings ("[warn]") and worse
        "nginx -t": ("nginx -t 2>&1", re.compile(r"\[(warn|emerg|alert|crit)\]")),
        # certbot logs as TIME:LEVEL:logger:message; Python's warnings (deprecations) too
        "certbot": ("cat /var/log/letsencrypt/letsencrypt.log*", re.compile(r":WARNING:|DeprecationWarning")),
    },
    "backend": {
        # ffmpeg logs at -loglevel warning: anything it says about its options is a warning
        "ffmpeg": ("journalctl --no-pager -o cat -u 'livestream-stream@*'",
                   re.compile(r"deprecated|is not recommended|will be removed", re.IGNORECASE)),
    },
}


def warnings(role: str, run) -> dict[str, list[str]]:
    """For each check of ``role``: the lines that warn (``run(command)`` returns its output)."""
    found = {}
    for name, (command, pattern) in CHECKS[role].items():
        lines = [line for line in run(command).splitlines() if pattern.search(line)]
        if lines:
            found[name] = lines
    return found
