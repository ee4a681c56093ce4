"""The lab's AWS API: a moto server on loopback, with Debian and Ubuntu AMIs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

AMIS_PATH = Path(__file__).with_name("amis.json")
REGION = "us-east-1"
# moto accepts any credentials; these make the standard AWS environment complete.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class MotoServer:
    """A moto server process, started on a loopback port and reached over HTTP."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", log_path: Path | None = None,
                 env: dict[str, str] | None = None, recording_dir: Path | None = None):
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        # the lab marks its processes through the environment (to find them all again)
        self.extra_env = env or {}
        self.process: subprocess.Popen | None = None
        # moto's recorder writes to ./moto_recording by default: keep it out of the cwd
        # (the lab keeps it in its own state directory, which `down` removes)
        if recording_dir:
            recording_dir.mkdir(parents=True, exist_ok=True)
        self.recording_path = Path(recording_dir or tempfile.mkdtemp(prefix="moto-recording-")) / "requests.jsonl"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def environment(self, region: str = REGION) -> dict[str, str]:
        """The standard AWS environment that points boto3 and Ansible at this server."""
        return {
            **CREDENTIALS,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_ENDPOINT_URL": self.url,
        }

    def start(self, timeout: float = 30.0) -> "MotoServer":
        env = {
            **os.environ,
            "MOTO_AMIS_PATH": str(AMIS_PATH),
            "MOTO_ENABLE_RECORDING": "True",
            "MOTO_RECORDER_FILEPATH": str(self.recording_path),
            **self.extra_env,
        }
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        moto_server = Path(sys.executable).with_name("moto_server")
        self.process = subprocess.Popen(
            [str(moto_server), "-H", self.host, "-p", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"moto_server on port {self.port} exited with {self.process.returncode}")
            try:
                self.api("GET", "/moto-api/data.json")
                return
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"moto_server did not answer on {self.url} within {timeout}s") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def api(self, method: str, path: str, body: bytes | None = None) -> bytes:
        request = urllib.request.Request(self.url + path, data=body, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()

    def reset(self) -> None:
        """Forget every resource: the next test starts from an empty account."""
        self.api("POST", "/moto-api/reset")

    # moto's request recorder counts the API calls a playbook makes.
    def start_recording(self) -> None:
        self.api("POST", "/moto-api/recorder/reset-recording")
        self.api("POST", "/moto-api/recorder/start-recording")

    def stop_recording(self) -> list[dict]:
        self.api("POST", "/moto-api/recorder/stop-recording")
        raw = self.api("GET", "/moto-api/recorder/download-recording").decode()
        return [json.loads(line) for line in raw.splitlines() if line.strip()]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        shutil.rmtree(self.recording_path.parent, ignore_errors=True)

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
