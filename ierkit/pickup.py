"""Unattended pickup of tracking extracts from Marketing Cloud's SFTP (``sftp://`` URLs).

An Automation Studio file transfer activity drops each day's Tracking Extract into the SFTP's
Export folder. ``--extract sftp://user@host[:port]/Export/tracking_*.zip`` picks them up:

- **Auth** by key only, never a password: the private key in ``IERKIT_SFTP_KEY_FILE``
  (passphrase in ``IERKIT_SFTP_KEY_PASSPHRASE``), else the keys of a running SSH agent
  (``SSH_AUTH_SOCK``).
- **Host key** checked before anything is sent: against a pinned fingerprint
  ``IERKIT_SFTP_HOST_KEY_SHA256`` (``SHA256:...`` as ``ssh-keygen -lf`` prints it), else against
  ``IERKIT_SFTP_KNOWN_HOSTS`` (default ``~/.ssh/known_hosts``). A mismatch or an unknown host
  stops with a clear error; nothing is trusted on first use.
- **Download** to a temporary name in a private folder, hashing as it goes; the bytes received
  must equal the size the server listed, and the file must not have changed on the server
  meanwhile (a transfer activity still writing it). Only then is it renamed and handed on.
- **Ledger** (``ledger.jsonl``: name, size, mtime, sha256, when): a file is applied once. A rerun
  finds nothing new and does nothing; a new file is picked up by the next run. The same bytes
  under another name or a new mtime are recorded, not applied twice. ``collect`` commits the
  ledger only after the caller applied the files, so a crash in between applies them again on
  the next run (harmless for ``aggregate``: the event store deduplicates).

``collect`` is for ``aggregate`` (apply every new file once); ``fetch_latest`` is for the
read-only commands (``sync-health``, ``check``, ``weekly``): the newest matching file, downloaded
once into the cache and reused while it is the newest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import fnmatch
import hashlib
import json
import os
import posixpath
import shutil
import socket
import stat
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

import paramiko

from ierkit import _files
from ierkit.errors import IerkitError

#: Seconds to wait for the TCP connection, the SSH banner and each SFTP request.
TIMEOUT_S: Final = 30.0
_DEFAULT_PORT: Final = 22
_BUFFER: Final = 1024 * 1024


class PickupError(IerkitError):
    """SFTP pickup failed; the message names the server or file and what to do."""


@dataclass(frozen=True)
class SftpLocation:
    """Where extracts are picked up: ``sftp://user@host[:port]/folder/pattern``."""

    user: str
    host: str
    port: int
    folder: str
    pattern: str

    @classmethod
    def parse(cls, url: str) -> SftpLocation:
        """Read an ``sftp://`` URL (a password in it is refused: keys only)."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "sftp" or not parts.hostname:
            raise PickupError(f"{url!r} is not sftp://user@host[:port]/path/pattern")
        if parts.password is not None:
            raise PickupError(
                "sftp URL: a password in the URL is not accepted; use a key "
                "(IERKIT_SFTP_KEY_FILE or an SSH agent)"
            )
        if not parts.username:
            raise PickupError(f"sftp://{parts.hostname}: give the user (sftp://user@host/...)")
        try:
            port = parts.port or _DEFAULT_PORT
        except ValueError:
            raise PickupError(f"sftp://{parts.hostname}: the port is not a number") from None
        path = urllib.parse.unquote(parts.path) or "/"
        folder, pattern = posixpath.split(path)
        if not pattern:
            raise PickupError(f"{url}: end the path with a file name or pattern (*.zip)")
        return cls(parts.username, parts.hostname, port, folder or "/", pattern)

    @property
    def label(self) -> str:
        """The location as a URL (no secret is ever part of it)."""
        port = "" if self.port == _DEFAULT_PORT else f":{self.port}"
        return f"sftp://{self.user}@{self.host}{port}{posixpath.join(self.folder, self.pattern)}"

    @property
    def slug(self) -> str:
        """A folder name for this location's state."""
        digest = hashlib.sha256(self.label.encode()).hexdigest()[:12]
        return f"{self.host}-{self.port}-{digest}"


@dataclass(frozen=True)
class RemoteFile:
    """A file on the server, as listed."""

    name: str
    size: int
    mtime: int


@dataclass(frozen=True)
class Picked:
    """A file downloaded and verified, ready to apply."""

    remote: RemoteFile
    path: Path
    sha256: str


# --- connecting -------------------------------------------------------------------------------


