"""A deployment of the upload route on one machine: the HTTP target on functions-framework with presigned
uploads into gcp-storage-emulator, and a thread standing in for Eventarc that hands each new upload to the
per-object flow. For the page (tests/e2e) and the CLI (tests/integration) with photos over the body limit."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from servers import functions_framework, gcs_emulator

IN, OUT = "faceread-stack-in", "faceread-stack-out"


def signing_key() -> dict:
    """A service-account key made here: the library signs V4 URLs with it (the emulator checks no signature;
    on Cloud Run the library signs through signBlob instead)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return {"type": "service_account", "client_email": "faceread-fn@local.iam.gserviceaccount.com",
            "private_key": pem, "private_key_id": "local", "client_id": "1", "project_id": "local",
            "token_uri": "https://oauth2.googleapis.com/token"}


@contextmanager
def gcs_upload_stack(tmp: Path) -> Iterator[str]:
    """Yields the HTTP target's base URL; uploads it signs are analysed within about a second."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from handler.config import SETTINGS
    from handler.gcs_store import GcsStore, blob_info
    from handler.storage_trigger import process_object

    key_file = tmp / "faceread-fn-key.json"
    key_file.write_text(json.dumps(signing_key()))
    with gcs_emulator() as host:
        client = storage.Client(project="local", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": host})
        inp = client.create_bucket(IN)
        client.create_bucket(OUT)
        settings = dataclasses.replace(SETTINGS, output_bucket=OUT)
        stop, seen = threading.Event(), set()

        def eventarc() -> None:
            while not stop.wait(0.3):
                for blob in inp.list_blobs(prefix=SETTINGS.input_prefix):
                    if blob.name not in seen:
                        seen.add(blob.name)
                        process_object(GcsStore(client), IN, blob.name, settings, source=blob_info(blob))

        watcher = threading.Thread(target=eventarc, daemon=True)
        watcher.start()
        env = {"STORAGE_EMULATOR_HOST": host, "GOOGLE_CLOUD_PROJECT": "local", "UPLOAD_BUCKET": IN,
               "OUTPUT_BUCKET": OUT, "GOOGLE_APPLICATION_CREDENTIALS": str(key_file)}
        try:
            with functions_framework("http_analyze", env=env) as base:
                yield base
        finally:
            stop.set()
            watcher.join(30)
