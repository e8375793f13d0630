"""What a new user met on the command line (issue 17): every command says when a function
does not exist, and says what it did in terms of the function."""

from __future__ import annotations

from tests.integration.test_cli_output import fs_bus


def test_logs_of_a_function_that_does_not_exist_says_so_and_exits_1(bootstrap_servers, namespace, client):
    client.show_functions()  # the namespace's topics exist, as on any cluster a node has run on
    r = fs_bus(bootstrap_servers, namespace, "logs", "nosuch")
    assert r.returncode == 1 and r.stdout == ""
    assert "function 'nosuch' does not exist" in r.stderr


def test_create_says_which_function_it_created(bootstrap_servers, namespace, nodes, tmp_path):
    from tests.integration.harness import UPPER_WASM, upper_config

    nodes("n1")
    config = tmp_path / "config.yaml"
    config.write_text(upper_config(bootstrap_servers, "shouter", f"{namespace}-in", f"{namespace}-out"))
    r = fs_bus(bootstrap_servers, namespace, "sql", "-e",
               f"CREATE FUNCTION WITH ('function_path'='{UPPER_WASM}', 'config_path'='{config}')")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("created function shouter (upper.wasm, ")