def _pinned(env: Mapping[str, str]) -> str | None:
    value = env.get("IERKIT_SFTP_HOST_KEY_SHA256", "").strip()
    if not value:
        return None
    return value if value.startswith("SHA256:") else f"SHA256:{value}"


def _check_host_key(location: SftpLocation, key: paramiko.PKey, env: Mapping[str, str]) -> None:
    """Raise unless the server's key is the pinned one or the one in known_hosts."""
    offered = key.fingerprint
    where = f"{location.host}:{location.port}"
    pinned = _pinned(env)
    if pinned is not None:
        if offered.rstrip("=") != pinned.rstrip("="):
            raise PickupError(
                f"sftp {where}: host key {offered} does not match the pinned "
                f"IERKIT_SFTP_HOST_KEY_SHA256 {pinned}; refusing to connect (if the server's "
                "key really changed, pin the new one after checking it with its admin)"
            )
        return
    known = Path(
        env.get("IERKIT_SFTP_KNOWN_HOSTS") or Path.home() / ".ssh" / "known_hosts"
    ).expanduser()
    hosts = paramiko.HostKeys()
    if known.is_file():
        try:
            hosts.load(os.fspath(known))
        except (OSError, paramiko.SSHException) as error:
            raise PickupError(f"sftp {where}: cannot read {known}: {error}") from None
    name = location.host if location.port == _DEFAULT_PORT else f"[{location.host}]:{location.port}"
    entries = hosts.lookup(name) or {}
    if not entries:
        raise PickupError(
            f"sftp {where}: host not in {known}; add its key (ssh-keyscan -p {location.port} "
            f"{location.host} >> {known}, after checking the fingerprint) or pin it in "
            "IERKIT_SFTP_HOST_KEY_SHA256"
        )
    expected = entries.get(key.get_name())
    if expected is None or expected != key:
        raise PickupError(
            f"sftp {where}: host key {offered} does not match {known}; refusing to connect "
            "(a changed server key or someone in between: check with the server's admin)"
        )


def _keys(env: Mapping[str, str]) -> list[paramiko.PKey]:
    key_file = env.get("IERKIT_SFTP_KEY_FILE", "").strip()
    if key_file:
        path = Path(key_file).expanduser()
        try:
            return [paramiko.PKey.from_path(path, env.get("IERKIT_SFTP_KEY_PASSPHRASE") or None)]
        except FileNotFoundError:
            raise PickupError(f"IERKIT_SFTP_KEY_FILE: {path} does not exist") from None
        except (paramiko.SSHException, ValueError, OSError) as error:
            # The message names the file and the kind of failure, never the key or passphrase.
            raise PickupError(
                f"IERKIT_SFTP_KEY_FILE: {path} is not a private key ierkit can read "
                f"({type(error).__name__}; a passphrase goes in IERKIT_SFTP_KEY_PASSPHRASE)"
            ) from None
    if env.get("SSH_AUTH_SOCK"):
        return list(paramiko.Agent().get_keys())
    return []


@contextlib.contextmanager
def connect(
    location: SftpLocation, *, env: Mapping[str, str] | None = None
) -> Iterator[paramiko.SFTPClient]:
    """An SFTP session, after the host key was checked and a key accepted.

    Raises:
        PickupError: On a connection failure, an unknown or mismatched host key, no key to try,
            or every key refused.
    """
    env = os.environ if env is None else env
    where = f"{location.host}:{location.port}"
    keys = _keys(env)
    if not keys:
        raise PickupError(
            f"sftp {where}: no key to log in with; set IERKIT_SFTP_KEY_FILE or start an SSH agent"
        )
    try:
        sock = socket.create_connection((location.host, location.port), timeout=TIMEOUT_S)
    except OSError as error:
        raise PickupError(f"sftp {where}: cannot connect ({error.strerror or error})") from None
    transport = paramiko.Transport(sock)
    transport.banner_timeout = TIMEOUT_S
    transport.auth_timeout = TIMEOUT_S
    try:
        try:
            transport.start_client(timeout=TIMEOUT_S)
        except (paramiko.SSHException, OSError, EOFError) as error:
            raise PickupError(f"sftp {where}: SSH handshake failed ({error})") from None
        _check_host_key(location, transport.get_remote_server_key(), env)
        for key in keys:
            with contextlib.suppress(paramiko.AuthenticationException):
                transport.auth_publickey(location.user, key)
                break
        if not transport.is_authenticated():
            raise PickupError(
                f"sftp {where}: user {location.user!r} refused with the "
                f"{len(keys)} key(s) offered; check the key registered in Marketing Cloud's "
                "SFTP user settings"
            )
        client = paramiko.SFTPClient.from_transport(transport)
        if client is None:
            raise PickupError(f"sftp {where}: the server offers no SFTP subsystem")
        client.get_channel().settimeout(TIMEOUT_S)
        try:
            yield client
        finally:
            client.close()
    except paramiko.SSHException as error:
        raise PickupError(f"sftp {where}: {error}") from None
    finally:
        transport.close()


