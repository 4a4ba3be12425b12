"""footage layer of VidTrain (see docs/architecture.md): the glue between the project store (core) and decoding
(media), which must not know each other, for every layer above: importing, relinking and opening a project's
videos (``ingest``) and the demo project (``demo``). Neither Qt nor torch; ml, jobs, the CLI and the window all
stand on it."""
