"""Where devices' push reports go, and the bench's real receivers of them.

- :mod:`.base`: the :class:`~.base.Sink` interface and the in-world sinks (no I/O);
  :mod:`.outages`: in-world receivers that fail on a schedule.
- Real clients (used only when a run asks for real sinks): :mod:`.http_client`
  (``HttpPost``/``HttpGet``), :mod:`.ftp_client` (``FtpUpload``), :mod:`.smtp_client`
  (``SmtpSend``).
- Real receivers (the bench's servers, one shape: :mod:`.receiver`): :mod:`.http`
  (``HttpSink``), :mod:`.ftp` (``FtpSink``), :mod:`.smtp` (``SmtpSink``), :mod:`.snmp_traps`
  (``TrapReceiver``); :mod:`.udp` (CoAP, MQTT-SN head-ends for NB-IoT modules).

Each receiver is a real server on 127.0.0.1 by default (port 0 = an ephemeral port) that
records what it receives, so tests and runs check pushed reports end to end instead of
mocking a client.
"""
