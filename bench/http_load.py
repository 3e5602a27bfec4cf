"""The load generator of ``bench.http``, run as a process of its own (asyncio + httpx, one thread).

``create URL TOKEN N OUT``: open N chat interactions as admin (tenant bank), customers ``sim-0``…, untimed;
writes ``[[id, customer_token], ...]`` to OUT.
``open URL TARGETS N SECONDS INTERVAL``: open loop. Each of the first N interactions of TARGETS sends "hello"
every INTERVAL seconds (phases spread evenly), on schedule whatever the responses; sends scheduled during
SECONDS, then waits for the stragglers. Latency runs from the scheduled send to the response, so the
generator's own lag counts against the server. Prints a JSON summary.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

import httpx

TIMEOUT = 30.0


async def create(url: str, token: str, n: int, out: str) -> None:
    headers = {"Authorization": f"Bearer {token}", "X-Tandem-Tenant": "bank"}
    made: list[list[str] | None] = [None] * n
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=TIMEOUT) as client:
        queue = list(range(n))

        async def worker() -> None:
            while queue:
                i = queue.pop()
                r = await client.post("/v1/interactions", json={"channel": "chat", "customer": {"id": f"sim-{i}"}})
                r.raise_for_status()
                body = r.json()
                made[i] = [body["id"], body["customer_token"]]

        await asyncio.gather(*(worker() for _ in range(8)))
    with open(out, "w") as f:  # noqa: ASYNC230
        json.dump(made, f)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 2)


async def open_loop(url: str, targets_file: str, n: int, seconds: float, interval: float) -> dict[str, Any]:
    with open(targets_file) as f:  # noqa: ASYNC230
        targets = json.load(f)[:n]
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    latencies: list[float] = []
    lags: list[float] = []
    errors: dict[str, int] = {}
    last_done = 0.0
    pending: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT, limits=limits) as client:

        async def send(path: str, headers: dict[str, str], due: float) -> None:
            nonlocal last_done
            lags.append((time.perf_counter() - due) * 1000)
            try:
                r = await client.post(path, json={"text": "hello"}, headers=headers)
                if r.status_code != 200:
                    errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1
                    return
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            now = time.perf_counter()
            latencies.append((now - due) * 1000)
            last_done = max(last_done, now)

        start = time.perf_counter() + 0.5
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        schedule = sorted(
            (start + i * interval / n + k * interval, i)
            for i in range(n)
            for k in range(int(seconds / interval) + 1)
            if i * interval / n + k * interval < seconds
        )
        for due, i in schedule:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            iid, token = targets[i]
            headers = {"Authorization": f"Bearer {token}"}
            task = asyncio.create_task(send(f"/v1/interactions/{iid}/messages", headers, due))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending, timeout=TIMEOUT + 5)
        unfinished = len(pending)
        for task in list(pending):
            task.cancel()
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    span = (last_done - start) if last_done else seconds
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return {
        "interactions": n,
        "interval_s": interval,
        "seconds": seconds,
        "offered": len(schedule),
        "offered_rate": round(len(schedule) / seconds, 1),
        "ok": len(latencies),
        "achieved_rate": round(len(latencies) / span, 1) if span > 0 else None,
        "span_s": round(span, 2),
        "errors": errors,
        "unfinished": unfinished,
        "p50_ms": _pct(latencies, 0.50),
        "p90_ms": _pct(latencies, 0.90),
        "p99_ms": _pct(latencies, 0.99),
        "max_ms": round(max(latencies), 2) if latencies else None,
        "send_lag_p99_ms": _pct(lags, 0.99),
        "generator_cpu_share": round(cpu / span, 3) if span > 0 else None,
    }


def main() -> None:
    cmd, *args = sys.argv[1:]
    if cmd == "create":
        asyncio.run(create(args[0], args[1], int(args[2]), args[3]))
    elif cmd == "open":
        result = asyncio.run(open_loop(args[0], args[1], int(args[2]), float(args[3]), float(args[4])))
        print(json.dumps(result))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
