"""HTTP API benchmark: the real server under load from a separate, light process.

Starts ``tandem demo`` (bank and health tenants, embedded SQLite, synchronous=FULL) as a subprocess and
measures

* open loop: N interactions each sending "hello" every 5 s, paced by ``bench.http_load`` (asyncio + httpx in
  a process of its own) whatever the responses; p50/p99 latency from the scheduled send, and achieved rate;
* closed loop: saturation throughput with wrk at 10 and 100 connections, POSTing "hello" round-robin over
  pre-created interactions, beside the anchor ``bench.http_anchor`` (minimal FastAPI + SQLite WAL,
  synchronous=FULL, the same three rows) measured in alternating rounds in the same run.

Writes ``bench/out/http.json`` and the section "## HTTP API" of ``docs/benchmarks.md`` (others left alone).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.document import DOC, current, save, with_section

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
SECTION = "## HTTP API"
COMMAND = ".venv/bin/python -m bench.http"
VENV_BIN = Path(sys.executable).parent
TANDEM = VENV_BIN / "tandem"
INTERVAL = 5.0

LUA = r"""
local targets = {}
local idx = 0
local body = '{"text":"hello"}'
init = function(args)
  for line in io.lines(args[1]) do
    local path, token = line:match("^(%S+) (%S+)$")
    targets[#targets + 1] = {path, "Bearer " .. token}
  end
end
request = function()
  idx = idx % #targets + 1
  local t = targets[idx]
  return wrk.format("POST", t[1], {["Authorization"] = t[2], ["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} not up after {seconds} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pressure() -> dict[str, float]:
    out: dict[str, float] = {}
    for resource in ("cpu", "io"):
        with contextlib.suppress(OSError, ValueError, IndexError, KeyError):
            line = Path(f"/proc/pressure/{resource}").read_text().splitlines()[0]
            out[resource] = float(dict(part.split("=") for part in line.split()[1:])["avg60"])
    return out


def wrk(url: str, script: Path, targets: Path, connections: int, seconds: int) -> dict[str, Any]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url, "--",
           str(targets)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        err = (done.stderr or done.stdout).strip()[-200:]
        return {"connections": connections, "rate": 0.0, "p50_ms": None, "p99_ms": None, "errors": 1, "failed": err}
    r = json.loads(line[len("WRKJSON ") :])
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return {
        "connections": connections,
        "requests": r["requests"],
        "rate": round(r["requests"] / (r["duration_us"] / 1e6), 1),
        "p50_ms": round(r["p50_us"] / 1000, 2),
        "p99_ms": round(r["p99_us"] / 1000, 2),
        "errors": errors,
        "non_2xx": r["status"],
    }


def load(*args: str) -> str:
    cmd = [sys.executable, "-m", "bench.http_load", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT, timeout=120).stdout


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.time()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": COMMAND,
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0], "pressure_avg60_at_start": pressure()},
        "settings": {"open_seconds": args.open_seconds, "wrk_seconds": args.wrk_seconds, "levels": args.levels,
                     "interval_s": INTERVAL, "wrk_targets": args.wrk_targets},
    }  # fmt: skip
    token = "tdm_bench_" + secrets.token_urlsafe(16)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tandem-http-") as tmp:
        tmpdir = Path(tmp)
        port, aport = free_port(), free_port()
        url, aurl = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{aport}"
        env = {**os.environ, "TANDEM_ADMIN_TOKEN": token}
        server = subprocess.Popen(
            [str(TANDEM), "demo", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmpdir / "data")],
            env=env, stdout=subprocess.DEVNULL, stderr=(OUT / "http-server.log").open("wb"),
        )  # fmt: skip
        aenv = {**os.environ, "TANDEM_BENCH_ANCHOR_DB": str(tmpdir / "anchor.sqlite3")}
        anchor = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bench.http_anchor:app", "--host", "127.0.0.1", "--port", str(aport),
             "--log-level", "warning"],
            env=aenv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=(OUT / "http-anchor.log").open("wb"),
        )  # fmt: skip
        try:
            wait_up(f"{url}/healthz", server)
            wait_up(f"{aurl}/docs", anchor)
            n_max = max(max(args.levels), args.wrk_targets)
            made = tmpdir / "targets.json"
            t = time.time()
            load("create", url, token, str(n_max), str(made))
            results["create_s"] = round(time.time() - t, 1)
            print(f"created {n_max} interactions in {results['create_s']} s", flush=True)

            results["open"] = {}
            for n in sorted(args.levels):
                try:
                    r = json.loads(load("open", url, str(made), str(n), str(args.open_seconds), str(INTERVAL)))
                except subprocess.TimeoutExpired:
                    r = {"status": "did not finish", "interactions": n, "offered_rate": n / INTERVAL}
                results["open"][str(n)] = r
                print(f"open loop {n}: {r}", flush=True)

            pairs = json.loads(made.read_text())[: args.wrk_targets]
            tfile, afile = tmpdir / "wrk-targets.txt", tmpdir / "wrk-anchor.txt"
            tfile.write_text("".join(f"/v1/interactions/{i}/messages {tok}\n" for i, tok in pairs))
            afile.write_text("".join(f"/v1/interactions/{i}/messages {tok}\n" for i, tok in pairs))
            script = tmpdir / "post.lua"
            script.write_text(LUA)
            results["closed"] = {}
            for c in args.connections:
                tr = wrk(url, script, tfile, c, args.wrk_seconds)
                ar = wrk(aurl, script, afile, c, args.wrk_seconds)
                tr["share_of_anchor"] = round(tr["rate"] / ar["rate"], 3) if ar["rate"] else None
                results["closed"][str(c)] = {"tandem": tr, "anchor": ar}
                print(f"closed loop {c}: tandem {tr} anchor {ar}", flush=True)
        finally:
            stop(server)
            stop(anchor)
    results["postgres"] = {
        "status": "not run",
        "reason": "`tandem demo` (the only command serving the example worlds) is SQLite-only; "
        "`tandem serve --database postgresql://…` starts without the bank and health tenants",
    }
    core = OUT / "core.json"
    if core.exists():
        with contextlib.suppress(ValueError, KeyError):
            c = json.loads(core.read_text())
            results["core"] = {k: c["sqlite"][k] for k in ("turns_1", "turns_100") if k in c["sqlite"]}
            results["core"]["date"] = c.get("date")
    results["machine"]["pressure_avg60_at_end"] = pressure()
    results["total_s"] = round(time.time() - t0, 1)
    return results


