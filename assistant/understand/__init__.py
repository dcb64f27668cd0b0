"""Understanding: the router and its tiers (skills, the skill mapper, the local LLM, the cloud), and the audit log of what leaves the device."""
