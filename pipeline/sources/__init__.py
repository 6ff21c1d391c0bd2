"""The config's sources entries turned into videos: local files, folders, URLs, playlists and searches."""
