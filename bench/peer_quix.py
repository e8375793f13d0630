"""The ``peer`` case's worker: quixstreams doing the same transformation.

Run as a plain script (``python bench/peer_quix.py ...``) by any interpreter that
has quixstreams; it imports nothing from fs-bus. It runs until SIGTERM.
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--sink", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--state-dir", required=True)
    a = ap.parse_args()

    from quixstreams import Application

    app = Application(broker_address=a.bootstrap, consumer_group=a.group, auto_offset_reset="earliest",
                      state_dir=a.state_dir, auto_create_topics=False)
    source = app.topic(a.source, value_deserializer="bytes", key_deserializer="bytes")
    sink = app.topic(a.sink, value_serializer="bytes", key_serializer="bytes")
    sdf = app.dataframe(source)
    sdf = sdf.apply(lambda v: v.upper())
    sdf.to_topic(sink)
    app.run()


if __name__ == "__main__":
    main()
