"""CMe3100 push report templates: bodies, names and envelopes (docs/cme3100-reports.md).

Pure code: no SimPy, no I/O, no trace. :func:`~.render.render` builds the file(s) of a
template from plain data; :mod:`.envelope` makes the HTTP/FTP/e-mail :class:`Report`;
:mod:`.parse` reads reports back (head-end side and tests).
"""
