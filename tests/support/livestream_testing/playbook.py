"""Run ansible-playbook as a user would, and read its results from the json callback."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from livestream_testing import ROOT  # pylint: disable=unused-import  # the suites import it from here


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    report: dict = field(default_factory=dict)

    @property
    def stats(self) -> dict:
        """Per-host totals: {"localhost": {"changed": 0, "failures": 0, ...}}."""
        return self.report.get("stats", {})

    def changed(self, host: str = "localhost") -> int:
        return self.stats.get(host, {}).get("changed", 0)

    def failed(self, host: str = "localhost") -> int:
        host_stats = self.stats.get(host, {})
        return host_stats.get("failures", 0) + host_stats.get("unreachable", 0)

    def task(self, name: str, host: str = "localhost") -> dict:
        """The result of the task called ``name`` (the last one, if it ran twice)."""
        found = None
        for play in self.report.get("plays", []):
            for task in play["tasks"]:
                if task["task"]["name"] == name and host in task["hosts"]:
                    found = task["hosts"][host]
        if found is None:
            raise KeyError(f"no task named {name!r} ran on {host}:\n{self.stdout[-3000:]}")
        return found

    def failure_messages(self) -> list[str]:
        return [
            result.get("msg", "")
            for play in self.report.get("plays", [])
            for task in play["tasks"]
            for result in task["hosts"].values()
            if result.get("failed")
        ]


class Runner:
    def __init__(self, workdir: Path, env: dict[str, str]):
        self.workdir = workdir
        self.env = {**env, "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_NOCOLOR": "1"}
        # the controller's own Python (the venv's) runs local modules: boto3 is there
        self.local_inventory = workdir / "localhost.ini"
        self.local_inventory.write_text(
            f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
        )

    def playbook(self, playbook, *args: str, check: bool = False, extra_vars: dict | None = None,
                 inventory: str | Path | None = None, timeout: float = 600) -> Result:
        """Run a playbook: a path, or a list of plays written to a scratch file."""
        if not isinstance(playbook, (str, Path)):
            path = self.workdir / "playbook.yml"
            path.write_text(yaml.safe_dump(playbook, sort_keys=False))
            playbook = path
        command = ["ansible-playbook", "-i", str(inventory or self.local_inventory), str(playbook), *args]
        if check:
            command.append("--check")
        if extra_vars:
            command += ["-e", json.dumps(extra_vars)]
        proc = subprocess.run(command, cwd=self.workdir, env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)
        try:
            report = json.loads(proc.stdout[proc.stdout.index("{"):])
        except ValueError:
            report = {}
        return Result(proc.returncode, proc.stdout, proc.stderr, report)

    def module(self, name: str, args: dict, check: bool = False) -> dict:
        """Run one module on localhost through a one-task playbook; return its result."""
        task = {"name": "module under test", name: args, "register": "result", "ignore_errors": True}
        play = {"hosts": "localhost", "gather_facts": False, "tasks": [task]}
        return self.playbook([play], check=check).task("module under test")
