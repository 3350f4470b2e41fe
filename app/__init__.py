"""The wallet web app at http://localhost:3000 (Flask + Flask-SocketIO + htmx).

Not built yet: it arrives with the wallet issue, on top of the client SDK. The directory
exists so the layout matches docs/ARCHITECTURE.md; `templates/` and `static/` beside it
will hold its Jinja partials, CSS and small JS glue.
"""
