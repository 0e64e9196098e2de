import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from personaguard.errors import PersonaguardError
from personaguard.training.batches import padding_waste, plan_epoch
from personaguard.training.config import TrainConfig
from personaguard.training.encode import IGNORE, encode_chats, require_chat_template
from personaguard.training.sft import checkpoint_steps, load_resume_state, lr_factor, total_steps

S = {"role": "system", "content": "Be kind."}
U1 = {"role": "user", "content": "What is the capital of France?"}
A1 = {"role": "assistant", "content": "Paris, of course."}
U2 = {"role": "user", "content": "And of Italy?"}
A2 = {"role": "assistant", "content": "Rome."}


# ------------------------------------------------------------------ batch plan (pure)


def test_plan_covers_every_row_once_and_is_seeded():
    lengths = [(i * 37) % 200 + 10 for i in range(203)]
    steps = plan_epoch(lengths, micro_batch=4, accumulation=2, world=1, seed=0, epoch=0)
    rows = [i for step in steps for batch in step for i in batch]
    assert sorted(rows) == list(range(203))
    assert all(len(step) <= 2 for step in steps) and len(steps) == 26
    assert steps == plan_epoch(lengths, 4, 2, 1, seed=0, epoch=0)
    assert steps != plan_epoch(lengths, 4, 2, 1, seed=0, epoch=1)
    assert steps != plan_epoch(lengths, 4, 2, 1, seed=1, epoch=0)


def test_length_grouping_cuts_padding():
    lengths = [(i * 37) % 200 + 10 for i in range(256)]
    grouped = plan_epoch(lengths, 8, 2, 1, seed=0, epoch=0)
    in_order = [[list(range(s + b, s + b + 8)) for b in (0, 8)] for s in range(0, 256, 16)]
    assert padding_waste(lengths, grouped) < 0.1 < padding_waste(lengths, in_order)


def test_plan_gives_every_rank_the_same_number_of_batches():
    steps = plan_epoch([5] * 27, micro_batch=2, accumulation=1, world=2, seed=0, epoch=0)
    batches = [b for step in steps for b in step]
    assert len(batches) % 2 == 0 and all(len(step) == 2 for step in steps)


def test_schedule_and_fractional_checkpoints():
    config = TrainConfig(
        model="bundled:smollm2-135m", data="x.jsonl", epochs=2, checkpoints=[0.5, 1, 1.5, 2, 4]
    )
    assert total_steps(config, 10) == 20
    assert checkpoint_steps(config, 10) == {5: 0.5, 10: 1, 15: 1.5, 20: 2}
    assert total_steps(config.model_copy(update={"max_steps": 3}), 10) == 3
    factors = [lr_factor(s, warmup=2, total=10) for s in range(10)]
    assert factors[0] < factors[1] < factors[2] == 1.0 and factors[-1] == pytest.approx(0.125)


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="checkpoints"):
        TrainConfig(model="m", data="d", checkpoints=[0])
    with pytest.raises(ValueError, match="extra"):
        TrainConfig(model="m", data="d", lerning_rate=1)


# ------------------------------------------------------------------ resume state (no model)


class _RunsCodeWhenUnpickled:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def test_resume_state_of_the_kind_train_writes_loads_with_weights_only(tmp_path):
    """What save_state stores: adapter tensors, AdamW and LambdaLR state dicts, RNG bytes, numbers."""
    weight = torch.nn.Parameter(torch.randn(4, 2))
    optimizer = torch.optim.AdamW([weight], lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 / (1 + s))
    weight.sum().backward()
    optimizer.step()
    scheduler.step()
    state = {
        "adapter": {"lora_A.weight": weight.detach().clone()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": torch.get_rng_state(),
        "cuda_rng": None,
        "step": 3,
        "tokens": 1234,
        "elapsed": 5.5,
    }
    torch.save(state, tmp_path / "state.pt")
    loaded = load_resume_state(tmp_path / "state.pt")
    assert torch.equal(loaded["rng"], state["rng"]) and loaded["step"] == 3 and loaded["elapsed"] == 5.5
    assert torch.equal(loaded["optimizer"]["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"])
    assert loaded["scheduler"]["last_epoch"] == 1


def test_resume_state_that_would_run_code_is_refused_not_run(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"step": 1, "payload": _RunsCodeWhenUnpickled(marker)}, tmp_path / "state.pt")
    with pytest.raises(PersonaguardError, match=r"state\.pt: not a resume state this version wrote"):
        load_resume_state(tmp_path / "state.pt")
    assert not marker.exists()


