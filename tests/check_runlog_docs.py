#!/usr/bin/python3
"""Checks that docs/runlog.md documents everything a run log holds: every group, dataset,
attribute and compound field name that appears in the given logs must appear in the page inside
backticks (alone or in a path such as `/ranks/<r>/totals`). Groups named by a rank (/ranks/3)
are named `<r>` in the page and skipped.

  check_runlog_docs.py DOCS.md RUN.log.h5 [RUN.log.h5 ...]
Exits 1 naming each name the page lacks (and where it was found).
"""
import re
import sys

import h5py


def documented_names(page):
    names = set()
    page = re.sub(r"^```.*?^```", "", page, flags=re.M | re.S)  # code blocks are not names
    for span in re.findall(r"`([^`\n]+)`", page):
        names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span))
    return names


def names_in(path):
    """(name, where) for every object, attribute and compound field of a log."""
    found = []

    def attrs(obj, where):
        for a in obj.attrs:
            found.append((a, f"attribute of {where}"))

    with h5py.File(path, "r") as f:
        attrs(f, "/")

        def visit(name, obj):
            last = name.split("/")[-1]
            if not last.isdigit():
                kind = "group" if isinstance(obj, h5py.Group) else "dataset"
                found.append((last, f"{kind} /{name}"))
            attrs(obj, "/" + name)
            if isinstance(obj, h5py.Dataset) and obj.dtype.names:
                for field in obj.dtype.names:
                    found.append((field, f"field of /{name}"))

        f.visititems(visit)
    return found


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as page:
        documented = documented_names(page.read())
    missing = {}
    total = set()
    for log in sys.argv[2:]:
        for name, where in names_in(log):
            total.add(name)
            if name not in documented:
                missing.setdefault(name, where + " in " + log)
    for name, where in sorted(missing.items()):
        print(f"FAIL  {name} ({where}) is not in {sys.argv[1]}")
    if missing:
        sys.exit(1)
    print(f"ok    all {len(total)} names in {len(sys.argv) - 2} log(s) are documented in {sys.argv[1]}")


if __name__ == "__main__":
    main()
