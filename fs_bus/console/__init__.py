"""``fs-bus console``: the operator's console, a web page over what Kafka holds.

- ``model``: pure — rolling rates, the history of revisions, and the JSON views the
  page and the API show, built from the control and status tables.
- ``watcher``: follows the control and status topics, measures lag and throughput
  once per tick, and hands each new snapshot to whoever waits for one.
- ``server``: the HTTP server — the JSON API, server-sent events, the page's assets
  (``static/``, shipped in the package: nothing comes from the internet), and the
  writes, which go through ``FsClient`` as the CLI's do and only with ``--allow-writes``.
"""
