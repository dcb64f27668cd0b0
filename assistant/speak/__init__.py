"""Speaking: sentences, piper's synthesis, the players, and announcements of what is due."""
