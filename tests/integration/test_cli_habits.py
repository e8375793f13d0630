"""What a new user met on the command line (issue 17): every command says when a function
does not exist, and says what it did in terms of the function."""

from __future__ import annotations

from tests.integration.test_cli_output import fs_bus


def test_logs_of_a_function_that_does_not_exist_says_so_and_exits_1(bootstrap_servers, namespace, client):
    client.show_functions()  # the namespace's topics exist, as on any cluster a node has run on
    r = fs_bus(bootstrap_servers, namespace, "logs", "nosuch")
    assert r.returncode == 1 and r.stdout == ""
    assert "function 'nosuch' does not exist" in r.stderr
