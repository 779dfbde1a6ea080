"""The embedded model on each CPU engine, same workloads, one table: which runtime the embedded default uses.

    python bench/bench_engines.py --size 1.5b --runs 3                 # every engine, against torch
    python bench/bench_engines.py --engines torch-fp32,ct2,ort --baseline torch-fp32 --users 4 --agreement 0
    python bench/bench_engines.py --engines torch-fp32,ort --baseline torch-fp32 --agreement 20 --no-speed
    python bench/bench_engines.py --cold                               # also time first-use conversion
    python bench/bench_engines.py --isa avx2 --engines torch-fp32,ct2,ort --baseline torch-fp32
                                        # every runtime held to AVX2 (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA,
                                        # CT2_FORCE_CPU_ISA): what an AVX2-only machine runs, on any machine
    python bench/bench_engines.py --controls 40 --engines torch,ort,ov,ct2   # which engines qualify

--controls N is the check an engine must pass to be a default: on N seeded, persona-stratified P-Soups users it
runs the evaluation harness (settings none, gold, gold_mismatched, full, mismatched) with each engine writing the
profiles (the default writer, assembled as `prefscribe eval` assembles it) and judging, and compares each engine
with the baseline (the torch path) user by user: accuracy per setting, own - another's (full - mismatched), gold -
gold_mismatched, each difference with a paired-bootstrap 95% interval, and the share of tasks decided alike. An
engine qualifies when every interval holds 0 and at least 90% of the tasks agree (prefscribe.evaluate.qualifies).
Runs land in --controls-dir/<engine>, resumable; --strict exits 1 when an engine does not qualify; --guard exits 1
only when the sample rules an engine out (an interval excludes 0, or even the agreement's one-sided 95% upper bound
is below 90%), which is what a few users can show: CI runs it (tests/test_embedded.py). --engines also takes full
model specs (hf:<path>+torch-fp32).

Every engine runs in its own subprocess (its peak RSS is its own) through the project's own code path
(`load_backend("embedded:<size>+<engine>")`, Inferrer, Judge). Times are medians of --runs runs; ratios are against
the baseline engine (--baseline, default the first) measured in the same run. Agreement compares each engine's
answers with the baseline's on real P-Soups judge tasks ($PREFSCRIBE_DATA): two-way probabilities, choices,
likelihood rankings and whether greedy profiles parse. On a CPU without native bf16 the torch engine emulates it (a
1,000-token prompt takes minutes): compare against torch-fp32 there, with fewer users (--users) if time is short.
The decode floor is the bytes of weights read per token over this machine's measured memory bandwidth.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_core import _timed  # the same median-of-runs timer (bench/ is on the path when run as a script)

DATA = Path(os.environ.get("PREFSCRIBE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
ENGINES = ("torch", "torch-fp32", "ct2", "ort", "ov")  # prefscribe.llm.embedded.ENGINES


CONTROL_SETTINGS = ("none", "gold", "gold_mismatched", "full", "mismatched")


def _spec(size: str, engine: str) -> str:
    """An engine of the embedded model, or a full model spec as given."""
    return engine if ":" in engine else f"embedded:{size}+{engine}"


def _movielens_users(n: int):
    from prefscribe.data import load

    return [u for u in load("movielens", DATA / "movielens", limit=60, seed=0, max_history=80)
            if len(u.history) >= 30][:n]


def _history_of_tokens(backend, tokens: int, user_index: int = 0):
    """The most recent MovieLens interactions of one user that render to about `tokens` tokens."""
    from prefscribe.prompts import get_prompts

    history = _movielens_users(user_index + 1)[user_index].history
    rendered = get_prompts().render_history(history, tokens, backend.count_tokens)
    return history[len(history) - rendered.kept:]


def _psoups_tasks(n: int):
    """n seeded, persona-stratified P-Soups users as judge tasks with the gold persona as the profile."""
    from prefscribe.data import load
    from prefscribe.judge import ChoiceTask

    users = load("psoups", DATA / "psoups" / "student_phd.json", limit=n, seed=0)
    return [ChoiceTask(a=u.target.chosen, b=u.target.rejected, context=u.target.context,
                       preference=u.gold_preference) for u in users], users


# ----------------------------------------------------------------------------------------- child parts
def part_load(size: str, engine: str, runs: int) -> dict:
    from prefscribe.llm import load_backend

    start = time.perf_counter()
    load_backend(_spec(size, engine))
    return {"warm_load_s": time.perf_counter() - start}


def part_cold(size: str, engine: str, runs: int) -> dict:
    """First use in an empty model cache: join and verify the GGUF, dequantize, convert for the engine."""
    from prefscribe.llm import load_backend

    with tempfile.TemporaryDirectory() as cache:
        os.environ["PREFSCRIBE_MODEL_CACHE"] = cache
        start = time.perf_counter()
        load_backend(_spec(size, engine))
        return {"cold_load_s": time.perf_counter() - start}


def part_speed(size: str, engine: str, runs: int, users: int = 16) -> dict:
    from prefscribe.infer import InferConfig, InferJob, Inferrer
    from prefscribe.judge import ChoiceTask, Judge
    from prefscribe.llm import load_backend
    from prefscribe.llm.base import Sampling

    backend = load_backend(_spec(size, engine))
    history = _history_of_tokens(backend, 800)

    def writer(new_tokens: int) -> Inferrer:
        return Inferrer(backend, InferConfig(style="direct", sampling=Sampling(
            max_new_tokens=new_tokens, min_new_tokens=new_tokens, temperature=0.0)), cache=None)

    writer(1).run([InferJob(history[:2])])  # warm-up: first-call kernel setup
    prefill_s, first = _timed(lambda: writer(1).run([InferJob(history)]), runs)
    profile_s, profile = _timed(lambda: writer(150).run([InferJob(history)]), runs)
    prompt_tokens = first[0].usage.prompt_tokens
    decode_tps = (profile[0].usage.completion_tokens - 1) / max(profile_s - prefill_s, 1e-9)

    users = [InferJob(_history_of_tokens(backend, 300, i)) for i in range(users)]
    batch_writer = writer(64)
    one_by_one, _ = _timed(lambda: [batch_writer.run([job]) for job in users], 1)
    batched, _ = _timed(lambda: batch_writer.run(users), 1)

    profile_text = ("The user is drawn to slow, cerebral science fiction and character-driven drama: films that "
                    "take ideas seriously, told with restraint. They avoid broad romantic comedies, slapstick "
                    "and loud franchise action, and they rarely pick musicals.")
    task = ChoiceTask(a="Annihilation (2018) — Adventure|Drama|Horror|Mystery|Sci-Fi",
                      b="Crazy, Stupid, Love. (2011) — Comedy|Drama|Romance", preference=profile_text)
    judge, likelihood = Judge(backend, cache=None), Judge(backend, method="likelihood", cache=None)
    judge.choose(task), likelihood.choose(task)
    choose_s, _ = _timed(lambda: judge.choose(task), runs)
    likelihood_s, _ = _timed(lambda: likelihood.choose(task), runs)
    return {"prompt_tokens": prompt_tokens, "prefill_s": prefill_s, "prompt_tps": prompt_tokens / prefill_s,
            "decode_tps": decode_tps, "profile_s": profile_s,
            "profile_tokens": [profile[0].usage.prompt_tokens, profile[0].usage.completion_tokens],
            "sequential_s": one_by_one, "batched_s": batched, "choose_s": choose_s, "likelihood_s": likelihood_s}


def part_answers(size: str, engine: str, runs: int, n: int = 200, out: str = "") -> dict:
    """Raw answers for the agreement check, written to `out` as JSON."""
    from prefscribe.infer import InferConfig, InferJob, Inferrer
    from prefscribe.judge import Judge
    from prefscribe.llm import load_backend
    from prefscribe.llm.base import Sampling
    from prefscribe.schema import Profile

    backend = load_backend(_spec(size, engine))
    tasks, users = _psoups_tasks(n)
    judged = Judge(backend, cache=None).choose_many(tasks)
    likely = Judge(backend, method="likelihood", cache=None).choose_many(tasks[: max(1, n // 4)])
    writer = Inferrer(backend, InferConfig(style="direct", sampling=Sampling(max_new_tokens=200, temperature=0.0)),
                      cache=None)
    profiles = writer.run([InferJob(u.history) for u in users[:min(10, max(2, n // 10))]])
    answers = {"p_first": [[o.p_first for o in c.orders] for c in judged], "choice": [c.choice for c in judged],
               "likelihood_p_a": [c.p_a for c in likely],
               "parsed": [isinstance(p, Profile) for p in profiles]}
    Path(out).write_text(json.dumps(answers), encoding="utf-8")
    return {"written": out}


def part_controls(size: str, engine: str, runs: int, users: int = 40, out: str = "",
                  max_new_tokens: int | None = None) -> dict:
    """The harness's controls with this engine writing the profiles (the default writer, as a user gets them)
    and judging; items in `out`. Assembled as `prefscribe eval` assembles it."""
    from prefscribe.data import load
    from prefscribe.evaluate import Dataset, EvalSpec, assemble

    # The reply cache's keys carry the engine, so engines never share a reply.
    plan = assemble(EvalSpec(model=_spec(size, engine), max_new_tokens=max_new_tokens))
    records = load("psoups", DATA / "psoups" / "student_phd.json", limit=users, seed=0)
    plan.run(Dataset("psoups", "", records), CONTROL_SETTINGS, Path(out),
             run_meta={"bench": "bench_engines --controls", "limit": users})
    return {"items": str(Path(out) / "items.jsonl"), "spec": plan.meta["model"], "writer": plan.meta["writer"]}


def controls_table(engines: list[str], baseline: str, items: dict[str, list[dict]]) -> tuple[str, dict]:
    """The controls of every engine against the baseline's, and whether each qualifies."""
    from prefscribe.evaluate import compare_runs

    checks = {e: compare_runs(items[e], items[baseline], CONTROL_SETTINGS) for e in engines if e != baseline}
    reference = compare_runs(items[baseline], items[baseline], CONTROL_SETTINGS)
    users = len({row["user_id"] for row in items[baseline]})
    lines = [f"| measure ({users} P-Soups users) | {baseline} | " + " | ".join(checks) + " |",
             "|---|---|" + "---|" * len(checks)]
    for i, measure in enumerate(reference.measures):
        cells = []
        for check in checks.values():
            m = check.measures[i] if i < len(check.measures) else None
            cells.append("-" if m is None else f"{100 * m.value:.1f} ({100 * m.diff.diff:+.1f} "
                         f"[{100 * m.diff.ci_low:+.1f}, {100 * m.diff.ci_high:+.1f}])")
        lines.append(f"| {measure.name} | {100 * measure.value:.1f} | " + " | ".join(cells) + " |")
    lines.append("| decisions agree | - | " + " | ".join(f"{100 * c.agreement:.0f}% of {c.tasks}"
                                                        for c in checks.values()) + " |")
    lines.append("| qualifies | - | " + " | ".join("yes" if c.qualifies else "no" for c in checks.values()) + " |")
    lines.append("| ruled out by this sample | - | " + " | ".join("yes" if c.ruled_out else "no"
                                                                 for c in checks.values()) + " |")
    note = (f"\nAccuracy in points; in brackets each engine minus {baseline}, user by user, with its paired-bootstrap "
            "95% interval. Qualifies: every interval holds 0 and >= 90% of tasks are decided alike. Ruled out: an "
            "interval excludes 0, or even the one-sided 95% upper bound of the agreement is below 90%.")
    return "\n".join(lines) + "\n" + note + "\n", checks


