// Browser example: the server URL comes from `?api=...` (default: this
// page's origin); the access and refresh tokens are kept in localStorage, so
// a reload stays signed in (an expired access token is refreshed on the next
// call) and every tab of this origin shares one session: tabs refreshing at
// once take turns under a Web Lock, and only one refresh reaches the server.
// The server must list this page's origin in CORS_ORIGINS.
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
  if (client.getToken() === null && client.getRefreshToken() === null) {
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

$('check').addEventListener('click', () => {
  show('');
  $('claims').textContent = '(checking…)';
  showClaims();
});

for (const [id, all] of [['logout', false], ['logout-all', true]]) {
  $(id).addEventListener('click', async () => {
    const done = client.logout({ all });
    showClaims(); // the tokens are already forgotten
    try {
      await done;
      show(all ? 'Signed out everywhere.' : 'Signed out.');
    } catch (err) {
      show(`Signed out here; the server did not confirm: ${explain(err)}`, true);
    }
  });
}

showClaims();
