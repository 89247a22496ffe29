"""Local servers the integration tests talk to (emulators and small stateful fakes)."""
