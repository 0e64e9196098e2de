"""Safety graders: each reads (request, conversation, reply) and says refusal, compliance or non-answer.

- ``rules``: rules plus a TF-IDF classifier over the reply and its relation to the request
  (``audit.refusal``);
- ``probe``: logistic regression on a bundled model's activations over the reply
  (``audit.safety_probe``);
- ``judge``: a judge model with a StrongREJECT-style rubric (``audit.judge``); its reply that does
  not parse is unscored (None), never "safe" and never "unsafe".

The default was chosen by measurement against the hand-labelled test split and PyRIT's human labels
(docs/AUDIT.md, "Safety grading"). A grader's ``identity`` is what decides its verdicts, by content;
the run fingerprint records it, so runs graded differently are never paired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from personaguard.audit.safety_labels import SafetyCase, labelled_path
from personaguard.errors import PersonaguardError
from personaguard.fingerprint import file_sha256, text_sha256
from personaguard.models.base import LanguageModel

SafetyGraderName = Literal["rules", "probe", "judge"]
SAFETY_GRADERS: tuple[SafetyGraderName, ...] = ("rules", "probe", "judge")
DEFAULT_SAFETY_GRADER: SafetyGraderName = "rules"


@dataclass(frozen=True)
class Verdict:
    outcome: str | None  # one of safety_labels.OUTCOMES, or None: unscored
    details: dict[str, Any]


class SafetyGrader(Protocol):
    name: str

    def grade(self, cases: Sequence[SafetyCase]) -> list[Verdict]: ...


@dataclass
class RulesGrader:
    name: str = "rules"

    def grade(self, cases: Sequence[SafetyCase]) -> list[Verdict]:
        from personaguard.audit.refusal import classify

        return [Verdict(c.pop("outcome"), c) for c in classify(cases)]


@dataclass
class ProbeGrader:
    name: str = "probe"

    def grade(self, cases: Sequence[SafetyCase]) -> list[Verdict]:
        from personaguard.audit.safety_probe import load_probe

        # an empty reply has no tokens to read; it is a non-answer by definition
        filled = [c for c in cases if c.reply.strip()]
        probs = iter(load_probe().probabilities(filled))
        out = []
        for case in cases:
            if not case.reply.strip():
                out.append(Verdict("non_answer", {"rule": "empty"}))
                continue
            p = next(probs)
            out.append(Verdict(max(p, key=lambda k: p[k]), {"rule": "probe", "p": p}))
        return out


@dataclass
class JudgeGrader:
    judge: LanguageModel
    name: str = "judge"

    def grade(self, cases: Sequence[SafetyCase]) -> list[Verdict]:
        from personaguard.audit.judge import judge_safety

        return [Verdict(v.pop("outcome"), v) for v in judge_safety(self.judge, cases)]


def load_safety_grader(name: str, judge: LanguageModel | None = None) -> SafetyGrader:
    if name == "rules":
        return RulesGrader()
    if name == "probe":
        return ProbeGrader()
    if name == "judge":
        if judge is None:
            raise PersonaguardError("safety grader 'judge' needs a judge model: pass --judge SPEC")
        return JudgeGrader(judge)
    raise PersonaguardError(f"safety grader {name!r}: expected one of {', '.join(SAFETY_GRADERS)}")


def identity(name: str) -> dict[str, Any]:
    """What decides the grader's verdicts, by content (the judge model itself is fingerprinted apart)."""
    from personaguard.audit import refusal

    if name == "rules":
        return {
            "name": name,
            "labelled": file_sha256(labelled_path()),
            "written": file_sha256(refusal.written_path()),
            "seeds": [file_sha256(p) for p in refusal.seed_paths()],
            "version": refusal.RULES_VERSION,
        }
    if name == "probe":
        from personaguard.audit.safety_probe import identity as probe_identity

        return {"name": name, **probe_identity()}
    if name == "judge":
        from personaguard.audit.judge import SAFETY_JUDGE_MAX_TOKENS, rubrics

        return {
            "name": name,
            "rubric": text_sha256(rubrics()["safety"]),
            "max_tokens": SAFETY_JUDGE_MAX_TOKENS,
        }
    raise PersonaguardError(f"safety grader {name!r}: expected one of {', '.join(SAFETY_GRADERS)}")


def grade_cases(graders: Sequence[SafetyGrader], cases: Sequence[SafetyCase]) -> list[dict[str, Verdict]]:
    """Per case, every grader's verdict by grader name."""
    verdicts = {g.name: g.grade(cases) for g in graders}
    return [{name: v[i] for name, v in verdicts.items()} for i in range(len(cases))]
