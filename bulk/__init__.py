"""The operator's bulk tool: run faceread over objects already in a bucket (`python -m bulk`).

Not part of the runtime (handler/): it drives S3 Batch Operations (s3control), Step Functions and
CloudFormation from an operator's machine, and never ships in the Lambda zip or the image.
One module per engine (batch_ops, dmap, local), one poll loop (poll), one estimate (estimate),
the command line in __main__. Beside them, the folder form of `python -m handler` (photos on this
machine, not in a bucket): folder (the run), photos (which files), results (JSON Lines, CSV), progress.
"""
