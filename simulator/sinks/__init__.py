"""Real receivers for what devices push: HTTP (chunked POST), and more per protocol.

Each sink is a real server on 127.0.0.1 (port 0 = an ephemeral port) that records what it
receives, so tests and runners check pushed reports end to end instead of mocking a client.
"""
