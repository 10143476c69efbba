"""The table (plain text for the terminal, Markdown for bench.md and the docs), its
notes, and the plot of RTT percentiles."""

from .targets import PEERS

# (scenario, figure key, label, number format, which way is better)
ROWS = [
    ("small", "msgs_per_sec", "small: messages/s", "{:,.0f}", "higher"),
    ("small", "rtt_p50_us", "small: RTT p50 µs", "{:,.0f}", "lower"),
    ("small", "rtt_p99_us", "small: RTT p99 µs", "{:,.0f}", "lower"),
    ("small", "cpu_us_per_msg", "small: proxy CPU-µs per message", "{:,.1f}", "lower"),
    ("rate", "rtt_p50_us", "rate: RTT p50 µs", "{:,.0f}", "lower"),
    ("rate", "rtt_p99_us", "rate: RTT p99 µs", "{:,.0f}", "lower"),
    ("rate", "rtt_p999_us", "rate: RTT p99.9 µs", "{:,.0f}", "lower"),
    ("large", "mb_per_sec", "large: MB/s", "{:,.0f}", "higher"),
    ("large", "cpu_ms_per_gb", "large: proxy CPU-ms per GB", "{:,.0f}", "lower"),
    ("idle", "bytes_per_conn", "idle: proxy RSS bytes per connection", "{:,.0f}", "lower"),
    ("churn", "handshakes_per_sec", "churn: handshakes/s", "{:,.0f}", "higher"),
    ("churn", "cpu_us_per_handshake", "churn: proxy CPU-µs per connection", "{:,.0f}", "lower"),
    ("small-wss", "msgs_per_sec", "small-wss: messages/s", "{:,.0f}", "higher"),
    ("small-wss", "rtt_p50_us", "small-wss: RTT p50 µs", "{:,.0f}", "lower"),
    ("small-wss", "rtt_p99_us", "small-wss: RTT p99 µs", "{:,.0f}", "lower"),
    ("small-wss", "cpu_us_per_msg", "small-wss: proxy CPU-µs per message", "{:,.1f}", "lower"),
    ("large-wss", "mb_per_sec", "large-wss: MB/s", "{:,.0f}", "higher"),
    ("large-wss", "cpu_ms_per_gb", "large-wss: proxy CPU-ms per GB", "{:,.0f}", "lower"),
    ("idle-wss", "bytes_per_conn", "idle-wss: proxy RSS bytes per connection", "{:,.0f}",
     "lower"),
    ("churn-wss", "handshakes_per_sec", "churn-wss: handshakes/s", "{:,.0f}", "higher"),
    ("churn-wss", "cpu_us_per_handshake", "churn-wss: proxy CPU-µs per connection", "{:,.0f}",
     "lower"),
    ("churn-wss", "resumed_share", "churn-wss: TLS handshakes resumed", "{:.0%}", "higher"),
    ("http-small", "req_per_sec", "http-small: requests/s", "{:,.0f}", "higher"),
    ("http-small", "latency_p50_us", "http-small: latency p50 µs", "{:,.0f}", "lower"),
    ("http-small", "latency_p99_us", "http-small: latency p99 µs", "{:,.0f}", "lower"),
    ("http-small", "cpu_us_per_req", "http-small: proxy CPU-µs per request", "{:,.1f}", "lower"),
    ("http-small", "origin_conns_per_1k", "http-small: origin connections per 1,000 requests",
     "{:,.2f}", "lower"),
    ("http-large", "mb_per_sec", "http-large: MB/s", "{:,.0f}", "higher"),
    ("http-large", "cpu_ms_per_gb", "http-large: proxy CPU-ms per GB", "{:,.0f}", "lower"),
    ("http-large", "origin_conns_per_1k", "http-large: origin connections per 1,000 requests",
     "{:,.2f}", "lower"),
]


def _result(results, scenario, target):
    return results.get(scenario, {}).get(target)


def figure(results, scenario, target, key):
    r = _result(results, scenario, target)
    if not r or r.get("status") != "ok":
        return None
    return r.get("figures", {}).get(key)


def _flagged(r):
    return any(r.get(k) for k in ("errors", "rate_note", "idle_note", "cpu_note", "tls_note"))


def _cell(results, scenario, target, key, fmt):
    r = _result(results, scenario, target)
    if r is None:
        return ""
    if r.get("status") in ("skipped", "failed"):
        return r["status"]
    value = figure(results, scenario, target, key)
    if value is None:
        return "-"
    return fmt.format(value) + (" !" if _flagged(r) else "")


def _ratio(results, scenario, target, key, peer):
    value = figure(results, scenario, target, key)
    base = figure(results, scenario, peer, key)
    if target == peer or value is None or not base:
        return ""
    return f"{value / base:.2f}× {peer}"


