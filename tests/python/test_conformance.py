"""The conformance table (tests/conformance/cases.json) with Python's rpyc:
every language's example services behave as the seed's do."""
import builtins
import json

import pytest
import rpyc

from conftest import GUESTS, POLYGLOT, ROOT, Host

TABLE = json.loads((ROOT / "tests" / "conformance" / "cases.json").read_text())
SERVICES = list(TABLE["services"])
LANGUAGES = TABLE["languages"]


def component(language, service):
    """Where the build puts `service` written in `language`."""
    if language == "rust":
        return GUESTS / f"{service}.wasm"
    return POLYGLOT / language / f"{service}.wasm"


@pytest.fixture(scope="module")
def ports():
    pairs = [(language, service) for language in LANGUAGES for service in SERVICES]
    host = Host(*(component(*pair) for pair in pairs))
    yield dict(zip(pairs, host.ports_in_order))
    assert host.alive(), "the host died during the conformance cases"
    host.stop()


def argument(spec):
    """A case's argument as the client passes it."""
    if isinstance(spec, dict) and "callback" in spec:
        return lambda: spec["callback"]
    if isinstance(spec, dict) and "raising" in spec:
        def raising():
            raise getattr(builtins, spec["raising"])("boom")

        return raising
    if isinstance(spec, dict) and "int" in spec:
        return int(spec["int"])
    return spec


def as_json(value):
    """A result as the table writes it: tuples as lists."""
    if isinstance(value, (tuple, list)):
        return [as_json(item) for item in value]
    return value


CASES = [
    pytest.param(language, service, case, id=f"{language}-{service}-{index}-{case['call']}")
    for language in LANGUAGES
    for service in SERVICES
    for index, case in enumerate(TABLE["services"][service])
]


@pytest.mark.parametrize("language,service,case", CASES)
def test_case(ports, language, service, case):
    conn = rpyc.connect("localhost", ports[(language, service)])
    try:
        args = [argument(spec) for spec in case["args"]]
        kwargs = {key: argument(spec) for key, spec in case.get("kwargs", {}).items()}

        def call():
            return getattr(conn.root, case["call"])(*args, **kwargs)

        if "raises" in case:
            with pytest.raises(getattr(builtins, case["raises"])):
                call()
        else:
            assert as_json(call()) == case["returns"]
        conn.ping()
        assert len(conn._local_objects._dict) == 0, "the service released every object it was passed"
    finally:
        conn.close()
