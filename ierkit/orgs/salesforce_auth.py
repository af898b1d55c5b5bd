"""Salesforce credentials from the environment, and logging in with them.

Four ways in, tried in this order (the first whose variables are all set wins):

1. An existing session: ``SF_INSTANCE_URL`` + ``SF_SESSION_ID``. Cannot be renewed when it
   expires.
2. OAuth 2.0 JWT bearer flow (recommended): ``SF_USERNAME`` + ``SF_CONSUMER_KEY`` +
   ``SF_PRIVATE_KEY_FILE`` (the private key, PEM, whose certificate the External Client App, or
   a legacy Connected App, holds).
3. OAuth 2.0 client credentials flow: ``SF_CLIENT_ID`` + ``SF_CLIENT_SECRET``; needs a My
   Domain in ``SF_DOMAIN``.
4. Username + password + security token (SOAP ``login()``): ``SF_USERNAME`` + ``SF_PASSWORD`` +
   ``SF_SECURITY_TOKEN`` (may be empty when the login IP is trusted). Salesforce is retiring
   SOAP login: it is off in new orgs and absent from API 65.0 on. For older orgs only.

``SF_DOMAIN``: ``login`` (production, default), ``test`` (sandbox) or a My Domain such as
``acme.my`` (also accepted: ``acme.my.salesforce.com`` or ``https://acme.my.salesforce.com``).

Secrets (password, token, client secret, session id, the private key) never appear in an error
or a log line: errors name variables, and any text taken from a failed login is redacted.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests
from jwt.exceptions import PyJWTError  # PyJWT comes with simple-salesforce (pyjwt[crypto])
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from ierkit.orgs.base import OrgError

log = logging.getLogger("ierkit.salesforce")

#: API version ierkit speaks (Bulk API 2.0 query needs 47.0 or later).
API_VERSION = "59.0"

METHOD_SESSION = "session id"
METHOD_JWT = "OAuth JWT bearer"
METHOD_CLIENT_CREDENTIALS = "OAuth client credentials"
METHOD_PASSWORD = "username + password + security token (SOAP login)"

# Variable names, in one place: the README and the errors use the same words.
ENV_DOMAIN = "SF_DOMAIN"
ENV_USERNAME = "SF_USERNAME"
ENV_CONSUMER_KEY = "SF_CONSUMER_KEY"
ENV_PRIVATE_KEY_FILE = "SF_PRIVATE_KEY_FILE"
ENV_CLIENT_ID = "SF_CLIENT_ID"
ENV_CLIENT_SECRET = "SF_CLIENT_SECRET"
ENV_INSTANCE_URL = "SF_INSTANCE_URL"
ENV_SESSION_ID = "SF_SESSION_ID"
ENV_PASSWORD = "SF_PASSWORD"
ENV_SECURITY_TOKEN = "SF_SECURITY_TOKEN"

_METHODS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (METHOD_SESSION, (ENV_INSTANCE_URL, ENV_SESSION_ID)),
    (METHOD_JWT, (ENV_USERNAME, ENV_CONSUMER_KEY, ENV_PRIVATE_KEY_FILE)),
    (METHOD_CLIENT_CREDENTIALS, (ENV_CLIENT_ID, ENV_CLIENT_SECRET)),
    (METHOD_PASSWORD, (ENV_USERNAME, ENV_PASSWORD, ENV_SECURITY_TOKEN)),
)
_SECRET_VARS = (ENV_SESSION_ID, ENV_CLIENT_SECRET, ENV_PASSWORD, ENV_SECURITY_TOKEN)


class SalesforceAuthError(OrgError):
    """Credentials are missing or Salesforce refused them; the message names the variables."""


def _domain(text: str | None) -> str:
    """simple-salesforce's domain (``login``, ``test``, ``acme.my``) from what a user wrote."""
    value = (text or "login").strip().lower()
    value = value.removeprefix("https://").removeprefix("http://").rstrip("/")
    value = value.removesuffix(".salesforce.com")
    return value or "login"