def rows(results, targets):
    """[label, one cell per target] for each figure, each followed by its ratios to
    the peers that have that figure."""
    out = []
    for scenario, key, label, fmt, better in ROWS:
        if scenario not in results:
            continue
        out.append([f"{label} ({better} is better)"]
                   + [_cell(results, scenario, t, key, fmt) for t in targets])
        for peer in PEERS:
            if figure(results, scenario, peer, key):
                out.append([f"  vs {peer}"]
                           + [_ratio(results, scenario, t, key, peer) for t in targets])
    return out


def text_table(results, targets):
    table = [["figure"] + targets] + rows(results, targets)
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = []
    for n, row in enumerate(table):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(results, targets):
    lines = ["| figure | " + " | ".join(targets) + " |",
             "|:---|" + "---:|" * len(targets)]
    for row in rows(results, targets):
        label = row[0].strip()
        if row[0].startswith("  "):
            label = f"&emsp;{label}"
        lines.append(f"| {label} | " + " | ".join(row[1:]) + " |")
    return "\n".join(lines)


def notes(results, targets):
    """One line per skipped or failed measurement and per result marked `!`."""
    out = []
    for scenario, by_target in results.items():
        # The storm's results are by variant (switchboard+admission), in run order.
        names = list(by_target) if scenario == "storm" else targets
        for target in names:
            r = by_target.get(target)
            if r is None:
                continue
            where = f"{scenario} / {target}"
            if r.get("status") in ("skipped", "failed"):
                out.append(f"{where}: {r['status']}: {r.get('reason', '')}")
                continue
            for key in ("rate_note", "idle_note", "cpu_note", "storm_note", "tls_note"):
                if r.get(key):
                    out.append(f"{where}: {r[key]}")
            if r.get("errors"):
                out.append(f"{where}: sb-load counted {r['errors']} errors {r['error_kinds']}")
    return out


# The storm's table: one row per variant. (heading, cell of a result's figures)
STORM_COLUMNS = [
    ("clients reconnecting", lambda f: f"{f['affected']:,}"),
    ("peak new conns per survivor per 100 ms", lambda f: f"{f['peak_per_100ms']:,}"),
    ("max new conns per survivor in any 1-s window ≤ rate + burst",
     lambda f: f"{f['max_per_1s']:,}" + (
         f" ≤ {f['limit_1s']:,} {'met' if f['max_per_1s'] <= f['limit_1s'] else 'MISSED'}"
         if "limit_1s" in f else "")),
    ("all back after s ≤ bound with N = all clients / N = reconnecting",
     lambda f: ("not all back" if f["reconnect_s"] is None else f"{f['reconnect_s']:.2f}") + (
         f" ≤ {f['bound_s']:.1f} "
         f"{'met' if f['reconnect_s'] is not None and f['reconnect_s'] <= f['bound_s'] else 'MISSED'}"
         f" / {f['bound_affected_s']:.1f} "
         f"{'met' if f['reconnect_s'] is not None and f['reconnect_s'] <= f['bound_affected_s'] else 'missed'}"
         if "bound_s" in f else "")),
    ("refused at least once",
     lambda f: "-" if f["refused_share"] is None
     else f"{100 * f['refused_share']:.{1 if 0 < f['refused_share'] < 0.1 else 0}f}% "
          f"({f['refused_clients']:,})"),
    ("attempts", lambda f: f"{f['attempts']:,}"),
    ("errors", lambda f: f"{f['errors']:,}"),
]


def storm_rows(by_variant):
    out = []
    for variant, r in by_variant.items():
        if r.get("status") != "ok":
            out.append([f"{variant} ({r.get('status', '?')}, see the notes)"]
                       + [""] * len(STORM_COLUMNS))
            continue
        out.append([variant] + [cell(r["figures"]) for _, cell in STORM_COLUMNS])
    return out


def storm_text_table(by_variant):
    table = [["storm"] + [h for h, _ in STORM_COLUMNS]] + storm_rows(by_variant)
    # One variant per block: the headings are too long for columns on a terminal.
    lines = []
    for row in table[1:]:
        lines.append(f"storm / {row[0]}")
        for heading, value in zip(table[0][1:], row[1:]):
            if value:
                lines.append(f"  {heading}: {value}")
    return "\n".join(lines)


def storm_markdown_table(by_variant):
    lines = ["| target | " + " | ".join(h for h, _ in STORM_COLUMNS) + " |",
             "|:---|" + "---:|" * len(STORM_COLUMNS)]
    for row in storm_rows(by_variant):
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


# Issue 17's targets for the wss scenarios: (scenario, figure key, what, the test).
# Each test gets switchboard's figure and the better peer's and returns the bound.
WSS_TARGETS = [
    ("idle-wss", "bytes_per_conn", "idle wss at most 1.5 KiB per connection", "fixed", 1536),
    ("small-wss", "cpu_us_per_msg", "CPU per small wss message at most 0.9x the better peer's",
     "lower", 0.9),
    ("large-wss", "cpu_ms_per_gb", "CPU per GB over wss at most 0.9x the better peer's",
     "lower", 0.9),
    # Not one of the four targets; watched because a reconnect storm is
    # handshakes.
    ("churn-wss", "handshakes_per_sec",
     "churn-wss handshakes/s at least the better peer's (watched, not an issue target)",
     "higher", 1.0),
    ("churn-wss", "resumed_share", "churn-wss resumed share at least the better peer's",
     "higher", 1.0),
]


