"""The config and SQL parsers refuse any text with InvalidConfig / SqlSyntaxError and nothing else.

Anyone who can write the control topic hands the node a config, and the SQL
runner reads what a user types: both see mutated valid documents, random text
and random bytes.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from fs_bus.config.validate import parse_config
from fs_bus.errors import InvalidConfig, SqlSyntaxError
from fs_bus.sql.parser import parse
from tests.fuzz.cases import Mutator, feed

ROOT = Path(__file__).resolve().parents[2]
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)

CONFIGS = [p.read_bytes() for p in sorted(ROOT.glob("examples/*/config.yaml"))] + [b"""\
name: counter
type: python
python-runtime: process
input-groups:
  - inputs:
      - {input-type: kafka, bootstrap_servers: "k:9092", topic: words, group_id: g, partition: 0, auto.offset.reset: earliest}
      - input-type: kafka
        bootstrap_servers: k:9092
        topic: more-words
        group_id: g
        runtime: {channel-capacity: 10, batch-consume-size: 5, poll-timeout-ms: 1, sleep-when-full-ms: 2}
outputs:
  - {output-type: kafka, bootstrap_servers: "k:9092", topic: counts, partition: 1, acks: all}
init_config: {class_name: CounterProcessor, n: 3, flag: true, none: null}
processor-runtime: {max-batch-size: 10, control-timeout-ms: 100, memory-limit-mb: 64}
checkpoint_interval_seconds: 2
input-selector: sequential
requirements: [tabulate==0.10.0, "requests>=2; python_version > '3'"]
"""]
SQL = [b"CREATE FUNCTION WITH ('function_path'='fn.wasm', 'config_path'='it''s.yaml');",
       b"STOP FUNCTION `we``ird`; START FUNCTION \"q\"\"d\"; DROP FUNCTION IF EXISTS a.b-c; SHOW FUNCTIONS;",
       b"-- comment\nshow functions like 'up%'; drop function x;;",
       b"CREATE OR REPLACE FUNCTION WITH ('function_path'='f.wasm', 'config_path'='c.yaml', 'mode'='shadow');",
       b"ROLLBACK FUNCTION f TO REVISION 2; SHOW FUNCTION HISTORY f; SHOW FUNCTION DIFF f; PROMOTE FUNCTION f; "
       b"DROP SHADOW f; rollback function \"g\";"]


def config(data: bytes) -> None:
    parse_config(data)


def sql(data: bytes) -> None:
    parse(data.decode("utf-8", "replace"))


@FUZZ
@given(seed=st.integers(0, 2**64))
def test_mutated_configs_are_refused_with_invalid_config(seed):
    feed("config", config, Mutator(seed, CONFIGS, text=True).batch(100), (InvalidConfig,))


@FUZZ
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_random_text_is_refused_with_invalid_config(text):
    feed("config", parse_config, [text, text.encode("utf-8", "surrogatepass")], (InvalidConfig,))


@FUZZ
@given(seed=st.integers(0, 2**64))
def test_mutated_sql_is_refused_with_a_syntax_error(seed):
    feed("sql", sql, Mutator(seed, SQL, text=True).batch(300), (SqlSyntaxError,))


@FUZZ
@given(st.lists(st.text(max_size=200), min_size=1, max_size=20))
def test_random_text_is_refused_with_a_syntax_error(texts):
    feed("sql", parse, texts, (SqlSyntaxError,))
