"""Development tools that measure the runtime and fit its calibration; never shipped.

`python -m evaluation.evaluate` (`make eval`) scores the pipeline on a labelled folder (tables in
`scoring`), evaluation/calibrate.py fits the calibration (`calibration_pool`, `calibration_report`),
`fitting` is the maths both run, `face_dump` caches the nets' raw outputs per labelled folder,
and `labels` reads UTKFace-format labels.csv files.
handler/ holds only what the deployed functions run (tests/unit/test_reachable.py).
"""
