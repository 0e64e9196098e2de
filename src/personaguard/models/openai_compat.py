"""Any OpenAI-compatible server (vLLM, `transformers serve`, hosted APIs) as a LanguageModel.

Requests run concurrently up to ``max_connections`` and retry with exponential backoff on 429,
5xx and timeouts. The API key comes from an environment variable at call time; it is never
stored in the spec, a run directory, or an error message.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Sequence
from typing import Any

import httpx

from personaguard.errors import PersonaguardError
from personaguard.models.base import Chat, ChoiceScore, is_prefill, validate_chat, validate_choices
from personaguard.models.choice_tokens import split_choice
from personaguard.models.spec import ModelSpec

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
GENERATIVE_HINT = "use a generative grader instead (audit --grader generate)"


class OpenAIModel:
    def __init__(self, spec: ModelSpec, backoff: float = 0.5) -> None:
        self.spec = str(spec)
        self.model = spec.name
        self.base_url = spec.base_url or ""
        self.key_env = spec.option("api_key_env", "OPENAI_API_KEY") or "OPENAI_API_KEY"
        self.max_connections = int(spec.option("max_connections", "8") or 8)
        self.timeout = float(spec.option("timeout", "120") or 120)
        self.tokenizer_name = spec.option("tokenizer")
        self.max_retries = int(spec.option("retries", "5") or 5)
        self.backoff = backoff
        self._tokenizer: Any = None

    def __repr__(self) -> str:
        return f"OpenAIModel({self.spec!r})"

    # ---------------------------------------------------------------- transport

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.key_env)
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def _post(
        self, client: httpx.AsyncClient, gate: asyncio.Semaphore, path: str, payload: dict, rejected: str
    ) -> dict:
        """POST with retries; ``rejected`` explains what a 400/422 (an invalid request) means here."""
        url = f"{self.base_url}{path}"
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            async with gate:
                try:
                    response = await client.post(url, json=payload, headers=self._headers())
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    if last:
                        raise PersonaguardError(
                            f"cannot reach endpoint {url}: {type(exc).__name__}"
                            f" after {self.max_retries + 1} attempts"
                        ) from None
                    response = None
            if response is not None:
                if response.status_code < 400:
                    return response.json()
                if response.status_code in (401, 403):
                    raise PersonaguardError(
                        f"endpoint {url} rejected the API key (HTTP {response.status_code}); "
                        f"set ${self.key_env} to a valid key"
                    )
                if response.status_code not in RETRY_STATUS or last:
                    why = f"; {rejected}" if rejected and response.status_code in (400, 422) else ""
                    raise PersonaguardError(
                        f"endpoint {url} answered HTTP {response.status_code}: {response.text[:300]}{why}"
                    )
            await asyncio.sleep(self.backoff * 2**attempt * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def _post_all(self, path: str, payloads: Sequence[dict], rejected: str = "") -> list[dict]:
        async def run() -> list[dict]:
            gate = asyncio.Semaphore(self.max_connections)
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                return await asyncio.gather(*(self._post(client, gate, path, p, rejected) for p in payloads))

        return asyncio.run(run())

    # ---------------------------------------------------------------- generation

    def generate(
        self,
        prompts: Sequence[Chat],
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> list[str]:
        payloads = []
        for chat in prompts:
            validate_chat(chat)
            if is_prefill(chat):
                raise PersonaguardError(
                    "chat endpoints cannot continue an assistant prefill; end prompts with a user turn"
                )
            payloads.append(
                {
                    "model": self.model,
                    "messages": list(chat),
                    "max_tokens": max_new_tokens,
                    "temperature": temperature,
                    "seed": seed,
                }
            )
        replies = self._post_all("/chat/completions", payloads)
        try:
            return [r["choices"][0]["message"]["content"] or "" for r in replies]
        except (KeyError, IndexError, TypeError) as exc:
            raise PersonaguardError(f"unexpected chat completion format from {self.base_url}") from exc

    # ---------------------------------------------------------------- scoring

    def _tokenizer_for_scoring(self) -> Any:
        if not self.tokenizer_name:
            raise PersonaguardError(
                f"{self.spec}: scoring choices sends token ids to /v1/completions, so personaguard "
                "must render the chat template and tokenise itself; add '#tokenizer=<hf id or path>' "
                f"to the spec, or {GENERATIVE_HINT}"
            )
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_name)
        return self._tokenizer

    def _encode(self, text: str) -> list[int]:
        return self._tokenizer_for_scoring()(text, add_special_tokens=False).input_ids

    def _render(self, chat: Chat) -> str:
        tokenizer = self._tokenizer_for_scoring()
        validate_chat(chat)
        prefill = is_prefill(chat)
        return tokenizer.apply_chat_template(
            chat, tokenize=False, add_generation_prompt=not prefill, continue_final_message=prefill
        )

    def score_choices(
        self, prompts: Sequence[Chat], choices: Sequence[Sequence[str]]
    ) -> list[list[ChoiceScore]]:
        """Sum the log-probs of each choice's tokens via /v1/completions with echo + logprobs.

        Prompts go as token ids, split into prompt and choice by the local engine's rule
        (models/choice_tokens.py), so the server scores exactly the tokens the HF engine scores:
        its own tokenizer cannot add a second BOS, and no character offsets are needed.
        """
        validate_choices(choices)
        jobs: list[tuple[int, int, int]] = []  # (prompt index, context tokens, choice tokens)
        payloads = []
        for i, (chat, row) in enumerate(zip(prompts, choices, strict=True)):
            context = self._render(chat)
            for choice in row:
                ctx, cont = split_choice(self._encode, context, choice)
                if not cont:
                    raise PersonaguardError(f"choice {choice!r} does not tokenise after the prompt")
                jobs.append((i, len(ctx), len(cont)))
                payloads.append(
                    {
                        "model": self.model,
                        "prompt": ctx + cont,
                        "max_tokens": 1,
                        "echo": True,
                        "logprobs": 1,
                        "temperature": 0,
                    }
                )
        rejected = (  # a 400 may also be a too-long prompt, so the hint is conditional
            "scoring sends token-id prompts with echo + logprobs (vLLM takes them); a server that "
            f"refuses them cannot score choices: {GENERATIVE_HINT}"
        )
        replies = self._post_all("/completions", payloads, rejected)
        results: list[list[ChoiceScore]] = [[] for _ in prompts]
        for (i, n_ctx, n_cont), reply in zip(jobs, replies, strict=True):
            results[i].append(_choice_score(reply, n_ctx, n_cont, self.spec))
        return results


def _choice_score(reply: dict, n_ctx: int, n_cont: int, spec: str) -> ChoiceScore:
    """The choice is prompt tokens n_ctx .. n_ctx + n_cont of the echo (a generated token follows)."""
    try:
        values = reply["choices"][0]["logprobs"]["token_logprobs"]
    except (KeyError, IndexError, TypeError):
        values = None
    if not values or len(values) < n_ctx + n_cont:
        raise PersonaguardError(
            f"{spec}: the server's /v1/completions did not return prompt logprobs (echo + logprobs), "
            f"so it cannot score choices; {GENERATIVE_HINT}"
        )
    picked = values[n_ctx : n_ctx + n_cont]
    if any(v is None for v in picked):
        raise PersonaguardError(f"{spec}: no logprobs returned for the choice tokens")
    return ChoiceScore(logprob=float(sum(picked)), n_tokens=n_cont)
