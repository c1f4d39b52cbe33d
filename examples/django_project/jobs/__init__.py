"""The app that reacts to finished Kreuzberg jobs."""
