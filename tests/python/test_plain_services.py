"""Services as RPyC's users write them: plain Python classes built by
`wasm-rpyc build` (and by `wasm-rpyc serve module.py`), called with the
unmodified rpyc client."""

import gc
import os
import pathlib
import re
import subprocess

import pytest
import rpyc

from conftest import BINARY, POLYGLOT, ROOT, TARGET, Host

PLAIN = pathlib.Path(__file__).parent / "plain"
EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "services" / "python"


@pytest.fixture(scope="module")
def plain_host():
    # `serve` builds the modules itself (into its build cache).
    served = Host(PLAIN / "rich.py", PLAIN / "decorated.py", EXAMPLES / "decoupled.py")
    yield served
    assert served.alive(), "the host died during the tests"
    served.stop()


@pytest.fixture
def conn(plain_host):
    c = rpyc.connect("127.0.0.1", plain_host.ports["rich"])
    yield c
    c.close()


def build(source, *args, env=None):
    # componentize-py, or cargo: minutes on a loaded machine.
    return subprocess.run(
        [str(BINARY), "build", str(source), *args], capture_output=True, text=True, timeout=900,
        env={**os.environ, **(env or {})},
    )


def test_the_class_name_and_aliases_name_the_service(conn, plain_host):
    assert conn.root.get_service_name() == "RICH"
    assert conn.root.get_service_aliases() == ("RICH", "PLAIN")
    decorated = rpyc.connect("127.0.0.1", plain_host.ports["decorated"])
    try:
        assert decorated.root.get_service_name() == "DECORATED"
        assert decorated.root.ping() == "pong"
        assert decorated.root.Box().open() == "opened"
    finally:
        decorated.close()


def test_members_take_any_values_as_python_does(conn):
    assert conn.root.add(1, 2) == 3
    assert conn.root.add("a", "b") == "ab"
    assert conn.root.add(1.5, 2) == 3.5
    assert conn.root.add((1,), (2,)) == (1, 2)


def test_arguments_bind_with_pythons_rules(conn):
    assert conn.root.greet("bob") == ("hello", "bob", (), ())
    assert conn.root.greet(name="ann", greeting="hi") == ("hi", "ann", (), ())
    assert conn.root.greet("a", "b", "c", k=1) == ("b", "a", ("c",), (("k", 1),))
    with pytest.raises(TypeError, match=r"missing 1 required positional argument: 'b'"):
        conn.root.add(1)
    with pytest.raises(TypeError, match=r"got an unexpected keyword argument 'c'"):
        conn.root.add(1, 2, c=3)


@pytest.mark.parametrize(
    "args",
    [
        (1, 2),
        tuple(range(8)),
        tuple(range(12)),
        (2**63 - 1, -(2**63), 2**63, -(2**100)),
        (1, True, 2.0, None, "s", b"b", (3, 4), frozenset({5}), 1 - 2j),
    ],
)
def test_positional_arguments_of_every_kind_arrive_as_sent(conn, args):
    # `greet(name, greeting, *rest)` gives them back: ints alone, many of
    # them, past 64 bits and mixed with every other kind.
    assert conn.root.greet(*args) == (args[1], args[0], args[2:], ())


def test_a_returned_dict_is_read_by_reference(conn):
    d = conn.root.items()
    assert isinstance(d, dict)
    assert d["a"] == 1
    assert len(d) == 2
    assert "a" in d and "z" not in d
    assert sorted(d) == ["a", "b"]
    assert d["b"][1] == 2
    assert repr(d) == "{'a': 1, 'b': [1, 2, 3]}"
    with pytest.raises(KeyError):
        d["z"]
    # RPyC's default policy reaches no public method of a builtin either.
    with pytest.raises(AttributeError, match="cannot access 'keys'"):
        d.keys()


def test_a_returned_list_is_a_list_by_reference(conn):
    x = conn.root.numbers(5)
    assert isinstance(x, list)
    assert x[2] == 2
    assert len(x) == 5
    assert [y * 2 for y in x] == [0, 2, 4, 6, 8]
    assert list(conn.root.numbers()) == [0, 1, 2]


