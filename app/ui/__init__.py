"""The desktop window: widgets, Qt models and the bridge to the core's asyncio loop (no policy, no HTTP)."""
