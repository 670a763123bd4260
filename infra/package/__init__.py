"""Build the faceread AWS Lambda deployment zip (stdlib only).

    python infra/package --python-version 3.12 \
        --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --out build/

Steps:
  1. pip-install requirements-lambda.txt for the *Lambda* interpreter
     (cp312, manylinux2014 / manylinux_2_28 x86_64, binary wheels only)
     into <out>/lambda;
  2. prune what Lambda never runs (bytecode for the build interpreter,
     console scripts, test suites, typing stubs, C headers / static libs,
     f2py, OpenCV's haar cascades) and strip symbol tables from the shared
     libraries that still carry them -- measuring every step;
  3. copy our code (handler/ whole, without bytecode caches) and the model files
     (models/, MODEL_INCLUDE only);
  4. zip deterministically (sorted entries, fixed timestamps, normalised
     permissions, DEFLATE level 9) into <out>/faceread-lambda.zip;
  5. fail if the unzipped size exceeds Lambda's 262,144,000-byte limit;
  6. unless --no-verify: unpack the zip into an empty directory and, in a
     fresh interpreter of the target version run with -S -E -s (sys.path =
     that folder + the stdlib), import cv2/numpy and run a DNN forward pass
     through every model in models/.

boto3/botocore are deliberately NOT bundled: the Lambda Python runtime
provides them (they would add ~90 MB unzipped). A test that imports the
handler from the unpacked zip must add boto3 from the build venv explicitly,
as "what the runtime provides" -- see runtime_provided_dir().

`--app-only` does step 3 alone, into <out>/app/ (`make app`): the tree infra/Dockerfile copies
and infra/gcp/deploy*.sh upload, so the image and the Cloud Run sources ship what the zip ships.

Exit codes: 0 ok, 1 build/verification failure, 2 over the size limit.

One module per step: build.py (main: the steps in order, pip, the size report), prune.py (2),
strip_safety.py (2's strip, with its ELF reader), stage.py (3, and `--app-only`), zipping.py (4),
sizes.py (what every step is measured with), smoke.py (6).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
