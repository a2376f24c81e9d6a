"""The cluster description (docs/planner.md) as tools/emulate reads it: the same sections, keys,
units, comments and errors as edgepipe's parser (src/cluster.cpp), plus the node keys the
emulator needs: `cpu` (cores, a plain number) and `loss` (`0.5%` or a fraction). Every error
names the file and the line, as the C++ parser's do.

Links: between ranks A and B, bandwidth min(bw_A, bw_B), latency max(lat_A, lat_B) and loss
max(loss_A, loss_B) (a rank's own value, else [link]'s); then [link.A-B] / [link.A>B] sections
override, in file order. Rank 0 is the dispatcher.
"""
import math
import re

KI = 1024.0
MI = KI * 1024
GI = MI * 1024
TI = GI * 1024

BYTE_UNITS = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
              "KiB": KI, "MiB": MI, "GiB": GI, "TiB": TI}
BANDWIDTH_UNITS = {"bit/s": 1 / 8.0, "kbit/s": 1e3 / 8, "Mbit/s": 1e6 / 8, "Gbit/s": 1e9 / 8,
                   "bps": 1 / 8.0, "kbps": 1e3 / 8, "Mbps": 1e6 / 8, "Gbps": 1e9 / 8,
                   "B/s": 1, "kB/s": 1e3, "KB/s": 1e3, "MB/s": 1e6, "GB/s": 1e9,
                   "KiB/s": KI, "MiB/s": MI, "GiB/s": GI}