def part_bandwidth(size: str, engine: str, runs: int) -> dict:
    """Memory read bandwidth: summing a 1 GiB array, best of several runs (what decoding is bound by)."""
    import numpy as np

    data = np.ones(1 << 28, dtype=np.float32)
    best = min(_timed(lambda: data.sum(), 1)[0] for _ in range(5))
    return {"gb_per_s": data.nbytes / best / 1e9}


PARTS = {"load": part_load, "cold": part_cold, "speed": part_speed, "answers": part_answers,
         "controls": part_controls, "bandwidth": part_bandwidth}


ISA: str | None = None  # --isa: the forced instruction set every child runs with


def _child(part: str, size: str, engine: str, runs: int, extra: list[str] = ()) -> dict:
    from prefscribe.llm._cpu import isa_env

    out = subprocess.run([sys.executable, __file__, "--size", size, "--runs", str(runs), "--part", part,
                          "--engine", engine, *extra], capture_output=True, text=True, check=False,
                         env={**os.environ, **isa_env(ISA)})
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    if not line:
        print(out.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{part} on {engine} failed")
    return json.loads(line[0][7:])


def _agreement(base: dict, other: dict) -> dict:
    diffs = [abs(a - b) for pa, pb in zip(base["p_first"], other["p_first"]) for a, b in zip(pa, pb)
             if a is not None and b is not None]
    same = [a == b for a, b in zip(base["choice"], other["choice"])]
    rank = [(a >= 0.5) == (b >= 0.5) for a, b in zip(base["likelihood_p_a"], other["likelihood_p_a"])]
    return {"max_p_diff": max(diffs), "mean_p_diff": statistics.mean(diffs), "same_choice": sum(same) / len(same),
            "n": len(same), "likelihood_same_rank": sum(rank) / len(rank), "likelihood_n": len(rank),
            "parsed": f"{sum(other['parsed'])}/{len(other['parsed'])}"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="1.5b", choices=["1.5b", "0.5b"])
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--agreement", type=int, default=200, help="P-Soups judge tasks compared (0: skip)")
    parser.add_argument("--cold", action="store_true", help="also time first use with an empty model cache")
    parser.add_argument("--baseline", help="the engine ratios are against (default: the first of --engines)")
    parser.add_argument("--users", type=int, default=16, help="users in the batched-vs-one-at-a-time lines")
    parser.add_argument("--no-speed", action="store_true", help="only the agreement part")
    parser.add_argument("--isa", choices=["avx2"], help="hold every runtime to this instruction set")
    parser.add_argument("--controls", type=int, default=0, metavar="USERS",
                        help="only the qualifying check, on this many P-Soups users")
    parser.add_argument("--controls-dir", type=Path, default=Path("runs/engine-controls"))
    parser.add_argument("--max-new-tokens", type=int, default=None, help="profile token limit in --controls")
    parser.add_argument("--strict", action="store_true", help="exit 1 if an engine does not qualify")
    parser.add_argument("--guard", action="store_true",
                        help="exit 1 if this sample rules an engine out (the CI check on a few users)")
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:  # child process: one part on one engine, JSON with its peak RSS
        kwargs = ({"n": args.agreement, "out": args.out} if args.part == "answers" else
                  {"users": args.users} if args.part == "speed" else
                  {"users": args.controls, "out": args.out, "max_new_tokens": args.max_new_tokens}
                  if args.part == "controls" else {})
        result = PARTS[args.part](args.size, args.engine, args.runs, **kwargs)
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("RESULT " + json.dumps(result))
        return

    global ISA
    ISA = args.isa
    engines = args.engines.split(",")
    args.baseline = args.baseline or engines[0]
    if args.baseline not in engines:
        raise SystemExit(f"--baseline {args.baseline} is not one of --engines")
    if args.controls:
        text, checks = run_controls(args, engines)
        print(text)
        if args.strict and not all(c.qualifies for c in checks.values()):
            raise SystemExit(1)
        if args.guard and any(c.ruled_out for c in checks.values()):
            raise SystemExit(1)
        return
    rows: dict[str, dict] = {e: {} for e in engines}
    answers: dict[str, dict] = {}
    for engine in engines:
        rows[engine].update(_child("load", args.size, engine, 1))  # first: converts if needed
        if not args.no_speed:
            rows[engine]["warm_load_s"] = statistics.median(
                _child("load", args.size, engine, 1)["warm_load_s"] for _ in range(args.runs))
            if args.cold:
                rows[engine].update(_child("cold", args.size, engine, 1))
            rows[engine].update(_child("speed", args.size, engine, args.runs, ["--users", str(args.users)]))
            print(engine, json.dumps(rows[engine]), flush=True)
        if args.agreement:
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
                _child("answers", args.size, engine, 1, ["--out", fh.name, "--agreement", str(args.agreement)])
                answers[engine] = json.loads(Path(fh.name).read_text())
    bandwidth = _child("bandwidth", args.size, "torch", 1)["gb_per_s"]
    _print_table(args, engines, rows, answers, bandwidth)


def run_controls(args, engines: list[str]) -> tuple[str, dict]:
    """Each engine's controls in its own process (one folder each, resumable), then the table."""
    items: dict[str, list[dict]] = {}
    writers: set[str] = set()
    for engine in engines:
        folder = args.controls_dir / engine.replace("/", "_").replace(":", "_")
        extra = ["--controls", str(args.controls), "--out", str(folder)]
        if args.max_new_tokens:
            extra += ["--max-new-tokens", str(args.max_new_tokens)]
        result = _child("controls", args.size, engine, 1, extra)
        writers.add(result["writer"])
        path = Path(result["items"])
        items[engine] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    from prefscribe.llm._cpu import hardware_class

    isa = f"ISA forced to {args.isa}" if args.isa else f"CPU class {hardware_class()}"
    table, checks = controls_table(engines, args.baseline, items)
    heading = f"bench_engines --controls, embedded:{args.size}, {isa}, writer {', '.join(sorted(writers))}"
    return f"\n## {heading}\n\n" + table, checks


def _print_table(args, engines: list[str], rows: dict, answers: dict, bandwidth: float) -> None:
    load = os.getloadavg()
    baseline = args.baseline
    base = rows.get(baseline)
    from prefscribe.llm._cpu import hardware_class

    isa = f"ISA forced to {args.isa}" if args.isa else f"CPU class {hardware_class()}"
    print(f"\n## bench_engines, embedded:{args.size}, {isa}, median of {args.runs} runs, {os.cpu_count()} cores, "
          f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}\n")
    print("| measure | " + " | ".join(engines) + " |\n|---|" + "---|" * len(engines))

    def line(label: str, key: str, fmt: str, lower_is_better: bool = True) -> None:
        cells = []
        for e in engines:
            value = rows[e].get(key)
            if value is None:
                cells.append("-")
                continue
            cell = fmt.format(value)
            if base and e != baseline and base.get(key):
                ratio = base[key] / value if lower_is_better else value / base[key]
                cell += f" ({ratio:.2f}x {baseline})"
            cells.append(cell)
        print(f"| {label} | " + " | ".join(cells) + " |")

    line("load, cold (join, verify, convert)", "cold_load_s", "{:.0f} s")
    line("load, warm", "warm_load_s", "{:.1f} s")
    line("prompt tokens/s", "prompt_tps", "{:.0f}", lower_is_better=False)
    line("decode tokens/s", "decode_tps", "{:.1f}", lower_is_better=False)
    tokens = rows[engines[0]].get("profile_tokens", ["?", "?"])
    line(f"one profile ({tokens[0]} prompt + {tokens[1]} new tokens)", "profile_s", "{:.1f} s")
    line(f"{args.users} users one at a time (300-token histories, 64 new)", "sequential_s", "{:.1f} s")
    line(f"{args.users} users batched", "batched_s", "{:.1f} s")
    print("| batched speedup | " + " | ".join(f"{rows[e]['sequential_s'] / rows[e]['batched_s']:.2f}x"
                                             if rows[e].get("batched_s") else "-" for e in engines) + " |")
    line("choice, both orders", "choose_s", "{:.2f} s")
    line("likelihood choice", "likelihood_s", "{:.2f} s")
    line("peak RSS (speed part)", "peak_rss_mib", "{:.0f} MiB")
    if baseline in answers:
        for e in engines:
            if e != baseline and e in answers:
                a = _agreement(answers[baseline], answers[e])
                print(f"| agreement {e} vs {baseline} | two-way P max diff {a['max_p_diff']:.3f} (mean "
                      f"{a['mean_p_diff']:.3f}); same choice {a['same_choice']:.1%} of {a['n']}; likelihood same "
                      f"ranking {a['likelihood_same_rank']:.1%} of {a['likelihood_n']}; greedy profiles parse "
                      f"{a['parsed']} ({baseline} {sum(answers[baseline]['parsed'])}/{len(answers[baseline]['parsed'])}) |")
    params = {"1.5b": 1.54e9, "0.5b": 0.49e9}[args.size]
    print(f"\nMeasured read bandwidth {bandwidth:.1f} GB/s. Decode floor (weights read per token / bandwidth): "
          f"bf16 {params * 2 / bandwidth / 1e9 * 1000:.0f} ms/token ({bandwidth * 1e9 / (params * 2):.1f} tok/s), "
          f"int8 {params / bandwidth / 1e9 * 1000:.0f} ms/token ({bandwidth * 1e9 / params:.1f} tok/s), "
          f"int4 {params / 2 / bandwidth / 1e9 * 1000:.0f} ms/token ({bandwidth * 2e9 / params:.1f} tok/s).")


if __name__ == "__main__":
    main()
