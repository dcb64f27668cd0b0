"""What the assistant keeps: timers, alarms and reminders, lists, and the SQLite state they live in."""
