"""Print the fields of a --stats-json file, one per line, in the order the
man page lists them; the values that depend on the machine or the clock are
left out, the others follow the name."""
import json
import sys

EXACT = ["bytes_read", "bytes_decoded", "files", "files_compressed",
         "files_failed", "tokens", "distinct", "hapax", "illformed_bytes",
         "cut_keys", "skipped_records"]
VARIABLE = ["t_count", "t_merge", "t_sort", "t_write", "t_total",
            "mb_per_s", "tokens_per_s"]
EXACT2 = ["threads", "budget"]
VARIABLE2 = ["peak_rss", "peak_table", "peak_pool", "peak_io", "peak_spill",
             "pool_hits", "pool_misses"]
EXACT3 = ["evictions", "runs_spilled", "bytes_spilled", "merge_passes"]

with open(sys.argv[1]) as f:
    d = json.load(f)
for group, exact in ((EXACT, True), (VARIABLE, False), (EXACT2, True),
                     (VARIABLE2, False), (EXACT3, True)):
    for k in group:
        if k not in d:
            print(k, "MISSING")
        elif not isinstance(d[k], (int, float)) or d[k] < 0:
            print(k, "BAD", d[k])
        elif exact:
            print(k, d[k])
        else:
            print(k)
extra = sorted(set(d) - set(EXACT + VARIABLE + EXACT2 + VARIABLE2 + EXACT3))
for k in extra:
    print("unexpected", k)
