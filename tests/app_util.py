"""AppTest helpers shared by the page tests."""
from streamlit.testing.v1 import AppTest


def open_page(path: str, query: dict | None = None, timeout: float = 120) -> AppTest:
    """The app on page `path` (e.g. "app_pages/train.py") with the URL's query parameters, run once,
    with no exception."""
    at = AppTest.from_file("../app.py", default_timeout=timeout)
    at.run()
    at.switch_page(path)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at
