"""Viewer capacity: how many simulated HLS viewers the frontend serves before segments
arrive late, and what each costs its nginx in CPU, side by side with a bare nginx serving
the same files statically (the ceiling), in the same run.

Both servers run on the frontend machine and serve the live fragments nginx-rtmp writes
(/var/lib/livestream/hls): ours on 443 (the role's configuration), the bare one, started
for the run as a transient unit, on 127.0.0.1:8443 with the same certificate and nothing
else. The security groups let only 80/443 in from outside, so the load generator runs
from the host inside the frontend's network namespace (nsenter --net) and reaches both
over the machine's loopback: the same path, the same TLS, the same client.

The viewers (probes.hls.run_viewers): one keep-alive HTTPS connection each, join three
segments behind the live edge, reload the playlist as hls.js does (probes.hls.reload_after), fetch each new
segment once; a segment is late when a player without a buffer of its own would stall
for it. The two arms ramp in lockstep, taking turns (probes.hls.ramp_viewers): double the
viewers from --start until a count fails (--tries runs at it, each with a late, missed or
failed segment), then bisect to 1/16. Every run is bounded (--step-seconds), the viewers
too (--limit), and the ramp starts no run that could end later than --max-seconds after
the benchmark began (lab bring-up included). nginx's CPU: its unit's cgroup (cpu.stat usage_usec) read
by the host; the generator's CPU and the host's are reported too, since on a small host
the generator shares the cores with nginx.

    .venv/bin/python benchmarks/bench_viewers.py [--reuse] [--keep] [--stack NAME]   (or: make bench)

Prints a table and writes benchmarks/results/viewers.json. Figures, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import resource
import select
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from service_lab import LOAD_STACK, RESULTS, ROOT, Service, bench_service, host_info, lab_arguments, ramp_arguments, ramp_run
from livestream_lab.machines import in_network_of, unit_cgroup, unit_pids
from livestream_testing.lab import STREAM
from livestream_probes.cpu import cgroup_cpu_seconds, cgroup_sampler, host_cpu
from livestream_probes.hls import HlsClient, Ramp, ramp_viewers, run_viewers

OUTPUT = RESULTS / "viewers.json"
AIM = 0.9  # of the ceiling's viewers
FRAGMENTS_AIM = 0.8  # of the first fragment length's viewers (ours), for every other one
IDLE_SECONDS = 10
TEARDOWN_SECONDS = 30  # the bare nginx stopped, the lab taken down, the report written
BARE_UNIT = "livestream-bench-bare-nginx"
BARE_DIR = f"/run/{BARE_UNIT}"
BARE_PORT = 8443

# The ceiling: the frontend's own nginx binary and certificate, serving the same directory
# with nothing of ours (no RTMP, no headers, no access log, no HTTP/2 listener); as many
# workers, and as many connections per worker, as ours.
BARE_CONF = """\
user www-data;
worker_processes {workers};
pid {run}/nginx.pid;
error_log {run}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {domain};
        ssl_certificate /etc/letsencrypt/live/{domain}/fullchain.pem;
        ssl_certificate_key /etc/letsencrypt/live/{domain}/privkey.pem;
        root /var/lib/livestream;
    }}
}}
"""


# --- the load generator: a child process in the frontend's network namespace ------------------

def generator(ca_file: str, domain: str) -> None:
    """Answer one JSON line per JSON line read: "ready" (does the stream move through this
    server?) or "run" (a crowd of viewers, the server's CPU read from its cgroup)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # one socket per viewer
    client = HlsClient(resolve={domain: "127.0.0.1"}, ca_file=ca_file, timeout=5)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "ready":
            advance = client.playlist_advances(command["url"], within_s=command["timeout_s"])
            answer = {"ok": bool(advance), "errors": advance.errors[-3:]}
        else:
            load = run_viewers(command["url"], command["viewers"], command["duration_s"], client=client,
                               cpu=cgroup_sampler(Path(command["cgroup"])), spread_s=command["spread_s"])
            answer = {**load.summary(), "server_cpu_s": load.server_cpu_s, "client_cpu_s": load.client_cpu_s,
                      "bytes": sum(report.bytes for report in load.reports),
                      "first_errors": [error for report in load.reports for error in report.errors][:3]}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


class Generator:
    """The generator child, driven over its stdin and stdout."""

    def __init__(self, service: Service, frontend: str, domain: str):
        argv = [sys.executable, str(Path(__file__).resolve()), "--generator", str(service.lab.ca_cert), domain]
        self.process = subprocess.Popen(in_network_of(service.lab, frontend, argv),  # pylint: disable=consider-using-with
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, command: dict, timeout_s: float) -> dict:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        ready = select.select([self.process.stdout], [], [], timeout_s)[0]
        line = self.process.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"the load generator gave no answer to {command['op']} within {timeout_s:.0f} s")
        return json.loads(line)

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the two servers --------------------------------------------------------------------------

