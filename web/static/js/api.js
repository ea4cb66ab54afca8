// The HTTP client of the page: JSON in and out under /api/v1, the session
// cookie for authentication (sent by the browser; the page never sees it),
// and the contract's error shape turned into ApiError.

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

let unauthorized = () => {};

// onUnauthorized sets what happens when a request answers 401: the session
// ended or the key was revoked.
export function onUnauthorized(fn) {
  unauthorized = fn;
}

// skew is the server's clock minus ours, from the Date header, so that lock
// and SLA countdowns hold when the two clocks differ. The header has whole
// seconds, so skews under two seconds are ignored.
let skew = 0;

export function now() {
  return Date.now() + skew;
}

function noteDate(res) {
  const d = Date.parse(res.headers.get('Date') || '');
  if (Number.isNaN(d)) return;
  const s = d + 500 - Date.now();
  skew = Math.abs(s) > 2000 ? s : 0;
}

// api sends one request. A 401 calls the unauthorized handler unless
// opts.quiet401 is set (the sign-in form handles its own).
export async function api(method, path, body, opts = {}) {
  const init = { method, headers: { Accept: 'application/json', ...(opts.headers || {}) }, credentials: 'same-origin', cache: 'no-store' };
  // Every write says it is JSON, with a body or without: the server
  // refuses a write with the session cookie that does not (another site
  // cannot send the label without a CORS preflight).
  if (method !== 'GET' && method !== 'HEAD') init.headers['Content-Type'] = 'application/json';
  if (body !== undefined) init.body = JSON.stringify(body);
  if (opts.keepalive) init.keepalive = true; // goes out even as the page closes
  let res;
  try {
    res = await fetch('/api/v1' + path, init);
  } catch {
    throw new ApiError(0, 'network', 'The server cannot be reached. Check your connection and try again.');
  }
  noteDate(res);
  const text = await res.text().catch(() => '');
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.ok) return res.status === 204 ? null : data;
  const e = (data && data.error) || {};
  const err = new ApiError(res.status, e.code || `http_${res.status}`, e.message || res.statusText || 'request failed', e.details);
  if (res.status === 429) err.retryAfter = Number(res.headers.get('Retry-After')) || 1;
  if (res.status === 401 && !opts.quiet401) unauthorized(err);
  throw err;
}

// all follows next_cursor and returns every item (at most pages pages of
// 500); the array's more is true when items were left after the last page
// read. Given from, an earlier answer for the same list, it reads only from
// where from's last page began (paging is stable while items arrive), so a
// long thread that grows by one message costs one page, not all of them.
export async function all(path, pages = 10, from = null) {
  if (from && from.more) return from; // what is shown stops where it did
  const sep = path.includes('?') ? '&' : '?';
  let items = from ? from.slice(0, from.tail.start) : [];
  let cursor = from ? from.tail.cursor : '';
  let tail;
  do {
    tail = { cursor, start: items.length };
    const page = await api('GET', `${path}${sep}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    items = items.concat(page.items || []);
    cursor = page.next_cursor || '';
  } while (cursor && items.length < pages * 500);
  items.more = Boolean(cursor);
  items.tail = tail;
  return items;
}
