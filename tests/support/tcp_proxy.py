"""A TCP proxy on 127.0.0.1 in front of a real server, to play a database that freezes (stops
forwarding, as a host stopped by SIGSTOP or a partitioned network looks) or drops connections."""

import contextlib
import socket
import threading


class TcpProxy:
    def __init__(self, host: str, port: int, *, cut_after_bytes: int | None = None) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port: int = self.listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = False
        # Once this many bytes went client -> server, every open connection is dropped (once).
        self.cut_after_bytes = cut_after_bytes
        self.sent = 0
        self.cuts = 0

    def __enter__(self) -> "TcpProxy":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        self._flowing.set()
        self.listener.close()
        self.cut()

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def cut(self) -> None:
        """Drop every open connection, as a database that went away mid-statement."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
            self.cuts += 1
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        try:
            while data := source.recv(65536):
                self._flowing.wait()  # frozen: hold the bytes; the kernel still acknowledges them
                sink.sendall(data)
                if upstream:
                    self._count(len(data))
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _count(self, size: int) -> None:
        with self._lock:
            self.sent += size
            due = self.cut_after_bytes is not None and self.sent >= self.cut_after_bytes
            if due:
                self.cut_after_bytes = None
        if due:
            self.cut()
