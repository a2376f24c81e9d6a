# Shared by the tools/emulate tests: results, and a snapshot of what an emulator could leave
# behind (sourced; not run).
passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
say() { echo "--- $*"; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: tools/emulate needs root"
    exit 77
  fi
}

# Everything of an emulator instance that could outlive it, one item a line: network
# namespaces (ip netns, nsfs mounts, the net namespaces of every process), links of the root
# namespace, cgroups, state dirs, and processes that name a state dir or run the switch.
snapshot() {
  ip netns list 2>/dev/null | awk '{print "netns " $1}'
  awk '$9 == "nsfs" {print "nsfs-mount " $5}' /proc/self/mountinfo
  awk '$5 ~ /^\/run\/edgepipe-emulate/ {print "mount " $5}' /proc/self/mountinfo
  for p in /proc/[0-9]*; do readlink "$p/ns/net" 2>/dev/null; done | sort -u | sed 's/^/process-netns /'
  ip -o link show | awk -F': ' '{print "link " $2}' | sed 's/@.*//'
  for c in /sys/fs/cgroup/*/; do
    for d in "$c"edgepipe-emulate-*; do [ -e "$d" ] && echo "cgroup $d"; done
  done
  [ -d /run/edgepipe-emulate ] && find /run/edgepipe-emulate -mindepth 1 -maxdepth 1 | sed 's/^/state /'
  # processes: the switch (by its executable), and any that names a state dir or a namespace
  # of the emulator (mpirun, orteds, the ranks, probes); the test's own scripts name neither
  for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || exe=""
    cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
    case $exe in */edgepipe-switch) echo "process ${p#/proc/} $cmd"; continue ;; esac
    case $cmd in
      */run/edgepipe-emulate/* | *epemu-*) echo "process ${p#/proc/} $cmd" ;;
    esac
  done
}

# compare_snapshot BEFORE AFTER WHAT: pass if nothing new (processes of other users of the
# machine may come and go: only emulator items and namespaces count)
compare_snapshot() {
  local new
  new=$(comm -13 <(sort "$1") <(sort "$2") | grep -Ev '^process-netns ' || true)
  # a net namespace held by a process is a leftover only if no process had it before and it is
  # not the root one: count those separately
  local nsnew
  nsnew=$(comm -13 <(grep '^process-netns ' "$1" | sort) <(grep '^process-netns ' "$2" | sort) || true)
  if [ -z "$new" ] && [ -z "$nsnew" ]; then
    pass "$3: nothing left (namespaces, mounts, links, cgroups, state, processes)"
  else
    fail "$3: left behind:"
    printf '%s\n%s\n' "$new" "$nsnew" | grep . | sed 's/^/    /'
  fi
}