@dataclass
class Arm:
    name: str
    label: str
    url: str
    unit: str
    cgroup: Path | None = None
    ramp: Ramp | None = None  # its search for the most viewers served (probes.hls.ramp_viewers)
    runs: list[dict] = field(default_factory=list)
    idle_cpu_per_s: float | None = None

    def run_at(self, count: int | None) -> dict | None:
        return next((run for run in self.runs if run["viewers"] == count and run["healthy"]), None)


def nginx_workers(service: Service, frontend: str) -> int:
    commands = []
    for pid in unit_pids(service.lab, frontend, "nginx.service"):
        with contextlib.suppress(OSError):
            commands.append(Path(f"/proc/{pid}/cmdline").read_bytes())
    return max(1, sum(b"worker process" in command for command in commands))


@contextlib.contextmanager
def bare_nginx(service: Service, frontend: str, domain: str, workers: int):
    conf = BARE_CONF.format(workers=workers, run=BARE_DIR, port=BARE_PORT, domain=domain)
    stop = f"sudo systemctl stop {BARE_UNIT} 2>/dev/null; sudo rm -rf {BARE_DIR}"
    service.ssh(frontend, stop, check=False)  # left over by an interrupted run
    service.ssh(frontend, f"sudo install -d -m 0755 {BARE_DIR} && printf '%s' {shlex.quote(conf)}"
                          f" | sudo tee {BARE_DIR}/nginx.conf >/dev/null && sudo /usr/sbin/nginx -t -q -c {BARE_DIR}/nginx.conf"
                          f" && sudo systemd-run --quiet --collect --unit={BARE_UNIT}"
                          f" /usr/sbin/nginx -c {BARE_DIR}/nginx.conf -g 'daemon off;'")
    try:
        yield
    finally:
        service.ssh(frontend, stop, check=False)


# --- the ramp -------------------------------------------------------------------------------

def measure(generator_: Generator, arm: Arm, count: int, args: argparse.Namespace) -> dict:
    assert arm.cgroup is not None
    busy_before, total_before = host_cpu()
    answer = generator_.ask({"op": "run", "url": arm.url, "viewers": count, "duration_s": args.step_seconds,
                             "spread_s": args.join_seconds, "cgroup": str(arm.cgroup)},
                            timeout_s=args.step_seconds + 60)
    busy_after, total_after = host_cpu()
    seconds = answer["duration_s"]
    run = {
        **ramp_run(count, answer),
        "duration_s": seconds,
        "playlist_requests": answer["playlist_requests"],
        "segment_requests": answer["segment_requests"],
        "mean_segment_bytes": round(answer["bytes"] / answer["segments"]) if answer["segments"] else None,
        "nginx_cpu_per_s": round(answer["server_cpu_s"] / seconds, 4),
        "nginx_cpu_per_s_per_viewer": round(answer["server_cpu_s"] / seconds / count, 7),
        "generator_cpu_per_s": round(answer["client_cpu_s"] / seconds, 4),
        "host_busy": round((busy_after - busy_before) / (total_after - total_before), 3),
    }
    if arm.idle_cpu_per_s is not None:
        run["nginx_cpu_per_s_per_viewer_net_of_idle"] = round(
            max(0.0, answer["server_cpu_s"] / seconds - arm.idle_cpu_per_s) / count, 7)
    if answer["first_errors"]:
        run["first_errors"] = answer["first_errors"]
    return run


