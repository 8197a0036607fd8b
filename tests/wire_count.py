"""A TCP proxy in front of the test PostgreSQL that counts the queries each client sends.

psycopg2 speaks the simple query protocol only: every statement, BEGIN and COMMIT is one
Query ('Q') message and one round trip. Counting them tells how many round trips an answer
costs, whatever the code that sends them looks like.
"""
import socket
import struct
import threading

import psycopg2.extensions

_STARTUP_CODES = {80877103, 80877104}  # SSLRequest, GSSENCRequest: answered with one byte, then startup again


class QueryCounter:
    """Listens on 127.0.0.1; `url` connects through it. `queries` lists the statements seen, in order."""

    def __init__(self, database_url):
        self._upstream = psycopg2.extensions.parse_dsn(database_url)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self.queries = []
        threading.Thread(target=self._accept, daemon=True).start()
        port = self._listener.getsockname()[1]
        self.url = psycopg2.extensions.make_dsn(database_url, host="127.0.0.1", port=port,
                                                sslmode="disable", gssencmode="disable")

    def take(self):
        """The statements sent since the last take()."""
        with self._lock:
            taken, self.queries = self.queries, []
        return taken

    def close(self):
        self._listener.close()

    def _connect_upstream(self):
        host = self._upstream["host"]  # the test URLs always name one: a socket folder or an address
        port = int(self._upstream.get("port") or 5432)
        if host.startswith("/"):
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(f"{host}/.s.PGSQL.{port}")
            return upstream
        return socket.create_connection((host, port))

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = self._connect_upstream()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
            threading.Thread(target=self._client_to_server, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                s.close()

    def _client_to_server(self, client, upstream):
        reader = client.makefile("rb")
        try:
            while True:  # startup packets: length, code, rest
                header = reader.read(8)
                if len(header) < 8:
                    return
                length, code = struct.unpack("!ii", header)
                upstream.sendall(header + reader.read(length - 8))
                if code not in _STARTUP_CODES:
                    break
            while True:  # then typed messages: type byte, length (counting itself), body
                header = reader.read(5)
                if len(header) < 5:
                    return
                kind, length = header[:1], struct.unpack("!i", header[1:])[0]
                body = reader.read(length - 4)
                if kind == b"Q":
                    with self._lock:
                        self.queries.append(body.rstrip(b"\0").decode(errors="replace"))
                upstream.sendall(header + body)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                s.close()
