"""CMe2100 LTE G2: SMS encryption protocol v1, the gateway model, the bench's sender and modem.

Modules: :mod:`.protocol` (frame, keys, Base64URL), :mod:`.sms` (GSM-7, concatenation limits),
:mod:`.pdu` (SMS-SUBMIT/DELIVER PDUs), :mod:`.sender` (head-end side), :mod:`.gateway` (the
model), :mod:`.report` (daily Push Report e-mail), :mod:`.modem` (AT-command driver over
pyserial), :mod:`.sim_modem` (a simulated modem on a pseudo-terminal). Spec:
docs/cme2100-sms-protocol.md.
"""
