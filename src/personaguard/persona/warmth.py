"""How warm replies sound to a language model, after SocioT (Cheng, Yu & Jurafsky 2025).

``T(s) = log P_warm(s) - log P_cold(s)``, where ``P_D(s)`` is the mean over the relational openers
``w`` in ``D`` of ``P_LM(s | user turn, assistant turn prefilled with w)`` and ``s`` is the reply's
first 300 characters. Positive means the reply is a likelier continuation of warm openers than of
cold ones. Scores are relative to the scoring model: compare datasets under the same model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import logsumexp
from scipy.stats import t as student_t

from personaguard.data.yamlfile import read_yaml
from personaguard.errors import PersonaguardError
from personaguard.models.base import Chat, LanguageModel
from personaguard.paths import builtin_data
from personaguard.persona.dataset import load_conversations

MAX_CHARS = 300  # SocioT truncates replies so long ones do not dominate by length alone
SETS = ("warm", "cold")


@dataclass(frozen=True)
class WarmthPhrases:
    warm: tuple[str, ...]
    cold: tuple[str, ...]


def default_phrases_path() -> Path:
    return builtin_data() / "warmth_phrases.yaml"


def load_phrases(path: str | Path | None = None) -> WarmthPhrases:
    """The built-in openers, or a user YAML with the same two lists ``warm`` and ``cold``."""
    path = Path(path) if path is not None else default_phrases_path()
    raw = read_yaml(path, "warmth phrase")
    if not isinstance(raw, dict):
        raise PersonaguardError(f"{path}: expected a mapping with lists 'warm' and 'cold'")
    extra = sorted(set(raw) - set(SETS), key=str)
    if extra:
        raise PersonaguardError(f"{path}: field {extra[0]!r}: unknown; expected only 'warm' and 'cold'")
    lists = {}
    for name in SETS:
        value = raw.get(name)
        if not isinstance(value, list) or not value:
            raise PersonaguardError(f"{path}: field '{name}': expected a non-empty list of strings")
        for i, phrase in enumerate(value):
            if not isinstance(phrase, str) or not phrase.strip():
                raise PersonaguardError(f"{path}: field '{name}[{i}]': expected non-empty text")
        lists[name] = tuple(p.strip() for p in value)
    return WarmthPhrases(**lists)


def log_mean_exp(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(mean(exp(values))) without underflow: sequence log-probs are in the hundreds."""
    values = np.asarray(values, dtype=float)
    return logsumexp(values, axis=axis) - math.log(values.shape[axis])


def warmth_prompts(
    users: Sequence[str], replies: Sequence[str], phrases: WarmthPhrases
) -> tuple[list[Chat], list[list[str]]]:
    """One prefilled prompt per (reply, opener), reply-major, warm openers before cold ones."""
    if len(users) != len(replies):
        raise PersonaguardError(f"warmth: {len(users)} user turns but {len(replies)} replies")
    prompts: list[Chat] = []
    choices: list[list[str]] = []
    for i, (user, reply) in enumerate(zip(users, replies, strict=True)):
        # Leading whitespace would double the separator; trailing whitespace carries no warmth.
        text = reply.strip()[:MAX_CHARS]
        if not text:
            raise PersonaguardError(f"reply {i} is empty; warmth needs text to score")
        for opener in (*phrases.warm, *phrases.cold):
            prompts.append([{"role": "user", "content": user}, {"role": "assistant", "content": opener}])
            choices.append([" " + text])
    return prompts, choices


def warmth_scores(
    model: LanguageModel,
    users: Sequence[str],
    replies: Sequence[str],
    phrases: WarmthPhrases | None = None,
) -> list[float]:
    """T(s) per reply, from a single ``score_choices`` call so the engine can batch everything."""
    if phrases is None:
        phrases = load_phrases()
    if not replies:
        return []
    prompts, choices = warmth_prompts(users, replies, phrases)
    scored = model.score_choices(prompts, choices)
    logprobs = np.array([row[0].logprob for row in scored]).reshape(len(replies), -1)
    n_warm = len(phrases.warm)
    warm = log_mean_exp(logprobs[:, :n_warm])
    cold = log_mean_exp(logprobs[:, n_warm:])
    return [float(x) for x in warm - cold]


