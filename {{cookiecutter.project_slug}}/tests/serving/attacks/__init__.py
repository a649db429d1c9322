"""Helpers of the attack suite (``tests/serving/test_serving_attacks.py``): the server process under attack, the
well-behaved client and memory watch that judge every attack, and raw HTTP over sockets.

They talk to the server over TCP only (and read its resident memory from ``/proc``), so the suite runs against
any server implementation started by ``ATTACK_SERVE_COMMAND``.
"""
