"""One evaluation assembled in one place: the profile writer, one judge per method, and what the run records.

`prefscribe eval` and `bench/bench_quality.py` both build their runs here, so a change of how profiles are
written or read is made once:

    plan = assemble(EvalSpec(model="embedded", methods=("logprobs", "contrast"), seed=0))
    plan.run(Dataset("psoups", "", users), ["none", "gold", "gold_mismatched", "full"], out=Path("runs/p"))

The writer is chosen by name from `writers.WRITERS` (or given as a factory): a new writer is one entry there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from ..cache import ResultCache
from ..errors import InputError
from ..infer import InferConfig
from ..judge import LIKELIHOOD_METHODS, Judge, Method, Orders
from ..llm import DEFAULT_SPEC, load_backend
from ..prompts import PromptSet, Style, get_prompts
from .runner import Advance, EvalConfig, Evaluation
from .variants import Dataset
from ..measure import MeasureConfig
from .writers import DEFAULT_WRITER, ProfileWriter, WriterFactory, WriterParts, writer_factory

METHODS: tuple[str, ...] = get_args(Method)


def parse_methods(text: str) -> list[str]:
    """A comma list of judge methods, each once, in the order given."""
    names = list(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise InputError(f"--method: unknown judge method(s) {', '.join(unknown) or '(none given)'}; choose from "
                         f"{', '.join(METHODS)}", field="method")
    return names


@dataclass
class EvalSpec:
    """Everything that decides how profiles are written and read, as a user types it.

    model: writes the profiles; judge: reads them (None: the same model); writer: a name in WRITERS or a factory;
    methods: judge methods, each run on the same users (`none` to `gold_mismatched` per method in the summary);
    order: "both" (debiased) or "random" (one random order per item, the paper's code); style / max_new_tokens:
    of the profiles; candidates / validator: behavioural validation; prompts: a template folder or version;
    cache: read and write the result cache; measure: the measured writer's settings (None: its defaults).
    """

    model: str = DEFAULT_SPEC
    judge: str | None = None
    writer: str | WriterFactory = DEFAULT_WRITER
    methods: Sequence[str] = ("logprobs",)
    order: Orders = "both"
    seed: int = 0
    style: Style | None = None
    max_new_tokens: int | None = None
    candidates: int = 1
    validator: str | None = None
    prompts: str | None = None
    cache: bool = True
    measure: MeasureConfig | None = None


@dataclass
class EvalPlan:
    """A writer and one judge per method, ready to run on datasets; `meta` goes into every summary."""

    writer: ProfileWriter
    judges: dict[str, Judge]
    prompts: PromptSet
    seed: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def run(self, dataset: Dataset, settings: Sequence[str], out: Path, *, segments: int = 2, chunk: int = 8,
            run_meta: dict[str, Any] | None = None,
            progress: Callable[[str, int], Advance] | None = None) -> list[dict]:
        """Every setting under every judge method into one run folder; the methods share the written profiles
        (the first method writes them, the next ones read them back from items.jsonl). Returns the summary rows."""
        results: list[dict] = []
        for method, judge in self.judges.items():
            config = EvalConfig(benchmark=dataset.benchmark, settings=list(settings), out=out, segments=segments,
                                chunk=chunk, variant=dataset.variant, seed=self.seed,
                                run_meta={**self.meta, "method": method, "methods": list(self.judges),
                                          "settings": list(settings), "segments": segments, **(run_meta or {})})
            results = Evaluation(self.writer, judge, config).run(dataset.records, progress)
        return results


def assemble(spec: EvalSpec) -> EvalPlan:
    """Load the models once and build the writer and the judges the spec asks for."""
    factory = _writer_factory(spec.writer)
    methods = parse_methods(",".join(spec.methods))
    cache = ResultCache() if spec.cache else None
    prompts = get_prompts(spec.prompts)
    backend = load_backend(spec.model)
    judge_backend = load_backend(spec.judge) if spec.judge else backend
    for method in methods:
        if method in LIKELIHOOD_METHODS and not judge_backend.info.supports_likelihood:
            raise InputError(f"{judge_backend.info.spec} gives no log-likelihoods: drop --method {method} or use "
                             "logprobs", field="method")
    config = InferConfig(style=spec.style, prompts=prompts, max_new_tokens=spec.max_new_tokens or None)
    writer = factory(WriterParts(backend, judge_backend, config, cache, spec.candidates,
                                 load_backend(spec.validator) if spec.validator else None, spec.measure))
    judges: dict[str, Judge] = {}
    for method in methods:
        judge = Judge(judge_backend, method=method, orders=spec.order, seed=spec.seed, prompts=prompts, cache=cache)
        # A server without logprobs judges "logprobs" by generation: one judge, whichever was asked first.
        judges.setdefault(judge.method, judge)
    meta = {"model": writer.writer, "writer": spec.writer if isinstance(spec.writer, str) else _name(spec.writer),
            "candidates": spec.candidates, "judge": judge_backend.info.spec, "seed": spec.seed, "order": spec.order,
            "prompt_version": prompts.version, **_writer_details(writer)}
    return EvalPlan(writer=writer, judges=judges, prompts=prompts, seed=spec.seed, meta=meta)


def _writer_factory(writer: str | WriterFactory) -> WriterFactory:
    if callable(writer):
        return writer
    return writer_factory(writer)


def _name(factory: WriterFactory) -> str:
    return getattr(factory, "__name__", type(factory).__name__)


def _writer_details(writer: ProfileWriter) -> dict[str, Any]:
    """The style and sampling of writers that have them (the free-text writer), for the run record."""
    details: dict[str, Any] = {}
    if getattr(writer, "style", None) is not None:
        details["style"] = writer.style  # type: ignore[attr-defined]
    sampling = getattr(writer, "sampling", None)
    if sampling is not None:
        details["sampling"] = dict(sampling.__dict__)
    return details
