"""gui layer of VidTrain (see docs/architecture.md)."""
