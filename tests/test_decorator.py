"""``@step`` on functions, in notebooks and in plain scripts."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from nbflow import InvalidKey, InvalidOption, InvalidTTL, step
from nbflow._session import get_session

calls: list[object] = []


@step
def square(x):
    calls.append(x)
    return x * x


def test_bare_decorator_caches_by_arguments(cache_dir):
    calls.clear()
    assert square(3) == 9 and square(3) == 9 and square(4) == 16
    assert calls == [3, 4]


def test_keyword_and_positional_calls_share_an_entry(cache_dir):
    calls.clear()
    square(5)
    square(x=5)
    assert calls == [5]


def test_key_template_and_ttl(cache_dir, clock):
    seen = []

    @step(key="user:{user_id}", ttl="1d")
    def load_user(user_id, verbose=False):
        seen.append(user_id)
        return {"id": user_id}

    assert load_user(7) == {"id": 7}
    load_user(7)
    assert seen == [7]
    assert "user:7" in {record["key"] for record in get_session().records()}
    clock.advance(86401)
    load_user(7)
    assert seen == [7, 7]


def test_template_covering_some_arguments_still_checks_the_others(cache_dir):
    seen = []

    @step(key="user:{user_id}")
    def load_user(user_id, limit):
        seen.append(limit)
        return limit

    assert load_user(1, 10) == 10
    assert load_user(1, 20) == 20, "a different argument must not restore the old value"
    assert seen == [10, 20]


def test_template_must_name_parameters():
    with pytest.raises(InvalidKey, match="not a parameter"):

        @step(key="user:{missing}")
        def load(user_id):
            return user_id


def test_bad_options_fail_at_decoration():
    with pytest.raises(InvalidTTL):
        step(ttl="soon")
    with pytest.raises(InvalidOption):
        step(on_change="maybe")


def test_exceptions_are_not_cached(cache_dir):
    attempts = []

    @step
    def flaky(x):
        attempts.append(x)
        if len(attempts) == 1:
            raise RuntimeError("first call fails")
        return x

    with pytest.raises(RuntimeError):
        flaky(1)
    assert flaky(1) == 1
    assert flaky(1) == 1
    assert attempts == [1, 1]


def test_globals_it_reads_are_inputs(cache_dir):
    namespace: dict = {}
    exec(
        textwrap.dedent(
            """
            from nbflow import step
            factor = 2
            @step
            def scale(v):
                return v * factor
            """
        ),
        namespace,
    )
    assert namespace["scale"](10) == 20
    namespace["factor"] = 3
    assert namespace["scale"](10) == 30


SCRIPT = """
import sys
from nbflow import step

@step(ttl="1h")
def expensive(n):
    with open(sys.argv[1], "a") as log:
        log.write("ran\\n")
    return sum(range(n))

print(expensive(1000))
"""


def test_plain_script_outside_ipython_reuses_the_store(tmp_path, cache_dir):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    log = tmp_path / "runs.log"
    env = {"NBFLOW_DIR": str(cache_dir), "PATH": "/usr/bin:/bin"}
    outputs = [
        subprocess.run([sys.executable, str(script), str(log)], env=env, capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    ]
    assert outputs == ["499500\n", "499500\n"]
    assert log.read_text().count("ran") == 1
    assert (
        "IPython"
        not in subprocess.run(
            [sys.executable, "-c", "import sys, nbflow; print(sorted(m for m in sys.modules if m.startswith(('IPython','ipywidgets'))))"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )


def run_script_twice(tmp_path, cache_dir, second_version: str) -> tuple[str, int]:
    """Run SCRIPT, then ``second_version`` of it, on one cache; return the second output and how many calls ran."""
    script, log = tmp_path / "job.py", tmp_path / "runs.log"
    env = {"NBFLOW_DIR": str(cache_dir), "PATH": "/usr/bin:/bin"}
    out = ""
    for version in (SCRIPT, second_version):
        script.write_text(version)
        out = subprocess.run([sys.executable, str(script), str(log)], env=env, check=True, capture_output=True, text=True).stdout
    return out, log.read_text().count("ran")


def test_code_change_reruns_in_script(tmp_path, cache_dir):
    assert run_script_twice(tmp_path, cache_dir, SCRIPT.replace("sum(range(n))", "sum(range(n)) + 1")) == ("499501\n", 2)


def test_changing_decorator_options_is_not_a_code_change(tmp_path, cache_dir):
    assert run_script_twice(tmp_path, cache_dir, SCRIPT.replace('ttl="1h"', 'ttl="2h"')) == ("499500\n", 1)


def test_decorator_in_ipython(shell):
    shell.run_cell("from nbflow import step\nhits = []\n@step\ndef f(x):\n    hits.append(x)\n    return x + 1")
    assert shell.run_cell("f(1) + f(1)").result == 4
    assert shell.user_ns["hits"] == [1]
