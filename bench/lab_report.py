"""Turns the lab benchmark's raw results into a table of natd/kernel ratios
(table.md, results.json) and a plot (ratios.png)."""
import json
import sys

raw, out = sys.argv[1], sys.argv[2]
rows = [json.loads(line) for line in open(raw) if line.strip()]
kernel = next(r for r in rows if r["system"].startswith("kernel"))

def ratio(r, key):
    return round(r.get(key, 0) / kernel[key], 2) if kernel.get(key) else None

lines = [
    "| system | TCP 1 stream Gbit/s | TCP 4 streams Gbit/s | UDP 64 B kpps, iperf3 | UDP 64 B kpps, trafgen | ping µs | natd CPU % |",
    "| --- | --- | --- | --- | --- | --- | --- |",
]
for r in rows:
    if r is kernel:
        cells = [f"{r['tcp1_gbps']}", f"{r['tcp4_gbps']}", f"{r['udp_kpps']}", f"{r.get('trafgen_kpps', 0)}",
                 f"{r['ping_us']}", "-"]
    else:
        cells = [
            f"{r['tcp1_gbps']} ({ratio(r, 'tcp1_gbps')}×)",
            f"{r['tcp4_gbps']} ({ratio(r, 'tcp4_gbps')}×)",
            f"{r['udp_kpps']} ({ratio(r, 'udp_kpps')}×)",
            f"{r.get('trafgen_kpps', 0)} ({ratio(r, 'trafgen_kpps')}×)",
            f"{r['ping_us']} ({r['ping_us'] - kernel['ping_us']:+d})",
            f"{r['natd_cpu_pct']}",
        ]
    lines.append(f"| {r['system']} | " + " | ".join(cells) + " |")
table = "\n".join(lines) + (
    "\n\n(natd/kernel ratios in parentheses; ping: difference to the kernel in µs;"
    " natd CPU: its average from the first TCP test to the end of the UDP ones, 100 = one core)\n")
open(f"{out}/table.md", "w").write(table)
json.dump({"kernel": kernel, "rows": rows}, open(f"{out}/results.json", "w"), indent=2)
print(table)

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("tcp1_gbps", "TCP 1 stream"), ("tcp4_gbps", "TCP 4 streams"), ("udp_kpps", "UDP 64 B pps, iperf3"),
               ("trafgen_kpps", "UDP 64 B pps, trafgen")]
    natd = [r for r in rows if r is not kernel]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(1, len(natd))
    for i, r in enumerate(natd):
        xs = [m + i * width for m in range(len(metrics))]
        ax.bar(xs, [ratio(r, k) or 0 for k, _ in metrics], width, label=r["system"])
    ax.axhline(1.0, color="black", linewidth=1, linestyle="--", label="kernel nft masquerade = 1")
    ax.set_xticks([m + width * (len(natd) - 1) / 2 for m in range(len(metrics))])
    ax.set_xticklabels([name for _, name in metrics])
    ax.set_ylabel("natd / kernel")
    ax.set_title("natd vs the kernel's NAT, same lab, same run")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{out}/ratios.png", dpi=100)
except ImportError:
    print("matplotlib missing: no plot")
