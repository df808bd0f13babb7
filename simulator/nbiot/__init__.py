"""NB-IoT meter connectivity: the Elvaco CMi6140 module, its network and its servers.

Modules (one concept each): :mod:`.timers` (GPRS timer 2/3, eDRX), :mod:`.config` (parameters,
ranges, PAK lock), :mod:`.schedule` (clock-synchronised readouts and transmissions),
:mod:`.payload` (SenML CBOR, JSON), :mod:`.lwm2m_objects`, :mod:`.network` (CE level, random
access, RRC, uplink time, losses), :mod:`.dtls`, :mod:`.coap`, :mod:`.mqttsn`, :mod:`.energy`,
:mod:`.server` (world-side LwM2M / MQTT-SN server), :mod:`.module` (the CMi6140 process),
:mod:`.scenario_model` and :mod:`.runner` (``kind = "nbiot"``). See docs/nbiot.md.
"""
