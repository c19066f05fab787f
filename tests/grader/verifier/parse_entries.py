"""Verdict functions for the parse server's tests, importable by the server child."""

import time


def echo(path):
    return {"path": path}


def sleeps(path):
    time.sleep(60)
    return {}


def allocates(path):
    return {"size": len(bytearray(8 * 2 ** 30))}


def spins(path):
    while True:
        pass


def prints(path):
    print("noise on stdout that must not reach the grader")
    return {"ok": True}
