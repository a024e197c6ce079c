"""Planning a run: the units (utterance x codec x bitrate) a specification asks for, the grid's notices,
and what is refused before any work (an unavailable codec, an empty grid)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from svbench import manifest as manifest_mod
from svbench.adapters.base import CardCodec
from svbench.adapters.precomputed import DecodedIndex, NoDecodedFile, bitrate_folders
from svbench.bitrate import Bitrate
from svbench.cards import Card, get_card, load_entry_point

PRECOMPUTED = "precomputed"


@dataclass(frozen=True)
class RunSpec:
    dataset: str
    codecs: tuple[str, ...]
    bitrates: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ("pesq", "stoi")
    decoded: tuple[str, ...] = ()  # precomputed: folders of decoded files, one codec each
    label: str | None = None
    label_from: str | None = None  # precomputed: a regular expression whose first group names a folder's codec
    eval_sr: int | None = None
    align: str = "envelope"  # envelope | none
    crop_reference: bool = False
    skip_missing: bool = False  # precomputed: an utterance with no decoded file is a notice, not an error
    workspace: str = "svbench-work"
    grid: tuple[tuple[str, tuple[str, ...]], ...] = ()  # per-codec bitrates (--grid CODEC=B1,B2), before `bitrates`
    retry_failed: bool = True  # a resumed run recomputes the units that failed before

    def bitrates_for(self, codec: str) -> tuple[str, ...]:
        return dict(self.grid).get(codec, self.bitrates)


class UsageError(ValueError):
    """A run refused before any work: nothing to run, a codec that cannot run here."""


@dataclass(frozen=True)
class WorkerContext:
    """Everything a worker process needs, picklable; heavy objects are built once per process."""

    metric_cards: tuple[Card, ...]
    cache_dir: str
    eval_sr: int | None
    align: str
    crop_reference: bool


@dataclass(frozen=True)
class Task:
    ctx: WorkerContext
    utt: manifest_mod.Utterance
    codec: str  # result label
    codec_card: Card | None  # None for precomputed files
    bitrate: Bitrate | None
    decoded_path: str | None = None
    planning_error: str | None = None


@dataclass
class Plan:
    tasks: list[Task] = field(default_factory=list)
    notices: list[tuple[str, str]] = field(default_factory=list)


def make_codec(card: Card) -> CardCodec:
    cls = load_entry_point("svbench.codecs", card.data.get("adapter", card.name))
    codec: CardCodec = cls(card)
    return codec


def build(spec: RunSpec, manifest: manifest_mod.Manifest, ctx: WorkerContext) -> Plan:
    """Every unit the run asks for; a grid pair a codec lacks is a notice; refused (UsageError) when a codec
    cannot run here or nothing is left to run."""
    result = Plan(notices=list(manifest.problems))
    for name in spec.codecs:
        asked = [Bitrate.parse(b) for b in spec.bitrates_for(name)]
        if name == PRECOMPUTED:
            _plan_precomputed(spec, manifest, ctx, asked, result)
            continue
        card = get_card("codecs", name)
        codec = make_codec(card)
        unavailable = codec.unavailable_reason()
        if unavailable:
            raise UsageError(f"codec {name} is unavailable on this machine: {unavailable}")
        if codec.provenance():
            result.notices.append((f"codec {name}", str(codec.provenance())))
        for bitrate in asked or codec.bitrates():
            why_not = codec.unsupported_reason(bitrate)
            if why_not:
                result.notices.append((f"grid {name}@{bitrate.label}", f"skipped: {why_not}"))
                continue
            result.tasks += [Task(ctx, utt, name, card, bitrate) for utt in manifest.utterances]
    if not result.tasks:
        reasons = "; ".join(f"{scope}: {why}" for scope, why in result.notices) or "the manifest has no utterances"
        raise UsageError(f"nothing to run: no valid (codec, bitrate) pair ({reasons})")
    return result


def _plan_precomputed(spec: RunSpec, manifest: manifest_mod.Manifest, ctx: WorkerContext,
                      asked: list[Bitrate], result: Plan) -> None:
    if not spec.decoded:
        raise ValueError("--codec precomputed needs --decoded DIR (the folder of decoded files)")
    if spec.label and len(spec.decoded) > 1:
        raise ValueError("--label names one --decoded folder; with several, each is named after its folder")
    for root in map(Path, spec.decoded):
        if not root.is_dir():
            raise ValueError(f"{root}: --decoded folder not found")
        named = re.search(spec.label_from, root.name) if spec.label_from else None
        label = spec.label or (named.group(1) if named and named.groups() else root.name)
        for bitrate, folder in bitrate_folders(root, asked).items():
            index = DecodedIndex(folder)
            skipped = []
            for utt in manifest.utterances:
                try:
                    path, error = str(index.find(utt.id)), None
                except FileNotFoundError as err:
                    if spec.skip_missing and isinstance(err, NoDecodedFile):
                        skipped.append(utt.id)
                        continue
                    path, error = None, str(err)
                result.tasks.append(Task(ctx, utt, label, None, bitrate, path, error))
            if skipped:
                result.notices.append((f"{label}@{bitrate.label if bitrate else '-'}",
                                       f"skipped {len(skipped)} utterance(s) with no decoded file in {folder}: "
                                       + ", ".join(skipped)))


def task_label(task: Task) -> str:
    return task.bitrate.label if task.bitrate else "-"
