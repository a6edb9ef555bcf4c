"""The unmodified Python client's `rpyc.ssl_connect` against the host serving
TLS (`--tls-cert`, `--tls-key`), and mutual TLS (`--tls-client-ca`), with
certificates made by the openssl command for the test."""
import socket
import ssl

import pytest
import rpyc

from conftest import GUESTS, Host


def tls_host(pki, *extra):
    return Host(GUESTS / "calculator.wasm",
                args=["--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"), *extra])


def test_ssl_connect_calls_over_tls(pki):
    host = tls_host(pki)
    try:
        port = host.ports["calculator"]
        conn = rpyc.ssl_connect("localhost", port, ca_certs=str(pki / "ca.pem"))
        assert conn.root.add(4, 7) == 11
        with pytest.raises(ZeroDivisionError):
            conn.root.div(4, 0)
        conn.close()
        # A plain client gets nowhere, and the host goes on.
        with pytest.raises(Exception):
            plain = rpyc.connect("localhost", port)
            plain.root.add(1, 2)
        conn = rpyc.ssl_connect("localhost", port, ca_certs=str(pki / "ca.pem"))
        assert conn.root.add(1, 2) == 3
        conn.close()
    finally:
        host.stop()


def test_replies_written_together_reach_the_client(pki):
    """RPyC's client polls the socket for its reply, blind to a reply that
    came in the TLS record of the one before (the answer to a DEL it sent
    without waiting, say): the host must send each message on its own."""
    host = tls_host(pki)
    try:
        port = host.ports["calculator"]
        for _ in range(30):
            # A reply the client misses waits unread in its TLS buffer: the
            # call fails at this timeout rather than rpyc's 30 s (a reply
            # takes microseconds on an idle machine, seconds at worst on a
            # loaded one).
            conn = rpyc.ssl_connect("localhost", port, ca_certs=str(pki / "ca.pem"),
                                    config={"sync_request_timeout": 15})
            for _ in range(10):
                assert conn.root.add(4, 7) == 11
                with pytest.raises(ZeroDivisionError):
                    conn.root.div(4, 0)
            conn.close()
    finally:
        host.stop()


def test_deploying_over_tls(pki):
    host = tls_host(pki, "--allow-deploy", "--deploy-port", "0")
    try:
        conn = rpyc.ssl_connect("localhost", host.deploy_port, ca_certs=str(pki / "ca.pem"))
        calculator = conn.root.deploy((GUESTS / "calculator.wasm").read_bytes())
        assert calculator.add(4, 7) == 11
        conn.close()
    finally:
        host.stop()


def test_mutual_tls_wants_a_client_certificate(pki):
    host = tls_host(pki, "--tls-client-ca", str(pki / "ca.pem"))
    try:
        port = host.ports["calculator"]
        conn = rpyc.ssl_connect("localhost", port, ca_certs=str(pki / "ca.pem"),
                                certfile=str(pki / "client.pem"), keyfile=str(pki / "client.key"))
        assert conn.root.add(4, 7) == 11
        conn.close()
        with pytest.raises((ssl.SSLError, EOFError, ConnectionError)):
            anonymous = rpyc.ssl_connect("localhost", port, ca_certs=str(pki / "ca.pem"))
            anonymous.root.add(1, 2)
    finally:
        host.stop()


def test_silent_sockets_in_their_handshake_do_not_lock_out_ssl_connect(pki):
    """Sockets that never start their TLS handshake wait in a small pool of
    their own, the oldest giving way: they take no serving slot, and a real
    client (which gives up after 3 s) still gets through."""
    host = tls_host(pki, "--max-connections", "16", "--max-handshakes", "8",
                    "--max-connections-per-ip", "0")
    silent = []
    try:
        port = host.ports["calculator"]
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        for _ in range(5):
            conn = rpyc.ssl_connect("localhost", port, ca_certs=str(pki / "ca.pem"))
            assert conn.root.add(4, 7) == 11
            conn.close()
            silent.append(socket.create_connection(("127.0.0.1", port)))
    finally:
        for sock in silent:
            sock.close()
        host.stop()