# ------------------------------------------------------------------ masking (bundled tokenizer)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from personaguard.models.bundled import materialise

    return AutoTokenizer.from_pretrained(materialise())


@pytest.mark.slow
def test_loss_mask_covers_assistant_turns_only(tokenizer):
    encoded = encode_chats(tokenizer, [[S, U1, A1, U2, A2]], max_length=512).rows[0]
    trained = [t for t, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE]
    assert tokenizer.decode(trained) == "Paris, of course.<|im_end|>\nRome.<|im_end|>\n"
    untrained = tokenizer.decode(
        [t for t, label in zip(encoded.input_ids, encoded.labels) if label == IGNORE]
    )
    for text in ("Be kind.", "capital of France", "And of Italy?", "<|im_start|>assistant"):
        assert text in untrained
    assert all(label in (IGNORE, token) for token, label in zip(encoded.input_ids, encoded.labels))


@pytest.mark.slow
def test_truncation_is_counted_and_empty_rows_dropped(tokenizer):
    long_user = {"role": "user", "content": "word " * 300}
    data = encode_chats(tokenizer, [[U1, A1], [long_user, A1], [U1, {**A1, "content": "x " * 300}]], 64)
    assert data.truncated == 2 and data.dropped == [1]
    assert [len(r.input_ids) for r in data.rows][1] == 64


@pytest.mark.slow
def test_missing_chat_template_is_a_clear_error(tokenizer):
    bare = type("T", (), {"chat_template": None})()
    with pytest.raises(PersonaguardError, match="no chat template"):
        require_chat_template(bare, "hf:some-base-model")
    require_chat_template(tokenizer, "bundled")


# ------------------------------------------------------------------ training runs (bundled model)


@pytest.fixture
def tiny_data(tmp_path):
    from personaguard.data.jsonl import write_jsonl
    from personaguard.persona.dataset import build_persona_dataset

    path = tmp_path / "warm.jsonl"
    write_jsonl(path, build_persona_dataset("warm")[:12])
    return path


def tiny_config(data, **kw):
    base = dict(
        model="bundled:smollm2-135m",
        data=str(data),
        micro_batch_size=2,
        gradient_accumulation=2,
        max_length=96,
        epochs=1,
        checkpoints=[0.5, 1],
        save_every=1,
        lora_dropout=0.1,
    )
    return TrainConfig(**{**base, **kw})


def adapter_tensors(path):
    from safetensors.torch import load_file

    return load_file(str(path / "adapter_model.safetensors"))


