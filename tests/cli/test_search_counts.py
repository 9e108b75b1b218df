"""`mosaic search` ends with the window's honest count: practices that cannot take a search by name are counted
apart from those that answered, and a practice that failed is named."""

from __future__ import annotations

import re

from tests.cli.test_cli import demo_server, run

__all__ = ["demo_server"]  # a fixture, used by name


def test_the_count_says_which_practices_can_only_be_searched_by_nhs_number(demo_server) -> None:
    config, env = demo_server
    result = run("search", "--config", str(config), "a", env=env)
    assert result.returncode == 0, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ patients? from 3 of 5 practices; 2 can only be searched by NHS number", last), last

    broken = dict(env)
    key = next(k for k in sorted(broken) if k == "MOSAIC_SECRET_RIVERSIDE")
    broken[key] = "wrong-password"
    result = run("search", "--config", str(config), "a", env=broken)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ patients? from 2 of 5 practices; 2 can only be searched by NHS number; "
                        r"1 could not be searched: Riverside Surgery", last), last
