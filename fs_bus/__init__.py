"""fs-bus: stream-processing functions over Kafka, controlled through Kafka.

The package is laid out as the design picture (see README.md / DESIGN):

- ``config``     function configuration: model and validation (pure)
- ``control``    control plane: Avro codec, function records, desired-state table
- ``artifacts``  content-addressed artifact chunks in Kafka, and the node's disk cache
- ``status``     node heartbeats and per-function observed state
- ``kafka``      confluent-kafka wrapped once: settings, clients, topics
- ``node``       the node: reconcile loop, function instances, partition workers
- ``runtime``    the engines that run user code (wasmtime components)
- ``client``     the thin Python client (no wasmtime needed)
- ``sql``        the SQL dialect of the CLI (pure parser)
- ``cli``        the ``fs-bus`` command
- ``local``      a local single-node KRaft broker for development and tests
"""

__version__ = "0.1.0"
