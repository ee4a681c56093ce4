"""Throwaway TLS material for stand-in services: a CA and a server certificate it signs,
made with the openssl command line (what the lab does for pebble, too)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass
class TlsFiles:
    ca: Path
    certificate: Path
    key: Path


def throwaway_ca(directory: Path, names: list[str], *, ips: tuple[str, ...] = ("127.0.0.1",)) -> TlsFiles:
    """A CA and a certificate for ``names`` (and ``ips``) under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    key, request, certificate = directory / "server.key", directory / "server.csr", directory / "server.pem"
    extensions = directory / "server.ext"
    alt_names = [f"DNS:{name}" for name in names] + [f"IP:{ip}" for ip in ips]
    extensions.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join(alt_names)}\n", encoding="ascii")

    def openssl(*arguments: str) -> None:
        subprocess.run(["openssl", *arguments], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(ca_key), "-out", str(ca), "-days", "2", "-subj", "/CN=livestream probe throwaway CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(request), "-subj", f"/CN={names[0]}")
    openssl("x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(certificate), "-days", "2", "-extfile", str(extensions))
    return TlsFiles(ca=ca, certificate=certificate, key=key)
