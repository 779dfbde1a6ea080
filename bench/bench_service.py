"""Ingestion throughput and latency of the profile service: concurrent clients on loopback, then a count.

    python bench/bench_service.py                          # SQLite, and PostgreSQL when $PREFSCRIBE_TEST_POSTGRES_URL is set
    python bench/bench_service.py --db sqlite --clients 50 --seconds 30 --batch 10
    python bench/bench_service.py --db postgresql+psycopg://postgres@127.0.0.1:5432/test

`prefscribe serve --no-worker` runs in a subprocess on 127.0.0.1 (the update worker is off: this measures
ingestion, not the model). --clients asyncio clients post batches of --batch interactions for --seconds,
spread over --users users, each batch with an idempotency key; every tenth batch is sent twice, as a
client retry would. Afterwards the database is counted: every acknowledged interaction must be stored
exactly once ("lost" and "duplicated" must be 0). The run is bounded in time and only talks to loopback.
PostgreSQL runs in a schema of its own, dropped at the end. Clients and server share this machine's
cores, so the numbers are a floor for a dedicated server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

PG_ENV = "PREFSCRIBE_TEST_POSTGRES_URL"


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)   # seconds, first sends only
    statuses: Counter = field(default_factory=Counter)
    acknowledged: Counter = field(default_factory=Counter)  # user -> interactions acknowledged as new
    retries: int = 0
    errors: list[str] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _batch(client: int, number: int, size: int) -> list[dict]:
    return [{"context": f"query {client}-{number}-{i}", "chosen": f"item chosen by c{client} #{number}.{i}",
             "rejected": f"item passed over #{number}.{i}", "domain": "bench"} for i in range(size)]


async def _post(http, path: str, body: list[dict], key: str, tally: Tally):
    """One send, re-sent with the same idempotency key after a transport error (as a real client does);
    returns the response, or None after three failed tries."""
    for _ in range(3):
        try:
            return await http.post(path, json=body, headers={"Idempotency-Key": key})
        except Exception as exc:  # noqa: BLE001 - timeouts, resets: counted and retried
            tally.transport_errors.append(f"{type(exc).__name__}: {exc!r}")
    return None


async def _client(http, index: int, args, deadline: float, tally: Tally) -> None:
    number = 0
    while time.monotonic() < deadline and number < 1_000_000:
        user = f"user{(index * 7919 + number) % args.users}"
        body = _batch(index, number, args.batch)
        key = f"c{index}-{number}"
        sends = 2 if number % 10 == 9 else 1  # every tenth batch is sent again, as after a lost answer
        for attempt in range(sends):
            start = time.perf_counter()
            r = await _post(http, f"/v1/users/{user}/interactions", body, key, tally)
            if r is None:
                tally.errors.append(f"gave up on {key}")
                break
            if attempt == 0:
                tally.latencies.append(time.perf_counter() - start)
            else:
                tally.retries += 1
            tally.statuses[r.status_code] += 1
            if r.status_code == 201:
                tally.acknowledged[user] += r.json()["accepted"]
            elif r.status_code == 200 and r.json().get("duplicate"):
                if attempt == 0:  # an earlier try got through before its connection failed
                    tally.acknowledged[user] += r.json()["accepted"]
            else:
                tally.errors.append(f"{r.status_code}: {r.text[:200]}")
        number += 1


async def _drive(base: str, key: str, args) -> tuple[Tally, float]:
    import httpx

    tally = Tally()
    # Idle connections are dropped by the client before uvicorn's 5 s keep-alive closes them under it.
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients,
                          keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60,
                                 limits=limits) as http:
        start = time.monotonic()
        deadline = start + args.seconds
        await asyncio.gather(*(_client(http, i, args, deadline, tally) for i in range(args.clients)))
        return tally, time.monotonic() - start


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of the server process and its children (uvicorn workers) so far. Less
    sensitive than req/s to what else runs on the machine: the server's own cost per request."""
    try:
        import psutil
    except ImportError:
        return float("nan")
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def _count(url: str, tenant_id: int) -> tuple[dict[str, int], dict[str, int]]:
    """Per user: the seq counter and the rows actually stored."""
    from sqlalchemy import create_engine, func, select

    from prefscribe.store import normalize_url
    from prefscribe.store._models import InteractionRow, User

    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            counters = dict(conn.execute(select(User.external_id, User.interaction_count)
                                         .where(User.tenant_id == tenant_id)).all())
            rows = dict(conn.execute(select(User.external_id, func.count(InteractionRow.id))
                                     .join(InteractionRow, InteractionRow.user_id == User.id)
                                     .where(User.tenant_id == tenant_id).group_by(User.external_id)).all())
            return counters, rows
    finally:
        engine.dispose()