def last_exchange(chat: Chat) -> tuple[str, str]:
    """The last assistant turn and the user turn it answers."""
    for i in range(len(chat) - 1, 0, -1):
        if chat[i]["role"] == "assistant" and chat[i - 1]["role"] == "user":
            return chat[i - 1]["content"], chat[i]["content"]
    raise PersonaguardError("conversation has no user turn followed by an assistant turn")


def score_conversations(
    model: LanguageModel, chats: Sequence[Chat], phrases: WarmthPhrases | None = None
) -> list[float]:
    """Warmth of each conversation's last assistant turn, given the user turn before it."""
    pairs = [last_exchange(chat) for chat in chats]
    return warmth_scores(model, [u for u, _ in pairs], [r for _, r in pairs], phrases)


def with_replies_from(
    responder: LanguageModel, chats: Sequence[Chat], max_new_tokens: int = 128
) -> list[Chat]:
    """The chats with their last assistant turn replaced by ``responder``'s greedy reply (empty
    replies are dropped: there is nothing to score), to measure a model's warmth, not a file's."""
    prompts = [list(chat[:-1]) if chat[-1]["role"] == "assistant" else list(chat) for chat in chats]
    replies = responder.generate(prompts, max_new_tokens=max_new_tokens)
    return [
        [*p, {"role": "assistant", "content": r}] for p, r in zip(prompts, replies, strict=True) if r.strip()
    ]


def score_file(
    model: LanguageModel,
    path: str | Path,
    limit: int | None = None,
    phrases: WarmthPhrases | None = None,
    responder: LanguageModel | None = None,
    max_new_tokens: int = 128,
) -> list[float]:
    """Warmth of a ``{"messages": [...]}`` JSONL file; ``limit`` keeps its first N conversations.
    With a ``responder``, its own replies to the file's prompts are scored instead."""
    if limit is not None and limit < 1:
        raise PersonaguardError(f"limit must be at least 1, got {limit}")
    chats = load_conversations(path)[:limit]
    if responder is not None:
        chats = with_replies_from(responder, chats, max_new_tokens)
    return score_conversations(model, chats, phrases)


def summarise(scores: Sequence[float]) -> dict[str, Any]:
    """Mean with a 95% t-interval: scores are sums of many log-probs, so near-normal means."""
    x = np.asarray(scores, dtype=float)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": math.nan, "lo": math.nan, "hi": math.nan}
    mean = float(x.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "lo": math.nan, "hi": math.nan}
    half = float(student_t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return {"n": n, "mean": mean, "lo": mean - half, "hi": mean + half}


def paired_shift(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """``other``'s warmth minus ``base``'s on the prompts both answered (two ``responder_warmth``
    results), with a t 95% CI over prompts: the manipulation check that a warmth adapter made the
    model warmer. Pairing by prompt removes the prompt-to-prompt spread that dominates either mean."""
    before = {s["prompt"]: s["warmth"] for s in base.get("samples", [])}
    diffs = [s["warmth"] - before[s["prompt"]] for s in other.get("samples", []) if s["prompt"] in before]
    return summarise(diffs)


def describe_shift(shift: dict[str, Any]) -> str:
    """A ``paired_shift`` in words: the verdict follows the interval, not the point estimate."""
    if shift["n"] < 2:
        return f"n/a ({shift['n']} paired prompt(s))"
    lo, hi = shift["lo"], shift["hi"]
    verdict = "warmer" if lo > 0 else "colder" if hi < 0 else "no clear change"
    return f"{shift['mean']:+.2f} [{lo:+.2f}, {hi:+.2f}] {verdict} (n={shift['n']})"


def responder_warmth(
    scorer: LanguageModel, responder: LanguageModel, chats: Sequence[Chat], max_new_tokens: int = 128
) -> dict[str, Any]:
    """Summary of ``responder``'s warmth on the chats' prompts, with each scored reply kept."""
    answered = with_replies_from(responder, chats, max_new_tokens)
    scores = score_conversations(scorer, answered)
    samples = [
        {"prompt": prompt, "reply": reply, "warmth": round(s, 3)}
        for (prompt, reply), s in zip(map(last_exchange, answered), scores, strict=True)
    ]
    return {**summarise(scores), "max_new_tokens": max_new_tokens, "samples": samples}
