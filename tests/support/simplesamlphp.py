"""SimpleSAMLphp 1.19 (Debian's package) as a real SAML 2.0 IdP for tests.

    idp = SimpleSAMLphpIdP(tmp_path, sps=[RemoteSP(entity_id, acs_url)]).start()
    idp.metadata_xml(); idp.sso_url; idp.users["jane"].attributes["mail"]
    idp.set_remote_sps([...])   # metadata files are read per request: no restart needed
    idp.stop()

Everything lives in a private folder (``SIMPLESAMLPHP_CONFIG_DIR``): the system's
``/etc/simplesamlphp`` is only read, never changed. The IdP's error pages answer HTTP 200,
so callers check the page (``looks_like_error``), not the status.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.certs import KeyPair, make_key_pair
from tests.support.net import free_port, wait_until
from tests.support.system import SIMPLESAMLPHP_WWW

SYSTEM_CONFIG = Path("/etc/simplesamlphp/config.php")
NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
AUTH_SOURCE = "orglogin-users"


@dataclass(frozen=True)
class RemoteSP:
    """One service provider the IdP will answer (``saml20-sp-remote.php``)."""

    entity_id: str
    acs_url: str
    certificate_b64: str | None = None  # our SP cert, base64 DER, when AuthnRequests are signed
    sign_assertion: bool = True
    sign_response: bool = False
    validate_authnrequest: bool = False
    slo_url: str | None = None
    extra: dict = field(default_factory=dict)  # any other SimpleSAMLphp SP option


@dataclass(frozen=True)
class IdPUser:
    username: str
    password: str
    attributes: dict[str, list[str]]

    @property
    def email(self) -> str:
        return self.attributes["mail"][0]

    @property
    def uid(self) -> str:
        return self.attributes["uid"][0]


def make_user(
    username: str,
    given_name: str,
    surname: str,
    *,
    domain: str = "acme.test",
    password: str | None = None,
    mail: str | None = None,
    **extra: str | list[str],
) -> IdPUser:
    attributes: dict[str, list[str]] = {
        "uid": [username],
        "mail": [mail or f"{username}@{domain}"],
        "givenName": [given_name],
        "sn": [surname],
        "displayName": [f"{given_name} {surname}"],
        "eduPersonPrincipalName": [f"{username}@{domain}"],
    }
    for name, value in extra.items():
        attributes[name] = [value] if isinstance(value, str) else list(value)
    return IdPUser(username, password or f"{username}-pass", attributes)


def default_users(domain: str = "acme.test") -> list[IdPUser]:
    return [
        make_user("jane", "Jane", "Doe", domain=domain),
        make_user("john", "John", "Smith", domain=domain),
        make_user("ana", "Ana", "García", domain=domain),
    ]


def php(value) -> str:
    """A Python value as a PHP literal (str, bool, None, int, list, dict)."""
    if isinstance(value, RawPHP):
        return value.code
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(php(v) for v in value) + "]"
    if isinstance(value, dict):
        return "[" + ", ".join(f"{php(k)} => {php(v)}" for k, v in value.items()) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as PHP")


@dataclass(frozen=True)
class RawPHP:
    code: str


class SimpleSAMLphpIdP:
    def __init__(
        self,
        workdir: Path,
        *,
        sps: list[RemoteSP] | None = None,
        users: list[IdPUser] | None = None,
        name_id_format: str = NAMEID_PERSISTENT,
        name_id_attribute: str | None = "uid",
        key_pair: KeyPair | None = None,
        host: str = "127.0.0.1",
        want_signed_requests: bool = False,
    ) -> None:
        self.workdir = Path(workdir)
        self.host = host
        self.port = 0
        self.name_id_format = name_id_format
        self.name_id_attribute = name_id_attribute
        # validate.authnrequest on the hosted IdP: its metadata then says
        # WantAuthnRequestsSigned, so an SP configured from it signs its requests.
        self.want_signed_requests = want_signed_requests
        self.key_pair = key_pair or make_key_pair("OrgLogin test SimpleSAMLphp IdP")
        self._sps = list(sps or [])
        self._users = list(users or default_users())
        self._process: subprocess.Popen | None = None
        self._log = None

    # --- folders -------------------------------------------------------------------------
    @property
    def config_dir(self) -> Path:
        return self.workdir / "config"

    @property
    def metadata_dir(self) -> Path:
        return self.workdir / "metadata"

    @property
    def cert_dir(self) -> Path:
        return self.workdir / "cert"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "log"

    # --- addresses -----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def metadata_url(self) -> str:
        return self.base_url + "saml2/idp/metadata.php"

    @property
    def entity_id(self) -> str:
        # The hosted IdP is keyed `__DYNAMIC:1__`: its entity ID is its metadata URL.
        return self.metadata_url

    @property
    def sso_url(self) -> str:
        return self.base_url + "saml2/idp/SSOService.php"

    @property
    def slo_url(self) -> str:
        return self.base_url + "saml2/idp/SingleLogoutService.php"

    @property
    def idp_certificate_pem(self) -> str:
        return self.key_pair.certificate_pem

    @property
    def idp_certificate_b64(self) -> str:
        return self.key_pair.certificate_b64

    @property
    def users(self) -> dict[str, IdPUser]:
        return {user.username: user for user in self._users}

    @property
    def remote_sps(self) -> list[RemoteSP]:
        return list(self._sps)

    # --- configuration files -------------------------------------------------------------
    def _write_config(self) -> None:
        for folder in ("config", "metadata", "cert", "log", "data", "tmp", "sessions"):
            (self.workdir / folder).mkdir(parents=True, exist_ok=True)
        (self.cert_dir / "idp.key").write_text(self.key_pair.private_key_pem)
        (self.cert_dir / "idp.crt").write_text(self.key_pair.certificate_pem)

        base = SYSTEM_CONFIG.read_text()
        # The Debian config ends by loading the machine's secrets; ours are set below.
        base = "\n".join(line for line in base.splitlines() if "secrets.inc.php" not in line)
        cookie_suffix = str(self.port)  # several IdPs on 127.0.0.1 must not share cookies
        overrides = {
            "baseurlpath": self.base_url,
            "certdir": str(self.cert_dir) + "/",
            "metadatadir": str(self.metadata_dir) + "/",
            "loggingdir": str(self.log_dir) + "/",
            "datadir": str(self.workdir / "data") + "/",
            "tempdir": str(self.workdir / "tmp"),
            "logging.handler": "file",
            "logging.logfile": "simplesamlphp.log",
            "logging.level": RawPHP("SimpleSAML\\Logger::INFO"),
            "secretsalt": secrets.token_hex(16),
            "auth.adminpassword": secrets.token_hex(8),
            "timezone": "UTC",
            "enable.saml20-idp": True,
            "session.cookie.secure": False,
            # Debian's config sends SameSite=None, which Chromium drops without Secure (plain
            # http here): every browser login would end on "Missing cookie".
            "session.cookie.samesite": "Lax",
            "language.cookie.samesite": "Lax",
            "session.cookie.name": f"SSPSession{cookie_suffix}",
            "session.phpsession.cookiename": f"SSPPHP{cookie_suffix}",
            "session.authtoken.cookiename": f"SSPAuthToken{cookie_suffix}",
            "session.phpsession.savepath": str(self.workdir / "sessions"),
            "store.type": "phpsession",
            "production": False,
            "showerrors": True,
            "errorreporting": False,
            "module.enable": {"exampleauth": True, "core": True, "saml": True, "admin": True},
        }
        lines = [base.rstrip(), "", "// --- OrgLogin test overrides ---"]
        lines += [f"$config[{php(k)}] = {php(v)};" for k, v in overrides.items()]
        (self.config_dir / "config.php").write_text("\n".join(lines) + "\n")
        self._write_authsources()
        self._write_idp_hosted()
        self._write_sp_remote()

    def _write_authsources(self) -> None:
        users = {f"{u.username}:{u.password}": u.attributes for u in self._users}
        sources = {
            "admin": ["core:AdminPassword"],
            AUTH_SOURCE: {0: "exampleauth:UserPass", **users},
        }
        self._write_php(self.config_dir / "authsources.php", "$config", sources)

    def _write_idp_hosted(self) -> None:
        idp = {
            "host": "__DEFAULT__",
            "privatekey": "idp.key",
            "certificate": "idp.crt",
            "auth": AUTH_SOURCE,
            "NameIDFormat": self.name_id_format,
            "attributes.NameFormat": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
            "signature.algorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        }
        if self.want_signed_requests:
            idp["validate.authnrequest"] = True
        if self.name_id_attribute:
            # A stable NameID equal to the user's uid, so tests can predict the subject.
            idp["simplesaml.nameidattribute"] = self.name_id_attribute
        self._write_php(
            self.metadata_dir / "saml20-idp-hosted.php", "$metadata", {"__DYNAMIC:1__": idp}
        )

    def _write_sp_remote(self) -> None:
        entries = {}
        for sp in self._sps:
            entry: dict = {
                "AssertionConsumerService": [
                    {
                        "Binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
                        "Location": sp.acs_url,
                        "index": 0,
                    }
                ],
                "NameIDFormat": self.name_id_format,
                "saml20.sign.assertion": sp.sign_assertion,
                "saml20.sign.response": sp.sign_response,
                "validate.authnrequest": sp.validate_authnrequest,
                "attributes.NameFormat": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
            }
            if sp.certificate_b64:
                entry["certData"] = sp.certificate_b64
            if sp.slo_url:
                entry["SingleLogoutService"] = [
                    {
                        "Binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
                        "Location": sp.slo_url,
                    }
                ]
            entry.update(sp.extra)
            entries[sp.entity_id] = entry
        self._write_php(self.metadata_dir / "saml20-sp-remote.php", "$metadata", entries)

    @staticmethod
    def _write_php(path: Path, variable: str, entries: dict) -> None:
        body = [f"<?php\n{variable} = [];"]
        body += [f"{variable}[{php(k)}] = {php(v)};" for k, v in entries.items()]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(body) + "\n")
        tmp.replace(path)  # atomic: a request never reads half a file

    def set_remote_sps(self, sps: list[RemoteSP]) -> None:
        """Replace the SPs this IdP answers; takes effect on the next request."""
        self._sps = list(sps)
        if self.port:
            self._write_sp_remote()

    def add_remote_sp(self, sp: RemoteSP) -> None:
        self.set_remote_sps([s for s in self._sps if s.entity_id != sp.entity_id] + [sp])

    def set_users(self, users: list[IdPUser]) -> None:
        self._users = list(users)
        if self.port:
            self._write_authsources()

    # --- process -------------------------------------------------------------------------
    def start(self, timeout: float = 15.0) -> SimpleSAMLphpIdP:
        if not shutil.which("php") or not SIMPLESAMLPHP_WWW.is_dir():
            raise RuntimeError("SimpleSAMLphp is not installed (see tests/support/system.py)")
        self.port = free_port(self.host)
        self._write_config()
        env = {
            **os.environ,
            "SIMPLESAMLPHP_CONFIG_DIR": str(self.config_dir),
            "PHP_CLI_SERVER_WORKERS": "4",
        }
        self._log = open(self.log_dir / "php-server.log", "wb")  # noqa: SIM115
        self._process = subprocess.Popen(
            # opcache off: it re-checks files only every 2 s, so SPs or users rewritten by
            # the previous test would still be served.
            ["php", "-d", "opcache.enable=0", "-S", f"{self.host}:{self.port}",
             "-t", str(SIMPLESAMLPHP_WWW)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers die with it (see stop)
        )
        if not wait_until(self._answers, timeout=timeout):
            self.stop()
            raise RuntimeError(
                f"SimpleSAMLphp did not answer on {self.metadata_url} within {timeout}s; "
                f"see {self.log_dir}"
            )
        return self

    def _answers(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError("php -S exited")
        response = requests.get(self.metadata_url, timeout=2)
        return response.status_code == 200 and "EntityDescriptor" in response.text

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> SimpleSAMLphpIdP:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- reading it ----------------------------------------------------------------------
    def metadata_xml(self) -> str:
        response = requests.get(self.metadata_url, timeout=10)
        response.raise_for_status()
        if "EntityDescriptor" not in response.text:
            raise RuntimeError(f"SimpleSAMLphp metadata is not XML: {response.text[:500]}")
        return response.text

    def log_text(self) -> str:
        path = self.log_dir / "simplesamlphp.log"
        return path.read_text(errors="replace") if path.exists() else ""


def looks_like_error(html: str) -> bool:
    """SimpleSAMLphp's error pages answer 200: recognise them by their content."""
    markers = (
        "SimpleSAML\\Error",
        "SimpleSAML_Error",
        "Unhandled exception",
        "errorreport.php",
        "Metadata not found",
        "Backtrace",
    )
    return any(marker in html for marker in markers)


