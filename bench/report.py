"""The results as rich tables (the terminal) and as JSON (the file)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.common import LATENCY_TARGETS, THROUGHPUT_CASES

STATEFUL_ROWS = ("limit", "go-processor", "python", "streams")
STATEFUL_LABELS = {"limit": "limit (upper-case)", "go-processor": "go-processor (reference world)",
                   "python": "python (type: python)", "streams": "streams (Processor API, RocksDB)"}


def _num(v: Any, fmt: str = "{:,.0f}") -> str:
    if v is None:
        return "-"
    try:
        return fmt.format(v)
    except (TypeError, ValueError):
        return str(v)


def _status(entry: dict[str, Any]) -> str:
    st = entry.get("status", "?")
    color = {"ok": "green", "skipped": "yellow"}.get(st, "red")
    return f"[{color}]{st}[/{color}]"


def _note(entry: dict[str, Any], width: int = 70, records_option: str = "--records") -> str:
    err = entry.get("error")
    if not err:
        if entry.get("records_before_start"):
            return f"{entry['records_before_start']:,} ran before timing began: use more {records_option}"[:width]
        return ""
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return first[:width]


def render(results: dict[str, Any], console: Console | None = None) -> None:
    if console is None:
        console = Console() if sys.stdout.isatty() else Console(width=160)
    cases = results["cases"]
    m = results["machine"]
    ds = results.get("data_set") or {}
    console.print(f"[bold]fs-bus bench[/bold] {results['started_at']}  {m['cpu_model']}, {m['cores']} cores, "
                  f"Python {m['python']}, confluent-kafka {m['confluent_kafka']} / librdkafka {m['librdkafka']}, "
                  f"wasmtime {m['wasmtime']}, Kafka {m['kafka']}{', Java ' + m['java'] if m.get('java') else ''}, "
                  f"commit {str(m['git'].get('commit'))[:10]}"
                  f"{' (dirty)' if m['git'].get('dirty') else ''}")
    if m.get("wasm_host"):
        console.print(f"WebAssembly host: {m['wasm_host']}")
    if ds:
        console.print(f"data set: {ds['records']:,} records x {ds['size']} B on {ds['partitions']} partition(s) "
                      f"(produced at {ds.get('produce_records_per_s', 0):,.0f} records/s)")

    t = Table(title="throughput (same data set, input topic -> own output topic, upper-case each value)")
    for col, just in (("case", "left"), ("status", "left"), ("records", "right"), ("seconds", "right"),
                      ("records/s", "right"), ("MB/s", "right"), ("x limit", "right"), ("note", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for case in THROUGHPUT_CASES:
        e = cases.get(case)
        if e is None:
            continue
        t.add_row(case, _status(e), _num(e.get("records")), _num(e.get("seconds"), "{:,.2f}"),
                  _num(e.get("records_per_s")), _num(e.get("mb_per_s"), "{:,.2f}"),
                  _num(e.get("ratio_to_limit"), "{:.3f}"), _note(e))
    if t.row_count:
        console.print(t)

    st = cases.get("stateful")
    if st is not None:
        sds = st.get("data_set") or {}
        t = Table(title="stateful (word counter, kv get + put per word"
                        + (f"; {sds['records']:,} sentences of {sds['words_per_sentence']} words, "
                           f"{sds['partitions']} partition(s)" if sds else "") + ")")
        for col, just in (("row", "left"), ("status", "left"), ("records", "right"), ("seconds", "right"),
                          ("records/s", "right"), ("x limit", "right"), ("output", "left"), ("note", "left")):
            t.add_column(col, justify=just)  # type: ignore[arg-type]
        for row in STATEFUL_ROWS:
            e = (st.get("rows") or {}).get(row)
            if e is None:
                continue
            t.add_row(STATEFUL_LABELS[row], _status(e), _num(e.get("records")), _num(e.get("seconds"), "{:,.2f}"),
                      _num(e.get("records_per_s")), _num(e.get("ratio_to_limit"), "{:.3f}"), _check(e),
                      _note(e, records_option="--stateful-records"))
        if not st.get("rows"):
            t.add_row("stateful", _status(st), *["-"] * 5, _note(st))
        console.print(t)

    lat = cases.get("latency")
    if lat is not None:
        t = Table(title=f"latency (end to end, produce -> output received; {results['params']['latency_seconds']:g} s "
                        "at a fixed offered rate)")
        for col, just in (("case", "left"), ("status", "left"), ("offered/s", "right"), ("achieved/s", "right"),
                          ("received/sent", "right"), ("p50 ms", "right"), ("p99 ms", "right"),
                          ("max ms", "right"), ("note", "left")):
            t.add_column(col, justify=just)  # type: ignore[arg-type]
        targets = lat.get("targets", {})
        for target in LATENCY_TARGETS:
            e = targets.get(target)
            if e is None:
                continue
            t.add_row(target, _status(e), _num(e.get("offered_rate")), _num(e.get("achieved_produce_rate")),
                      f"{_num(e.get('received'))}/{_num(e.get('sent'))}" if "sent" in e else "-",
                      _num(e.get("p50_ms"), "{:,.1f}"), _num(e.get("p99_ms"), "{:,.1f}"),
                      _num(e.get("max_ms"), "{:,.1f}"), _note(e))
        if not targets:
            t.add_row("latency", _status(lat), *["-"] * 6, _note(lat))
        console.print(t)

    bd = cases.get("boundary")
    if bd is not None:
        t = Table(title="the guest boundary, in process (bench/guests/kvloop; best of 5 rounds)")
        for col, just in (("host", "left"), ("status", "left"), ("record + emit + kv get+put, us", "right"),
                          ("one kv call, us", "right"), ("note", "left")):
            t.add_column(col, justify=just)  # type: ignore[arg-type]
        for host, e in bd.get("hosts", {}).items():
            t.add_row(host, _status(e), _num(e.get("record_us"), "{:,.2f}"), _num(e.get("kv_call_us"), "{:,.3f}"),
                      _note(e))
        if not bd.get("hosts"):
            t.add_row("boundary", _status(bd), "-", "-", _note(bd))
        console.print(t)

    cp = cases.get("control-plane")
    if cp is not None:
        t = Table(title="control plane")
        t.add_column("measure")
        t.add_column("value", justify="right")
        t.add_column("note")
        if cp.get("status") != "ok" and cp.get("error"):
            t.add_row("control-plane", _status(cp), _note(cp))
        c = cp.get("create_to_running")
        if c:
            t.add_row(f"CREATE -> RUNNING ({c['n']} functions, kept running)",
                      f"p50 {c['p50_ms']:,.0f} ms / p99 {c['p99_ms']:,.0f} ms",
                      f"first {c['first_ms']:,.0f} ms, last {c['last_ms']:,.0f} ms")
        d = cp.get("drop_to_dropped")
        if d:
            t.add_row(f"DROP -> dropped ({d['n']} functions)", f"p50 {d['p50_ms']:,.0f} ms / p99 {d['p99_ms']:,.0f} ms",
                      "")
        r, ss = cp.get("replace_to_running"), cp.get("stop_start")
        if r and ss:
            t.add_row(f"REPLACE -> RUNNING ({r['n']} replaces, state and offsets kept)",
                      f"p50 {r['p50_ms']:,.0f} ms", f"{cp['replace_over_stop_start']:.2f} x a STOP + START "
                      f"(p50 {ss['p50_ms']:,.0f} ms)")
        a = cp.get("artifact")
        if a:
            t.add_row(f"artifact upload ({a['mb']} MB, {a['chunks']} chunks)", f"{a['upload_mb_per_s']:,.1f} MB/s",
                      f"median of {a['repeats']}")
            t.add_row(f"artifact download ({a['mb']} MB)", f"{a['download_mb_per_s']:,.1f} MB/s",
                      f"median of {a['repeats']}")
        cs = cp.get("cold_start")
        if isinstance(cs, dict) and cs.get("status") == "skipped":
            t.add_row("cold start", "[yellow]skipped[/yellow]", cs.get("error", ""))
        elif cs:
            for label, r in cs.items():
                t.add_row(f"load {label}, {r['mb']} MB: empty cache (compile)", f"{r['cold_ms']:,.0f} ms", "")
                t.add_row(f"load {label}: warm cache (deserialize)", f"{r['warm_ms']:,.0f} ms",
                          f"{r['speedup']:g}x faster")
        for part, err in (cp.get("errors") or {}).items():
            t.add_row(part, "[red]failed[/red]", str(err).splitlines()[0][:70])
        console.print(t)


def _check(entry: dict[str, Any]) -> str:
    """Whether a counter's outputs matched the reference replay (so its final counts did)."""
    c = entry.get("output_check")
    if c is None:
        return "-"
    return "same counts" if c.get("matches_reference") else f"DIFFERENT ({c.get('missing')} missing)"


