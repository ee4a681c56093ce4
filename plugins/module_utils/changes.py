# -*- coding: utf-8 -*-
# Copyright: livestream.aws contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What a module did (or, in check mode, would do), in words a user can read: its actions,
its diff, and what a failure half-way had done before it."""

from __future__ import annotations

# what a failure half-way leaves, and what to do about it
PROVISIONING_LEFT = (
    "what it made is still there. Fix the cause and run it again (it carries on from what exists), "
    "or run teardown to remove the stack."
)


class Changes:
    """Every change a module makes is recorded here before it is made, and every module ends
    through ``exit_json``; modules read check mode from here (``check_mode``).

    ``left``: what a run that fails half-way leaves behind, and what to do about it."""

    def __init__(self, module, left=PROVISIONING_LEFT):
        self.module = module
        self.actions = []
        self.before = {}
        self.after = {}
        # a failure half-way says what this run made before it (fail_json_aws ends here too)
        fail = module.fail_json

        def fail_json(**result):
            if self.actions and not module.check_mode:
                result["msg"] = (
                    f"{result.get('msg', '')}. Before it stopped this run began: {'; '.join(self.actions)} "
                    f"(the last may not have happened); {left}"
                )
                result.setdefault("actions", self.actions)
            fail(**result)

        module.fail_json = fail_json

    def record(self, action, what=None, before=None, after=None):
        """Note one change; ``what`` with ``before``/``after`` feeds the diff (--diff)."""
        self.actions.append(action)
        what = what or action
        self.before.setdefault(what, before)
        self.after[what] = after if after is not None else action

    def diff(self):
        return {"before": self.before, "after": self.after}

    def exit_json(self, **result):
        """End the module with what changed, its diff, and the module's own results."""
        self.module.exit_json(changed=self.changed, actions=self.actions, diff=self.diff(), **result)

    @property
    def check_mode(self):
        return self.module.check_mode

    @property
    def changed(self):
        return bool(self.actions)