def _number(v):
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}" if abs(v) >= 1 else f"{v:.2f}"


def wss_targets(results, target="switchboard"):
    """One line per issue-17 target whose figures were measured: met or MISSED, and
    by how much (the figure against its bound)."""
    out = []
    for scenario, key, what, how, factor in WSS_TARGETS:
        value = figure(results, scenario, target, key)
        if value is None:
            continue
        if how == "fixed":
            bound, against = factor, ""
        else:
            peers = [(figure(results, scenario, p, key), p) for p in PEERS]
            peers = [(v, p) for v, p in peers if v is not None]
            if not peers:
                continue
            best, peer = (min if how == "lower" else max)(peers)
            bound, against = best * factor, f" ({peer}: {_number(best)})"
        met = value <= bound if how in ("fixed", "lower") else value >= bound
        ratio = value / bound if bound else float("inf")
        out.append(f"{what}: {_number(value)} against a bound of {_number(bound)}{against}: "
                   + ("met" if met else f"MISSED by {abs(ratio - 1):.0%}")
                   + f" ({ratio:.2f}x the bound)")
    return out


def interference(results):
    """How much of each core other programs took during the measured windows of the
    proxies (mean and worst), as a sentence: on a shared machine this is what the
    figures must be read with."""
    shares = {"proxy_core_others": [], "load_core_others": []}
    for by_target in results.values():
        for target, r in by_target.items():
            cores = r.get("cores") if target != "direct" else None
            if r.get("status") == "ok" and cores:
                for key, values in shares.items():
                    values.append(cores[key])
    if not shares["proxy_core_others"]:
        return ""
    parts = []
    for key, name in (("proxy_core_others", "the proxy's core"),
                      ("load_core_others", "the load's core")):
        v = shares[key]
        parts.append(f"{name} {100 * sum(v) / len(v):.0f}% on average "
                     f"(at worst {100 * max(v):.0f}%)")
    return ("During the measured windows, other programs on this machine used "
            + " and ".join(parts) + ".")


SATURATED = 0.95


def load_saturation(results, closed):
    """A sentence naming the closed-loop measurements (the scenarios in `closed`)
    during which the load's core was saturated and the proxy's was not, with each
    core's busy share, or "".

    In a closed loop the slowest stage sets the message rate. When that is the load's
    core (sb-load and the echo backend share it), a proxy that keeps up with it
    often finds one or two events per wakeup and sleeps in between, while a slower
    proxy is itself the bottleneck and takes dozens per wakeup: the faster proxy's
    CPU per message then includes more system calls and wakeups than it would at
    the same rate as the others."""
    found = []
    for name in closed:
        for target, r in results.get(name, {}).items():
            cores = r.get("cores") if target != "direct" else None
            if (r.get("status") == "ok" and cores and cores["load_core_busy"] >= SATURATED
                    and cores["proxy_core_busy"] < SATURATED):
                found.append(f"{name} {target} (load core {100 * cores['load_core_busy']:.0f}%, "
                             f"proxy core {100 * cores['proxy_core_busy']:.0f}%)")
    if not found:
        return ""
    return (f"The load's core was at least {SATURATED:.0%} busy, and the proxy's was not, "
            "while measuring "
            + ", ".join(found) + ". There the load side set the message rate, not the "
            "proxy, and a proxy that kept up with it took fewer events per wakeup than a "
            "proxy that was itself the bottleneck (docs/benchmarks.md, \"When the load's "
            "core is the bottleneck\").")


def plot(results, targets, scenario_list, path):
    """Writes the RTT percentiles of the small-message and fixed-rate scenarios, one
    line per target, to `path` (PNG). Returns False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    labels = ["p50", "p90", "p99", "p99.9", "max"]
    keys = ["p50", "p90", "p99", "p999", "max"]
    wanted = [s for s in scenario_list if s.name in ("small", "rate")]
    if not wanted:
        return True
    fig, axes = plt.subplots(1, len(wanted), figsize=(6.2 * len(wanted), 4.6), squeeze=False)
    for ax, s in zip(axes[0], wanted):
        for target in targets:
            r = _result(results, s.name, target)
            if not r or r.get("status") != "ok":
                continue
            rtt = r["load"]["rtt_us"]
            ax.plot(labels, [max(rtt[k], 1.0) for k in keys], marker="o", label=target)
        ax.set_yscale("log")
        ax.set_title(f"{s.title}: {s.describe().split(';')[0]}", fontsize=9)
        ax.set_xlabel("percentile")
        ax.set_ylabel("round-trip time (µs, log scale)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("WebSocket echo round trips through each target "
                 "(loopback; proxy on one core, load and backend on the other)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
