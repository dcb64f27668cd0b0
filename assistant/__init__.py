"""On-device voice assistant."""
