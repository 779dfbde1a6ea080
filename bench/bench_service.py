"""Ingestion throughput and latency of the profile service: concurrent clients on loopback, then a count.

    python bench/bench_service.py                          # SQLite, and PostgreSQL when $PREFSCRIBE_TEST_POSTGRES_URL is set
    python bench/bench_service.py --db sqlite --clients 50 --seconds 30 --batch 10
    python bench/bench_service.py --db postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/bench_service.py --client httpx,aiohttp --baseline-src ../main-checkout/src

`prefscribe serve --no-worker` runs in a subprocess on 127.0.0.1 (the update worker is off: this measures
ingestion, not the model). --clients asyncio clients post batches of --batch interactions for --seconds,
spread over --users users, each batch with an idempotency key; every tenth batch is sent twice, as a
client retry would. Afterwards the database is counted: every acknowledged interaction must be stored
exactly once ("lost" and "duplicated" must be 0). The run is bounded in time and only talks to loopback.
Every run gets a fresh database (a temporary SQLite file; PostgreSQL: a schema of its own, dropped at the
end).

Clients and server share this machine's cores, so req/s is a floor for a dedicated server, and it depends
on the load generator as much as on the server: the table shows where the CPU went per request (the
server's processes, this bench process, PostgreSQL's processes) and how many cores the rest of the
machine used meanwhile. --client picks the load generator: httpx (the default, as in earlier numbers) or
aiohttp (lighter per request; from the [batch] extra); a comma list runs each. --baseline-src runs a
second server from another source tree (PYTHONPATH pointing there), so one run measures an old server
and this tree's side by side, under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PG_ENV = "PREFSCRIBE_TEST_POSTGRES_URL"
THIS_SRC = Path(__file__).resolve().parents[1] / "src"
CLIENTS = ("httpx", "aiohttp")

# One send: (path, body, idempotency key) -> (status, JSON answer or None, text for error messages).
Send = Callable[[str, list[dict], str], Awaitable[tuple[int, dict | None, str]]]


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


async def _post(send: Send, path: str, body: list[dict], key: str, tally: Tally):
    """One send, re-sent with the same idempotency key after a transport error (as a real client does);
    returns (status, JSON, text), or None after three failed tries."""
    for _ in range(3):
        try:
            return await send(path, body, key)
        except Exception as exc:  # noqa: BLE001 - timeouts, resets: counted and retried
            tally.transport_errors.append(f"{type(exc).__name__}: {exc!r}")
    return None


async def _client(send: Send, index: int, args, deadline: float, tally: Tally) -> None:
    number = 0
    while time.monotonic() < deadline and number < 1_000_000:
        user = f"user{(index * 7919 + number) % args.users}"
        body = _batch(index, number, args.batch)
        key = f"c{index}-{number}"
        sends = 2 if number % 10 == 9 else 1  # every tenth batch is sent again, as after a lost answer
        for attempt in range(sends):
            start = time.perf_counter()
            answer = await _post(send, f"/v1/users/{user}/interactions", body, key, tally)
            if answer is None:
                tally.errors.append(f"gave up on {key}")
                break
            status, data, text = answer
            if attempt == 0:
                tally.latencies.append(time.perf_counter() - start)
            else:
                tally.retries += 1
            tally.statuses[status] += 1
            if status == 201:
                tally.acknowledged[user] += data["accepted"]
            elif status == 200 and data and data.get("duplicate"):
                if attempt == 0:  # an earlier try got through before its connection failed
                    tally.acknowledged[user] += data["accepted"]
            else:
                tally.errors.append(f"{status}: {text[:200]}")
        number += 1


async def _clients(send: Send, args) -> tuple[Tally, float]:
    tally = Tally()
    start = time.monotonic()
    deadline = start + args.seconds
    await asyncio.gather(*(_client(send, i, args, deadline, tally) for i in range(args.clients)))
    return tally, time.monotonic() - start


async def _drive_httpx(base: str, key: str, args) -> tuple[Tally, float]:
    import httpx

    # Idle connections are dropped by the client before uvicorn's 5 s keep-alive closes them under it.
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients,
                          keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60,
                                 limits=limits) as http:
        async def send(path: str, body: list[dict], idempotency_key: str):
            r = await http.post(path, json=body, headers={"Idempotency-Key": idempotency_key})
            return r.status_code, (r.json() if r.status_code in (200, 201) else None), r.text

        return await _clients(send, args)


async def _drive_aiohttp(base: str, key: str, args) -> tuple[Tally, float]:
    try:
        import aiohttp
    except ImportError:
        raise SystemExit("--client aiohttp needs aiohttp: pip install 'prefscribe[batch]' (or aiohttp)") from None

    connector = aiohttp.TCPConnector(limit=args.clients, keepalive_timeout=2.0)  # as httpx's keepalive_expiry
    async with aiohttp.ClientSession(base, connector=connector, headers={"Authorization": f"Bearer {key}"},
                                     timeout=aiohttp.ClientTimeout(total=60)) as http:
        async def send(path: str, body: list[dict], idempotency_key: str):
            async with http.post(path, json=body, headers={"Idempotency-Key": idempotency_key}) as r:
                text = await r.text()
                return r.status, (json.loads(text) if r.status in (200, 201) else None), text

        return await _clients(send, args)


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of the server process and its children (uvicorn workers) so far. Less
    sensitive than req/s to what else runs on the machine: the server's own cost per request."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL process on this machine (pid -> seconds): its backends do the
    database's share of every request when the server is local, as in this bench."""
    import psutil

    seen = {}
    for proc in psutil.process_iter(["name", "cpu_times"]):
        times = proc.info["cpu_times"]
        if proc.info["name"] in ("postgres", "postmaster") and times is not None:
            seen[proc.pid] = times.user + times.system
    return seen


