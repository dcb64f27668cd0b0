"""Running: the engine and its sessions (the pipeline and its turns), the daemon, push-to-talk, the Wyoming server, metrics, systemd and the threads off the event loop."""
