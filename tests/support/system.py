"""What the real peers need from the machine, how to check it, and how to install it.

Pure standard library: ``tests/suite.py`` imports this before pytest (and Django) start,
and the fixtures use the same checks so a test's skip reason names the same packages.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SIMPLESAMLPHP_WWW = Path("/usr/share/simplesamlphp/www")
OIDC_PEER_DIR = REPO / "tests" / "peers" / "oidc"


@functools.cache
def php_modules() -> frozenset[str]:
    php = shutil.which("php")
    if not php:
        return frozenset()
    try:
        out = subprocess.run([php, "-m"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(line.strip().lower() for line in out.splitlines() if line.strip())


def chromium_ok() -> bool:
    return CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)


def simplesamlphp_ok() -> bool:
    modules = php_modules()
    return SIMPLESAMLPHP_WWW.is_dir() and {"dom", "xml", "mbstring", "openssl"} <= modules


def node_ok() -> bool:
    return bool(shutil.which("node") and shutil.which("npm"))


def oidc_peer_ok() -> bool:
    return node_ok() and (OIDC_PEER_DIR / "node_modules").is_dir()


@dataclass(frozen=True)
class DebianNeed:
    name: str
    packages: tuple[str, ...]
    check: object  # Callable[[], bool]; kept loose so the dataclass stays hashable

    @property
    def install_command(self) -> str:
        return "apt-get install -y --no-install-recommends " + " ".join(self.packages)

    def ok(self) -> bool:
        return bool(self.check())  # type: ignore[operator]


CHROMIUM_NEED = DebianNeed("headless Chromium (browser tests)", ("chromium",), chromium_ok)
SIMPLESAMLPHP_NEED = DebianNeed(
    "SimpleSAMLphp (SAML IdP peer)",
    ("simplesamlphp", "php-cli", "php-xml", "php-mbstring"),
    simplesamlphp_ok,
)
DEBIAN_NEEDS = (CHROMIUM_NEED, SIMPLESAMLPHP_NEED)


def missing_reason(need: DebianNeed) -> str:
    return f"{need.name} is not installed: run `{need.install_command}` as root"


def oidc_missing_reason() -> str:
    if not node_ok():
        return "node oidc-provider peer: node and npm are not installed"
    return f"node oidc-provider peer: run `npm ci` in {OIDC_PEER_DIR.relative_to(REPO)}"


def _run(cmd: list[str], *, cwd: Path | None = None) -> bool:
    print("+ " + " ".join(cmd), flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        return subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL).returncode == 0
    except OSError as exc:
        print(f"  could not run {cmd[0]}: {exc}", flush=True)
        return False


def ensure_debian_packages() -> list[str]:
    """Install missing Debian packages when root; return the hints for what is still missing."""
    missing = [need for need in DEBIAN_NEEDS if not need.ok()]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        packages = sorted({p for need in missing for p in need.packages})
        _run(["apt-get", "update", "-q"])
        _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages])
        php_modules.cache_clear()
        missing = [need for need in DEBIAN_NEEDS if not need.ok()]
    return [missing_reason(need) for need in missing]


def ensure_node_packages() -> list[str]:
    """`npm ci` (or `npm install`) in the OIDC peer's folder when its node_modules is missing."""
    if not (OIDC_PEER_DIR / "package.json").exists() or (OIDC_PEER_DIR / "node_modules").is_dir():
        return []
    if not node_ok():
        return [oidc_missing_reason()]
    lock = (OIDC_PEER_DIR / "package-lock.json").exists()
    cmd = ["npm", "ci"] if lock else ["npm", "install"]
    _run([*cmd, "--no-audit", "--no-fund", "--loglevel=error"], cwd=OIDC_PEER_DIR)
    return [] if oidc_peer_ok() else [oidc_missing_reason()]
