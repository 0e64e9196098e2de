"""Local transformers backend: batched, length-sorted, prefix-sharing scoring and generation.

Layer indices follow the ``hidden_states`` convention everywhere in personaguard: layer 0 is the
embedding output and layer L (1..n_layers) is the raw output of decoder block L-1, also for the
last layer (transformers' ``hidden_states[-1]`` is taken after the final norm; ours is not).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import torch

from personaguard.errors import PersonaguardError
from personaguard.models.base import (
    Chat,
    ChoiceScore,
    is_prefill,
    validate_chat,
    validate_choices,
)
from personaguard.models.choice_tokens import split_choice
from personaguard.models.device import resolve_device, resolve_dtype
from personaguard.models.spec import ModelSpec

Span = Literal["prompt_last", "prompt_avg", "response_avg"]
PAD_MULTIPLE = 8
# Packed choices need a custom 4D mask, which only these attention kernels take (flash attention
# ignores it). Ours is additive (0 / dtype min), which both read the same way.
MASKABLE_ATTENTION = ("sdpa", "eager")
HookFn = Callable[[torch.Tensor], torch.Tensor | None]


def _row_seed(seed: int, chat: Chat) -> int:
    """A per-prompt seed, so sampled outputs do not depend on batch composition."""
    digest = hashlib.sha256(f"{seed}|{chat!r}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def padded_width(n: int) -> int:
    """The width a row of n tokens is padded to: a function of the row alone."""
    return -(-n // PAD_MULTIPLE) * PAD_MULTIPLE


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _find_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The decoder block list, wherever the architecture (or a PEFT wrapper) keeps it."""
    for path in (
        "model.layers",
        "model.model.layers",
        "base_model.model.model.layers",
        "transformer.h",
        "model.decoder.layers",
        "gpt_neox.layers",
    ):
        obj: object = model
        for attr in path.split("."):
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if isinstance(obj, torch.nn.ModuleList):
            return obj
    raise PersonaguardError(f"cannot find decoder layers in {type(model).__name__}")