# --- driving a login without a browser ------------------------------------------------------
@dataclass(frozen=True)
class IdPPost:
    """The auto-submitting form SimpleSAMLphp answers with after a successful log-in."""

    action: str
    saml_response: str  # base64, as posted to the ACS
    relay_state: str | None

    @property
    def response_xml(self) -> str:
        import base64

        return base64.b64decode(self.saml_response).decode()


def authn_request_url(
    sso_url: str,
    *,
    sp_entity_id: str,
    acs_url: str,
    request_id: str | None = None,
    relay_state: str | None = None,
    name_id_format: str = NAMEID_PERSISTENT,
) -> str:
    """A minimal, unsigned AuthnRequest for the HTTP-Redirect binding (deflate + base64)."""
    import base64
    import datetime as dt
    import zlib
    from urllib.parse import urlencode
    from xml.sax.saxutils import quoteattr

    request_id = request_id or "_" + secrets.token_hex(16)
    instant = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    xml = (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'ID={quoteattr(request_id)} Version="2.0" IssueInstant="{instant}" '
        f"Destination={quoteattr(sso_url)} AssertionConsumerServiceURL={quoteattr(acs_url)} "
        'ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">'
        f"<saml:Issuer>{sp_entity_id}</saml:Issuer>"
        f'<samlp:NameIDPolicy Format="{name_id_format}" AllowCreate="true"/>'
        "</samlp:AuthnRequest>"
    )
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate, no zlib header
    deflated = compressor.compress(xml.encode()) + compressor.flush()
    query = {"SAMLRequest": base64.b64encode(deflated).decode()}
    if relay_state is not None:
        query["RelayState"] = relay_state
    return sso_url + "?" + urlencode(query)


