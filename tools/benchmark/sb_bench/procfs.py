"""Readings from /proc: what a measurement charges to a target's processes."""

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid):
    """The fields of /proc/PID/stat after the command name, which may hold spaces
    and parentheses (so split after the last ')'). fields[0] is field 3 of proc(5)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def process_tree(pid):
    """pid and all its descendants (for nginx: the master and its workers)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(_stat_fields(entry)[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def cpu_seconds(pids):
    """utime + stime of the processes, all their threads included, in seconds (the
    kernel counts in clock ticks, 1/CLK_TCK s)."""
    ticks = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return ticks / CLK_TCK


def core_seconds(cpu):
    """(busy, steal) seconds of one CPU since boot, from /proc/stat: busy is every
    tick that was not idle or iowait, whichever process ran; steal is time the
    hypervisor gave to other guests.

    Busy includes irq and softirq. With tick accounting (a kernel without
    CONFIG_IRQ_TIME_ACCOUNTING, as here) a tick that lands in a softirq counts both
    as the core's softirq time and in the running process's stime, and a proxy
    spends a quarter of its time there: loopback delivers each segment it sends in
    its own softirq. Left out, the core looked 25 points less busy than the proxy
    on it, and "other programs" read that much too low (0 unless they took more). With IRQ_TIME_ACCOUNTING, interrupt
    time is in neither a process's time nor system, and shows as others."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:9]]
                user, nice, system, _idle, _iowait, irq, softirq, steal = v
                return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK
    return 0.0, 0.0


def rss_bytes(pids):
    """Resident memory of the processes (VmRSS), summed, in bytes."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def socket_count(pid):
    """How many sockets the process has open."""
    n = 0
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def cpus_allowed(pid):
    """The process's CPU affinity as the kernel prints it ("1", "0-1"), to record
    that the pinning took."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Cpus_allowed_list:"):
                    return line.split()[1]
    except OSError:
        pass
    return "?"