@dataclass
class CpuMeter:
    """Where the machine's CPU went between start() and stop(), in seconds: the server (with its worker
    processes), this bench process (the load generator), PostgreSQL's processes, and everything else."""
    server_pid: int
    marks: dict = field(default_factory=dict)

    def _read(self) -> dict:
        import psutil

        machine = psutil.cpu_times()
        me = psutil.Process().cpu_times()
        return {"server": _cpu_seconds(self.server_pid), "client": me.user + me.system,
                "postgres": _postgres_cpu(), "busy": sum(machine) - machine.idle - getattr(machine, "iowait", 0.0),
                "wall": time.monotonic()}

    def start(self) -> None:
        self.marks = self._read()

    def stop(self) -> dict[str, float]:
        end, begin = self._read(), self.marks
        postgres = sum(cpu - begin["postgres"].get(pid, 0.0) for pid, cpu in end["postgres"].items())
        spent = {"server": end["server"] - begin["server"], "client": end["client"] - begin["client"],
                 "postgres": postgres}
        spent["others"] = max(0.0, end["busy"] - begin["busy"] - sum(spent.values()))
        spent["wall"] = end["wall"] - begin["wall"]
        return spent


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


# Where a sampled frame's file says it belongs: the first match names the package.
_PACKAGES = ("prefscribe", "sqlalchemy", "pydantic", "fastapi", "starlette", "uvicorn", "httptools", "uvloop",
             "anyio", "psycopg", "sqlite3", "json", "asyncio", "threading", "concurrent", "logging", "hashlib")


def _package(frame: str) -> str:
    """The package of a py-spy frame, `function (path/to/file.py:line)`."""
    path = frame.rpartition(" (")[2]
    for name in _PACKAGES:
        if f"/{name}/" in path or f"/{name}." in path or f"/{name}_" in path:
            return name
    return path.rsplit("/", 1)[-1].split(":", 1)[0]


def profile_summary(path: str, top: int = 12) -> str:
    """The server's samples by the package of the innermost Python frame (where the CPU was spent), from
    py-spy's collapsed stacks (`frame;frame;... count` per line)."""
    spent: Counter = Counter()
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f for f in stack.split(";") if " (" in f]  # py-spy's process and thread headers have no file
        if frames and count.isdigit():
            spent[_package(frames[-1])] += int(count)
    total = sum(spent.values()) or 1
    return ", ".join(f"{name} {100 * n / total:.0f}%" for name, n in spent.most_common(top))