def step(generator_: Generator, arm: Arm, count: int, args: argparse.Namespace) -> bool:
    """One run of the arm's ramp: measured, recorded and printed; whether it was healthy."""
    run = measure(generator_, arm, count, args)
    arm.runs.append(run)
    print(f"  {arm.name:>5} {count:5d} viewers: {'ok  ' if run['healthy'] else 'LATE'}"
          f" late {run['late_segments']}, missed {run['missed_segments']}, errors {run['errors']},"
          f" nginx {run['nginx_cpu_per_s']:.3f} CPU s/s, generator {run['generator_cpu_per_s']:.3f},"
          f" host {run['host_busy']:.0%} busy", flush=True)
    return run["healthy"]


def arm_figures(arm: Arm) -> dict:
    assert arm.ramp is not None
    at_best = arm.run_at(arm.ramp.best)
    return {
        "label": arm.label,
        "url": arm.url,
        "sustained_viewers": arm.ramp.best,
        "first_late_viewers": arm.ramp.bad,
        "refined": arm.ramp.done,
        "idle_nginx_cpu_per_s": arm.idle_cpu_per_s,
        "at_sustained": at_best,
        "runs": arm.runs,
    }


def phase(service: Service, generator_: Generator, fragment_s: float | None, args: argparse.Namespace,
          deadline: float) -> dict:
    """Both servers ramped in lockstep with the lab's fragments of fragment_s seconds (None:
    as the lab is); the arms' figures, their CPU at the same load and the aim."""
    if fragment_s is not None:
        print(f"fragments of {fragment_s:g} s: configure.yml with livestream_hls_fragment_seconds={fragment_s:g}", flush=True)
        service.configure(livestream_hls_fragment_seconds=fragment_s)
    frontend = service.machines["frontend"]["name"]
    domain = service.summary["domain"]
    arms = [Arm("ours", "the frontend role's nginx (443: RTMP ingest, HLS packaging, HTTPS with our settings)",
                f"https://{domain}/hls/{STREAM}.m3u8", "nginx.service"),
            Arm("bare", "bare nginx, the same binary, certificate and files, static only (the ceiling)",
                f"https://{domain}:{BARE_PORT}/hls/{STREAM}.m3u8", f"{BARE_UNIT}.service")]
    for arm in arms:
        if not generator_.ask({"op": "ready", "url": arm.url, "timeout_s": 20}, timeout_s=60)["ok"]:
            sys.exit(f"{arm.name}: the stream does not move at {arm.url}")
        arm.cgroup = unit_cgroup(service.lab, frontend, arm.unit)
    # nginx-rtmp's ingest and packaging cost ours something with no viewer at all
    idle_before = [cgroup_cpu_seconds(arm.cgroup) for arm in arms]
    idle_started = time.monotonic()
    time.sleep(IDLE_SECONDS)  # a measurement window, not a wait for something
    idle_seconds = time.monotonic() - idle_started
    for arm, before in zip(arms, idle_before):
        arm.idle_cpu_per_s = round((cgroup_cpu_seconds(arm.cgroup) - before) / idle_seconds, 4)
    print(f"viewer capacity on {service.lab.stack} (2 arms in lockstep, {args.step_seconds:.0f} s runs,"
          f" up to {args.limit} viewers, {deadline - time.monotonic():.0f} s left for them); idle nginx CPU s/s:"
          f" ours {arms[0].idle_cpu_per_s}, bare {arms[1].idle_cpu_per_s}", flush=True)
    for arm in arms:
        arm.ramp = Ramp(lambda count, arm=arm: step(generator_, arm, count, args),
                        start=args.start, limit=args.limit, tries=args.tries)
    # both arms in lockstep, taking turns at going first; no run that could end past the deadline
    complete = ramp_viewers(*(arm.ramp for arm in arms), deadline=deadline, run_s=args.step_seconds + 5)

    ours, bare = arms
    # nginx's CPU at the same load: every count both arms served, summed (one run is noisy
    # on a shared host; the sum weighs the larger, steadier loads most)
    common = sorted({run["viewers"] for run in ours.runs if run["healthy"] and bare.run_at(run["viewers"])})
    ours_cpu = sum(ours.run_at(count)["nginx_cpu_per_s"] for count in common)
    bare_cpu = sum(bare.run_at(count)["nginx_cpu_per_s"] for count in common)
    figures = {
        "fragment_seconds": fragment_s,
        "ramp_complete": complete,
        "arms": {arm.name: arm_figures(arm) for arm in arms},
        "same_load": None if not common else {
            "viewers": common,
            "nginx_cpu_per_s": {arm.name: [arm.run_at(count)["nginx_cpu_per_s"] for count in common] for arm in arms},
            "ours_over_bare": round(ours_cpu / bare_cpu, 3),
            # where nginx, not the host, is the limit, capacity goes as 1 / CPU per viewer
            "bare_over_ours": round(bare_cpu / ours_cpu, 3),
            "ours_over_bare_net_of_idle": round((ours_cpu - len(common) * (ours.idle_cpu_per_s or 0))
                                                / (bare_cpu - len(common) * (bare.idle_cpu_per_s or 0)), 3),
        },
        "aim": {"fraction_of_ceiling": AIM,
                "ours_over_bare": round(ours.ramp.best / bare.ramp.best, 3) if bare.ramp.best else None,
                "met": bool(bare.ramp.best) and ours.ramp.best >= AIM * bare.ramp.best},
    }
    print_phase(figures, arms)
    return figures