def list_files(client: paramiko.SFTPClient, location: SftpLocation) -> list[RemoteFile]:
    """Regular files in the folder matching the pattern, oldest first (mtime, then name)."""
    try:
        entries = client.listdir_attr(location.folder)
    except OSError as error:
        raise PickupError(f"{location.label}: cannot list {location.folder} ({error})") from None
    files = [
        RemoteFile(e.filename, int(e.st_size or 0), int(e.st_mtime or 0))
        for e in entries
        if stat.S_ISREG(e.st_mode or 0) and fnmatch.fnmatchcase(e.filename, location.pattern)
    ]
    return sorted(files, key=lambda f: (f.mtime, f.name))


class _Hashing:
    """A file object that writes through and hashes what it writes."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.out.write(data)


def download(
    client: paramiko.SFTPClient, location: SftpLocation, remote: RemoteFile, folder: Path
) -> Picked:
    """Download one file to a temporary name, verify it, then rename it into ``folder``.

    Raises:
        PickupError: When fewer (or more) bytes arrived than listed, or the file changed on
            the server during the download; the partial file is removed and nothing is applied.
    """
    remote_path = posixpath.join(location.folder, remote.name)
    partial = folder / f".{remote.name}.partial"
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            sink = _Hashing(out)
            client.getfo(remote_path, sink)
            out.flush()
            os.fsync(out.fileno())
        after = client.stat(remote_path)
    except (OSError, EOFError, paramiko.SSHException) as error:
        partial.unlink(missing_ok=True)
        raise PickupError(
            f"{location.label}: download of {remote.name} failed ({type(error).__name__}); "
            "nothing applied, the next run tries again"
        ) from None
    if sink.size != remote.size:
        partial.unlink(missing_ok=True)
        raise PickupError(
            f"{location.label}: {remote.name} arrived with {sink.size:,} of {remote.size:,} "
            "bytes (truncated); not applied, the next run tries again"
        )
    if int(after.st_size or 0) != remote.size or int(after.st_mtime or 0) != remote.mtime:
        partial.unlink(missing_ok=True)
        raise PickupError(
            f"{location.label}: {remote.name} changed on the server while it was downloaded "
            "(still being written?); not applied, the next run tries again"
        )
    target = folder / remote.name
    os.replace(partial, target)
    _files.fsync_dir(folder)
    return Picked(remote, target, sink.sha.hexdigest())


# --- state: a private folder with a lock, an inbox and a ledger ------------------------------


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


@contextlib.contextmanager
def _locked(state: Path) -> Iterator[None]:
    fd = os.open(state / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PickupError(
                f"{state}: another ierkit run is picking up from this SFTP location; "
                "try again when it has finished"
            ) from None
        yield
    finally:
        os.close(fd)


def read_ledger(state: Path) -> list[dict[str, object]]:
    """The ledger's entries (name, size, mtime, sha256, applied_at), oldest first."""
    path = state / "ledger.jsonl"
    if not path.is_file():
        return []
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            raise PickupError(f"{path}, line {number}: not a ledger entry (JSON)") from None
    return entries


def _append_ledger(state: Path, picked: list[Picked]) -> None:
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    lines = "".join(
        json.dumps(
            {
                "name": p.remote.name,
                "size": p.remote.size,
                "mtime": p.remote.mtime,
                "sha256": p.sha256,
                "applied_at": now,
            }
        )
        + "\n"
        for p in picked
    )
    path = state / "ledger.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as ledger:
        ledger.write(lines)
        ledger.flush()
        os.fsync(ledger.fileno())


