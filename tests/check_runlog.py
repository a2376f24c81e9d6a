#!/usr/bin/python3
"""Cross-checks an edgepipe run log with h5py alone (no edgepipe code): the figures of /summary
against the outputs file and the per-rank records, and the goal that every stage rank's named
times account for its wall time within 2%.

  check_runlog.py RUN.log.h5 --outputs OUT.h5 [--max-unexplained 0.02]
Exits 1, naming the figure, when a check fails; prints the figures it checked.
"""
import argparse
import sys

import h5py
import numpy as np

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def close(a, b, rel=1e-6, abs_=1e-9):
    return abs(a - b) <= max(abs_, rel * max(abs(a), abs(b)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--outputs", required=True, help="the run's outputs file")
    ap.add_argument("--max-unexplained", type=float, default=0.02)
    args = ap.parse_args()
    with h5py.File(args.log, "r") as f, h5py.File(args.outputs, "r") as out:
        s = f["summary"].attrs
        rows = out["outputs"].shape[0]
        images, wall = int(s["images"]), float(s["wall_s"])
        check(images == rows, f"/summary images {images} == rows of the outputs {rows}")
        check(close(s["images_per_s"], images / wall),
              f"images_per_s {s['images_per_s']:.3f} == images / wall_s = {images / wall:.3f}")
        traced = int(f["run"].attrs["trace"]) == 1
        overlap = int(f["plan"].attrs.get("overlap", 0)) == 1
        ranks = sorted(f["ranks"], key=int)
        check(int(f["run"].attrs["ranks"]) == len(ranks), f"/run ranks == {len(ranks)} groups")
        t0 = f["ranks/0/totals"].attrs
        if traced:
            d = f["ranks/0/batches"][:]
            check(len(d) == s["batches"], f"rank 0 has one record per batch ({len(d)})")
            check(close(d["t_arrived_s"].max(), wall, rel=1e-9),
                  f"wall_s {wall:.6f} == last output's arrival {d['t_arrived_s'].max():.6f}")
            check(close(d["bytes_out"].sum(), t0["bytes_out"]), "rank 0 records sum to its totals")
        link1 = f["links"][0]
        check(close(link1["bytes_frames"], t0["bytes_out"]),
              f"link 1 bytes_frames {link1['bytes_frames']:.0f} == rank 0 bytes_out")
        energy = 0.0
        for r in ranks:
            g = f["ranks"][r]
            t = g["totals"].attrs
            energy += t["energy_j"]
            src = t["energy_source"]
            check(len(src) > 0, f"rank {r} energy {t['energy_j']:.3f} J says its source")
            if int(g.attrs["stage"]) < 0:
                continue
            w = t["wall_s"]
            # With --overlap the blocks compute on a thread of their own: the main thread's
            # span holds its idle time while a batch computed (time_compute_wait_s) instead.
            compute = "time_compute_wait_s" if overlap else "time_compute_s"
            named = sum(t[k] for k in ("time_recv_wait_s", "time_decode_s", compute,
                                       "time_send_wait_s", "time_encode_s", "time_drain_s"))
            check(close(named + t["time_other_s"], w), f"rank {r}: parts + other == wall")
            unexplained = (w - named) / w
            check(abs(unexplained) < args.max_unexplained,
                  f"rank {r}: named times account for {100 * named / w:.2f}% of its wall time "
                  f"{w:.4f} s (unexplained {100 * unexplained:.2f}%, limit "
                  f"{100 * args.max_unexplained:.0f}%)")
            if not traced:
                continue
            b = g["batches"][:]
            check(len(b) == t["batches"], f"rank {r}: one record per batch ({len(b)})")
            check(np.all(b["seq"] == np.arange(len(b))), f"rank {r}: records in batch order")
            dur = b["t_end_s"] - b["t_begin_s"]
            parts = sum(b[k] for k in ("time_recv_wait_s", "time_decode_s", compute,
                                       "time_send_wait_s", "time_encode_s", "time_other_s"))
            check(np.allclose(parts, dur, atol=1e-9), f"rank {r}: each record's parts == its span")
            check(np.allclose(b["t_begin_s"][1:], b["t_end_s"][:-1], atol=1e-12),
                  f"rank {r}: each record starts where the previous ended")
            check(close(b["t_begin_s"][0], g.attrs["t_begin_s"], abs_=1e-9),
                  f"rank {r}: the first record starts at the rank's t_begin")
            check(close(b["time_compute_s"].sum(), t["time_compute_s"], rel=1e-9),
                  f"rank {r}: records' compute {b['time_compute_s'].sum():.6f} s == totals")
            # Clock alignment: a batch cannot arrive at stage 0 before rank 0 sent it (within
            # the alignment's error, half the round trip, plus a margin for the clock reads).
            # A record ends when its batch's output is sent, after the batch's compute and encode
            # (a record's compute and encode are its own batch's; its decode and waits may be
            # another's: the worker receives the next batch while this one waits or computes).
            if int(g.attrs["stage"]) == 0:
                arrive = b["t_end_s"] - b["time_compute_s"] - b["time_encode_s"]
                slack = arrive - d["t_sent_s"][: len(b)]
                tol = g.attrs["clock_rtt_s"] / 2 + 1e-3
                check(slack.min() > -tol, f"rank {r}: every batch computed after rank 0 sent it "
                      f"(min {1e3 * slack.min():.3f} ms, tolerance -{1e3 * tol:.3f} ms)")
        check(close(energy, s["energy_j"]), f"/summary energy_j {s['energy_j']:.3f} == sum of ranks")
        check(close(s["energy_per_image_j"], energy / images), "energy_per_image_j == energy / images")
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
