#!/usr/bin/env python3
"""report.py - turn one benchmark case's measurements into a Markdown section.

    python3 report.py CASE.tsv RESULTS.md MACHINE.md

CASE.tsv is written by run.sh, one record per line, fields separated by tabs
(CPU is user + system seconds, mean over the runs; it may be absent):

    meta   case   NAME  TITLE
    meta   note   TEXT                         (any number)
    meta   ref    GROUP LABEL                  (the tally row ratios are taken to)
    run    GROUP  LABEL BYTES MEDIAN MIN MAX RSS_KB RUNS COMMAND CPU
    fail   GROUP  LABEL BYTES COMMAND
    check  LABEL  STATUS DETAIL
    target DESC   VALUE_EXPR COND_EXPR UNIT

In VALUE_EXPR, t['GROUP/LABEL'] is a median wall time in seconds, m[...] a
peak RSS in bytes and mbs[...] a throughput in MB/s; COND_EXPR tests the value
v.  A target whose rows are missing or failed reads "not run".

The section is printed and also written into RESULTS.md between the markers
<!-- case:NAME --> and <!-- /case:NAME -->, replacing an older one; the
machine description at the top of RESULTS.md is replaced by MACHINE.md.
"""
import os
import re
import sys

HEAD = "# tally benchmark results\n"
MACHINE_BEGIN, MACHINE_END = "<!-- machine -->", "<!-- /machine -->"


def fmt_time(s):
    return "%.3f" % s if s < 100 else "%.1f" % s


def fmt_ratio(x):
    return "%.2fx" % x if x < 100 else "%.0fx" % x


def read_case(path):
    case = {"notes": [], "refs": {}, "runs": [], "checks": [], "targets": [], "name": "?", "title": ""}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if p[0] == "meta" and p[1] == "case":
                case["name"], case["title"] = p[2], p[3]
            elif p[0] == "meta" and p[1] == "note":
                case["notes"].append(p[2])
            elif p[0] == "meta" and p[1] == "ref":
                case["refs"][p[2]] = p[3]
            elif p[0] == "run":
                case["runs"].append({"group": p[1], "label": p[2], "bytes": int(p[3]),
                                     "median": float(p[4]), "min": float(p[5]), "max": float(p[6]),
                                     "rss": int(p[7]) * 1024, "runs": int(p[8]), "cmd": p[9], "ok": True,
                                     "cpu": float(p[10]) if len(p) > 10 and p[10] else None})
            elif p[0] == "fail":
                case["runs"].append({"group": p[1], "label": p[2], "bytes": int(p[3]), "cmd": p[4], "ok": False})
            elif p[0] == "check":
                case["checks"].append((p[1], p[2], p[3] if len(p) > 3 else ""))
            elif p[0] == "target":
                case["targets"].append((p[1], p[2], p[3], p[4] if len(p) > 4 else ""))
    return case


def md(text):
    """Text for a Markdown table cell."""
    return text.replace("|", "\\|")


def shorten(text):
    """Paths of this run in commands read as tally, $BENCH_DIR and tests/bench."""
    for var, short in (("BENCH_TALLY", "tally"), ("BENCH_DIRPATH", "$BENCH_DIR"), ("BENCH_HERE", "tests/bench")):
        path = os.environ.get(var)
        if path:
            text = text.replace(path, short)
    return text


