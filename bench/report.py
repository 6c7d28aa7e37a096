#!/usr/bin/env python3
"""Regenerates BENCHMARKS.md and its plots from the JSON reports bench/run.sh wrote.

    python3 bench/report.py --results bench/results --markdown BENCHMARKS.md --plots bench/plots
"""
import argparse
import glob
import json
import os
import re
import sys


def load(results_dir):
    runs = {}
    for path in sorted(glob.glob(os.path.join(results_dir, "*.json"))):
        with open(path) as f:
            text = f.read().strip()
        if not text:
            continue
        try:
            run = json.loads(text)
        except json.JSONDecodeError:  # A report printed after other lines: its last line.
            run = json.loads(text.splitlines()[-1])
        runs[os.path.splitext(os.path.basename(path))[0]] = run
    return runs


def series(runs, prefix, events):
    """{callers: run} for runs named <prefix>_c<callers>_e<events>."""
    pattern = re.compile(re.escape(prefix) + r"_c(\d+)_e" + str(events) + r"$")
    found = {}
    for name, run in runs.items():
        match = pattern.match(name)
        if match:
            found[int(match.group(1))] = run
    return dict(sorted(found.items()))


PATHS = ("typed", "raw", "stream", "native")
# S4 runs: label, words for the headline, the goal for its p50 overhead over direct (µs) or None.
S4_RUNS = (
    ("s4_proxy_typed", "typed gRPC", 100),
    ("s4_proxy_native", "native port", 30),
    ("s4_proxy_typed_busy_poll", "typed gRPC, `--busy-poll=100us`", None),
    ("s4_proxy_native_busy_poll", "native port, `--busy-poll=100us`", None),
)
S5_GOAL = 1_000_000  # Events per tbproxy CPU-second (issue 8's goal for the raw path).
# tbproxy CPU µs per one-event call on the echo cluster, per path (the front-end cost goals).
S5_US_PER_CALL_GOAL = {"stream": 3.0, "native": 4.0, "raw": 7.0, "typed": 8.0}


def s5_runs(runs, prefix="s5_echo"):
    """{path: {events_per_call: run}} for runs named <prefix>_<path>_c<callers>_e<events>
    (S5: s5_echo; its floor S5f: s5f_floor)."""
    pattern = re.compile(prefix + r"_([a-z]+)_c(\d+)_e(\d+)$")
    found = {}
    for name, run in runs.items():
        match = pattern.match(name)
        if match:
            found.setdefault(match.group(1), {})[int(match.group(3))] = run
    ordered = {p: dict(sorted(found[p].items())) for p in PATHS if p in found}
    ordered.update({p: dict(sorted(v.items())) for p, v in found.items() if p not in ordered})
    return ordered


def proxy_us_per_call(run):
    if not run.get("calls") or run.get("proxy_cpu_seconds") is None:
        return None
    return 1e6 * run["proxy_cpu_seconds"] / run["calls"]


def loadgen_us_per_call(run):
    """The load generator's own CPU per call, shown beside tbproxy's."""
    if not run.get("calls") or run.get("loadgen_cpu_seconds") is None:
        return None
    return 1e6 * run["loadgen_cpu_seconds"] / run["calls"]


def delayed_cluster_words(machine, short=False):
    """How the S2d/S3d cluster made each request take 2 ms."""
    if machine.get("delayed_model") == "pipeline":
        n = machine.get("pipeline_max", "?")
        if short:
            return f"a pipeline of up to {n} prepares of 2 ms each"
        return (f"a cluster that runs a pipeline of up to {n} prepares of 2 ms each, as "
                "TigerBeetle's primary does")
    if short:
        return "every request answered after 2 ms"
    return "a cluster that answers every request after 2 ms"


def fmt(value, digits=0):
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def finish_axes(ax, xlabel, ylabel, title, log_y=True, legend_size=7, legend_columns=1):
    """Log-scaled callers/events axes, labels, grid and legend: the same on every plot."""
    ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=legend_size, ncol=legend_columns)


