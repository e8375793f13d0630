"""Function state: the KV stores of the reference guest world, per function and input partition.

``backend`` defines the small interface a partition worker's state lives behind;
``kv`` gives the world's semantics (simple and complex keys, merge, range scans,
iterators) on top of any backend.
"""
