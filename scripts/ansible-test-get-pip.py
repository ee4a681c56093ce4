"""Stand-in for the get-pip.py that ansible-test downloads from a host this network
cannot reach. It does what get-pip.py does, `pip install <args>`, but runs the pip
wheel that Python's own ensurepip ships. `make sanity` copies it into ansible-test's
cache (~/.ansible/test/cache/get_pip_<version>.py) when it is not there yet."""

import glob
import os
import sys

import ensurepip

# upstream Python bundles the wheel with ensurepip; Debian keeps it in python-wheels
wheels = glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl"))
wheels += glob.glob("/usr/share/python-wheels/pip-*.whl")
if not wheels:
    sys.exit("no pip wheel found for ensurepip: install the python3-venv package")
sys.path.insert(0, wheels[0])

from pip._internal.cli.main import main  # noqa: E402  (importable only from the wheel above)

# get-pip.py's own flags: it would install setuptools and wheel unless told not to; we never do
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--upgrade", "--force-reinstall", *args]))
