"""Control of the home: Home Assistant, MQTT and the user's own intents."""