def _ms(x: float | None) -> str:
    return "—" if x is None else f"{x:,.1f} ms"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def section(r: dict[str, Any]) -> str:
    rows: list[str] = []
    core = r.get("core", {})
    for n, o in sorted(r["open"].items(), key=lambda kv: int(kv[0])):
        if "p50_ms" not in o:
            rows.append(
                f"| Open loop, {int(n):,} interactions ({o['offered_rate']:g} msg/s offered) | generator did not finish"
                " within 120 s (server far behind) | p99 ≤ 50 ms | — | **no** |"
            )
            continue
        err = sum(o["errors"].values()) + o["unfinished"]
        met = o["p99_ms"] is not None and o["p99_ms"] <= 50 and err == 0
        rows.append(
            f"| Open loop, {int(n):,} interactions × 1 msg / {o['interval_s']:g} s ({o['offered_rate']:g} msg/s offered) "  # noqa: E501
            f"| p50 {_ms(o['p50_ms'])}, p99 **{_ms(o['p99_ms'])}**; achieved {o['achieved_rate']:g} msg/s"
            f" ({o['ok']:,} of {o['offered']:,} ok, {err} failed) | p99 ≤ 50 ms | — | {_yes(met)} |"
        )
    for c, pair in sorted(r["closed"].items(), key=lambda kv: int(kv[0])):
        t, a = pair["tandem"], pair["anchor"]
        share = t["share_of_anchor"] or 0
        key = "turns_1" if int(c) <= 10 else "turns_100"
        in_proc = core.get(key, {}).get("rate")
        conc = "1" if key == "turns_1" else "100"
        extra = (
            f"; in-process core ({conc} concurrent): {in_proc:,.0f} turns/s → HTTP keeps {t['rate'] / in_proc:.0%}"
            if in_proc
            else ""
        )
        rows.append(
            f"| Closed loop (wrk), {c} connections | {t['rate']:,.0f} req/s (p50 {_ms(t['p50_ms'])}, p99 {_ms(t['p99_ms'])},"  # noqa: E501
            f" {t['errors']} errors) → **{share:.0%}** of anchor{extra} | ≥ 50% of anchor"
            f" | FastAPI + SQLite, same rows: {a['rate']:,.0f} req/s (p50 {_ms(a['p50_ms'])}, p99 {_ms(a['p99_ms'])})"
            f" | {_yes(share >= 0.5 and t['errors'] == 0)} |"
        )
    rows.append("| PostgreSQL (open and closed loop) | not run | — | — | — |")
    p0, p1 = r["machine"]["pressure_avg60_at_start"], r["machine"]["pressure_avg60_at_end"]
    s = r["settings"]
    core_note = (
        f"In-process core figures are read from `bench/out/core.json` (measured {core.get('date')}), not re-measured."
        if core
        else "No `bench/out/core.json`: run `python -m bench.core` for the in-process figures."
    )
    lines = [
        SECTION,
        "",
        f"Measured {r['date'][:10]} with `{COMMAND}` in {r['total_s']:.0f} s, on this machine: {r['machine']['cores']} cores"  # noqa: E501
        f" shared by server and load, Python {r['machine']['python']}, SQLite store of `tandem demo` (synchronous=FULL).",  # noqa: E501
        "",
        "How it measures:",
        "",
        "- The server is the real one, `tandem demo` (bank and health tenants) on a fresh data directory, as a"
        " subprocess; it is started once for the whole run. Interactions are opened beforehand as admin"
        f" (`X-Tandem-Tenant: bank`, customers `sim-N`, untimed: {r['create_s']:g} s for"
        f' {max(max(s["levels"]), s["wrk_targets"]):,}). Every message is the line "hello" from the customer'
        " (`POST /v1/interactions/{id}/messages` with the interaction's `customer_token`), to keep understanding"
        " cost small; after two such lines the bank bot hands over and keeps answering while the customer waits,"
        ' so the turns measured are a mix of "didn\'t catch that", hand-over and waiting replies.',
        f"- Open loop: `bench/http_load.py` in a process of its own (asyncio + httpx, one connection per"
        f" interaction) sends each interaction's line every {s['interval_s']:g} s, phases spread evenly, on schedule"
        f" whatever the responses, for {s['open_seconds']:g} s, then waits for the stragglers (30 s timeout)."
        " Latency runs from the *scheduled* send to the response, so a late generator counts against the server;"
        " achieved rate is the successful responses over the time from the first scheduled send to the last"
        " response. The generator used"
        + ", ".join(
            f" {o['generator_cpu_share']:.0%} of a core at {int(n):,}" for n, o in r["open"].items() if "p50_ms" in o
        )
        + ".",
        f"- Closed loop: `wrk -t1 -cC -d{s['wrk_seconds']}s` with a Lua script POSTing the same JSON body with each"
        f" interaction's `Authorization` header, round-robin over {s['wrk_targets']} pre-created interactions."
        " The anchor `bench/http_anchor.py` is a minimal FastAPI endpoint under uvicorn (also a subprocess) that"
        " appends the same three rows per request (CustomerSaid; then ReplySent and TurnCompleted, two"
        " transactions) to SQLite in WAL mode with synchronous=FULL; Tandem and anchor alternate at each level.",
        f"- {core_note}",
        "- PostgreSQL: not run. `tandem demo` is the only command that serves the example worlds and it is"
        " SQLite-only; `tandem serve --database postgresql://…` starts without the bank and health tenants.",
        f"- Machine pressure (Linux PSI avg60): cpu {p0.get('cpu', 0):.0f}% at the start, {p1.get('cpu', 0):.0f}% at"
        f" the end; io {p0.get('io', 0):.0f}% / {p1.get('io', 0):.0f}%.",
        "",
        "| figure | value | goal | anchor | met? |",
        "|---|---|---|---|---|",
        *rows,
    ]
    if core:
        t1, t100 = core.get("turns_1", {}), core.get("turns_100", {})
        lines.append(
            f"| In-process core, SQLite (for comparison) | 1 concurrent: {t1.get('rate', 0):,.0f} turns/s"
            f" (p99 {_ms(t1.get('p99_ms'))}); 100 concurrent: {t100.get('rate', 0):,.0f} turns/s"
            f" (p99 {_ms(t100.get('p99_ms'))}) | — | `bench/out/core.json` | — |"
        )
    return "\n".join(lines) + "\n"


def write_doc(r: dict[str, Any]) -> None:
    text = with_section(current(), SECTION, section(r))
    row = (
        "| HTTP API: open-loop latency, closed-loop throughput vs a FastAPI + SQLite anchor | `python -m bench.http` |"
    )
    if "`python -m bench.http`" not in text:
        lines = text.split("\n")
        last = max(i for i, x in enumerate(lines) if x.startswith("| ") and "`python -m bench." in x)
        lines.insert(last + 1, row)
        text = "\n".join(lines)
    save(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[50, 250, 1000], help="open-loop interaction counts")
    parser.add_argument("--open-seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--wrk-seconds", type=int, default=8)
    parser.add_argument("--wrk-targets", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="a short trial; does not touch docs/benchmarks.md")
    args = parser.parse_args()
    if args.quick:
        args.levels, args.open_seconds, args.wrk_seconds, args.wrk_targets = [20, 50], 5.0, 2, 50
    results = run(args)
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / ("http-quick.json" if args.quick else "http.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    if args.quick:
        print(section(results))
    else:
        write_doc(results)
        print(f"Wrote {out.relative_to(ROOT)} and the section '{SECTION}' of {DOC.relative_to(ROOT)}.")


if __name__ == "__main__":
    main()