def print_phase(figures: dict, arms: list[Arm]) -> None:
    fragments = "" if figures["fragment_seconds"] is None else f" (fragments of {figures['fragment_seconds']:g} s)"
    print(f"\n{'arm':<6} {'sustained':>9} {'first late':>10} {'nginx CPU s/s':>13} {'per viewer':>12}"
          f" {'net of idle':>12} {'generator':>9} {'host busy':>9}{fragments}")
    for arm in arms:
        assert arm.ramp is not None
        at = arm.run_at(arm.ramp.best) or {}
        print(f"{arm.name:<6} {arm.ramp.best:>9} {str(arm.ramp.bad or '-'):>10} {at.get('nginx_cpu_per_s', float('nan')):>13.3f}"
              f" {at.get('nginx_cpu_per_s_per_viewer', float('nan')) * 1000:>9.3f} ms"
              f" {at.get('nginx_cpu_per_s_per_viewer_net_of_idle', float('nan')) * 1000:>9.3f} ms"
              f" {at.get('generator_cpu_per_s', float('nan')):>9.3f} {at.get('host_busy', float('nan')):>9.0%}")
    if figures["same_load"]:
        same = figures["same_load"]
        print(f"nginx CPU at the same load ({', '.join(map(str, same['viewers']))} viewers): ours / bare ="
              f" {same['ours_over_bare']} (net of ours' idle cost {same['ours_over_bare_net_of_idle']});"
              f" where nginx is the limit, ours would serve {same['bare_over_ours']:.0%} of the ceiling's viewers")
    aim = figures["aim"]
    print(f"aim: ours >= {AIM:.0%} of the ceiling's viewers: {aim['ours_over_bare']} -> {'met' if aim['met'] else 'NOT met'}"
          f"{'' if figures['ramp_complete'] else ' (the ramp ran out of time before it was refined)'}", flush=True)