@dataclass
class Batch:
    """The new files of one pickup, downloaded and verified (``collect``).

    Attributes:
        location: Where they came from.
        listed: Matching files on the server.
        picked: Files to apply (new, verified), oldest first.
        duplicates: Files whose bytes were applied before under another name or mtime: recorded
            in the ledger, not applied again.
    """

    location: SftpLocation
    listed: int
    picked: list[Picked] = field(default_factory=list)
    duplicates: list[Picked] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        """Local paths of the files to apply."""
        return [p.path for p in self.picked]

    def summary(self) -> str:
        """One line for the run's output."""
        known = self.listed - len(self.picked) - len(self.duplicates)
        return (
            f"{self.location.label}: {self.listed} matching, {len(self.picked)} new, "
            f"{known} already applied"
            + (f", {len(self.duplicates)} same bytes as an applied file" if self.duplicates else "")
        )


@contextlib.contextmanager
def collect(
    url: str, state: str | os.PathLike[str], *, env: Mapping[str, str] | None = None
) -> Iterator[Batch]:
    """Download the files not yet applied; commit them to the ledger when the block succeeds.

    Args:
        url: ``sftp://user@host[:port]/folder/pattern``.
        state: This location's private state folder (ledger, inbox, lock).
        env: Environment for keys and host keys (``os.environ`` by default).

    Yields:
        A ``Batch``; apply ``batch.paths`` inside the block. When the block ends without an
        error, the files are added to the ledger and their downloads removed; when it fails,
        nothing is recorded and the next run downloads them again.

    Raises:
        PickupError: For a connection, host key, login or download failure, or when another
            run holds this location.
    """
    location = SftpLocation.parse(url)
    folder = _private_dir(Path(state))
    inbox = _private_dir(folder / "inbox")
    with _locked(folder):
        # Leftovers of a run that crashed (partial or unapplied downloads: email addresses).
        for leftover in inbox.iterdir():
            leftover.unlink(missing_ok=True)
        ledger = read_ledger(folder)
        seen = {(e["name"], e["size"], e["mtime"]) for e in ledger}
        hashes = {e["sha256"] for e in ledger}
        with connect(location, env=env) as client:
            remote = list_files(client, location)
            batch = Batch(location, len(remote))
            for entry in remote:
                if (entry.name, entry.size, entry.mtime) in seen:
                    continue
                picked = download(client, location, entry, inbox)
                if picked.sha256 in hashes:
                    picked.path.unlink()
                    batch.duplicates.append(picked)
                else:
                    hashes.add(picked.sha256)
                    batch.picked.append(picked)
        try:
            yield batch
            _append_ledger(folder, batch.duplicates + batch.picked)
        finally:
            for picked in batch.picked:
                picked.path.unlink(missing_ok=True)


def store_state(store: str | os.PathLike[str], url: str) -> Path:
    """The state folder of a location inside an event store: its ledger goes with the store."""
    return Path(store) / "pickup" / SftpLocation.parse(url).slug


def default_state(url: str) -> Path:
    """The cache folder that keeps the read-only commands' copy of a location's newest file."""
    return _files.cache_dir() / "pickup" / SftpLocation.parse(url).slug


def fetch_latest(
    url: str, *, state: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Path:
    """The newest matching file (by server mtime, then name), downloaded once and reused.

    For the read-only commands: the copy stays in ``state`` (private, in the cache by default)
    while it is the newest; an older copy is removed when a newer file is downloaded.

    Raises:
        PickupError: When no file matches, or on a connection, host key or download failure.
    """
    location = SftpLocation.parse(url)
    folder = _private_dir(Path(state) if state is not None else default_state(url))
    latest = _private_dir(folder / "latest")
    with _locked(folder):
        for partial in latest.glob(".*.partial"):
            partial.unlink(missing_ok=True)
        with connect(location, env=env) as client:
            remote = list_files(client, location)
            if not remote:
                raise PickupError(f"{location.label}: no file matches {location.pattern!r}")
            newest = remote[-1]
            record = folder / "latest.json"
            kept = latest / newest.name
            if kept.is_file() and record.is_file():
                with contextlib.suppress(ValueError):
                    known = json.loads(record.read_text())
                    if known == {"name": newest.name, "size": newest.size, "mtime": newest.mtime}:
                        return kept
            picked = download(client, location, newest, latest)
        for old in latest.iterdir():
            if old == picked.path:
                continue
            if old.is_dir():
                shutil.rmtree(old)
            else:
                old.unlink(missing_ok=True)
        _files.write_text(
            record, json.dumps({"name": newest.name, "size": newest.size, "mtime": newest.mtime})
        )
        return picked.path


def is_sftp(text: str | os.PathLike[str]) -> bool:
    """Whether an ``--extract`` value is an SFTP URL."""
    return os.fspath(text).startswith("sftp://")
