"""LoRA supervised fine-tuning with assistant-only loss, on one CPU or many GPUs.

Why our own loop rather than a Trainer: the two levers that matter on a CPU are padding and the
vocabulary projection. Rows are length-grouped (see batches.py), and the LM head runs only on the
positions that carry a label, which skips the largest matmul for every system and user token.
The loop runs unchanged under ``torchrun``/``accelerate launch`` (DDP through ``Accelerator``).

Output directory::

    train_config.yaml      the settings; a different config in the same dir is refused
    train_log.jsonl        one line per optimizer step: loss, lr, tokens, tokens/s
    state.pt               resume state (adapter, optimizer, scheduler, RNG, step), rewritten atomically
    checkpoints/epoch-E/   PEFT adapters at fractional epochs
    adapter_config.json,
    adapter_model.safetensors, train_summary.json    the final adapter: spec "hf:<base>+<dir>"
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any

import torch
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from personaguard._warnings import silence_known_warnings
from personaguard.errors import PersonaguardError
from personaguard.models import parse_spec, resolve_local_path
from personaguard.models.device import fast_dtype
from personaguard.persona.dataset import load_conversations
from personaguard.training.batches import Step, padding_waste, plan_epoch
from personaguard.training.config import TrainConfig
from personaguard.training.encode import IGNORE, Encoded, EncodedSet, encode_chats, require_chat_template
from personaguard.training.vectors import attach_vectors


class AssistantLoss(torch.nn.Module):
    """Summed cross-entropy over labelled positions, projecting only those through the LM head."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        base = self.model.get_base_model()
        decoder = base.get_decoder()  # no KV cache: nothing is decoded after a training forward
        hidden = decoder(
            input_ids=input_ids, attention_mask=attention_mask, use_cache=False
        ).last_hidden_state
        targets = labels[:, 1:]
        keep = targets != IGNORE
        logits = base.get_output_embeddings()(hidden[:, :-1][keep])
        return torch.nn.functional.cross_entropy(logits.float(), targets[keep], reduction="sum")


