"""Fault scenarios run many times over: ``python -m bench.faults --runs N [--scenario NAME]``.

Each run starts a broker of its own (fs_bus.local.broker, real Kafka), one or two
``fs-bus node`` processes and a function, writes a steady stream of numbered records
``kNN:SEQ``, injects one fault mid-stream, and then checks the outputs:

- **lost**: records the broker acknowledged whose result never came out (must be 0);
- **duplicates**: results that came out more than once (exactly-once: must be 0;
  at-least-once: bounded by what the last commit point allows);
- **recover_s**: from the fault's end (broker resumed or restarted; for a frozen node,
  from its freeze: the group is meant to carry on without it) until every record
  acknowledged by then has its result.

The scenarios (``SCENARIOS``) are what tests/integration/test_fault_scenarios.py runs
once each; .ci/faults runs them 20 times each.
"""