def _cell(v: Any, fmt: str = "{:,.0f}") -> str:
    return _num(v, fmt)


def to_markdown(results: dict[str, Any]) -> str:
    """The same figures as Markdown tables (for bench/README.md)."""
    cases = results["cases"]
    m = results["machine"]
    lines = [f"Run {results['started_at']}: `{' '.join(results['command'])}`", "",
             f"Machine: {m['cpu_model']}, {m['cores']} cores, {m.get('memory_gib')} GiB, {m['os']}; Python "
             f"{m['python']}, confluent-kafka {m['confluent_kafka']} (librdkafka {m['librdkafka']}), wasmtime "
             f"{m['wasmtime']}, Kafka {m['kafka']}{' (Java ' + m['java'] + ')' if m.get('java') else ''}; fs-bus commit "
             f"`{str(m['git'].get('commit'))[:10]}`"
             f"{' (dirty)' if m['git'].get('dirty') else ''}."
             + (f" WebAssembly host: {m['wasm_host']}." if m.get("wasm_host") else ""), ""]
    ds = results.get("data_set")
    if ds:
        lines += [f"Data set: {ds['records']:,} records x {ds['size']} B on {ds['partitions']} partitions.", ""]
    rows = [(c, cases[c]) for c in THROUGHPUT_CASES if c in cases]
    if rows:
        lines += ["| case | status | records/s | MB/s | x limit |", "|---|---|---:|---:|---:|"]
        for c, e in rows:
            status = e["status"] + (f" ({_note(e, 60)})" if e.get("error") else "")
            lines.append(f"| {c} | {status} | {_cell(e.get('records_per_s'))} | {_cell(e.get('mb_per_s'), '{:,.2f}')} "
                         f"| {_cell(e.get('ratio_to_limit'), '{:.3f}')} |")
        lines.append("")
    st = cases.get("stateful")
    if st is not None:
        sds = st.get("data_set") or {}
        if sds:
            lines += [f"Stateful: {sds['records']:,} sentences of {sds['words_per_sentence']} words (mean "
                      f"{sds['mean_size']} B) on {sds['partitions']} partition(s).", ""]
        lines += ["| stateful | status | records/s | x limit | outputs |", "|---|---|---:|---:|---|"]
        for row in STATEFUL_ROWS:
            e = (st.get("rows") or {}).get(row)
            if e is None:
                continue
            status = e["status"] + (f" ({_note(e, 60)})" if e.get("error") else "")
            lines.append(f"| {STATEFUL_LABELS[row]} | {status} | {_cell(e.get('records_per_s'))} "
                         f"| {_cell(e.get('ratio_to_limit'), '{:.3f}')} | {_check(e)} |")
        lines.append("")
    lat = cases.get("latency")
    if lat is not None:
        lines += ["| latency | status | offered/s | achieved/s | p50 ms | p99 ms | max ms |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for t in LATENCY_TARGETS:
            e = lat.get("targets", {}).get(t)
            if e is None:
                continue
            status = e["status"] + (f" ({_note(e, 60)})" if e.get("error") else "")
            lines.append(f"| {t} | {status} | {_cell(e.get('offered_rate'))} | {_cell(e.get('achieved_produce_rate'))} "
                         f"| {_cell(e.get('p50_ms'), '{:,.1f}')} | {_cell(e.get('p99_ms'), '{:,.1f}')} "
                         f"| {_cell(e.get('max_ms'), '{:,.1f}')} |")
        lines.append("")
    bd = cases.get("boundary")
    if bd is not None:
        lines += ["| guest boundary, in process | record + emit + kv get+put, us | one kv call, us |", "|---|---:|---:|"]
        for host, e in bd.get("hosts", {}).items():
            lines.append(f"| {host} | {_cell(e.get('record_us'), '{:,.2f}')} | {_cell(e.get('kv_call_us'), '{:,.3f}')} |")
        lines.append("")
    cp = cases.get("control-plane")
    if cp is not None:
        lines += ["| control plane | value |", "|---|---:|"]
        c = cp.get("create_to_running")
        if c:
            lines.append(f"| CREATE -> RUNNING, {c['n']} functions (p50 / p99) | {c['p50_ms']:,.0f} / "
                         f"{c['p99_ms']:,.0f} ms |")
        d = cp.get("drop_to_dropped")
        if d:
            lines.append(f"| DROP -> dropped, {d['n']} functions (p50 / p99) | {d['p50_ms']:,.0f} / "
                         f"{d['p99_ms']:,.0f} ms |")
        r, ss = cp.get("replace_to_running"), cp.get("stop_start")
        if r and ss:
            lines.append(f"| REPLACE -> RUNNING, {r['n']} replaces (p50; x a STOP + START) | {r['p50_ms']:,.0f} ms; "
                         f"{cp['replace_over_stop_start']:.2f} x |")
        a = cp.get("artifact")
        if a:
            lines.append(f"| artifact upload, {a['mb']} MB | {a['upload_mb_per_s']:,.1f} MB/s |")
            lines.append(f"| artifact download, {a['mb']} MB | {a['download_mb_per_s']:,.1f} MB/s |")
        cs = cp.get("cold_start")
        if cs and cs.get("status") != "skipped":
            for label, r in cs.items():
                lines.append(f"| load {label}, {r['mb']} MB, empty compiled cache | {r['cold_ms']:,.0f} ms |")
                lines.append(f"| load {label}, warm compiled cache | {r['warm_ms']:,.0f} ms |")
        for part, err in (cp.get("errors") or {}).items():
            lines.append(f"| {part} | failed: {str(err).splitlines()[0][:60]} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.report", description="Show a saved run again.")
    ap.add_argument("file", type=Path, help="a JSON file written by python -m bench")
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables instead")
    a = ap.parse_args(argv)
    results = json.loads(a.file.read_text())
    if a.markdown:
        print(to_markdown(results))
    else:
        render(results)


if __name__ == "__main__":
    main()
