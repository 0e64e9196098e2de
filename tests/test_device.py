"""Device and precision plumbing, checked on a CPU-only machine by pretending CUDA exists."""

import pytest
import torch

from personaguard.errors import PersonaguardError
from personaguard.models import parse_spec
from personaguard.models.device import fast_dtype, resolve_device, resolve_dtype


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    return monkeypatch


def test_default_is_cpu_and_float32():
    spec = parse_spec("bundled:smollm2-135m")
    assert resolve_device(spec.option("device")) == "cpu"
    assert resolve_dtype(spec) == torch.float32


def test_auto_device_follows_what_torch_sees(fake_cuda):
    assert resolve_device("auto") == "cuda"
    fake_cuda.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"


def test_cuda_without_a_gpu_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(PersonaguardError, match="no CUDA device"):
        resolve_device("cuda:0")


@pytest.mark.parametrize(("bf16", "expected"), [(True, torch.bfloat16), (False, torch.float16)])
def test_auto_dtype_on_a_gpu_follows_its_capability(fake_cuda, bf16, expected):
    fake_cuda.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    assert fast_dtype("cuda") == expected
    assert resolve_dtype(parse_spec("bundled:smollm2-135m#device=cuda,dtype=auto")) == expected
    # the instrument's default stays exact on a GPU too
    assert resolve_dtype(parse_spec("bundled:smollm2-135m#device=cuda")) == torch.float32


def test_auto_dtype_on_a_cpu_follows_its_instructions(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert fast_dtype("cpu") == torch.float32
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert fast_dtype("cpu") == torch.bfloat16


def test_study_adapters_train_on_the_base_spec_device(tmp_path, monkeypatch):
    """The main job trains where its base spec runs: '#device=cuda' reaches TrainConfig."""
    from personaguard.study import pipeline
    from personaguard.study.profile import load_profile
    from personaguard.study_layout import StudyLayout

    seen = []
    monkeypatch.setattr("personaguard.training.sft.train", lambda config, out, progress: seen.append(config))
    profile = load_profile("quick")
    layout = StudyLayout(tmp_path)
    variant = next(v for v in profile.variants if v.persona)
    pipeline.ensure_adapter("bundled:smollm2-135m#device=cuda:0", variant, profile, layout, 20, False)
    pipeline.ensure_adapter("bundled:smollm2-135m", variant, profile, layout, 20, False)
    assert [c.device for c in seen] == ["cuda", "auto"]
