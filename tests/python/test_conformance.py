"""The conformance table (tests/conformance/cases.json) with Python's rpyc:
every language's example services behave as the seed's do."""
import builtins
import gc
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
        return GUESTS / f"{service.replace('-', '_')}.wasm"
    return POLYGLOT / language / f"{service}.wasm"


@pytest.fixture(scope="module")
def connections():
    """One connection per language and service, opened at first use."""
    pairs = [(language, service) for language in LANGUAGES for service in SERVICES]
    host = Host(*(component(*pair) for pair in pairs))
    ports = dict(zip(pairs, host.ports_in_order))
    opened = {}

    def connection(pair):
        if pair not in opened:
            opened[pair] = rpyc.connect("localhost", ports[pair])
        return opened[pair]

    yield connection
    for conn in opened.values():
        conn.close()
    assert host.alive(), "the host died during the conformance cases"
    host.stop()


def argument(spec, conn, named):
    """A case's argument as the client passes it."""
    if not isinstance(spec, dict):
        return spec
    if "callback" in spec:
        return lambda: spec["callback"]
    if "raising" in spec:
        def raising():
            raise getattr(builtins, spec["raising"])("boom")

        return raising
    if "int" in spec:
        return int(spec["int"])
    if "new" in spec:
        instance = conn.root.MyClass(*spec["new"])
        if "name" in spec:
            named[spec["name"]] = instance
        return instance
    return named[spec["ref"]]


def as_json(value):
    """A result as the table writes it: tuples as lists."""
    if isinstance(value, (tuple, list)):
        return [as_json(item) for item in value]
    return value


CASES = [
    pytest.param(language, service, case, id=f"{language}-{service}-{index}-{case.get('call') or case['attr']}")
    for language in LANGUAGES
    for service in SERVICES
    for index, case in enumerate(TABLE["services"][service])
    if language in case.get("languages", LANGUAGES)
]


@pytest.mark.parametrize("language,service,case", CASES)
def test_case(connections, language, service, case):
    conn = connections((language, service))
    named = {}
    target = argument(case["on"], conn, named) if "on" in case else conn.root
    args = [argument(spec, conn, named) for spec in case["args"]]
    kwargs = {key: argument(spec, conn, named) for key, spec in case.get("kwargs", {}).items()}

    def call():
        if "attr" in case:
            return getattr(target, case["attr"])
        result = getattr(target, case["call"])(*args, **kwargs)
        return getattr(result, case["then"])() if "then" in case else result

    if "raises" in case:
        with pytest.raises(getattr(builtins, case["raises"])):
            call()
    else:
        assert as_json(call()) == case["returns"]
    del args, kwargs, target, named
    gc.collect()  # a traceback kept by pytest.raises may hold the case's netrefs in a cycle
    conn.ping()
    assert len(conn._local_objects._dict) == 0, "the service released every object it was passed"
