"""A stand-in for AnsibleAWSModule where our code only reports through it: check mode, and
the end of the module (exit_json, or fail_json raised, as the real one ends the process)."""

from __future__ import annotations


class Failed(Exception):
    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


class Module:
    def __init__(self, check_mode=False, **params):
        self.check_mode = check_mode
        self.params = params
        self.result = None

    def fail_json(self, **result):
        raise Failed(result)

    def exit_json(self, **result):
        self.result = result
