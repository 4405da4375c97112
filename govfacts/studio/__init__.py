"""The annotator loop against a real Label Studio: client, push, pull, retrain and the ML backend."""