def test_a_generator_is_iterated(conn):
    assert list(conn.root.count(4)) == [0, 1, 2, 3]


def test_an_instance_exposes_its_exposed_methods_only(conn):
    t = conn.root.tracked(5)
    assert t.value() == 5
    with pytest.raises(AttributeError):
        t.hidden()
    with pytest.raises(AttributeError, match="cannot access '__dict__'"):
        t.__dict__
    with pytest.raises(AttributeError, match="cannot access '__class__'"):
        t.__class__.__init__
    with pytest.raises(AttributeError, match="cannot access '_private'"):
        conn.root._private
    with pytest.raises(AttributeError, match="cannot access 'foo'"):
        conn.root.foo


def test_a_function_is_called_by_reference(conn):
    double = conn.root.function()
    assert double(21) == 42


def test_an_object_passed_back_is_the_guests_own(conn):
    t = conn.root.tracked(1)
    assert conn.root.same(t, t) is True
    assert conn.root.same(t, conn.root.tracked(1)) is False


def test_exposed_attributes_are_read_as_attributes(conn):
    assert conn.root.the_answer == 43
    assert conn.root.prop == "property"
    assert conn.root.connected is True
    point = conn.root.Point(3, 4)
    assert point.norm2() == 25
    assert point.kind == "point"


def test_the_peers_objects_work_as_pythons_own(conn):
    assert conn.root.is_list([1, 2]) is True
    assert conn.root.total([1, 2, 3]) == 6
    assert conn.root.call(lambda x: x * 2, 21) == 42


def test_the_service_reaches_the_peers_root(plain_host):
    class ClientService(rpyc.Service):
        ALIASES = ["client"]

    with rpyc.connect("127.0.0.1", plain_host.ports["rich"], service=ClientService) as c:
        assert c.root.peer_name() == "CLIENT"


def test_the_seeds_decoupled_service_calls_the_clients_back(plain_host, js_host):
    class ClientService(rpyc.Service):
        def exposed_foo(self):
            return "foo"

    # In Python (`self._conn.root`) and in JavaScript (`this._conn.root`).
    for host in (plain_host, js_host):
        with rpyc.connect("127.0.0.1", host.ports["decoupled"], service=ClientService) as c:
            assert c.root.bar() == "foobar"


def test_exceptions_keep_their_class(conn):
    with pytest.raises(Exception) as raised:
        conn.root.fail()
    # RPyC's client cannot import the service's module: it makes a class of
    # that dotted name.
    assert "rich.Fault" in [cls.__name__ for cls in type(raised.value).__mro__]
    assert str(raised.value).startswith("it failed")
    with pytest.raises(ZeroDivisionError):
        conn.root.call(lambda: 1 / 0)


def test_a_failing_repr_or_finaliser_does_not_hurt_the_connection(conn):
    bad = conn.root.bad_repr()
    with pytest.raises(ValueError, match="no repr for you"):
        repr(bad)
    del bad
    finaliser = conn.root.bad_finaliser()
    del finaliser
    gc.collect()
    assert conn.root.add(1, 1) == 2


def test_each_connection_has_its_own_service_object(plain_host):
    first = rpyc.connect("127.0.0.1", plain_host.ports["rich"])
    second = rpyc.connect("127.0.0.1", plain_host.ports["rich"])
    try:
        assert first.root.count_calls() == 1
        assert first.root.count_calls() == 2
        assert second.root.count_calls() == 1
    finally:
        first.close()
        second.close()


def test_released_objects_are_finalised_in_the_guest(conn):
    # The host lends a connection at most 10,000 objects at once: 12,000
    # pass only if the ones dropped are released, and the guest sees it.
    before = conn.root.finalised()
    for n in range(12_000):
        assert conn.root.tracked(n).value() == n
    gc.collect()
    assert conn.root.finalised() - before >= 11_990


