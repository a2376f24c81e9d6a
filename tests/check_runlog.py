#!/usr/bin/python3
"""Cross-checks an edgepipe run log with h5py alone (no edgepipe code): the figures of /summary
against the outputs file and the per-rank records; for every stage rank, that each part of its
main thread (receive wait, decode, compute, encode, probe, drain) was measured, that the parts do not
exceed its wall time, and the goal that they account for it within 2%: what no part measured is
wall minus the parts, so leaving a part out shows as unexplained time. Ranks' clocks: a batch is
computed after the rank before sent it. Memory: each stage rank's figures by phase are there,
positive, and consistent (no peak below the baseline).

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


def check_stage(f, g, r, t, traced, overlap, bound, sent):
    """A stage rank: each part of its main thread measured by its own clock, their sum within
    its wall time, and what no part measured (wall minus the parts) below `bound`."""
    # A part the log lacks (a log from before it was measured) counts as not measured: 0.
    t = {k: t.get(k, 0.0) for k in set(t.keys()) | {"time_probe_s"}}
    w = t["wall_s"]
    batches = int(t["batches"])
    # With --overlap the blocks compute on a thread of their own: the main thread's span holds
    # its idle time while a batch computed (time_compute_wait_s) instead.
    compute = "time_compute_wait_s" if overlap else "time_compute_s"
    parts = ("time_recv_wait_s", "time_decode_s", compute, "time_send_wait_s", "time_encode_s",
             "time_probe_s", "time_drain_s")
    measured = [k for k in ("time_recv_wait_s", "time_decode_s", "time_compute_s",
                            "time_encode_s", "time_probe_s", "time_drain_s") if t[k] > 0]
    check(batches > 0 and len(measured) == 6,
          f"rank {r}: {batches} batches; receive wait, decode, compute, encode, probe, drain each "
          f"measured (> 0: {', '.join(k[5:-2] for k in measured)})")
    check((t["time_compute_wait_s"] > 0) == overlap,
          f"rank {r}: compute wait {t['time_compute_wait_s']:.6f} s "
          f"({'> 0 with' if overlap else '0 without'} --overlap)")
    named = sum(t[k] for k in parts)
    unexplained = (w - named) / w
    # The parts are disjoint spans of one clock inside the wall span: their sum cannot exceed it.
    check(w - named > -1e-9 * (batches + 1),
          f"rank {r}: measured parts {named:.6f} s do not exceed its wall time {w:.6f} s")
    check(unexplained < bound,
          f"rank {r}: measured parts account for {100 * named / w:.2f}% of its wall time "
          f"{w:.4f} s (unexplained {100 * unexplained:.2f}%, limit {100 * bound:.0f}%)")
    if not traced:
        return
    b = g["batches"][:]
    check(len(b) == t["batches"], f"rank {r}: one record per batch ({len(b)})")
    check(np.all(b["seq"] == np.arange(len(b))), f"rank {r}: records in batch order")
    span = b["t_end_s"] - b["t_begin_s"]
    rparts = sum(b[k] for k in parts[:-1] if k in b.dtype.names)
    # A record's compute and encode are its own batch's (both > 0); its decode and waits may be
    # another's, and without --overlap its batch may have computed inside the previous record's
    # span: only the records' sums are bounded.
    check(np.all((b["time_compute_s"] > 0) & (b["time_encode_s"] > 0)),
          f"rank {r}: every record has its compute and encode measured")
    rest = (span.sum() - rparts.sum()) / span.sum()
    check(rest < bound, f"rank {r}: records' unexplained {100 * rest:.2f}% of their spans "
          f"(limit {100 * bound:.0f}%)")
    for k in ("time_recv_wait_s", "time_decode_s", "time_send_wait_s", "time_encode_s"):
        check(b[k].sum() <= t[k] + 1e-9,
              f"rank {r}: records' {k[5:-2]} {b[k].sum():.6f} s <= totals {t[k]:.6f} s")
    check(close(b["time_compute_s"].sum(), t["time_compute_s"], rel=1e-9),
          f"rank {r}: records' compute {b['time_compute_s'].sum():.6f} s == totals")
    # Clock alignment: a batch cannot arrive at a stage before the rank before it sent it (rank
    # 0's t_sent_s, or the previous stage's t_end_s), within the alignments' errors (half their
    # round trips) plus a margin for the clock reads. A record ends when its batch's output is
    # sent, after the batch's compute and encode (a record's compute and encode are its own
    # batch's; its decode and waits may be another's: the worker receives the next batch while
    # this one waits or computes).
    stage = int(g.attrs["stage"])
    prev = "rank 0" if stage == 0 else f"stage {stage - 1}"
    tol = g.attrs["clock_rtt_s"] / 2 + 1e-3
    if stage == 0:
        before = sent["t_sent_s"]
    else:
        pg = next(f["ranks"][q] for q in f["ranks"] if int(f["ranks"][q].attrs["stage"]) == stage - 1)
        before = pg["batches"]["t_end_s"]
        tol += pg.attrs["clock_rtt_s"] / 2
    n = min(len(b), len(before))
    arrive = b["t_end_s"][:n] - b["time_compute_s"][:n] - b["time_encode_s"][:n]
    slack = arrive - before[:n]
    check(slack.min() > -tol, f"rank {r}: every batch computed after {prev} sent it "
          f"(min {1e3 * slack.min():.3f} ms, tolerance -{1e3 * tol:.3f} ms)")


MEMORY = ("rss_baseline_bytes", "peak_rss_profile_bytes", "rss_after_profile_bytes",
          "rss_after_profile_trim_bytes", "stage_archive_bytes", "peak_rss_load_bytes",
          "rss_after_load_bytes", "rss_after_load_trim_bytes", "peak_rss_stream_bytes",
          "rss_end_bytes", "stage_planned_memory_bytes")


def check_memory(r, t):
    """A stage rank's memory by phase: every figure present and positive, no peak below the
    baseline or below the resident memory at the end of its own phase, and the life's peak the
    largest. The goal (peak within baseline + 1.5 x the stage's planned memory) is printed, not
    checked: the start-up profiling misses it today (docs/performance.md)."""
    M = 2.0 ** 20
    missing = [k for k in MEMORY if k not in t]
    check(not missing, f"rank {r}: memory by phase recorded"
          + (f" (missing: {', '.join(missing)})" if missing else ""))
    if missing:
        return
    bad = [k for k in MEMORY if not t[k] > 0]
    check(not bad, f"rank {r}: memory figures positive" + (f" (not: {', '.join(bad)})" if bad else ""))
    base = t["rss_baseline_bytes"]
    peaks = ("peak_rss_profile_bytes", "peak_rss_load_bytes", "peak_rss_stream_bytes")
    check(all(base <= t[k] for k in peaks),
          f"rank {r}: baseline {base / M:.1f} MiB <= each phase's peak "
          f"({', '.join(f'{t[k] / M:.1f}' for k in peaks)} MiB)")
    if int(t.get("peaks_per_phase", 0)) == 1:
        ends = (("peak_rss_profile_bytes", "rss_after_profile_bytes"),
                ("peak_rss_load_bytes", "rss_after_load_bytes"),
                ("peak_rss_stream_bytes", "rss_after_load_trim_bytes"),
                ("peak_rss_stream_bytes", "rss_end_bytes"))
        check(all(t[p] >= t[e] for p, e in ends),
              f"rank {r}: each phase's peak >= the resident memory at its ends")
    check(t["peak_rss_bytes"] >= max(t[k] for k in peaks),
          f"rank {r}: life's peak {t['peak_rss_bytes'] / M:.1f} MiB >= every phase's peak")
    bound = base + 1.5 * t["stage_planned_memory_bytes"]
    print(f"info  rank {r}: peak {max(t[k] for k in peaks) / M:.1f} MiB (stream "
          f"{t['peak_rss_stream_bytes'] / M:.1f}) against baseline + 1.5 x planned = "
          f"{bound / M:.1f} MiB")


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
            # Set-up: what rank 0 sent it, and whether its stage came from its node's cache.
            hit, sent = g.attrs.get("stage_cache_hit", -1), g.attrs.get("setup_bytes", 0)
            check(hit in (0, 1) and sent > 0,
                  f"rank {r}: set-up {int(sent)} bytes from rank 0, stage "
                  f"{'from the stage cache' if hit == 1 else 'sent' if hit == 0 else 'not recorded'}")
            check_memory(r, t)
            check_stage(f, g, r, t, traced, overlap, args.max_unexplained, d if traced else None)
        check(close(energy, s["energy_j"]), f"/summary energy_j {s['energy_j']:.3f} == sum of ranks")
        check(close(s["energy_per_image_j"], energy / images), "energy_per_image_j == energy / images")
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
