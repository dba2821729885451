"""The call log in a browser (issue 11): server-rendered pages on the store.

- :mod:`cdrapi.web.auth`: who is signed in (:class:`~cdrapi.web.auth.Account`,
  :func:`~cdrapi.web.auth.current_account`), what they may see
  (:func:`~cdrapi.web.auth.scoped`), the sign-in and sign-out routes
  (:func:`~cdrapi.web.auth.sign_in_routes`) and the pages' Jinja2
  :data:`~cdrapi.web.auth.templates`.
- :mod:`cdrapi.web.sessions`: the signed session cookie and its checks.
- :mod:`cdrapi.web.ratelimit`: failed sign-ins counted per username and address.
- ``templates/``: ``base.html`` (the layout every page extends), ``signin.html``,
  ``message.html`` (a refusal or an error, in words).

The web accounts themselves are the store's (:mod:`cdrapi.store.accounts`), managed with
``cdrapi user`` (:mod:`cdrapi.cli.web_user`).
"""
