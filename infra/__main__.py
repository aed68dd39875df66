"""`python -m infra`: synthesize the CDK app (same as `python infra/app.py`).

Run directly (not through the CDK CLI), the app reads infra/cdk.json's context itself and writes
the cloud assembly to infra/cdk.out.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from infra.app import main

if __name__ == "__main__":
    main()
