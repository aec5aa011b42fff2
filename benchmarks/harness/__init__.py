"""The comparison harness every benchmark case uses; each part is written once.

Modules, leaves first (a module imports only those above it, so there is no
cycle; ``tests/test_benchmarks_layout.py`` checks it):

* ``formatting``: numbers to text (ns, bytes).
* ``timing``: batches of calls, interleaved; medians and tails.
* ``machine``: CPU, memory, OS, versions; how busy the machine was.
* ``provenance``: which commit and which build are being timed, and the
  refusal to publish from a tree or build that differs from HEAD.
* ``native``: building the C++ helpers in ``benchmarks/`` and the ctypes front
  of ``callback_timer.cpp``.
* ``servers``: JACK servers (from ``audioring.testing``), the PortAudio device
  on them, what jackd logged, and whether realtime scheduling was granted.
* ``recorders``: audioring and its anchors (and the usual resampling
  recipes) behind one interface.
* ``workers``: one scenario in a fresh process (``benchmarks/worker.py``).
* ``gil``: holding the GIL in one C call (busy, sleeping), and redoing a
  stall that fell short of its length.
* ``ramp``: the frame-clock ramp JACK client and the check of a recorded ramp.
* ``charts``: figure set-up, the stamp line, saving.
* ``report``: Markdown head, targets table, JSON; rendering a report.
* ``context``: what ``run.py`` hands every case.
"""