def plot_all(runs, plots_dir, rel_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(plots_dir, exist_ok=True)
    images = []

    def save(fig, name, title):
        path = os.path.join(plots_dir, name)
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        plt.close(fig)
        images.append((title, os.path.join(rel_dir, name)))

    # Throughput vs callers.
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    styles = {"s2_typed": "-o", "s2_raw": "-s", "s2_stream": "-^", "s2_native": "-D",
              "s3_direct": "--x"}
    for prefix, style in styles.items():
        for events in (1, 10):
            data = series(runs, prefix, events)
            if not data:
                continue
            label = f"{prefix.replace('s2_', 'tbproxy ').replace('s3_direct', 'direct (≤32 sessions)')}, {events} ev/call"
            ax.plot(list(data), [r["events_per_s"] for r in data.values()], style, label=label)
    s1 = runs.get("s1_direct_8189")
    if s1 and s1.get("ok"):
        ax.axhline(s1["events_per_s"], color="grey", linestyle=":",
                   label="S1: 1 direct session, 8189 ev/request")
    finish_axes(ax, "concurrent callers", "events/s", "Throughput vs callers (create_transfers)")
    save(fig, "throughput_vs_callers.png", "Throughput vs callers")

    # The 2 ms cluster: throughput vs callers.
    if series(runs, "s2d_typed", 1) or series(runs, "s3d_direct", 1):
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        for prefix, style, name in (("s2d_typed", "-o", "tbproxy typed"),
                                    ("s2d_stream", "-s", "tbproxy stream"),
                                    ("s2d_native", "-^", "tbproxy native"),
                                    ("s3d_direct", "--x", "direct (≤32 sessions)")):
            for events in (1, 10):
                data = series(runs, prefix, events)
                if data:
                    ax.plot(list(data), [r["events_per_s"] for r in data.values()], style,
                            label=f"{name}, {events} ev/call")
        finish_axes(ax, "concurrent callers", "events/s", "Throughput vs callers, "
                    + delayed_cluster_words(runs.get("machine", {}), short=True))
        save(fig, "throughput_vs_callers_2ms.png", "Throughput vs callers, 2 ms cluster")

    # S5: events per tbproxy CPU-second vs events per call, per path.
    s5 = s5_runs(runs)
    if s5:
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        for path, by_events in s5.items():
            points = [(e, r["events_per_proxy_cpu_second"]) for e, r in by_events.items()
                      if r.get("ok") and r.get("events_per_proxy_cpu_second")]
            if points:
                ax.plot([e for e, _ in points], [v for _, v in points], "-o", label=path)
        ax.axhline(S5_GOAL, color="grey", linestyle=":", label="goal: 1 M events per CPU-second")
        finish_axes(ax, "events per call", "events per tbproxy CPU-second",
                    "S5: tbproxy's cost on an echo cluster (1024 callers)", legend_size=8)
        save(fig, "s5_events_per_cpu_second.png", "Events per tbproxy CPU-second vs events per call")

    # Latency percentiles vs callers, 10 events per call.
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for prefix, color in (("s2_typed", "tab:blue"), ("s3_direct", "tab:red")):
        data = series(runs, prefix, 10)
        if not data:
            continue
        name = "tbproxy typed" if prefix == "s2_typed" else "direct"
        for key, style in (("p50", "-o"), ("p99", "--s"), ("p999", ":^")):
            ax.plot(list(data), [r["latency_us"][key] / 1000 for r in data.values()], style,
                    color=color, label=f"{name} {key}")
    finish_axes(ax, "concurrent callers", "latency (ms)",
                "Latency percentiles vs callers (10 events/call)", legend_columns=2)
    save(fig, "latency_vs_callers.png", "Latency percentiles vs callers")

    # tbproxy vs direct ratio.
    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    for events, style in ((1, "-o"), (10, "-s")):
        proxy = series(runs, "s2_typed", events)
        direct = series(runs, "s3_direct", events)
        callers = [c for c in proxy if c in direct and direct[c]["events_per_s"] > 0]
        if callers:
            ax.plot(callers, [proxy[c]["events_per_s"] / direct[c]["events_per_s"] for c in callers],
                    style, label=f"{events} ev/call")
    ax.axhline(1.0, color="grey", linestyle=":")
    finish_axes(ax, "concurrent callers", "tbproxy events/s ÷ direct events/s",
                "tbproxy (typed) vs direct sessions", log_y=False, legend_size=8)
    save(fig, "proxy_vs_direct.png", "tbproxy vs direct")
    return images


def ratio_lines(runs, lead, proxy_word, proxy_base, direct_prefix, events, other_paths,
                other_p99):
    """Headline lines: tbproxy typed vs direct at the largest caller count both ran, then the
    other paths' ratios at that count."""
    proxy = series(runs, f"{proxy_base}_typed", events)
    direct = series(runs, direct_prefix, events)
    common = [c for c in proxy if c in direct]
    if not common:
        return []
    c = max(common)
    base = direct[c]["events_per_s"]
    if base <= 0:
        return []
    lines = [
        f"- {lead} {c} callers × {events} event(s): {proxy_word} "
        f"{fmt(proxy[c]['events_per_s'])} vs direct {fmt(base)} events/s = "
        f"**{proxy[c]['events_per_s'] / base:.1f}×**; p99 "
        f"{fmt(proxy[c]['latency_us']['p99'] / 1000, 1)} ms vs "
        f"{fmt(direct[c]['latency_us']['p99'] / 1000, 1)} ms."]
    others = []
    for path in other_paths:
        run = series(runs, f"{proxy_base}_{path}", events).get(c)
        if run and run.get("ok"):
            p99 = f", p99 {fmt(run['latency_us']['p99'] / 1000, 1)} ms" if other_p99 else ""
            others.append(f"{path} {fmt(run['events_per_s'])} "
                          f"({run['events_per_s'] / base:.1f}×{p99})")
    if others:
        lines.append(f"  Other paths at {c} callers × {events} event(s): "
                     + ", ".join(others) + " events/s.")
    return lines


def s2d_vs_s1d_lines(runs, machine):
    """Each path's one-event fan-in on the 2 ms model as a share of one direct session sending
    full requests on the same model (S1d): how close coalescing gets to the cluster's best."""
    s1d = runs.get("s1d_direct_8189")
    if not (s1d and s1d.get("ok") and s1d["events_per_s"] > 0):
        return []
    parts = []
    for path in ("typed", "stream", "native"):
        by_callers = series(runs, f"s2d_{path}", 1)
        if not by_callers:
            continue
        callers = 1024 if 1024 in by_callers else max(by_callers)
        run = by_callers[callers]
        if run.get("ok"):
            parts.append(f"{path} {fmt(run['events_per_s'])} "
                         f"(**{run['events_per_s'] / s1d['events_per_s']:.2f}** of S1d)")
    if not parts:
        return []
    return [f"- **S2d/S1d** ({delayed_cluster_words(machine, short=True)}): one direct session "
            f"with full 8189-event requests {fmt(s1d['events_per_s'])} events/s; one-event "
            f"callers through tbproxy at {callers} callers: " + ", ".join(parts) + "."]


def s5_per_call_lines(path, by_events, floor_by_events=None):
    """The per-call goal of a path at one event per call, with the load generator's own CPU per
    call beside tbproxy's, so a gain that only moved work to the client shows, and the floor
    (S5f: the same calls answered with no work) under it."""
    run = by_events.get(1)
    goal = S5_US_PER_CALL_GOAL.get(path)
    if not (run and run.get("ok") and goal is not None):
        return []
    proxy_us = proxy_us_per_call(run)
    if proxy_us is None:
        return []
    loadgen = loadgen_us_per_call(run)
    verdict = "met" if proxy_us <= goal else "not met"
    floor = (floor_by_events or {}).get(1)
    floor_us = proxy_us_per_call(floor) if floor and floor.get("ok") else None
    floor_words = ""
    if floor_us is not None:
        floor_words = (f" A server answering the same calls with no work (S5f) costs "
                       f"{fmt(floor_us, 1)} µs per call"
                       f"{' (above the goal)' if floor_us > goal else ''}: tbproxy adds "
                       f"{fmt(proxy_us - floor_us, 1)} µs to it.")
    return [f"  One event per call: tbproxy {fmt(proxy_us, 1)} µs CPU per call (goal ≤ {goal:g}: "
            f"**{verdict}**); the load generator {fmt(loadgen, 1)} µs per call." + floor_words]


def markdown(runs, images, command):
    machine = runs.get("machine", {})
    lines = []
    add = lines.append
    add("# Benchmarks")
    add("")
    add("Generated by " + command + " with `bench/report.py`; raw reports in "
        "`bench/results/*.json`. Every call's results were checked by the load generator "
        "(`bench/loadgen/`): creates must answer `created`, lookups must find every id; a "
        "run with any wrong or failed result is marked FAILED below.")
    add("")
    add(f"**Machine:** {machine.get('nproc', '?')} CPUs, {machine.get('cpu_model', '?')}, "
        f"kernel {machine.get('kernel', '?')}, load average at start "
        f"{machine.get('loadavg_at_start', '?')}. **CPU pinning:** {machine.get('pinning', '?')} "
        "(tbproxy, the dev cluster and the load generator share the same CPUs). "
        f"Commit {machine.get('commit', '?')}, {machine.get('date', '?')}.")
    loads = [r["loadavg_1m"] for r in runs.values()
             if isinstance(r, dict) and isinstance(r.get("loadavg_1m"), (int, float))]
    if loads:
        add("")
        add(f"1-minute load average at the end of each run: {min(loads):.1f} to {max(loads):.1f} "
            f"(on {machine.get('nproc', '?')} CPUs; above the CPU count, other work on the "
            "machine was competing with the benchmark, and those runs are noisy).")
    add("")
    add("**All figures come from one run on a shared machine: read them as ratios between "
        "scenarios measured side by side, not as absolute capacity.** The dev cluster "
        "(`tb-devcluster`) is an in-memory stand-in for TigerBeetle, so absolute events/s say "
        "little about a real cluster; what carries over is how the number of requests per "
        "event changes.")
    add("")

    s1 = runs.get("s1_direct_8189")
    s2_all = {n: r for n, r in runs.items() if n.startswith("s2_") and r.get("ok")}
    best_s2 = max(s2_all.values(), key=lambda r: r["events_per_s"], default=None)
    headline = []
    if s1 and best_s2:
        headline.append(f"- **S2/S1** (best tbproxy fan-in ÷ one direct session sending full "
                        f"8189-event requests): {best_s2['events_per_s'] / s1['events_per_s']:.2f} "
                        f"({fmt(best_s2['events_per_s'])} vs {fmt(s1['events_per_s'])} events/s; best "
                        f"S2 run: {best_s2['label']}).")
    for events in (1, 10):
        headline += ratio_lines(runs, "**S2/S3** at", "tbproxy typed", "s2", "s3_direct", events,
                                PATHS[1:], other_p99=False)
    for events in (1, 10):
        headline += ratio_lines(runs, f"**S2d/S3d** ({delayed_cluster_words(machine, short=True)}) at",
                                "tbproxy", "s2d", "s3d_direct", events,
                                ("stream", "native"), other_p99=True)
    headline += s2d_vs_s1d_lines(runs, machine)
    s4d = runs.get("s4_direct")
    for label, words, goal_us in S4_RUNS:
        s4p = runs.get(label)
        if not (s4p and s4d and s4p.get("ok")):
            continue
        overhead = s4p['latency_us']['p50'] - s4d['latency_us']['p50']
        verdict = ""
        if goal_us is not None:
            verdict = (f" Goal p50 overhead ≤ {goal_us} µs by default: "
                       f"{'met' if overhead <= goal_us else 'not met'}.")
        headline.append(
            f"- **S4 overhead** of one sequential caller through tbproxy ({words}): p50 "
            f"{overhead:+.0f} µs, p99 "
            f"{s4p['latency_us']['p99'] - s4d['latency_us']['p99']:+.0f} µs "
            f"(tbproxy p50 {fmt(s4p['latency_us']['p50'])} µs, direct {fmt(s4d['latency_us']['p50'])} µs)."
            + verdict)
        s4f = runs.get("s4f_floor_typed")
        if label == "s4_proxy_typed" and s4f and s4f.get("ok"):
            headline.append(
                f"  A gRPC server of the same API that answers at once, with no cluster behind it "
                f"(S4f), has p50 {fmt(s4f['latency_us']['p50'])} µs for the same caller: one gRPC "
                f"round trip alone, against direct's {fmt(s4d['latency_us']['p50'])} µs to the "
                f"cluster and back. A typed call through tbproxy is that round trip plus the "
                f"cluster's, so its overhead over direct cannot be much below "
                f"{fmt(s4f['latency_us']['p50'])} µs on this machine.")
    for path, by_events in s5_runs(runs).items():
        measured = [(e, r) for e, r in by_events.items()
                    if r.get("ok") and r.get("events_per_proxy_cpu_second") is not None]
        if not measured:
            continue
        figures = "; ".join(
            f"{e} ev/call: {fmt(r['events_per_proxy_cpu_second'])} "
            f"({fmt(proxy_us_per_call(r), 1)} µs per call)" for e, r in measured)
        met = [e for e, r in measured if r["events_per_proxy_cpu_second"] >= S5_GOAL]
        callers = measured[0][1].get("callers", "?")
        missed = [e for e, _ in measured if e not in met]
        if met and missed:
            verdict = (f"the 1 M events per CPU-second goal is **met at "
                       f"{', '.join(str(e) for e in met)}** events per call and **not met at "
                       f"{', '.join(str(e) for e in missed)}**")
        elif met:
            verdict = ("the 1 M events per CPU-second goal is **met at every measured size** ("
                       f"{', '.join(str(e) for e in met)} events per call)")
        else:
            verdict = ("the 1 M events per CPU-second goal is **not met** at any measured size "
                       f"({', '.join(str(e) for e in missed)} events per call)")
        headline.append(f"- **S5 {path}** (echo cluster, {callers} callers), events per tbproxy "
                        f"CPU-second: {figures}; {verdict}.")
        headline += s5_per_call_lines(path, by_events, s5_runs(runs, "s5f_floor").get(path))
    idle, streams = runs.get("s6_rss_idle"), runs.get("s6_rss_idle_streams")
    if idle and streams:
        per = (streams["proxy_rss_kb"] - idle["proxy_rss_kb"]) / max(streams["idle_streams"], 1)
        headline.append(
            f"- **S6 RSS**: {fmt(idle['proxy_rss_kb'] / 1024, 1)} MiB idle; "
            f"{fmt(streams['proxy_rss_kb'] / 1024, 1)} MiB with {streams['idle_streams']} idle "
            f"streams on {streams['channels']} connections ({per:.1f} KiB per idle stream).")
        floor_idle = runs.get("s6f_floor_rss_idle")
        floor_streams = runs.get("s6f_floor_rss_idle_streams")
        if floor_idle and floor_streams and floor_streams.get("ok", True):
            floor_per = ((floor_streams["proxy_rss_kb"] - floor_idle["proxy_rss_kb"])
                         / max(floor_streams["idle_streams"], 1))
            headline.append(
                f"  The same idle streams held by a gRPC server of the same API that does nothing "
                f"(S6f, `tbproxy-grpc-floor`): {fmt(floor_idle['proxy_rss_kb'] / 1024, 1)} MiB "
                f"idle, {fmt(floor_streams['proxy_rss_kb'] / 1024, 1)} MiB with them "
                f"({floor_per:.1f} KiB per idle stream): what gRPC itself keeps per stream.")
    s2_max = [r for n, r in runs.items() if n.startswith("s2_") and "proxy_rss_kb" in r]
    if s2_max:
        biggest = max(s2_max, key=lambda r: (r["callers"], r["events_per_call"]))
        headline.append(f"- **S6 RSS under load** ({biggest['label']}): "
                        f"{fmt(biggest['proxy_rss_kb'] / 1024, 1)} MiB.")
    add("## Headline")
    add("")
    lines.extend(headline or ["(no complete scenario)"])
    add("")
    add("## Reading the numbers")
    add("")
    add("- A direct session pays the cluster's per-request cost once per caller batch; tbproxy "
        "pays it once per coalesced message but adds a front-end call (gRPC, or a native "
        "protocol request) per caller batch. Which one wins depends on which cost is larger.")
    costs = []
    for name, r in sorted(runs.items()):
        if (name.startswith("s2_") or name.startswith("s5_")) and r.get("calls") and \
                r.get("proxy_cpu_seconds") is not None:
            costs.append((name, 1e6 * r["proxy_cpu_seconds"] / r["calls"],
                          1e6 * r.get("loadgen_cpu_seconds", 0) / r["calls"]))
    if costs:
        cheapest = min(costs, key=lambda c: c[1])
        priciest = max(costs, key=lambda c: c[1])
        ratios = sorted(c[2] / c[1] for c in costs if c[1] > 0)
        median = ratios[len(ratios) // 2] if ratios else 0
        add(f"- tbproxy's own CPU cost per caller call ranged from {cheapest[1]:.0f} µs "
            f"({cheapest[0]}) to {priciest[1]:.0f} µs ({priciest[0]}); the load generator's "
            f"client side (on the same CPUs) costs {median:.1f}× as much per call (median of "
            f"these runs). On "
            f"{machine.get('nproc', '?')} shared CPUs, that caps the calls per second "
            "through tbproxy well below what the in-memory dev cluster answers, so against the "
            "plain dev cluster (S2 vs S3) direct sessions are faster: a dev-cluster request "
            "costs microseconds, not the milliseconds of a replicated, fsyncing cluster.")
    if machine.get("delayed_model") == "pipeline":
        add(f"- Against a cluster whose requests take 2 ms (S2d/S3d: up to "
            f"{machine.get('pipeline_max', '?')} prepares in flight at once, each 2 ms, as "
            "TigerBeetle's primary pipelines them), every session still has one request in "
            "flight, so direct callers get at most 500 requests/s per session (at most 32 "
            "sessions can be connected to a replica at once) whatever the number of callers, "
            "and the cluster as a whole at most pipeline ÷ 2 ms requests/s; tbproxy's few "
            "sessions carry many callers' batches in each request, so there its throughput is "
            "bounded by its own CPU.")
    else:
        add("- Against a cluster whose requests take 2 ms (S2d/S3d), direct callers are bound by "
            "sessions × 500 requests/s (at most 32 sessions can be connected to a replica at "
            "once), whatever the number of callers, while tbproxy's few sessions carry many "
            "callers' batches in each request: there tbproxy's throughput is bounded by its own "
            "CPU.")
    add("- The native path (S2 native) is tbproxy's TigerBeetle-protocol port: every caller is "
        "its own client_core session, as an official TigerBeetle client would be, and tbproxy "
        "coalesces their requests like the gRPC paths'; no gRPC or protobuf on either side.")
    add("- S1 shows what one session can push with full requests; the gap between S1 and S2 "
        "is tbproxy's (and the load generator's) per-call front-end cost (gRPC or native "
        "protocol), not the cluster.")
    add("- Maximum latencies of a second or more in the runs with the most events per second "
        "(stream × 10 events, S1) come from the dev cluster, not tbproxy: it keeps every transfer "
        "in memory and, when its store and index fill up, doubles them, pausing for up to seconds "
        "once there are millions of transfers. Against the echo cluster (S5), which keeps "
        "nothing, the same loads stay below 0.15 s.")
    add("")
    for title, path in images:
        add(f"![{title}]({path})")
        add("")

    def table(title, names, note=None):
        rows = [(n, runs[n]) for n in names if n in runs]
        if not rows:
            return
        add(f"## {title}")
        add("")
        if note:
            add(note)
            add("")
        add("| run | path | callers | ev/call | sessions | events/s | calls/s | p50 µs | p99 µs "
            "| p99.9 µs | max µs | tbproxy CPU s | loadgen CPU s | load 1m | result |")
        add("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for name, r in rows:
            lat = r.get("latency_us", {})
            add(f"| {name} | {r.get('path', '')} | {r.get('callers', '')} | "
                f"{r.get('events_per_call', '')} | {r.get('sessions') or ''} | "
                f"{fmt(r.get('events_per_s'))} | {fmt(r.get('calls_per_s'))} | "
                f"{fmt(lat.get('p50'))} | {fmt(lat.get('p99'))} | {fmt(lat.get('p999'))} | "
                f"{fmt(lat.get('max'))} | {fmt(r.get('proxy_cpu_seconds'), 2)} | "
                f"{fmt(r.get('loadgen_cpu_seconds'), 2)} | {fmt(r.get('loadavg_1m'), 1)} | "
                f"{'ok' if r.get('ok') else 'FAILED'} |")
        add("")

    def by_callers(prefix):
        names = [n for n in runs if n.startswith(prefix)]
        def key(n):
            m = re.search(r"_c(\d+)_e(\d+)$", n)
            return (n.split("_c")[0], int(m.group(1)), int(m.group(2))) if m else (n, 0, 0)
        return sorted(names, key=key)

    table("S1: one direct session, full 8189-event requests", ["s1_direct_8189"])
    table("S2: fan-in through tbproxy (create_transfers)", by_callers("s2_"),
          "Each caller has one call in flight (closed loop); tbproxy coalesces concurrent calls "
          "into multi-batch messages over its default 4 sessions. Paths: gRPC `typed`, `raw` "
          "and `stream`, and `native` (tbproxy's TigerBeetle-protocol port, one session per "
          "caller).")
    table("S3: the same callers direct (≤ 32 sessions, one request each in flight)",
          by_callers("s3_"),
          "What applications do today: every caller's batch is one request on its own session. "
          "A replica keeps clients_max = 64 sessions but serves only 32 client connections at "
          "once (PROTOCOL.md §2.4; the dev cluster does the same), so at most 32 sessions carry "
          "requests concurrently; callers beyond wait for a free session, and that wait is in "
          "their latency.")
    if machine.get("delayed_model") == "pipeline":
        pipeline_max = machine.get("pipeline_max")
        bound = (f" = {fmt(pipeline_max / 0.002)}" if isinstance(pipeline_max, (int, float))
                 else "")
        delayed_note = (f"`tb-devcluster {machine.get('delayed_flags', '')}` runs a pipeline of "
                        f"up to {machine.get('pipeline_max', '?')} prepares of 2 ms each, as "
                        "TigerBeetle's primary does (replication and fsync): every request is one "
                        "prepare, so the cluster commits at most "
                        f"{machine.get('pipeline_max', '?')} ÷ 2 ms{bound} requests/s whatever "
                        "their size, each session (one request in flight) at most ~500, and "
                        "requests beyond the pipeline wait in the cluster's bounded request "
                        "queue.")
    else:
        delayed_note = ("`tb-devcluster --reply-delay=2ms` holds every reply back 2 ms, as "
                        "replication and fsync do on a real cluster: each session then carries "
                        "at most ~500 requests/s, whatever their size.")
    table(f"S2d/S3d: the same against {delayed_cluster_words(machine)}",
          [n for n in ["s1d_direct_8189"] if n in runs] + by_callers("s2d_") + by_callers("s3d_"),
          delayed_note)
    table("S4: one sequential caller (latency)",
          [label for label, _, _ in S4_RUNS] + ["s4_direct", "s4f_floor_typed"],
          "`s4f_floor_typed` is the floor under the typed path: `tbproxy-grpc-floor`, a gRPC "
          "server of the same API answering at once with no cluster behind it.")
    table("S5: echo dev cluster (tbproxy's own cost)", by_callers("s5_"),
          "The echo cluster answers `created` without keeping state, so tbproxy and the load "
          "generator are the bottleneck; `tbproxy CPU s` is utime+stime of the tbproxy process "
          "over the measured window.")
    s5 = s5_runs(runs)
    if s5:
        add("S5 by events per call: tbproxy's CPU per event and per call (goal: 1 M events per "
            "tbproxy CPU-second).")
        add("")
        add("| path | ev/call | events/s | tbproxy CPUs | events per tbproxy CPU-s | tbproxy CPU "
            "µs/call | loadgen CPU µs/call | goal | result |")
        add("|---|---:|---:|---:|---:|---:|---:|---|---|")
        for path, by_events in s5.items():
            for events, r in by_events.items():
                per_s = r.get("events_per_proxy_cpu_second")
                cpus = (r["proxy_cpu_seconds"] / r["seconds"]
                        if r.get("proxy_cpu_seconds") is not None and r.get("seconds") else None)
                loadgen = loadgen_us_per_call(r)
                goal = "—" if per_s is None else ("met" if per_s >= S5_GOAL else "not met")
                add(f"| {path} | {events} | {fmt(r.get('events_per_s'))} | {fmt(cpus, 2)} | "
                    f"{fmt(per_s)} | {fmt(proxy_us_per_call(r), 1)} | {fmt(loadgen, 1)} | "
                    f"{goal} | {'ok' if r.get('ok') else 'FAILED'} |")
        add("")
    s5f = s5_runs(runs, "s5f_floor")
    if s5f:
        add("## S5f: the floor under S5")
        add("")
        add("The same calls answered at once, with no coalescing and no cluster: by "
            "`tbproxy-grpc-floor`, a bare gRPC server of the same API, for the gRPC paths, and "
            "by the echo dev cluster with one session per caller (a one-thread server of the "
            "same protocol) for the native path. `server CPU µs/call` is that server's "
            "utime+stime per call; what tbproxy adds is its S5 figure less this one.")
        add("")
        add("| path | ev/call | events/s | server CPU µs/call | tbproxy CPU µs/call (S5) | "
            "tbproxy above the floor | loadgen CPU µs/call | result |")
        add("|---|---:|---:|---:|---:|---:|---:|---|")
        for path, by_events in s5f.items():
            for events, r in by_events.items():
                floor_us = proxy_us_per_call(r)
                proxy_run = s5.get(path, {}).get(events) if s5 else None
                proxy_us = proxy_us_per_call(proxy_run) if proxy_run else None
                above = (proxy_us - floor_us
                         if proxy_us is not None and floor_us is not None else None)
                loadgen = loadgen_us_per_call(r)
                add(f"| {path} | {events} | {fmt(r.get('events_per_s'))} | {fmt(floor_us, 1)} | "
                    f"{fmt(proxy_us, 1)} | {fmt(above, 1)} | {fmt(loadgen, 1)} | "
                    f"{'ok' if r.get('ok') else 'FAILED'} |")
        add("")
    if idle or streams:
        add("## S6: tbproxy memory")
        add("")
        add("| state | RSS MiB |")
        add("|---|---:|")
        if idle:
            add(f"| idle, after start | {idle['proxy_rss_kb'] / 1024:.1f} |")
        if streams:
            add(f"| {streams['idle_streams']} idle open streams on {streams['channels']} "
                f"connections | {streams['proxy_rss_kb'] / 1024:.1f} |")
        for name, words in (("s6f_floor_rss_idle", "floor server (S6f), idle"),
                            ("s6f_floor_rss_idle_streams", "floor server (S6f), the same idle streams")):
            if name in runs:
                add(f"| {words} | {runs[name]['proxy_rss_kb'] / 1024:.1f} |")
        for r in sorted(s2_max, key=lambda r: (r["callers"], r["events_per_call"], r["path"])):
            if r["callers"] == max(x["callers"] for x in s2_max):
                add(f"| under load: {r['label']} | {r['proxy_rss_kb'] / 1024:.1f} |")
        add("")
    if os.path.exists(os.path.join(os.path.dirname(os.path.abspath(__file__)), "PROFILE.md")):
        add("## Profile")
        add("")
        add("Where tbproxy's own CPU goes under S2, and proposed fixes: "
            "[bench/PROFILE.md](bench/PROFILE.md).")
        add("")
    add("## How to reproduce")
    add("")
    add("```")
    add("scripts/install-deps.sh        # includes python3-matplotlib for the plots")
    add("bench/run.sh --quick           # a few minutes on 2 CPUs; bench/run.sh for the full set")
    add("```")
    add("")
    add("Single runs: `tbproxy-loadgen --help` (targets: a tbproxy address or `direct`; paths "
        "typed, raw, stream, or native with `--target=<tbproxy --native-listen port>`; closed "
        "loop or `--rate` open loop; JSON report; exit status 1 if any result is wrong).")
    add("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", default="bench/results")
    parser.add_argument("--markdown", default="BENCHMARKS.md")
    parser.add_argument("--plots", default="bench/plots")
    args = parser.parse_args()
    runs = load(args.results)
    if not runs:
        print("report.py: no results in " + args.results, file=sys.stderr)
        return 1
    rel = os.path.relpath(args.plots, os.path.dirname(os.path.abspath(args.markdown)) or ".")
    images = plot_all(runs, args.plots, rel)
    quick = runs.get("machine", {}).get("quick")
    command = "`bench/run.sh --quick`" if quick else "`bench/run.sh`"
    with open(args.markdown, "w") as f:
        f.write(markdown(runs, images, command))
    print(f"report.py: wrote {args.markdown} and {len(images)} plot(s) in {args.plots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
