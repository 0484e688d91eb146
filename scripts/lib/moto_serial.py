"""moto's server (`moto_server`, same options), answering one request at a time.

moto's threaded server runs requests concurrently without isolating them: two racing
TransactWriteItems can both pass a condition that only one of them may (a quota counter
then overshoots), and a cancelled transaction restores a snapshot of the whole table,
undoing writes that raced it. DynamoDB makes every write and transaction on an item
serializable; answering one request at a time restores that guarantee, which the table
contract suite checks with 40 racing transactions.
"""

import sys
import threading

from moto import server

_lock = threading.Lock()
_dispatch = server.DomainDispatcherApplication.__call__


def _serialized(self, environ, start_response):
    with _lock:
        return _dispatch(self, environ, start_response)


server.DomainDispatcherApplication.__call__ = _serialized

if __name__ == "__main__":
    server.main(sys.argv[1:])
