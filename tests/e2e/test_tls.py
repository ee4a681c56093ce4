"""The frontend's HTTPS passes a real scanner's check against Mozilla's "intermediate"
profile (https://ssl-config.mozilla.org/): sslyze, from the internet (the lab's root
namespace), at the frontend's address with the service's domain as SNI.

Trust: sslyze's Mozilla check counts a certificate chain that validates against no trust
store as a failure ("certificate_path_validation"). The lab's certificates come from
pebble, whose root no public store holds, so the scan gets the lab's ACME issuing root as
a trust store of its own (--certinfo_ca_file), the way a viewer's machine holds Let's
Encrypt's root. Every criterion of the check stays in; a test below shows that the chain
validates against that root and against no public store, so the pass owes nothing to
anything else.

What sslyze leaves out of its check: the profile's HSTS max-age (commented out in
sslyze) is checked here from the same scan; OCSP stapling is not checked (sslyze calls it
optional, and Let's Encrypt no longer runs OCSP).

sslyze lives in a venv of its own (requirements-tls.txt -> .venv-tls, `make setup-lab`):
it pins a cryptography older than ours.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from livestream_testing import ROOT

pytestmark = pytest.mark.lab

TLS_VENV = Path(os.environ.get("LIVESTREAM_TLS_VENV", ROOT / ".venv-tls"))
COMPLIANCE_TITLE = "COMPLIANCE AGAINST TLS CONFIGURATION"


@dataclass
class Scan:
    profile: str
    run: subprocess.CompletedProcess
    report: dict

    @property
    def findings(self) -> str:
        """The scanner's verdict and what it found (the end of its console report), or
        everything it said when it got no verdict."""
        text = self.run.stdout
        verdict = text[text.index(COMPLIANCE_TITLE):] if COMPLIANCE_TITLE in text else text[-6000:]
        return f"sslyze --mozilla_config={self.profile} (exit {self.run.returncode}):\n{verdict}{self.run.stderr[-2000:]}"

    def compliant(self, domain: str) -> bool:
        # sslyze exits 0 when it could not reach the server at all: the verdict line counts
        return self.run.returncode == 0 and f"{domain}:443: OK - Compliant." in self.run.stdout

    @property
    def result(self) -> dict:
        (server,) = self.report["server_scan_results"]
        assert server["scan_status"] == "COMPLETED", self.findings
        return server["scan_result"]


def _tls_tool(name: str) -> Path:
    path = TLS_VENV / "bin" / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make setup-lab` (it builds {TLS_VENV} from requirements-tls.txt)")
    return path


def _scan(lab, profile: str, directory: Path, *extra: str) -> Scan:
    report = directory / f"sslyze-{profile}.json"
    # host:port{ip}: connect to the frontend's lab address, send the domain as SNI
    target = f"{lab['domain']}:443{{{lab['frontend_address']}}}"
    run = subprocess.run(
        [str(_tls_tool("sslyze")), f"--mozilla_config={profile}", f"--certinfo_ca_file={lab['ca_cert']}",
         f"--json_out={report}", *extra, target],
        capture_output=True, text=True, timeout=300, check=False)
    return Scan(profile, run, json.loads(report.read_text()) if report.exists() else {"server_scan_results": []})


def _profile(name: str) -> dict:
    """Mozilla's profile as the installed sslyze knows it."""
    code = ("import sys\n"
            "from sslyze.mozilla_tls_profile.tls_config_checker import MozillaTlsConfiguration, TlsConfigurationEnum\n"
            "print(MozillaTlsConfiguration.get(TlsConfigurationEnum(sys.argv[1])).model_dump_json())\n")
    run = subprocess.run([str(_tls_tool("python")), "-c", code, name],
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def intermediate(lab, tmp_path_factory):
    # --http_headers: the HSTS header, which sslyze's Mozilla check leaves out
    return _scan(lab, "intermediate", tmp_path_factory.mktemp("tls"), "--http_headers")


def test_the_frontend_tls_configuration_passes_mozillas_intermediate_profile(lab, intermediate):
    assert intermediate.compliant(lab["domain"]), intermediate.findings


def test_the_certificate_is_trusted_through_the_lab_acme_root_and_nothing_else(lab, intermediate):
    (deployment,) = intermediate.result["certificate_info"]["result"]["certificate_deployments"]
    trusted_by = {result["trust_store"]["name"]: result["was_validation_successful"]
                  for result in deployment["path_validation_results"]}
    # sslyze names the store --certinfo_ca_file gives it "Supplied CA file"
    assert trusted_by.pop("Supplied CA file") is True, intermediate.findings
    # Mozilla, Apple, Windows...: the lab's chain is not theirs, so the verdict above rests
    # on the lab's root alone
    assert trusted_by and not any(trusted_by.values()), trusted_by
    leaf = deployment["received_certificate_chain"][0]
    assert lab["domain"] in leaf["subject_alternative_name"]["dns_names"]


def test_hsts_lasts_as_long_as_the_profile_asks(intermediate):
    headers = intermediate.result["http_headers"]
    assert headers["status"] == "COMPLETED", headers.get("error_trace")
    hsts = headers["result"]["strict_transport_security_header"]
    assert hsts is not None, "no Strict-Transport-Security header on https://<domain>/"
    assert hsts["max_age"] >= _profile("intermediate")["hsts_min_age"], hsts


def test_the_scanner_fails_a_profile_the_frontend_does_not_meet(lab, tmp_path_factory):
    # The control: "modern" allows TLS 1.3 only, and the frontend also speaks TLS 1.2 (as
    # "intermediate" wants, for older clients). The same scan must say so.
    modern = _scan(lab, "modern", tmp_path_factory.mktemp("tls"))
    assert modern.run.returncode == 1, modern.findings
    assert "tls_versions" in modern.findings and "TLSv1.2" in modern.findings, modern.findings
