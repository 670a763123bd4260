"""faceread: face detection, age and gender on OpenCV DNN, for serverless functions.

Importing this package loads and warms every net once (see handler.runtime), so
the first request in a reused container is as fast as the hundredth.
"""

from handler import allocator, runtime, service

allocator.keep_freed_memory()
runtime.get_models()
service.warm_up()
