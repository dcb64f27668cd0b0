"""Hearing: audio in, the two-pass wake word, voice activity and the end of a command, speech recognition."""
