#!/usr/bin/python3
"""Plots an edgepipe run log (docs/runlog.md) as PNG files, with h5py and matplotlib only.

  tools/plot_run.py RUN.log.h5 -o DIR

writes DIR/timeline.png (one lane per rank: idle, receive, compute, send), DIR/utilisation.png
(per rank: where its wall time went) and DIR/throughput.png (images/s over the run).
"""
import argparse
import os
import sys

import h5py
import matplotlib

matplotlib.use("Agg")  # files only: no display needed (Slurm nodes, CI)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# Categories of the timeline, as in the issue: idle (waiting for input), receive (decoding the
# frame), compute, send (encoding, and waiting for an earlier send to complete).
COLOURS = {"idle": "#d9d9d9", "receive": "#6baed6", "compute": "#31a354", "send": "#fd8d3c"}


def text(v):
    """h5py gives fixed-length string attributes as bytes."""
    return v.decode() if isinstance(v, bytes) else str(v)


def stage_segments(b):
    """Per category, (start, width) pairs of a stage rank's batches, in the order the worker
    does them: wait, decode, compute, send wait, encode."""
    t = b["t_begin_s"].astype(float)
    out = {k: [] for k in COLOURS}
    parts = [("idle", "time_recv_wait_s"), ("receive", "time_decode_s"),
             ("compute", "time_compute_s"), ("send", "time_send_wait_s"),
             ("send", "time_encode_s")]
    for cat, field in parts:
        w = b[field].astype(float)
        out[cat].extend(zip(t, w))
        t = t + w
    return out


def dispatcher_segments(d):
    out = {k: [] for k in COLOURS}
    sent = d["t_sent_s"]
    busy_in = d["time_read_s"] + d["time_encode_s"]
    out["send"].extend(zip(sent - busy_in, busy_in))
    arrived = d["t_arrived_s"]
    ok = arrived > 0
    busy_out = (d["time_decode_s"] + d["time_write_s"])[ok]
    out["receive"].extend(zip(arrived[ok] - busy_out, busy_out))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("log", help="run log (edgepipe run --log, default OUTPUT.log.h5)")
    ap.add_argument("-o", "--out", default=".", help="folder for the PNG files")
    ap.add_argument("--window", help="timeline between T0,T1 seconds only (long runs), e.g. 2,2.5")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    written = []
    with h5py.File(args.log, "r") as f:
        ranks = sorted(f["ranks"], key=int)
        title = f"{os.path.basename(text(f['run'].attrs['model']))}: " \
                f"{f['summary'].attrs['images_per_s']:.1f} images/s, " \
                f"bottleneck {text(f['summary'].attrs['bottleneck_cause'])}"
        traced = all(len(f["ranks"][r]["batches"]) > 0 for r in ranks)

        if traced:
            fig, ax = plt.subplots(figsize=(12, 1 + 0.6 * len(ranks)))
            for lane, r in enumerate(ranks):
                g = f["ranks"][r]
                b = g["batches"][:]
                segs = dispatcher_segments(b) if g.attrs["stage"] < 0 else stage_segments(b)
                for cat, pairs in segs.items():
                    if pairs:
                        ax.broken_barh(pairs, (lane - 0.4, 0.8), facecolors=COLOURS[cat],
                                       linewidth=0)
            ax.set_yticks(range(len(ranks)))
            ax.set_yticklabels([f"rank {r}" + (" (in/out)" if f["ranks"][r].attrs["stage"] < 0
                                               else f" (stage {f['ranks'][r].attrs['stage']})")
                                for r in ranks])
            ax.invert_yaxis()
            if args.window:
                ax.set_xlim(*[float(x) for x in args.window.split(",")])
            ax.set_xlabel("time since the stream started (s, rank 0's clock)")
            ax.set_title("pipeline timeline - " + title)
            ax.legend(handles=[matplotlib.patches.Patch(color=c, label=k)
                               for k, c in COLOURS.items()], loc="upper center",
                      bbox_to_anchor=(0.5, -0.25), ncol=4, frameon=False)
            fig.tight_layout()
            written.append(os.path.join(args.out, "timeline.png"))
            fig.savefig(written[-1], dpi=110)
            plt.close(fig)

        # Where each stage rank's wall time went.
        parts = [("compute", "time_compute_s", COLOURS["compute"]),
                 ("codec", None, "#9e9ac8"),
                 ("waiting to receive", "time_recv_wait_s", COLOURS["idle"]),
                 ("waiting to send", "time_send_wait_s", COLOURS["send"]),
                 ("end of stream", "time_drain_s", "#bdbdbd"),
                 ("other", "time_other_s", "#636363")]
        stages = [r for r in ranks if f["ranks"][r].attrs["stage"] >= 0]
        fig, ax = plt.subplots(figsize=(8.5, 4))
        bottom = np.zeros(len(stages))
        for label, key, colour in parts:
            vals = []
            for r in stages:
                t = f["ranks"][r]["totals"].attrs
                v = t["time_encode_s"] + t["time_decode_s"] if key is None else t[key]
                vals.append(100 * v / t["wall_s"])
            ax.bar([f"stage {f['ranks'][r].attrs['stage']}\n(rank {r})" for r in stages], vals,
                   bottom=bottom, color=colour, label=label)
            bottom += np.array(vals)
        ax.set_ylabel("% of the rank's wall time")
        ax.set_title("per-stage utilisation")
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
        fig.tight_layout()
        written.append(os.path.join(args.out, "utilisation.png"))
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

        if traced:
            d = f["ranks"]["0"]["batches"][:]
            arrived = np.sort(d["t_arrived_s"][d["t_arrived_s"] > 0])
            if len(arrived) >= 2:
                batch = int(f["summary"].attrs["batch_size"])
                bins = max(5, min(50, len(arrived) // 4))
                counts, edges = np.histogram(arrived, bins=bins, range=(0, arrived[-1]))
                width = edges[1] - edges[0]
                fig, ax = plt.subplots(figsize=(8, 3.5))
                ax.stairs(counts * batch / width, edges, label="outputs per time bin")
                ax.axhline(f["summary"].attrs["steady_images_per_s"], ls="--", color="grey",
                           label="steady state (summary)")
                ax.set_xlabel("time since the stream started (s)")
                ax.set_ylabel("images/s")
                ax.set_ylim(bottom=0)
                ax.set_title("throughput over time (outputs received by rank 0)")
                ax.legend()
                fig.tight_layout()
                written.append(os.path.join(args.out, "throughput.png"))
                fig.savefig(written[-1], dpi=110)
                plt.close(fig)
        else:
            print("plot_run.py: no per-batch records (run with --no-trace): timeline and "
                  "throughput skipped", file=sys.stderr)
    for w in written:
        print(w)


if __name__ == "__main__":
    main()
