"""compose/ cannot be run here (no Docker engine); check that it says what the docs say."""

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "compose"


def test_compose_runs_a_kraft_broker_and_nodes_pointed_at_it():
    spec = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    kafka, node = spec["services"]["kafka"], spec["services"]["node"]
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    internal = kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")[0].split("//")[1]
    assert node["command"][:3] == ["node", "--bootstrap-servers", internal]
    assert node["build"]["dockerfile"] == "compose/Dockerfile"
    assert (COMPOSE / "Dockerfile").read_text().count("COPY") >= 4