@dataclass(frozen=True)
class Credentials:
    """How to log in, read from the environment. ``repr`` never shows a secret."""

    method: str
    domain: str
    values: Mapping[str, str] = field(repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        """The first complete set of variables, in the documented order.

        Raises:
            SalesforceAuthError: Naming the variables still missing for the method the user
                seems to be setting up (or all methods when nothing is set).
        """
        env = os.environ if env is None else env
        domain = _domain(env.get(ENV_DOMAIN))
        for method, names in _METHODS:
            if all(name in env and (env[name] or name == ENV_SECURITY_TOKEN) for name in names):
                if method == METHOD_CLIENT_CREDENTIALS and domain in ("login", "test"):
                    raise SalesforceAuthError(
                        f"{ENV_CLIENT_ID}/{ENV_CLIENT_SECRET} (client credentials) need your My "
                        f"Domain in {ENV_DOMAIN} (e.g. 'acme.my'), not '{domain}'"
                    )
                return cls(method, domain, {n: env[n] for n in names})
        # Nothing complete: name what is missing for the closest method.
        best = max(_METHODS, key=lambda m: sum(1 for n in m[1] if env.get(n)))
        set_count = sum(1 for n in best[1] if env.get(n))
        if set_count == 0:
            options = "; or ".join(f"{', '.join(names)} ({method})" for method, names in _METHODS)
            raise SalesforceAuthError(
                "no Salesforce credentials in the environment: set " + options
            )
        missing = [n for n in best[1] if n not in env or (not env[n] and n != ENV_SECURITY_TOKEN)]
        raise SalesforceAuthError(
            f"Salesforce login by {best[0]}: missing environment variable " + ", ".join(missing)
        )

    def secrets(self) -> list[str]:
        """Values that must never be shown (including the private key's text)."""
        found = [self.values[n] for n in _SECRET_VARS if self.values.get(n)]
        key_file = self.values.get(ENV_PRIVATE_KEY_FILE)
        if key_file:
            with contextlib.suppress(OSError):
                found.append(Path(key_file).read_text().strip())
        return [s for s in found if len(s) >= 4]

    def login(self, session: requests.Session | None = None) -> Salesforce:
        """A logged-in simple-salesforce client.

        Raises:
            SalesforceAuthError: When Salesforce refuses the login or the key file is
                unreadable; the message names the method and variables, never a value.
        """
        v = self.values
        connect = functools.partial(
            Salesforce, session=session, version=API_VERSION, domain=self.domain
        )
        try:
            if self.method == METHOD_SESSION:
                return connect(instance_url=v[ENV_INSTANCE_URL], session_id=v[ENV_SESSION_ID])
            if self.method == METHOD_JWT:
                key_path = Path(v[ENV_PRIVATE_KEY_FILE]).expanduser()
                _check_private_key(key_path)
                try:
                    return connect(
                        username=v[ENV_USERNAME],
                        consumer_key=v[ENV_CONSUMER_KEY],
                        privatekey_file=str(key_path),
                    )
                except (PyJWTError, ValueError, TypeError) as error:
                    # PEM armour around something that is not an unencrypted RSA key.
                    raise SalesforceAuthError(
                        f"{ENV_PRIVATE_KEY_FILE} ({key_path}) cannot sign the login: "
                        f"{type(error).__name__}; it must be the unencrypted RSA private key "
                        "(PEM) whose certificate the app holds"
                    ) from None
            if self.method == METHOD_CLIENT_CREDENTIALS:
                return connect(consumer_key=v[ENV_CLIENT_ID], consumer_secret=v[ENV_CLIENT_SECRET])
            log.warning(
                "logging in with username + password + security token (SOAP login): Salesforce "
                "is retiring it; switch to the OAuth JWT bearer flow (%s, %s, %s)",
                ENV_USERNAME,
                ENV_CONSUMER_KEY,
                ENV_PRIVATE_KEY_FILE,
            )
            return connect(
                username=v[ENV_USERNAME],
                password=v[ENV_PASSWORD],
                security_token=v[ENV_SECURITY_TOKEN],
            )
        except SalesforceAuthenticationFailed as error:
            # ``message`` is the class's template ("Response content: {content}"); the text
            # Salesforce sent is ``auth_message``.
            code = redact(str(getattr(error, "code", "") or ""), self.secrets())
            message = redact(str(getattr(error, "auth_message", "") or ""), self.secrets())
            raise SalesforceAuthError(
                f"Salesforce refused the login by {self.method} (domain '{self.domain}'): "
                f"{code}: {message}. Check {', '.join(self.values)}"
            ) from None
        except requests.RequestException as error:
            raise SalesforceAuthError(
                f"cannot reach Salesforce to log in by {self.method} (domain '{self.domain}'): "
                f"{type(error).__name__}"
            ) from None

    @property
    def renewable(self) -> bool:
        """Whether a new session can be had when this one expires."""
        return self.method != METHOD_SESSION


def _check_private_key(path: Path) -> None:
    """Refuse a key file that is missing, unreadable or not PEM, naming the variable."""
    if not path.is_file():
        raise SalesforceAuthError(f"{ENV_PRIVATE_KEY_FILE} points to {path}, which is not a file")
    try:
        head = path.read_bytes()[: 64 * 1024]
    except OSError as error:
        raise SalesforceAuthError(
            f"{ENV_PRIVATE_KEY_FILE} ({path}) cannot be read: {error.strerror or error}"
        ) from None
    if b"-----BEGIN" not in head or b"PRIVATE KEY-----" not in head:
        raise SalesforceAuthError(
            f"{ENV_PRIVATE_KEY_FILE} ({path}) is not a PEM private key (no '-----BEGIN ... "
            "PRIVATE KEY-----' line); give the server.key made with openssl, not the certificate"
        )


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
