"""The streams a lab's service runs, as the roles see them with the lab's settings: the
role livestream.aws.streams's defaults (the two default streams, where their keys are
generated) and the stack's settings (playbooks/vars/livestream.yml: the RTMPS port, the
frontend's name),
templated by Ansible itself from the lab's group_vars, so that nothing here repeats them."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from . import config
from .config import LabConfig

ROLE = config.REPOSITORY / "roles" / "streams"
SETTINGS = config.REPOSITORY / "playbooks" / "vars" / "livestream.yml"


@functools.cache
def _plugins() -> None:
    """Ansible's plugins, once: the lookup the defaults use (ansible.builtin.password, which
    reads the key files site.yml wrote) and the collection's filters (livestream.aws.cdn_origin).
    A process that imported ``ansible_collections`` from a path before (pytest, with the
    collection's module_utils) holds it as a plain package, which hides the collection from
    Ansible's loader ("No filter named 'livestream.aws...'"): that copy is forgotten first, so
    that Ansible's finder loads the collection again (what was imported keeps its copy)."""
    import sys  # pylint: disable=import-outside-toplevel

    from ansible.plugins.loader import init_plugin_loader  # pylint: disable=import-outside-toplevel

    for name in [name for name in sys.modules if name.split(".")[0] == "ansible_collections"]:
        del sys.modules[name]
    init_plugin_loader()


def _template(lab: LabConfig, expression: str):
    # imported here: Ansible is needed only by what asks about streams
    from ansible.parsing.dataloader import DataLoader  # pylint: disable=import-outside-toplevel
    from ansible.template import Templar, trust_as_template  # pylint: disable=import-outside-toplevel

    _plugins()

    loader = DataLoader()
    variables = {}
    for source in (ROLE / "defaults" / "main.yml", ROLE / "vars" / "main.yml", SETTINGS):
        variables.update(loader.load_from_file(str(source), trusted_as_template=True))
    variables.update(json.loads((lab.state_dir / "group_vars" / "all.json").read_text()))
    return Templar(loader=loader, variables=variables).template(trust_as_template(expression))


def key_file(lab: LabConfig, stream: str) -> Path:
    """Where the roles generated (once) and keep the key of a default stream on this host."""
    return Path(_template(lab, f"{{{{ streams_shared_key_files[{stream!r}] }}}}")).expanduser()


def frontend_name(lab: LabConfig) -> str:
    """The name the frontend answers to (its certificate's, its A record's): the domain, or
    behind a CDN the origin's (playbooks/vars/livestream.yml's livestream_frontend_name)."""
    return _template(lab, "{{ livestream_frontend_name }}")


def encoder_streams(lab: LabConfig) -> list[dict]:
    """The streams an encoder publishes (source "ingest"), each with what a streamer types
    into OBS: the server URL and the stream key (``<name>?key=<key>``), and the key's file
    when the roles generated it. Call after site.yml: the keys exist then."""
    # one templating of the role's files and the lab's settings for all four (the frontend's
    # name: the domain, or behind a CDN the origin's, which encoders reach directly)
    streams, files, port, frontend = _template(
        lab, "{{ [streams_shared_list, streams_shared_key_files, livestream_stack.ingest_port, livestream_frontend_name] }}")
    return [
        {
            "name": stream["name"],
            "server": f"rtmps://{frontend}:{port}/ingest",
            "stream_key": f"{stream['name']}?key={stream['key']}",
            "key_file": str(Path(files[stream["name"]]).expanduser()) if stream["name"] in files else None,
        }
        for stream in streams if stream.get("source") == "ingest"
    ]
