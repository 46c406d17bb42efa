"""Sending a request: the transport contract, the one sender, the aiohttp transport.

* ``_contract``: what a transport is (:class:`AsyncTransport`,
  :class:`TransportRequest`, :class:`Timeouts`); public, and free of aiohttp.
* ``_sender``: :class:`Sender`, the one place that builds a request's URL and
  headers and keeps the client's promises around any transport.
* ``_aiohttp``: the built-in transport, the only module importing aiohttp at
  run time; ``_sessions`` its sessions, one per event loop (or a lent one).
* ``_secrecy``: finding an echoed token, and raising an error alone.

This file imports nothing: the options name the contract, and the sender is
made from the options, so importing the contract must not import the sender.
"""
