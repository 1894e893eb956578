// Browser example: the server URL comes from `?api=...` (default: this
// page's origin); the token is kept in localStorage so a reload stays
// signed in. The server must list this page's origin in CORS_ORIGINS.
import { OTPClient, OTPError, LocalStorageTokenStorage } from '@stateless-otp/client';

const api = new URL(window.location.href).searchParams.get('api') || window.location.origin;
const client = new OTPClient({ baseUrl: api, storage: new LocalStorageTokenStorage() });

const $ = (id) => document.getElementById(id);
$('api').textContent = api;

function show(text, isError = false) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : '';
}

function explain(err) {
  if (!(err instanceof OTPError)) return `Unexpected error: ${err}`;
  if (err.code === 'rate_limit_exceeded' && err.retryAfter !== null) {
    return `${err.message} (try again in ${err.retryAfter} s)`;
  }
  return `${err.message} [${err.code}]`;
}

async function showClaims() {
  if (client.getToken() === null) {
    $('claims').textContent = '(not signed in)';
    return;
  }
  try {
    const { claims } = await client.verifyBearer();
    $('claims').textContent = JSON.stringify(claims, null, 2);
  } catch (err) {
    $('claims').textContent = '(not signed in)';
    show(explain(err), true);
  }
}

$('request-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  show('Sending…');
  try {
    const sent = await client.requestOTP($('identity').value);
    show(`Code sent; it is valid for ${Math.round(sent.ttlSeconds / 60)} min.`);
    $('code').focus();
  } catch (err) {
    show(explain(err), true);
  }
});

$('verify-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  show('Verifying…');
  try {
    await client.verifyOTP($('identity').value, $('code').value.trim());
    show('Signed in.');
    await showClaims();
  } catch (err) {
    show(explain(err), true);
  }
});

$('logout').addEventListener('click', () => {
  client.logout();
  show('Signed out.');
  showClaims();
});

showClaims();
