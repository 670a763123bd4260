"""`python infra/package [...]` runs the build (the steps: infra/package/__init__.py)."""

import sys
from pathlib import Path

# Run as a folder, this file is a top-level script: make `package` importable by name.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from package.build import main  # noqa: E402

sys.exit(main())
