"""Where personaguard keeps materialised models and fetched data."""

import os
from pathlib import Path


def data_home() -> Path:
    """$PERSONAGUARD_HOME, else ~/.cache/personaguard. Created on first use."""
    home = Path(os.environ.get("PERSONAGUARD_HOME") or Path.home() / ".cache" / "personaguard")
    home.mkdir(parents=True, exist_ok=True)
    return home


def builtin_data() -> Path:
    """Project-authored data shipped inside the package."""
    return Path(__file__).parent / "data" / "builtin"
