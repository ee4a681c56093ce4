"""How fast, and with how many AWS API calls, the stack is created, left alone and removed.

Runs playbooks/provision.yml (create, then a no-op re-run) and playbooks/teardown.yml, then
the same three phases with the stock amazon.aws baseline in benchmarks/baseline/, against one
fresh moto server on loopback (reset between the two); then ours again with the lab's API in
strict mode (livestream_lab.strict: a new ID unknown for 1.5 s after its create call, 15% of
the calls throttled, as AWS may do both). moto's request recorder counts the API calls of
each phase that reached moto; under strict mode, the calls made (refused ones included) and
the retries they cost are counted by the strict layer. Prints a table and writes
benchmarks/results/provision.json.

    .venv/bin/python benchmarks/bench_provision.py [--rounds N]     (or: make bench)

Wall time on a shared machine follows its load, and the two sides suffer unequally (ours
spends its time computing, the baseline mostly sleeping): with --rounds N the two sides
alternate N times and each figure is the median. The CPU seconds of each phase (the
playbook and its modules) are reported too: they do not depend on the load.

Figures, not a test: it fails only when a playbook fails.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from service_lab import RESULTS, ROOT, host_info
from livestream_lab import strict
from livestream_lab.moto import MotoServer

OUTPUT = RESULTS / "provision.json"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBUjQtWjI3D++Y+7hQvPOsPuIejtshknMqqrpkRgwp8p bench@livestream"
# the aims (docs/performance.md, "Figures"): create and no-op re-run each at most a fifth
# of the baseline's wall time, and a no-op re-run under 15 API calls
SPEED_UP = 5
NOOP_CALLS = 15
# and under strict mode: create under 10 s, a no-op re-run under 3 s and 20 calls
STRICT_CREATE_SECONDS = 10
STRICT_NOOP_SECONDS = 3
STRICT_NOOP_CALLS = 20


def api_calls(recording):
    """AWS API requests in a moto recording (moto's own /moto-api requests left out)."""
    return [r for r in recording if "/moto-api/" not in r.get("url", "")]


def run_phase(moto, env, workdir, playbook, extra_vars):
    command = ["ansible-playbook", "-i", str(workdir / "localhost.ini"), str(playbook), "-e", json.dumps(extra_vars)]
    strict_before = moto.strict_counts()
    moto.start_recording()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    calls = len(api_calls(moto.stop_recording()))
    if proc.returncode != 0:
        sys.exit(f"{playbook.name} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    changed = report["stats"]["localhost"]["changed"]
    figures = {"wall_seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "api_calls": calls, "changed_tasks": changed}
    done = {key: value - strict_before[key] for key, value in moto.strict_counts().items()}
    if done["throttled"] or done["not_found"]:  # moto never saw the calls strict mode refused
        figures["api_calls"] = done["requests"]
    figures.update(retries=done["throttled"] + done["not_found"], throttled=done["throttled"], not_found=done["not_found"])
    return figures


def run_suite(moto, env, workdir, provision, teardown, extra_vars, strict_mode=None):
    moto.reset()
    moto.strict(**(strict_mode or {}))
    return {
        "create": run_phase(moto, env, workdir, provision, extra_vars),
        "noop": run_phase(moto, env, workdir, provision, extra_vars),
        "teardown": run_phase(moto, env, workdir, teardown, extra_vars),
    }


def median_of(rounds):
    """Each phase's figures, the median over the rounds."""
    return {
        phase: {key: statistics.median(r[phase][key] for r in rounds) for key in rounds[0][phase]}
        for phase in rounds[0]
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="alternate ours and the baseline this many times")
    rounds = parser.parse_args().rounds
    venv_bin = Path(sys.executable).parent
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-provision-") as scratch, \
            MotoServer(log_path=Path(scratch) / "moto.log") as moto:
        workdir = Path(scratch)
        key = workdir / "id_ed25519.pub"
        key.write_text(PUBLIC_KEY + "\n")
        (workdir / "localhost.ini").write_text(
            f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
        )
        env = {
            **os.environ,
            **moto.environment(),
            "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "ANSIBLE_COLLECTIONS_PATH": os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(ROOT / "collections")),
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            env.pop(name, None)

        ours_vars = {
            "livestream_stack_name": "bench",
            "livestream_admin_cidrs": ["198.51.100.0/24"],
            "livestream_hosted_zone": "example.test",
            "livestream_create_hosted_zone": True,
            "livestream_ssh_public_key_file": str(key),
        }
        ours_rounds, baseline_rounds, strict_rounds = [], [], []
        for round_number in range(rounds):
            ours_rounds.append(run_suite(
                moto, env, workdir, ROOT / "playbooks" / "provision.yml", ROOT / "playbooks" / "teardown.yml", ours_vars,
            ))
            baseline_rounds.append(run_suite(
                moto, env, workdir, ROOT / "benchmarks" / "baseline" / "stock-provision.yml",
                ROOT / "benchmarks" / "baseline" / "stock-teardown.yml",
                {"baseline_ssh_public_key_file": str(key)},
            ))
            strict_rounds.append(run_suite(
                moto, env, workdir, ROOT / "playbooks" / "provision.yml", ROOT / "playbooks" / "teardown.yml", ours_vars,
                strict_mode={**strict.AS_AWS, "seed": round_number + 1},
            ))
        ours, baseline, ours_strict = median_of(ours_rounds), median_of(baseline_rounds), median_of(strict_rounds)

    results = {
        "ours": ours,
        "baseline": baseline,
        "ours_strict": {"strict_mode": strict.AS_AWS, **ours_strict},
        "rounds": rounds,
        "host": host_info(load_before, os.getloadavg()[0]),
    }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(results, indent=2) + "\n")

    load = results["host"]["load_average"]
    print(f"median of {rounds} round(s); load average {load['before']} -> {load['after']} on {os.cpu_count()} CPUs")
    print(f"{'phase':<10}{'ours s':>8}{'base s':>8}{'ratio':>7}{'ours cpu':>10}{'base cpu':>10}{'ours calls':>12}{'base calls':>12}")
    for phase in ("create", "noop", "teardown"):
        mine, theirs = ours[phase], baseline[phase]
        ratio = theirs["wall_seconds"] / mine["wall_seconds"]
        print(f"{phase:<10}{mine['wall_seconds']:>8.2f}{theirs['wall_seconds']:>8.2f}{ratio:>6.1f}x"
              f"{mine['cpu_seconds']:>10.2f}{theirs['cpu_seconds']:>10.2f}{mine['api_calls']:>12}{theirs['api_calls']:>12}")
    print(f"ours under strict mode ({strict.AS_AWS}):")
    print(f"{'phase':<10}{'wall s':>8}{'cpu s':>8}{'calls':>8}{'retries':>9}{'throttled':>11}{'not found':>11}")
    for phase in ("create", "noop", "teardown"):
        mine = ours_strict[phase]
        print(f"{phase:<10}{mine['wall_seconds']:>8.2f}{mine['cpu_seconds']:>8.2f}{mine['api_calls']:>8}"
              f"{mine.get('retries', 0):>9}{mine.get('throttled', 0):>11}{mine.get('not_found', 0):>11}")
    aims = {
        f"create at most 1/{SPEED_UP} of the baseline": ours["create"]["wall_seconds"] * SPEED_UP <= baseline["create"]["wall_seconds"],
        f"no-op re-run at most 1/{SPEED_UP} of the baseline": ours["noop"]["wall_seconds"] * SPEED_UP <= baseline["noop"]["wall_seconds"],
        f"no-op re-run under {NOOP_CALLS} API calls": ours["noop"]["api_calls"] < NOOP_CALLS,
        "no-op re-run changes nothing": ours["noop"]["changed_tasks"] == 0,
        f"strict mode: create under {STRICT_CREATE_SECONDS} s": ours_strict["create"]["wall_seconds"] < STRICT_CREATE_SECONDS,
        f"strict mode: no-op re-run under {STRICT_NOOP_SECONDS} s": ours_strict["noop"]["wall_seconds"] < STRICT_NOOP_SECONDS,
        f"strict mode: no-op re-run under {STRICT_NOOP_CALLS} API calls": ours_strict["noop"]["api_calls"] < STRICT_NOOP_CALLS,
        "strict mode: no-op re-run changes nothing": ours_strict["noop"]["changed_tasks"] == 0,
    }
    for aim, met in aims.items():
        print(f"{'met    ' if met else 'MISSED '} {aim}")
    print(f"written to {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
