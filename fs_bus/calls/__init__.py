"""Request/response calls to a function's ``fs-custom`` export, through Kafka.

A client writes a ``CallRequest`` to ``<ns>.calls``; every node follows that topic,
and the one whose instance owns the function's first input partition (the lowest
it may process) runs ``fs-custom`` on that partition's instance, with its state, and
writes a ``CallReply`` to ``<ns>.replies``. Exactly one instance owns that partition
at a time, so one node answers; during a rebalance none may, and the caller's
timeout says so.
"""
