// The page's state, in memory. Lock tokens live here (state.held) and
// nowhere else: not in localStorage, sessionStorage, cookies or the URL.
// A reload recovers them from GET /api/v1/me/locks. What a reload cannot
// ask the server for is kept in the tab's sessionStorage until sign-out:
// which locks were taken up (saveEngaged) and unsent replies (saveDrafts).

// Held is the locks this page holds. It also remembers each grant it let go
// or lost (thread id and fence) until the session ends, so that a locks read
// begun before that cannot bring the grant back as new.
class Held extends Map {
  ended = new Set();

  set(id, grant) {
    const old = this.get(id);
    if (old && old.fence !== grant.fence) this.ended.add(`${id}:${old.fence}`);
    return super.set(id, grant);
  }

  delete(id) {
    const old = this.get(id);
    if (old) this.ended.add(`${id}:${old.fence}`);
    return super.delete(id);
  }

  clear() {
    this.ended.clear();
    super.clear();
  }

  // endedHere reports whether this grant was held here and has ended.
  endedHere(id, fence) {
    return this.ended.has(`${id}:${fence}`);
  }
}

export const state = {
  me: null, // GET /api/v1/me
  people: new Map(), // agent id -> name (GET /api/v1/me/colleagues)
  agents: [], // for supervisors: every agent (GET /api/v1/agents), to assign to
  teams: new Map(), // team id -> team
  tabs: [], // team ids with a queue tab
  selected: '', // selected team tab
  queues: new Map(), // team id -> {items, more}
  stats: null, // GET /api/v1/stats, for supervisors
  statsAt: 0,
  // held: thread id -> {token, fence, expiresAt (ms), lease (ms), thread,
  // renewing, engaged}
  held: new Held(),
  openId: '',
  open: null, // {thread, messages, notes, events}
  savedReplies: new Map(), // team id -> [saved reply]
  drafts: new Map(), // thread id -> {text, key (Idempotency-Key), close}
  // sent: reply message id -> {to}, the last replies this page
  // sent, so a failed delivery is said wherever the agent is by then.
  sent: new Map(),
  lastActivity: Date.now(),
  // paused: the person has been idle for long and the page asks nothing of
  // the server (see pause in app.js), so it stops counting as presence.
  paused: false,
};

// hooks let the modules call each other without import cycles; app.js
// fills them in.
export const hooks = {
  refreshQueues: () => {},
  renderMine: () => {},
  openThread: () => {},
  lose: () => {},
  alert: () => {},
  info: () => {},
  markOpen: () => {},
  focusQueue: () => {},
};

export function nameOf(id) {
  if (!id) return 'someone';
  if (id === 'system') return 'Switchboard';
  if (id.startsWith('key:')) return 'an API key';
  return state.people.get(id) || id;
}

// myName names who is signed in: the agent's name, or for a key of no
// agent (an admin's) the key's role.
export function myName() {
  const me = state.me || {};
  return me.name || me.id || (me.role === 'admin' ? 'Admin key' : `${me.role || 'unknown'} key`);
}

export function isPerson() {
  return Boolean(state.me && state.me.id);
}

export function canSupervise() {
  return Boolean(state.me && (state.me.role === 'supervisor' || state.me.role === 'admin'));
}

// The locks this tab took up, as thread id -> fence, are kept for the
// tab's life in sessionStorage (ids and fences; no token), so that a
// reload goes on renewing what the agent was working on and still lets
// offers they never opened run out.
const ENGAGED = 'switchboard.engaged';

export function saveEngaged() {
  const m = {};
  for (const [id, held] of state.held) if (held.engaged) m[id] = held.fence;
  try {
    if (Object.keys(m).length) sessionStorage.setItem(ENGAGED, JSON.stringify(m));
    else sessionStorage.removeItem(ENGAGED);
  } catch {
    // storage refused (private mode): a reload then treats them as offers
  }
}

export function wasEngaged(id, fence) {
  try {
    return JSON.parse(sessionStorage.getItem(ENGAGED) || '{}')[id] === fence;
  } catch {
    return false;
  }
}

// Replies typed and not sent (state.drafts) are kept for the tab's life in
// sessionStorage too, under the agent's id, so that a reload or a new
// session of theirs (one expired, a key rotated) keeps them, and with them
// the Idempotency-Key of a send that may have gone out (a retry then
// still sends once). Signing out removes them, and so does another
// agent's session in the tab.
const DRAFTS = 'switchboard.drafts';

export function saveDrafts() {
  const m = {};
  for (const [id, d] of state.drafts) if (d.text || d.key) m[id] = d;
  try {
    if (state.me && Object.keys(m).length) sessionStorage.setItem(DRAFTS, JSON.stringify({ agent: state.me.id, drafts: m }));
    else sessionStorage.removeItem(DRAFTS);
  } catch {
    // storage refused or full: the drafts stay in memory only
  }
}

// loadDrafts makes the drafts in memory the ones this tab kept for the
// agent signed in, and removes another agent's.
export function loadDrafts() {
  state.drafts.clear();
  try {
    const saved = JSON.parse(sessionStorage.getItem(DRAFTS) || '{}');
    if (!state.me || !state.me.id || saved.agent !== state.me.id) {
      sessionStorage.removeItem(DRAFTS);
      return;
    }
    for (const [id, d] of Object.entries(saved.drafts || {})) {
      state.drafts.set(id, { text: String(d.text || ''), key: String(d.key || ''), close: Boolean(d.close) });
    }
  } catch {
    // nothing usable kept
  }
}

// forgetDrafts removes the drafts kept (the agent signed out).
export function forgetDrafts() {
  state.drafts.clear();
  try {
    sessionStorage.removeItem(DRAFTS);
  } catch {
    // storage refused: nothing was kept
  }
}

// grantFrom turns a lock grant from the server into a held entry. An
// engaged lock is one the agent took up (claimed, opened, held when the
// page loaded, see wasEngaged): only those are renewed. An offer not opened is left to
// run out, as the contract says an ignored offer does.
export function grantFrom(lock, thread, serverNow, engaged = false) {
  const expiresAt = Date.parse(lock.expires_at);
  return {
    token: lock.token,
    fence: Number(lock.fence),
    expiresAt,
    lease: Math.max(expiresAt - serverNow, 10000),
    thread,
    renewing: false,
    engaged,
  };
}
