"""The Python programs the roles install on the hosts (files without a .py suffix, run by the
system's python3), imported here so that a test reads what they read the way they read it."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from types import ModuleType

from livestream_testing import ROOT


def role_program(name: str, path: str) -> ModuleType:
    """The program at ``path`` (relative to the checkout) as the module ``name``."""
    loader = importlib.machinery.SourceFileLoader(name, str(ROOT / path))
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def metrics_collector() -> ModuleType:
    """roles/metrics/files/livestream-metrics, the collector of the service's own metrics."""
    return role_program("livestream_metrics", "roles/metrics/files/livestream-metrics")


def viewer_count() -> ModuleType:
    """roles/frontend/files/livestream-viewers, the frontend's viewer count."""
    return role_program("livestream_viewers", "roles/frontend/files/livestream-viewers")
