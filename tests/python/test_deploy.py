"""Sandboxed classic mode from the unmodified Python client: `serve
--allow-deploy` serves the DEPLOY service; `conn.root.deploy(data)` runs the
component in the sandbox and returns its root."""
import pytest
import rpyc

from conftest import GUESTS, PATIENT, POLYGLOT, Host


@pytest.fixture(scope="module")
def host():
    served = Host(GUESTS / "calculator.wasm",
                  args=["--allow-deploy", "--deploy-port", "0", "--cpu-budget", "1",
                        "--max-deploy-size", "32"])
    yield served
    assert served.alive(), "the host died during the tests"
    served.stop()


def component(name):
    return (GUESTS / f"{name}.wasm").read_bytes()


@pytest.fixture
def conn(host):
    # A deploy compiles the component: a Python one for seconds, minutes on
    # a loaded machine; and a spin lasts until its budget of CPU time.
    connection = rpyc.connect("localhost", host.deploy_port, config=PATIENT)
    yield connection
    connection.close()


def test_a_deployed_component_is_called_through_its_root(conn):
    assert conn.root.get_service_name() == "DEPLOY"
    calculator = conn.root.deploy(component("calculator"))
    assert calculator.add(4, 7) == 11
    assert calculator.get_service_name() == "CALCULATOR"
    assert "add" in dir(calculator)
    with pytest.raises(ZeroDivisionError):
        calculator.div(1, 0)
    # The same bytes again: another instance of the cached component.
    again = conn.root.deploy(component=component("calculator"))
    assert again.mul(6, 7) == 42


def test_a_deployed_service_calls_back_and_lends_objects(conn):
    callback = conn.root.deploy(component("callback"))
    assert callback.bar(lambda: "foo") == "foobar"
    service = conn.root.deploy(component("my_service"))
    assert service.get_service_aliases() == ("FOO", "BAR", "SPAM")
    obj = service.MyClass(1, 2)
    assert obj.foo() == 3
    total = obj.add(service.MyClass(10, 20))
    assert total.foo() == 33
    assert service.same(obj, obj)
    with pytest.raises(TypeError, match="not an object of this deployed service"):
        conn.root.deploy(component("my_service")).same(obj, obj)


def test_a_misbehaving_deployed_component_is_contained(host, conn):
    bad = conn.root.deploy(component("testbed"))
    with pytest.raises(TimeoutError):
        bad.spin()
    with pytest.raises(MemoryError, match="an instance may use 64 MiB"):
        bad.allocate(128)
    with pytest.raises(RecursionError):
        bad.recurse(2**64 - 1)
    with pytest.raises(RuntimeError, match="deployed"):
        bad.panic("deployed")
    assert bad.echo_s32(3) == 3
    # Nobody else noticed.
    other = rpyc.connect("localhost", host.ports["calculator"])
    assert other.root.add(1, 2) == 3
    other.close()
    assert conn.root.deploy(component("calculator")).add(2, 2) == 4


def test_what_cannot_be_deployed_is_refused_clearly(host, conn):
    with pytest.raises(ValueError, match="cannot be compiled"):
        conn.root.deploy(b"\0asm but not really")
    with pytest.raises(ValueError, match="exports no `exposed-\\*` function"):
        conn.root.deploy(component("nothing_exposed"))
    with pytest.raises(ValueError, match="at most 33554432 bytes"):
        conn.root.deploy(bytes(33 << 20))
    with pytest.raises(TypeError, match="the component's bytes"):
        conn.root.deploy("calculator.wasm")
    with pytest.raises(TypeError, match="unexpected keyword argument 'version'"):
        conn.root.deploy(component("calculator"), version=2)
    # A service that is not the deploy service says where to deploy.
    calculator = rpyc.connect("localhost", host.ports["calculator"])
    with pytest.raises(AttributeError, match="CALCULATOR takes no components; deploy to a host's "
                                             "DEPLOY service .*--allow-deploy"):
        calculator.root.deploy(component("calculator"))
    calculator.close()


def test_a_deployed_plain_classs_objects_go_by_reference(conn):
    rich = conn.root.deploy((POLYGLOT / "python" / "rich.wasm").read_bytes())
    assert rich.the_answer == 43
    d = rich.items()
    assert (d["a"], len(d), "a" in d, sorted(d)) == (1, 2, True, ["a", "b"])
    assert [y * 2 for y in d["b"]] == [2, 4, 6]
    assert repr(d) == "{'a': 1, 'b': [1, 2, 3]}"
    point = rich.Point(3, 4)
    assert point.norm2() == 25 and point.kind == "point"
    assert rich.same(point, point) is True
    assert rich.same(d, point) is False
    with pytest.raises(AttributeError, match="cannot access '__dict__'"):
        point.__dict__
    assert rich.call(lambda x: x * 2, 21) == 42


@pytest.mark.skipif(not (POLYGLOT / "python" / "calculator.wasm").exists(),
                    reason="services/build.sh makes the Python calculator")
def test_a_python_component_is_deployed(conn):
    data = (POLYGLOT / "python" / "calculator.wasm").read_bytes()
    calculator = conn.root.deploy(data)
    assert calculator.add(4, 7) == 11
    assert calculator.add("a", "b") == "ab"
    # Its class names it, as RPyC names a service.
    assert calculator.get_service_name() == "CALCULATOR"
    # One that declares no aliases is named by the deployer, or else DEPLOYED.
    js = (POLYGLOT / "js" / "calculator-typed.wasm").read_bytes()
    assert conn.root.deploy(js).get_service_name() == "DEPLOYED"
    named = conn.root.deploy(js, name="calculator")
    assert named.get_service_name() == "CALCULATOR"
    assert named.sub(9, 2) == 7