def test_objects_of_a_value_that_cannot_be_sent_are_given_back(conn):
    # A tuple of more objects than the table takes: the error says so, and
    # the objects taken before the table was full are released too.
    gc.collect()
    before = conn.root.finalised()
    with pytest.raises(RuntimeError, match=r"^the service lends as many objects as it may \(10000\)"):
        conn.root.tracked_tuple(10_001)
    assert conn.root.finalised() - before == 10_001
    assert [t.value() for t in conn.root.tracked_tuple(3)] == [0, 1, 2]


def test_build_writes_a_component(tmp_path):
    out = tmp_path / "rich.wasm"
    built = build(PLAIN / "rich.py", "-o", str(out))
    assert built.returncode == 0, built.stderr
    assert out.read_bytes()[:4] == b"\0asm"


@pytest.mark.parametrize(
    "source, expected",
    [
        ("import rpyc\n\nx = 1\n", r"no\.py: defines no rpyc\.Service subclass"),
        (
            "import rpyc\n\nclass AService(rpyc.Service):\n    pass\n\nclass BService(rpyc.Service):\n    pass\n",
            r"no\.py: defines several rpyc\.Service subclasses \(AService, BService\); choose one with --service NAME",
        ),
        ("import rpyc\n\nclass A(rpyc.Service):\n    def f(self)\n        pass\n", r"no\.py:4: SyntaxError"),
        ("import rpyc\nimport numpy\n", r"no\.py:2: ModuleNotFoundError: No module named 'numpy'"),
    ],
    ids=["no-service", "two-services", "syntax-error", "missing-import"],
)
def test_build_names_the_file_and_line_of_a_mistake(tmp_path, source, expected):
    module = tmp_path / "no.py"
    module.write_text(source)
    built = build(module, "-o", str(tmp_path / "no.wasm"))
    assert built.returncode != 0
    assert re.search(expected, built.stderr), built.stderr


def test_build_builds_a_rust_crate_with_cargo(tmp_path):
    crate = ROOT / "services" / "calculator"
    out = tmp_path / "calculator.wasm"
    # Where the host's build put the example services: cargo reuses them.
    built = build(crate, "-o", str(out), env={"CARGO_TARGET_DIR": str(TARGET / "guests")})
    assert built.returncode == 0, built.stderr
    served = Host(out)
    try:
        with rpyc.connect("127.0.0.1", served.ports["calculator"]) as c:
            assert c.root.add(4, 7) == 11
            assert c.root.get_service_name() == "CALCULATOR"
    finally:
        served.stop()
    assert "not a Rust crate (no Cargo.toml)" in build(tmp_path).stderr
    assert "a Rust crate is one service" in build(crate, "--service", "X").stderr


def test_build_chooses_the_service_by_name(tmp_path):
    module = tmp_path / "two.py"
    module.write_text(
        "import rpyc\n\nclass AService(rpyc.Service):\n    pass\n\nclass BService(rpyc.Service):\n"
        "    def exposed_b(self):\n        return 'b'\n"
    )
    built = build(module, "--service", "BService", "-o", str(tmp_path / "two.wasm"))
    assert built.returncode == 0, built.stderr
    missing = build(module, "--service", "CService", "-o", str(tmp_path / "two.wasm"))
    assert "no rpyc.Service subclass named CService" in missing.stderr


@pytest.fixture(scope="module")
def js_host():
    # A plain JavaScript class, built by `serve` as a Python module is, and
    # the seed's decoupled service in JavaScript.
    served = Host(PLAIN / "shapes.js", POLYGLOT / "js" / "decoupled.wasm")
    yield served
    assert served.alive(), "the host died during the tests"
    served.stop()


@pytest.fixture(scope="module")
def js_conn(js_host):
    c = rpyc.connect("127.0.0.1", js_host.ports["shapes"])
    yield c
    c.close()


