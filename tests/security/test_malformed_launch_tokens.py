"""Attack: open the page with a malformed launch token (non-ASCII, odd shapes, signed garbage).

Every such token must be an InvalidLaunchToken, and the page must end on the denial
message; before the fix a non-ASCII token raised UnicodeEncodeError / TypeError and the
tab stayed on "loading".
"""

import base64
import hashlib
import hmac
import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reflex.istate.data import ReflexURL, RouterData

from billing_app.services.launch_tokens import InvalidLaunchToken, verify_launch_token
from billing_app.states.page import PageState
from tests.security.tabs import run

SECRET = b"launch-secret-for-tests-0123456789abcdef"

# Token-like text: mostly base64url with dots, plus anything Unicode has.
_token_text = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from("AZaz09-_.=é\u00a0\u200b\ud7ff\U0001f600"), max_size=80),
    st.builds(lambda a, b: f"{a}.{b}", st.text(max_size=40), st.text(max_size=40)),
)


def _signed(payload_bytes: bytes) -> str:
    payload = base64.urlsafe_b64encode(payload_bytes).rstrip(b"=").decode()
    signature = hmac.new(SECRET, payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("aexn"), inner, max_size=4)
    ),
    max_leaves=8,
)


@given(_token_text)
def test_any_string_is_refused_as_an_invalid_launch_token(token):
    with pytest.raises(InvalidLaunchToken):
        verify_launch_token(SECRET, token)


@given(
    st.one_of(st.binary(max_size=60), _json.map(lambda v: json.dumps(v, allow_nan=True).encode()))
)
def test_a_correctly_signed_but_malformed_payload_is_refused_too(payload_bytes):
    # A connector bug (or a leaked secret's misuse) must still end in the denial, never a crash.
    with pytest.raises(InvalidLaunchToken):
        verify_launch_token(SECRET, _signed(payload_bytes))


def test_a_huge_expiry_is_refused_not_a_crash():
    with pytest.raises(InvalidLaunchToken):
        verify_launch_token(SECRET, _signed(b'{"a":"demo","e":"a@b.co","x":1e400,"n":"x"}'))


def _open_page_with(token: str) -> PageState:
    page = PageState(_reflex_internal_init=True)
    page.router = RouterData(url=ReflexURL(f"http://localhost/?launch={quote(token)}"))
    run(
        PageState.open_page.fn(page)
    )  # on a loop of its own (a browser test may hold this thread's)
    return page


@pytest.mark.parametrize(
    "token", ["é.x", "a.é", "YQ.\u00e9\u00e9", "\U0001f600", "a.b.c", "", "..", "a" * 5000]
)
def test_the_page_shows_the_denial_for_malformed_tokens(token):
    page = _open_page_with(token)
    assert page.phase == "denied" and page.summary is None


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=1).filter(lambda t: t.strip()))
def test_the_page_shows_the_denial_for_any_token(token):
    assert _open_page_with(token).phase == "denied"
