"""On-device voice assistant."""

import os as _os

# onnxruntime (VAD, voice) carries Microsoft's telemetry client, which writes a device id under
# ~/.cache/Microsoft and reports to Microsoft unless this is set before it is first imported.
# Nothing leaves this device unless its owner allows it.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
