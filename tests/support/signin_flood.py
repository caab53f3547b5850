"""A sign-in flood against the approval pages, as its own process (issue 15.3):

    python -m tests.support.signin_flood URL --threads 60 --seconds 40 --json

Each thread is a client on its own loopback address (127.0.1.N: all of 127/8 is this machine
on Linux), like a botnet of distinct addresses rather than one noisy host. It fetches the
sign-in page once (the form's CSRF value and cookies), then posts sign-ins with random
addresses and passwords as fast as the server answers, ignoring Retry-After. At the end it
prints how many answers of each status it got (and connection errors as "error").

Its own process, so its threads do not take the test's interpreter lock; the test may run it
at a lower priority, as the attacker's CPU is not the agent's machine's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import secrets
import threading
import time
from collections import Counter
from urllib.parse import urlencode, urlsplit

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Attacker:
    def __init__(self, host: str, port: int, source: str, deadline: float) -> None:
        self.host, self.port, self.source, self.deadline = host, port, source, deadline
        self.counts: Counter[str] = Counter()
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def run(self) -> None:
        while time.monotonic() < self.deadline:
            try:
                self._session()
            except (OSError, http.client.HTTPException):
                self.counts["error"] += 1
                time.sleep(0.05)

    def _session(self) -> None:
        connection = http.client.HTTPConnection(
            self.host, self.port, timeout=30, source_address=(self.source, 0)
        )
        try:
            if not self.csrf:
                self._form(connection)
            while time.monotonic() < self.deadline:
                self._post(connection)
        finally:
            connection.close()

    def _form(self, connection: http.client.HTTPConnection) -> None:
        connection.request("GET", "/login")
        response = connection.getresponse()
        page = response.read().decode("utf-8", "replace")
        self._keep_cookies(response)
        found = CSRF.search(page)
        self.csrf = found.group(1) if found else ""

    def _post(self, connection: http.client.HTTPConnection) -> None:
        body = urlencode({
            "csrf": self.csrf,
            "email": f"{secrets.token_hex(6)}@corp.example",
            "password": secrets.token_urlsafe(12),
        })  # fmt: skip
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        connection.request("POST", "/login", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        self._keep_cookies(response)
        self.counts[str(response.status)] += 1
        if response.getheader("Connection", "").lower() == "close":
            raise http.client.HTTPException("server closed the connection")

    def _keep_cookies(self, response: http.client.HTTPResponse) -> None:
        for line in response.msg.get_all("Set-Cookie") or []:
            name, _, rest = line.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]


def flood(url: str, threads: int, seconds: float) -> Counter[str]:
    parts = urlsplit(url)
    deadline = time.monotonic() + seconds
    attackers = [
        Attacker(parts.hostname or "127.0.0.1", parts.port or 80, f"127.0.1.{n + 1}", deadline)
        for n in range(threads)
    ]
    running = [threading.Thread(target=a.run, daemon=True) for a in attackers]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    total: Counter[str] = Counter()
    for attacker in attackers:
        total.update(attacker.counts)
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--threads", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    print(json.dumps(flood(args.url, args.threads, args.seconds)), flush=True)


if __name__ == "__main__":
    main()
