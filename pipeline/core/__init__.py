"""The records every stage and step shares (videos, crops, detections) and the failure classes."""
