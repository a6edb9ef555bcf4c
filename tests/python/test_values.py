"""Values between Python and WIT, through the test guest that echoes every
WIT type, including arguments large enough to travel compressed."""
import pytest
import rpyc


@pytest.fixture
def root(testbed_port):
    conn = rpyc.connect("localhost", testbed_port)
    yield conn.root
    conn.close()


def test_scalars_and_ranges(root):
    assert root.echo_bool(True) is True
    assert root.echo_u8(255) == 255
    assert root.echo_s64(-2**63) == -2**63
    assert root.echo_u64(2**64 - 1) == 2**64 - 1
    with pytest.raises(OverflowError):
        root.echo_u8(256)
    with pytest.raises(OverflowError):
        root.echo_u64(-1)
    with pytest.raises(TypeError):
        root.echo_u8(1.5)
    assert root.echo_f64(2) == 2.0
    assert root.echo_char("é") == "é"
    assert root.echo_string("héllo") == "héllo"


def test_sequences_are_tuples_and_bytes(root):
    assert root.echo_list((1, -2, 3)) == (1, -2, 3)
    assert root.echo_nested((("a", "b"), ())) == (("a", "b"), ())
    assert root.echo_bytes(b"\x00\xff") == b"\x00\xff"
    assert root.echo_tuple((1, "x", True)) == (1, "x", True)


def test_option_record_variant_enum_flags_result(root):
    assert root.echo_option(None) is None
    assert root.echo_option("x") == "x"
    assert root.echo_record((3, -4, "p")) == (3, -4, "p")
    assert root.echo_variant("empty") == "empty"
    assert root.echo_variant(("circle", 1.5)) == ("circle", 1.5)
    assert root.echo_enum("green") == "green"
    assert root.echo_flags(frozenset({"read", "exec"})) == frozenset({"read", "exec"})
    assert root.echo_results((("ok", 1), ("err", "bad"))) == (("ok", 1), ("err", "bad"))
    with pytest.raises(TypeError):
        root.echo_enum("purple")


def test_the_dynamic_value_carries_any_brine_value(root):
    anything = (None, True, -5, 2**100, 2.5, 1 - 2j, "text", b"\x01", ((), frozenset({1})))
    assert root.echo_value(anything) == anything


def test_large_arguments_travel_compressed_both_ways(root):
    big = "wasm-rpyc " * 100_000
    assert root.echo_string(big) == big
    data = bytes(range(256)) * 4000
    assert root.echo_bytes(data) == data


def test_optional_and_keyword_arguments(root):
    assert root.sum_two(1) == 1
    assert root.sum_two(1, 2) == 3
    assert root.sum_two(b=5, a=1) == 6
    assert root.get_value() == 42
    assert root.twice(21) == 42


def test_custom_errors_and_traps(root):
    with pytest.raises(KeyError):
        getattr(root, "raise")("KeyError", "k")
    with pytest.raises(Exception) as info:
        getattr(root, "raise")("mymodule.MyError", "custom")
    assert type(info.value).__name__ == "mymodule.MyError"
    assert info.value.args == ("custom",)
    with pytest.raises(RuntimeError, match="boom"):
        root.panic("boom")
    assert root.counter() == 1, "a fresh instance after the trap"


def test_lists_and_sets_passed_by_reference_are_read_and_released(testbed_port):
    conn = rpyc.connect("localhost", testbed_port)
    root = conn.root
    assert root.echo_list([1, -2, 3]) == (1, -2, 3)
    assert root.echo_list([]) == ()
    assert root.echo_nested([["a", "b"], []]) == (("a", "b"), ())
    assert root.echo_nested((["a"], ("b",))) == (("a",), ("b",))
    assert root.echo_record([3, -4, "p"]) == (3, -4, "p")
    assert root.echo_bytes([1, 2]) == b"\x01\x02"
    assert root.echo_flags({"read", "exec"}) == frozenset({"read", "exec"})
    assert root.echo_list(range(5)) == (0, 1, 2, 3, 4)
    with pytest.raises(TypeError):
        root.echo_list(["x"])
    with pytest.raises(TypeError):
        root.echo_s32([1])
    # The host released every object it was lent, before replying.
    conn.ping()  # the releases follow the replies; let the client read them
    assert len(conn._local_objects._dict) == 0
    conn.close()


def test_netrefs_go_back_as_the_peers_own_objects(testbed_port):
    conn = rpyc.connect("localhost", testbed_port)
    root = conn.root

    def f():
        return "f"

    probe = []
    assert root.echo_netref(f) is f  # a typed `netref` result
    assert root.echo_value(f) is f  # a netref inside a dynamic value
    assert root.echo_value((1, f, "x"))[1] is f
    assert root.echo_value(probe) is probe
    # A netref passed in a call to the peer arrives as the object itself.
    assert root.call_with(lambda x: x is probe, probe) is True
    # The guest reads a netref's class (a borrowed handle: given back after the call).
    assert (root.class_of(f), root.class_of(probe)) == ("builtins.function", "builtins.list")
    conn.ping()  # the releases follow the replies; let the client read them
    assert len(conn._local_objects._dict) == 0, "every object lent was released"
    conn.close()