def test_a_javascript_class_is_served_as_rpyc_reads_it(js_conn):
    root = js_conn.root
    assert root.get_service_aliases() == ("SHAPES", "JS")
    assert root.add(4, 7) == 11
    assert root.add("a", "b") == "ab"
    assert root.add(1.5, 2) == 3.5
    assert root.the_answer == 43
    assert root.prop == "property"
    with pytest.raises(AttributeError, match="cannot access 'conn'"):
        root.conn
    assert root.version == 2  # a static member, as a Python class attribute


def test_a_javascript_call_binds_its_arguments_as_python_would(js_conn):
    root = js_conn.root
    assert root.add(b="b", a="a") == "ab"
    assert root.add(2, b=5) == 7
    assert len(root.numbers()) == 3 and len(root.numbers(n=2)) == 2
    assert root.call(lambda *a: sum(a), 1, 2, 3) == 6
    with pytest.raises(TypeError, match=r"add\(\) missing 1 required positional argument: 'b'"):
        root.add(1)
    with pytest.raises(TypeError, match=r"add\(\) takes 2 positional arguments but 3 were given"):
        root.add(1, 2, 3)
    with pytest.raises(TypeError, match=r"numbers\(\) takes from 0 to 1 positional arguments but 2"):
        root.numbers(1, 2)
    with pytest.raises(TypeError, match=r"add\(\) got multiple values for argument 'a'"):
        root.add(1, a=2)
    with pytest.raises(TypeError, match=r"add\(\) got an unexpected keyword argument 'c'"):
        root.add(1, 2, c=3)
    with pytest.raises(TypeError, match=r"Point\(\) missing 1 required positional argument: 'y'"):
        root.Point(1)


def test_a_javascript_services_objects_go_by_reference(js_conn):
    root = js_conn.root
    d = root.items()
    assert isinstance(d, dict)
    assert (d["a"], len(d), "a" in d, sorted(d)) == (1, 2, True, ["a", "b"])
    assert [y * 2 for y in d["b"]] == [2, 4, 6]
    assert repr(d) == "{'a': 1, 'b': [1, 2, 3]}"
    numbers = root.numbers(4)
    assert isinstance(numbers, list) and len(numbers) == 4 and numbers[-1] == 3
    assert list(root.count(3)) == [0, 1, 2]
    point = root.point(3, 4)
    assert point.norm2() == 25 and point.kind == "point"
    assert root.Point(1, 2).norm2() == 5
    with pytest.raises(AttributeError, match="cannot access 'hidden'"):
        point.hidden()
    assert root.same(point, point) is True
    assert root.same(point, root.point(3, 4)) is False
    assert hash(point) == hash(point) and len({point, root.point(3, 4)}) == 2
    with pytest.raises(TypeError, match="unhashable type: 'dict'"):
        hash(d)
    assert root.call(lambda x: x * 2, 21) == 42


def test_a_javascript_services_errors_and_peer(js_conn):
    with pytest.raises(Exception) as raised:
        js_conn.root.fail()
    assert "shapes.Fault" in [cls.__name__ for cls in type(raised.value).__mro__]
    with pytest.raises(ValueError, match="out of range"):
        js_conn.root.reject()
    assert js_conn.root.peer_name() == "VOID"
    assert js_conn.root.count_calls() == 1
    assert js_conn.root.count_calls() == 2


def test_a_javascript_object_is_disposed_when_the_peer_lets_go(js_conn):
    gc.collect()  # the earlier tests' objects go first
    js_conn.ping()
    before = js_conn.root.disposed()
    point = js_conn.root.point(1, 2)
    assert js_conn.root.same(point, point)  # passed back: still held once
    assert js_conn.root.disposed() == before
    del point
    gc.collect()
    js_conn.ping()
    assert js_conn.root.disposed() == before + 1


def test_the_same_class_with_a_typed_world_converts_by_its_types():
    served = Host(POLYGLOT / "python" / "calculator-typed.wasm")
    try:
        c = rpyc.connect("127.0.0.1", served.ports["calculator-typed"])
        assert c.root.add(4, 7) == 11
        with pytest.raises(TypeError, match="expected int"):
            c.root.add("4", 7)
        c.close()
    finally:
        served.stop()
