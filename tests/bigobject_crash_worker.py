"""A big object cleanup in its own process, for the SIGKILL tests in test_cleanup_bigobject.py.

Usage: python bigobject_crash_worker.py BASE_URL CA_PATH PRIVATE_KEY_FILE

Connects to the test server (JWT bearer) and runs ``run_cleanup(archive="bigobject",
run_id="crash", execute=True)`` with the tests' criteria; ``IERKIT_CRASH_AT`` kills it at a step.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ierkit import demo
from ierkit.cleanup import cleanup_criteria, run_cleanup
from ierkit.orgs.salesforce import SalesforceOrg
from tests.sfserver import LoopbackSession


def main(argv: list[str]) -> int:
    base_url, ca_path, key = argv[:3]
    env = {
        "SF_USERNAME": "integration@example.com",
        "SF_CONSUMER_KEY": "CONSUMER-KEY",
        "SF_PRIVATE_KEY_FILE": key,
    }
    org = SalesforceOrg.from_env(
        env,
        session=LoopbackSession(base_url, Path(ca_path)),
        sleep=lambda _: None,
        poll_interval=0.0,
    )
    result = run_cleanup(
        org,
        archive="bigobject",
        criteria=cleanup_criteria(150, as_of=demo.DEMO_AS_OF),
        run_id="crash",
        execute=True,
        chunk_size=500,
    )
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
