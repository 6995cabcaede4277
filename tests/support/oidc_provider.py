"""node `oidc-provider` 9 (OpenID Certified) as a real OpenID Provider for tests.

    peer = OidcProviderPeer(tmp_path, redirect_uris=[redirect_uri]).start()
    peer.issuer, peer.client_id, peer.client_secret, peer.accounts["jane"]["email"]
    callback_url = peer.log_in(authorization_url, "jane", redirect_uri=redirect_uri)
    peer.stop()

The provider script is ``tests/peers/oidc/provider.mjs``; its npm packages are installed on
first use (``npm ci`` from the committed lock file). ``log_in`` drives the provider's
development log-in and consent pages with plain HTTP (no browser) and returns the URL the
provider redirects the browser to (ours, not followed).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from tests.support.net import free_port, wait_until

PEER_DIR = Path(__file__).resolve().parents[1] / "peers" / "oidc"
START_TIMEOUT = 30.0

DEFAULT_ACCOUNTS: dict[str, dict[str, Any]] = {
    "jane": {
        "email": "jane@acme.test",
        "email_verified": True,
        "given_name": "Jane",
        "family_name": "Doe",
        "name": "Jane Doe",
    },
    "sam": {
        "email": "sam@acme.test",
        "email_verified": True,
        "given_name": "Sam",
        "family_name": "Lee",
        "name": "Sam Lee",
    },
}


class PeerUnavailable(RuntimeError):
    """node/npm missing, or the npm packages could not be installed: a missing peer."""


def node_missing_reason() -> str | None:
    if not shutil.which("node"):
        return "node oidc-provider peer: `node` is not installed (Debian: apt-get install nodejs)"
    if not (PEER_DIR / "node_modules").is_dir() and not shutil.which("npm"):
        return "node oidc-provider peer: `npm` is not installed and node_modules is missing"
    return None


def ensure_node_modules() -> None:
    """`npm ci` (or `npm install` without a lock file) when node_modules is missing."""
    if (PEER_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    reason = node_missing_reason()
    if reason:
        raise PeerUnavailable(reason)
    command = "ci" if (PEER_DIR / "package-lock.json").exists() else "install"
    result = subprocess.run(
        ["npm", command, "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=PEER_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0 or not (PEER_DIR / "node_modules" / "oidc-provider").is_dir():
        raise PeerUnavailable(
            f"node oidc-provider peer: `npm {command}` in {PEER_DIR} failed "
            f"(exit {result.returncode}): {result.stderr.strip()[-500:]}"
        )


class _Forms(HTMLParser):
    """The forms of a page: action, method and the inputs' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": values.get("action", ""), "method": "post", "fields": {}})
            self.forms[-1]["method"] = values.get("method", "get").lower()
        elif tag in ("input", "button") and self.forms and values.get("name"):
            self.forms[-1]["fields"][values["name"]] = values.get("value", "")


def page_forms(html: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


class OidcProviderPeer:
    def __init__(
        self,
        workdir: Path,
        *,
        redirect_uris: list[str],
        client_id: str = "orglogin-peer",
        client_secret: str | None = None,
        auth_method: str = "client_secret_basic",
        accounts: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.redirect_uris = list(redirect_uris)
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.auth_method = auth_method
        self.accounts = accounts or DEFAULT_ACCOUNTS
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.log_path = self.workdir / "oidc-provider.log"

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OidcProviderPeer:
        ensure_node_modules()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = {
            "host": "127.0.0.1",
            "port": self.port,
            "issuer": self.issuer,
            "clients": [
                {
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "redirect_uris": self.redirect_uris,
                    "token_endpoint_auth_method": self.auth_method,
                }
            ],
            "accounts": self.accounts,
        }
        config_path = self.workdir / "oidc-provider.json"
        config_path.write_text(json.dumps(config, indent=2))
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                ["node", str(PEER_DIR / "provider.mjs")],
                cwd=PEER_DIR,
                env={**os.environ, "OIDC_PEER_CONFIG": str(config_path)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        discovery = self.issuer + "/.well-known/openid-configuration"

        def answered() -> bool:
            if self.process.poll() is not None:
                return True  # it died: stop waiting
            return requests.get(discovery, timeout=1).status_code == 200

        if not wait_until(answered, timeout=START_TIMEOUT) or self.process.poll() is not None:
            log_tail = self.log()[-2000:]
            self.stop()
            raise RuntimeError(f"oidc-provider did not start on {self.issuer}:\n{log_tail}")
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    # --- the browser's part, without a browser ------------------------------------------------
    def log_in(
        self,
        authorization_url: str,
        account: str,
        *,
        redirect_uri: str,
        session: requests.Session | None = None,
        max_steps: int = 12,
    ) -> str:
        """Follow the provider's redirects, sign in as `account` on the dev log-in page, grant
        consent, and return the URL of the final redirect to `redirect_uri` (not followed)."""
        browser = session or requests.Session()
        response = browser.get(authorization_url, allow_redirects=False, timeout=10)
        for _ in range(max_steps):
            if response.is_redirect:
                location = urljoin(response.url, response.headers["Location"])
                if location.startswith(redirect_uri):
                    return location
                response = browser.get(location, allow_redirects=False, timeout=10)
                continue
            if response.status_code != 200:
                raise AssertionError(f"provider answered {response.status_code}: {response.text}")
            forms = [f for f in page_forms(response.text) if "prompt" in f["fields"]]
            if not forms:
                raise AssertionError(f"no log-in or consent form at {response.url}")
            form = forms[0]
            fields = dict(form["fields"])
            if fields["prompt"] == "login":
                fields.update(login=account, password="any-password")
            action = urljoin(response.url, form["action"])
            response = browser.post(action, data=fields, allow_redirects=False, timeout=10)
        raise AssertionError(f"no redirect to {redirect_uri} after {max_steps} steps")