@dataclass(frozen=True)
class Server:
    """A server to measure: `prefscribe serve` imported from the source tree `src`."""
    label: str
    src: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(self.src)}

    def check(self) -> str:
        """Where the server's prefscribe really comes from (an installed copy would shadow nothing, since
        PYTHONPATH comes first, but say it rather than assume it)."""
        found = subprocess.run([sys.executable, "-c", "import prefscribe; print(prefscribe.__file__)"],
                               env=self.env(), capture_output=True, text=True, check=True).stdout.strip()
        if not Path(found).resolve().is_relative_to(self.src.resolve()):
            raise SystemExit(f"{self.label}: prefscribe imports from {found}, not from {self.src}")
        return found


def run_one(server: Server, label: str, url: str, client: str, args) -> dict:
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
    if args.profile:
        # Sample the server with py-spy: collapsed stacks, one line per stack with its count. Only threads
        # holding the GIL: where the server's Python spends CPU, not where its threads wait.
        os.makedirs(args.profile, exist_ok=True)
        profile = os.path.join(args.profile, f"{server.label.replace(' ', '-')}-{label}-{client}.txt")
        command = ["py-spy", "record", "--format", "raw", "--full-filenames", "--gil", "--rate", "100",
                   "--subprocesses", "--output", profile, "--", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=server.env(),
                               stderr=subprocess.DEVNULL if args.profile else subprocess.PIPE)
    drive = _drive_aiohttp if client == "aiohttp" else _drive_httpx
    try:
        import httpx

        for _ in range(300):  # up to 60 s to start
            if process.poll() is not None:
                detail = process.stderr.read().decode()[-2000:] if process.stderr else ""
                raise SystemExit(f"the server exited: {detail}")
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        meter = CpuMeter(process.pid)
        meter.start()
        tally, elapsed = asyncio.run(drive(base, key, args))
        cpu = meter.stop()
    finally:
        process.send_signal(signal.SIGINT if args.profile else signal.SIGTERM)  # py-spy writes on SIGINT
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
    if args.profile:
        print(f"{server.label} {label} {client}: server samples by package: {profile_summary(profile)}",
              file=sys.stderr)
    counters, rows = _count(url, tenant_id)
    users = set(tally.acknowledged) | set(rows)
    lost = sum(max(0, tally.acknowledged[u] - rows.get(u, 0)) for u in users)
    duplicated = sum(max(0, rows.get(u, 0) - tally.acknowledged[u]) for u in users)
    gaps = sum(1 for u in users if counters.get(u, 0) != rows.get(u, 0))
    lat = sorted(tally.latencies) or [float("nan")]
    stored = sum(rows.values())
    requests = max(1, sum(tally.statuses.values()))
    return {"server": server.label, "db": label, "client": client, "clients": args.clients, "seconds": elapsed,
            "requests": sum(tally.statuses.values()), "retries": tally.retries, "stored": stored,
            "req_s": sum(tally.statuses.values()) / elapsed, "items_s": stored / elapsed,
            "p50": 1000 * lat[len(lat) // 2], "p99": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            "mean": 1000 * statistics.fmean(lat), "errors": len(tally.errors), "lost": lost,
            "cpu_ms": 1000 * cpu["server"] / requests, "client_ms": 1000 * cpu["client"] / requests,
            "pg_ms": 1000 * cpu["postgres"] / requests if label == "postgresql" else float("nan"),
            "others": cpu["others"] / cpu["wall"], "transport": len(tally.transport_errors),
            "duplicated": duplicated, "seq_mismatch": gaps,
            "first_error": (tally.errors + tally.transport_errors + [""])[0]}


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


@contextmanager
def _database(choice: str) -> Iterator[tuple[str, str]]:
    """A fresh, empty database for one run: (label, URL)."""
    if choice == "sqlite":
        tmp = tempfile.mkdtemp(prefix="prefscribe-bench-")
        try:
            yield "sqlite", f"sqlite:///{tmp}/bench.db"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    elif choice == "postgres":
        url, drop = _pg_schema(os.environ[PG_ENV])
        try:
            yield "postgresql", url
        finally:
            drop()
    else:  # a URL given as is: runs share it, each with a tenant of its own
        yield choice.split(":", 1)[0], choice


def _print_table(results: list[dict]) -> None:
    header = (f"{'server':<10} {'db':<10} {'client':<7} {'secs':>4} {'requests':>8} {'retries':>7} {'req/s':>6} "
              f"{'inter/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'resent':>6} {'failed':>6} {'lost':>4} {'dup':>4} "
              f"{'srv ms/req':>10} {'cli ms/req':>10} {'pg ms/req':>9} {'others':>6}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['server']:<10} {r['db']:<10} {r['client']:<7} {r['seconds']:>4.0f} {r['requests']:>8} "
              f"{r['retries']:>7} {r['req_s']:>6.0f} {r['items_s']:>7.0f} {r['p50']:>7.1f} {r['p99']:>7.1f} "
              f"{r['transport']:>6} {r['errors']:>6} {r['lost']:>4} {r['duplicated']:>4} {r['cpu_ms']:>10.2f} "
              f"{r['client_ms']:>10.2f} {r['pg_ms']:>9.2f} {r['others']:>6.2f}")
    for r in results:
        if r["first_error"]:
            print(f"{r['server']} {r['db']} {r['client']}: first error: {r['first_error']}")
    print("retries: batches sent twice on purpose (answered as duplicates); resent: sends repeated after a "
          "transport error; failed: batches given up; lost/dup: acknowledged vs stored interactions. CPU per "
          "request: srv = the server's processes (with --profile: py-spy's included), cli = this bench process "
          "(the load generator), pg = PostgreSQL's processes; others: cores used by everything else meanwhile")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres",
                        help=f"comma list of sqlite, postgres (uses ${PG_ENV}) or database URLs")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=10, help="interactions per request")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1, help="server processes (prefscribe serve --workers)")
    parser.add_argument("--client", default="httpx", help=f"comma list of load generators: {', '.join(CLIENTS)}")
    parser.add_argument("--baseline-src", type=Path, metavar="SRC",
                        help="also measure the server of another source tree (its src/ folder), before this one")
    parser.add_argument("--profile", metavar="DIR", help="run the server under py-spy (pip install py-spy) and "
                        "write the samples of threads holding the GIL (collapsed stacks) to "
                        "DIR/<server>-<db>-<client>.txt")
    args = parser.parse_args()
    try:
        import psutil  # noqa: F401 - the CPU columns
    except ImportError:
        raise SystemExit("the bench measures CPU with psutil: pip install psutil") from None
    if not 0 < args.seconds <= 600 or not 0 < args.clients <= 500:
        raise SystemExit("keep it bounded: --seconds in (0, 600], --clients in (0, 500]")
    clients = [c.strip() for c in args.client.split(",") if c.strip()]
    if not clients or set(clients) - set(CLIENTS):
        raise SystemExit(f"--client: a comma list of {', '.join(CLIENTS)}")
    servers = [Server("baseline", args.baseline_src)] if args.baseline_src else []
    servers.append(Server("this tree", THIS_SRC))
    for server in servers:
        print(f"server {server.label!r}: prefscribe from {server.check()}", file=sys.stderr)
    choices = [c.strip() for c in args.db.split(",") if c.strip()]
    if "postgres" in choices and not os.environ.get(PG_ENV):
        print(f"(postgres skipped: set {PG_ENV})", file=sys.stderr)
        choices.remove("postgres")

    results = []
    for choice in choices:
        for client in clients:
            for server in servers:  # side by side: each client's baseline and new run back to back
                with _database(choice) as (label, url):
                    print(f"running {server.label} on {label} with {client}: {args.clients} clients x "
                          f"{args.seconds:.0f} s, {args.batch} interactions per request ...", file=sys.stderr)
                    results.append(run_one(server, label, url, client, args))
    _print_table(results)
    if any(r["lost"] or r["duplicated"] or r["seq_mismatch"] for r in results):
        raise SystemExit("FAILED: acknowledged interactions and stored rows differ")


if __name__ == "__main__":
    main()