def requests_per_viewer_per_s(figures: dict) -> float | None:
    """What one viewer asks of ours each second (playlists and segments), at the most viewers served."""
    at = figures["arms"]["ours"]["at_sustained"]
    if not at or not at.get("duration_s"):
        return None
    return round((at["playlist_requests"] + at["segment_requests"]) / at["viewers"] / at["duration_s"], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    lab_arguments(parser, LOAD_STACK)
    ramp_arguments(parser, start=60, limit=960, limit_help="most viewers ever run (each is a connection; nginx has 1024 per worker)",
                   step_seconds=15, max_seconds=570)
    parser.add_argument("--fragment-seconds", type=lambda text: [float(value) for value in text.split(",")],
                        default=[None], metavar="S[,S...]",
                        help="ramp both servers once per fragment length, in this order, the lab reconfigured for each"
                             " (livestream_hls_fragment_seconds) and back to its own at the end; the first is the"
                             " baseline of the others (default: the lab as it is, once). Each takes its share of --max-seconds")
    parser.add_argument("--generator", nargs=2, metavar=("CA", "DOMAIN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generator:
        generator(*args.generator)
        return

    began = time.monotonic()
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    phases = []
    with bench_service(args.stack, reuse=args.reuse, keep=args.keep) as service:
        frontend = service.machines["frontend"]["name"]
        domain = service.summary["domain"]
        workers = nginx_workers(service, frontend)
        load_before = os.getloadavg()
        with bare_nginx(service, frontend, domain, workers):
            generator_ = Generator(service, frontend, domain)
            try:
                for number, fragment_s in enumerate(args.fragment_seconds):
                    # the time left, shared evenly by the phases still to run
                    left = began + args.max_seconds - TEARDOWN_SECONDS - time.monotonic()
                    deadline = time.monotonic() + left / (len(args.fragment_seconds) - number)
                    phases.append(phase(service, generator_, fragment_s, args, deadline))
            finally:
                generator_.close()
                if args.fragment_seconds != [None]:
                    service.configure()  # the lab's own settings again, for a benchmark that reuses it
        load_after = os.getloadavg()

    report = {
        "date": date,
        "host": host_info(load_before[0], load_after[0]),
        "settings": {
            "stack": service.lab.stack, "stream": STREAM, "nginx_workers": workers,
            "generator": "probes.hls.run_viewers in one process on the host, in the frontend's network namespace,"
                         " to both servers over the frontend's loopback (HTTPS, HTTP/1.1 keep-alive, TLS verified)",
            "start_viewers": args.start, "limit_viewers": args.limit, "step_seconds": args.step_seconds,
            "join_seconds": args.join_seconds, "max_seconds": args.max_seconds, "precision": "1/16 of the viewers",
            "tries": args.tries,
        },
        "phases": phases,
        "seconds": round(time.monotonic() - began, 1),
    }
    baseline = phases[0]
    for figures in phases:
        figures["requests_per_viewer_per_s"] = requests_per_viewer_per_s(figures)

    def over_baseline(figures: dict, arm: str) -> float | None:
        """An arm's sustained viewers at a fragment length against the first length's."""
        first = baseline["arms"][arm]["sustained_viewers"]
        return round(figures["arms"][arm]["sustained_viewers"] / first, 3) if first else None

    if len(phases) > 1:
        # a fragment length against the first: its viewers, and its nginx CPU per viewer, relative
        report["fragments"] = {
            "aim": {"ours_over_baseline": FRAGMENTS_AIM},
            **{f"{figures['fragment_seconds']:g}": {
                "ours_over_baseline": over_baseline(figures, "ours"),
                "bare_over_baseline": over_baseline(figures, "bare"),
                "requests_per_viewer_per_s": figures["requests_per_viewer_per_s"],
                "met": (over_baseline(figures, "ours") or 0) >= FRAGMENTS_AIM,
            } for figures in phases[1:]},
        }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(report, indent=2) + "\n")

    print()
    for figures in phases:
        fragments = "as the lab is" if figures["fragment_seconds"] is None else f"{figures['fragment_seconds']:g} s"
        print(f"fragments {fragments}: ours {figures['arms']['ours']['sustained_viewers']} viewers,"
              f" bare {figures['arms']['bare']['sustained_viewers']};"
              f" {figures['requests_per_viewer_per_s']} requests per viewer per second")
    for name, versus in report.get("fragments", {}).items():
        if name != "aim":
            print(f"fragments of {name} s against {baseline['fragment_seconds']:g} s: ours x{versus['ours_over_baseline']}"
                  f" (bare x{versus['bare_over_baseline']}); aim >= {FRAGMENTS_AIM}: {'met' if versus['met'] else 'NOT met'}")
    print(f"{report['seconds']:.0f} s; written to {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