class HFModel:
    """A transformers causal LM (optionally with a PEFT adapter) behind the LanguageModel protocol."""

    def __init__(self, spec: ModelSpec, path: str | Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # our own progress bars are the ones users read
        self.spec = str(spec)
        self.device = torch.device(resolve_device(spec.option("device")))
        self.dtype = resolve_dtype(spec)
        self.batch_size = int(spec.option("batch_size", "16") or 16)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            # An adapter is merged in float32, where its delta survives; only then is the result
            # cast. Merged into bf16 weights, 92% of a small adapter's entries round away.
            load_dtype = torch.float32 if spec.adapter else self.dtype
            model = AutoModelForCausalLM.from_pretrained(path, dtype=load_dtype, attn_implementation="sdpa")
        except OSError as exc:
            raise PersonaguardError(f"cannot load model {path!r}: {exc}") from exc
        if spec.adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, spec.adapter).merge_and_unload().to(self.dtype)
        self._attach(model.to(self.device).eval(), self.tokenizer, str(path))
        from personaguard.models.fingerprint import weights_sha256

        self.weights = weights_sha256(str(path))

    @classmethod
    def wrap(cls, model: torch.nn.Module, tokenizer: Any, spec: str, weights: str | None = None) -> HFModel:
        """An engine over an already-loaded model (e.g. one being trained), sharing its weights;
        ``weights`` is the base weights' sha256 when the caller knows it."""
        self = cls.__new__(cls)
        self.spec = spec
        self.weights = weights
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.batch_size = 16
        self._attach(model, tokenizer, spec)
        return self

    def _attach(self, model: torch.nn.Module, tokenizer: Any, name: str) -> None:
        attention = getattr(model.config, "_attn_implementation", "sdpa")
        if attention not in MASKABLE_ATTENTION:
            raise PersonaguardError(
                f"model {name!r} uses {attention!r} attention, which ignores the custom masks that "
                f"packed scoring needs; load it with attn_implementation in {MASKABLE_ATTENTION}"
            )
        self.model = model
        self.tokenizer = tokenizer
        if not self.tokenizer.chat_template:
            raise PersonaguardError(
                f"model {name!r} has no chat template; personaguard renders every prompt as chat"
            )
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id
        self.eos_ids = self._eos_ids()
        self.layers = _find_layers(self.model)
        self.n_layers = len(self.layers)

    # ---------------------------------------------------------------- rendering

    def render(self, chat: Chat) -> str:
        validate_chat(chat)
        prefill = is_prefill(chat)
        return self.tokenizer.apply_chat_template(
            chat, tokenize=False, add_generation_prompt=not prefill, continue_final_message=prefill
        )

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def _eos_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id}
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        ids |= set(gen_eos) if isinstance(gen_eos, list) else {gen_eos}
        return {i for i in ids if i is not None}

    # ---------------------------------------------------------------- batching helpers

    def _left_padded(self, rows: Sequence[Sequence[int]], width: int) -> tuple[torch.Tensor, ...]:
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), positions.to(self.device)

    def _width_batches(self, lengths: Sequence[int]) -> Iterator[tuple[int, list[int]]]:
        """(padded width, indices) batches, widest first so an out-of-memory shows early.

        Every row is padded to a width that depends on its own length only, and batched only
        with rows of that width. So a row is computed the same way whatever else is in the batch:
        results do not depend on batch size (bit-identical in bf16, where padding that varied
        with the batch moved scores by up to ~0.9 nats on this model).
        """
        groups: dict[int, list[int]] = {}
        for i, n in enumerate(lengths):
            groups.setdefault(padded_width(n), []).append(i)
        for width in sorted(groups, reverse=True):
            members = groups[width]
            for start in range(0, len(members), self.batch_size):
                yield width, members[start : start + self.batch_size]

    def _length_batches(self, lengths: Sequence[int]) -> Iterator[tuple[int, list[int]]]:
        """(width, indices) batches of up to batch_size rows of similar length, longest first.

        For generation, where every batch costs one forward per new token, so many small width
        groups would cost many decode steps. Rows are left-padded and masked, so padding changes
        only how the kernels round (float32: ~1e-6, never enough to move a greedy reply in the
        tests; in bf16 a near-tie can go either way).
        """
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        for start in range(0, len(order), self.batch_size):
            members = order[start : start + self.batch_size]
            yield padded_width(lengths[members[0]]), members

    # ---------------------------------------------------------------- scoring

    def tokenise_choice(self, context: str, choice: str) -> tuple[list[int], list[int]]:
        """(context tokens, choice tokens), by the rule every engine shares (models/choice_tokens.py)."""
        return split_choice(self.encode, context, choice)

    def _shared_prefix_len(self, chat: Chat, ids: list[int]) -> int:
        """How many leading tokens this prompt shares with every prompt of the same system turn.

        Found by rendering the system turn(s) with two different dummy user messages: the tokens
        common to both renderings (system text plus chat-template header) are the reusable part.
        Depends on the prompt alone, never on what else is in the batch.
        """
        lead = list(itertools.takewhile(lambda m: m["role"] == "system", chat))
        probes = [self.encode(self.render([*lead, {"role": "user", "content": c}])) for c in "AB"]
        return min(_common_prefix(ids, probe) for probe in probes)

    @torch.inference_mode()
    def score_choices(
        self, prompts: Sequence[Chat], choices: Sequence[Sequence[str]]
    ) -> list[list[ChoiceScore]]:
        """Each prompt runs once and its KV cache is shared by all of its choices; the system
        prompt (identical across most prompts) runs once per call and is shared by all rows."""
        if len(prompts) != len(choices):
            raise PersonaguardError("score_choices: one list of choices per prompt is required")
        validate_choices(choices)
        prefixes: list[tuple[int, ...]] = []
        rests: list[list[int]] = []
        conts: list[list[list[int]]] = []
        for chat, row in zip(prompts, choices, strict=True):
            text = self.render(chat)
            split = [self.tokenise_choice(text, c) for c in row]
            context = split[0][0]
            cut = self._shared_prefix_len(chat, context)
            prefixes.append(tuple(context[:cut]))
            rests.append(context[cut:])
            conts.append([c for _, c in split])
            if any(not c for c in conts[-1]):
                raise PersonaguardError(f"choices {list(row)!r} do not tokenise after the prompt")
        # Batched by (shared prefix, row-determined width), as in _width_batches.
        groups: dict[tuple[tuple[int, ...], int], list[int]] = {}
        for i, (prefix, rest) in enumerate(zip(prefixes, rests, strict=True)):
            n = len(rest) + sum(len(c) - 1 for c in conts[i])
            groups.setdefault((prefix, padded_width(n)), []).append(i)
        caches = {prefix: self._prefix_cache(prefix) for prefix, _ in groups if prefix}
        results: list[list[ChoiceScore]] = [[] for _ in prompts]
        for (prefix, width), members in sorted(groups.items(), key=lambda g: -g[0][1]):
            for start in range(0, len(members), self.batch_size):
                batch = members[start : start + self.batch_size]
                scored = self._score_batch(
                    caches.get(prefix),
                    len(prefix),
                    width,
                    [rests[i] for i in batch],
                    [conts[i] for i in batch],
                )
                for i, row in zip(batch, scored, strict=True):
                    results[i] = row
        return results

    def _prefix_cache(self, prefix: tuple[int, ...]) -> Any:
        ids = torch.tensor([prefix], device=self.device)
        return self.model(input_ids=ids, use_cache=True, logits_to_keep=1).cache

    def _score_batch(
        self,
        prefix_cache: Any,
        prefix_len: int,
        width: int,
        rests: list[list[int]],
        conts: list[list[list[int]]],
    ) -> list[list[ChoiceScore]]:
        """Score a batch in one forward pass, all choices packed after their prompt.

        Row r is ``prompt_r + choice_1[:-1] + choice_2[:-1] + ...`` (then right padding). A
        4D mask lets each choice see the shared prefix, its prompt and its own earlier tokens but
        no other choice; positions restart after the prompt for every choice. So the prompt is
        computed once per item and the choices cost only their own tokens.
        """
        rows = len(rests)
        layouts = []  # (tokens, positions, owner per token: -1 prompt / j choice, start of choice j)
        for rest, row in zip(rests, conts, strict=True):
            tokens, owner, starts = list(rest), [-1] * len(rest), []
            positions = list(range(prefix_len, prefix_len + len(rest)))
            for j, choice in enumerate(row):
                starts.append(len(tokens))
                tokens += choice[:-1]
                owner += [j] * (len(choice) - 1)
                positions += range(prefix_len + len(rest), prefix_len + len(rest) + len(choice) - 1)
            layouts.append((tokens, positions, owner, starts))
        ids = torch.full((rows, width), self.pad_id, dtype=torch.long)
        pos = torch.zeros((rows, width), dtype=torch.long)
        visible = torch.zeros((rows, 1, width, prefix_len + width), dtype=torch.bool)
        visible[..., :prefix_len] = True
        for r, (tokens, positions, owner, _) in enumerate(layouts):
            n = len(tokens)
            ids[r, :n] = torch.tensor(tokens)
            pos[r, :n] = torch.tensor(positions)
            pos[r, n:] = positions[-1] + 1
            own = torch.tensor(owner)
            causal = torch.ones(n, n, dtype=torch.bool).tril()
            same = (own.unsqueeze(0) == -1) | (own.unsqueeze(0) == own.unsqueeze(1))
            visible[r, 0, :n, prefix_len : prefix_len + n] = causal & same
            pad = torch.arange(n, width)
            visible[r, 0, pad, prefix_len + pad] = True  # padding sees itself only: never a NaN row
        # Additive, not boolean: eager attention adds the mask to the scores, so a boolean mask
        # would add 0/1 and hide nothing there. SDPA reads an additive mask the same way.
        mask = torch.zeros(visible.shape, dtype=self.dtype).masked_fill(~visible, torch.finfo(self.dtype).min)
        cache = None
        if prefix_cache is not None:
            cache = copy.deepcopy(prefix_cache)
            cache.batch_repeat_interleave(rows)
        first_needed = min(len(rest) for rest in rests) - 1
        out = self.model(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=pos.to(self.device),
            cache=cache,
            use_cache=cache is not None,
            logits_to_keep=width - first_needed,
        )
        # which logit position predicts which token, for every choice token
        picks: list[tuple[int, int, int]] = []
        for r, ((_, _, _, starts), rest, row) in enumerate(zip(layouts, rests, conts, strict=True)):
            for j, choice in enumerate(row):
                sources = [len(rest) - 1] + [starts[j] + m for m in range(len(choice) - 1)]
                picks += [(r, src - first_needed, tok) for src, tok in zip(sources, choice, strict=True)]
        r_idx, p_idx, t_idx = (torch.tensor(x, device=self.device) for x in zip(*picks, strict=True))
        logits = out.logits[r_idx, p_idx].float()
        token_logprobs = (
            logits.gather(1, t_idx.unsqueeze(1)).squeeze(1) - torch.logsumexp(logits, dim=-1)
        ).tolist()
        scores: list[list[ChoiceScore]] = []
        cursor = 0
        for row in conts:
            scores.append([])
            for choice in row:
                total = sum(token_logprobs[cursor : cursor + len(choice)])
                cursor += len(choice)
                scores[-1].append(ChoiceScore(logprob=total, n_tokens=len(choice)))
        return scores

    # ---------------------------------------------------------------- generation

    @torch.inference_mode()
    def generate(
        self,
        prompts: Sequence[Chat],
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> list[str]:
        """Greedy (temperature 0) or sampled; each row has its own RNG, so which rows share a batch
        never changes what a row draws."""
        encoded = [self.encode(self.render(chat)) for chat in prompts]
        results: list[str] = [""] * len(prompts)
        for width, batch in self._length_batches([len(e) for e in encoded]):
            seeds = [_row_seed(seed, prompts[i]) for i in batch]
            rows = [encoded[i] for i in batch]
            texts = self._generate_batch(rows, width, max_new_tokens, temperature, seeds)
            for i, text in zip(batch, texts, strict=True):
                results[i] = text
        return results

    def _generate_batch(
        self,
        rows: list[list[int]],
        width: int,
        max_new_tokens: int,
        temperature: float,
        seeds: list[int],
    ) -> list[str]:
        """Left-padded to a row-determined width; each step appends one token per unfinished row.

        A row that produces EOS leaves the batch, cache entries and all, so the batch shrinks as
        replies end instead of decoding padding up to the longest reply. Each row samples from its
        own generator, so which rows share a batch never changes what a row draws.
        """
        ids, mask, positions = self._left_padded(rows, width)
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        produced: list[list[int]] = [[] for _ in rows]
        active = list(range(len(rows)))  # the original row behind each batch row
        out = self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1
        )
        for step in range(max_new_tokens):
            logits = out.logits[:, -1].float()
            if temperature <= 0:
                tokens = logits.argmax(-1).tolist()
            else:
                probs = torch.softmax(logits / temperature, dim=-1).cpu()
                tokens = [
                    int(torch.multinomial(probs[k], 1, generator=generators[i])) for k, i in enumerate(active)
                ]
            keep = [k for k, t in enumerate(tokens) if t not in self.eos_ids]
            for k in keep:
                produced[active[k]].append(tokens[k])
            if not keep or step == max_new_tokens - 1:
                break
            cache = out.cache
            if len(keep) < len(active):
                index = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(index)
                mask, positions = mask[index], positions[index]
                tokens, active = [tokens[k] for k in keep], [active[k] for k in keep]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            positions = positions[:, -1:] + 1
            out = self.model(
                input_ids=torch.tensor(tokens, device=self.device).unsqueeze(1),
                attention_mask=mask,
                position_ids=positions,
                cache=cache,
                use_cache=True,
            )
        return [self.tokenizer.decode(p, skip_special_tokens=True) for p in produced]

    # ---------------------------------------------------------------- activations and hooks

    def check_layer(self, layer: int) -> None:
        if not 0 <= layer <= self.n_layers:
            raise PersonaguardError(
                f"layer {layer} out of range: this model has layers 0..{self.n_layers} "
                "(0 = embeddings, L = output of decoder block L-1)"
            )

    @torch.inference_mode()
    def activations(
        self, prompts: Sequence[Chat], layers: Sequence[int], span: Span = "prompt_last"
    ) -> torch.Tensor:
        """Residual-stream activations, shape [n_prompts, len(layers), hidden], float32.

        ``prompt_last``/``prompt_avg`` read the prompt as the model sees it before answering;
        ``response_avg`` needs each chat to end with an assistant message and averages its tokens.
        """
        for layer in layers:
            self.check_layer(layer)
        rows: list[list[int]] = []
        starts: list[int] = []
        for chat in prompts:
            if span == "response_avg":
                if not is_prefill(chat):
                    raise PersonaguardError("span 'response_avg' needs chats ending in an assistant turn")
                prompt_ids = self.encode(self.render(chat[:-1]))
                full = self.encode(self.render(chat))
                if len(full) <= len(prompt_ids):
                    raise PersonaguardError("span 'response_avg' found an empty assistant response")
                rows.append(full)
                starts.append(len(prompt_ids))
            else:
                rows.append(self.encode(self.render(chat)))
                starts.append(0)
        result = torch.zeros(len(prompts), len(layers), self.hidden_size)
        for i, states in self._row_states(rows, layers):
            result[i] = states[:, -1] if span == "prompt_last" else states[:, starts[i] :].mean(dim=1)
        return result

    def _row_states(
        self, rows: Sequence[Sequence[int]], layers: Sequence[int]
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """(row index, its residual stream at ``layers`` without padding: [layers, tokens, hidden])."""
        for width, batch in self._width_batches([len(r) for r in rows]):
            ids, mask, positions = self._left_padded([rows[i] for i in batch], width)
            with self._capture(layers) as captured:
                self.model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1)
            hidden = torch.stack([captured[layer] for layer in layers], dim=1).float()
            for b, i in enumerate(batch):
                yield i, hidden[b, :, width - len(rows[i]) :].cpu()

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.inference_mode()
    def token_activations(self, prompts: Sequence[Chat], layer: int) -> list[torch.Tensor]:
        """Per prompt, the residual stream at ``layer`` at every prompt token, [n_tokens, hidden]
        float32, padding excluded: the positions a hook at ``layer`` edits (e.g. to set a cap)."""
        self.check_layer(layer)
        rows = [self.encode(self.render(chat)) for chat in prompts]
        result = [torch.empty(0)] * len(rows)
        for i, states in self._row_states(rows, [layer]):
            result[i] = states[0]
        return result

    @contextmanager
    def _capture(self, layers: Sequence[int]) -> Iterator[dict[int, torch.Tensor]]:
        """Record the residual stream at ``layers``, after any steering hooks already in place."""
        captured: dict[int, torch.Tensor] = {}
        handles = []
        for layer in set(layers):
            module = self.model.get_input_embeddings() if layer == 0 else self.layers[layer - 1]

            def record(_m: torch.nn.Module, _i: object, out: object, layer: int = layer) -> None:
                captured[layer] = out[0] if isinstance(out, tuple) else out  # type: ignore[index]

            handles.append(module.register_forward_hook(record))
        try:
            yield captured
        finally:
            for handle in handles:
                handle.remove()

    @contextmanager
    def hook(self, layer: int, fn: HookFn) -> Iterator[None]:
        """Run ``fn`` on the residual stream at ``layer`` (hidden_states index, 1..n_layers).

        ``fn`` gets the block output [batch, seq, hidden] and may return a replacement.
        """
        if not 1 <= layer <= self.n_layers:
            raise PersonaguardError(
                f"layer {layer} out of range for hooks: expected 1..{self.n_layers} "
                "(hidden_states index; layer L is the output of decoder block L-1)"
            )

        def forward_hook(_module: torch.nn.Module, _inputs: object, output: object) -> object:
            hidden = output[0] if isinstance(output, tuple) else output
            replaced = fn(hidden)
            if replaced is None:
                return output
            return (replaced, *output[1:]) if isinstance(output, tuple) else replaced

        handle = self.layers[layer - 1].register_forward_hook(forward_hook)
        try:
            yield
        finally:
            handle.remove()
