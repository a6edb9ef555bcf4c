"""The seed's exposed classes: `MyService` with `exposed_MyClass(a, b)`,
served by a wasm guest whose `exposed-my-class` resource is the class."""
import gc

import pytest
import rpyc


def test_the_seed_snippet_and_aliases(my_service_port):
    conn = rpyc.connect("localhost", my_service_port)
    assert conn.root.get_service_name() == "FOO"
    assert conn.root.get_service_aliases() == ("FOO", "BAR", "SPAM")
    obj = conn.root.MyClass(1, 2)
    assert obj.foo() == 3
    assert obj.exposed_foo() == 3
    assert conn.root.exposed_MyClass(a=4, b=5).foo() == 9
    conn.close()


def test_an_instance_passed_back_is_the_guests_own_object(my_service_port):
    conn = rpyc.connect("localhost", my_service_port)
    one, two = conn.root.MyClass(1, 2), conn.root.MyClass(10, 20)
    assert conn.root.same(one, one) is True
    assert conn.root.same(one, two) is False
    three = one.add(two)  # a method returning a new resource
    assert three.foo() == 33
    assert three.add(three).foo() == 66
    assert one == one and one != two
    conn.close()


def test_only_exposed_members_are_reachable(my_service_port):
    conn = rpyc.connect("localhost", my_service_port)
    obj = conn.root.MyClass(1, 2)
    with pytest.raises(AttributeError, match="secret"):
        obj.secret()
    with pytest.raises(AttributeError):
        obj.nothing
    with pytest.raises(AttributeError):
        conn.root.Nothing(1, 2)
    assert "foo" in dir(obj) and "add" in dir(obj) and "secret" not in dir(obj)
    assert "MyClass" in dir(conn.root)
    assert "MyClass object" in repr(obj)
    conn.close()


def test_wrong_arguments_are_type_errors(my_service_port):
    conn = rpyc.connect("localhost", my_service_port)
    with pytest.raises(TypeError, match="missing 1 required argument: 'b'"):
        conn.root.MyClass(1)
    obj = conn.root.MyClass(1, 2)
    with pytest.raises(TypeError, match="expected a MyClass object"):
        obj.add(5)
    with pytest.raises(TypeError, match="expected a MyClass object"):
        conn.root.same(obj, lambda: 1)
    conn.close()


def test_the_guests_destructor_runs_when_the_last_reference_goes(my_service_port):
    conn = rpyc.connect("localhost", my_service_port)
    assert conn.root.live_objects() == 0
    obj = conn.root.MyClass(3, 4)
    foo = obj.foo  # a bound method keeps its object alive
    del obj
    gc.collect()
    assert conn.root.live_objects() == 1
    assert foo() == 7
    del foo
    gc.collect()
    assert conn.root.live_objects() == 0
    conn.close()


def test_ten_thousand_objects_created_and_dropped_leave_nothing(my_service_port):
    # The tables of lent objects hold at most 10,000 entries: 12,000 objects
    # only all succeed if every one is released.
    conn = rpyc.connect("localhost", my_service_port)
    make = conn.root.MyClass
    for i in range(12_000):
        assert make(i, 1).foo() == i + 1
    gc.collect()
    assert conn.root.live_objects() == 0
    held = [make(i, i) for i in range(1000)]
    assert conn.root.live_objects() == 1000
    del held
    gc.collect()
    assert conn.root.live_objects() == 0
    conn.close()


def test_each_connection_has_its_own_objects(my_service_port):
    first = rpyc.connect("localhost", my_service_port)
    second = rpyc.connect("localhost", my_service_port)
    kept = first.root.MyClass(1, 1)
    assert first.root.live_objects() == 1
    assert second.root.live_objects() == 0
    with pytest.raises(TypeError):
        second.root.same(kept, kept)  # another connection's object is a netref there
    first.close()
    second.close()