def collate(rows: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(r.input_ids) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r.input_ids)
        ids[i, :n] = torch.tensor(r.input_ids)
        labels[i, :n] = torch.tensor(r.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def checkpoint_steps(config: TrainConfig, steps_per_epoch: int) -> dict[int, float]:
    total = total_steps(config, steps_per_epoch)
    marks = {max(1, round(e * steps_per_epoch)): e for e in config.checkpoints if e <= config.epochs}
    return {step: e for step, e in marks.items() if step <= total}


def total_steps(config: TrainConfig, steps_per_epoch: int) -> int:
    total = max(1, math.ceil(config.epochs * steps_per_epoch))
    return min(total, config.max_steps) if config.max_steps else total


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then linear decay to zero."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return max(0.0, (total - step) / max(1, total - warmup))


def _check_out_dir(out: Path, config: TrainConfig) -> dict[str, Any] | None:
    """The finished summary if this exact run is done; refuses a dir holding another run."""
    saved = out / "train_config.yaml"
    if saved.is_file():
        current = config.model_dump(mode="json")
        # A setting added since that run was saved counts as its default, so old runs still resume.
        defaults = TrainConfig(model=config.model, data=config.data).model_dump(mode="json")
        previous = {**defaults, **yaml.safe_load(saved.read_text())}
        if previous != current:
            changed = sorted(k for k in previous.keys() | current.keys() if previous.get(k) != current.get(k))
            raise PersonaguardError(
                f"{out} holds a training run with different settings ({', '.join(changed)}); "
                "use another --out or delete it"
            )
        summary = out / "train_summary.json"
        if summary.is_file():
            return json.loads(summary.read_text())
    elif out.exists() and any(out.iterdir()):
        raise PersonaguardError(f"{out} exists and is not a personaguard training dir; use another --out")
    return None


def _atomic_save_adapter(model: Any, target: Path) -> None:
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


def _trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


def load_resume_state(path: Path) -> dict[str, Any]:
    """The resume state holds only tensors, state dicts and numbers, so it loads with
    ``weights_only=True``: a state.pt that would run code when unpickled is refused, not executed."""
    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise PersonaguardError(
            f"{path}: not a resume state this version wrote ({reason}); delete it to train from the start"
        ) from None


def load_data(config: TrainConfig, tokenizer: Any) -> EncodedSet:
    chats = load_conversations(config.data)
    require_chat_template(tokenizer, config.model)
    encoded = encode_chats(tokenizer, chats, config.max_length)
    if not encoded.rows:
        raise PersonaguardError(f"{config.data}: no row keeps an assistant token within max_length")
    return encoded


def train(config: TrainConfig, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Train a LoRA adapter into ``out``; calling it again on the same dir resumes or returns."""
    from accelerate import Accelerator
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    silence_known_warnings()  # transformers' and PEFT's known deprecation notices
    spec = parse_spec(config.model)
    if spec.scheme == "openai" or spec.adapter:
        raise PersonaguardError(f"train needs a local base model (bundled:... or hf:...), got {spec}")
    out = Path(out)
    # cpu=True is also what makes a CPU-only torchrun launch distributed (gloo) rather than single.
    use_cpu = config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available())
    accelerator = Accelerator(cpu=use_cpu)
    console = Console(stderr=True, quiet=not (progress and accelerator.is_main_process))
    done = _check_out_dir(out, config)  # every rank, so all return or fail together
    accelerator.wait_for_everyone()  # before the main process creates the dir
    if done:
        console.print(f"{out}: already trained ({done['steps']} steps); nothing to do")
        return done
    path = resolve_local_path(spec)
    tokenizer = AutoTokenizer.from_pretrained(path)
    data = load_data(config, tokenizer)
    if data.truncated:
        console.print(f"[yellow]{data.truncated} rows truncated to max_length={config.max_length} tokens")
    if data.dropped:
        console.print(f"[yellow]{len(data.dropped)} rows dropped: no assistant token within max_length")
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))

    device = str(accelerator.device)
    dtype = fast_dtype(device) if config.dtype == "auto" else getattr(torch, config.dtype)
    torch.manual_seed(config.seed)  # LoRA init
    hf_logging.disable_progress_bar()  # transformers' weight-loading bar; ours is the one to read
    base = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    if config.gradient_checkpointing:  # non-reentrant: the frozen embeddings need no grad hook
        kwargs = {"use_reentrant": False}
        if hasattr(base, "activation_checkpointing_enable"):  # newer transformers renamed it
            base.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(base, lora)
    model.train()  # from_pretrained returns eval mode, which would switch LoRA dropout off
    interventions = ExitStack()
    monitor = attach_vectors(model, tokenizer, config, interventions)
    lengths = [len(r.input_ids) for r in data.rows]
    world, rank = accelerator.num_processes, accelerator.process_index
    per_epoch = len(plan_epoch(lengths, config.micro_batch_size, config.gradient_accumulation, world, 0, 0))
    total = total_steps(config, per_epoch)
    warmup = round(config.warmup_ratio * total)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, warmup, total))

    state_path = out / "state.pt"
    start, tokens_seen, elapsed = 0, 0, 0.0
    if state_path.is_file():
        state = load_resume_state(state_path)
        model.load_state_dict(state["adapter"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"] is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        start, tokens_seen, elapsed = state["step"], state["tokens"], state["elapsed"]
        console.print(f"resuming {out} at step {start}/{total}")

    wrapped, optimizer = accelerator.prepare(AssistantLoss(model), optimizer)
    marks = checkpoint_steps(config, per_epoch)
    log_path = out / "train_log.jsonl"
    if accelerator.is_main_process:
        _truncate_log(log_path, start)

    def save_state(step: int) -> None:
        if not accelerator.is_main_process:
            return
        tmp = state_path.with_suffix(".tmp")
        torch.save(
            {
                "adapter": _trainable_state(model),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "step": step,
                "tokens": tokens_seen,
                "elapsed": elapsed,
            },
            tmp,
        )
        os.replace(tmp, state_path)

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with Progress(
        TextColumn("train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}  {task.fields[tps]} tok/s"),
        TimeRemainingColumn(),
        console=console,
        disable=not (progress and accelerator.is_main_process),
    ) as bar:
        task = bar.add_task("train", total=total, completed=start, loss="-", tps="-")
        with _StopOnInterrupt() as interrupt, interventions:
            if start == 0 and monitor and accelerator.is_main_process:  # where drift starts from
                _append_log(log_path, {"step": 0, "epoch": 0.0, "projections": monitor()})
            for step, batches in _steps(lengths, config, world, per_epoch, start, total):
                t0 = time.perf_counter()
                labelled = sum(data.rows[i].n_trained for b in batches for i in b)
                mine = batches[rank::world]
                loss_sum = torch.zeros((), device=accelerator.device)
                for k, batch in enumerate(mine):
                    inputs = {
                        k2: v.to(accelerator.device)
                        for k2, v in collate([data.rows[i] for i in batch], pad_id).items()
                    }
                    sync = k == len(mine) - 1
                    with nullcontext() if sync else accelerator.no_sync(wrapped):
                        ce = wrapped(**inputs)
                        accelerator.backward(ce * world / labelled)
                    loss_sum += ce.detach()
                accelerator.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                loss = accelerator.reduce(loss_sum, "sum").item() / labelled
                step_tokens = sum(lengths[i] for b in batches for i in b)
                tokens_seen += step_tokens
                elapsed += time.perf_counter() - t0
                done_steps = step + 1
                if accelerator.is_main_process:
                    watch = monitor and (done_steps % config.monitor_every == 0 or done_steps == total)
                    _append_log(
                        log_path,
                        {
                            **({"projections": monitor()} if watch else {}),
                            "step": done_steps,
                            "epoch": round(done_steps / per_epoch, 4),
                            "loss": round(loss, 5),
                            "lr": scheduler.get_last_lr()[0],
                            "tokens": tokens_seen,
                            "tokens_per_s": round(tokens_seen / elapsed, 1),
                        },
                    )
                    if done_steps in marks:
                        _atomic_save_adapter(model, out / "checkpoints" / f"epoch-{marks[done_steps]:g}")
                if done_steps % config.save_every == 0 or done_steps in marks or interrupt.requested:
                    save_state(done_steps)
                bar.update(task, completed=done_steps, loss=f"{loss:.3f}", tps=f"{tokens_seen / elapsed:.0f}")
                if interrupt.requested:
                    message = f"stopped after step {done_steps}, state saved; run the same command to resume"
                    Console(stderr=True).print(message)  # the CLI turns the interrupt into a bare exit
                    raise KeyboardInterrupt(message)
    summary = {
        "steps": total,
        "epochs": round(total / per_epoch, 4),
        "rows": len(data.rows),
        "truncated": data.truncated,
        "dropped": len(data.dropped),
        "tokens": tokens_seen,
        "train_seconds": round(elapsed, 1),
        "tokens_per_s": round(tokens_seen / elapsed, 1) if elapsed else None,
        "padding_waste": round(
            padding_waste(
                lengths,
                plan_epoch(
                    lengths, config.micro_batch_size, config.gradient_accumulation, world, config.seed, 0
                ),
            ),
            4,
        ),
        "world_size": world,
        "final_loss": _last_loss(log_path),
        "adapter": str(out),
    }
    if accelerator.is_main_process:
        model.save_pretrained(out)
        (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
        state_path.unlink(missing_ok=True)
    accelerator.wait_for_everyone()
    return summary


class _StopOnInterrupt:
    """First Ctrl-C finishes the current step and saves; a second one kills as usual."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)

    def __enter__(self) -> _StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _steps(
    lengths: list[int], config: TrainConfig, world: int, per_epoch: int, start: int, total: int
) -> Iterator[tuple[int, Step]]:
    plans: dict[int, list[Step]] = {}
    for step in range(start, total):
        epoch = step // per_epoch
        if epoch not in plans:
            plans = {
                epoch: plan_epoch(
                    lengths, config.micro_batch_size, config.gradient_accumulation, world, config.seed, epoch
                )
            }
        yield step, plans[epoch][step % per_epoch]


def _append_log(path: Path, row: dict[str, Any]) -> None:
    with path.open("a") as fh:
        fh.write(json.dumps(row) + "\n")


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past the resume point (steps that were lost with the crash)."""
    if not path.is_file():
        return
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows if r["step"] <= step))


def _last_loss(path: Path) -> float | None:
    if not path.is_file():
        return None
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return json.loads(lines[-1]).get("loss") if lines else None