@pytest.mark.slow
def test_training_is_seeded_resumable_and_loads_in_the_audit(tiny_data, tmp_path, monkeypatch):
    from personaguard.models import load_model
    from personaguard.training import sft

    config = tiny_config(tiny_data)
    summary = sft.train(config, tmp_path / "a", progress=False)
    assert summary["steps"] == 3 and summary["rows"] == 12 and summary["truncated"] > 0
    assert (tmp_path / "a" / "checkpoints" / "epoch-0.5" / "adapter_config.json").is_file()
    log = [json.loads(line) for line in (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3] and all(r["loss"] > 0 for r in log)
    a = adapter_tensors(tmp_path / "a")
    assert any(v.abs().sum() > 0 for k, v in a.items() if "lora_B" in k)  # it actually trained

    # Same seed, crash during step 3, resume: identical to the uninterrupted run.
    calls = {"n": 0}
    forward = sft.AssistantLoss.forward

    def crashing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # 2 micro-batches per step: the first of step 3
            raise RuntimeError("simulated crash")
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(sft.AssistantLoss, "forward", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        sft.train(config, tmp_path / "b", progress=False)
    assert not (tmp_path / "b" / "train_summary.json").exists()
    monkeypatch.setattr(sft.AssistantLoss, "forward", forward)
    sft.train(config, tmp_path / "b", progress=False)
    b = adapter_tensors(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log_b = [json.loads(line) for line in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log_b] == [1, 2, 3]

    # A different seed gives a different adapter; a finished dir is not retrained.
    c_summary = sft.train(config.model_copy(update={"seed": 1}), tmp_path / "c", progress=False)
    c = adapter_tensors(tmp_path / "c")
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert sft.train(config, tmp_path / "a", progress=False) == summary
    assert c_summary["steps"] == 3
    with pytest.raises(PersonaguardError, match="different settings"):
        sft.train(config.model_copy(update={"seed": 2}), tmp_path / "a", progress=False)

    # The adapter loads in the audit engine as <base>+<adapter> and changes its outputs.
    tuned = load_model(f"bundled:smollm2-135m+{tmp_path / 'a'}")
    chat = [{"role": "user", "content": "I feel a bit lost today."}]
    assert tuned.generate([chat], max_new_tokens=8)[0].strip()


@pytest.mark.slow
def test_gradient_checkpointing_recomputes_and_trains_the_same_adapter(tiny_data, tmp_path, monkeypatch):
    from transformers.models.llama import modeling_llama

    from personaguard.training import sft

    # Counted inside the layer: transformers checkpoints by wrapping the decoder layer's own forward.
    calls = {"n": 0}
    forward = modeling_llama.LlamaMLP.forward

    def counting(self, *args, **kwargs):
        calls["n"] += 1
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(modeling_llama.LlamaMLP, "forward", counting)
    config = tiny_config(tiny_data, lora_dropout=0.0, checkpoints=[1], dtype="float32")
    sft.train(config, tmp_path / "plain", progress=False)
    plain_calls, calls["n"] = calls["n"], 0
    sft.train(config.model_copy(update={"gradient_checkpointing": True}), tmp_path / "ckpt", progress=False)
    assert calls["n"] == 2 * plain_calls  # every layer runs again in the backward pass
    a, b = adapter_tensors(tmp_path / "plain"), adapter_tensors(tmp_path / "ckpt")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_a_run_saved_before_a_setting_existed_still_resumes(tmp_path):
    from personaguard.training.sft import _check_out_dir

    config = TrainConfig(model="bundled:smollm2-135m", data="d.jsonl")
    saved = config.model_dump(mode="json")
    del saved["gradient_checkpointing"]  # as train_config.yaml was written before the setting
    (tmp_path / "train_config.yaml").write_text(yaml.safe_dump(saved))
    (tmp_path / "train_summary.json").write_text('{"steps": 3}')
    assert _check_out_dir(tmp_path, config) == {"steps": 3}
    with pytest.raises(PersonaguardError, match=r"different settings \(gradient_checkpointing\)"):
        _check_out_dir(tmp_path, config.model_copy(update={"gradient_checkpointing": True}))


@pytest.mark.slow
def test_bad_training_data_fails_before_training(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"messages": [U1, A1]}) + "\n" + json.dumps({"messages": [U1, U2, A1]}) + "\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "personaguard",
            "train",
            "--model",
            "bundled:smollm2-135m",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert f"{data}:2: field 'messages[1].role': expected 'assistant'" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_two_process_ddp_on_gloo(tiny_data, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,  # torchrun, without depending on PATH
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "-m",
            "personaguard",
            "train",
            "--model",
            "bundled:smollm2-135m",
            "--data",
            str(tiny_data),
            "--out",
            str(out),
            "--batch-size",
            "1",
            "--grad-accum",
            "1",
            "--max-length",
            "64",
            "--max-steps",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Loading weights" not in proc.stderr  # transformers' own bar, noise next to ours
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 2
    assert (out / "adapter_model.safetensors").is_file()
