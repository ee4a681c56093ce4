"""The backend, converged on a lab machine (reached through the bastion): one supervised
ffmpeg unit per stream, its key readable by root only."""

from pathlib import Path

from livestream_testing.clean import warnings
from livestream_testing.programs import metrics_collector

LAB = Path("/var/lib/livestream-lab/molecule")
testinfra_hosts = [f"ssh://molecule-backend?ssh_config={LAB / 'ssh_config'}"]


def test_ffmpeg_is_installed(host):
    assert host.exists("ffmpeg")


def test_the_default_stream_is_a_supervised_unit(host):
    unit = host.service("livestream-stream@test")
    assert unit.is_enabled
    assert host.check_output("systemctl show livestream-stream@test -p Restart") == "Restart=always"


def test_the_stream_key_is_for_root_only(host):
    env = host.file("/etc/livestream/streams/test.env")
    assert env.exists
    assert env.user == "root"
    assert env.mode & 0o077 == 0


def test_the_role_runs_clean(host):
    """No warning from ffmpeg on Debian 12 (livestream_testing.clean: tests/e2e/test_platform.py
    checks the same on the default release)."""
    with host.sudo():
        assert warnings("backend", host.check_output) == {}


def test_a_fresh_deploy_does_not_set_off_the_restart_alert(host):
    """Configured beside the frontend (configure.yml: side by side), every stream waited for
    the frontend's RTMP to answer instead of failing and starting again every 2 s until it did
    (about ten restarts each): fewer than LivestreamBackendUnitRestarting's 3 (a reload of the
    frontend's nginx after the push began may break it once)."""
    shown = host.check_output("systemctl show -p Id -p NRestarts 'livestream-stream@*'")
    # read as the metrics' collector reads it (LivestreamBackendUnitRestarting's source)
    restarts = {unit["Id"]: int(unit["NRestarts"]) for unit in metrics_collector().unit_properties(shown)}
    assert "livestream-stream@test.service" in restarts, shown
    assert all(count < 3 for count in restarts.values()), restarts
