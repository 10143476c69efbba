"""The pieces of tools/bench, the benchmark command (see its docstring).

  procfs     CPU time, resident memory, sockets and CPU affinity from /proc
  processes  starting, pinning and stopping the run's processes; waiting on them
  targets    the five targets: direct, relay, haproxy, nginx, switchboard
  measure    the scenarios and one measurement of one target
  http       the HTTP scenarios' origin (a static nginx) and load generator (wrk)
  storm      the reconnect storm: four backends, one killed, sb-storm's clients
  report     the table (text and Markdown), its notes and the RTT plot
  host       peers from Debian, the release build, descriptor limits, machine facts
  tls        the wss scenarios' certificate (ECDSA P-256), shared with tools/ops-bench
"""
