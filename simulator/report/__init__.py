"""Reports of a run: the console (:mod:`.console`: progress, summary table), the pictures'
rules and shared pictures (:mod:`.figures`) and the results folder's static page
(:mod:`.page`: ``report.html``)."""
