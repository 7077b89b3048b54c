"""The database watchdog's cut: it must survive a connection that is already gone, or the one
thread that cuts every hung connection dies with it."""

import psycopg
import sqlalchemy as sa

from core.store.db import shut_down


def test_cutting_a_lost_connection_is_harmless(postgres_url: str) -> None:
    url = sa.make_url(postgres_url).set(drivername="postgresql")
    connection = psycopg.connect(url.render_as_string(hide_password=False))
    connection.pgconn.finish()  # lost under the pool's feet: fileno() now raises

    shut_down(connection)  # returns, rather than raising psycopg.OperationalError

    connection.close()