def run_one(label: str, url: str, args) -> dict:
    from prefscribe.store import Store

    store = Store(url)
    key, _ = store.create_key(f"bench-{uuid.uuid4().hex[:6]}")
    tenant_id = store.authenticate(key).id
    store.close()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-c", "from prefscribe.cli import main; main()", "serve", "--db", url,
               "--no-worker", "--port", str(port), "--log-level", "warning"]
    if args.workers > 1:
        command += ["--workers", str(args.workers)]
    if args.profile:  # sample the server with py-spy: collapsed stacks, one line per stack with its count
        os.makedirs(args.profile, exist_ok=True)
        command = ["py-spy", "record", "--format", "raw", "--rate", "100", "--subprocesses", "--output",
                   os.path.join(args.profile, f"{label}.txt"), "--", *command]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL if args.profile else subprocess.PIPE)
    try:
        import httpx

        for _ in range(300):  # up to 60 s to start
            if server.poll() is not None:
                detail = server.stderr.read().decode()[-2000:] if server.stderr else ""
                raise SystemExit(f"the server exited: {detail}")
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        before_cpu = _cpu_seconds(server.pid)
        tally, elapsed = asyncio.run(_drive(base, key, args))
        server_cpu = _cpu_seconds(server.pid) - before_cpu
    finally:
        server.send_signal(signal.SIGINT if args.profile else signal.SIGTERM)  # py-spy writes on SIGINT
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
    counters, rows = _count(url, tenant_id)
    users = set(tally.acknowledged) | set(rows)
    lost = sum(max(0, tally.acknowledged[u] - rows.get(u, 0)) for u in users)
    duplicated = sum(max(0, rows.get(u, 0) - tally.acknowledged[u]) for u in users)
    gaps = sum(1 for u in users if counters.get(u, 0) != rows.get(u, 0))
    lat = sorted(tally.latencies) or [float("nan")]
    stored = sum(rows.values())
    return {"db": label, "clients": args.clients, "seconds": elapsed, "requests": sum(tally.statuses.values()),
            "retries": tally.retries, "stored": stored, "req_s": sum(tally.statuses.values()) / elapsed,
            "items_s": stored / elapsed, "p50": 1000 * lat[len(lat) // 2],
            "p99": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            "mean": 1000 * statistics.fmean(lat), "errors": len(tally.errors), "lost": lost,
            "cpu_ms": 1000 * server_cpu / max(1, sum(tally.statuses.values())),
            "transport": len(tally.transport_errors),
            "duplicated": duplicated, "seq_mismatch": gaps, "first_error": (tally.errors + tally.transport_errors + [""])[0]}


def _pg_schema(base: str):
    from sqlalchemy import create_engine, text

    from prefscribe.store import normalize_url

    base = normalize_url(base)
    schema = f"prefscribe_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()

    return base + ("&" if "?" in base else "?") + f"options=-csearch_path%3D{schema}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres",
                        help=f"comma list of sqlite, postgres (uses ${PG_ENV}) or database URLs")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=10, help="interactions per request")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1, help="server processes (prefscribe serve --workers)")
    parser.add_argument("--profile", metavar="DIR", help="run the server under py-spy and write its samples "
                        "(collapsed stacks) to DIR/<db>.txt")
    args = parser.parse_args()
    if not 0 < args.seconds <= 600 or not 0 < args.clients <= 500:
        raise SystemExit("keep it bounded: --seconds in (0, 600], --clients in (0, 500]")

    results = []
    for choice in [c.strip() for c in args.db.split(",") if c.strip()]:
        tmp = None
        drop = None
        if choice == "sqlite":
            tmp = tempfile.mkdtemp(prefix="prefscribe-bench-")
            url, label = f"sqlite:///{tmp}/bench.db", "sqlite"
        elif choice == "postgres":
            if not os.environ.get(PG_ENV):
                print(f"(postgres skipped: set {PG_ENV})", file=sys.stderr)
                continue
            url, drop = _pg_schema(os.environ[PG_ENV])
            label = "postgresql"
        else:
            url, label = choice, choice.split(":", 1)[0]
        print(f"running {label}: {args.clients} clients x {args.seconds:.0f} s, {args.batch} interactions per "
              "request ...", file=sys.stderr)
        try:
            results.append(run_one(label, url, args))
        finally:
            if drop:
                drop()
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)

    header = (f"{'db':<11} {'clients':>7} {'secs':>5} {'requests':>9} {'retries':>7} {'req/s':>7} "
              f"{'interactions':>12} {'inter/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'resent':>6} {'failed':>6} {'lost':>5} "
              f"{'dup':>4} {'srv cpu ms/req':>14}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['db']:<11} {r['clients']:>7} {r['seconds']:>5.0f} {r['requests']:>9} {r['retries']:>7} "
              f"{r['req_s']:>7.0f} {r['stored']:>12} {r['items_s']:>8.0f} {r['p50']:>7.1f} {r['p99']:>7.1f} "
              f"{r['transport']:>6} {r['errors']:>6} {r['lost']:>5} {r['duplicated']:>4} {r['cpu_ms']:>14.2f}")
    for r in results:
        if r["first_error"]:
            print(f"{r['db']}: first error: {r['first_error']}")
    print("retries: batches sent twice on purpose (answered as duplicates); resent: sends repeated after a "
          "transport error; failed: batches given up; lost/dup: acknowledged vs stored interactions; srv cpu "
          "ms/req: the server's CPU time per request (with --profile: py-spy's included)")
    if any(r["lost"] or r["duplicated"] or r["seq_mismatch"] for r in results):
        raise SystemExit("FAILED: acknowledged interactions and stored rows differ")


if __name__ == "__main__":
    main()
