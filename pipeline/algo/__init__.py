"""Pure algorithms over detections and crops: tracking, quality scores, near-duplicates, clustering."""
