"""Where personaguard keeps materialised models and fetched data."""

import os
from pathlib import Path

from personaguard.errors import PersonaguardError


def data_home() -> Path:
    """$PERSONAGUARD_HOME, else ~/.cache/personaguard. Created on first use."""
    home = Path(os.environ.get("PERSONAGUARD_HOME") or Path.home() / ".cache" / "personaguard")
    home.mkdir(parents=True, exist_ok=True)
    return home


def builtin_data() -> Path:
    """Project-authored data shipped inside the package."""
    return Path(__file__).parent / "data" / "builtin"


def builtin_names(folder: str) -> list[str]:
    return sorted(p.stem for p in (builtin_data() / folder).glob("*.yaml"))


def builtin_or_path(folder: str, name: str | Path, what: str) -> Path:
    """A shipped YAML (``builtin/<folder>/<name>.yaml``) by name, else a user's YAML file by path."""
    path = builtin_data() / folder / f"{name}.yaml"
    if path.is_file():
        return path
    if Path(name).suffix in (".yaml", ".yml") and Path(name).is_file():
        return Path(name)
    raise PersonaguardError(
        f"unknown {what} {str(name)!r}; expected one of {builtin_names(folder)} or a path to a YAML file"
    )
