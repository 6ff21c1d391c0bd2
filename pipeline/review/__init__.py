"""How people look at a run: contact sheets, the review page and its assets, the local review server."""
