"""Releasing: promotion and rollback of image digests in git, and probes of a running environment."""