TIME_UNITS = {"s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}

RANK_KEYS = "count, name, speed, block_ms, memory, bandwidth, latency, cpu, loss"
DISPATCHER_KEYS = "name, bandwidth, latency, cpu, loss; the dispatcher runs no stage"
LINK_KEYS = "bandwidth, latency, loss"


class ClusterError(Exception):
    pass


_NUMBER = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")


def split_number(text):
    """'12.5 MiB' -> (12.5, 'MiB'), as strtod reads it."""
    t = text.strip()
    if not t:
        raise ClusterError("empty value")
    m = _NUMBER.match(t)
    if not m:
        raise ClusterError(f"'{t}' does not start with a number")
    v = float(m.group(1))
    if not math.isfinite(v):
        raise ClusterError(f"'{t}' is out of range")
    if v < 0:
        raise ClusterError(f"'{t}' is negative")
    return v, t[m.end():].strip()


def with_unit(text, units, unit_needed, what, examples):
    v, unit = split_number(text)
    if not unit and not unit_needed:
        return v
    if not unit:
        raise ClusterError(f"'{text.strip()}' needs a unit, e.g. {examples}")
    if unit in units:
        return v * units[unit]
    raise ClusterError(f"'{text.strip()}': unknown {what} unit '{unit}' (known: {', '.join(units)})")


def parse_bytes(text):
    return with_unit(text, BYTE_UNITS, False, "size", "512MiB or 2GB")


def parse_bandwidth(text):
    v = with_unit(text, BANDWIDTH_UNITS, True, "bandwidth", "100Mbit/s or 12.5MB/s")
    if not v > 0:
        raise ClusterError(f"a bandwidth must be above 0, got '{text.strip()}'")
    return v


def parse_duration(text):
    return with_unit(text, TIME_UNITS, True, "time", "1ms or 250us")


def parse_plain(text, what):
    v, unit = split_number(text)
    if unit:
        raise ClusterError(f"'{text.strip()}' is not a plain number ({what})")
    return v


def parse_cpu(text):
    v = parse_plain(text, "cpu is the node's CPU share in cores, e.g. 0.2")
    if not v > 0:
        raise ClusterError("cpu must be above 0")
    return v


def parse_loss(text):
    t = text.strip()
    if t.endswith("%"):
        v, unit = split_number(t[:-1])
        if unit:
            raise ClusterError(f"'{t}' is not a percentage like 0.5%")
        v /= 100.0
    else:
        v = parse_plain(t, "loss is a percentage like 0.5% or a fraction like 0.005")
    if not v < 1:
        raise ClusterError(f"loss '{t}' must be below 100%")
    return v


def parse_index(text):
    t = text.strip()
    if not (t and len(t) <= 9 and t.isdigit() and t.isascii()):
        raise ClusterError(f"'{t}' is not a whole number")
    return int(t)


def parse_rank_set(text):
    out = []
    for item in text.split(","):
        if ".." in item:
            a, b = item.split("..", 1)
            a, b = parse_index(a), parse_index(b)
            if a > b:
                raise ClusterError(f"'{item.strip()}' is an empty range")
            out.extend(range(a, b + 1))
        else:
            out.append(parse_index(item))
    if not out:
        raise ClusterError(f"no ranks in '{text}'")
    return out


def parse_number_list(text):
    out = []
    for item in text.split(","):
        out.append(parse_plain(item, "write times in ms"))
    return out


def read_ini(text, source):
    sections = []
    for line_no, raw in enumerate(text.splitlines(), 1):
        line = ""
        for i, ch in enumerate(raw):
            if ch in "#;" and (i == 0 or raw[i - 1].isspace()):
                break
            line += ch
        line = line.strip()
        if not line:
            continue
        if line[0] == "[":
            if line[-1] != "]":
                raise ClusterError(f"{source}:{line_no}: a section header needs a closing ']': {line}")
            name = line[1:-1].strip()
            if not name:
                raise ClusterError(f"{source}:{line_no}: empty section name")
            for s in sections:
                if s["name"] == name:
                    raise ClusterError(f"{source}:{line_no}: section [{name}] appears twice (first on line {s['line']})")
            sections.append({"name": name, "line": line_no, "entries": []})
            continue
        if "=" not in line:
            raise ClusterError(f"{source}:{line_no}: expected 'key = value' or [section], got: {line}")
        key, value = line.split("=", 1)
        key, value = key.strip(), value.strip()
        if not key:
            raise ClusterError(f"{source}:{line_no}: missing key before '='")
        if not sections:
            raise ClusterError(f"{source}:{line_no}: '{key}' is outside any section (start with e.g. [link] or [rank.1])")
        sec = sections[-1]
        if not value:
            raise ClusterError(f"{source}:{line_no}: [{sec['name']}] {key}: missing value")
        for e in sec["entries"]:
            if e[1] == key:
                raise ClusterError(f"{source}:{line_no}: [{sec['name']}] {key} is set twice (first on line {e[0]})")
        sec["entries"].append((line_no, key, value))
    return sections


class Node:
    """One rank: 0 = the dispatcher."""

    def __init__(self, rank, section, line):
        self.rank = rank
        self.section = section
        self.line = line
        self.name = ""
        self.speed = None
        self.block_ms = None
        self.memory = None  # bytes; None = no limit
        self.cpu = None  # cores; None = an equal share of what is left (tools/emulate)
        self.bandwidth = None
        self.latency = None
        self.loss = None
        self.count = 1


class Cluster:
    def __init__(self):
        self.source = ""
        self.nodes = []  # index = rank
        self.bw = []  # bw[a][b] bytes/s
        self.lat = []  # seconds, one way
        self.loss = []  # fraction

    @property
    def stage_ranks(self):
        return len(self.nodes) - 1

    def subset(self, n):
        """The dispatcher and ranks 1..n only."""
        if n < 1 or n > self.stage_ranks:
            raise ClusterError(f"{self.source}: --nodes {n}: the file describes {self.stage_ranks} stage ranks")
        c = Cluster()
        c.source = self.source
        c.nodes = self.nodes[: n + 1]
        c.bw = [row[: n + 1] for row in self.bw[: n + 1]]
        c.lat = [row[: n + 1] for row in self.lat[: n + 1]]
        c.loss = [row[: n + 1] for row in self.loss[: n + 1]]
        return c


def load_cluster(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ClusterError(f"cannot read the cluster description {path}: {e.strerror}")
    return parse_cluster(text, path)


def parse_cluster(text, source):
    sections = read_ini(text, source)
    default = {"bandwidth": None, "latency": None, "loss": None}
    dispatcher = Node(0, "dispatcher", 0)
    rank_sections = []
    link_sections = []

    for sec in sections:
        name = sec["name"]
        where_sec = f"{source}:{sec['line']}: [{name}]"

        def where(e):
            return f"{source}:{e[0]}: [{name}] {e[1]}"

        def value_of(e, parse):
            try:
                return parse(e[2])
            except ClusterError as err:
                raise ClusterError(f"{where(e)}: {err}")

        def unknown(e, known):
            raise ClusterError(f"{where(e)}: unknown key (known here: {known})")

        if name == "link":
            for e in sec["entries"]:
                if e[1] == "bandwidth":
                    default["bandwidth"] = value_of(e, parse_bandwidth)
                elif e[1] == "latency":
                    default["latency"] = value_of(e, parse_duration)
                elif e[1] == "loss":
                    default["loss"] = value_of(e, parse_loss)
                else:
                    unknown(e, LINK_KEYS)
        elif name.startswith("link."):
            pair = name[5:]
            both = True
            if ">" in pair:
                both = False
                a, b = pair.split(">", 1)
            elif "-" in pair:
                a, b = pair.split("-", 1)
            else:
                raise ClusterError(f"{where_sec}: a link section names two rank sets, e.g. [link.1-2] (both ways), "
                                   "[link.1>2] (one way) or [link.1..4-5..8]")
            try:
                ls = {"from": parse_rank_set(a), "to": parse_rank_set(b), "both": both,
                      "line": sec["line"], "section": name, "bandwidth": None, "latency": None, "loss": None}
            except ClusterError as err:
                raise ClusterError(f"{where_sec}: {err}")
            for e in sec["entries"]:
                if e[1] == "bandwidth":
                    ls["bandwidth"] = value_of(e, parse_bandwidth)
                elif e[1] == "latency":
                    ls["latency"] = value_of(e, parse_duration)
                elif e[1] == "loss":
                    ls["loss"] = value_of(e, parse_loss)
                else:
                    unknown(e, LINK_KEYS)
            if ls["bandwidth"] is None and ls["latency"] is None and ls["loss"] is None:
                raise ClusterError(f"{where_sec}: set bandwidth, latency and/or loss")
            link_sections.append(ls)
        elif name == "dispatcher" or name.startswith("rank."):
            is_dispatcher = name == "dispatcher"
            first = 0
            if not is_dispatcher:
                try:
                    first = parse_index(name[5:])
                except ClusterError as err:
                    raise ClusterError(f"{where_sec}: {err} (rank sections are [rank.1], [rank.2], ...)")
                if first < 1:
                    raise ClusterError(f"{where_sec}: rank 0 is the dispatcher: describe its links in [dispatcher]")
            rs = Node(first, name, sec["line"])
            has_speed = False
            has_memory = False
            for e in sec["entries"]:
                k = e[1]
                if k == "name":
                    rs.name = e[2]
                elif k == "bandwidth":
                    rs.bandwidth = value_of(e, parse_bandwidth)
                elif k == "latency":
                    rs.latency = value_of(e, parse_duration)
                elif k == "cpu":
                    rs.cpu = value_of(e, parse_cpu)
                elif k == "loss":
                    rs.loss = value_of(e, parse_loss)
                elif is_dispatcher:
                    unknown(e, DISPATCHER_KEYS)
                elif k == "count":
                    rs.count = value_of(e, parse_index)
                    if rs.count < 1:
                        raise ClusterError(f"{where(e)}: must be at least 1")
                elif k == "speed":
                    def speed(v):
                        s = parse_plain(v, "speed is relative: 1.0 = the reference")
                        if not s > 0:
                            raise ClusterError("speed must be above 0")
                        return s
                    rs.speed = value_of(e, speed)
                    has_speed = True
                elif k == "memory":
                    rs.memory = value_of(e, parse_bytes)
                    has_memory = True
                elif k == "block_ms":
                    rs.block_ms = value_of(e, parse_number_list)
                else:
                    unknown(e, RANK_KEYS)
            if has_speed and rs.block_ms:
                raise ClusterError(f"{where_sec}: set speed or block_ms, not both (block_ms overrides speed)")
            if is_dispatcher:
                dispatcher = rs
            else:
                if not has_memory:
                    raise ClusterError(f"{where_sec}: memory is missing (what one stage may use on this rank, e.g. memory = 512MiB)")
                rank_sections.append(rs)
        else:
            raise ClusterError(f"{where_sec}: unknown section (known: [link], [link.A-B], [link.A>B], [dispatcher], [rank.N])")

    if not rank_sections:
        raise ClusterError(f"{source}: no stage ranks: add e.g. [rank.1] with count, speed and memory")
    R = max(rs.rank + rs.count - 1 for rs in rank_sections)
    if R > 100000:
        raise ClusterError(f"{source}: too many ranks ({R})")
    owner = [None] * (R + 1)
    owner[0] = dispatcher
    for rs in rank_sections:
        for r in range(rs.rank, rs.rank + rs.count):
            if owner[r] is not None:
                o = owner[r]
                raise ClusterError(f"{source}:{rs.line}: [{rs.section}]: rank {r} is already described by [{o.section}] on line {o.line}")
            owner[r] = rs
    for r in range(1, R + 1):
        if owner[r] is None:
            raise ClusterError(f"{source}: rank {r} is not described (ranks are numbered 1..{R} without gaps; use count = N to repeat a rank)")

    c = Cluster()
    c.source = source
    for r in range(R + 1):
        o = owner[r]
        n = Node(r, o.section, o.line)
        for attr in ("name", "speed", "block_ms", "memory", "cpu", "bandwidth", "latency", "loss"):
            setattr(n, attr, getattr(o, attr))
        c.nodes.append(n)

    def nic(own, dflt):
        return own if own is not None else dflt

    c.bw = [[None] * (R + 1) for _ in range(R + 1)]
    c.lat = [[0.0] * (R + 1) for _ in range(R + 1)]
    c.loss = [[0.0] * (R + 1) for _ in range(R + 1)]
    for a in range(R + 1):
        for b in range(R + 1):
            if a == b:
                continue
            na, nb = c.nodes[a], c.nodes[b]
            bwa, bwb = nic(na.bandwidth, default["bandwidth"]), nic(nb.bandwidth, default["bandwidth"])
            c.bw[a][b] = min(bwa, bwb) if bwa is not None and bwb is not None else None
            c.lat[a][b] = max(nic(na.latency, default["latency"]) or 0.0, nic(nb.latency, default["latency"]) or 0.0)
            c.loss[a][b] = max(nic(na.loss, default["loss"]) or 0.0, nic(nb.loss, default["loss"]) or 0.0)
    for ls in link_sections:
        for a in ls["from"]:
            for b in ls["to"]:
                if a > R or b > R:
                    raise ClusterError(f"{source}:{ls['line']}: [{ls['section']}]: rank {max(a, b)} does not exist (ranks are 0..{R}, 0 = the dispatcher)")
                if a == b:
                    continue
                for x, y in ((a, b), (b, a)) if ls["both"] else ((a, b),):
                    if ls["bandwidth"] is not None:
                        c.bw[x][y] = ls["bandwidth"]
                    if ls["latency"] is not None:
                        c.lat[x][y] = ls["latency"]
                    if ls["loss"] is not None:
                        c.loss[x][y] = ls["loss"]
    for a in range(R + 1):
        for b in range(R + 1):
            if a != b and not (c.bw[a][b] and c.bw[a][b] > 0):
                raise ClusterError(f"{source}: no bandwidth for the link from rank {a} to rank {b}: set bandwidth in [link] "
                                   f"(the default), in the ranks' sections, or in a [link.{a}-{b}] section")
    return c


def format_bandwidth(bps):
    bits = bps * 8
    if bits >= 1e9:
        return f"{bits / 1e9:.3g} Gbit/s"
    if bits >= 1e6:
        return f"{bits / 1e6:.3g} Mbit/s"
    return f"{bits / 1e3:.3g} kbit/s"


def format_duration(s):
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} us"


def format_bytes(b):
    if b >= GI:
        return f"{b / GI:.2f} GiB"
    if b >= MI:
        return f"{b / MI:.1f} MiB"
    if b >= KI:
        return f"{b / KI:.1f} KiB"
    return f"{b:.0f} B"