def section(case, env):
    out = []
    out.append("## %s\n" % case["title"])
    out.append("_%s_\n" % env)
    for n in case["notes"]:
        out.append("- %s" % n)
    if case["notes"]:
        out.append("")
    t, m, mbs = {}, {}, {}
    for r in case["runs"]:
        if r["ok"]:
            key = r["group"] + "/" + r["label"]
            t[key], m[key] = r["median"], r["rss"]
            mbs[key] = r["bytes"] / 1e6 / r["median"] if r["median"] > 0 else float("inf")
    out.append("| input | command | median s (min-max) | CPU s | MB/s | time / tally | peak RSS MiB |")
    out.append("|---|---|---:|---:|---:|---:|---:|")
    for r in case["runs"]:
        cmd = shorten(r["cmd"]).replace("|", "\\|")
        if not r["ok"]:
            out.append("| %s | %s: `%s` | failed | | | | |" % (r["group"], md(r["label"]), cmd))
            continue
        ref = case["refs"].get(r["group"])
        ratio = ""
        if ref and (r["group"] + "/" + ref) in t:
            ratio = fmt_ratio(r["median"] / t[r["group"] + "/" + ref])
        cpu = fmt_time(r["cpu"]) if r["cpu"] is not None else ""
        out.append("| %s | %s: `%s` | %s (%s-%s) | %s | %.0f | %s | %.1f |" % (
            r["group"], md(r["label"]), cmd, fmt_time(r["median"]), fmt_time(r["min"]), fmt_time(r["max"]),
            cpu, r["bytes"] / 1e6 / r["median"], ratio, r["rss"] / 1048576))
    out.append("")
    if case["checks"]:
        out.append("Output agreement (normalised outputs compared in full):\n")
        for label, status, detail in case["checks"]:
            out.append("- %s: **%s** %s" % (md(label), status, shorten(detail).replace("|", "\\|")))
        out.append("")
    if case["targets"]:
        out.append("| target | measured | result |")
        out.append("|---|---:|---|")
        for desc, vexpr, cexpr, unit in case["targets"]:
            try:
                v = eval(vexpr, {}, {"t": t, "m": m, "mbs": mbs})
                ok = eval(cexpr, {}, {"v": v})
                shown = ("%.3g" % v) + unit if isinstance(v, float) else str(v) + unit
                out.append("| %s | %s | %s |" % (md(desc), shown, "met" if ok else "**NOT met**"))
            except KeyError:
                out.append("| %s | | not run |" % md(desc))
            except ZeroDivisionError:
                out.append("| %s | | not measurable (zero time) |" % md(desc))
        out.append("")
    return "\n".join(out)


def update(results, name, body, machine):
    text = open(results, encoding="utf-8").read() if os.path.exists(results) else HEAD
    # Text after the last case (the notes on the profiles) stays last.
    ends = list(re.finditer(r"<!-- /case:\S+ -->", text))
    tail = ""
    if ends:
        tail = text[ends[-1].end():].strip("\n")
        text = text[:ends[-1].end()] + "\n"
    begin, end = "<!-- case:%s -->" % name, "<!-- /case:%s -->" % name
    block = "%s\n%s\n%s" % (begin, body.rstrip("\n"), end)
    pat = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if pat.search(text):
        text = pat.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    mblock = "%s\n%s\n%s" % (MACHINE_BEGIN, machine.rstrip("\n"), MACHINE_END)
    mpat = re.compile(re.escape(MACHINE_BEGIN) + ".*?" + re.escape(MACHINE_END), re.S)
    if mpat.search(text):
        text = mpat.sub(lambda _: mblock, text)
    else:
        text = text.replace(HEAD, HEAD + "\n" + mblock + "\n", 1) if text.startswith(HEAD) \
            else mblock + "\n\n" + text
    # keep the cases in their numeric order
    blocks = re.findall(r"<!-- case:(\S+) -->.*?<!-- /case:\1 -->", text, re.S)
    full = {b: re.search(r"<!-- case:%s -->.*?<!-- /case:%s -->" % (re.escape(b), re.escape(b)), text, re.S).group(0)
            for b in blocks}
    first = text.find("<!-- case:")
    if first >= 0:
        text = text[:first].rstrip("\n") + "\n\n" + "\n\n".join(full[b] for b in sorted(full)) + "\n"
    if tail:
        text += "\n" + tail + "\n"
    tmp = results + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, results)


def main(argv):
    if len(argv) != 4:
        sys.stderr.write("usage: report.py CASE.tsv RESULTS.md MACHINE.md\n")
        return 2
    case = read_case(argv[1])
    machine = open(argv[3], encoding="utf-8").read()
    env = os.environ.get("BENCH_ENV_LINE", "")
    body = section(case, env)
    print(body)
    update(argv[2], case["name"], body, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
