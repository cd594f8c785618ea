"""The admin portal: pages (static files in ``static/``), its API (``api.py``) and who may see what
(``auth.py``). The HTTP handlers are ``functions/portal.py``; locally ``registrar/localhost/http.py``."""