def parse_saml_post(html: str) -> IdPPost:
    import lxml.html

    if looks_like_error(html) or "SAMLResponse" not in html:
        raise AssertionError(f"SimpleSAMLphp did not answer with a SAMLResponse: {html[:2000]}")
    doc = lxml.html.fromstring(html)
    form = doc.xpath("//form[.//input[@name='SAMLResponse']]")[0]
    fields = {i.get("name"): i.get("value") for i in form.xpath(".//input[@name]")}
    return IdPPost(
        action=form.get("action"),
        saml_response=fields["SAMLResponse"],
        relay_state=fields.get("RelayState"),
    )


def login_at_idp(session: requests.Session, start_url: str, user: IdPUser) -> IdPPost:
    """Follow ``start_url`` (an SSO URL) to the IdP's log-in form, log in as ``user``, and
    return the form the IdP would auto-post to the SP's ACS."""
    from urllib.parse import parse_qs, urlsplit

    page = session.get(start_url, timeout=20)
    if "SAMLResponse" in page.text:  # the IdP already has a session for this client
        return parse_saml_post(page.text)
    auth_state = parse_qs(urlsplit(page.url).query).get("AuthState", [None])[0]
    if not auth_state or looks_like_error(page.text):
        raise AssertionError(f"no SimpleSAMLphp log-in form at {page.url}: {page.text[:2000]}")
    answer = session.post(
        page.url.split("?")[0],
        data={"username": user.username, "password": user.password, "AuthState": auth_state},
        timeout=20,
    )
    return parse_saml_post(answer.text)
